/* Private to optim/: the optimizer's record, which the schedules read and write, and the
 * helpers the three files share. Not installed. */
#ifndef AGRAD_OPTIM_PRIVATE_H
#define AGRAD_OPTIM_PRIVATE_H

#include "agrad_optim.h"
#include "internal.h"

/* What a step keeps for one parameter, made at the first step that needs it. */
typedef struct ag__param_state {
    float *buf[3];     /* SGD: momentum; Adam: exp_avg, exp_avg_sq, max_exp_avg_sq; RMSprop:
                          square_avg, momentum_buffer, grad_avg (NULL until needed) */
    float step;        /* Adam's state['step']: a float32 tensor in PyTorch, so kept as one */
    bool momentum_set; /* SGD: the momentum buffer holds a value (PyTorch's buf is not None) */
} ag__param_state;

/* One parameter group: its options, resolved, and its parameters. */
typedef struct ag__group {
    ag_optim_args args;     /* what ag_param_group hands out; args.params views params */
    ag_tensor **params;     /* the optimizer's copy of the list */
    uint64_t *serials;      /* each parameter's serial when given: tells a reused address */
    ag__param_state *state; /* one per parameter */
    int n;
    double initial_lr; /* set by the first schedule made over the optimizer */
    bool has_initial_lr;
} ag__group;

struct ag_optimizer {
    int kind;               /* AG__SGD, ... */
    const char *name;       /* "SGD", as PyTorch's class */
    ag_optim_args defaults; /* the options it was made with, resolved */
    ag__group **groups;     /* each its own block: a group's address never moves */
    int ngroups;
    size_t cap;
    uint64_t id;    /* never reused: tells a schedule its optimizer was freed */
    uint64_t steps; /* steps since the last schedule was made (_step_count) */
};

enum { AG__SGD, AG__ADAM, AG__ADAMW, AG__RMSPROP };

/* Whether opt is the live optimizer of that id (ids are never reused). Reads nothing of a
 * pointer that is not a live optimizer. */
bool ag__optim_is(const ag_optimizer *opt, uint64_t id);
/* Checks an optimizer argument of op: true when live; else false after an error. */
bool ag__optim_check(const ag_optimizer *opt, const char *op);

/* Whether x is the unset marker of the keyword arguments (AG_PRIVATE_UNSET), by its bits. */
bool ag__unset(double x);

/* Checks a list argument of op named role ("params", "parameters"): its n and tensors, and
 * each tensor live. False after an error; or at once when the list is the empty one of a
 * call that failed (ag_parameters of a freed module), whose error stands. */
bool ag__check_params(ag_params p, const char *op, const char *role);

/* Frees every schedule (ag__optim_reset). */
void ag__schedulers_reset(void);

#endif /* AGRAD_OPTIM_PRIVATE_H */
