/*
 * agrad: a small reverse-mode autograd engine in C, with PyTorch's semantics.
 *
 * A TOUR IN ONE TRAINING LOOP
 *
 * The PyTorch lab "linear regression, two parameters" fits w and b to noisy data:
 *
 *     #include <agrad.h>
 *
 *     ag_manual_seed(1);                                        // torch.manual_seed(1)
 *     ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
 *     ag_tensor *Y = ag_add(ag_sub(X, 1), ag_mul(0.1, ag_randn(ag_size(X))));
 *     ag_tensor *w = ag_scalar(-15.0, true);                    // requires_grad=True
 *     ag_tensor *b = ag_scalar(-10.0, true);
 *
 *     ag_mark start = ag_mark_now();           // tensors made after this are per-iteration
 *     for (int epoch = 0; epoch < 15; epoch++) {
 *         ag_tensor *Yhat = ag_add(ag_mul(w, X), b);           // Yhat = w * X + b
 *         ag_tensor *loss = ag_mean(ag_pow(ag_sub(Yhat, Y), 2));
 *         printf("%f\n", ag_item(loss));
 *         ag_backward(loss);                                   // loss.backward()
 *         ag_set_data(w, ag_sub(ag_data(w), ag_mul(0.1, w->grad)));
 *         ag_set_data(b, ag_sub(ag_data(b), ag_mul(0.1, b->grad)));
 *         ag_zero_(w->grad);                                   // w.grad.data.zero_()
 *         ag_zero_(b->grad);
 *         ag_release(start);                   // frees this iteration's graph, keeps X, Y, w, b
 *     }
 *     ag_shutdown();                           // frees everything agrad holds
 *
 * Forward: every op computes its result at once and, when an input requires grad
 * (and no ag_no_grad scope is open), records itself as a node of the graph: its op,
 * its inputs, anything its derivative needs. Nodes go on one tape in creation order,
 * which is already a topological order.
 *
 * Backward: ag_backward(loss) seeds d loss / d loss = 1 and takes the tensors that have
 * received a gradient newest first. Each applies its op's local derivative (the chain
 * rule) and adds the results into its inputs' gradients; a gradient that reaches a
 * broadcast input is summed back to that input's shape. A tensor's consumers are all
 * newer than it, so its gradient is complete when its turn comes, and the pass costs
 * what is reachable from loss, however long the tape. Leaves that require grad add what
 * reaches them into their ->grad, which accumulates until zeroed.
 *
 * MEMORY
 *
 * Every tensor lives in one growing arena, in creation order. Nothing is freed one by
 * one: ag_mark_now() notes a position, ag_release(mark) frees every tensor made after
 * it and keeps its memory for reuse, so a training loop allocates nothing from the
 * system after its first iteration. A released tensor used again is an error, never a
 * read of freed memory: always in checked mode (the default in debug and sanitizer
 * builds, see ag_set_checked), and in the default fast mode until newer tensors reuse
 * its memory. ag_shutdown() frees all. agrad is single-threaded: use it from one thread
 * at a time.
 *
 * ERRORS
 *
 * An invalid call (shapes that do not broadcast, backward twice, a NULL argument...)
 * produces a message naming the operation and the shapes, in PyTorch's words where
 * PyTorch has them. By default it is printed to stderr and the program exits with
 * status 1, like an uncaught Python exception. ag_set_error_handler() changes that;
 * with a handler that returns, the failing call returns NULL (or false, or NAN) and
 * ag_last_error() keeps the message. An op given NULL returns NULL and reports it only
 * when no error is pending (ag_last_error() is empty): the NULL result of a failed op
 * passes silently through the rest of an expression, so one mistake surfaces once.
 * A handler may return, exit, longjmp out, or call ag_shutdown(): agrad calls it only
 * when its state is consistent (backward and gradcheck call it once, at their end, after
 * putting everything back), so the next valid call works.
 *
 * SCALARS ON EITHER SIDE
 *
 * ag_add, ag_sub, ag_mul, ag_div and ag_pow take a tensor or a number on either
 * side, as Python does: ag_mul(0.1, x), ag_sub(x, 1), ag_sub(1, x), ag_pow(x, 2).
 * They are C11 _Generic macros over the functions ag_<op>_tt, _ts and _st.
 */
#ifndef AGRAD_H
#define AGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AGRAD_BUILDING) && defined(__GNUC__)
#define AG_API __attribute__((visibility("default")))
#else
#define AG_API
#endif

/* Tensors have rank 0 to AG_MAX_DIMS. */
#define AG_MAX_DIMS 4

/* ------------------------------------------------------------------------------------ */
/* Shapes                                                                                */

/* A shape (or an index): ndim sizes. Build one with AG_SHAPE(2, 3); (ag_shape){0} is the
 * shape of a scalar. */
typedef struct ag_shape {
    int ndim;                   /* number of sizes, 0 to AG_MAX_DIMS */
    int64_t d[AG_MAX_DIMS + 1]; /* the sizes; one spare so that a fifth is caught */
} ag_shape;

/* AG_SHAPE(3, 1) is the shape [3, 1]; at most AG_MAX_DIMS sizes (more is an error where
 * the shape is used), at least one. */
#define AG_SHAPE(...)                                                                              \
    ((ag_shape){(int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), {__VA_ARGS__}})

/* Keyword arguments with defaults, for the optim and data headers: AG_PRIVATE_CALL(fn, T,
 * (defaults), args...) calls fn with a T whose fields are first set to the defaults and
 * then to the caller's args, so that ag_Adam(p, .betas = {0.0, 0.99}) can give any field
 * any value, 0 included. A later designated initializer overriding an earlier one is
 * standard C; the warning GCC and Clang give for it is silenced here only. Needs GCC or
 * Clang (a statement expression); other compilers fill a T and call fn. */
/* _Pragma takes one string literal, which must not be split: */
/* clang-format off */
#if defined(__clang__)
#define AG_PRIVATE_OVERRIDE_BEGIN                                                                  \
    _Pragma("clang diagnostic push")                                                               \
    _Pragma("clang diagnostic ignored \"-Winitializer-overrides\"")
#define AG_PRIVATE_OVERRIDE_END _Pragma("clang diagnostic pop")
#else
#define AG_PRIVATE_OVERRIDE_BEGIN                                                                  \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Woverride-init\"")
#define AG_PRIVATE_OVERRIDE_END _Pragma("GCC diagnostic pop")
#endif
/* clang-format on */
#define AG_PRIVATE_UNPAREN(...) __VA_ARGS__
#define AG_PRIVATE_CALL(fn, T, defaults, ...)                                                      \
    __extension__({                                                                                \
        AG_PRIVATE_OVERRIDE_BEGIN T ag_private_args = {AG_PRIVATE_UNPAREN defaults, __VA_ARGS__};  \
        AG_PRIVATE_OVERRIDE_END fn(ag_private_args);                                               \
    })

/* ------------------------------------------------------------------------------------ */
/* The tensor                                                                            */

typedef struct ag_tensor ag_tensor;

/* A float32 tensor, contiguous, row-major. The fields are read-only: change values
 * through ag_set_data, ag_copy_ or the in-place ops, which keep the graph consistent.
 * agrad keeps its record of the graph in the same memory, right after these fields:
 * tensors are made only by agrad, and never copied by value. */
struct ag_tensor {
    float *data;                /* numel floats, row-major */
    int64_t shape[AG_MAX_DIMS]; /* sizes of the first ndim dimensions; the rest are 1 */
    int64_t numel;              /* number of elements, the product of the sizes */
    int ndim;                   /* rank, 0 to AG_MAX_DIMS */
    bool requires_grad;         /* takes part in autograd */
    ag_tensor *grad;            /* accumulated gradient of a leaf (or retain_grad); else NULL */
};

/* ------------------------------------------------------------------------------------ */
/* Creating tensors. Results are leaves; NULL on error (bad shape, NULL values).        */
/*                                                                                       */
/* The factories take their optional arguments in order or by name, as Python does:      */
/*     ag_zeros(AG_SHAPE(3))                        torch.zeros(3)                       */
/*     ag_zeros(AG_SHAPE(3), .requires_grad = true) torch.zeros(3, requires_grad=True)   */
/*     ag_scalar(-15.0, true)                       torch.tensor(-15., requires_grad=True) */
/* They are macros over the functions ag_<name>_with, which take the arguments as one    */
/* struct (from C++, call those); an argument left out is zero (false).                  */

typedef struct ag_new_args {
    ag_shape shape;
    bool requires_grad;
    int private_end; /* set by the macros, so that the arguments after the first may be left out */
} ag_new_args;

/* torch.zeros, torch.ones: filled with 0 or 1. */
AG_API ag_tensor *ag_zeros_with(ag_new_args args);
AG_API ag_tensor *ag_ones_with(ag_new_args args);
#define ag_zeros(...) ag_zeros_with((ag_new_args){__VA_ARGS__, .private_end = 0})
#define ag_ones(...)  ag_ones_with((ag_new_args){__VA_ARGS__, .private_end = 0})

/* torch.full(shape, value). */
typedef struct ag_full_args {
    ag_shape shape;
    double value;
    bool requires_grad;
    int private_end;
} ag_full_args;
AG_API ag_tensor *ag_full_with(ag_full_args args);
#define ag_full(...) ag_full_with((ag_full_args){__VA_ARGS__, .private_end = 0})

/* torch.tensor(value): a 0-d tensor. */
typedef struct ag_scalar_args {
    double value;
    bool requires_grad;
    int private_end;
} ag_scalar_args;
AG_API ag_tensor *ag_scalar_with(ag_scalar_args args);
#define ag_scalar(...) ag_scalar_with((ag_scalar_args){__VA_ARGS__, .private_end = 0})

/* torch.tensor(values).view(shape): copies shape's numel floats from values. */
typedef struct ag_tensor_from_args {
    const float *values;
    ag_shape shape;
    bool requires_grad;
    int private_end;
} ag_tensor_from_args;
AG_API ag_tensor *ag_tensor_from_with(ag_tensor_from_args args);
#define ag_tensor_from(...)                                                                        \
    ag_tensor_from_with((ag_tensor_from_args){__VA_ARGS__, .private_end = 0})

/* torch.arange(start, end, step): ceil((end - start) / step) values, bit for bit the
 * float32 values PyTorch's vectorised CPU kernel gives. */
AG_API ag_tensor *ag_arange(double start, double end, double step);

/* Sets requires_grad on a leaf and returns t; on a non-leaf it is an error. As in
 * PyTorch, ops recorded before do not gain an edge to t (their backward gives t no
 * gradient), and a leaf set to false gets no gradient from ops recorded before. */
AG_API ag_tensor *ag_requires_grad_(ag_tensor *t, bool requires_grad);

/* ------------------------------------------------------------------------------------ */
/* Random numbers: PyTorch's CPU generator (mt19937), the same streams for the same seed */

AG_API void ag_manual_seed(uint64_t seed);
/* torch.randn(shape): standard normal samples; torch.rand(shape): uniform in [0, 1).
 * Optional requires_grad, as for ag_zeros: ag_randn(AG_SHAPE(2, 3), .requires_grad = true). */
AG_API ag_tensor *ag_randn_with(ag_new_args args);
AG_API ag_tensor *ag_rand_with(ag_new_args args);
#define ag_randn(...) ag_randn_with((ag_new_args){__VA_ARGS__, .private_end = 0})
#define ag_rand(...)  ag_rand_with((ag_new_args){__VA_ARGS__, .private_end = 0})
/* t.uniform_(from, to) and t.normal_(mean, std): fill t in place and return it. */
AG_API ag_tensor *ag_uniform_(ag_tensor *t, double from, double to);
AG_API ag_tensor *ag_normal_(ag_tensor *t, double mean, double std);
/* torch.randperm(n): a permutation of 0..n-1, as a float tensor of shape [n] (exact
 * for n <= 2^24). */
AG_API ag_tensor *ag_randperm(int64_t n);

/* ------------------------------------------------------------------------------------ */
/* Reading tensors                                                                       */

/* t.size(): the shape of t; a zero shape if t is NULL. */
AG_API ag_shape ag_size(const ag_tensor *t);
/* t.item(): the value of a one-element tensor; NAN on error. */
AG_API double ag_item(const ag_tensor *t);
/* t[index]: one element, negative indices counting from the end; NAN on error. */
AG_API double ag_get(const ag_tensor *t, ag_shape index);
/* t.is_leaf: made by the user (or by an op that recorded nothing). */
AG_API bool ag_is_leaf(const ag_tensor *t);
/* t.grad_fn's name ("MulBackward0"), or NULL for a leaf. */
AG_API const char *ag_grad_fn_name(const ag_tensor *t);

/* Names: ag_set_name(w, "w") calls t "w" wherever agrad shows it (the graph picture,
 * the backward trace, error messages, ag_print) and returns t, so that
 *     ag_tensor *w = ag_set_name(ag_scalar(-15.0, true), "w");
 * names a tensor as it is made. The name is copied; NULL or "" removes it. A module's
 * parameters are named by the modules they hang in ("lin.weight", "0.bias"), unless
 * named here. ag_name(t) is t's name, or NULL: a name given here lives until t is renamed
 * or released; a parameter's dotted name, until the next call to ag_name. */
AG_API ag_tensor *ag_set_name(ag_tensor *t, const char *name);
AG_API const char *ag_name(const ag_tensor *t);

/* The graph, as a picture: every tensor reachable from t through the inputs its ops recorded,
 * drawn left to right. Tensors are boxes (name, shape, values when at most 6, grad when
 * they have one), coloured by kind: leaf requiring grad, module parameter, data, result,
 * and t, the output; ops are ellipses named by their grad_fn. A dashed arrow carries no
 * gradient (an input that did not require grad, where's condition). The text is the same
 * for the same graph (nodes numbered in creation order). Any time, even inside backward. */
/* ag_graph_dot writes the graph as Graphviz DOT text to stream; false on error (t not live,
 * NULL stream, out of memory, a failed write), with nothing written. */
AG_API bool ag_graph_dot(const ag_tensor *t, FILE *stream);
/* Writes the graph to path, its format by its ending: .dot (the text), .png or .svg
 * (rendered by Graphviz's dot layout). Without Graphviz (ag_graph_rendering false) a .png or
 * .svg call writes the text to the path ending in .dot instead and fails, saying so. */
AG_API bool ag_graph_save(const ag_tensor *t, const char *path);
/* Whether this build renders pictures (agrad was built with Graphviz's libgvc). */
AG_API bool ag_graph_rendering(void);

/* What a graph holds, for the benchmarking user (ag_graph_stats_of). Bytes are agrad's
 * memory: a tensor's header and, unless it is a view, its values; what an op kept beside
 * when agrad knows its size (cat's inputs list, where's condition record; not max's indices). */
enum { AG_GRAPH_LARGEST = 5 };
typedef struct ag_graph_tensor {
    size_t bytes; /* header and values */
    int64_t numel;
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    char label[64]; /* its name, else its grad_fn, else "leaf, requires grad" or "data ..." */
} ag_graph_tensor;
typedef struct ag_graph_stats {
    bool ok;            /* false after an error: everything else is zero */
    size_t tensors;     /* reachable tensors: ops + leaves */
    size_t ops;         /* tensors made by a recorded op (each has one grad_fn) */
    size_t leaves;      /* tensors without a grad_fn ... */
    size_t parameters;  /* ... of which module parameters */
    size_t bytes;       /* held by the graph's tensors and what its ops kept */
    size_t saved_bytes; /* the values a backward will read (not yet freed by one) */
    size_t grad_bytes;  /* the ->grad tensors the graph's tensors hold */
    size_t nlargest;    /* entries of largest: min(tensors, AG_GRAPH_LARGEST) */
    ag_graph_tensor largest[AG_GRAPH_LARGEST]; /* by bytes, the older first on a tie */
} ag_graph_stats;
/* The statistics of the graph of t; .ok false after an error (t not live, out of memory). */
AG_API ag_graph_stats ag_graph_stats_of(const ag_tensor *t);
/* Prints them readably to stream; false on error. */
AG_API bool ag_graph_print_stats(const ag_tensor *t, FILE *stream);

/* repr(t) as PyTorch prints it: "tensor([[-3.0000],\n        [-2.9000]])", with
 * requires_grad=True or grad_fn=<...> after it. ag_repr returns a string the caller
 * frees with ag_free() (or free() with the default allocator), NULL on error; ag_print
 * writes it and a newline to stdout. */
AG_API char *ag_repr(const ag_tensor *t);
AG_API void ag_print(const ag_tensor *t);
AG_API void ag_fprint(FILE *stream, const ag_tensor *t);

/* ------------------------------------------------------------------------------------ */
/* Recorded ops. Each returns a new tensor that records its inputs when one of them     */
/* requires grad; NULL on error (the message names the op and the shapes).              */

/* The call site. Each recorded op is a macro over a function ag_private_<op>_at, which
 * notes the file and line of the call once the arguments are worked out, runs the op and
 * forgets them, so that anomaly mode and the trace can say where a node was recorded: three
 * stores a call. A call made without the macro (through a function pointer, or with the
 * name in parentheses) has no site. Inside the library, calls keep the site of the user's
 * call that runs them. Private: do not use. */
typedef struct ag_private_site_t {
    const char *file; /* NULL: not known */
    int line;
} ag_private_site_t;
AG_API extern ag_private_site_t ag_private_site;
#define AG_PRIVATE_SITED(fn, params, args)                                                         \
    static inline ag_tensor *ag_private_##fn##_at(const char *file, int line,                      \
                                                  AG_PRIVATE_UNPAREN params)                       \
    {                                                                                              \
        ag_private_site.file = file;                                                               \
        ag_private_site.line = line;                                                               \
        ag_tensor *result = (fn)(AG_PRIVATE_UNPAREN args);                                         \
        ag_private_site.file = NULL;                                                               \
        return result;                                                                             \
    }
#if defined(AGRAD_BUILDING)
#define AG_PRIVATE_SITE_FN(fn) fn
#define AG_PRIVATE_SITE_ARGS
#else
#define AG_PRIVATE_SITE_FN(fn) ag_private_##fn##_at
#define AG_PRIVATE_SITE_ARGS   __FILE__, __LINE__,
#endif

/* Broadcasting binary ops: tensor-tensor, tensor-scalar, scalar-tensor. */
AG_API ag_tensor *ag_add_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_add_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_add_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_sub_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_sub_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_sub_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_mul_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_mul_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_mul_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_div_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_div_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_div_st(double a, const ag_tensor *b);
/* a ** b. With a scalar exponent the derivative is p * a^(p-1) (PowBackward0); with a
 * tensor exponent both sides get gradients (PowBackward1). */
AG_API ag_tensor *ag_pow_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_pow_ts(const ag_tensor *x, double exponent);
AG_API ag_tensor *ag_pow_st(double a, const ag_tensor *b);

/* A tensor (const or not, or NULL) selects op_tt or op_ts; a number, op_st. */
#define AG_PRIVATE_TENSOR_OR(x, tensor, number)                                                    \
    _Generic((x), ag_tensor *: (tensor), const ag_tensor *: (tensor), void *: (tensor),            \
             default: (number))
#define AG_PRIVATE_DISPATCH2(op, a, b)                                                             \
    AG_PRIVATE_TENSOR_OR(a, AG_PRIVATE_TENSOR_OR(b, op##_tt, op##_ts), op##_st)(a, b)
#define AG_PRIVATE_SITED2(op, a, b)                                                                \
    AG_PRIVATE_TENSOR_OR(                                                                          \
        a, AG_PRIVATE_TENSOR_OR(b, AG_PRIVATE_SITE_FN(op##_tt), AG_PRIVATE_SITE_FN(op##_ts)),      \
        AG_PRIVATE_SITE_FN(op##_st))                                                               \
    (AG_PRIVATE_SITE_ARGS a, b)
#define ag_add(a, b) AG_PRIVATE_SITED2(ag_add, a, b)
#define ag_sub(a, b) AG_PRIVATE_SITED2(ag_sub, a, b)
#define ag_mul(a, b) AG_PRIVATE_SITED2(ag_mul, a, b)
#define ag_div(a, b) AG_PRIVATE_SITED2(ag_div, a, b)
#define ag_pow(a, b) AG_PRIVATE_SITED2(ag_pow, a, b)

/* -x */
AG_API ag_tensor *ag_neg(const ag_tensor *x);
/* x.sum() and x.mean(): 0-d tensors. The mean of an empty tensor is nan, as in PyTorch. */
AG_API ag_tensor *ag_sum(const ag_tensor *x);
AG_API ag_tensor *ag_mean(const ag_tensor *x);
/* x.view(shape) / x.reshape(shape): the same data under another shape with the same
 * number of elements; one size may be -1 and is inferred. Shares x's storage. */
AG_API ag_tensor *ag_view(const ag_tensor *x, ag_shape shape);
AG_API ag_tensor *ag_reshape(const ag_tensor *x, ag_shape shape);

/* x.detach(): shares x's data, cut from the graph, requires_grad false. ag_data is
 * x.data, the same thing. */
AG_API ag_tensor *ag_detach(const ag_tensor *x);
AG_API ag_tensor *ag_data(const ag_tensor *x);

/* Elementwise functions: torch.exp, log, sqrt, abs, relu, sigmoid, tanh. log of 0 is
 * -inf and of a negative number nan, as in PyTorch (no error). */
AG_API ag_tensor *ag_exp(const ag_tensor *x);
AG_API ag_tensor *ag_log(const ag_tensor *x);
AG_API ag_tensor *ag_sqrt(const ag_tensor *x);
AG_API ag_tensor *ag_abs(const ag_tensor *x);
AG_API ag_tensor *ag_relu(const ag_tensor *x);
AG_API ag_tensor *ag_sigmoid(const ag_tensor *x);
AG_API ag_tensor *ag_tanh(const ag_tensor *x);
/* x.clamp(min, max): pass -INFINITY or INFINITY for a missing bound. The gradient is 1
 * where min <= x <= max, else 0. min > max gives max everywhere, as in PyTorch. */
AG_API ag_tensor *ag_clamp(const ag_tensor *x, double min, double max);
/* A user-defined elementwise op: y = f(x) with derivative df, recorded under name (for
 * grad_fn; the pointer must outlive the graph). */
AG_API ag_tensor *ag_map(const ag_tensor *x, float (*f)(float), float (*df)(float),
                         const char *name);

/* Reductions over dimension dim (negative counts from the end): x.sum(dim, keepdim),
 * x.mean(dim, keepdim). */
AG_API ag_tensor *ag_sum_dim(const ag_tensor *x, int dim, bool keepdim);
AG_API ag_tensor *ag_mean_dim(const ag_tensor *x, int dim, bool keepdim);
/* x.max() and x.min(): 0-d; the gradient goes to the chosen element (shared evenly among
 * ties, as PyTorch does). An empty x is an error. */
AG_API ag_tensor *ag_max(const ag_tensor *x);
AG_API ag_tensor *ag_min(const ag_tensor *x);
/* x.max(dim, keepdim) and x.min(dim, keepdim): the values; when indices is not NULL,
 * *indices receives the positions (a float tensor, not recorded). The gradient goes to
 * the chosen element of each slice (the first, on ties). */
AG_API ag_tensor *ag_max_dim(const ag_tensor *x, int dim, bool keepdim, ag_tensor **indices);
AG_API ag_tensor *ag_min_dim(const ag_tensor *x, int dim, bool keepdim, ag_tensor **indices);
/* torch.softmax(x, dim) and torch.log_softmax(x, dim): exp(x) / sum(exp(x)) along dim, and
 * its log, each slice's maximum subtracted first so that large values do not overflow
 * (softmax of [1000, 999] is [0.731, 0.269]). A slice holding NaN or +inf, or only -inf,
 * gives NaN, as in PyTorch. A 0-d x takes dim 0 or -1. */
AG_API ag_tensor *ag_softmax(const ag_tensor *x, int dim);
AG_API ag_tensor *ag_log_softmax(const ag_tensor *x, int dim);
/* torch.logsumexp(x, dim, keepdim): log(sum(exp(x))) along dim, computed the same stable
 * way; -inf for an empty slice or one of only -inf, +inf where the slice holds +inf. */
AG_API ag_tensor *ag_logsumexp(const ag_tensor *x, int dim, bool keepdim);

/* a @ b with torch.matmul's rules: vector . vector (0-d), matrix @ vector, vector @
 * matrix, matrix @ matrix, and batched (rank 3 or 4, the batch dimensions broadcast). */
AG_API ag_tensor *ag_matmul(const ag_tensor *a, const ag_tensor *b);
/* x.t() (rank <= 2) and x.transpose(dim0, dim1). agrad tensors are contiguous, so the
 * result is a copy, not a view: writes to it do not reach x. */
AG_API ag_tensor *ag_t(const ag_tensor *x);
AG_API ag_tensor *ag_transpose(const ag_tensor *x, int dim0, int dim1);
/* x.inverse() of a square matrix (or a batch of them); a singular matrix is an error. */
AG_API ag_tensor *ag_inverse(const ag_tensor *x);

/* len(x): the size of the first dimension (an error for a 0-d x: -1). */
AG_API int64_t ag_len(const ag_tensor *x);
/* x.select(dim, index); x[i] is ag_select(x, 0, i). Negative index counts from the end.
 * Along dim 0 the result is a view sharing x's storage, as in PyTorch; along another
 * dimension it is a copy (agrad tensors are contiguous). Gradients flow back either way.
 * Iterating over rows, as in `for x, y in zip(X, Y)`:
 *     for (int64_t i = 0; i < ag_len(X); i++) { x = ag_select(X, 0, i); y = ag_select(Y, 0, i); }
 */
AG_API ag_tensor *ag_select(const ag_tensor *x, int dim, int64_t index);
/* x[start:end] along dim, with Python's slice rules (negative counts from the end, out of
 * range is clipped). A view along dim 0, a copy along another dimension. */
AG_API ag_tensor *ag_slice(const ag_tensor *x, int dim, int64_t start, int64_t end);
/* torch.cat(xs, dim) and torch.stack(xs, dim) of n tensors: new storage. */
AG_API ag_tensor *ag_cat(ag_tensor *const *xs, int n, int dim);
AG_API ag_tensor *ag_stack(ag_tensor *const *xs, int n, int dim);

/* ------------------------------------------------------------------------------------ */
/* Shapes, selection and comparison. NULL on error, with a message naming the op, the   */
/* arguments and their shapes.                                                           */

/* x.unsqueeze(dim): a view of x (sharing its storage) with a dimension of size 1 inserted
 * at dim, in [-ndim-1, ndim]. A 4-D x is an error: agrad has at most AG_MAX_DIMS. */
AG_API ag_tensor *ag_unsqueeze(const ag_tensor *x, int dim);
/* x.squeeze(): a view of x without its dimensions of size 1. */
AG_API ag_tensor *ag_squeeze(const ag_tensor *x);
/* x.squeeze(dim): a view of x without dimension dim if its size is 1, else of x's shape. */
AG_API ag_tensor *ag_squeeze_dim(const ag_tensor *x, int dim);
/* x.flatten(start_dim, end_dim): a view of x with dimensions start_dim..end_dim merged
 * into one ((x, 0, -1): all of them; a 0-d x gives [1]). As in PyTorch, when there is
 * nothing to merge (start_dim == end_dim) it returns x itself. start after end: error. */
AG_API ag_tensor *ag_flatten(const ag_tensor *x, int start_dim, int end_dim);

/* torch.where(cond, a, b): a where cond is nonzero (NaN counts as nonzero), b elsewhere;
 * cond, a and b broadcast together, and a and b may each be a number. The gradient
 * reaches a where cond holds and b elsewhere, none reaches cond. Backward reads cond:
 * changing it in place before backward is an error, as in PyTorch. ag_where(cond, a, b)
 * picks ag_where_tt, _ts, _st or _ss by what a and b are. */
AG_API ag_tensor *ag_where_tt(const ag_tensor *cond, const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_where_ts(const ag_tensor *cond, const ag_tensor *a, double b);
AG_API ag_tensor *ag_where_st(const ag_tensor *cond, double a, const ag_tensor *b);
AG_API ag_tensor *ag_where_ss(const ag_tensor *cond, double a, double b);
#define ag_where(cond, a, b)                                                                       \
    AG_PRIVATE_TENSOR_OR(                                                                          \
        a,                                                                                         \
        AG_PRIVATE_TENSOR_OR(b, AG_PRIVATE_SITE_FN(ag_where_tt), AG_PRIVATE_SITE_FN(ag_where_ts)), \
        AG_PRIVATE_TENSOR_OR(b, AG_PRIVATE_SITE_FN(ag_where_st), AG_PRIVATE_SITE_FN(ag_where_ss))) \
    (AG_PRIVATE_SITE_ARGS cond, a, b)

/* a > b, a < b, a >= b, a <= b, a == b, a != b: a new tensor holding 1 where true and 0
 * where false (PyTorch's bool result, as a float mask), never recorded and never requiring
 * grad. a and b broadcast; either may be a number (rounded to float first, as PyTorch
 * does). NaN compares as in IEEE 754: only != holds. ag_gt(a, b) is a macro, as ag_add. */
AG_API ag_tensor *ag_gt_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_gt_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_gt_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_lt_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_lt_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_lt_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_ge_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_ge_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_ge_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_le_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_le_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_le_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_eq_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_eq_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_eq_st(double a, const ag_tensor *b);
AG_API ag_tensor *ag_ne_tt(const ag_tensor *a, const ag_tensor *b);
AG_API ag_tensor *ag_ne_ts(const ag_tensor *a, double b);
AG_API ag_tensor *ag_ne_st(double a, const ag_tensor *b);
#define ag_gt(a, b) AG_PRIVATE_DISPATCH2(ag_gt, a, b)
#define ag_lt(a, b) AG_PRIVATE_DISPATCH2(ag_lt, a, b)
#define ag_ge(a, b) AG_PRIVATE_DISPATCH2(ag_ge, a, b)
#define ag_le(a, b) AG_PRIVATE_DISPATCH2(ag_le, a, b)
#define ag_eq(a, b) AG_PRIVATE_DISPATCH2(ag_eq, a, b)
#define ag_ne(a, b) AG_PRIVATE_DISPATCH2(ag_ne, a, b)

/* x.argmax(), x.argmin(): the position of the max (min) in x flattened, as a 0-d float
 * tensor (exact below 2^24 elements), not recorded. Ties give the first position; NaN
 * counts as the max and the min (the first NaN), as in PyTorch. An empty x is an error.
 * The accuracy of a classifier reads:
 *     ag_mean(ag_eq(ag_argmax_dim(logits, 1, false), labels))   */
AG_API ag_tensor *ag_argmax(const ag_tensor *x);
AG_API ag_tensor *ag_argmin(const ag_tensor *x);
/* x.argmax(dim, keepdim), x.argmin(dim, keepdim): the positions along dim, the indices
 * ag_max_dim gives. An empty dimension dim is an error. */
AG_API ag_tensor *ag_argmax_dim(const ag_tensor *x, int dim, bool keepdim);
AG_API ag_tensor *ag_argmin_dim(const ag_tensor *x, int dim, bool keepdim);

/* ------------------------------------------------------------------------------------ */
/* In-place writes. On a leaf that requires grad they are an error unless inside a      */
/* no_grad scope, as in PyTorch. Each returns t, or NULL on error (t is then unchanged). */
/* Writing t from a tensor whose memory partly overlaps t's (a row of t into t) is an    */
/* error, as in PyTorch; the same memory with the same shape is fine.                    */

/* t.data = src: copies src's values into t (same number of elements). Allowed on
 * leaves that require grad, which is the point. */
AG_API ag_tensor *ag_set_data(ag_tensor *t, const ag_tensor *src);
/* t.zero_(), t.fill_(value), t.copy_(src) (src broadcast to t's shape). When src
 * requires grad, copy_ is recorded (CopyBackwards: t joins the graph and the gradient
 * flows to src), as in PyTorch, if t is a tensor of its own storage made after src;
 * into a view, or into a tensor made before src, it is refused (agrad's graph may only
 * point to older tensors, which the release rule frees later). */
AG_API ag_tensor *ag_zero_(ag_tensor *t);
AG_API ag_tensor *ag_fill_(ag_tensor *t, double value);
AG_API ag_tensor *ag_copy_(ag_tensor *t, const ag_tensor *src);

/* Each recorded op as a macro that notes its call site (see AG_PRIVATE_SITED above). */
AG_PRIVATE_SITED(ag_add_tt, (const ag_tensor *a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_add_ts, (const ag_tensor *a, double b), (a, b))
AG_PRIVATE_SITED(ag_add_st, (double a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_sub_tt, (const ag_tensor *a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_sub_ts, (const ag_tensor *a, double b), (a, b))
AG_PRIVATE_SITED(ag_sub_st, (double a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_mul_tt, (const ag_tensor *a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_mul_ts, (const ag_tensor *a, double b), (a, b))
AG_PRIVATE_SITED(ag_mul_st, (double a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_div_tt, (const ag_tensor *a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_div_ts, (const ag_tensor *a, double b), (a, b))
AG_PRIVATE_SITED(ag_div_st, (double a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_pow_tt, (const ag_tensor *a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_pow_ts, (const ag_tensor *a, double b), (a, b))
AG_PRIVATE_SITED(ag_pow_st, (double a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_where_tt, (const ag_tensor *cond, const ag_tensor *a, const ag_tensor *b),
                 (cond, a, b))
AG_PRIVATE_SITED(ag_where_ts, (const ag_tensor *cond, const ag_tensor *a, double b), (cond, a, b))
AG_PRIVATE_SITED(ag_where_st, (const ag_tensor *cond, double a, const ag_tensor *b), (cond, a, b))
AG_PRIVATE_SITED(ag_where_ss, (const ag_tensor *cond, double a, double b), (cond, a, b))
AG_PRIVATE_SITED(ag_neg, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_sum, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_mean, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_exp, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_log, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_sqrt, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_abs, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_relu, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_sigmoid, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_tanh, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_max, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_min, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_t, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_inverse, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_squeeze, (const ag_tensor *x), (x))
AG_PRIVATE_SITED(ag_view, (const ag_tensor *x, ag_shape shape), (x, shape))
AG_PRIVATE_SITED(ag_reshape, (const ag_tensor *x, ag_shape shape), (x, shape))
AG_PRIVATE_SITED(ag_clamp, (const ag_tensor *x, double min, double max), (x, min, max))
AG_PRIVATE_SITED(ag_map,
                 (const ag_tensor *x, float (*f)(float), float (*df)(float), const char *name),
                 (x, f, df, name))
AG_PRIVATE_SITED(ag_sum_dim, (const ag_tensor *x, int dim, bool keepdim), (x, dim, keepdim))
AG_PRIVATE_SITED(ag_mean_dim, (const ag_tensor *x, int dim, bool keepdim), (x, dim, keepdim))
AG_PRIVATE_SITED(ag_max_dim, (const ag_tensor *x, int dim, bool keepdim, ag_tensor **indices),
                 (x, dim, keepdim, indices))
AG_PRIVATE_SITED(ag_min_dim, (const ag_tensor *x, int dim, bool keepdim, ag_tensor **indices),
                 (x, dim, keepdim, indices))
AG_PRIVATE_SITED(ag_softmax, (const ag_tensor *x, int dim), (x, dim))
AG_PRIVATE_SITED(ag_log_softmax, (const ag_tensor *x, int dim), (x, dim))
AG_PRIVATE_SITED(ag_logsumexp, (const ag_tensor *x, int dim, bool keepdim), (x, dim, keepdim))
AG_PRIVATE_SITED(ag_matmul, (const ag_tensor *a, const ag_tensor *b), (a, b))
AG_PRIVATE_SITED(ag_transpose, (const ag_tensor *x, int dim0, int dim1), (x, dim0, dim1))
AG_PRIVATE_SITED(ag_select, (const ag_tensor *x, int dim, int64_t index), (x, dim, index))
AG_PRIVATE_SITED(ag_slice, (const ag_tensor *x, int dim, int64_t start, int64_t end),
                 (x, dim, start, end))
AG_PRIVATE_SITED(ag_cat, (ag_tensor *const *xs, int n, int dim), (xs, n, dim))
AG_PRIVATE_SITED(ag_stack, (ag_tensor *const *xs, int n, int dim), (xs, n, dim))
AG_PRIVATE_SITED(ag_unsqueeze, (const ag_tensor *x, int dim), (x, dim))
AG_PRIVATE_SITED(ag_squeeze_dim, (const ag_tensor *x, int dim), (x, dim))
AG_PRIVATE_SITED(ag_flatten, (const ag_tensor *x, int start_dim, int end_dim),
                 (x, start_dim, end_dim))
AG_PRIVATE_SITED(ag_copy_, (ag_tensor * t, const ag_tensor *src), (t, src))
#if !defined(AGRAD_BUILDING)
#define ag_neg(...)         ag_private_ag_neg_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_sum(...)         ag_private_ag_sum_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_mean(...)        ag_private_ag_mean_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_exp(...)         ag_private_ag_exp_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_log(...)         ag_private_ag_log_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_sqrt(...)        ag_private_ag_sqrt_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_abs(...)         ag_private_ag_abs_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_relu(...)        ag_private_ag_relu_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_sigmoid(...)     ag_private_ag_sigmoid_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_tanh(...)        ag_private_ag_tanh_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_max(...)         ag_private_ag_max_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_min(...)         ag_private_ag_min_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_t(...)           ag_private_ag_t_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_inverse(...)     ag_private_ag_inverse_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_squeeze(...)     ag_private_ag_squeeze_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_view(...)        ag_private_ag_view_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_reshape(...)     ag_private_ag_reshape_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_clamp(...)       ag_private_ag_clamp_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_map(...)         ag_private_ag_map_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_sum_dim(...)     ag_private_ag_sum_dim_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_mean_dim(...)    ag_private_ag_mean_dim_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_max_dim(...)     ag_private_ag_max_dim_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_min_dim(...)     ag_private_ag_min_dim_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_softmax(...)     ag_private_ag_softmax_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_log_softmax(...) ag_private_ag_log_softmax_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_logsumexp(...)   ag_private_ag_logsumexp_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_matmul(...)      ag_private_ag_matmul_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_transpose(...)   ag_private_ag_transpose_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_select(...)      ag_private_ag_select_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_slice(...)       ag_private_ag_slice_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_cat(...)         ag_private_ag_cat_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_stack(...)       ag_private_ag_stack_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_unsqueeze(...)   ag_private_ag_unsqueeze_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_squeeze_dim(...) ag_private_ag_squeeze_dim_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_flatten(...)     ag_private_ag_flatten_at(__FILE__, __LINE__, __VA_ARGS__)
#define ag_copy_(...)       ag_private_ag_copy__at(__FILE__, __LINE__, __VA_ARGS__)
#endif
/* t.add_(x), t.sub_(x), t.mul_(x), t.div_(x): x a tensor broadcast to t's shape, or
 * a number. */
AG_API ag_tensor *ag_iadd_tt(ag_tensor *t, const ag_tensor *x);
AG_API ag_tensor *ag_iadd_ts(ag_tensor *t, double x);
AG_API ag_tensor *ag_isub_tt(ag_tensor *t, const ag_tensor *x);
AG_API ag_tensor *ag_isub_ts(ag_tensor *t, double x);
AG_API ag_tensor *ag_imul_tt(ag_tensor *t, const ag_tensor *x);
AG_API ag_tensor *ag_imul_ts(ag_tensor *t, double x);
AG_API ag_tensor *ag_idiv_tt(ag_tensor *t, const ag_tensor *x);
AG_API ag_tensor *ag_idiv_ts(ag_tensor *t, double x);
/* t.add_(x, alpha=alpha): t + alpha * x, x broadcast to t's shape, with one rounding (a
 * fused multiply-add, as PyTorch's CPU kernel and its SGD step compute it). The update
 * that makes no tensor: AG_NO_GRAD { ag_add_scaled_(w, w->grad, -lr); }. */
AG_API ag_tensor *ag_add_scaled_(ag_tensor *t, const ag_tensor *x, double alpha);
#define AG_PRIVATE_DISPATCH_INPLACE(op, t, x) AG_PRIVATE_TENSOR_OR(x, op##_tt, op##_ts)(t, x)
#define ag_add_(t, x)                         AG_PRIVATE_DISPATCH_INPLACE(ag_iadd, t, x)
#define ag_sub_(t, x)                         AG_PRIVATE_DISPATCH_INPLACE(ag_isub, t, x)
#define ag_mul_(t, x)                         AG_PRIVATE_DISPATCH_INPLACE(ag_imul, t, x)
#define ag_div_(t, x)                         AG_PRIVATE_DISPATCH_INPLACE(ag_idiv, t, x)

/* ------------------------------------------------------------------------------------ */
/* Autograd                                                                              */

/* t.backward(): t must have one element and require grad. Gradients accumulate into the
 * ->grad of the leaves that require grad. Frees the graph's saved values: a second
 * backward through it is an error. Returns false on error, having changed no ->grad. */
AG_API bool ag_backward(const ag_tensor *t);
/* t.backward(gradient, retain_graph): gradient (same shape as t) may be NULL for a
 * one-element t; retain_graph keeps the graph for another backward. */
AG_API bool ag_backward_with(const ag_tensor *t, const ag_tensor *gradient, bool retain_graph);
/* t.retain_grad(): a non-leaf t keeps its gradient in t->grad after backward. */
AG_API ag_tensor *ag_retain_grad(ag_tensor *t);

/* Replay: a recorded step run again without recording or allocating. ag_replay_new keeps
 * the graph of loss (one element, recorded, not yet released); inputs, n of them (n may
 * be 0), are leaves of that graph whose values each run replaces (the data x and y).
 * Each ag_replay_run(r, values, n) copies values[k] into inputs[k] (the same shape, else an
 * error naming both), runs every recorded op forward again into the tensor it made, then
 * backward as ag_backward(loss) would: the same floats, gradients accumulated into the
 * ->grad of the leaves that require grad. Every other leaf (w and b after an optimizer's
 * step) is read as it is now. A graph holding an op a replay cannot run yet, or reading a
 * tensor computed from the graph without being recorded (under no_grad, a comparison)
 * that is not an input, is refused by ag_replay_new. The replay belongs to the caller:
 * ag_replay_free it before releasing its graph (a run after the release is an error).
 *     ag_replay *step = ag_replay_new(loss, (ag_tensor *[]){x, y}, 2);
 *     for (...) { ag_replay_run(step, (ag_tensor *[]){X_i, Y_i}, 2); ...step, zero... }
 * ag_replay_new returns NULL and ag_replay_run false on error (no ->grad changed). */
typedef struct ag_replay ag_replay;
AG_API ag_replay *ag_replay_new(const ag_tensor *loss, ag_tensor *const *inputs, int n);
AG_API bool ag_replay_run(ag_replay *r, ag_tensor *const *values, int n);
AG_API void ag_replay_free(ag_replay *r);

/* Seeing backward. ag_set_trace(stderr) prints every backward pass as it runs: each node
 * in the order the pass takes them, the gradient arriving, the local rule it applies
 * ("d(a*b)/da = b"), what each input receives and its total so far, and what reaches each
 * .grad. Tensors show by name (ag_set_name); small ones with their values, large ones as
 * min, max and norm. NULL turns it off (the default). Returns the stream before.
 *
 * ag_set_detect_anomaly(true) is torch.autograd.set_detect_anomaly(True): the first nan
 * or inf that a recorded op produces, in forward or in backward, is an error naming the op,
 * the file and line that recorded it (noted by the op macros), its tensors and their
 * values; a backward pass stopped so gives no .grad anything. Returns the setting before.
 * Both are free when off, and cannot be changed from inside a backward pass. */
AG_API FILE *ag_set_trace(FILE *stream);
AG_API bool ag_set_detect_anomaly(bool on);
AG_API bool ag_is_anomaly_enabled(void);

/* with torch.no_grad(): between begin and end (nestable) ops record nothing and their
 * results do not require grad. Each begin needs its end; an unmatched end is an error. */
AG_API void ag_no_grad_begin(void);
AG_API void ag_no_grad_end(void);
AG_API bool ag_is_grad_enabled(void);
/* AG_NO_GRAD { ... } runs the block inside a no_grad scope. Leave the block normally:
 * a break, goto or return out of it skips the end of the scope. */
#define AG_NO_GRAD                                                                                 \
    for (int ag_private_once = (ag_no_grad_begin(), 1); ag_private_once;                           \
         ag_private_once = (ag_no_grad_end(), 0))

/* ------------------------------------------------------------------------------------ */
/* Memory                                                                                */

/* A position in the arena of tensors. */
typedef struct ag_mark {
    size_t private_pos;      /* number of tensors made before the mark */
    uint64_t private_serial; /* serial of the next tensor: tells a stale mark */
} ag_mark;

/* The current position: tensors made after it are freed by ag_release(mark). */
AG_API ag_mark ag_mark_now(void);

/* Frees every tensor made after mark (and their gradients); their memory is kept for
 * reuse. Tensors made before mark are untouched. A stale mark is a no-op: one that was
 * released past (a release to an earlier mark came between), or made before
 * ag_shutdown. */
AG_API void ag_release(ag_mark mark);

/* Frees every tensor and all memory agrad holds, and resets the error and warning
 * handlers (forgetting the call sites warned at), no_grad depth and random generator (the
 * allocator and the checked mode stay). agrad can be used again afterwards; tensors from
 * before are then reported as such when used. */
AG_API void ag_shutdown(void);

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

/* Called with the full message of every error; userdata is what was registered. */
typedef void (*ag_error_fn)(const char *message, void *userdata);

/* Installs fn as the error handler and returns the previous one. NULL means "record
 * the message and return": the failing call then returns NULL, false or NAN. The
 * default handler prints "agrad: <message>" to stderr and exits with status 1. fn may
 * return, exit, longjmp out of the failing call or call ag_shutdown(); an error of a call
 * fn itself makes calls fn again. */
AG_API ag_error_fn ag_set_error_handler(ag_error_fn fn, void *userdata);

/* The message of the most recent error, or "" if none since ag_clear_error(). The
 * string is owned by agrad and valid until the next error. */
AG_API const char *ag_last_error(void);
AG_API void ag_clear_error(void);

/* Called with the text of each warning (a PyTorch UserWarning, in its words). */
typedef void (*ag_warning_fn)(const char *message, void *userdata);

/* Installs fn as the warning handler and returns the previous one. The default prints
 * "agrad: UserWarning: <message>" to stderr and returns; NULL shows nothing. A warning is
 * shown once per call site and message, as Python's default filter does: a loss called
 * from one line in a loop warns once. ag_shutdown forgets the sites seen and restores the
 * default. */
AG_API ag_warning_fn ag_set_warning_handler(ag_warning_fn fn, void *userdata);

/* ------------------------------------------------------------------------------------ */
/* gradcheck                                                                             */

/* The function gradcheck differentiates: from inputs[0..n-1] to one tensor. */
typedef ag_tensor *(*ag_fn)(ag_tensor *const *inputs, void *userdata);

/* Settings; zero fields take the defaults. */
typedef struct ag_gradcheck_opts {
    double eps;  /* finite-difference step, relative to max(1, |x|); default 1e-2 */
    double atol; /* |analytical - numerical| <= atol + rtol * |numerical|; default 1e-3 */
    double rtol; /* default 1e-2 */
} ag_gradcheck_opts;

/* What gradcheck found: the worst element of the Jacobian. */
typedef struct ag_gradcheck_result {
    bool passed;
    int input;              /* which input holds the worst element */
    int64_t input_index;    /* its flat index in that input */
    int64_t output_index;   /* the flat index of the output element differentiated */
    double analytical;      /* d output / d input there, from backward */
    double numerical;       /* the same from finite differences */
    double eps, atol, rtol; /* the settings used */
    char report[512];       /* all of the above as readable text */
} ag_gradcheck_result;

/* torch.autograd.gradcheck: compares the full Jacobian of fn at inputs, from backward,
 * with a fourth-order central finite difference of float32 forward values. Inputs that
 * do not require grad are not checked. Returns whether every element is within the
 * tolerances; result (may be NULL) gets the details. fn must not change its inputs and
 * must return (not longjmp). Gradients are taken with respect to the inputs themselves,
 * as torch.autograd.grad does: an input may be made by other ops, and no ->grad is read
 * or changed. All tensors it makes are released before it returns. False, with an
 * error, for bad arguments (eps, atol, rtol must be finite and > 0, or 0 for the
 * default; inputs finite) or when fn fails, saying at which input element. */
AG_API bool ag_gradcheck(ag_fn fn, ag_tensor *const *inputs, int n, void *userdata,
                         const ag_gradcheck_opts *opts, ag_gradcheck_result *result);

/* ------------------------------------------------------------------------------------ */
/* Checking memory, the allocation hook, counters                                       */

/* Checked mode: released memory is not reused until 256 MiB (AGRAD_QUARANTINE_MB) of
 * releases have passed, so that a released tensor used again is always reported; under
 * AddressSanitizer, released memory is poisoned in either mode. On by default in debug
 * (-O0) and sanitizer builds; the environment variable AGRAD_CHECKED=0 or 1 overrides
 * the build, and ag_set_checked the environment. In the default fast mode a released
 * tensor is reported until its memory is reused by newer tensors; then a stale pointer
 * may read the newer tensor. Returns the previous setting. */
AG_API bool ag_set_checked(bool on);
AG_API bool ag_is_checked(void);

/* The hook every system allocation goes through, realloc-like: p NULL allocates, size 0
 * frees (and returns NULL), otherwise p is resized; NULL means out of memory, which
 * agrad reports as an error naming the op and the shape. The default calls realloc and
 * free. fn NULL restores the default. Blocks are freed through the hook current at that
 * time, so a hook set while agrad holds memory must free blocks of the previous one (a
 * wrapper around realloc that counts or fails on purpose); to use another heap, set it
 * before the first tensor or after ag_shutdown. */
typedef void *(*ag_realloc_fn)(void *p, size_t size, void *userdata);
AG_API void ag_set_allocator(ag_realloc_fn fn, void *userdata);
/* Frees memory agrad returned to the caller (ag_repr's string) through the hook. */
AG_API void ag_free(void *p);

/* Counters for tests and benchmarks. */
typedef struct ag_stats {
    size_t live_tensors;   /* tensors made and not released */
    size_t parameters;     /* modules' parameters alive (outside the tape, see agrad_nn.h) */
    size_t arena_bytes;    /* bytes the arenas hold from the system */
    size_t system_allocs;  /* calls agrad made to the allocation hook for memory */
    size_t backward_nodes; /* tensors the last backward pass visited: its graph's size */
    bool checked;          /* checked mode is on */
} ag_stats;
AG_API ag_stats ag_memory_stats(void);

#ifdef __cplusplus
}
#endif
#endif /* AGRAD_H */
