/*
 * agrad nn: modules, layers, activations and losses, as torch.nn has them.
 *
 *     ag_manual_seed(0);
 *     ag_module *model = ag_Linear(1, 1);                  // model = nn.Linear(1, 1)
 *     ag_criterion loss = ag_MSELoss();                     // loss = nn.MSELoss()
 *     ag_mark start = ag_mark_now();
 *     for (int epoch = 0; epoch < 100; epoch++) {
 *         ag_tensor *l = ag_loss(loss, ag_forward(model, X), Y);   // loss(model(X), Y)
 *         ag_backward(l);
 *         ag_params p = ag_parameters(model);              // model.parameters()
 *         AG_NO_GRAD {
 *             for (int i = 0; i < p.n; i++) ag_sub_(p.tensors[i], ag_mul(0.1, p.tensors[i]->grad));
 *         }
 *         ag_module_zero_grad(model);                        // model.zero_grad()
 *         ag_release(start);
 *     }
 *     ag_module_free(model);
 *
 * Module constructors keep PyTorch's class names (ag_Linear is nn.Linear, ag_ReLU is
 * nn.ReLU), so that they stand apart from the functions of the same name (ag_relu is
 * torch.relu).
 *
 * MEMORY. A module and its parameters are made once, before the training loop: they live
 * outside the tape, so no ag_release touches them, and ag_module_free (or ag_shutdown)
 * frees them. Everything a forward pass makes is on the tape like any op's result.
 */
#ifndef AGRAD_NN_H
#define AGRAD_NN_H

#include "agrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Modules                                                                               */

typedef struct ag_module ag_module;

/* forward(self, x): the module's output for x, a new tensor on the tape (NULL on error). */
typedef ag_tensor *(*ag_forward_fn)(ag_module *self, const ag_tensor *x);
/* Writes what repr prints between the parentheses ("in_features=1, out_features=1,
 * bias=True") into buf (snprintf's contract); returns what snprintf returns. */
typedef int (*ag_extra_repr_fn)(const ag_module *self, char *buf, size_t size);

/* The part every module begins with. A custom module is a struct whose first member is
 * an ag_module, made by AG_MODULE_NEW; fields are set by the constructors. */
struct ag_module {
    const char *type;              /* the class name repr prints: "Linear", "Sequential" */
    ag_forward_fn forward;         /* what ag_forward calls */
    ag_extra_repr_fn extra_repr;   /* may be NULL: nothing between the parentheses */
    void (*destroy)(ag_module *);  /* frees what the module owns besides its children and
                                      parameters; may be NULL */
    bool training;                 /* train() or eval() mode; true when made */
    struct ag_module_state *state; /* private: children and parameters */
};

/* A new module of size bytes (at least sizeof(ag_module)), zeroed, its ag_module part set;
 * type must outlive the module (a string literal). NULL on error (out of memory, size too
 * small). Free it with ag_module_free. */
AG_API ag_module *ag_module_new(size_t size, const char *type, ag_forward_fn forward);
/* AG_MODULE_NEW(Type, forward): a new Type (a struct beginning with ag_module), as
 * class Type(nn.Module) with super().__init__(). */
#define AG_MODULE_NEW(Type, forward) ((Type *)ag_module_new(sizeof(Type), #Type, forward))

/* self.name = child: registers child under name (repr order, dotted parameter names) and
 * returns it. self owns child from then on: ag_module_free(self) frees it. NULL on error
 * (child NULL, a name already used, out of memory); child is then freed. */
AG_API ag_module *ag_add_module(void *self, const char *name, ag_module *child);
/* self.name = nn.Parameter(value): a new parameter (a leaf that requires grad, outside the
 * tape, owned by self) holding a copy of value's values; value is untouched. NULL on
 * error (a NULL or released value, a name already used, out of memory). */
AG_API ag_tensor *ag_add_parameter(void *self, const char *name, const ag_tensor *value);

/* model(x): calls m->forward. NULL on error (NULL or freed m, or forward's error). */
AG_API ag_tensor *ag_forward(ag_module *m, const ag_tensor *x);
AG_PRIVATE_SITED(ag_forward, (ag_module * m, const ag_tensor *x), (m, x))
#if !defined(AGRAD_BUILDING)
#define ag_forward(...) ag_private_ag_forward_at(__FILE__, __LINE__, __VA_ARGS__)
#endif

/* model.named_parameters(): every parameter of m and of its children, in registration
 * order, with PyTorch's dotted names ("lin.weight", "0.bias"). The arrays are m's, valid
 * until a module or parameter is added below m or m is freed. n is 0 (and the arrays NULL)
 * on error. */
typedef struct ag_params {
    ag_tensor *const *tensors;
    const char *const *names;
    int n;
} ag_params;
AG_API ag_params ag_parameters(ag_module *m);
/* The number of parameter elements: sum(p.numel() for p in model.parameters()); -1 on
 * error (a NULL or freed m). */
AG_API int64_t ag_parameter_count(ag_module *m);
/* model.zero_grad(): every parameter's ->grad set to zeros (PyTorch 1.13's default,
 * set_to_none=False). */
AG_API void ag_module_zero_grad(ag_module *m);
/* model.train(mode) and model.eval(): sets training on m and every module below it. */
AG_API void ag_train(ag_module *m, bool mode);
AG_API void ag_eval(ag_module *m);
/* The child registered under name directly below m, or NULL (no error). */
AG_API ag_module *ag_child(ag_module *m, const char *name);

/* repr(model), as PyTorch prints it: "Linear(in_features=1, out_features=1, bias=True)",
 * children indented below their parent. The caller frees the string with ag_free; NULL on
 * error. ag_module_print writes it and a newline to stdout. */
AG_API char *ag_module_repr(const ag_module *m);
AG_API void ag_module_print(const ag_module *m);

/* Frees m, its children and its parameters (with their gradients). A parameter that a live
 * tensor on the tape still uses (the result of a forward pass not yet released) is freed by
 * the ag_release that frees its last user. NULL is a no-op; a child (freed by its parent)
 * is an error. */
AG_API void ag_module_free(ag_module *m);

/* ------------------------------------------------------------------------------------ */
/* Layers and activations                                                                */

/* nn.Linear(in_features, out_features, bias=True): y = x W^T + b, x of shape (..., in), W
 * (out, in) named "weight", b (out) named "bias", both drawn from U(-1/sqrt(in),
 * 1/sqrt(in)) exactly as PyTorch does after the same ag_manual_seed. ag_Linear(in, out) or
 * ag_Linear(in, out, false) for no bias. NULL on error (negative sizes). */
AG_API ag_module *ag_linear_new(int64_t in_features, int64_t out_features, bool bias);
#define AG_PRIVATE_PICK3(a, b, c, name, ...) name
#define ag_Linear(...)                                                                             \
    AG_PRIVATE_PICK3(__VA_ARGS__, ag_linear_new, AG_PRIVATE_LINEAR2, )(__VA_ARGS__)
#define AG_PRIVATE_LINEAR2(in, out) ag_linear_new(in, out, true)

/* nn.Sequential(m0, m1, ...): applies its children in order; they are named "0", "1", ...
 * It owns them. NULL on error (a NULL child: the others are freed). */
AG_API ag_module *ag_sequential_new(ag_module *const *children, int n);
#define ag_Sequential(...)                                                                         \
    ag_sequential_new((ag_module *const[]){__VA_ARGS__},                                           \
                      (int)(sizeof((ag_module *[]){__VA_ARGS__}) / sizeof(ag_module *)))

/* Activations as modules: nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.Softmax(dim),
 * nn.LogSoftmax(dim), nn.Flatten(start_dim, end_dim) (PyTorch's defaults are 1, -1). */
AG_API ag_module *ag_ReLU(void);
AG_API ag_module *ag_Sigmoid(void);
AG_API ag_module *ag_Tanh(void);
AG_API ag_module *ag_Softmax(int dim);
AG_API ag_module *ag_LogSoftmax(int dim);
AG_API ag_module *ag_Flatten(int start_dim, int end_dim);

/* ------------------------------------------------------------------------------------ */
/* Losses                                                                                */

/* How a loss reduces the per-element losses: their mean (PyTorch's default), their sum,
 * or none (the per-element losses, in the input's shape). */
typedef enum ag_reduction { AG_MEAN, AG_SUM, AG_NONE } ag_reduction;

/* An optional class index: AG_INDEX(k). */
typedef struct ag_index {
    bool set;
    int64_t value;
} ag_index;
#define AG_INDEX(k) ((ag_index){true, (k)})

/* A loss's arguments, input and target first, then its options by name. Options a loss
 * does not have must be left out (an error otherwise). */
typedef struct ag_loss_args {
    const ag_tensor *input;
    const ag_tensor *target;
    ag_reduction reduction;
    const ag_tensor *weight;     /* BCE: per element (broadcast to input); NLL and cross
                                    entropy: per class, shape (C) */
    const ag_tensor *pos_weight; /* BCE with logits: the weight of positive examples,
                                    broadcast to input (per class: shape (C)) */
    ag_index ignore_index;       /* NLL and cross entropy: targets equal to it add nothing
                                    and are not counted; PyTorch's default -100 if unset */
    const char *private_file;    /* the call site (for warnings shown once per site) */
    int private_line;
    int private_end;
} ag_loss_args;

#define AG_PRIVATE_LOSS(fn, ...)                                                                   \
    ag_private_loss_at(fn, (ag_loss_args){__VA_ARGS__, .private_file = __FILE__,                   \
                                          .private_line = __LINE__, .private_end = 0})
/* fn(args) with the call site noted for anomaly mode and the trace (see AG_PRIVATE_SITED) */
static inline ag_tensor *ag_private_loss_at(ag_tensor *(*fn)(ag_loss_args), ag_loss_args args)
{
    ag_private_site.file = args.private_file;
    ag_private_site.line = args.private_line;
    ag_tensor *result = fn(args);
    ag_private_site.file = NULL;
    return result;
}

/* The losses of torch.nn.functional, each differentiable with respect to input (and to
 * target where PyTorch's is), recorded as one op with PyTorch's grad_fn name:
 *   ag_mse_loss(input, target)          F.mse_loss: (input - target)^2; warns, in PyTorch's
 *                                       words, when the shapes differ and broadcast
 *   ag_l1_loss(input, target)           F.l1_loss: |input - target|
 *   ag_binary_cross_entropy(p, y)       F.binary_cross_entropy: -w (y log p + (1 - y)
 *                                       log(1 - p)), each log clamped at -100
 *   ag_binary_cross_entropy_with_logits(x, y)   the same of sigmoid(x), computed stably,
 *                                       with pos_weight
 *   ag_nll_loss(logp, target)           F.nll_loss: -logp[n, target[n]] (weighted), target
 *                                       class indices (floats holding integers) of shape
 *                                       (N) for logp (N, C), or () for (C)
 *   ag_cross_entropy(logits, target)    F.cross_entropy: nll_loss(log_softmax(logits, 1))
 * Options: ag_mse_loss(yhat, y, .reduction = AG_SUM), ag_cross_entropy(z, t, .weight = w,
 * .ignore_index = AG_INDEX(0)). NULL on error: shapes that do not fit (named), a target
 * class out of range, an option the loss does not have. */
AG_API ag_tensor *ag_mse_loss_with(ag_loss_args args);
AG_API ag_tensor *ag_l1_loss_with(ag_loss_args args);
AG_API ag_tensor *ag_binary_cross_entropy_with(ag_loss_args args);
AG_API ag_tensor *ag_binary_cross_entropy_with_logits_with(ag_loss_args args);
AG_API ag_tensor *ag_nll_loss_with(ag_loss_args args);
AG_API ag_tensor *ag_cross_entropy_with(ag_loss_args args);
#define ag_mse_loss(...)             AG_PRIVATE_LOSS(ag_mse_loss_with, __VA_ARGS__)
#define ag_l1_loss(...)              AG_PRIVATE_LOSS(ag_l1_loss_with, __VA_ARGS__)
#define ag_binary_cross_entropy(...) AG_PRIVATE_LOSS(ag_binary_cross_entropy_with, __VA_ARGS__)
#define ag_binary_cross_entropy_with_logits(...)                                                   \
    AG_PRIVATE_LOSS(ag_binary_cross_entropy_with_logits_with, __VA_ARGS__)
#define ag_nll_loss(...)      AG_PRIVATE_LOSS(ag_nll_loss_with, __VA_ARGS__)
#define ag_cross_entropy(...) AG_PRIVATE_LOSS(ag_cross_entropy_with, __VA_ARGS__)

/* A loss as a module-like value, nn.MSELoss(reduction='sum') and the like:
 *     ag_criterion loss = ag_MSELoss(.reduction = AG_SUM);   // loss = nn.MSELoss(...)
 *     ag_tensor *l = ag_loss(loss, yhat, Y);                  // l = loss(yhat, Y)
 * It holds its options (and pointers to its weight tensors, which must stay live). */
typedef struct ag_criterion {
    const char *name; /* "MSELoss", for printing */
    ag_tensor *(*fn)(ag_loss_args);
    ag_loss_args args; /* the options; input and target are filled in by ag_loss */
} ag_criterion;
#define AG_PRIVATE_CRITERION(name, fn, ...)                                                        \
    ((ag_criterion){name, fn, {.input = NULL, .target = NULL, __VA_ARGS__}})
#define ag_MSELoss(...) AG_PRIVATE_CRITERION("MSELoss", ag_mse_loss_with, __VA_ARGS__)
#define ag_L1Loss(...)  AG_PRIVATE_CRITERION("L1Loss", ag_l1_loss_with, __VA_ARGS__)
#define ag_BCELoss(...) AG_PRIVATE_CRITERION("BCELoss", ag_binary_cross_entropy_with, __VA_ARGS__)
#define ag_BCEWithLogitsLoss(...)                                                                  \
    AG_PRIVATE_CRITERION("BCEWithLogitsLoss", ag_binary_cross_entropy_with_logits_with, __VA_ARGS__)
#define ag_NLLLoss(...) AG_PRIVATE_CRITERION("NLLLoss", ag_nll_loss_with, __VA_ARGS__)
#define ag_CrossEntropyLoss(...)                                                                   \
    AG_PRIVATE_CRITERION("CrossEntropyLoss", ag_cross_entropy_with, __VA_ARGS__)

/* criterion(input, target). NULL on error, as the loss. */
AG_API ag_tensor *ag_loss_at(ag_criterion criterion, const ag_tensor *input,
                             const ag_tensor *target, const char *file, int line);
#define ag_loss(criterion, input, target) ag_loss_at(criterion, input, target, __FILE__, __LINE__)

/* ------------------------------------------------------------------------------------ */
/* Saving and loading weights                                                            */
/*                                                                                       */
/* The safetensors format, which PyTorch reads and writes with safetensors.torch's       */
/* save_file(model.state_dict(), path) and model.load_state_dict(load_file(path)). Each  */
/* function takes n tensors and their n names ("weight", "0.bias"), as ag_parameters    */
/* gives them. Needs cJSON (libcjson-dev) when agrad is built; without it every call    */
/* fails with an error saying so. While a call runs, cJSON's allocation hooks are       */
/* agrad's; it puts cJSON's defaults back before returning.                             */

/* Writes tensors[i] under names[i] to path as float32 (F32), the names sorted as
 * safetensors' writer sorts them: the file save_file writes. Written to path.tmp and
 * renamed, so path is never left half-written. False on error: bad arguments (a NULL or
 * released tensor, a name given twice, the reserved "__metadata__"), or a file that
 * cannot be written (the message names path and the system's reason). */
AG_API bool ag_safetensors_save(const char *path, const char *const *names,
                                ag_tensor *const *tensors, int n);
/* The same file's bytes in memory: *size bytes that the caller frees with ag_free. NULL
 * (and *size 0) on error. */
AG_API void *ag_safetensors_save_bytes(const char *const *names, ag_tensor *const *tensors, int n,
                                       size_t *size);

/* model.load_state_dict(load_file(path)): copies the values of the file's tensor named
 * names[i] into tensors[i], for every i, as t.data = ... does (leaves that require grad
 * included; their version moves, so a graph that saved the old values refuses to
 * backward). All or nothing: on any error no tensor changes. Errors: the file cannot be
 * read; it is not a valid safetensors file (truncated, a header too long or not JSON, a
 * bad entry, offsets out of range, overlapping or not matching the shape, a name twice);
 * a name missing from the file or a tensor of the file not asked for, a shape that
 * differs, a dtype other than F32, in PyTorch's words ("Missing key(s) in state_dict",
 * "size mismatch for weight: ..."). The message names the file. */
AG_API bool ag_safetensors_load(const char *path, const char *const *names,
                                ag_tensor *const *tensors, int n);
/* The same from a whole file's size bytes in memory. */
AG_API bool ag_safetensors_load_bytes(const void *bytes, size_t size, const char *const *names,
                                      ag_tensor *const *tensors, int n);

/* A module's weights: save_file(model.state_dict(), path) and
 * model.load_state_dict(load_file(path)), with ag_parameters' names as the keys
 * ("lin.weight"), which are PyTorch's state_dict keys for the same model. The same
 * errors as ag_safetensors_save and ag_safetensors_load; a load that fails changes no
 * parameter. */
AG_API bool ag_module_save(ag_module *m, const char *path);
AG_API bool ag_module_load(ag_module *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* AGRAD_NN_H */
