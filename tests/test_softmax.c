/* softmax, log_softmax and logsumexp against PyTorch 1.13 (tests/ref/softmax_ref.h, made by
 * tools/gen_ref_softmax.py): values, grad_fn names and gradients over every dimension,
 * large values, -inf, +inf and NaN; their backward against ag_gradcheck; what they save;
 * their errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agrad_test.h"

#include "ref/softmax_ref.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

static ag_tensor *input(const ref_case *c, bool requires_grad)
{
    ag_tensor *t = ag_zeros(shape_of(c->x_ndim, c->x_shape));
    cr_assert_not_null(t, "%s: making the input failed: %s", c->name, ag_last_error());
    if (c->x) memcpy(t->data, c->x, (size_t)t->numel * sizeof(float));
    ag_requires_grad_(t, requires_grad);
    return t;
}

static ag_tensor *apply(const ref_case *c, ag_tensor *x)
{
    if (!strcmp(c->op, "softmax")) return ag_softmax(x, c->dim);
    if (!strcmp(c->op, "log_softmax")) return ag_log_softmax(x, c->dim);
    if (!strcmp(c->op, "logsumexp")) return ag_logsumexp(x, c->dim, c->keepdim);
    cr_assert_fail("unknown op %s in case %s", c->op, c->name);
    return NULL;
}

/* |got - want| <= atol + rtol |want|; NaN equal to NaN, infinities equal when the same.
 * Returns the largest |got - want| / (atol + rtol |want|) seen. */
static double check_close(const char *name, const char *what, const float *got, const float *want,
                          int64_t n, double atol, double rtol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) || isinf(w)) {
            cr_assert(isnan(w) ? isnan(g) : g == w, "%s: %s[%lld] = %.9g, PyTorch %.9g", name, what,
                      (long long)i, g, w);
            continue;
        }
        double e = fabs(g - w) / (atol + rtol * fabs(w));
        cr_assert(e <= 1.0,
                  "%s: %s[%lld] = %.9g, PyTorch %.9g (|difference| %.3g > %.3g + %.3g * |PyTorch|)",
                  name, what, (long long)i, g, w, fabs(g - w), atol, rtol);
        if (e > worst) worst = e;
    }
    return worst;
}

/* ------------------------------------------------------------------------------------ */
/* Against PyTorch                                                                       */

Test(softmax, values_and_gradients_match_pytorch)
{
    /* agrad's expf and logf are the C library's, PyTorch's vectorised ones SLEEF's: each
     * within an ulp of the other. The order of the float operations is PyTorch's, so the
     * results differ by a few ulps: 4 ulps relative (2^-22), and 2^-22 absolute for values
     * near 0 that come from a difference of larger ones (log_softmax's x - max - log(sum),
     * softmax's gradient y (g - sum)). */
    const double ulp4 = 0x1p-22;
    double worst_out = 0, worst_grad = 0;
    const char *worst_out_at = "", *worst_grad_at = "";
    for (size_t k = 0; k < ref_ncases; k++) {
        const ref_case *c = &ref_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *x = input(c, true);
        ag_tensor *out = apply(c, x);
        cr_assert_not_null(out, "%s: op failed: %s", c->name, ag_last_error());
        cr_assert_eq(out->ndim, c->out_ndim, "%s: ndim %d, PyTorch %d", c->name, out->ndim,
                     c->out_ndim);
        for (int i = 0; i < c->out_ndim; i++)
            cr_assert_eq(out->shape[i], c->out_shape[i], "%s: size %d is %lld, PyTorch %lld",
                         c->name, i, (long long)out->shape[i], (long long)c->out_shape[i]);
        cr_assert_str_eq(ag_grad_fn_name(out), c->grad_fn, "%s: grad_fn %s, PyTorch %s", c->name,
                         ag_grad_fn_name(out), c->grad_fn);
        /* values scale with the inputs' magnitude (1000 - 999 is exact, 1000 + log(...)
         * rounds at 1000's ulp) */
        double scale = 1;
        for (int64_t i = 0; i < x->numel; i++)
            if (isfinite(x->data[i]) && fabs(x->data[i]) > scale) scale = fabs(x->data[i]);
        double e = check_close(c->name, "out", out->data, c->out, out->numel, ulp4 * scale, ulp4);
        if (e > worst_out) {
            worst_out = e;
            worst_out_at = c->name;
        }

        ag_tensor *up =
            ag_tensor_from(out->numel ? c->upstream : (const float[]){0}, ag_size(out), false);
        cr_assert(ag_backward(ag_sum(ag_mul(out, up))), "%s: backward failed: %s", c->name,
                  ag_last_error());
        if (x->numel) {
            cr_assert_not_null(x->grad, "%s: x->grad is NULL", c->name);
            double gs = 0;
            for (int64_t i = 0; i < out->numel; i++) gs += fabs(c->upstream[i]);
            e = check_close(c->name, "grad", x->grad->data, c->gx, x->numel, ulp4 * gs, ulp4);
            if (e > worst_grad) {
                worst_grad = e;
                worst_grad_at = c->name;
            }
        }
        ag_release(m);
    }
    cr_log_info("%zu cases; worst error, as a share of the tolerance: values %.3g (%s), "
                "gradients %.3g (%s)",
                ref_ncases, worst_out, worst_out_at, worst_grad, worst_grad_at);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Against finite differences                                                            */

static ag_tensor *apply_fn(ag_tensor *const *inputs, void *userdata)
{
    return apply(userdata, inputs[0]);
}

Test(softmax, gradcheck_every_smooth_case)
{
    int checked = 0;
    for (size_t k = 0; k < ref_ncases; k++) {
        const ref_case *c = &ref_cases[k];
        if (!c->smooth) continue;
        ag_mark m = ag_mark_now();
        ag_tensor *x = input(c, true);
        ag_gradcheck_result r;
        bool ok = ag_gradcheck(apply_fn, &x, 1, (void *)c, NULL, &r);
        cr_assert(ok && r.passed, "%s: %s (last error: %s)", c->name, r.report, ag_last_error());
        checked++;
        ag_release(m);
    }
    cr_assert_gt(checked, 150, "only %d cases were gradchecked", checked);
    test_finish();
}

/* The three together, and after other ops: log_softmax - logsumexp, softmax of a product. */
static ag_tensor *composed(ag_tensor *const *in, void *userdata)
{
    (void)userdata;
    ag_tensor *a = ag_log_softmax(ag_mul(in[0], in[1]), 1);            /* [2, 3] */
    ag_tensor *b = ag_sub(a, ag_logsumexp(in[1], -1, true));           /* [2, 3] */
    return ag_mul(ag_softmax(b, 0), ag_exp(ag_log_softmax(in[0], 0))); /* [2, 3] */
}

Test(softmax, gradcheck_composed)
{
    ag_tensor *x =
        ag_tensor_from((const float[]){0.3f, -1.2f, 2.1f, 1.7f, -0.4f, 0.9f}, AG_SHAPE(2, 3), true);
    ag_tensor *w =
        ag_tensor_from((const float[]){1.1f, 0.5f, -0.7f, 0.2f, 1.9f, -1.3f}, AG_SHAPE(2, 3), true);
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(composed, (ag_tensor *[]){x, w}, 2, NULL, NULL, &r),
              "%s (last error: %s)", r.report, ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* By hand                                                                               */

Test(softmax, large_values_do_not_overflow)
{
    ag_tensor *x = VEC(true, 1000.0f, 999.0f, -1000.0f);
    /* e / (e + 1) and 1 / (e + 1), rounded to float; log of those */
    CHECK("softmax", ag_softmax(x, 0), 1e-7f, 0.731058598f, 0.268941432f, 0.0f);
    CHECK("log_softmax", ag_log_softmax(x, -1), 1e-6f, -0.313261688f, -1.31326163f, -2000.31323f);
    CHECK("logsumexp", ag_logsumexp(x, 0, false), 1e-4f, 1000.31323f);
    /* a 0-d input takes dim 0 and -1: softmax 1, log_softmax 0, logsumexp itself */
    ag_tensor *s = ag_scalar(2.5, true);
    ag_tensor *r[] = {ag_softmax(s, 0), ag_log_softmax(s, -1), ag_logsumexp(s, 0, true),
                      ag_logsumexp(s, -1, false)};
    const float want[] = {1.0f, 0.0f, 2.5f, 2.5f};
    for (int i = 0; i < 4; i++) {
        cr_assert(r[i] && r[i]->ndim == 0 && r[i]->data[0] == want[i], "0-d result %d: %s (%s)", i,
                  r[i] ? "wrong" : "NULL", ag_last_error());
    }
    test_finish();
}

Test(softmax, what_each_saves)
{
    ag_set_error_handler(NULL, NULL);
    /* softmax and log_softmax save their result: a second backward fails */
    ag_tensor *x = VEC(true, 1.0f, 2.0f, 3.0f), *g = VEC(false, 1.0f, 0.0f, 0.0f);
    ag_tensor *l = ag_softmax(x, 0);
    cr_assert(ag_backward_with(l, g, false), "first backward: %s", ag_last_error());
    cr_assert_not(ag_backward_with(l, g, false), "a second backward through SoftmaxBackward0 "
                                                 "succeeded");
    cr_assert(strstr(ag_last_error(), "second time") && strstr(ag_last_error(), "SoftmaxBackward0"),
              "message: %s", ag_last_error());
    ag_clear_error();
    /* logsumexp saves its input too: changing it in place, then backward, is an error */
    ag_tensor *w = VEC(true, 1.0f, 2.0f, 3.0f);
    ag_tensor *y = ag_logsumexp(w, 0, false);
    AG_NO_GRAD { ag_mul_(w, 2.0); }
    cr_assert_not(ag_backward(y), "backward after an in-place change of logsumexp's input");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation") &&
                  strstr(ag_last_error(), "LogsumexpBackward0"),
              "message: %s", ag_last_error());
    ag_clear_error();
    /* and nothing is recorded without grad */
    ag_tensor *v = VEC(false, 1.0f, 2.0f);
    ag_tensor *u = VEC(true, 1.0f, 2.0f), *in_ng;
    AG_NO_GRAD { in_ng = ag_log_softmax(u, 0); }
    ag_tensor *r[] = {ag_softmax(v, 0), ag_log_softmax(v, 0), ag_logsumexp(v, 0, false), in_ng};
    for (int i = 0; i < 4; i++)
        cr_assert(r[i] && !r[i]->requires_grad && ag_is_leaf(r[i]), "result %d recorded", i);
    test_finish();
}

Test(softmax, gradient_of_log_softmax_at_minus_inf)
{
    /* PyTorch: the -inf entry's gradient is its upstream g (exp(-inf) = 0), softmax's is
     * (g - sum) * 0 = 0 */
    ag_tensor *x = VEC(true, 1.0f, -INFINITY, 2.0f);
    ag_tensor *g = VEC(false, 0.3f, -0.5f, 1.0f);
    cr_assert(ag_backward_with(ag_log_softmax(x, 0), g, false), "%s", ag_last_error());
    CHECK("log_softmax grad", x->grad, 1e-6f, 0.0848468617f, -0.5f, 0.415153116f);
    ag_tensor *z = VEC(true, 1.0f, -INFINITY, 2.0f);
    cr_assert(ag_backward_with(ag_softmax(z, 0), g, false), "%s", ag_last_error());
    CHECK("softmax grad", z->grad, 1e-6f, -0.137628362f, 0.0f, 0.137628317f);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

static void expect_error(const char *call, const ag_tensor *r, const char *want)
{
    cr_assert_null(r, "%s succeeded; expected the error \"%s\"", call, want);
    cr_assert_str_eq(ag_last_error(), want, "%s: message\n    %s\nexpected\n    %s", call,
                     ag_last_error(), want);
    ag_clear_error();
}

Test(softmax, dimension_out_of_range)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_zeros(AG_SHAPE(2, 3)), *s = ag_scalar(1.0);
    expect_error("softmax(x, 2)", ag_softmax(x, 2),
                 "softmax: Dimension out of range (expected to be in range of [-2, 1], but got 2) "
                 "for a tensor of shape [2, 3]");
    expect_error("log_softmax(x, -3)", ag_log_softmax(x, -3),
                 "log_softmax: Dimension out of range (expected to be in range of [-2, 1], but got "
                 "-3) for a tensor of shape [2, 3]");
    expect_error(
        "logsumexp(x, 2)", ag_logsumexp(x, 2, true),
        "logsumexp: Dimension out of range (expected to be in range of [-2, 1], but got 2) "
        "for a tensor of shape [2, 3]");
    expect_error("softmax(scalar, 1)", ag_softmax(s, 1),
                 "softmax: Dimension out of range (expected to be in range of [-1, 0], but got 1) "
                 "for a tensor of shape []");
    expect_error("logsumexp(scalar, -2)", ag_logsumexp(s, -2, false),
                 "logsumexp: Dimension out of range (expected to be in range of [-1, 0], but got "
                 "-2) for a tensor of shape []");
    test_finish();
}

Test(softmax, null_and_released_inputs)
{
    ag_set_error_handler(NULL, NULL);
    expect_error("softmax(NULL)", ag_softmax(NULL, 0), "softmax: argument self is NULL");
    expect_error("log_softmax(NULL)", ag_log_softmax(NULL, 0),
                 "log_softmax: argument self is NULL");
    expect_error("logsumexp(NULL)", ag_logsumexp(NULL, 0, false),
                 "logsumexp: argument self is NULL");
    ag_mark m = ag_mark_now();
    ag_tensor *x = ag_zeros(AG_SHAPE(2));
    ag_release(m);
    cr_assert_null(ag_softmax(x, 0), "softmax of a released tensor succeeded");
    cr_assert(strstr(ag_last_error(), "softmax: argument self is a released tensor"), "message: %s",
              ag_last_error());
    test_finish();
}
