/* Optimizers: SGD, Adam, AdamW and RMSprop, their parameter groups, zero_grad and step.
 *
 * Each update follows PyTorch 1.13's single-tensor code path (torch/optim/sgd.py and its
 * siblings, foreach=False) element by element, in the same order of float32 operations,
 * with each Python scalar rounded to float where PyTorch's kernel rounds it. PyTorch's CPU
 * kernels fuse a + alpha * b (add with alpha) and a + v * b * c (addcmul) into one fused
 * multiply-add, so the same steps here are fmaf; a + v * b / c (addcdiv) is not fused. The
 * scalars that PyTorch computes in Python (1 - beta1 ** step, lr / bias_correction1, ...)
 * are computed in double, as Python does. */
#include "optim_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Shared helpers                                                                        */

/* The bits of AG_PRIVATE_UNSET, __builtin_nan("0x616772"): a quiet NaN whose payload no
 * arithmetic produces, so that a NaN the caller computed is not taken for "unset". */
static const uint64_t unset_bits = UINT64_C(0x7ff8000000616772);

static double unset_value(void)
{
    double d;
    memcpy(&d, &unset_bits, sizeof d);
    return d;
}

bool ag__unset(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b == unset_bits;
}

ag_optim_args ag_optim_args_unset(void)
{
    double u = unset_value();
    return (ag_optim_args){.lr = u,
                           .momentum = u,
                           .dampening = u,
                           .weight_decay = u,
                           .nesterov = -1,
                           .maximize = -1,
                           .betas = {u, u},
                           .eps = u,
                           .amsgrad = -1,
                           .alpha = u,
                           .centered = -1};
}

/* ------------------------------------------------------------------------------------ */
/* The live optimizers                                                                   */

static ag__live live;
static uint64_t next_id = 1;

bool ag__optim_is(const ag_optimizer *opt, uint64_t id)
{
    return ag__live_has(&live, opt) && opt->id == id;
}

bool ag__optim_check(const ag_optimizer *opt, const char *op)
{
    return ag__live_check(&live, opt, op, "optimizer", "ag_optimizer_free");
}

bool ag__check_params(ag_params p, const char *op, const char *role)
{
    /* the empty list of a call that failed (ag_parameters of a freed module): its error
     * stands */
    if (p.n == 0 && !p.tensors && ag_last_error()[0]) return false;
    if (p.n < 0 || (p.n > 0 && !p.tensors))
        return ag__error("%s: %s has n = %d and tensors %s", op, role, p.n,
                         p.tensors ? "set" : "NULL") != NULL;
    return ag__check_list(p.tensors, p.n, op, role);
}

static void free_group(ag__group *g)
{
    if (!g) return;
    for (int i = 0; g->state && i < g->n; i++)
        for (int k = 0; k < 3; k++) ag__free(g->state[i].buf[k]);
    ag__free(g->params);
    ag__free(g->serials);
    ag__free(g->state);
    ag__free(g);
}

static void destroy(ag_optimizer *opt)
{
    for (int i = 0; i < opt->ngroups; i++) free_group(opt->groups[i]);
    ag__free(opt->groups);
    ag__live_remove(&live, opt);
    ag__free(opt);
}

void ag_optimizer_free(ag_optimizer *opt)
{
    if (!opt) return;
    if (!ag__optim_check(opt, "optimizer_free")) return;
    destroy(opt);
}

void ag__optim_reset(void)
{
    ag__schedulers_reset();
    while (live.n) destroy(live.p[live.n - 1]);
    ag__live_clear(&live);
}

/* ------------------------------------------------------------------------------------ */
/* Options: which each optimizer has, its defaults, its checks                           */

static const char *const names[] = {"SGD", "Adam", "AdamW", "RMSprop"};

/* The options as bits, in the order of the fields of ag_optim_args. */
enum {
    O_LR = 1 << 0,
    O_MOMENTUM = 1 << 1,
    O_DAMPENING = 1 << 2,
    O_WEIGHT_DECAY = 1 << 3,
    O_NESTEROV = 1 << 4,
    O_MAXIMIZE = 1 << 5,
    O_BETAS = 1 << 6,
    O_EPS = 1 << 7,
    O_AMSGRAD = 1 << 8,
    O_ALPHA = 1 << 9,
    O_CENTERED = 1 << 10,
};
static const char *const option_names[] = {"lr",       "momentum", "dampening", "weight_decay",
                                           "nesterov", "maximize", "betas",     "eps",
                                           "amsgrad",  "alpha",    "centered"};
static const unsigned has_options[] = {
    [AG__SGD] = O_LR | O_MOMENTUM | O_DAMPENING | O_WEIGHT_DECAY | O_NESTEROV | O_MAXIMIZE,
    [AG__ADAM] = O_LR | O_BETAS | O_EPS | O_WEIGHT_DECAY | O_AMSGRAD | O_MAXIMIZE,
    [AG__ADAMW] = O_LR | O_BETAS | O_EPS | O_WEIGHT_DECAY | O_AMSGRAD | O_MAXIMIZE,
    [AG__RMSPROP] = O_LR | O_ALPHA | O_EPS | O_WEIGHT_DECAY | O_MOMENTUM | O_CENTERED | O_MAXIMIZE,
};

/* The options the caller set. */
static unsigned given(const ag_optim_args *a)
{
    unsigned set = 0;
    set |= !ag__unset(a->lr) ? O_LR : 0;
    set |= !ag__unset(a->momentum) ? O_MOMENTUM : 0;
    set |= !ag__unset(a->dampening) ? O_DAMPENING : 0;
    set |= !ag__unset(a->weight_decay) ? O_WEIGHT_DECAY : 0;
    set |= a->nesterov != -1 ? O_NESTEROV : 0;
    set |= a->maximize != -1 ? O_MAXIMIZE : 0;
    set |= !ag__unset(a->betas[0]) || !ag__unset(a->betas[1]) ? O_BETAS : 0;
    set |= !ag__unset(a->eps) ? O_EPS : 0;
    set |= a->amsgrad != -1 ? O_AMSGRAD : 0;
    set |= !ag__unset(a->alpha) ? O_ALPHA : 0;
    set |= a->centered != -1 ? O_CENTERED : 0;
    return set;
}

/* The first option set that the optimizer does not have, or NULL. */
static const char *unexpected(int kind, const ag_optim_args *a)
{
    unsigned extra = given(a) & ~has_options[kind];
    for (int i = 0; extra; i++, extra >>= 1)
        if (extra & 1) return option_names[i];
    return NULL;
}

static double or_default(double v, double d) { return ag__unset(v) ? d : v; }
static int flag_or(int v, int d) { return v == -1 ? d : v != 0; }

/* The optimizer's PyTorch defaults in the unset fields it has (SGD's lr stays unset:
 * required). */
static void resolve_defaults(int kind, ag_optim_args *a)
{
    unsigned has = has_options[kind];
    bool adam = kind == AG__ADAM || kind == AG__ADAMW;
    if (kind != AG__SGD) a->lr = or_default(a->lr, kind == AG__RMSPROP ? 1e-2 : 1e-3);
    if (has & O_MOMENTUM) a->momentum = or_default(a->momentum, 0);
    if (has & O_DAMPENING) a->dampening = or_default(a->dampening, 0);
    a->weight_decay = or_default(a->weight_decay, kind == AG__ADAMW ? 1e-2 : 0);
    if (has & O_NESTEROV) a->nesterov = flag_or(a->nesterov, 0);
    a->maximize = flag_or(a->maximize, 0);
    if (adam) {
        a->betas[0] = or_default(a->betas[0], 0.9);
        a->betas[1] = or_default(a->betas[1], 0.999);
        a->amsgrad = flag_or(a->amsgrad, 0);
    }
    if (has & O_EPS) a->eps = or_default(a->eps, 1e-8);
    if (has & O_ALPHA) a->alpha = or_default(a->alpha, 0.99);
    if (has & O_CENTERED) a->centered = flag_or(a->centered, 0);
}

/* The unset fields of a from d (a group's options from the optimizer's). */
static void resolve_from(ag_optim_args *a, const ag_optim_args *d)
{
    if (ag__unset(a->lr)) a->lr = d->lr;
    if (ag__unset(a->momentum)) a->momentum = d->momentum;
    if (ag__unset(a->dampening)) a->dampening = d->dampening;
    if (ag__unset(a->weight_decay)) a->weight_decay = d->weight_decay;
    a->nesterov = a->nesterov == -1 ? d->nesterov : a->nesterov != 0;
    a->maximize = a->maximize == -1 ? d->maximize : a->maximize != 0;
    for (int k = 0; k < 2; k++)
        if (ag__unset(a->betas[k])) a->betas[k] = d->betas[k];
    if (ag__unset(a->eps)) a->eps = d->eps;
    a->amsgrad = a->amsgrad == -1 ? d->amsgrad : a->amsgrad != 0;
    if (ag__unset(a->alpha)) a->alpha = d->alpha;
    a->centered = a->centered == -1 ? d->centered : a->centered != 0;
}

/* "Invalid learning rate: -0.1": PyTorch's ValueError for a value out of range. */
static bool invalid(const char *op, const char *what, double v)
{
    char b[AG__PYFLOAT];
    ag__error("%s: Invalid %s: %s", op, what, ag__pyfloat(b, v));
    return false;
}

/* The constructors' checks, in PyTorch's order and with its comparisons (SGD's `lr < 0`
 * lets NaN through where Adam's `not 0.0 <= lr` does not). */
static bool valid(int kind, const ag_optim_args *a, const char *op)
{
    if (kind == AG__SGD) {
        if (!ag__unset(a->lr) && a->lr < 0) return invalid(op, "learning rate", a->lr);
        if (a->momentum < 0) return invalid(op, "momentum value", a->momentum);
        if (a->weight_decay < 0) return invalid(op, "weight_decay value", a->weight_decay);
        if (a->nesterov && (a->momentum <= 0 || a->dampening != 0))
            return ag__error("%s: Nesterov momentum requires a momentum and zero dampening", op) !=
                   NULL;
        return true;
    }
    if (!(0 <= a->lr)) return invalid(op, "learning rate", a->lr);
    if (!(0 <= a->eps)) return invalid(op, "epsilon value", a->eps);
    if (kind == AG__RMSPROP) {
        if (!(0 <= a->momentum)) return invalid(op, "momentum value", a->momentum);
        if (!(0 <= a->weight_decay)) return invalid(op, "weight_decay value", a->weight_decay);
        if (!(0 <= a->alpha)) return invalid(op, "alpha value", a->alpha);
        return true;
    }
    if (!(0 <= a->betas[0] && a->betas[0] < 1))
        return invalid(op, "beta parameter at index 0", a->betas[0]);
    if (!(0 <= a->betas[1] && a->betas[1] < 1))
        return invalid(op, "beta parameter at index 1", a->betas[1]);
    if (!(0 <= a->weight_decay)) return invalid(op, "weight_decay value", a->weight_decay);
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Parameter groups                                                                      */

typedef struct entry {
    const ag_tensor *t;
    int group, index;
} entry;

static int by_address(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    uintptr_t p = (uintptr_t)x->t, q = (uintptr_t)y->t;
    if (p != q) return p < q ? -1 : 1;
    return x->group != y->group ? x->group - y->group : x->index - y->index;
}

/* Refuses a tensor listed twice in the list t of a new group, or listed in it and in a
 * group of opt (whose lists have none twice): sorted by address, then group, the new group
 * last, so that a pair always ends with the new group's entry. False after an error. */
static bool no_duplicates(const ag_optimizer *opt, ag_tensor *const *t, int n, const char *op)
{
    int ng = opt->ngroups;
    size_t total = (size_t)n;
    for (int g = 0; g < ng; g++) total += (size_t)opt->groups[g]->n;
    if (total < 2) return true;
    entry *e = ag__malloc(total * sizeof *e);
    if (!e) return ag__error("%s: out of memory checking %zu parameters", op, total) != NULL;
    size_t k = 0;
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < opt->groups[g]->n; i++)
            e[k++] = (entry){opt->groups[g]->params[i], g, i};
    for (int i = 0; i < n; i++) e[k++] = (entry){t[i], ng, i};
    qsort(e, total, sizeof *e, by_address);
    bool ok = true;
    for (size_t i = 1; i < total && ok; i++) {
        if (e[i].t != e[i - 1].t) continue;
        ok = false;
        if (e[i - 1].group == ng)
            ag__error("%s: optimizer contains a parameter group with duplicate parameters "
                      "(params[%d] and params[%d] are one tensor); PyTorch 1.13 warns that this "
                      "will be an error, agrad refuses it",
                      op, e[i - 1].index, e[i].index);
        else
            ag__error("%s: some parameters appear in more than one parameter group (params[%d] "
                      "is in param_groups[%d])",
                      op, e[i].index, e[i - 1].group);
    }
    ag__free(e);
    return ok;
}

/* A new group of a's parameters (checked by ag__check_params) with a's options, checked as
 * PyTorch's add_param_group checks (each tensor a leaf, lr given, no tensor twice); NULL
 * after an error. */
static ag__group *new_group(ag_optimizer *opt, const ag_optim_args *a, const char *op)
{
    ag_params p = a->params;
    for (int i = 0; i < p.n; i++) {
        const ag_tensor *t = p.tensors[i];
        if (!ag_is_leaf(t) && !(node(t)->flags & AG__F_RETAIN_GRAD))
            return ag__error("%s: can't optimize a non-leaf Tensor (params[%d], made by %s)", op, i,
                             ag_grad_fn_name(t));
    }
    if (ag__unset(a->lr))
        return ag__error("%s: parameter group didn't specify a value of required optimization "
                         "parameter lr",
                         op);
    if (!no_duplicates(opt, p.tensors, p.n, op)) return NULL;
    ag__group *g = ag__malloc(sizeof *g);
    size_t n = (size_t)p.n;
    ag_tensor **params = ag__malloc(n * sizeof *params);
    uint64_t *serials = ag__malloc(n * sizeof *serials);
    ag__param_state *state = ag__malloc(n * sizeof *state);
    if (!g || !params || !serials || !state) {
        ag__free(g);
        ag__free(params);
        ag__free(serials);
        ag__free(state);
        return ag__error("%s: out of memory making a parameter group of %d tensors", op, p.n);
    }
    for (size_t i = 0; i < n; i++) {
        params[i] = p.tensors[i];
        serials[i] = node(params[i])->serial;
        state[i] = (ag__param_state){{NULL, NULL, NULL}, 0.0f, false};
    }
    *g = (ag__group){.args = *a, .params = params, .serials = serials, .state = state, .n = p.n};
    g->args.params = (ag_params){params, NULL, p.n};
    return g;
}

static ag_optimizer *make(int kind, ag_optim_args args)
{
    const char *name = names[kind];
    const char *bad = unexpected(kind, &args);
    if (bad)
        return ag__error("%s: %s.__init__() got an unexpected keyword argument '%s'", name, name,
                         bad);
    resolve_defaults(kind, &args);
    if (!valid(kind, &args, name) || !ag__check_params(args.params, name, "params")) return NULL;
    if (args.params.n == 0)
        return ag__error("%s: optimizer got an empty parameter list%s", name,
                         args.params.tensors ? "" : " (params.tensors is NULL)");
    ag_optimizer *opt = ag__malloc(sizeof *opt);
    ag__group **groups = ag__malloc(sizeof *groups);
    if (!opt || !groups || !ag__live_add(&live, opt)) {
        ag__free(opt);
        ag__free(groups);
        return ag__error("%s: out of memory making the optimizer", name);
    }
    *opt = (ag_optimizer){
        .kind = kind, .name = name, .defaults = args, .groups = groups, .cap = 1, .id = next_id++};
    opt->defaults.params = (ag_params){NULL, NULL, 0};
    ag__group *g = new_group(opt, &args, name);
    if (!g) {
        destroy(opt);
        return NULL;
    }
    opt->groups[opt->ngroups++] = g;
    return opt;
}

ag_optimizer *ag_sgd_with(ag_optim_args args) { return make(AG__SGD, args); }
ag_optimizer *ag_adam_with(ag_optim_args args) { return make(AG__ADAM, args); }
ag_optimizer *ag_adamw_with(ag_optim_args args) { return make(AG__ADAMW, args); }
ag_optimizer *ag_rmsprop_with(ag_optim_args args) { return make(AG__RMSPROP, args); }

bool ag_add_param_group_with(ag_optimizer *opt, ag_optim_args args)
{
    if (!ag__optim_check(opt, "add_param_group")) return false;
    char op[48];
    snprintf(op, sizeof op, "%s.add_param_group", opt->name);
    const char *bad = unexpected(opt->kind, &args);
    if (bad)
        return ag__error("%s: got an unexpected keyword argument '%s' (%s has no such option)", op,
                         bad, opt->name) != NULL;
    resolve_from(&args, &opt->defaults);
    if (!valid(opt->kind, &args, op) || !ag__check_params(args.params, op, "params")) return false;
    ag__group **grown = ag__grow(opt->groups, &opt->cap, (size_t)opt->ngroups + 1, sizeof *grown);
    if (!grown)
        return ag__error("%s: out of memory adding parameter group %d", op, opt->ngroups) != NULL;
    opt->groups = grown;
    ag__group *g = new_group(opt, &args, op);
    if (!g) return false;
    opt->groups[opt->ngroups++] = g;
    return true;
}

int ag_param_group_count(const ag_optimizer *opt)
{
    return ag__optim_check(opt, "param_group_count") ? opt->ngroups : -1;
}

ag_optim_args *ag_param_group(ag_optimizer *opt, int i)
{
    if (!ag__optim_check(opt, "param_group")) return NULL;
    if (i < 0 || i >= opt->ngroups)
        return ag__error("param_group: list index out of range (group %d of an optimizer with "
                         "%d parameter groups)",
                         i, opt->ngroups);
    ag__group *g = opt->groups[i];
    g->args.params = (ag_params){g->params, NULL, g->n}; /* read-only: put back if changed */
    return &g->args;
}

/* ------------------------------------------------------------------------------------ */
/* Checking the parameters before a step                                                 */

/* The role of group g's list in messages: "params", or "param_groups[1]['params']". */
static const char *role(char buf[40], int g)
{
    if (g == 0) return "params";
    snprintf(buf, 40, "param_groups[%d]['params']", g);
    return buf;
}

/* Every parameter live and still the tensor that was given (a released tensor's address
 * may hold a newer one in fast mode: its serial tells). False after an error naming op. */
static bool check_params(const ag_optimizer *opt, const char *op)
{
    for (int g = 0; g < opt->ngroups; g++) {
        const ag__group *gr = opt->groups[g];
        char r[40];
        const char *list = role(r, g);
        for (int i = 0; i < gr->n; i++)
            if (!ag__check_serial_at(gr->params[i], gr->serials[i], op, list, i)) return false;
    }
    return true;
}

/* The names of step and zero_grad in messages, by kind: made once, not at every call. */
static const char *const step_ops[] = {"SGD.step", "Adam.step", "AdamW.step", "RMSprop.step"};
static const char *const zero_grad_ops[] = {"SGD.zero_grad", "Adam.zero_grad", "AdamW.zero_grad",
                                            "RMSprop.zero_grad"};

/* The checks every call that changes tensors makes first (what: "step", ops: its names):
 * the op's name ("SGD.step"), or NULL after an error. */
static const char *begin(const ag_optimizer *opt, const char *what, const char *const ops[])
{
    if (!ag__optim_check(opt, what)) return NULL;
    const char *op = ops[opt->kind];
    if (ag__deferring()) return ag__error("%s: " AG__INSIDE, op);
    return check_params(opt, op) ? op : NULL;
}

/* ------------------------------------------------------------------------------------ */
/* zero_grad                                                                             */

bool ag_optimizer_zero_grad(ag_optimizer *opt, bool set_to_none)
{
    if (!begin(opt, "zero_grad", zero_grad_ops)) return false;
    for (int g = 0; g < opt->ngroups; g++) {
        ag__group *gr = opt->groups[g];
        for (int i = 0; i < gr->n; i++) {
            ag_tensor *p = gr->params[i];
            if (!p->grad) continue;
            if (set_to_none)
                ag__free_grad(p);
            else
                ag_zero_(p->grad); /* as ag_module_zero_grad; cannot fail: p is live */
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* step                                                                                  */

/* The state buffers parameter i of group gr needs for a step with its options, made as
 * zeros (PyTorch's torch.zeros_like). False when out of memory. */
static bool make_state(int kind, const ag__group *gr, int i)
{
    const ag_optim_args *a = &gr->args;
    bool need[3] = {false, false, false};
    if (kind == AG__SGD) {
        need[0] = a->momentum != 0;
    } else if (kind == AG__RMSPROP) {
        need[0] = true;
        need[1] = a->momentum > 0;
        need[2] = a->centered;
    } else {
        need[0] = need[1] = true;
        need[2] = a->amsgrad;
    }
    ag__param_state *st = &gr->state[i];
    size_t bytes = (size_t)gr->params[i]->numel * sizeof(float);
    for (int k = 0; k < 3; k++) {
        if (!need[k] || st->buf[k]) continue;
        st->buf[k] = ag__malloc(bytes);
        if (!st->buf[k]) return false;
        memset(st->buf[k], 0, bytes);
    }
    return true;
}

/* _single_tensor_sgd for one parameter. */
AG__FMA_CLONES static void sgd_update(const ag_optim_args *a, ag_tensor *p, ag__param_state *st)
{
    float *x = p->data, *buf = st->buf[0];
    const float *g = p->grad->data;
    bool decay = a->weight_decay != 0, momentum = a->momentum != 0;
    float wd = (float)a->weight_decay, mu = (float)a->momentum;
    float keep = (float)(1 - a->dampening), step = (float)-a->lr;
    if (!decay && !momentum) { /* param.add_(d_p, alpha=-lr), d_p = +-grad: one loop */
        ag__add_scaled_flat(x, g, a->maximize ? -step : step, p->numel);
        return;
    }
    for (int64_t i = 0; i < p->numel; i++) {
        float d = a->maximize ? -g[i] : g[i];
        if (decay) d = fmaf(x[i], wd, d); /* d_p.add(param, alpha=weight_decay) */
        if (momentum) {
            /* buf = clone(d_p), then buf.mul_(momentum).add_(d_p, alpha=1 - dampening) */
            buf[i] = st->momentum_set ? fmaf(d, keep, buf[i] * mu) : d;
            d = a->nesterov ? fmaf(buf[i], mu, d) : buf[i];
        }
        x[i] = fmaf(d, step, x[i]); /* param.add_(d_p, alpha=-lr) */
    }
    if (momentum) st->momentum_set = true;
}

/* _single_tensor_adam and _single_tensor_adamw for one parameter. */
AG__FMA_CLONES static void adam_update(bool adamw, const ag_optim_args *a, ag_tensor *p,
                                       ag__param_state *st)
{
    float *x = p->data, *m = st->buf[0], *v = st->buf[1], *vmax = st->buf[2];
    const float *g = p->grad->data;
    double b1 = a->betas[0], b2 = a->betas[1];
    st->step += 1.0f; /* step_t += 1, a float32 tensor */
    double step = st->step;
    double bias_correction1 = 1 - pow(b1, step), bias_correction2 = 1 - pow(b2, step);
    double step_size = a->lr / bias_correction1;
    float bc2_sqrt = (float)sqrt(bias_correction2), eps = (float)a->eps;
    float fb1 = (float)b1, fb2 = (float)b2, one_b1 = (float)(1 - b1), one_b2 = (float)(1 - b2);
    float wd = (float)a->weight_decay, decay = (float)(1 - a->lr * a->weight_decay);
    float value = (float)-step_size;
    bool l2 = !adamw && a->weight_decay != 0;
    for (int64_t i = 0; i < p->numel; i++) {
        float gi = a->maximize ? -g[i] : g[i];
        if (adamw) x[i] *= decay;                 /* param.mul_(1 - lr * weight_decay) */
        if (l2) gi = fmaf(x[i], wd, gi);          /* grad.add(param, alpha=weight_decay) */
        m[i] = fmaf(gi, one_b1, m[i] * fb1);      /* exp_avg.mul_(beta1).add_(grad, 1 - beta1) */
        v[i] = fmaf(one_b2 * gi, gi, v[i] * fb2); /* .addcmul_(grad, grad, 1 - beta2) */
        float s = v[i];
        if (a->amsgrad) { /* torch.maximum, which propagates NaN */
            vmax[i] = isnan(vmax[i]) || isnan(s) ? NAN : fmaxf(vmax[i], s);
            s = vmax[i];
        }
        float denom = sqrtf(s) / bc2_sqrt + eps;
        x[i] = x[i] + value * m[i] / denom; /* param.addcdiv_(exp_avg, denom, -step_size) */
    }
}

/* _single_tensor_rmsprop for one parameter. */
AG__FMA_CLONES static void rmsprop_update(const ag_optim_args *a, ag_tensor *p, ag__param_state *st)
{
    float *x = p->data, *sq = st->buf[0], *buf = st->buf[1], *gavg = st->buf[2];
    const float *g = p->grad->data;
    bool decay = a->weight_decay != 0, momentum = a->momentum > 0;
    float wd = (float)a->weight_decay, al = (float)a->alpha, one_al = (float)(1 - a->alpha);
    float eps = (float)a->eps, mu = (float)a->momentum, neg_lr = (float)-a->lr;
    for (int64_t i = 0; i < p->numel; i++) {
        float gi = a->maximize ? -g[i] : g[i];
        if (decay) gi = fmaf(x[i], wd, gi);
        sq[i] = fmaf(one_al * gi, gi, sq[i] * al); /* square_avg.mul_(alpha).addcmul_ */
        float avg;
        if (a->centered) {
            gavg[i] = fmaf(gi, one_al, gavg[i] * al);
            avg = sqrtf(fmaf(-1.0f * gavg[i], gavg[i], sq[i])); /* addcmul(.., value=-1) */
        } else {
            avg = sqrtf(sq[i]);
        }
        avg = avg + eps;
        if (momentum) {
            buf[i] = buf[i] * mu + gi / avg; /* buf.mul_(momentum).addcdiv_(grad, avg) */
            x[i] = fmaf(buf[i], neg_lr, x[i]);
        } else {
            x[i] = x[i] + neg_lr * gi / avg; /* param.addcdiv_(grad, avg, value=-lr) */
        }
    }
}

bool ag_optimizer_step(ag_optimizer *opt)
{
    const char *op = begin(opt, "step", step_ops);
    if (!op) return false;
    /* All the state first, so that running out of memory changes no parameter. */
    for (int g = 0; g < opt->ngroups; g++) {
        ag__group *gr = opt->groups[g];
        for (int i = 0; i < gr->n; i++) {
            if (!gr->params[i]->grad || make_state(opt->kind, gr, i)) continue;
            char r[40], s[AG__SHAPE_STR];
            return ag__error("%s: out of memory making the state of %s[%d] (shape %s)", op,
                             role(r, g), i,
                             ag__shape_str(s, gr->params[i]->ndim, gr->params[i]->shape)) != NULL;
        }
    }
    for (int g = 0; g < opt->ngroups; g++) {
        ag__group *gr = opt->groups[g];
        for (int i = 0; i < gr->n; i++) {
            ag_tensor *p = gr->params[i];
            if (!p->grad) continue;
            switch (opt->kind) {
            case AG__SGD:
                sgd_update(&gr->args, p, &gr->state[i]);
                break;
            case AG__RMSPROP:
                rmsprop_update(&gr->args, p, &gr->state[i]);
                break;
            default:
                adam_update(opt->kind == AG__ADAMW, &gr->args, p, &gr->state[i]);
            }
            ag__bump_version(p); /* as PyTorch's in-place write under no_grad */
        }
    }
    opt->steps++;
    return true;
}
