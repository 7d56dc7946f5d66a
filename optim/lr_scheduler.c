/* Learning-rate schedules: StepLR, MultiStepLR, ExponentialLR and CosineAnnealingLR, with
 * PyTorch 1.13's chainable get_lr (each step derives the new lr from the group's current one,
 * so that changes made to it from outside carry on), in double as Python computes.
 *
 * A schedule points to its optimizer and remembers the optimizer's id: a freed optimizer, or
 * a new one made at the same address, is reported rather than written to. */
#include "optim_private.h"

#include <math.h>
#include <string.h>

enum { STEP, MULTI_STEP, EXPONENTIAL, COSINE };
static const char *const names[] = {"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"};

struct ag_scheduler {
    int kind;
    ag_optimizer *opt;
    uint64_t opt_id;
    int64_t last_epoch;
    int64_t step_count; /* _step_count: steps made, the one at construction included */
    double *base_lrs;   /* each group's initial_lr when the schedule was made */
    int nbase;
    double *last_lr; /* get_last_lr(): every group's lr after the last step */
    int nlast;
    size_t cap_last;
    int64_t step_size, T_max;
    double gamma, eta_min;
    int64_t *milestones;
    int nmilestones;
};

static ag__live live;

static void destroy(ag_scheduler *s)
{
    ag__live_remove(&live, s);
    ag__free(s->base_lrs);
    ag__free(s->last_lr);
    ag__free(s->milestones);
    ag__free(s);
}

void ag__schedulers_reset(void)
{
    while (live.n) destroy(live.p[live.n - 1]);
    ag__live_clear(&live);
}

/* Checks a scheduler argument (what: "step"); the op's full name into op. */
static bool check(const ag_scheduler *s, const char *what, char op[48])
{
    if (!ag__live_check(&live, s, what, "scheduler", "ag_scheduler_free")) return false;
    snprintf(op, 48, "%s.%s", names[s->kind], what);
    return true;
}

void ag_scheduler_free(ag_scheduler *s)
{
    char op[48];
    if (s && check(s, "scheduler_free", op)) destroy(s);
}

/* The lr that get_lr gives group i, whose lr is now lr; false when the formula leaves the
 * group out (CosineAnnealingLR zips the groups with base_lrs, which lacks a group added
 * after it was made). */
static bool next_lr(const ag_scheduler *s, int i, double lr, double *out)
{
    int64_t e = s->last_epoch;
    *out = lr;
    switch (s->kind) {
    case STEP:
        if (e != 0 && e % s->step_size == 0) *out = lr * s->gamma;
        return true;
    case MULTI_STEP: {
        int count = 0; /* Counter(milestones)[last_epoch] */
        for (int k = 0; k < s->nmilestones; k++) count += s->milestones[k] == e;
        if (count) *out = lr * pow(s->gamma, count);
        return true;
    }
    case EXPONENTIAL:
        if (e != 0) *out = lr * s->gamma;
        return true;
    default: {
        /* (The branch for a schedule resumed at last_epoch > 0 is left out: agrad's start at
         * epoch -1, as PyTorch's default.) */
        double T = (double)s->T_max, eta = s->eta_min;
        if (e == 0) return true;
        int64_t d = e - 1 - s->T_max; /* (e - 1 - T_max) % (2 * T_max) == 0, without 2 T_max */
        if (d % s->T_max == 0 && (d / s->T_max) % 2 == 0) {
            if (i >= s->nbase) return false;
            *out = lr + (s->base_lrs[i] - eta) * (1 - cos(M_PI / T)) / 2;
            return true;
        }
        *out =
            (1 + cos(M_PI * (double)e / T)) / (1 + cos(M_PI * (double)(e - 1) / T)) * (lr - eta) +
            eta;
        return true;
    }
    }
}

/* _LRScheduler.step(): one more epoch, each group's new lr, get_last_lr's list. */
static bool step(ag_scheduler *s, const char *op)
{
    ag_optimizer *opt = s->opt;
    if (!ag__optim_is(opt, s->opt_id))
        return ag__error("%s: its optimizer was freed (by ag_optimizer_free or ag_shutdown)", op) !=
               NULL;
    double *grown = ag__grow(s->last_lr, &s->cap_last, (size_t)opt->ngroups, sizeof *grown);
    if (!grown)
        return ag__error("%s: out of memory for the rates of %d groups", op, opt->ngroups) != NULL;
    s->last_lr = grown;
    if (s->step_count == 1 && opt->steps < 1)
        ag__warn_once(__FILE__, __LINE__,
                      "Detected call of `lr_scheduler.step()` before `optimizer.step()`. In "
                      "PyTorch 1.1.0 and later, you should call them in the opposite order: "
                      "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this will "
                      "result in PyTorch skipping the first value of the learning rate schedule. "
                      "See more details at "
                      "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate");
    s->step_count++;
    s->last_epoch++;
    for (int i = 0; i < opt->ngroups; i++) {
        ag_optim_args *a = &opt->groups[i]->args;
        double lr;
        if (next_lr(s, i, a->lr, &lr)) a->lr = lr;
        s->last_lr[i] = a->lr;
    }
    s->nlast = opt->ngroups;
    return true;
}

bool ag_scheduler_step(ag_scheduler *s)
{
    char op[48];
    return check(s, "step", op) && step(s, op);
}

double ag_get_last_lr(const ag_scheduler *s, int group)
{
    char op[48];
    if (!check(s, "get_last_lr", op)) return NAN;
    if (group < 0 || group >= s->nlast) {
        ag__error("%s: list index out of range (group %d; the last step set %d groups)", op, group,
                  s->nlast);
        return NAN;
    }
    return s->last_lr[group];
}

/* _LRScheduler.__init__: each group's initial_lr (kept when a schedule set it before),
 * base_lrs from them, the optimizer's step count reset, the first step. kind's own fields
 * are in proto. */
static ag_scheduler *make(const ag_scheduler *proto, ag_optimizer *opt)
{
    const char *name = names[proto->kind];
    if (!ag__optim_check(opt, name)) return NULL;
    ag_scheduler *s = ag__malloc(sizeof *s);
    size_t n = (size_t)opt->ngroups, nm = (size_t)(proto->nmilestones > 0 ? proto->nmilestones : 0);
    double *base = ag__malloc(n * sizeof *base), *last = ag__malloc(n * sizeof *last);
    int64_t *milestones = nm ? ag__malloc(nm * sizeof *milestones) : NULL;
    if (!s || !base || !last || (nm && !milestones) || !ag__live_add(&live, s)) {
        ag__free(s);
        ag__free(base);
        ag__free(last);
        ag__free(milestones);
        return ag__error("%s: out of memory making the scheduler", name);
    }
    *s = *proto;
    s->opt = opt;
    s->opt_id = opt->id;
    s->base_lrs = base;
    s->nbase = opt->ngroups;
    s->last_lr = last;
    s->cap_last = n;
    s->milestones = milestones;
    if (nm) memcpy(milestones, proto->milestones, nm * sizeof *milestones);
    for (int i = 0; i < opt->ngroups; i++) {
        ag__group *g = opt->groups[i];
        if (!g->has_initial_lr) g->initial_lr = g->args.lr;
        g->has_initial_lr = true;
        base[i] = g->initial_lr;
    }
    s->last_epoch = -1;
    s->step_count = 0;
    opt->steps = 0;
    char op[48];
    snprintf(op, sizeof op, "%s.step", name);
    step(s, op); /* cannot fail: the optimizer is live and last_lr has room */
    return s;
}

/* "StepLR.__init__() missing 1 required positional argument: 'step_size'" */
static void *missing(int kind, const char *arg)
{
    return ag__error("%s: %s.__init__() missing 1 required positional argument: '%s'", names[kind],
                     names[kind], arg);
}

ag_scheduler *ag_step_lr_with(ag_step_lr_args a)
{
    if (a.step_size == INT64_MIN) return missing(STEP, "step_size");
    if (a.step_size <= 0)
        return ag__error("StepLR: step_size must be a positive number of epochs, got %lld "
                         "(PyTorch divides by it at the first step)",
                         (long long)a.step_size);
    return make(&(ag_scheduler){.kind = STEP, .step_size = a.step_size, .gamma = a.gamma},
                a.optimizer);
}

ag_scheduler *ag_multi_step_lr_with(ag_multi_step_lr_args a)
{
    if (a.milestones.n == -1 && !a.milestones.at) return missing(MULTI_STEP, "milestones");
    if (a.milestones.n < 0 || (a.milestones.n > 0 && !a.milestones.at))
        return ag__error("MultiStepLR: milestones has n = %d and at %s", a.milestones.n,
                         a.milestones.at ? "set" : "NULL");
    return make(&(ag_scheduler){.kind = MULTI_STEP,
                                .gamma = a.gamma,
                                .milestones = (int64_t *)a.milestones.at,
                                .nmilestones = a.milestones.n},
                a.optimizer);
}

ag_scheduler *ag_exponential_lr_with(ag_exponential_lr_args a)
{
    if (ag__unset(a.gamma)) return missing(EXPONENTIAL, "gamma");
    return make(&(ag_scheduler){.kind = EXPONENTIAL, .gamma = a.gamma}, a.optimizer);
}

ag_scheduler *ag_cosine_annealing_lr_with(ag_cosine_annealing_lr_args a)
{
    if (a.T_max == INT64_MIN) return missing(COSINE, "T_max");
    if (a.T_max <= 0)
        return ag__error("CosineAnnealingLR: T_max must be a positive number of epochs, got "
                         "%lld (PyTorch divides by it at the first step)",
                         (long long)a.T_max);
    return make(&(ag_scheduler){.kind = COSINE, .T_max = a.T_max, .eta_min = a.eta_min},
                a.optimizer);
}
