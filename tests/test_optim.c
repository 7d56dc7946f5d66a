/* optim: SGD, Adam, AdamW and RMSprop trajectories, parameter groups and clipping against
 * PyTorch; the schedules' rates exactly; defaults, every validation error in PyTorch's
 * words; misuse (freed optimizers and schedules, released parameters, freed modules, calls
 * from inside backward); memory (no allocation after the first step, no tape tensor);
 * refused allocations. */
#include "agrad_test.h"
#include <agrad_optim.h>

#include <stdint.h>
#include <stdio.h>

#include "ref/optim_ref.h"

/* ------------------------------------------------------------------------------------ */
/* Trajectories against PyTorch                                                          */

/* |got - want| relative to the largest |value| of want's n values (a value that passes
 * near zero is measured against its tensor's scale, not against itself). */
static double rel_error(float got, float want, const float *all, int n)
{
    double scale = 0;
    for (int i = 0; i < n; i++)
        if (fabs((double)all[i]) > scale) scale = fabs((double)all[i]);
    double d = fabs((double)got - (double)want);
    return d == 0 ? 0 : d / scale;
}

/* Sets t->grad (zeros or NULL) to the n values at g, unless they are NAN (None). */
static void give_grad(ag_tensor *t, const float *g)
{
    if (!isnan(g[0])) cr_assert(ag_backward_with(t, ag_tensor_from(g, ag_size(t)), false));
}

/* The end-to-end tolerance (see trajectories_equal_pytorchs). With -Dblas=openblas the
 * matmul's sums run in OpenBLAS's order, and RMSprop's division by a small root carries
 * the difference to 7.4e-6 of the scale (measured): 1e-5 there, the figure. */
#if AGT_HAVE_BLAS
#define END_TO_END_TOL 1e-5
#else
#define END_TO_END_TOL 1e-6
#endif

/* Runs case c's 20 steps and returns the largest relative error against PyTorch. With
 * replay, each step's gradients are PyTorch's (recorded) rather than agrad's backward's. */
static double run_case(const optim_case *c, bool replay)
{
    ag_tensor *X = ag_tensor_from(optim_X, AG_SHAPE(5, 3));
    ag_tensor *Y = ag_tensor_from(optim_Y, AG_SHAPE(5, 2));
    ag_tensor *W = ag_tensor_from(optim_W0, AG_SHAPE(2, 3), true);
    ag_tensor *b = ag_tensor_from(optim_B0, AG_SHAPE(2), true);
    ag_tensor *cc = ag_tensor_from(optim_C0, AG_SHAPE(2), true);
    ag_optimizer *opt = c->make(W, b, cc);
    cr_assert_not_null(opt, "%s: %s", c->name, ag_last_error());
    ag_mark start = ag_mark_now();
    double worst = 0;
    for (int s = 0; s < OPTIM_STEPS; s++) {
        cr_assert(ag_zero_grad(opt, c->set_to_none), "%s: %s", c->name, ag_last_error());
        const float *g = c->grads + s * OPTIM_VALUES;
        if (replay) {
            give_grad(W, g);
            give_grad(b, g + 6);
            give_grad(cc, g + 8);
        } else {
            ag_tensor *loss = ag_mse_loss(ag_add(ag_matmul(X, ag_t(W)), b), Y);
            if (c->uses_c && s % 2 == 0) loss = ag_add(loss, ag_mul(ag_sum(ag_mul(cc, cc)), 0.5));
            cr_assert(ag_backward(loss), "%s: %s", c->name, ag_last_error());
        }
        if (c->clip == 1)
            cr_assert(!isnan(
                ag_clip_grad_norm_(AG_PARAMS(W, b, cc), c->clip_max, .norm_type = c->norm_type)));
        else if (c->clip == 2)
            cr_assert(ag_clip_grad_value_(AG_PARAMS(W, b, cc), c->clip_max));
        cr_assert(ag_step(opt), "%s: %s", c->name, ag_last_error());
        const float *want = c->traj + s * OPTIM_VALUES;
        const float *got[3] = {W->data, b->data, cc->data};
        const int at[3] = {0, 6, 8}, n[3] = {6, 2, 2};
        for (int t = 0; t < 3; t++)
            for (int i = 0; i < n[t]; i++) {
                double e = rel_error(got[t][i], want[at[t] + i], want + at[t], n[t]);
                cr_assert(replay ? e == 0 : e <= END_TO_END_TOL,
                          "%s, step %d, value %d: %.9g, PyTorch %.9g", c->name, s, at[t] + i,
                          (double)got[t][i], (double)want[at[t] + i]);
                if (e > worst) worst = e;
            }
        if (!c->uses_c) cr_assert_null(cc->grad, "%s: c, never used, got a gradient", c->name);
        ag_release(start);
    }
    ag_optimizer_free(opt);
    return worst;
}

/* End to end (agrad's own backward, whose floats may differ from PyTorch's in the last
 * bit and so drift): within 1e-6 of each parameter's scale (the issue asks 1e-5; 5.7e-7 is
 * the most seen, with gcc, clang and the sanitizers alike). With PyTorch's gradients given
 * to each step: the same floats, bit for bit, clipping included. */
Test(optim_pytorch, trajectories_equal_pytorchs)
{
    static const char *const kinds[] = {"SGD", "Adam", "AdamW", "RMSprop"};
    double worst[4] = {0}, worst_replay[4] = {0};
    for (size_t k = 0; k < sizeof optim_cases / sizeof *optim_cases; k++) {
        int kind = optim_cases[k].kind;
        double e = run_case(&optim_cases[k], false);
        if (e > worst[kind]) worst[kind] = e;
        ag_shutdown();
        e = run_case(&optim_cases[k], true);
        if (e > worst_replay[kind]) worst_replay[kind] = e;
        ag_shutdown();
    }
    for (int k = 0; k < 4; k++)
        cr_log_info("%s: largest difference from PyTorch over 20 steps, relative to the "
                    "parameter's scale: %.3g end to end, %.3g with PyTorch's gradients",
                    kinds[k], worst[k], worst_replay[k]);
    test_finish();
}

Test(optim_pytorch, a_parameter_without_a_gradient_is_skipped)
{
    ag_tensor *w = VEC(true, 1, 2), *unused = VEC(true, 5, 6);
    ag_optimizer *opt = ag_SGD(AG_PARAMS(w, unused), .lr = 0.5, .momentum = 0.9);
    for (int s = 0; s < 3; s++) {
        ag_backward(ag_sum(w));
        cr_assert(ag_step(opt));
    }
    CHECK("unused", unused, 0, 5, 6);
    cr_assert_null(unused->grad);
    /* grads 1, 2, 3 (accumulated); buf 1, 2.9, 5.61; w 1 - 0.5 * (1 + 2.9 + 5.61) */
    CHECK("w", w, 1e-6f, 1 - 0.5f * 9.51f, 2 - 0.5f * 9.51f);
    test_finish();
}

Test(optim_pytorch, plain_sgd_rounds_each_update_once_over_a_block_and_its_tail)
{
    /* param.add_(d_p, alpha=-lr) with param 1, d_p 1 + 2^-23, lr 1 - 2^-23: 2^-46 rounded
     * once, 0 with the product rounded first. Nine elements: the flat loop's block of 8
     * and one more; with maximize, d_p = -grad from the opposite gradient. */
    const float one = 1.0f, next = 1.0f + 0x1p-23f, tiny = 0x1p-46f;
    for (int maximize = 0; maximize < 2; maximize++) {
        float g = maximize ? -next : next;
        ag_tensor *w = VEC(true, one, one, one, one, one, one, one, one, one);
        ag_tensor *c = VEC(false, g, g, g, g, g, g, g, g, g);
        ag_optimizer *opt = ag_SGD(AG_PARAMS(w), .lr = 1.0 - 0x1p-23, .maximize = maximize);
        cr_assert(ag_backward(ag_sum(ag_mul(w, c))));
        cr_assert(ag_step(opt));
        CHECK(maximize ? "maximize" : "w", w, 0, tiny, tiny, tiny, tiny, tiny, tiny, tiny, tiny,
              tiny);
        ag_optimizer_free(opt);
    }
    test_finish();
}

Test(optim_pytorch, zero_grad_zeroes_or_frees_the_gradients)
{
    ag_tensor *w = VEC(true, 1, 2, 3);
    ag_optimizer *opt = ag_SGD(AG_PARAMS(w), 0.1);
    cr_assert(ag_zero_grad(opt), "nothing to zero is fine");
    ag_backward(ag_sum(w));
    ag_tensor *g = w->grad;
    ag_tensor *saved = ag_sum(ag_mul(VEC(true, 1, 1, 1), g)); /* its backward reads g */
    cr_assert(ag_zero_grad(opt));
    cr_assert_eq(w->grad, g, "set_to_none=False keeps the tensor");
    CHECK("grad", w->grad, 0, 0, 0, 0);
    record_errors();
    cr_assert(!ag_backward(saved), "zeroing in place moves the grad's version, as zero_() does");
    EXPECT_ERROR("backward", "modified by an inplace operation");
    cr_assert(ag_zero_grad(opt, true));
    cr_assert_null(w->grad, "set_to_none=True frees it");
    cr_assert(ag_step(opt), "a step without gradients skips everything");
    CHECK("w", w, 0, 1, 2, 3);
    test_finish();
}

Test(optim_pytorch, schedules_give_pytorchs_rates_exactly)
{
    for (size_t k = 0; k < sizeof sched_cases / sizeof *sched_cases; k++) {
        const sched_case *c = &sched_cases[k];
        ag_tensor *p0 = ag_zeros(AG_SHAPE(1), true), *p1 = ag_zeros(AG_SHAPE(1), true);
        ag_tensor *p2 = ag_zeros(AG_SHAPE(1), true);
        ag_optimizer *opt = ag_SGD(AG_PARAMS(p0), .lr = 0.1);
        cr_assert(ag_add_param_group(opt, AG_PARAMS(p1), .lr = 0.05));
        ag_scheduler *s[2] = {NULL, NULL};
        for (int i = 0; i < c->nsched; i++) {
            s[i] = c->make(opt, i);
            cr_assert_not_null(s[i], "%s: %s", c->name, ag_last_error());
        }
        for (int e = 0; e <= c->epochs; e++) {
            if (e > 0) {
                if (c->set_lr.epoch == e - 1)
                    ag_param_group(opt, c->set_lr.group)->lr = c->set_lr.lr;
                if (c->add_group.epoch == e - 1)
                    cr_assert(ag_add_param_group(opt, AG_PARAMS(p2), .lr = c->add_group.lr));
                cr_assert(ag_step(opt));
                for (int i = 0; i < c->nsched; i++) cr_assert(ag_step(s[i]), "%s", ag_last_error());
            }
            const double *want = c->lrs + e * 2 * SCHED_GROUPS;
            for (int g = 0; g < SCHED_GROUPS; g++) {
                if (isnan(want[g])) {
                    cr_assert_eq(ag_param_group_count(opt), g, "%s, epoch %d: group count", c->name,
                                 e);
                    break;
                }
                double lr = ag_param_group(opt, g)->lr, last = ag_get_last_lr(s[0], g);
                cr_assert(lr == want[g], "%s, epoch %d, group %d: lr %.17g, PyTorch %.17g", c->name,
                          e, g, lr, want[g]);
                cr_assert(last == want[SCHED_GROUPS + g],
                          "%s, epoch %d, group %d: get_last_lr %.17g, PyTorch %.17g", c->name, e, g,
                          last, want[SCHED_GROUPS + g]);
            }
        }
        ag_shutdown();
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Clipping                                                                              */

Test(optim_clip, clip_grad_norm_returns_pytorchs_total_and_scales_like_it)
{
    for (size_t k = 0; k < sizeof clip_cases / sizeof *clip_cases; k++) {
        const clip_case *c = &clip_cases[k];
        ag_tensor *p[9];
        const float *g = c->set ? clip_grads_1 : clip_grads_0;
        int n = clip_counts[c->set];
        for (int i = 0; i < n; i++) {
            p[i] = ag_zeros(AG_SHAPE(clip_sizes[c->set][i]), true);
            if (c->set == 0 && i == 2) continue; /* no gradient */
            cr_assert(
                ag_backward_with(p[i], ag_tensor_from(g, AG_SHAPE(clip_sizes[c->set][i])), false),
                "%s", ag_last_error());
            g += clip_sizes[c->set][i];
        }
        double total =
            ag_clip_grad_norm_((ag_params){p, NULL, n}, c->max_norm, .norm_type = c->norm_type);
        cr_assert((float)total == c->total, "case %zu (p = %g): total %.9g, PyTorch %.9g", k,
                  c->norm_type, total, (double)c->total);
        const float *want = c->after;
        for (int i = 0; i < n; i++) {
            if (!p[i]->grad) continue;
            for (int64_t j = 0; j < p[i]->numel; j++, want++)
                cr_assert(p[i]->grad->data[j] == *want,
                          "case %zu (p = %g): grad %d[%lld] %.9g, PyTorch %.9g", k, c->norm_type, i,
                          (long long)j, (double)p[i]->grad->data[j], (double)*want);
        }
        ag_shutdown();
    }
    test_finish();
}

Test(optim_clip, clip_grad_norm_without_gradients_is_zero_and_value_clamps)
{
    ag_tensor *w = VEC(true, 1, 2, 3);
    cr_assert(ag_clip_grad_norm_(AG_PARAMS(w), 1.0) == 0, "no gradient: total 0");
    ag_backward_with(w, VEC(false, -2, 0.05f, NAN), false);
    cr_assert(ag_clip_grad_value_(AG_PARAMS(w), 0.1));
    cr_assert(w->grad->data[0] == -0.1f && w->grad->data[1] == 0.05f && isnan(w->grad->data[2]),
              "clamped to [-0.1, 0.1], NaN kept: %g %g %g", (double)w->grad->data[0],
              (double)w->grad->data[1], (double)w->grad->data[2]);
    ag_zero_grad(ag_SGD(AG_PARAMS(w), 0.1), true);
    ag_backward_with(w, VEC(false, -2, 0.05f, 7), false);
    cr_assert(ag_clip_grad_value_(AG_PARAMS(w), -1.0), "a negative bound: max everywhere");
    CHECK("negative bound", w->grad, 0, -1, -1, -1);
    cr_assert(ag_clip_grad_value_(AG_PARAMS(w), NAN));
    for (int i = 0; i < 3; i++) cr_assert(isnan(w->grad->data[i]), "a NaN bound: NaN everywhere");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Options: defaults, positional lr, groups, changing a group                            */

Test(optim_options, unset_options_take_each_optimizers_pytorch_defaults)
{
    ag_tensor *w = VEC(true, 1);
    ag_optim_args *a = ag_param_group(ag_SGD(AG_PARAMS(w), 0.25), 0);
    cr_assert(a->lr == 0.25 && a->momentum == 0 && a->dampening == 0 && a->weight_decay == 0 &&
              a->nesterov == 0 && a->maximize == 0);
    cr_assert(isnan(a->betas[0]) && isnan(a->eps) && isnan(a->alpha) && a->amsgrad == -1 &&
                  a->centered == -1,
              "options SGD does not have stay unset");
    cr_assert_eq(a->params.n, 1);
    cr_assert_eq(a->params.tensors[0], w);
    a = ag_param_group(ag_Adam(AG_PARAMS(w)), 0);
    cr_assert(a->lr == 1e-3 && a->betas[0] == 0.9 && a->betas[1] == 0.999 && a->eps == 1e-8 &&
              a->weight_decay == 0 && a->amsgrad == 0 && a->maximize == 0);
    a = ag_param_group(ag_AdamW(AG_PARAMS(w), .betas = {0.5, 0.6}), 0);
    cr_assert(a->lr == 1e-3 && a->betas[0] == 0.5 && a->betas[1] == 0.6 && a->eps == 1e-8 &&
              a->weight_decay == 1e-2 && a->amsgrad == 0);
    a = ag_param_group(ag_RMSprop(AG_PARAMS(w), .centered = true), 0);
    cr_assert(a->lr == 1e-2 && a->alpha == 0.99 && a->eps == 1e-8 && a->weight_decay == 0 &&
              a->momentum == 0 && a->centered == 1 && a->maximize == 0);
    /* SGD's order is PyTorch's: lr, momentum, dampening, weight_decay, nesterov */
    a = ag_param_group(ag_SGD(AG_PARAMS(w), 0.5, 0.9, 0.0, 0.1, true), 0);
    cr_assert(a->lr == 0.5 && a->momentum == 0.9 && a->weight_decay == 0.1 && a->nesterov == 1);
    /* without the macros: the plain function from an unset struct */
    ag_optim_args args = ag_optim_args_unset();
    args.params = AG_PARAMS(w);
    args.lr = 0.125;
    a = ag_param_group(ag_sgd_with(args), 0);
    cr_assert(a->lr == 0.125 && a->momentum == 0);
    test_finish();
}

Test(optim_options, the_unset_marker_is_a_nan_of_agrads_own)
{
    double u = AG_PRIVATE_UNSET;
    uint64_t bits;
    memcpy(&bits, &u, sizeof bits);
    cr_assert_eq(bits, UINT64_C(0x7ff8000000616772), "AG_PRIVATE_UNSET is %llx",
                 (unsigned long long)bits);
    ag_optim_args args = ag_optim_args_unset();
    memcpy(&bits, &args.lr, sizeof bits);
    cr_assert_eq(bits, UINT64_C(0x7ff8000000616772));
    /* a NaN the caller computed is a value, not "unset": Adam refuses it, SGD's lr < 0 lets
     * it through, as PyTorch's do */
    record_errors();
    ag_tensor *w = VEC(true, 1);
    volatile double zero = 0;
    cr_assert_null(ag_Adam(AG_PARAMS(w), .lr = zero / zero));
    EXPECT_ERROR("Adam lr=nan", "Adam: Invalid learning rate: nan");
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), .lr = zero / zero);
    cr_assert_not_null(o, "%s", ag_last_error());
    cr_assert(isnan(ag_param_group(o, 0)->lr));
    test_finish();
}

Test(optim_options, groups_take_the_optimizers_options_unless_given_and_can_be_changed)
{
    ag_tensor *w = VEC(true, 1, 2), *b = VEC(true, 3), *c = VEC(true, 4);
    ag_optimizer *opt = ag_SGD(AG_PARAMS(w), .lr = 0.1, .momentum = 0.9, .weight_decay = 0.5);
    cr_assert(ag_add_param_group(opt, AG_PARAMS(b), .lr = 0.01));
    cr_assert(ag_add_param_group(opt, AG_PARAMS(c), .momentum = 0.0, .maximize = true));
    cr_assert_eq(ag_param_group_count(opt), 3);
    ag_optim_args *g1 = ag_param_group(opt, 1), *g2 = ag_param_group(opt, 2);
    cr_assert(g1->lr == 0.01 && g1->momentum == 0.9 && g1->weight_decay == 0.5);
    cr_assert(g2->lr == 0.1 && g2->momentum == 0 && g2->maximize == 1);
    /* optimizer.param_groups[1]['lr'] = 0: that group stops moving */
    g1->lr = 0;
    g1->params = (ag_params){0}; /* read-only: ignored */
    ag_backward(ag_add(ag_add(ag_sum(w), ag_sum(b)), ag_sum(c)));
    cr_assert(ag_step(opt));
    CHECK("b, lr 0", b, 0, 3);
    /* w: g = 1 + 0.5 * w, buf = g, w - 0.1 g */
    CHECK("w", w, 1e-6f, 1 - 0.1f * 1.5f, 2 - 0.1f * 2.0f);
    /* c: maximize, g = -(1) + 0.5 * 4, no momentum, c - 0.1 g */
    CHECK("c", c, 1e-6f, 4 - 0.1f * 1.0f);
    cr_assert_eq(ag_param_group(opt, 1)->params.n, 1, "params is put back");
    test_finish();
}

Test(optim_options, ag_step_dispatches_on_its_argument)
{
    ag_tensor *w = VEC(true, 1);
    ag_optimizer *opt = ag_SGD(AG_PARAMS(w), .lr = 1.0);
    ag_scheduler *s = ag_ExponentialLR(opt, 0.5);
    ag_backward(ag_sum(w));
    cr_assert(ag_step(opt));
    cr_assert(ag_step(s));
    CHECK("w", w, 0, 0);
    cr_assert(ag_get_last_lr(s, 0) == 0.5);
    cr_assert(ag_param_group(opt, 0)->lr == 0.5);
    ag_scheduler_free(s);
    ag_scheduler_free(NULL);
    ag_optimizer_free(opt);
    ag_optimizer_free(NULL);
    test_finish();
}

Test(optim_options, a_module_and_retained_non_leaves_can_be_optimized)
{
    ag_manual_seed(0);
    ag_module *model = ag_Linear(2, 1);
    ag_optimizer *opt = ag_SGD(ag_parameters(model), .lr = 0.1, .momentum = 0.9);
    cr_assert_not_null(opt, "%s", ag_last_error());
    cr_assert_eq(ag_param_group(opt, 0)->params.n, 2);
    ag_tensor *x = VEC(true, 1, 2);
    ag_tensor *y = ag_retain_grad(ag_mul(x, 2));
    cr_assert(ag_add_param_group(opt, AG_PARAMS(y)), "%s", ag_last_error());
    ag_module_free(model);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Validation errors, in PyTorch's words                                                 */

Test(optim_errors, options_an_optimizer_does_not_have)
{
    record_errors();
    ag_tensor *w = VEC(true, 1);
    cr_assert_null(ag_SGD(AG_PARAMS(w), .lr = 0.1, .betas = {0.9, 0.9}));
    EXPECT_ERROR("SGD betas", "SGD: SGD.__init__() got an unexpected keyword argument 'betas'");
    cr_assert_null(ag_SGD(AG_PARAMS(w), .lr = 0.1, .eps = 1e-3));
    EXPECT_ERROR("SGD eps", "SGD.__init__() got an unexpected keyword argument 'eps'");
    cr_assert_null(ag_Adam(AG_PARAMS(w), .alpha = 1.0));
    EXPECT_ERROR("Adam alpha", "Adam: Adam.__init__() got an unexpected keyword argument 'alpha'");
    cr_assert_null(ag_AdamW(AG_PARAMS(w), .momentum = 1.0));
    EXPECT_ERROR("AdamW momentum",
                 "AdamW.__init__() got an unexpected keyword argument 'momentum'");
    cr_assert_null(ag_AdamW(AG_PARAMS(w), .nesterov = false));
    EXPECT_ERROR("AdamW nesterov",
                 "AdamW.__init__() got an unexpected keyword argument 'nesterov'");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .betas[1] = 0.5));
    EXPECT_ERROR("RMSprop betas", "RMSprop.__init__() got an unexpected keyword argument 'betas'");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .amsgrad = true));
    EXPECT_ERROR("RMSprop amsgrad", "'amsgrad'");
    cr_assert_null(ag_Adam(AG_PARAMS(w), .dampening = 0));
    EXPECT_ERROR("Adam dampening", "'dampening'");
    cr_assert_null(ag_SGD(AG_PARAMS(w), .lr = 1, .centered = 0));
    EXPECT_ERROR("SGD centered", "'centered'");
    ag_optimizer *o = ag_Adam(AG_PARAMS(w));
    cr_assert(!ag_add_param_group(o, AG_PARAMS(VEC(true, 2)), .momentum = 0.9));
    EXPECT_ERROR("add_param_group momentum", "Adam.add_param_group: got an unexpected keyword "
                                             "argument 'momentum' (Adam has no such option)");
    cr_assert_eq(ag_param_group_count(o), 1);
    test_finish();
}

Test(optim_errors, values_out_of_range_in_pytorchs_words)
{
    record_errors();
    ag_tensor *w = VEC(true, 1);
    cr_assert_null(ag_SGD(AG_PARAMS(w)));
    EXPECT_ERROR(
        "SGD without lr",
        "SGD: parameter group didn't specify a value of required optimization parameter lr");
    cr_assert_null(ag_SGD(AG_PARAMS(w), -0.1));
    EXPECT_ERROR("SGD lr", "SGD: Invalid learning rate: -0.1");
    cr_assert_null(ag_SGD(AG_PARAMS(w), 0.1, .momentum = -1e-5));
    EXPECT_ERROR("SGD momentum", "SGD: Invalid momentum value: -1e-05");
    cr_assert_null(ag_SGD(AG_PARAMS(w), 0.1, .weight_decay = -1e20));
    EXPECT_ERROR("SGD weight_decay", "SGD: Invalid weight_decay value: -1e+20");
    cr_assert_null(ag_SGD(AG_PARAMS(w), 0.1, .nesterov = true));
    EXPECT_ERROR("SGD nesterov", "SGD: Nesterov momentum requires a momentum and zero dampening");
    cr_assert_null(ag_SGD(AG_PARAMS(w), 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true));
    EXPECT_ERROR("SGD nesterov dampening",
                 "Nesterov momentum requires a momentum and zero dampening");
    cr_assert_null(ag_Adam(AG_PARAMS(w), .betas = {1.0, 0.9}));
    EXPECT_ERROR("Adam beta 0", "Adam: Invalid beta parameter at index 0: 1.0");
    cr_assert_null(ag_AdamW(AG_PARAMS(w), .betas = {0.5, -0.25}));
    EXPECT_ERROR("AdamW beta 1", "AdamW: Invalid beta parameter at index 1: -0.25");
    cr_assert_null(ag_Adam(AG_PARAMS(w), .eps = -1));
    EXPECT_ERROR("Adam eps", "Adam: Invalid epsilon value: -1.0");
    cr_assert_null(ag_Adam(AG_PARAMS(w), .weight_decay = -0.5));
    EXPECT_ERROR("Adam weight_decay", "Adam: Invalid weight_decay value: -0.5");
    cr_assert_null(ag_AdamW(AG_PARAMS(w), .lr = -1e-300));
    EXPECT_ERROR("AdamW lr", "AdamW: Invalid learning rate: -1e-300");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .alpha = -1));
    EXPECT_ERROR("RMSprop alpha", "RMSprop: Invalid alpha value: -1.0");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .momentum = -2.5));
    EXPECT_ERROR("RMSprop momentum", "RMSprop: Invalid momentum value: -2.5");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .eps = -1e-9, .alpha = -1));
    EXPECT_ERROR("RMSprop eps first", "RMSprop: Invalid epsilon value: -1e-09");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .weight_decay = -1e-3));
    EXPECT_ERROR("RMSprop weight_decay", "RMSprop: Invalid weight_decay value: -0.001");
    cr_assert_null(ag_RMSprop(AG_PARAMS(w), .lr = -INFINITY));
    EXPECT_ERROR("RMSprop lr", "RMSprop: Invalid learning rate: -inf");
    /* add_param_group checks its values as the constructor does (PyTorch does not) */
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), 0.1);
    cr_assert(!ag_add_param_group(o, AG_PARAMS(VEC(true, 2)), .lr = -1));
    EXPECT_ERROR("add_param_group lr", "SGD.add_param_group: Invalid learning rate: -1.0");
    cr_assert(!ag_add_param_group(o, AG_PARAMS(VEC(true, 2)), .nesterov = true));
    EXPECT_ERROR("add_param_group nesterov", "Nesterov momentum requires a momentum");
    cr_assert_eq(ag_param_group_count(o), 1);
    test_finish();
}

Test(optim_errors, numbers_are_written_as_python_writes_them)
{
    record_errors();
    ag_tensor *w = VEC(true, 1);
    static const struct {
        double lr;
        const char *text;
    } cases[] = {{-1234.5, "-1234.5"},
                 {-1e16, "-1e+16"},
                 {-1e15, "-1000000000000000.0"},
                 {-0.0001, "-0.0001"},
                 {-0.00001, "-1e-05"},
                 {-1.5e-7, "-1.5e-07"},
                 {-123456789012345680.0, "-1.2345678901234568e+17"},
                 {-2, "-2.0"},
                 {-0.3, "-0.3"},
                 {-(0.1 + 0.2), "-0.30000000000000004"},
                 {-5e-324, "-5e-324"},
                 {-1.7976931348623157e308, "-1.7976931348623157e+308"}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        cr_assert_null(ag_SGD(AG_PARAMS(w), cases[k].lr));
        char want[80];
        snprintf(want, sizeof want, "SGD: Invalid learning rate: %s", cases[k].text);
        cr_assert_str_eq(ag_last_error(), want);
        ag_clear_error();
    }
    test_finish();
}

Test(optim_errors, parameter_lists)
{
    record_errors();
    ag_tensor *w = VEC(true, 1), *v = VEC(true, 2);
    cr_assert_null(ag_SGD((ag_params){(ag_tensor *[]){w}, NULL, 0}, 0.1));
    EXPECT_ERROR("empty", "SGD: optimizer got an empty parameter list");
    ag_module *relu = ag_ReLU();
    cr_assert_null(ag_Adam(ag_parameters(relu)));
    EXPECT_ERROR("a module without parameters", "Adam: optimizer got an empty parameter list");
    ag_module_free(relu);
    cr_assert_null(ag_Adam(ag_parameters(relu)));
    EXPECT_ERROR("a freed module's list: its own error, once",
                 "parameters: the module is not a live module");
    cr_assert(isnan(ag_clip_grad_norm_(ag_parameters(relu), 1.0)));
    EXPECT_ERROR("the same for clipping", "parameters: the module is not a live module");
    cr_assert_null(ag_SGD((ag_params){NULL, NULL, 2}, 0.1));
    EXPECT_ERROR("NULL tensors", "SGD: params has n = 2 and tensors NULL");
    cr_assert_null(ag_SGD(AG_PARAMS(w, NULL), 0.1));
    EXPECT_ERROR("NULL tensor", "SGD: argument params[1] is NULL");
    cr_assert_null(ag_SGD(AG_PARAMS(ag_mul(w, 2)), 0.1));
    EXPECT_ERROR("non-leaf",
                 "SGD: can't optimize a non-leaf Tensor (params[0], made by MulBackward0)");
    cr_assert_null(ag_SGD(AG_PARAMS(w, v, w), 0.1));
    EXPECT_ERROR("twice", "SGD: optimizer contains a parameter group with duplicate parameters "
                          "(params[0] and params[2] are one tensor)");
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), 0.1);
    cr_assert(!ag_add_param_group(o, AG_PARAMS(v, w)));
    EXPECT_ERROR("two groups",
                 "SGD.add_param_group: some parameters appear in more than one parameter group "
                 "(params[1] is in param_groups[0])");
    cr_assert(ag_add_param_group(o, (ag_params){(ag_tensor *[]){v}, NULL, 0}),
              "an empty group is fine, as in PyTorch");
    cr_assert_eq(ag_param_group_count(o), 2);
    ag_mark m = ag_mark_now();
    ag_tensor *t = VEC(true, 3);
    ag_release(m);
    ag_set_checked(true);
    cr_assert(!ag_add_param_group(o, AG_PARAMS(t)));
    EXPECT_ERROR("released", "SGD.add_param_group: argument params[0] is a released tensor");
    cr_assert_null(ag_param_group(o, 2));
    EXPECT_ERROR("index", "param_group: list index out of range (group 2 of an optimizer with 2 "
                          "parameter groups)");
    cr_assert_null(ag_param_group(o, -1));
    EXPECT_ERROR("index", "list index out of range");
    test_finish();
}

Test(optim_errors, schedules)
{
    record_errors();
    ag_tensor *w = VEC(true, 1);
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), 0.1);
    cr_assert_null(ag_StepLR(o));
    EXPECT_ERROR("StepLR", "StepLR: StepLR.__init__() missing 1 required positional argument: "
                           "'step_size'");
    cr_assert_null(ag_StepLR(o, 0));
    EXPECT_ERROR("StepLR 0", "StepLR: step_size must be a positive number of epochs, got 0");
    cr_assert_null(ag_StepLR(o, -3, .gamma = 0.5));
    EXPECT_ERROR("StepLR -3", "got -3");
    cr_assert_null(ag_MultiStepLR(o));
    EXPECT_ERROR("MultiStepLR", "MultiStepLR.__init__() missing 1 required positional argument: "
                                "'milestones'");
    cr_assert_null(ag_MultiStepLR(o, (ag_milestones){NULL, 3}));
    EXPECT_ERROR("MultiStepLR NULL", "MultiStepLR: milestones has n = 3 and at NULL");
    cr_assert_not_null(ag_MultiStepLR(o, (ag_milestones){0}), "no milestones: fine");
    cr_assert_null(ag_ExponentialLR(o));
    EXPECT_ERROR("ExponentialLR", "ExponentialLR.__init__() missing 1 required positional "
                                  "argument: 'gamma'");
    cr_assert_null(ag_CosineAnnealingLR(o));
    EXPECT_ERROR("CosineAnnealingLR", "CosineAnnealingLR.__init__() missing 1 required "
                                      "positional argument: 'T_max'");
    cr_assert_null(ag_CosineAnnealingLR(o, 0, .eta_min = 0.1));
    EXPECT_ERROR("T_max 0", "CosineAnnealingLR: T_max must be a positive number of epochs, got 0");
    cr_assert_null(ag_StepLR(NULL, 3));
    EXPECT_ERROR("no optimizer", "StepLR: the optimizer is NULL");
    ag_scheduler *s = ag_StepLR(o, 2);
    cr_assert(isnan(ag_get_last_lr(s, 1)));
    EXPECT_ERROR("group", "StepLR.get_last_lr: list index out of range (group 1; the last step "
                          "set 1 groups)");
    test_finish();
}

Test(optim_errors, clipping)
{
    record_errors();
    ag_tensor *w = VEC(true, 1, 2);
    ag_backward_with(w, VEC(false, INFINITY, 1), false);
    cr_assert(isnan(ag_clip_grad_norm_(AG_PARAMS(w))));
    EXPECT_ERROR("max_norm", "clip_grad_norm_: clip_grad_norm_() missing 1 required positional "
                             "argument: 'max_norm'");
    cr_assert(isnan(ag_clip_grad_norm_(AG_PARAMS(w), 1.0, .error_if_nonfinite = true)));
    EXPECT_ERROR("nonfinite", "clip_grad_norm_: The total norm of order 2.0 for gradients from "
                              "`parameters` is non-finite, so it cannot be clipped. To disable "
                              "this error and scale the gradients by the non-finite norm anyway, "
                              "set `error_if_nonfinite=False`");
    cr_assert(isnan(ag_clip_grad_norm_(AG_PARAMS(w), 1.0, INFINITY, true)));
    EXPECT_ERROR("nonfinite inf", "The total norm of order inf for gradients");
    cr_assert(w->grad->data[0] == INFINITY && w->grad->data[1] == 1, "unchanged on error");
    cr_assert(isinf(ag_clip_grad_norm_(AG_PARAMS(w), 1.0)), "without the flag: scaled anyway");
    cr_assert(isnan(ag_clip_grad_norm_(AG_PARAMS(w, NULL), 1.0)));
    EXPECT_ERROR("NULL", "clip_grad_norm_: argument parameters[1] is NULL");
    cr_assert(!ag_clip_grad_value_((ag_params){NULL, NULL, -1}, 1.0));
    EXPECT_ERROR("n", "clip_grad_value_: parameters has n = -1 and tensors NULL");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Misuse                                                                                */

Test(optim_misuse, a_freed_optimizer_is_reported_not_read)
{
    record_errors();
    ag_tensor *w = VEC(true, 1);
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), 0.1);
    ag_scheduler *s = ag_StepLR(o, 2);
    ag_optimizer_free(o);
    const char *words = "the optimizer is not a live optimizer (freed by ag_optimizer_free or "
                        "ag_shutdown, or not made by agrad)";
    cr_assert(!ag_step(o));
    EXPECT_ERROR("step", "step: ", words);
    cr_assert(!ag_zero_grad(o, true));
    EXPECT_ERROR("zero_grad", "zero_grad: ", words);
    cr_assert(!ag_add_param_group(o, AG_PARAMS(VEC(true, 1))));
    EXPECT_ERROR("add_param_group", "add_param_group: ", words);
    cr_assert_null(ag_param_group(o, 0));
    EXPECT_ERROR("param_group", words);
    cr_assert_eq(ag_param_group_count(o), -1);
    EXPECT_ERROR("param_group_count", words);
    ag_optimizer_free(o);
    EXPECT_ERROR("free twice", "optimizer_free: ", words);
    cr_assert(!ag_step(s));
    EXPECT_ERROR("scheduler of a freed optimizer",
                 "StepLR.step: its optimizer was freed (by ag_optimizer_free or ag_shutdown)");
    cr_assert_null(ag_ExponentialLR(o, 0.5));
    EXPECT_ERROR("scheduler over a freed optimizer", "ExponentialLR: ", words);
    cr_assert(ag_get_last_lr(s, 0) == 0.1, "the last rate stays readable");
    ag_scheduler_free(s);
    cr_assert(!ag_step(s));
    EXPECT_ERROR("freed scheduler", "step: the scheduler is not a live scheduler");
    cr_assert(isnan(ag_get_last_lr(s, 0)));
    EXPECT_ERROR("freed scheduler", "get_last_lr: the scheduler is not a live scheduler");
    ag_scheduler_free(s);
    EXPECT_ERROR("free twice", "scheduler_free: the scheduler is not a live scheduler");
    cr_assert(!ag_step((ag_optimizer *)NULL));
    EXPECT_ERROR("NULL", "step: the optimizer is NULL");
    /* after ag_shutdown: everything from before is reported */
    o = ag_SGD(AG_PARAMS(VEC(true, 1)), 0.1);
    s = ag_StepLR(o, 2);
    ag_shutdown();
    record_errors();
    cr_assert(!ag_step(o));
    EXPECT_ERROR("after shutdown", words);
    cr_assert(!ag_step(s));
    EXPECT_ERROR("after shutdown", "not a live scheduler");
    test_finish();
}

Test(optim_misuse, a_released_parameter_is_reported_and_nothing_changes)
{
    record_errors();
    ag_set_checked(false); /* fast mode too: the serial tells a reused address */
    ag_tensor *w = VEC(true, 1, 2);
    ag_backward(ag_sum(w));
    ag_mark m = ag_mark_now();
    ag_tensor *t = VEC(true, 3);
    ag_backward(ag_sum(t));
    ag_optimizer *o = ag_SGD(AG_PARAMS(w, t), 0.5);
    ag_release(m);
    ag_tensor *newer = VEC(true, 9); /* may take t's memory */
    cr_assert(!ag_step(o));
    EXPECT_ERROR("step", "SGD.step: argument params[1] is a released tensor (freed by ag_release)");
    CHECK("w, unchanged", w, 0, 1, 2);
    CHECK("newer, untouched", newer, 0, 9);
    cr_assert(!ag_zero_grad(o));
    EXPECT_ERROR("zero_grad", "SGD.zero_grad: argument params[1] is a released tensor");
    CHECK("w's grad, unchanged", w->grad, 0, 1, 1);
    ag_set_checked(true);
    ag_optimizer *o2 = ag_Adam(AG_PARAMS(w));
    ag_mark m2 = ag_mark_now();
    ag_tensor *u = VEC(true, 3);
    cr_assert(ag_add_param_group(o2, AG_PARAMS(u)));
    ag_release(m2);
    cr_assert(!ag_step(o2));
    EXPECT_ERROR("checked",
                 "Adam.step: argument param_groups[1]['params'][0] is a released tensor");
    CHECK("w, unchanged", w, 0, 1, 2);
    test_finish();
}

Test(optim_misuse, a_module_freed_under_the_optimizer_is_reported)
{
    record_errors();
    ag_set_checked(false); /* fast mode too: the freed parameters' blocks may be reused */
    ag_manual_seed(0);
    ag_module *model = ag_Linear(2, 1);
    ag_optimizer *o = ag_Adam(ag_parameters(model));
    ag_mark start = ag_mark_now();
    ag_backward(ag_sum(ag_forward(model, VEC(false, 1, 2))));
    cr_assert(ag_step(o));
    ag_release(start);
    ag_module_free(model);
    ag_module *other = ag_Linear(2, 1); /* may take the freed parameters' blocks */
    float w0 = ag_parameters(other).tensors[0]->data[0];
    const char *freed = "argument params[0] is the ->grad of a released tensor (freed with it "
                        "by ag_release), or a parameter of a freed module";
    cr_assert(!ag_step(o));
    EXPECT_ERROR("step", "Adam.step: ", freed);
    cr_assert(!ag_zero_grad(o, true));
    EXPECT_ERROR("zero_grad", "Adam.zero_grad: ", freed);
    cr_assert(ag_parameters(other).tensors[0]->data[0] == w0, "the other module was written");
    ag_optimizer_free(o);
    test_finish();
}

/* A module freed while the graph of its forward pass lives keeps its parameters until the
 * release (agrad_nn.h): until then a step still updates them, harmlessly. */
Test(optim_misuse, a_module_freed_while_its_graph_lives_is_reported_after_the_release)
{
    record_errors();
    ag_manual_seed(0);
    ag_module *model = ag_Linear(2, 1);
    ag_optimizer *o = ag_SGD(ag_parameters(model), 0.1);
    ag_mark start = ag_mark_now();
    ag_backward(ag_sum(ag_forward(model, VEC(false, 1, 2))));
    ag_module_free(model);
    cr_assert(ag_step(o), "%s", ag_last_error());
    ag_release(start);
    cr_assert(!ag_step(o));
    EXPECT_ERROR("step", "SGD.step: argument params[0]", "a parameter of a freed module");
    test_finish();
}

static ag_optimizer *inner_opt;
static bool inner_result = true;
static char inner_error[512];

static float square(float x) { return x * x; }
static float dsquare_and_step(float x)
{
    inner_result = ag_step(inner_opt);
    snprintf(inner_error, sizeof inner_error, "%s", ag_last_error());
    return 2 * x;
}
static float dsquare_and_zero_grad(float x)
{
    inner_result = ag_zero_grad(inner_opt, true);
    snprintf(inner_error, sizeof inner_error, "%s", ag_last_error());
    return 2 * x;
}
static float dsquare_and_clip(float x)
{
    ag_tensor *w = ag_param_group(inner_opt, 0)->params.tensors[0];
    inner_result = !isnan(ag_clip_grad_norm_(AG_PARAMS(w), 1.0));
    snprintf(inner_error, sizeof inner_error, "%s", ag_last_error());
    return 2 * x;
}

static ag_tensor *square_sum_and_step(ag_tensor *const *x, void *userdata)
{
    (void)userdata;
    inner_result = ag_step(inner_opt);
    snprintf(inner_error, sizeof inner_error, "%s", ag_last_error());
    return ag_sum(ag_mul(x[0], x[0]));
}

Test(optim_misuse, steps_from_inside_backward_are_refused)
{
    record_errors();
    ag_tensor *w = VEC(true, 1, 2);
    ag_backward(ag_sum(w));
    inner_opt = ag_SGD(AG_PARAMS(w), 0.5);
    float (*const fns[])(float) = {dsquare_and_step, dsquare_and_zero_grad, dsquare_and_clip};
    const char *const words[] = {"SGD.step: called from inside ag_backward",
                                 "SGD.zero_grad: called from inside ag_backward",
                                 "clip_grad_norm_: called from inside ag_backward"};
    for (int k = 0; k < 3; k++) {
        inner_result = true;
        ag_backward(ag_sum(ag_map(w, square, fns[k], "SquareBackward")));
        cr_assert(!inner_result, "%s: accepted", words[k]);
        cr_assert(strstr(inner_error, words[k]), "%s: %s", words[k], inner_error);
        ag_clear_error();
    }
    CHECK("w, never stepped", w, 0, 1, 2);
    cr_assert_not_null(w->grad, "the grad was not freed under backward");
    /* the same from the function gradcheck runs */
    inner_result = true;
    ag_gradcheck(square_sum_and_step, (ag_tensor *[]){VEC(true, 0.5f)}, 1, NULL, NULL, NULL);
    cr_assert(!inner_result && strstr(inner_error, "SGD.step: called from inside ag_backward, "
                                                   "ag_gradcheck"),
              "%s", inner_error);
    CHECK("w, never stepped", w, 0, 1, 2);
    test_finish();
}

Test(optim_misuse, a_step_moves_the_version_so_a_saved_graph_refuses_to_backward)
{
    record_errors();
    ag_tensor *w = VEC(true, 1, 2);
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), 0.5);
    ag_backward(ag_sum(w));
    ag_tensor *y = ag_sum(ag_mul(w, w)); /* saves w */
    cr_assert(ag_step(o));
    cr_assert(!ag_backward(y));
    EXPECT_ERROR("backward", "modified by an inplace operation");
    test_finish();
}

static char warned[1024];
static int warnings;
static void catch_warning(const char *message, void *userdata)
{
    (void)userdata;
    warnings++;
    snprintf(warned, sizeof warned, "%s", message);
}

Test(optim_misuse, a_schedule_before_any_optimizer_step_warns_once_in_pytorchs_words)
{
    ag_set_warning_handler(catch_warning, NULL);
    ag_tensor *w = VEC(true, 1);
    ag_optimizer *o = ag_SGD(AG_PARAMS(w), 0.1);
    ag_scheduler *s = ag_StepLR(o, 2);
    cr_assert_eq(warnings, 0, "not at construction");
    cr_assert(ag_step(s));
    cr_assert_eq(warnings, 1);
    cr_assert_str_eq(warned,
                     "Detected call of `lr_scheduler.step()` before `optimizer.step()`. In PyTorch "
                     "1.1.0 and later, you should call them in the opposite order: "
                     "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this will "
                     "result in PyTorch skipping the first value of the learning rate schedule. "
                     "See more details at "
                     "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate");
    cr_assert(ag_step(s));
    ag_scheduler *s2 = ag_StepLR(o, 2);
    cr_assert(ag_step(s2));
    cr_assert_eq(warnings, 1, "once, as Python shows it");
    /* in the right order, no warning */
    ag_shutdown();
    ag_set_warning_handler(catch_warning, NULL);
    warnings = 0;
    o = ag_SGD(AG_PARAMS(VEC(true, 1)), 0.1);
    s = ag_StepLR(o, 2);
    cr_assert(ag_step(o));
    cr_assert(ag_step(s));
    cr_assert_eq(warnings, 0);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Memory                                                                                */

Test(optim_memory, steps_after_the_first_allocate_nothing_and_make_no_tensor)
{
    ag_manual_seed(0);
    ag_module *model = ag_Sequential(ag_Linear(3, 4), ag_Tanh(), ag_Linear(4, 2));
    ag_tensor *X = ag_randn(AG_SHAPE(5, 3)), *Y = ag_randn(AG_SHAPE(5, 2));
    ag_params p = ag_parameters(model);
    ag_optimizer *opts[] = {
        ag_SGD(p, .lr = 0.01, .momentum = 0.9, .nesterov = true, .weight_decay = 0.1),
        ag_Adam(p, .amsgrad = true, .weight_decay = 0.1),
        ag_AdamW(p, .amsgrad = true, .maximize = true),
        ag_RMSprop(p, .centered = true, .momentum = 0.5, .weight_decay = 0.1),
    };
    for (int k = 0; k < 4; k++) {
        ag_optimizer *o = opts[k];
        ag_scheduler *s = ag_CosineAnnealingLR(o, 5);
        ag_mark start = ag_mark_now();
        size_t allocs = 0, live = 0;
        for (int it = 0; it < 30; it++) {
            ag_zero_grad(o, it % 3 == 0);
            ag_backward(ag_mse_loss(ag_forward(model, X), Y));
            ag_clip_grad_norm_(p, 0.5);
            ag_clip_grad_value_(p, 0.1);
            size_t before = ag_memory_stats().live_tensors;
            cr_assert(ag_step(o), "%s", ag_last_error());
            cr_assert(ag_step(s));
            cr_assert_eq(ag_memory_stats().live_tensors, before, "a step made tensors");
            ag_release(start);
            if (it == 1) {
                allocs = ag_memory_stats().system_allocs;
                live = ag_memory_stats().live_tensors;
            }
        }
        cr_assert_eq(ag_memory_stats().system_allocs, allocs,
                     "optimizer %d: system allocations grew from %zu to %zu", k, allocs,
                     ag_memory_stats().system_allocs);
        cr_assert_eq(ag_memory_stats().live_tensors, live);
        ag_scheduler_free(s);
        ag_optimizer_free(o);
    }
    ag_module_free(model);
    test_finish();
}

/* Makes an optimizer with a group and a schedule, steps it; false when a call failed. */
static bool make_and_step(void)
{
    ag_tensor *w = VEC(true, 1, 2), *b = VEC(true, 3);
    ag_backward(ag_add(ag_sum(w), ag_sum(b)));
    ag_optimizer *o = ag_Adam(AG_PARAMS(w), .amsgrad = true);
    if (!o) return false;
    bool ok = ag_add_param_group(o, AG_PARAMS(b), .lr = 0.1);
    ag_scheduler *s = ok ? ag_MultiStepLR(o, AG_MILESTONES(1, 2)) : NULL;
    ok = s && ag_step(o);
    if (!ok) {
        /* nothing moved: w and b as they were */
        cr_assert(w->data[0] == 1 && w->data[1] == 2 && b->data[0] == 3, "a failed call changed w");
    }
    ok = ok && ag_step(s) && ag_step(o);
    ag_scheduler_free(s);
    ag_optimizer_free(o);
    return ok;
}

Test(optim_faults, every_allocation_can_fail_without_a_leak_or_a_change)
{
    record_errors();
    ag_set_allocator(agt_faulty_realloc, NULL);
    for (long n = 1;; n++) {
        ag_shutdown();
        record_errors();
        ag_set_allocator(agt_faulty_realloc, NULL);
        agt_arm(n);
        bool ok = make_and_step(), refused = fault.failed;
        agt_arm(0);
        if (!refused) {
            cr_assert(ok, "no allocation refused, yet: %s", ag_last_error());
            cr_assert(n > 10, "only %ld allocations", n);
            break;
        }
        if (!ok)
            cr_assert(strstr(ag_last_error(), "out of memory"), "allocation %ld: %s", n,
                      ag_last_error());
    }
    ag_set_allocator(NULL, NULL);
    test_finish();
}

/* The loop at the top of agrad_optim.h, as written there, on y = 2x + 1. */
Test(optim_memory, the_headers_loop_trains)
{
    ag_manual_seed(0);
    ag_tensor *X = ag_view(ag_arange(-1, 1, 0.1), AG_SHAPE(-1, 1));
    ag_tensor *Y = ag_add(ag_mul(2, X), 1);
    ag_module *model = ag_Linear(1, 1);
    ag_optimizer *opt = ag_SGD(ag_parameters(model), .lr = 0.01);
    ag_scheduler *sched = ag_StepLR(opt, 30, .gamma = 0.1);
    ag_mark start = ag_mark_now();
    double first = 0, last = 0;
    for (int epoch = 0; epoch < 100; epoch++) {
        ag_zero_grad(opt);
        ag_tensor *loss = ag_mse_loss(ag_forward(model, X), Y);
        ag_backward(loss);
        ag_step(opt);
        ag_step(sched);
        if (epoch == 0) first = ag_item(loss);
        last = ag_item(loss);
        ag_release(start);
    }
    ag_scheduler_free(sched);
    ag_optimizer_free(opt);
    cr_assert(last < first, "the loss went from %g to %g", first, last);
    record_errors();
    cr_assert(ag_param_group_count(opt) == -1, "freed");
    EXPECT_ERROR("freed", "not a live optimizer");
    ag_module_free(model);
    test_finish();
}
