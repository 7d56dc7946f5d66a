/* Private to the agrad library: the shared pieces its files use. Not installed. */
#ifndef AGRAD_INTERNAL_H
#define AGRAD_INTERNAL_H

#include "agrad.h"

#include <stdarg.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define AG__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AG__ASAN 1
#endif
#endif

#define AG__MAGIC_LIVE 0x41474c56u /* "AGLV" */
#define AG__MAGIC_DEAD 0x41474444u /* "AGDD" */

/* agrad's record of a tensor: what the graph needs to know of it. It lives in the same
 * memory, right after the tensor's public fields; node(t) is t's. */
typedef struct ag__node {
    uint32_t magic;          /* AG__MAGIC_LIVE; AG__MAGIC_DEAD once released */
    uint16_t op;             /* the op that made the tensor (its ag__ops index); 0: a leaf */
    uint16_t flags;          /* AG__F_* below */
    uint64_t version;        /* in-place writes to the storage so far (kept on the base) */
    uint64_t src_version[2]; /* the inputs' versions when the op was recorded */
    ag_tensor *src[2];       /* the op's inputs */
    ag_tensor *base;         /* the tensor that owns the storage: itself, unless a view */
    float *gbuf;             /* d loss / d tensor, during a backward pass */
    uint64_t serial;         /* creation order: larger than every input's */
    void *ctx;               /* more that the op's backward needs, in the arena */
    union {                  /* the op's arguments */
        float number;        /* x + s, x * s, ...: the number; x ^ p: the exponent */
        int64_t dim;         /* sum, mean, max, min over a dimension */
        struct {
            float lo, hi;
        } clamp;
        struct {
            int64_t dim, start;
        } take; /* select, slice */
        struct {
            int64_t dim, count;
        } join; /* cat, stack */
        struct {
            int64_t dim0, dim1;
        } swap; /* t, transpose */
        struct {
            float (*df)(float);
            const char *name;
        } map; /* ag_map: the derivative and the grad_fn name */
    } arg;
} ag__node;

static inline ag__node *node(const ag_tensor *t) { return (ag__node *)(t + 1); }

/* Tensors are allocated at multiples of AG__ALIGN bytes; each begins with its public
 * fields and its node, AG__HEADER bytes, and its storage follows (memory.c). */
#define AG__ALIGN 32
#define AG__HEADER                                                                                 \
    ((sizeof(ag_tensor) + sizeof(ag__node) + AG__ALIGN - 1) & ~(size_t)(AG__ALIGN - 1))
/* Whether t's storage is its own, right after its header, and of at most AG__ALIGN / 8
 * floats: then its memory holds as many floats again past them (memory.c keeps this: the
 * tape rounds a tensor up to AG__ALIGN bytes, and the grad pool's blocks are at least
 * AG__HEADER + AG__ALIGN bytes), where a backward pass puts its gradient. */
static inline bool ag__has_spare_room(const ag_tensor *t)
{
    return t->numel <= AG__ALIGN / (2 * (int64_t)sizeof(float)) &&
           (const char *)t->data == (const char *)t + AG__HEADER;
}

/* ag__node.flags */
enum {
    AG__F_RETAIN_GRAD = 1 << 0, /* non-leaf keeps its gradient (ag_retain_grad) */
    AG__F_FREED = 1 << 1,       /* backward ran without retain_graph: saved values gone */
    AG__F_PENDING = 1 << 2,     /* has a gradient (gbuf) in the current backward pass */
    AG__F_GRAD = 1 << 3,        /* this tensor is another's ->grad: in the grad pool */
    AG__F_SAVED_A = 1 << 4,     /* backward will read input 0 (see ag__op.needs) */
    AG__F_SAVED_B = 1 << 5,     /* ... input 1 */
    AG__F_SAVED_OUT = 1 << 6,   /* ... the op's own result */
    AG__F_SAVED_CTX = 1 << 7,   /* ... what the op kept that is no tensor (no version) */
    AG__F_EDGE_A = 1 << 8,      /* input 0 required grad when recorded: it gets a gradient */
    AG__F_EDGE_B = 1 << 9,      /* ... input 1 */
    AG__F_FRESH = 1 << 10,      /* its ->grad was made by the current backward pass */
    AG__F_SAVED_EXT = 1 << 11,  /* backward will read a third tensor, kept as an ag__saved */
    AG__F_DERIVED = 1 << 12,    /* a leaf computed by an op that was not recorded */
    AG__F_SET_ASIDE = 1 << 13,  /* a replay set gbuf aside for its next pass */
    AG__F_GIVEN = 1 << 14,      /* its gbuf became an input's, unchanged (engine.c: hand_over) */
};

/* A tensor an op's backward reads besides its two inputs (where's condition), which
 * takes no gradient: kept in node(out)->ctx with its version when the op was recorded,
 * and checked before backward like the inputs (AG__EXT in optable.h). */
typedef struct ag__saved {
    ag_tensor *t;
    uint64_t version;
    const char *role; /* what the op calls it, for the message */
} ag__saved;

#define AG__UNUSED(x) ((void)(x))
#if defined(__GNUC__)
#define AG__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define AG__INLINE       static inline __attribute__((always_inline))
#define AG__RARE         __attribute__((noinline, cold)) /* kept out of its caller's way */
#define AG__OUTLINE      __attribute__((noinline))       /* the same, for a path that is not rare */
#else
#define AG__RARE
#define AG__OUTLINE
#define AG__PRINTF(f, a)
#define AG__INLINE static inline
#endif

/* For loops of fmaf (the optimizers' updates, add_): on x86-64 Linux the compiler builds
 * the function twice, once with FMA instructions (fmaf inline, the loop vectorisable) and
 * once without (a call to libm's fmaf per element), and the loader picks one by the CPU.
 * fmaf rounds once either way, so both give the same floats. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define AG__FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define AG__FMA_CLONES
#endif

/* The largest number of elements a tensor may have: its bytes fit in int64_t, and so
 * does any product of some of its sizes. */
#define AG__NUMEL_MAX (INT64_MAX / (int64_t)sizeof(float))

/* ---- errors (error.c) ---- */

/* Formats the message, stores it for ag_last_error and calls the handler, which may not
 * return (it may exit, longjmp out or call ag_shutdown): call it as the last step, once
 * the library is consistent again and nothing is left to free. Inside a deferral scope
 * the handler is called only when the outermost scope ends. Returns NULL, so that a
 * function returning a pointer can end with `return ag__error(...);`. */
void *ag__error(const char *fmt, ...) AG__PRINTF(1, 2);

/* A deferral scope, for calls with many steps (backward, gradcheck): errors inside it are
 * recorded, and the handler is called once, with the last message, by the outermost
 * ag__defer_end, when the call has put everything back in order. */
void ag__defer_begin(void);
void ag__defer_end(void);
/* Whether a deferral scope is open (agrad is inside backward or gradcheck). */
bool ag__deferring(void);
/* What a call refused while deferring says after its name. */
#define AG__INSIDE                                                                                 \
    "called from inside ag_backward, ag_gradcheck or a dataset's get or len (by a function "       \
    "they run); ignored"

/* What a pointer given as a tensor is (ag__liveness_of decides it, in memory.c). */
typedef enum ag__liveness {
    AG__LIVE,
    AG__NULL,
    AG__RELEASED,      /* a tensor freed by ag_release (dependable in checked mode) */
    AG__RELEASED_GRAD, /* the ->grad of a released tensor, or a freed module's parameter */
    AG__NOT_HELD,      /* memory agrad does not hold: freed by ag_shutdown, or not agrad's */
} ag__liveness;

/* Reports why an argument of op named role (role[k] when k >= 0) is not a live tensor, in
 * the words of the argument checks: "mul: argument b is a released tensor". A NULL is
 * reported only when no error is recorded yet. Returns false. */
bool ag__check_failed(ag__liveness why, const char *op, const char *role, int k);

/* Writes "[2, 3]" (or "[]" for a scalar) into buf: at most AG_MAX_DIMS + 1 sizes. */
enum { AG__SHAPE_STR = 208, AG__NAME_SHOWN = 64 };
const char *ag__shape_str(char buf[AG__SHAPE_STR], int ndim, const int64_t *shape);
/* t's shape and, when it has one, its name, for messages: "[2, 3] (w)"; a name longer than
 * AG__NAME_SHOWN bytes is cut, with "..." (name.c). */
const char *ag__tensor_str(char buf[AG__SHAPE_STR], const ag_tensor *t);
/* x as Python's repr(float) writes it, for messages in the words of PyTorch's Python code
 * ("Invalid learning rate: -0.1"): "0.1", "1e-05", "1e+20", "1.0", "-inf", "nan". Returns
 * buf, or a string constant. */
enum { AG__PYFLOAT = 80 };
const char *ag__pyfloat(char buf[AG__PYFLOAT], double x);

/* A growing string in memory from the allocation hook, for text agrad builds (repr, the
 * graph's DOT text). After a failed allocation, writes are dropped and failed says so: the
 * writer checks once, at the end, and frees s. */
typedef struct ag__text {
    char *s; /* NUL-terminated once anything was written */
    size_t len, cap;
    bool failed;
} ag__text;
void ag__put(ag__text *t, const char *fmt, ...) AG__PRINTF(2, 3);
void ag__put_n(ag__text *t, const char *s, size_t n);

/* Restores the default handler and clears the message (ag_shutdown). */
void ag__error_reset(void);

/* ---- memory (memory.c) ---- */
/* Allocation functions report nothing: they return NULL and the caller, which knows the
 * op and the shapes, reports. */

/* Through the allocation hook (ag_set_allocator); count system allocations. NULL when
 * the hook refuses (p is then untouched). */
void *ag__malloc(size_t size);
void *ag__realloc(void *p, size_t size);
void ag__free(void *p);
/* items (an array of *cap items of size bytes) with room for need items: the same
 * pointer, or a larger array (the old one is then freed), or NULL with items untouched. */
void *ag__grow(void *items, size_t *cap, size_t need, size_t size);

/* A new live tensor on the tape, a leaf of the given shape (numel its checked number of
 * elements) with its storage after the header, or sharing base's storage at data when
 * data is not NULL. NULL after an error naming op when out of memory. */
ag_tensor *ag__alloc_tensor(const char *op, int ndim, const int64_t *shape, int64_t numel,
                            const ag_tensor *base, float *data);
/* Memory that lives as long as the tensor made last, for what its backward needs
 * (node(t)->ctx): call it right after making the tensor. NULL when out of memory. */
void *ag__ctx_alloc(size_t bytes);

/* A ->grad for t: zeros of t's shape, from the grad pool. NULL when out of memory. */
ag_tensor *ag__new_grad(const ag_tensor *t);
/* Frees t->grad back to the pool and sets it to NULL. */
void ag__free_grad(ag_tensor *t);
/* A long-lived leaf outside the tape (a module's parameter), in the grad pool: zeros of
 * the shape, with a serial like any tensor; no release touches it. NULL when out of
 * memory. ag__free_persistent frees it and its ->grad, at once, or, while a live tensor on
 * the tape still refers to it (shares its storage, or has it as an input), at the release
 * that frees the last such tensor. */
ag_tensor *ag__alloc_persistent(int ndim, const int64_t *shape, int64_t numel);
void ag__free_persistent(ag_tensor *t);

/* Scratch bytes for one backward pass, freed all at once when the pass ends; NULL when
 * out of memory, which ag__scratch_failed then says until the reset. */
void *ag__scratch(size_t bytes);
static inline float *ag__scratch_floats(int64_t n)
{
    return ag__scratch((size_t)n * sizeof(float));
}
extern bool ag__scratch_fail; /* read it through ag__scratch_failed */
static inline bool ag__scratch_failed(void) { return ag__scratch_fail; }
void ag__scratch_reset(void);

/* What a pointer given as a tensor is, decided without reading memory agrad does not
 * hold: a pointer from before ag_shutdown is safe to ask about. */
ag__liveness ag__liveness_of(const ag_tensor *t);
/* Checks an argument of op named role ("self", "other", ...): true when t is a live
 * tensor; else false, after ag__check_failed's report. */
bool ag__check_slow(const ag_tensor *t, const char *op, const char *role);
bool ag__check_at_slow(const ag_tensor *t, const char *op, const char *list, int k);
/* Most tensors an op is given were made lately, in the chunk tensors (or gradients) are
 * made in now: a header position there holding a live node is a live tensor, which the
 * checks below tell inline; anything else (and everything under AddressSanitizer, which
 * must not read poisoned memory) takes the whole check. [0]: the tape's chunk, [1]: the
 * grad pool's (memory.c keeps them). */
typedef struct ag__chunk {
    const char *base;
    size_t size;
} ag__chunk;
extern ag__chunk ag__hot_chunks[2];
static inline bool ag__quick_live(const ag_tensor *t)
{
#ifndef AG__ASAN
    for (int k = 0; k < 2; k++) {
        size_t off = (size_t)((uintptr_t)t - (uintptr_t)ag__hot_chunks[k].base);
        if (off < ag__hot_chunks[k].size && ag__hot_chunks[k].size - off >= AG__HEADER &&
            off % AG__ALIGN == 0)
            return node(t)->magic == AG__MAGIC_LIVE;
    }
#else
    AG__UNUSED(t);
#endif
    return false;
}
static inline bool ag__check(const ag_tensor *t, const char *op, const char *role)
{
    return ag__quick_live(t) || ag__check_slow(t, op, role);
}
/* The same for element k of an array argument named list ("tensors[3]"). */
static inline bool ag__check_at(const ag_tensor *t, const char *op, const char *list, int k)
{
    return ag__quick_live(t) || ag__check_at_slow(t, op, list, k);
}
/* ag__check_at for each of the n tensors of list; false after the first one's error. */
bool ag__check_list(ag_tensor *const *t, int n, const char *op, const char *list);
/* ag__check_at for a tensor kept since it was given, with the serial it had then (an
 * optimizer's parameters, a dataset's tensors): a live tensor of another serial is a newer
 * one in the memory of the one given, which is reported as released. */
bool ag__check_serial_at(const ag_tensor *t, uint64_t serial, const char *op, const char *list,
                         int k);

/* In items, n records of size bytes that each begin with a uint64_t serial, in serial
 * order: the index of the first whose serial is >= serial (n if none). For the tables kept
 * beside tensors (names, call sites). */
size_t ag__serial_bound(const void *items, size_t n, size_t size, uint64_t serial);

/* Frees all memory (ag_shutdown); fills the memory fields of st. */
void ag__memory_reset(void);
void ag__memory_stats(ag_stats *st);

/* The live objects of one kind (optimizers, loaders, datasets agrad made), so that a freed
 * one passed again is recognised and reported instead of read. ag__live_add is false when
 * out of memory (no error set); ag__live_has is false for NULL; ag__live_clear frees the
 * list, not the objects. */
typedef struct ag__live {
    void **p;
    size_t n, cap;
} ag__live;
bool ag__live_add(ag__live *l, void *p);
bool ag__live_has(const ag__live *l, const void *p);
/* Checks an object argument of op: true when p is in l; else false after the error "op: the
 * <kind> is not a live <kind> (freed by <freer> or ag_shutdown, or not made by agrad)", or
 * "op: the <kind> is NULL" (only when no error is recorded: a NULL from a failed call was
 * reported there). */
bool ag__live_check(const ag__live *l, const void *p, const char *op, const char *kind,
                    const char *freer);
void ag__live_remove(ag__live *l, const void *p);
void ag__live_clear(ag__live *l);

/* ---- names (name.c) ---- */

/* t's name (ag_set_name's, else a module parameter's dotted name written into buf), or
 * NULL. */
const char *ag__name_of(const ag_tensor *t, char *buf, size_t size);
/* Forgets the names of tensors no longer live (ag_release), or all (ag_shutdown). */
void ag__names_prune(void);
void ag__names_reset(void);

/* ---- warnings (warning.c) ---- */

/* Shows a warning through the handler (ag_set_warning_handler) unless the same message
 * was shown for the same call site (file and line, as the macros pass them) already,
 * as Python's default warning filter does. Out of memory for the set of sites seen, it
 * shows the warning anyway. */
void ag__warn_once(const char *file, int line, const char *fmt, ...) AG__PRINTF(3, 4);
/* Forgets the sites seen and restores the default handler (ag_shutdown). */
void ag__warning_reset(void);

/* ---- tensors (tensor.c) ---- */

/* dim of x wrapped into [0, rank) (negative counts from the end); -1 after PyTorch's
 * "Dimension out of range" error. rank is x's for most ops; callers pass 1 for a 0-d x
 * where PyTorch treats it as one dimension, and ndim + 1 for stack. */
int ag__wrap_dim(const char *op, const ag_tensor *x, int dim, int rank);

/* The number of elements of a shape; -1 after an error naming op (more than
 * AG_MAX_DIMS sizes, a negative size, or sizes whose nonzero product exceeds
 * AG__NUMEL_MAX, in PyTorch's words). */
int64_t ag__bad_shape(const char *op, int ndim, const int64_t *shape); /* its errors */
static inline int64_t ag__numel(const char *op, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > AG_MAX_DIMS) return ag__bad_shape(op, ndim, shape);
    /* PyTorch multiplies all the sizes and refuses an overflow; agrad refuses too when
     * the nonzero sizes alone overflow (PyTorch accepts [0, 2^40, 2^40]), so that no
     * product of some of a tensor's sizes can overflow anywhere. */
    int64_t nonzero = 1;
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        int64_t product;
        if (shape[i] < 0) return ag__bad_shape(op, ndim, shape);
        if (shape[i] == 0)
            empty = true;
        else if (__builtin_mul_overflow(nonzero, shape[i], &product) || product > AG__NUMEL_MAX)
            return ag__bad_shape(op, ndim, shape);
        else
            nonzero = product;
    }
    return empty ? 0 : nonzero;
}

/* A new tensor of shape on the tape (ag__alloc_tensor with its shape set), or a view
 * of base's storage at data. NULL after an error naming op: a bad shape or no memory. */
ag_tensor *ag__new(const char *op, int ndim, const int64_t *shape, const ag_tensor *base,
                   float *data);
/* A new leaf of shape for op, requiring grad or not (the factories): its data unset.
 * NULL after an error naming op. */
ag_tensor *ag__new_leaf(const char *op, ag_shape shape, bool requires_grad);
/* The error of sizes sa and sb that do not broadcast at dimension k of op's a and b, in
 * PyTorch's words. Out of line, so that the ops that inline the check keep their
 * stack frames small. */
void ag__broadcast_error(const char *op, const ag_tensor *a, const ag_tensor *b, int k, int64_t sa,
                         int64_t sb) AG__RARE;
/* Whether a and b have the same shape. */
static inline bool ag__same_shape(const ag_tensor *a, const ag_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k]) return false;
    return true;
}
/* ag__new with t's shape (inline: every op's result is made so). */
static inline ag_tensor *ag__new_like(const char *op, const ag_tensor *t)
{
    return ag__alloc_tensor(op, t->ndim, t->shape, t->numel, NULL, NULL); /* a valid shape */
}

/* ---- autograd (engine.c) ---- */

/* Depth of open no_grad scopes is zero. */
bool ag__grad_mode(void);
/* Closes all no_grad scopes and frees the engine's buffers (ag_shutdown). */
void ag__engine_reset(void);

/* In ops' backward functions: x's gradient buffer for this pass (zeros the first time),
 * to add into directly; NULL when out of memory (the engine then reports). */
float *ag__grad_of(ag_tensor *x);
/* ag__grad_of without the zeros: *fresh is true when the buffer is new this pass, and
 * then holds garbage that the caller must overwrite in full (AG__ADD_FLAT does); false
 * when it holds a gradient already, to add into. */
float *ag__grad_buf(ag_tensor *x, bool *fresh);
/* In ops' backward functions: adds g, a whole gradient of x's shape, into x's gradient.
 * For gradients that are sums of products (matmul, inverse), computed apart first: PyTorch
 * adds the finished product to what the gradient holds, and so the floats match. */
void ag__add_grad(ag_tensor *x, const float *g);
/* In ops' backward functions: adds g (laid out in the shape of out, the tensor being
 * differentiated) into x's gradient, summing (in double) over the dimensions along
 * which x was broadcast to out. */
void ag__accum(ag_tensor *x, const ag_tensor *out, const float *g);
/* Whether input k of the recorded y required grad when y was recorded, so that it takes
 * a gradient (as in PyTorch, requires_grad_ set later does not add the edge). */
static inline bool ag__wants(const ag_tensor *y, int k)
{
    return node(y)->flags & (AG__F_EDGE_A << k);
}

/* Sets out's op, inputs and requires_grad when grad mode is on and an input requires
 * grad; otherwise leaves out a leaf. b may be NULL. Returns out, or NULL after anomaly
 * mode's error (out holds nan or inf), so that an op can end with `return ag__record(...)`. */
ag_tensor *ag__record(ag_tensor *out, int op, const ag_tensor *a, const ag_tensor *b);
/* ag__record for ops of n inputs (cat, stack): node(out)->ctx keeps the inputs, then one
 * bool per input saying whether it takes a gradient. NULL after an error naming op name
 * (out of memory) or anomaly mode's. */
ag_tensor *ag__record_n(ag_tensor *out, int op, ag_tensor *const *inputs, int n, const char *name);

/* out was computed by an op without being recorded (no input required grad, or no_grad
 * was on): it is marked AG__F_DERIVED, a leaf that a replay cannot compute again, unlike
 * one a factory filled. A view's values are its storage's, so a view is marked only when
 * the tensor it views is. */
static inline void ag__derive(ag_tensor *out)
{
    const ag_tensor *base = node(out)->base;
    if (base == out || (node(base)->flags & AG__F_DERIVED)) node(out)->flags |= AG__F_DERIVED;
}

/* The backward pass of a replay (replay.c): nodes, the program's recorded tensors oldest
 * first, their gradient buffers (and their inputs') set aside (AG__F_SET_ASIDE).
 * The same pass as ag_backward(loss, retain_graph) without the heap: the same nodes in the
 * same order, so the same floats. False after an error (no ->grad changed). */
bool ag__replay_pass(ag_tensor *loss, ag_tensor *const *nodes, size_t n);
/* The backward pass of a replay's tiled program (replay.c) over one tile: nodes (oldest
 * first) that have a gradient pending, newest first, as ag__replay_pass takes them, on
 * windows of their tensors and buffers set aside. The sums that give an input of one
 * element its gradient are carried in lanes instead: node i's input k's in
 * lanes + (2 i + k) AG__LANES, through ag__tile_lanes, which is NULL outside this pass.
 * It cannot fail once ag__pass_reserve has made room for every tensor it visits. */
void ag__tile_pass(ag_tensor *const *nodes, size_t n, double *lanes);
extern double *ag__tile_lanes;
bool ag__pass_reserve(size_t n);
/* Whether t keeps the gradient that reached it in ->grad at the end of a pass: a leaf
 * that requires grad (now: PyTorch's AccumulateGrad checks at the time of the pass), or
 * a retain_grad tensor. */
static inline bool ag__keeps_grad(const ag_tensor *t)
{
    return node(t)->op == 0 ? t->requires_grad : (node(t)->flags & AG__F_RETAIN_GRAD) != 0;
}
/* What ag_memory_stats reports as the last pass's backward_nodes, for a pass that did not
 * go through pass() (a replay's scalar or tiled program). */
void ag__pass_visited(size_t n);
/* The scalar form of an elementwise op (ops.c, unary.c), for a replay of a graph whose
 * tensors all hold one element (replay.c): y = f(a, b), b the op's second input or its
 * number, and d[k] input k's derivative rule (elementwise.h's RULE, d(a, b, y, g)), or
 * NULL where the gradient passes unchanged. They are the functions the op's loops fold in,
 * called once: the same floats. NULL for an op without one. */
typedef struct ag__scalar_op {
    float (*f)(float a, float b);
    float (*d[2])(float a, float b, float y, float g);
} ag__scalar_op;
const ag__scalar_op *ag__scalar_of(int op);
const ag__scalar_op *ag__unary_scalar_of(int op); /* unary.c's, which ag__scalar_of asks */
/* y = sum or mean of x's n elements from their double sum, and what reaches each of x's
 * elements from d loss / d y = g (ops.c): the formulas that replay.c's tiles share. */
float ag__reduce_value(double total, int64_t n, bool mean);
float ag__reduce_dx(float g, int64_t n, bool mean);
/* The forward of an op a replay cannot run (optable.h), and of a view, whose values are
 * its input's storage: nothing to compute. */
bool ag__no_replay(ag_tensor *out);
bool ag__view_forward(ag_tensor *out);
/* The path a replay's next run takes (replay.c): the one ag_replay_run takes, and for
 * test_replay, which checks that the graphs it compares with eager ones take it. */
enum { AG__REPLAY_GENERAL, AG__REPLAY_SCALAR, AG__REPLAY_TILED };
int ag__replay_path(ag_replay *r);
/* Elements a tiled replay takes at a time: a multiple of AG__LANES, whose ten or so arrays
 * (values and gradients) stay within a 48 KB L1 cache. */
enum { AG__TILE = 1024 };
/* Frees every replay (ag_shutdown). */
void ag__replay_reset(void);
/* Every tensor reachable from t through the inputs its op recorded (cat's and stack's
 * lists, where's condition), in creation order (graph.c's walk, iterative): *out, an
 * array of *n from the allocation hook, for the caller to free. False after an error
 * naming op (out of memory). */
bool ag__graph_tensors(const ag_tensor *t, const char *op, ag_tensor ***out, size_t *n);

/* t's storage was written in place: its version moves, so that a graph that saved t
 * refuses to backward with the new values. Alone (without ag__inplace_begin's rule) for
 * the writes PyTorch makes under no_grad: .data =, a load, an optimizer's step. */
static inline void ag__bump_version(const ag_tensor *t) { node(node(t)->base)->version++; }
/* The error of writing in place, outside no_grad, a tensor that requires grad; false. */
bool ag__inplace_refused(const ag_tensor *t, const char *op) AG__RARE;
/* Checks that t may be written in place by op (the leaf-in-place rule) and bumps its
 * storage version (ag__bump_version). Call it after every other check: false after an
 * error. */
static inline bool ag__inplace_begin(ag_tensor *t, const char *op)
{
    if (t->requires_grad && ag__grad_mode()) return ag__inplace_refused(t, op);
    ag__bump_version(t);
    return true;
}

/* torch.autograd.grad(y, inputs, gradient, retain_graph=True) into out[k] (inputs[k]'s
 * numel floats each, zeros where no gradient reaches): no ->grad changes, the graph is
 * kept. False after an error. */
bool ag__grad_into(ag_tensor *y, ag_tensor *gradient, ag_tensor *const *inputs, int n,
                   float *const *out);

/* Broadcasting works on shapes padded to 4 dimensions, aligned from the right. */
static inline void ag__pad(int ndim, const int64_t *shape, int64_t p[AG_MAX_DIMS])
{
    for (int k = 0; k < AG_MAX_DIMS; k++) {
        int j = k - (AG_MAX_DIMS - ndim);
        p[k] = j >= 0 ? shape[j] : 1;
    }
}
/* x's strides over a padded shape, 0 along every dimension where x has size 1, so that
 * indexing x with the index of a larger (broadcast) shape reads the right element. */
static inline void ag__bstrides(const ag_tensor *x, int64_t st[AG_MAX_DIMS])
{
    int64_t p[AG_MAX_DIMS], s = 1;
    ag__pad(x->ndim, x->shape, p);
    for (int k = AG_MAX_DIMS - 1; k >= 0; k--) {
        st[k] = p[k] == 1 ? 0 : s;
        s *= p[k];
    }
}
/* x seen as [outer, n, inner] around dimension d: the dimensions before d, d itself,
 * the dimensions after it (sizes past ndim are 1, which covers a 0-d x). */
typedef struct ag__split {
    int64_t outer, n, inner;
} ag__split;
static inline ag__split ag__split_at(const ag_tensor *x, int d)
{
    ag__split s = {1, x->shape[d], 1};
    for (int i = 0; i < d; i++) s.outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++) s.inner *= x->shape[i];
    return s;
}
/* Runs BODY for each element of the padded shape P, in row-major order, with io its
 * offset and ia, ib the offsets of the broadcast elements of operands with strides
 * SA, SB. */
#define AG__FOR_BCAST(P, SA, SB, BODY)                                                             \
    do {                                                                                           \
        int64_t io = 0;                                                                            \
        if (!(P)[0] || !(P)[1] || !(P)[2] || !(P)[3]) break; /* empty: O(1), not O(sizes) */       \
        for (int64_t i0 = 0; i0 < (P)[0]; i0++)                                                    \
            for (int64_t i1 = 0; i1 < (P)[1]; i1++)                                                \
                for (int64_t i2 = 0; i2 < (P)[2]; i2++) {                                          \
                    int64_t ia0 = i0 * (SA)[0] + i1 * (SA)[1] + i2 * (SA)[2];                      \
                    int64_t ib0 = i0 * (SB)[0] + i1 * (SB)[1] + i2 * (SB)[2];                      \
                    for (int64_t i3 = 0; i3 < (P)[3]; i3++, io++) {                                \
                        int64_t ia = ia0 + i3 * (SA)[3], ib = ib0 + i3 * (SB)[3];                  \
                        BODY;                                                                      \
                    }                                                                              \
                }                                                                                  \
    } while (0)

/* Runs BODY for i = 0 .. N-1, in blocks of 8, then one at a time. gcc's vectoriser at -O2
 * (its "very cheap" model) takes only loops of a known count, such as the blocks', so
 * BODY vectorises where its math allows and it writes through restrict pointers. */
#define AG__FOR_FLAT(N, BODY)                                                                      \
    do {                                                                                           \
        int64_t n_ = (N), i_ = 0;                                                                  \
        for (; i_ + 8 <= n_; i_ += 8)                                                              \
            for (int64_t j_ = 0; j_ < 8; j_++) {                                                   \
                int64_t i = i_ + j_;                                                               \
                BODY;                                                                              \
            }                                                                                      \
        for (int64_t i = i_; i < n_; i++) {                                                        \
            BODY;                                                                                  \
        }                                                                                          \
    } while (0)
/* Sums of floats are added up in double (sum, mean, logsumexp, the reductions of mse_loss
 * and the binary cross entropies, the gradients summed back over broadcast dimensions;
 * nll_loss keeps PyTorch's own float cascade, exactly): term k of a sum goes to lane k % 8,
 * and the lanes add up as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). A double sum
 * rounds at every term, so this order is part of its result: every sum takes it, whatever
 * its loop, and the same terms give the same float on every path. Eight lanes rather than
 * one chain of additions let the flat loop vectorise and keep four additions in flight. */
enum { AG__LANES = 8 };
static inline double ag__lanes_total(const double l[AG__LANES])
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}
/* Where the sum that gives input k of a node its gradient, an input of one element, is
 * carried: in a tiled replay's pass, that node's lanes for input k (ag__tile_lanes), which
 * the replay adds up after the last tile; else own. */
static inline double *ag__one_lanes(int k, double own[AG__LANES])
{
    return ag__tile_lanes ? ag__tile_lanes + (size_t)k * AG__LANES : own;
}
/* *dst (0 when fresh) + the sum in lanes l, as one float: what an input of one element
 * takes from a gradient summed over its broadcast (0.0 + the total, as AG__SUM_FLAT adds). */
static inline void ag__add_lanes(float *dst, bool fresh, const double l[AG__LANES])
{
    double acc = 0;
    acc += ag__lanes_total(l);
    *dst = (fresh ? 0.0f : *dst) + (float)acc;
}
/* LANES[k % 8] += term k of V for i = 0 .. N-1 (LANES: eight doubles), the lanes held in
 * eight locals, which gcc keeps in registers. A sum over several calls, each N a multiple
 * of 8 but the last, adds the same terms to the same lanes in the same order as one call
 * over all of them (a replay's tiles, replay.c). */
#define AG__SUM_LANES(N, LANES, V)                                                                 \
    do {                                                                                           \
        double *lanes_ = (LANES);                                                                  \
        double l0_ = lanes_[0], l1_ = lanes_[1], l2_ = lanes_[2], l3_ = lanes_[3];                 \
        double l4_ = lanes_[4], l5_ = lanes_[5], l6_ = lanes_[6], l7_ = lanes_[7];                 \
        int64_t n_ = (N), i_ = 0;                                                                  \
        for (; i_ + 8 <= n_; i_ += 8) {                                                            \
            int64_t i = i_;                                                                        \
            l0_ += (V), i++;                                                                       \
            l1_ += (V), i++;                                                                       \
            l2_ += (V), i++;                                                                       \
            l3_ += (V), i++;                                                                       \
            l4_ += (V), i++;                                                                       \
            l5_ += (V), i++;                                                                       \
            l6_ += (V), i++;                                                                       \
            l7_ += (V);                                                                            \
        }                                                                                          \
        lanes_[0] = l0_, lanes_[1] = l1_, lanes_[2] = l2_, lanes_[3] = l3_;                        \
        lanes_[4] = l4_, lanes_[5] = l5_, lanes_[6] = l6_, lanes_[7] = l7_;                        \
        for (int64_t i = i_; i < n_; i++) lanes_[i - i_] += (V);                                   \
    } while (0)
/* ACC += the sum of V for i = 0 .. N-1, in lanes (ACC is 0 at every use). */
#define AG__SUM_FLAT(N, ACC, V)                                                                    \
    do {                                                                                           \
        double t_[AG__LANES] = {0};                                                                \
        AG__SUM_LANES(N, t_, V);                                                                   \
        (ACC) += ag__lanes_total(t_);                                                              \
    } while (0)
/* DX[i] += V for i = 0 .. N-1, DX from ag__grad_buf: into a FRESH buffer DX[i] = 0.0f + V,
 * the bits that adding V to zeros gives (+0 for -0), without zeroing DX first. */
#define AG__ADD_FLAT(FRESH, DX, N, V)                                                              \
    do {                                                                                           \
        if (FRESH)                                                                                 \
            AG__FOR_FLAT(N, (DX)[i] = 0.0f + (V));                                                 \
        else                                                                                       \
            AG__FOR_FLAT(N, (DX)[i] += (V));                                                       \
    } while (0)
/* o[i] = o[i] + a v[i] with one rounding (fmaf) for i < n, o apart from v: PyTorch's
 * add_(v, alpha=a), and its SGD step's (ops.c). */
void ag__add_scaled_flat(float *restrict o, const float *restrict v, float a, int64_t n);

/* ---- the op table (optable.h, defined in engine.c) ---- */

#define AG__A   AG__F_SAVED_A
#define AG__B   AG__F_SAVED_B
#define AG__OUT AG__F_SAVED_OUT
#define AG__CTX AG__F_SAVED_CTX
#define AG__EXT AG__F_SAVED_EXT

enum {
    AG__OP_LEAF,
#define AG__OP(id, grad_fn, forward, backward, needs0, needs1, rule0, rule1) AG__OP_##id,
#include "optable.h"
#undef AG__OP
    AG__OP_COUNT
};

#define AG__OP(id, grad_fn, forward, backward, needs0, needs1, rule0, rule1)                       \
    bool forward(ag_tensor *out);                                                                  \
    void backward(ag_tensor *out);
#include "optable.h"
#undef AG__OP

typedef struct ag__op {
    const char *grad_fn;             /* PyTorch's name for the backward node, e.g. "MulBackward0" */
    uint16_t needs[2];               /* what the gradient of input 0, input 1 reads (optable.h) */
    bool (*forward)(ag_tensor *out); /* the values again, for a replay (optable.h) */
    void (*backward)(ag_tensor *out);
    const char *rule[2]; /* the local derivative of each input, for the trace */
} ag__op;
extern const ag__op ag__ops[AG__OP_COUNT];

/* The inputs recorded for t: their number (0 for a leaf), and in *xs their array (cat and
 * stack keep theirs in ctx, every other op in src). */
static inline int ag__inputs(const ag_tensor *t, ag_tensor *const **xs)
{
    const ag__node *r = node(t);
    if (r->op == AG__OP_CAT || r->op == AG__OP_STACK) {
        *xs = r->ctx;
        return (int)r->arg.join.count;
    }
    *xs = r->src;
    return r->op == 0 ? 0 : r->src[1] ? 2 : 1;
}
/* Whether input k of t takes a gradient (ag__wants, or cat's and stack's flags). */
static inline bool ag__input_wants(const ag_tensor *t, int k)
{
    const ag__node *r = node(t);
    if (r->op == AG__OP_CAT || r->op == AG__OP_STACK)
        return ((const bool *)((ag_tensor *const *)r->ctx + r->arg.join.count))[k];
    return ag__wants(t, k);
}

/* ---- watching the graph: the backward trace and anomaly mode (trace.c) ---- */

/* Whether the trace or anomaly mode is on: the engine calls the functions below only
 * then, so that both cost one test when off. */
extern bool ag__watching;
/* At the end of ag__record: with anomaly mode on, out's values are checked (and its
 * inputs', to tell which op made a nan); out's call site is kept for messages. Returns
 * out, or NULL after the error. */
ag_tensor *ag__watch_forward(ag_tensor *out, int op, const ag_tensor *a, const ag_tensor *b);
/* The backward of node n in a pass, watched: the trace notes what n's inputs hold before
 * and prints what each received after; anomaly mode checks the gradients n gave. False after
 * an error (out of memory: the engine reports it, as for any node). */
bool ag__watch_backward(ag_tensor *n);
/* At the start and the end of a pass from t (seed: its gradient, numel floats). */
bool ag__watch_begin(const ag_tensor *t, const float *seed);
/* At the end of a pass (ok: it succeeded) that gave gradients to the n tensors of visited:
 * the trace prints what reaches each .grad. */
void ag__watch_end(bool ok, ag_tensor *const *visited, size_t n);
/* Forgets the call sites kept for tensors made after serial (ag_release), or all, and
 * turns both modes off (ag_shutdown). */
void ag__sites_prune(uint64_t serial);
void ag__watch_reset(void);

/* ---- nn (nn/module.c) ---- */

/* Frees every module (ag_shutdown, before the memory their parameters live in). */
void ag__modules_reset(void);
/* When t is a live module's parameter: writes its dotted name from its root module
 * ("0.weight", "lin.bias") into buf, cut to size bytes, and returns the name's whole length;
 * else 0. buf may be NULL when size is 0. */
size_t ag__parameter_name(const ag_tensor *t, char *buf, size_t size);

/* ---- optim and data (optim/, data/) ---- */

/* Free every optimizer and scheduler, and every loader and dataset agrad made (ag_shutdown,
 * before the modules whose parameters they point to). */
void ag__optim_reset(void);
void ag__data_reset(void);
/* Frees the progress lines left open (data/progress.c; ag_shutdown, after the loaders that
 * may hold them). */
void ag__progress_reset(void);

/* ---- random (random.c) ---- */

/* Resets the global generator to its initial state (seed 67280421310721, PyTorch's
 * default). */
void ag__random_reset(void);

/* A generator of PyTorch's kind (an mt19937 and the normal sample it caches): the global
 * one is private to random.c; others (a DataLoader's fresh generator each epoch, as
 * torch.Generator() is) are seeded with ag__mt_seed. A zeroed one takes the default seed
 * at its first draw. */
enum { AG__MT_N = 624 };
typedef struct ag__mt {
    uint32_t state[AG__MT_N];
    int next;         /* index of the next word of state to temper; AG__MT_N: twist first */
    bool seeded;      /* false until seeded or the first draw */
    bool have_normal; /* the small normal path's second Box-Muller sample is cached */
    double normal;    /* that sample, as PyTorch keeps it in its generator */
} ag__mt;
/* g.manual_seed(seed): only the low 32 bits count. */
void ag__mt_seed(ag__mt *g, uint64_t seed);
/* The global generator's random64(): two 32-bit outputs, the first the high half.
 * random64() % 2^63 is torch.empty((), dtype=torch.int64).random_(). */
uint64_t ag__random64(void);
/* torch.randperm(n, generator=g) into out[0..n-1] (g NULL: the global generator). */
void ag__randperm_into(ag__mt *g, int64_t *out, int64_t n);

#endif /* AGRAD_INTERNAL_H */
