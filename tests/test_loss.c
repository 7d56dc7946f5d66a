/* The losses (nn/loss.c) against PyTorch 1.13 (tests/ref/loss_ref.h, made by
 * tools/gen_ref_loss.py): values, grad_fn names, gradients to input and target, and the
 * warning mse_loss and l1_loss give for shapes that broadcast; their backward against
 * ag_gradcheck; the criteria; the warning shown once per call site; every error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agrad_test.h"
#include <agrad_nn.h>
#include <criterion/redirect.h>

#include "ref/loss_ref.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

static ag_tensor *tensor(const char *name, int ndim, const int64_t *d, const float *v, bool rg)
{
    ag_tensor *t = ag_zeros(shape_of(ndim, d));
    cr_assert_not_null(t, "%s: making a tensor failed: %s", name, ag_last_error());
    if (v) memcpy(t->data, v, (size_t)t->numel * sizeof(float));
    ag_requires_grad_(t, rg);
    return t;
}

/* The warnings shown, as a handler collects them. */
static struct {
    int count;
    char last[1024];
} warned;

static void collect_warning(const char *message, void *userdata)
{
    cr_assert_eq(userdata, &warned, "the handler got userdata %p", userdata);
    warned.count++;
    snprintf(warned.last, sizeof warned.last, "%s", message);
}

static void collect_warnings(void)
{
    memset(&warned, 0, sizeof warned);
    ag_set_warning_handler(collect_warning, &warned);
}

typedef ag_tensor *(*loss_fn)(ag_loss_args);

static loss_fn loss_named(const char *name)
{
    static const struct {
        const char *name;
        loss_fn fn;
    } table[] = {{"mse_loss", ag_mse_loss_with},
                 {"l1_loss", ag_l1_loss_with},
                 {"binary_cross_entropy", ag_binary_cross_entropy_with},
                 {"binary_cross_entropy_with_logits", ag_binary_cross_entropy_with_logits_with},
                 {"nll_loss", ag_nll_loss_with},
                 {"cross_entropy", ag_cross_entropy_with}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].name, name)) return table[i].fn;
    cr_assert_fail("unknown loss %s", name);
    return NULL;
}

static const ag_reduction reductions[] = {AG_MEAN, AG_SUM, AG_NONE};

/* The case's loss of x and t, called from a call site of the case's own (its name and
 * index), so that each case's warning is shown. */
static ag_tensor *apply(const loss_case *c, int k, ag_tensor *x, ag_tensor *t)
{
    ag_tensor *w = c->w ? tensor(c->name, c->w_ndim, c->w_shape, c->w, false) : NULL;
    ag_tensor *pw = c->pw ? tensor(c->name, c->pw_ndim, c->pw_shape, c->pw, false) : NULL;
    ag_loss_args a = {.input = x,
                      .target = t,
                      .reduction = reductions[c->reduction],
                      .weight = w,
                      .pos_weight = pw,
                      .ignore_index = {c->has_ignore, c->ignore_index},
                      .private_file = c->name,
                      .private_line = k};
    return loss_named(c->loss)(a);
}

/* |got - want| <= tol (|want| + scale); NaN equal to NaN, infinities equal when the same.
 * Returns the largest |got - want| / (|want| + scale) seen. */
static double check_close(const char *name, const char *what, const float *got, const float *want,
                          int64_t n, double scale, double tol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) || isinf(w)) {
            cr_assert(isnan(w) ? isnan(g) : g == w, "%s: %s[%lld] = %.9g, PyTorch %.9g", name, what,
                      (long long)i, g, w);
            continue;
        }
        double e = fabs(g - w) / (fabs(w) + scale);
        cr_assert(e <= tol || g == w,
                  "%s: %s[%lld] = %.9g, PyTorch %.9g (|difference| %.3g > %.3g (|PyTorch| + %.3g))",
                  name, what, (long long)i, g, w, fabs(g - w), tol, scale);
        if (e > worst) worst = e;
    }
    return worst;
}

/* Where agrad's float operations are PyTorch's, in PyTorch's order, with the same C
 * library functions (PyTorch's scalar kernels call it): the results are PyTorch's bits.
 * Elsewhere PyTorch's vectorised exp and log (SLEEF) and its float sums of the mean and
 * sum reductions (agrad sums in double) differ by an ulp or so. */
static bool exact_value(const loss_case *c)
{
    if (!strcmp(c->loss, "nll_loss")) return true;
    bool none = c->reduction == 2;
    return none && (!strcmp(c->loss, "mse_loss") || !strcmp(c->loss, "l1_loss") ||
                    !strcmp(c->loss, "binary_cross_entropy"));
}
static bool exact_grad(const loss_case *c, bool target)
{
    /* a gradient summed back over broadcast dimensions is a float sum in PyTorch */
    bool same = c->x_ndim == c->t_ndim &&
                !memcmp(c->x_shape, c->t_shape, (size_t)c->x_ndim * sizeof c->x_shape[0]);
    if (!strcmp(c->loss, "nll_loss")) return true;
    if (!strcmp(c->loss, "mse_loss") || !strcmp(c->loss, "l1_loss")) return same;
    return !target && !strcmp(c->loss, "binary_cross_entropy");
}

/* ------------------------------------------------------------------------------------ */
/* Against PyTorch                                                                       */

Test(loss, values_gradients_and_warnings_match_pytorch)
{
    record_errors();
    collect_warnings();
    double worst_out = 0, worst_grad = 0;
    int exact = 0;
    for (size_t k = 0; k < loss_ncases; k++) {
        const loss_case *c = &loss_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *x = tensor(c->name, c->x_ndim, c->x_shape, c->x, true);
        ag_tensor *t = tensor(c->name, c->t_ndim, c->t_shape, c->t, c->target_grad);
        int warnings_before = warned.count;
        ag_tensor *out = apply(c, (int)k, x, t);
        cr_assert_not_null(out, "%s: the loss failed: %s", c->name, ag_last_error());
        if (c->warning) {
            cr_assert_eq(warned.count, warnings_before + 1, "%s: %d warnings, PyTorch 1", c->name,
                         warned.count - warnings_before);
            cr_assert_str_eq(warned.last, c->warning, "%s: warning\n    %s\nPyTorch\n    %s",
                             c->name, warned.last, c->warning);
        } else {
            cr_assert_eq(warned.count, warnings_before, "%s: a warning: %s", c->name, warned.last);
        }
        cr_assert_eq(out->ndim, c->out_ndim, "%s: ndim %d, PyTorch %d", c->name, out->ndim,
                     c->out_ndim);
        for (int i = 0; i < c->out_ndim; i++)
            cr_assert_eq(out->shape[i], c->out_shape[i], "%s: size %d is %lld, PyTorch %lld",
                         c->name, i, (long long)out->shape[i], (long long)c->out_shape[i]);
        cr_assert_str_eq(ag_grad_fn_name(out), c->grad_fn, "%s: grad_fn %s, PyTorch %s", c->name,
                         ag_grad_fn_name(out), c->grad_fn);
        /* 8 ulps relative to the value, or to 1 for values that are differences of larger
         * ones (the losses of the logits form, cross entropy) */
        const double tol = 0x1p-21;
        double e = check_close(c->name, "out", out->data, c->out, out->numel, 1.0,
                               exact_value(c) ? 0.0 : tol);
        if (e > worst_out) worst_out = e;
        exact += exact_value(c);

        ag_tensor *up =
            ag_tensor_from(out->numel ? c->upstream : (const float[]){0}, ag_size(out), false);
        cr_assert(ag_backward(ag_sum(ag_mul(out, up))), "%s: backward failed: %s", c->name,
                  ag_last_error());
        if (x->numel) {
            cr_assert_not_null(x->grad, "%s: x->grad is NULL", c->name);
            e = check_close(c->name, "input grad", x->grad->data, c->gx, x->numel, 1.0,
                            exact_grad(c, false) ? 0.0 : tol);
            if (e > worst_grad) worst_grad = e;
        }
        if (c->target_grad && t->numel) {
            cr_assert_not_null(t->grad, "%s: target->grad is NULL", c->name);
            e = check_close(c->name, "target grad", t->grad->data, c->gt, t->numel, 1.0,
                            exact_grad(c, true) ? 0.0 : tol);
            if (e > worst_grad) worst_grad = e;
        } else if (!c->target_grad) {
            cr_assert_null(t->grad, "%s: the target got a gradient", c->name);
        }
        ag_release(m);
    }
    cr_assert_str_eq(ag_last_error(), "", "an error: %s", ag_last_error());
    cr_log_info("%zu cases (%d of them to the bit); worst error relative to max(1, |PyTorch|): "
                "values %.3g, gradients %.3g",
                loss_ncases, exact, worst_out, worst_grad);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Against finite differences                                                            */

typedef struct gc_case {
    const loss_case *c;
    int k;
} gc_case;

static ag_tensor *apply_fn(ag_tensor *const *inputs, void *userdata)
{
    const gc_case *g = userdata;
    return apply(g->c, g->k, inputs[0], inputs[1]);
}

Test(loss, gradcheck_every_smooth_case)
{
    ag_set_warning_handler(NULL, NULL);
    int checked = 0;
    for (size_t k = 0; k < loss_ncases; k++) {
        const loss_case *c = &loss_cases[k];
        if (!c->smooth) continue;
        ag_mark m = ag_mark_now();
        ag_tensor *in[2] = {tensor(c->name, c->x_ndim, c->x_shape, c->x, true),
                            tensor(c->name, c->t_ndim, c->t_shape, c->t, c->target_grad)};
        gc_case g = {c, (int)k};
        ag_gradcheck_result r;
        bool ok = ag_gradcheck(apply_fn, in, 2, &g, NULL, &r);
        cr_assert(ok && r.passed, "%s: %s (last error: %s)", c->name, r.report, ag_last_error());
        checked++;
        ag_release(m);
    }
    cr_assert_gt(checked, 200, "only %d cases were gradchecked", checked);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* By hand                                                                               */

Test(loss, extremes_by_hand)
{
    /* BCE at p = 0 and 1 exactly: each log clamps at -100 */
    ag_tensor *p = VEC(true, 0.0f, 1.0f, 0.0f, 1.0f), *y = VEC(false, 0.0f, 1.0f, 1.0f, 0.0f);
    CHECK("bce", ag_binary_cross_entropy(p, y, .reduction = AG_NONE), 0.0f, 0.0f, 0.0f, 100.0f,
          100.0f);
    CHECK("bce mean", ag_binary_cross_entropy(p, y), 0.0f, 50.0f);
    /* its gradient: (p - y) / max((1 - p) p, 1e-12) */
    cr_assert(ag_backward(ag_binary_cross_entropy(p, y, .reduction = AG_SUM)), "%s",
              ag_last_error());
    CHECK("bce grad", p->grad, 1e5f, 0.0f, 0.0f, -1e12f, 1e12f);
    /* logits of +-100: no overflow */
    ag_tensor *z = VEC(true, 100.0f, -100.0f, 100.0f, -100.0f);
    CHECK("bce logits", ag_binary_cross_entropy_with_logits(z, y, .reduction = AG_NONE), 0.0f,
          100.0f, 100.0f, 0.0f, 0.0f);
    /* mse and l1 of equal tensors: 0, gradients 0 (abs's at 0 too) */
    ag_tensor *a = VEC(true, 1.5f, -2.0f);
    CHECK("mse", ag_mse_loss(a, a), 0.0f, 0.0f);
    ag_tensor *l1 = ag_l1_loss(a, ag_detach(a));
    cr_assert(ag_backward(l1), "%s", ag_last_error());
    CHECK("l1 grad", a->grad, 0.0f, 0.0f, 0.0f);
    /* nll of (C) with ignore_index: a 0-d loss; every target ignored: mean nan, sum 0 */
    ag_tensor *lp = VEC(true, -0.5f, -1.5f, -2.5f);
    CHECK("nll", ag_nll_loss(lp, ag_scalar(1.0)), 0.0f, 1.5f);
    cr_assert(isnan(ag_item(ag_nll_loss(lp, ag_scalar(-100.0)))), "all ignored: not nan");
    CHECK("nll ignored sum",
          ag_nll_loss(lp, ag_scalar(2.0), .ignore_index = AG_INDEX(2), .reduction = AG_SUM), 0.0f,
          0.0f);
    test_finish();
}

Test(loss, cross_entropy_is_log_softmax_then_nll_loss)
{
    ag_tensor *x =
        ag_tensor_from((const float[]){0.2f, -1.0f, 3.0f, 0.5f, 0.5f, -2.0f}, AG_SHAPE(2, 3), true);
    ag_tensor *t = VEC(false, 2.0f, 0.0f), *w = VEC(false, 1.0f, 2.0f, 0.5f);
    ag_tensor *ce = ag_cross_entropy(x, t, .weight = w);
    ag_tensor *ref = ag_nll_loss(ag_log_softmax(x, 1), t, .weight = w);
    cr_assert(ce && ref && ce->data[0] == ref->data[0], "cross_entropy %g, nll(log_softmax) %g",
              ce ? (double)ce->data[0] : NAN, ref ? (double)ref->data[0] : NAN);
    cr_assert_str_eq(ag_grad_fn_name(ce), "NllLossBackward0", "grad_fn %s", ag_grad_fn_name(ce));
    /* two nodes, like PyTorch's: the pass visits the loss, log_softmax's result and x */
    cr_assert(ag_backward(ce), "%s", ag_last_error());
    cr_assert_eq(ag_memory_stats().backward_nodes, 3, "the pass visited %zu tensors",
                 ag_memory_stats().backward_nodes);
    /* an input (C) takes its classes along dim 0 */
    ag_tensor *v = VEC(true, 0.2f, -1.0f, 3.0f);
    ag_tensor *c1 = ag_cross_entropy(v, ag_scalar(0.0));
    ag_tensor *r1 = ag_nll_loss(ag_log_softmax(v, 0), ag_scalar(0.0));
    cr_assert(c1 && r1 && c1->ndim == 0 && c1->data[0] == r1->data[0], "(C) input: %s",
              ag_last_error());
    test_finish();
}

/* l1_loss is sub, abs and mean (or sum), as in PyTorch 1.13: their grad_fn names */
Test(loss, l1_loss_is_built_as_pytorch_builds_it)
{
    ag_tensor *x = VEC(true, 1.0f, -2.0f), *t = VEC(false, 0.5f, 0.5f);
    cr_assert_str_eq(ag_grad_fn_name(ag_l1_loss(x, t)), "MeanBackward0", "mean");
    cr_assert_str_eq(ag_grad_fn_name(ag_l1_loss(x, t, .reduction = AG_SUM)), "SumBackward0", "sum");
    cr_assert_str_eq(ag_grad_fn_name(ag_l1_loss(x, t, .reduction = AG_NONE)), "AbsBackward0",
                     "none");
    test_finish();
}

Test(loss, what_each_saves)
{
    record_errors();
    ag_set_warning_handler(NULL, NULL);
    /* mse saves input and target: a second backward fails */
    ag_tensor *x = VEC(true, 1.0f, 2.0f), *t = VEC(false, 0.0f, 1.0f);
    ag_tensor *l = ag_mse_loss(x, t);
    cr_assert(ag_backward(l), "first backward: %s", ag_last_error());
    cr_assert_not(ag_backward(l), "a second backward through MseLossBackward0 succeeded");
    cr_assert(strstr(ag_last_error(), "second time") && strstr(ag_last_error(), "MseLossBackward0"),
              "message: %s", ag_last_error());
    ag_clear_error();
    /* nll_loss saves its target: changed in place, then backward, is an error */
    ag_tensor *lp =
        ag_tensor_from((const float[]){-0.5f, -1.0f, -2.0f, -0.1f}, AG_SHAPE(2, 2), true);
    ag_tensor *c = VEC(false, 0.0f, 1.0f);
    ag_tensor *n = ag_nll_loss(lp, c);
    ag_fill_(c, 1.0);
    cr_assert_not(ag_backward(n), "backward after an in-place change of nll_loss's target");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation") &&
                  strstr(ag_last_error(), "NllLossBackward0"),
              "message: %s", ag_last_error());
    ag_clear_error();
    /* weights are copied: a later change does not change a loss already computed */
    ag_tensor *p = VEC(true, 0.25f, 0.75f), *y = VEC(false, 1.0f, 0.0f),
              *w = VEC(false, 2.0f, 2.0f);
    ag_tensor *b = ag_binary_cross_entropy(p, y, .weight = w, .reduction = AG_SUM);
    ag_fill_(w, 100.0);
    cr_assert(ag_backward(b), "%s", ag_last_error());
    /* d/dp of -2 log p at 0.25, and of -2 log(1 - p) at 0.75: -8 and 8 */
    CHECK("bce grad with the weight of the forward", p->grad, 1e-5f, -8.0f, 8.0f);
    /* nothing is recorded without grad, or inside no_grad */
    ag_tensor *q = VEC(false, 0.5f, 0.5f), *r[3];
    r[0] = ag_mse_loss(q, y);
    r[1] = ag_binary_cross_entropy(q, y);
    AG_NO_GRAD { r[2] = ag_cross_entropy(ag_reshape(x, AG_SHAPE(1, 2)), ag_ones(AG_SHAPE(1))); }
    for (int i = 0; i < 3; i++)
        cr_assert(r[i] && !r[i]->requires_grad && ag_is_leaf(r[i]), "result %d: %s", i,
                  r[i] ? "recorded" : ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Criteria                                                                              */

Test(loss, criteria_call_their_loss_with_their_options)
{
    ag_set_warning_handler(NULL, NULL);
    ag_tensor *x =
        ag_tensor_from((const float[]){0.2f, -1.0f, 3.0f, 0.5f, 0.5f, -2.0f}, AG_SHAPE(2, 3), true);
    ag_tensor *p = ag_sigmoid(x), *y = ag_rand(AG_SHAPE(2, 3));
    ag_tensor *t = VEC(false, 2.0f, 0.0f), *w = VEC(false, 1.0f, 2.0f, 0.5f);
    struct {
        ag_criterion crit;
        ag_tensor *input, *target, *want;
        const char *name;
    } cases[] = {
        {ag_MSELoss(), x, y, ag_mse_loss(x, y), "MSELoss"},
        {ag_MSELoss(.reduction = AG_SUM), x, y, ag_mse_loss(x, y, .reduction = AG_SUM), "MSELoss"},
        {ag_MSELoss(AG_NONE), x, y, ag_mse_loss(x, y, AG_NONE), "MSELoss"},
        {ag_L1Loss(.reduction = AG_SUM), x, y, ag_l1_loss(x, y, .reduction = AG_SUM), "L1Loss"},
        {ag_BCELoss(.weight = w), p, y, ag_binary_cross_entropy(p, y, .weight = w), "BCELoss"},
        {ag_BCEWithLogitsLoss(.pos_weight = w, .reduction = AG_NONE), x, y,
         ag_binary_cross_entropy_with_logits(x, y, .pos_weight = w, .reduction = AG_NONE),
         "BCEWithLogitsLoss"},
        {ag_NLLLoss(.ignore_index = AG_INDEX(0)), x, t,
         ag_nll_loss(x, t, .ignore_index = AG_INDEX(0)), "NLLLoss"},
        {ag_CrossEntropyLoss(.weight = w, .reduction = AG_SUM), x, t,
         ag_cross_entropy(x, t, .weight = w, .reduction = AG_SUM), "CrossEntropyLoss"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ag_tensor *got = ag_loss(cases[i].crit, cases[i].input, cases[i].target);
        ag_tensor *want = cases[i].want;
        cr_assert_str_eq(cases[i].crit.name, cases[i].name, "criterion %zu is named %s", i,
                         cases[i].crit.name);
        cr_assert(got && want && got->numel == want->numel, "criterion %zu (%s): %s", i,
                  cases[i].name, ag_last_error());
        cr_assert(!memcmp(got->data, want->data, (size_t)got->numel * sizeof(float)),
                  "criterion %zu (%s): %g, the loss %g", i, cases[i].name, (double)got->data[0],
                  (double)want->data[0]);
        cr_assert_str_eq(ag_grad_fn_name(got), ag_grad_fn_name(want), "criterion %zu", i);
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* The warning                                                                           */

#define MSE_WARNING                                                                                \
    "Using a target size (torch.Size([4])) that is different to the input size "                   \
    "(torch.Size([4, 1])). This will likely lead to incorrect results due to broadcasting. "       \
    "Please ensure they have the same size."

Test(loss, mse_warns_once_per_call_site_in_pytorchs_words)
{
    collect_warnings();
    ag_tensor *yhat = ag_zeros(AG_SHAPE(4, 1), .requires_grad = true), *y = ag_ones(AG_SHAPE(4));
    /* the broadcast is computed: a [4, 4] of ones */
    ag_tensor *none = ag_mse_loss(yhat, y, .reduction = AG_NONE);
    cr_assert(none && none->ndim == 2 && none->shape[0] == 4 && none->shape[1] == 4,
              "mse of [4, 1] and [4]: %s", ag_last_error());
    cr_assert_eq(warned.count, 1, "%d warnings", warned.count);
    cr_assert_str_eq(warned.last, MSE_WARNING, "the warning:\n    %s", warned.last);
    /* two calls from one line: one warning */
    warned.count = 0;
    for (int i = 0; i < 3; i++) ag_mse_loss(yhat, y);
    cr_assert_eq(warned.count, 1, "three calls from one line: %d warnings", warned.count);
    /* two lines: two warnings */
    warned.count = 0;
    ag_mse_loss(yhat, y);
    ag_mse_loss(yhat, y);
    cr_assert_eq(warned.count, 2, "two lines: %d warnings", warned.count);
    /* one line, another message (other shapes): shown, as Python shows it */
    warned.count = 0;
    for (int n = 3; n <= 4; n++) ag_mse_loss(ag_zeros(AG_SHAPE(n, 1)), ag_zeros(AG_SHAPE(n)));
    cr_assert_eq(warned.count, 2, "one line, two messages: %d warnings", warned.count);
    /* a criterion warns at the line that calls it; l1_loss warns too; same shapes do not */
    warned.count = 0;
    ag_criterion loss = ag_MSELoss();
    for (int i = 0; i < 2; i++) ag_loss(loss, yhat, y);
    ag_loss(loss, yhat, y);
    ag_l1_loss(yhat, y);
    ag_mse_loss(y, y);
    ag_l1_loss(yhat, yhat);
    cr_assert_eq(warned.count, 3, "criterion: %d warnings", warned.count);
    /* no handler: nothing; ag_shutdown forgets the sites, and restores the default */
    ag_set_warning_handler(NULL, NULL);
    ag_tensor *r = ag_mse_loss(yhat, y);
    cr_assert_not_null(r, "%s", ag_last_error());
    test_finish();
    collect_warnings();
    for (int i = 0; i < 2; i++) ag_mse_loss(ag_zeros(AG_SHAPE(4, 1)), ag_ones(AG_SHAPE(4)));
    cr_assert_eq(warned.count, 1, "after ag_shutdown: %d warnings", warned.count);
    test_finish();
}

static void redirect_stderr(void) { cr_redirect_stderr(); }

Test(loss, default_handler_prints_a_user_warning, .init = redirect_stderr)
{
    ag_mse_loss(ag_zeros(AG_SHAPE(4, 1)), ag_zeros(AG_SHAPE(4)));
    fflush(stderr);
    cr_assert_stderr_eq_str("agrad: UserWarning: " MSE_WARNING "\n");
    test_finish();
}

/* A refused allocation for the set of sites seen: the warning is shown anyway. */
Test(loss, warning_without_memory_is_shown_anyway)
{
    ag_tensor *a = ag_zeros(AG_SHAPE(2, 1)), *b = ag_zeros(AG_SHAPE(2));
    ag_set_allocator(agt_faulty_realloc, NULL);
    collect_warnings();
    agt_refuse_after(0);
    for (int i = 0; i < 2; i++) ag_mse_loss(a, b);
    agt_refuse_after(-1);
    cr_assert_eq(warned.count, 2, "%d warnings (each shown: none could be noted)", warned.count);
    test_finish();
    ag_set_allocator(NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

static void expect(const char *call, const ag_tensor *r, const char *want)
{
    cr_assert_null(r, "%s succeeded; expected the error \"%s\"", call, want);
    cr_assert_str_eq(ag_last_error(), want, "%s: message\n    %s\nexpected\n    %s", call,
                     ag_last_error(), want);
    ag_clear_error();
}
#define EXPECT(call, want) expect(#call, call, want)

Test(loss, options_a_loss_does_not_take)
{
    record_errors();
    ag_tensor *x = ag_rand(AG_SHAPE(3)), *w = ag_ones(AG_SHAPE(3));
    EXPECT(ag_mse_loss(x, x, .weight = w),
           "mse_loss: mse_loss() got an unexpected keyword argument 'weight'");
    EXPECT(ag_mse_loss(x, x, .pos_weight = w),
           "mse_loss: mse_loss() got an unexpected keyword argument 'pos_weight'");
    EXPECT(ag_mse_loss(x, x, .ignore_index = AG_INDEX(1)),
           "mse_loss: mse_loss() got an unexpected keyword argument 'ignore_index'");
    EXPECT(ag_l1_loss(x, x, .weight = w),
           "l1_loss: l1_loss() got an unexpected keyword argument 'weight'");
    EXPECT(ag_binary_cross_entropy(x, x, .pos_weight = w),
           "binary_cross_entropy: binary_cross_entropy() got an unexpected keyword argument "
           "'pos_weight'");
    EXPECT(ag_binary_cross_entropy(x, x, .ignore_index = AG_INDEX(0)),
           "binary_cross_entropy: binary_cross_entropy() got an unexpected keyword argument "
           "'ignore_index'");
    EXPECT(ag_binary_cross_entropy_with_logits(x, x, .ignore_index = AG_INDEX(0)),
           "binary_cross_entropy_with_logits: binary_cross_entropy_with_logits() got an "
           "unexpected keyword argument 'ignore_index'");
    EXPECT(ag_nll_loss(x, ag_scalar(0), .pos_weight = w),
           "nll_loss: nll_loss() got an unexpected keyword argument 'pos_weight'");
    EXPECT(ag_cross_entropy(x, ag_scalar(0), .pos_weight = w),
           "cross_entropy: cross_entropy() got an unexpected keyword argument 'pos_weight'");
    EXPECT(ag_loss(ag_L1Loss(.pos_weight = w), x, x),
           "l1_loss: l1_loss() got an unexpected keyword argument 'pos_weight'");
    EXPECT(ag_mse_loss(x, x, .reduction = (ag_reduction)7),
           "mse_loss: 7 is not a valid value for reduction (AG_MEAN, AG_SUM or AG_NONE)");
    EXPECT(ag_loss((ag_criterion){0}, x, x),
           "loss: the criterion has no loss function (make it with ag_MSELoss(), "
           "ag_CrossEntropyLoss(), ...)");
    test_finish();
}

Test(loss, shapes_that_do_not_fit)
{
    record_errors();
    ag_set_warning_handler(NULL, NULL);
    ag_tensor *a = ag_rand(AG_SHAPE(2, 3)), *b = ag_rand(AG_SHAPE(2, 4));
    ag_tensor *c = ag_rand(AG_SHAPE(4, 1)), *d = ag_rand(AG_SHAPE(4));
    EXPECT(ag_mse_loss(a, b),
           "mse_loss: The size of tensor a (3) must match the size of tensor b (4) at "
           "non-singleton dimension 1 (shapes [2, 3] and [2, 4])");
    EXPECT(ag_l1_loss(a, b),
           "l1_loss: The size of tensor a (3) must match the size of tensor b (4) at "
           "non-singleton dimension 1 (shapes [2, 3] and [2, 4])");
    EXPECT(ag_binary_cross_entropy(c, d),
           "binary_cross_entropy: Using a target size (torch.Size([4])) that is different to the "
           "input size (torch.Size([4, 1])) is deprecated. Please ensure they have the same size.");
    EXPECT(ag_binary_cross_entropy(ag_rand(AG_SHAPE(3)), ag_scalar(1)),
           "binary_cross_entropy: Using a target size (torch.Size([])) that is different to the "
           "input size (torch.Size([3])) is deprecated. Please ensure they have the same size.");
    EXPECT(ag_binary_cross_entropy_with_logits(d, c),
           "binary_cross_entropy_with_logits: Target size (torch.Size([4, 1])) must be the same "
           "as input size (torch.Size([4]))");
    /* weights must broadcast to the input, and to no larger shape */
    EXPECT(ag_binary_cross_entropy(a, a, .weight = ag_ones(AG_SHAPE(2))),
           "binary_cross_entropy: The size of tensor a (3) must match the size of tensor b (2) at "
           "non-singleton dimension 1 (shapes [2, 3] and [2])");
    EXPECT(ag_binary_cross_entropy(d, d, .weight = ag_ones(AG_SHAPE(2, 4))),
           "binary_cross_entropy: output with shape [4] doesn't match the broadcast shape [2, 4]");
    EXPECT(ag_binary_cross_entropy_with_logits(a, a, .pos_weight = ag_ones(AG_SHAPE(2))),
           "binary_cross_entropy_with_logits: The size of tensor a (2) must match the size of "
           "tensor b (3) at non-singleton dimension 1 (shapes [2] and [2, 3])");
    EXPECT(ag_binary_cross_entropy_with_logits(a, a, .weight = ag_ones(AG_SHAPE(3, 2, 3))),
           "binary_cross_entropy_with_logits: output with shape [2, 3] doesn't match the "
           "broadcast shape [3, 2, 3]");
    test_finish();
}

Test(loss, nll_loss_shapes_and_targets)
{
    record_errors();
    ag_tensor *x = ag_randn(AG_SHAPE(4, 3)), *v = ag_randn(AG_SHAPE(3));
    ag_tensor *t4 = VEC(false, 0.0f, 1.0f, 2.0f, 1.0f);
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, 5.0f, 1.0f, 2.0f)),
           "nll_loss: Target 5 is out of bounds.");
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, -1.0f, 1.0f, 2.0f)),
           "nll_loss: Target -1 is out of bounds.");
    EXPECT(ag_cross_entropy(x, VEC(false, 0.0f, 3.0f, 1.0f, 2.0f)),
           "cross_entropy: Target 3 is out of bounds.");
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, 1.5f, 1.0f, 2.0f)),
           "nll_loss: target holds class indices, but target[1] is 1.5, not a whole number");
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, 1.0f, NAN, 2.0f)),
           "nll_loss: target holds class indices, but target[2] is nan, not a whole number");
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, 1.0f, 1e30f, 2.0f)),
           "nll_loss: Target 1000000015047466219876688855040 is out of bounds.");
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, 1.0f, 2.0f)),
           "nll_loss: Expected input batch_size (4) to match target batch_size (3).");
    EXPECT(ag_nll_loss(x, ag_scalar(1)),
           "nll_loss: Expected input batch_size (4) to match target batch_size (0).");
    EXPECT(ag_nll_loss(ag_scalar(1), ag_scalar(0)),
           "nll_loss: Expected 1 or more dimensions (got 0)");
    EXPECT(ag_nll_loss(x, ag_zeros(AG_SHAPE(4, 2))),
           "nll_loss: 0D or 1D target tensor expected, multi-target not supported (target of shape "
           "[4, 2])");
    EXPECT(ag_nll_loss(v, VEC(false, 1.0f)),
           "nll_loss: size mismatch (got input: [3], target: [1])");
    EXPECT(ag_nll_loss(v, VEC(false, 1.0f, 0.0f, 2.0f)),
           "nll_loss: size mismatch (got input: [3], target: [3])");
    EXPECT(ag_nll_loss(ag_randn(AG_SHAPE(4, 3, 2)), ag_zeros(AG_SHAPE(4, 2))),
           "nll_loss: input of shape [4, 3, 2]: agrad takes an input of shape (N, C) or (C); "
           "PyTorch's (N, C, d1, ...) is not supported");
    EXPECT(ag_nll_loss(x, t4, .weight = ag_ones(AG_SHAPE(4))),
           "nll_loss: weight tensor should be defined either for all 3 classes or no classes but "
           "got weight tensor of shape: [4]");
    EXPECT(ag_cross_entropy(x, t4, .weight = ag_ones(AG_SHAPE(1, 3))),
           "cross_entropy: weight tensor should be defined either for all 3 classes or no classes "
           "but got weight tensor of shape: [1, 3]");
    EXPECT(
        ag_cross_entropy(x, ag_zeros(AG_SHAPE(4, 3))),
        "cross_entropy: a target of the input's shape [4, 3] holds class probabilities, which "
        "agrad does not support; give class indices (shape (N) for an input (N, C), () for (C))");
    EXPECT(ag_cross_entropy(ag_scalar(1), ag_zeros(AG_SHAPE(1))),
           "cross_entropy: Expected 1 or more dimensions (got 0)");
    /* an ignore_index out of the classes is fine; classes of an empty C are all out */
    cr_assert_not_null(
        ag_nll_loss(x, VEC(false, 0.0f, 7.0f, 1.0f, 2.0f), .ignore_index = AG_INDEX(7)), "%s",
        ag_last_error());
    EXPECT(ag_nll_loss(ag_zeros(AG_SHAPE(2, 0)), ag_zeros(AG_SHAPE(2))),
           "nll_loss: Target 0 is out of bounds.");
    test_finish();
}

Test(loss, inputs_pytorch_does_not_differentiate)
{
    record_errors();
    ag_tensor *p = ag_full(AG_SHAPE(3), 0.5), *y = ag_ones(AG_SHAPE(3));
    ag_tensor *w = ag_ones(AG_SHAPE(3), .requires_grad = true);
    ag_tensor *x = ag_randn(AG_SHAPE(2, 3)), *t = VEC(true, 0.0f, 1.0f);
    EXPECT(ag_binary_cross_entropy(p, y, .weight = w),
           "binary_cross_entropy: The function 'binary_cross_entropy' is not differentiable with "
           "respect to argument 'weight'. This input cannot have requires_grad True.");
    EXPECT(ag_binary_cross_entropy_with_logits(p, y, .weight = w),
           "binary_cross_entropy_with_logits: The function 'binary_cross_entropy_with_logits' is "
           "not differentiable with respect to argument 'weight'. This input cannot have "
           "requires_grad True.");
    EXPECT(ag_binary_cross_entropy_with_logits(p, y, .pos_weight = w),
           "binary_cross_entropy_with_logits: The function 'binary_cross_entropy_with_logits' is "
           "not differentiable with respect to argument 'pos_weight'. This input cannot have "
           "requires_grad True.");
    EXPECT(ag_nll_loss(x, VEC(false, 0.0f, 1.0f), .weight = w),
           "nll_loss: The function 'nll_loss_forward' is not differentiable with respect to "
           "argument 'weight'. This input cannot have requires_grad True.");
    EXPECT(ag_cross_entropy(x, t),
           "cross_entropy: The function 'nll_loss_forward' is not differentiable with respect to "
           "argument 'target'. This input cannot have requires_grad True.");
    /* inside no_grad nothing is recorded, and so nothing is refused */
    ag_tensor *r = NULL;
    AG_NO_GRAD { r = ag_binary_cross_entropy(p, y, .weight = w); }
    cr_assert_not_null(r, "under no_grad: %s", ag_last_error());
    test_finish();
}

Test(loss, bce_input_out_of_range_and_bad_arguments)
{
    record_errors();
    ag_tensor *y = ag_ones(AG_SHAPE(2));
    EXPECT(ag_binary_cross_entropy(VEC(false, 0.5f, 1.5f), y),
           "binary_cross_entropy: all elements of input should be between 0 and 1 (input[1] is "
           "1.5)");
    EXPECT(ag_binary_cross_entropy(VEC(false, -0.5f, 0.5f), y),
           "binary_cross_entropy: all elements of input should be between 0 and 1 (input[0] is "
           "-0.5)");
    EXPECT(ag_binary_cross_entropy(VEC(false, 0.5f, NAN), y),
           "binary_cross_entropy: all elements of input should be between 0 and 1 (input[1] is "
           "nan)");
    /* a target outside [0, 1] is PyTorch's too: no check */
    cr_assert_not_null(ag_binary_cross_entropy(VEC(false, 0.5f, 0.5f), VEC(false, 2.0f, -1.0f)),
                       "%s", ag_last_error());
    EXPECT(ag_mse_loss(NULL, y), "mse_loss: argument input is NULL");
    EXPECT(ag_cross_entropy(y, NULL), "cross_entropy: argument target is NULL");
    ag_mark m = ag_mark_now();
    ag_tensor *w = ag_ones(AG_SHAPE(2));
    ag_release(m);
    EXPECT(ag_binary_cross_entropy(y, y, .weight = w),
           "binary_cross_entropy: argument weight is a released tensor (freed by ag_release)");
    EXPECT(ag_binary_cross_entropy_with_logits(y, y, .pos_weight = w),
           "binary_cross_entropy_with_logits: argument pos_weight is a released tensor (freed by "
           "ag_release)");
    test_finish();
}

/* Every allocation a loss makes can fail: each failure is an error naming the loss, the
 * next call works. The inputs are large, so that the result and the copy of the weight
 * each need memory of their own from the system. */
Test(loss, out_of_memory_names_the_loss)
{
    record_errors();
    ag_tensor *x = ag_full(AG_SHAPE(400000), 0.5, .requires_grad = true);
    ag_tensor *t = ag_ones(AG_SHAPE(400000)), *w = ag_ones(AG_SHAPE(400000));
    ag_set_allocator(agt_faulty_realloc, NULL);
    bool ctx_failed = false;
    ag_tensor *l = NULL;
    for (int k = 0; !l && k < 20; k++) {
        agt_arm(k + 1); /* k allocations go through, the next is refused */
        l = ag_binary_cross_entropy(x, t, .weight = w, .reduction = AG_NONE);
        agt_arm(0);
        if (l) break;
        cr_assert(!strncmp(ag_last_error(), "binary_cross_entropy: out of memory", 35),
                  "refused allocation %d: %s", k, ag_last_error());
        ctx_failed |= strstr(ag_last_error(), "keeping what its backward needs") != NULL;
        ag_clear_error();
    }
    cr_assert_not_null(l, "the loss never succeeded: %s", ag_last_error());
    cr_assert(ctx_failed, "no refusal reached the copy of the weight");
    cr_assert(ag_backward(ag_sum(l)), "backward: %s", ag_last_error());
    test_finish();
    ag_set_allocator(NULL, NULL);
}
