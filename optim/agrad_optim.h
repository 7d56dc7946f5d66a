/*
 * agrad optim: optimizers, learning-rate schedules and gradient clipping, as torch.optim and
 * torch.nn.utils have them, with PyTorch 1.13's numbers.
 *
 * The lab's loop, optimizer.zero_grad(); loss.backward(); optimizer.step(), reads in C:
 *
 *     ag_module *model = ag_Linear(1, 1);
 *     ag_optimizer *opt = ag_SGD(ag_parameters(model), .lr = 0.01);
 *     ag_scheduler *sched = ag_StepLR(opt, 30, .gamma = 0.1);
 *     ag_mark start = ag_mark_now();
 *     for (int epoch = 0; epoch < 100; epoch++) {
 *         ag_zero_grad(opt);                              // optimizer.zero_grad()
 *         ag_tensor *loss = ag_mse_loss(ag_forward(model, X), Y);
 *         ag_backward(loss);                              // loss.backward()
 *         ag_step(opt);                                   // optimizer.step()
 *         ag_step(sched);                                 // scheduler.step()
 *         ag_release(start);
 *     }
 *     ag_scheduler_free(sched);
 *     ag_optimizer_free(opt);
 *
 * which is optim.SGD(model.parameters(), lr=0.01) and lr_scheduler.StepLR(opt, 30,
 * gamma=0.1) in PyTorch.
 *
 * Plain tensors work as well as a module's parameters: ag_SGD(AG_PARAMS(w, b), 0.1) is
 * optim.SGD([w, b], 0.1). Options are given by name (.momentum = 0.9), any left out take
 * PyTorch's default for that optimizer; an option the optimizer does not have is an error.
 *
 * MEMORY. An optimizer copies its list of parameters; the parameters must stay live while it
 * is used (a released tensor or a freed module's parameter is reported by the next step, not
 * read). Its state (momentum buffers, Adam's moments) is made at the first step that needs it,
 * from the allocation hook, never on the tape: later steps allocate nothing and make no
 * tensor. ag_optimizer_free, ag_scheduler_free or ag_shutdown free them.
 *
 * A step updates each parameter's values in place, as PyTorch's does under no_grad, and
 * skips the parameters whose ->grad is NULL; like an in-place write it moves the version of
 * the parameter, so a graph that saved the old values refuses to backward. Steps, zero_grad
 * and clipping check every parameter first and change nothing when one is bad.
 */
#ifndef AGRAD_OPTIM_H
#define AGRAD_OPTIM_H

#include "agrad_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Parameters and options                                                                */

/* AG_PARAMS(w, b): the list [w, b], for optim.SGD([w, b], lr=0.1); the same type as
 * ag_parameters(model) gives (without names). It lives in the enclosing block. */
#define AG_PARAMS(...)                                                                             \
    ((ag_params){(ag_tensor *const[]){__VA_ARGS__}, NULL,                                          \
                 (int)(sizeof((ag_tensor *[]){__VA_ARGS__}) / sizeof(ag_tensor *))})

/* The options of every optimizer and parameter group. The constructor macros mark every
 * field unset (a NaN of agrad's own for numbers, -1 for the flags), then apply the caller's;
 * the optimizer resolves unset fields to its PyTorch defaults. ag_param_group gives a
 * group's options resolved; the fields its optimizer does not have stay unset. Without GCC
 * or Clang, start from ag_optim_args_unset() and call ag_sgd_with and the like. */
typedef struct ag_optim_args {
    ag_params params;    /* what to optimize (copied) */
    double lr;           /* all: learning rate (SGD: required) */
    double momentum;     /* SGD, RMSprop */
    double dampening;    /* SGD */
    double weight_decay; /* all (AdamW: decoupled) */
    int nesterov;        /* SGD: true or false */
    int maximize;        /* all */
    double betas[2];     /* Adam, AdamW: give both, .betas = {0.9, 0.99} */
    double eps;          /* Adam, AdamW, RMSprop */
    int amsgrad;         /* Adam, AdamW */
    double alpha;        /* RMSprop */
    int centered;        /* RMSprop */
    int private_end;
} ag_optim_args;

#if defined(__GNUC__)
#define AG_PRIVATE_UNSET __builtin_nan("0x616772")
#define AG_PRIVATE_OPTIM_UNSET                                                                     \
    .lr = AG_PRIVATE_UNSET, .momentum = AG_PRIVATE_UNSET, .dampening = AG_PRIVATE_UNSET,           \
    .weight_decay = AG_PRIVATE_UNSET, .nesterov = -1, .maximize = -1,                              \
    .betas = {AG_PRIVATE_UNSET, AG_PRIVATE_UNSET}, .eps = AG_PRIVATE_UNSET, .amsgrad = -1,         \
    .alpha = AG_PRIVATE_UNSET, .centered = -1, .private_end = 0
#endif

/* An ag_optim_args with no parameters and every option unset. */
AG_API ag_optim_args ag_optim_args_unset(void);

/* ------------------------------------------------------------------------------------ */
/* Optimizers                                                                            */

typedef struct ag_optimizer ag_optimizer;

/* optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
 * maximize=False), optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
 * weight_decay=0, amsgrad=False, *, maximize=False), optim.AdamW (the same with
 * weight_decay=1e-2), optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
 * momentum=0, centered=False, maximize=False):
 *     ag_SGD(ag_parameters(model), .lr = 0.01, .momentum = 0.9)
 *     ag_Adam(AG_PARAMS(w, b), .lr = 0.1, .betas = {0.0, 0.99}, .amsgrad = true)
 * lr may also come in order, as in PyTorch: ag_SGD(AG_PARAMS(w), 0.1); for SGD, PyTorch's
 * order goes on (momentum, dampening, weight_decay, nesterov), for the others it does not.
 * Returns a new optimizer (free it with ag_optimizer_free), NULL on error, in PyTorch's
 * words: an option it does not have ("SGD.__init__() got an unexpected keyword argument
 * 'betas'"), SGD without lr, a value out of range ("Invalid learning rate: -0.1"), an empty
 * list, a released, NULL or non-leaf tensor, the same tensor twice, out of memory. */
AG_API ag_optimizer *ag_sgd_with(ag_optim_args args);
AG_API ag_optimizer *ag_adam_with(ag_optim_args args);
AG_API ag_optimizer *ag_adamw_with(ag_optim_args args);
AG_API ag_optimizer *ag_rmsprop_with(ag_optim_args args);
#define ag_SGD(...)                                                                                \
    AG_PRIVATE_CALL(ag_sgd_with, ag_optim_args, (AG_PRIVATE_OPTIM_UNSET), .params = __VA_ARGS__)
#define ag_Adam(...)                                                                               \
    AG_PRIVATE_CALL(ag_adam_with, ag_optim_args, (AG_PRIVATE_OPTIM_UNSET), .params = __VA_ARGS__)
#define ag_AdamW(...)                                                                              \
    AG_PRIVATE_CALL(ag_adamw_with, ag_optim_args, (AG_PRIVATE_OPTIM_UNSET), .params = __VA_ARGS__)
#define ag_RMSprop(...)                                                                            \
    AG_PRIVATE_CALL(ag_rmsprop_with, ag_optim_args, (AG_PRIVATE_OPTIM_UNSET), .params = __VA_ARGS__)

/* optimizer.add_param_group({'params': params, 'lr': 1e-3}): a new group whose unset options
 * take the optimizer's (the ones it was made with):
 *     ag_add_param_group(opt, ag_parameters(head), .lr = 1e-3)
 * False on error, the optimizer unchanged: the constructor's errors, "some parameters appear
 * in more than one parameter group". Stricter than PyTorch, which keeps such options
 * unchecked: an option the optimizer does not have and a value out of range are errors. */
AG_API bool ag_add_param_group_with(ag_optimizer *opt, ag_optim_args args);
#define ag_add_param_group(opt, ...)                                                               \
    __extension__({                                                                                \
        AG_PRIVATE_OVERRIDE_BEGIN ag_optim_args ag_private_group = {AG_PRIVATE_OPTIM_UNSET,        \
                                                                    .params = __VA_ARGS__};        \
        AG_PRIVATE_OVERRIDE_END ag_add_param_group_with((opt), ag_private_group);                  \
    })

/* len(optimizer.param_groups); -1 on error (a NULL or freed optimizer). */
AG_API int ag_param_group_count(const ag_optimizer *opt);
/* optimizer.param_groups[i]: the group's options, resolved, owned by the optimizer and valid
 * until it is freed. Change them between steps as PyTorch allows (opt's lr, momentum, ...;
 * .params is read-only: changing it has no effect); a step uses them unchecked, as PyTorch's
 * does. NULL on error (a bad optimizer, i out of range). */
AG_API ag_optim_args *ag_param_group(ag_optimizer *opt, int i);

/* optimizer.step(): one update of every parameter that has a ->grad, with each group's
 * options. False on error, no parameter changed: a parameter released or freed with its
 * module since the optimizer was made, a freed optimizer, a call from inside ag_backward or
 * ag_gradcheck (from a function they run), out of memory for the state of a first step. */
AG_API bool ag_optimizer_step(ag_optimizer *opt);
/* optimizer.zero_grad(set_to_none): every parameter's ->grad set to zeros (false, PyTorch
 * 1.13's default) or freed to NULL (true). ag_zero_grad(opt) or ag_zero_grad(opt, true).
 * False on error, as ag_optimizer_step, no ->grad changed. */
AG_API bool ag_optimizer_zero_grad(ag_optimizer *opt, bool set_to_none);
#define AG_PRIVATE_PICK2(a, b, name, ...) name
#define ag_zero_grad(...)                                                                          \
    AG_PRIVATE_PICK2(__VA_ARGS__, ag_optimizer_zero_grad, AG_PRIVATE_ZERO_GRAD1, )(__VA_ARGS__)
#define AG_PRIVATE_ZERO_GRAD1(opt) ag_optimizer_zero_grad(opt, false)

/* Frees opt and its state (not the parameters). NULL is a no-op; a freed optimizer is an
 * error. Schedulers of opt stay, and report its absence when used. */
AG_API void ag_optimizer_free(ag_optimizer *opt);

/* ------------------------------------------------------------------------------------ */
/* Learning-rate schedules (torch.optim.lr_scheduler)                                    */

typedef struct ag_scheduler ag_scheduler;

/* Each constructor does what PyTorch's does: it sets each group's initial_lr (once per
 * optimizer), takes base_lrs from it and makes its first step (epoch 0). Then every
 * ag_step(sched) (ag_scheduler_step) moves one epoch and sets each group's lr with 1.13's
 * chainable formula, in double as Python computes. NULL on error: a NULL or freed optimizer,
 * a required argument missing, a bad value (step_size or T_max not positive: PyTorch divides
 * by them at the first step), out of memory. Free with ag_scheduler_free. */

/* StepLR(optimizer, step_size, gamma=0.1): lr times gamma every step_size epochs. */
typedef struct ag_step_lr_args {
    ag_optimizer *optimizer;
    int64_t step_size;
    double gamma;
    int private_end;
} ag_step_lr_args;
AG_API ag_scheduler *ag_step_lr_with(ag_step_lr_args args);
#define ag_StepLR(...)                                                                             \
    AG_PRIVATE_CALL(ag_step_lr_with, ag_step_lr_args,                                              \
                    (.step_size = INT64_MIN, .gamma = 0.1, .private_end = 0),                      \
                    .optimizer = __VA_ARGS__)

/* MultiStepLR(optimizer, milestones, gamma=0.1): lr times gamma at each milestone epoch
 * (times gamma^k for a milestone listed k times; any order, as 1.13's Counter):
 *     ag_MultiStepLR(opt, AG_MILESTONES(30, 80), .gamma = 0.1)
 * The milestones are copied; (ag_milestones){0} is an empty list. */
typedef struct ag_milestones {
    const int64_t *at;
    int n;
} ag_milestones;
#define AG_MILESTONES(...)                                                                         \
    ((ag_milestones){(const int64_t[]){__VA_ARGS__},                                               \
                     (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))})
typedef struct ag_multi_step_lr_args {
    ag_optimizer *optimizer;
    ag_milestones milestones;
    double gamma;
    int private_end;
} ag_multi_step_lr_args;
AG_API ag_scheduler *ag_multi_step_lr_with(ag_multi_step_lr_args args);
#define ag_MultiStepLR(...)                                                                        \
    AG_PRIVATE_CALL(ag_multi_step_lr_with, ag_multi_step_lr_args,                                  \
                    (.milestones = {NULL, -1}, .gamma = 0.1, .private_end = 0),                    \
                    .optimizer = __VA_ARGS__)

/* ExponentialLR(optimizer, gamma): lr times gamma every epoch. */
typedef struct ag_exponential_lr_args {
    ag_optimizer *optimizer;
    double gamma;
    int private_end;
} ag_exponential_lr_args;
AG_API ag_scheduler *ag_exponential_lr_with(ag_exponential_lr_args args);
#define ag_ExponentialLR(...)                                                                      \
    AG_PRIVATE_CALL(ag_exponential_lr_with, ag_exponential_lr_args,                                \
                    (.gamma = AG_PRIVATE_UNSET, .private_end = 0), .optimizer = __VA_ARGS__)

/* CosineAnnealingLR(optimizer, T_max, eta_min=0): lr from base_lr down to eta_min along half
 * a cosine over T_max epochs, and back up over the next T_max. */
typedef struct ag_cosine_annealing_lr_args {
    ag_optimizer *optimizer;
    int64_t T_max;
    double eta_min;
    int private_end;
} ag_cosine_annealing_lr_args;
AG_API ag_scheduler *ag_cosine_annealing_lr_with(ag_cosine_annealing_lr_args args);
#define ag_CosineAnnealingLR(...)                                                                  \
    AG_PRIVATE_CALL(ag_cosine_annealing_lr_with, ag_cosine_annealing_lr_args,                      \
                    (.T_max = INT64_MIN, .eta_min = 0.0, .private_end = 0),                        \
                    .optimizer = __VA_ARGS__)

/* scheduler.step(): the next epoch's lr into every group. False on error (a NULL or freed
 * scheduler, its optimizer freed). Warns, in PyTorch's words, when its first step comes
 * before any optimizer step. */
AG_API bool ag_scheduler_step(ag_scheduler *sched);
/* scheduler.get_last_lr()[group]: the lr the last step set; NAN on error (a bad scheduler,
 * a group beyond those the last step saw). */
AG_API double ag_get_last_lr(const ag_scheduler *sched, int group);
/* Frees sched. NULL is a no-op; a freed scheduler is an error. */
AG_API void ag_scheduler_free(ag_scheduler *sched);

/* ag_step(opt) is optimizer.step(), ag_step(sched) scheduler.step(). */
#define ag_step(x)                                                                                 \
    _Generic((x), ag_optimizer * : ag_optimizer_step, ag_scheduler * : ag_scheduler_step)(x)

/* ------------------------------------------------------------------------------------ */
/* Gradient clipping (torch.nn.utils)                                                    */

typedef struct ag_clip_args {
    ag_params params;
    double max_norm;
    double norm_type; /* 2.0 unless given; INFINITY for the largest |g| */
    bool error_if_nonfinite;
    int private_end;
} ag_clip_args;

/* clip_grad_norm_(params, max_norm, norm_type=2.0, error_if_nonfinite=False): scales every
 * ->grad by min(1, max_norm / (total + 1e-6)), total the norm of the gradients' norms, and
 * returns total (0 when no parameter has a ->grad; NULL grads are skipped):
 *     ag_clip_grad_norm_(ag_parameters(model), 1.0)
 *     ag_clip_grad_norm_(AG_PARAMS(w), 1.0, .norm_type = INFINITY)
 * NAN on error, no ->grad changed: a released or NULL parameter, max_norm missing, a total
 * that is NaN or infinite when error_if_nonfinite (PyTorch's words), a call from inside
 * ag_backward. An empty gradient counts as norm 0 (PyTorch's inf norm refuses it). */
AG_API double ag_clip_grad_norm_with(ag_clip_args args);
#define ag_clip_grad_norm_(...)                                                                    \
    AG_PRIVATE_CALL(ag_clip_grad_norm_with, ag_clip_args,                                          \
                    (.max_norm = AG_PRIVATE_UNSET, .norm_type = 2.0, .error_if_nonfinite = false,  \
                     .private_end = 0),                                                            \
                    .params = __VA_ARGS__)

/* clip_grad_value_(params, clip_value): every ->grad clamped to [-clip_value, clip_value].
 * False on error, no ->grad changed (a released or NULL parameter). */
AG_API bool ag_clip_grad_value_(ag_params params, double clip_value);

#ifdef __cplusplus
}
#endif
#endif /* AGRAD_OPTIM_H */
