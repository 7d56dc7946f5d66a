/* Reductions (sum and mean over a dimension, max and min of everything or over a
 * dimension) against PyTorch 1.13 (tests/ref/reduce_ref.h, made by
 * tools/gen_ref_reduce.py): values, chosen positions, grad_fn names and gradients; their
 * backward against ag_gradcheck; their error messages and graph behaviour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agrad_test.h"

#include "ref/reduce_ref.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

/* A leaf of the case's input shape and values. */
static ag_tensor *input(const ref_case *c, bool requires_grad)
{
    ag_tensor *t = ag_zeros(shape_of(c->x_ndim, c->x_shape));
    cr_assert_not_null(t, "%s: making the input failed: %s", c->name, ag_last_error());
    if (c->x) memcpy(t->data, c->x, (size_t)t->numel * sizeof(float));
    ag_requires_grad_(t, requires_grad);
    return t;
}

/* The op of case c applied to x; *indices gets max_dim's and min_dim's positions. */
static ag_tensor *apply(const ref_case *c, ag_tensor *x, ag_tensor **indices)
{
    const char *op = c->op;
    if (indices) *indices = NULL;
    if (!strcmp(op, "sum_dim")) return ag_sum_dim(x, c->dim, c->keepdim);
    if (!strcmp(op, "mean_dim")) return ag_mean_dim(x, c->dim, c->keepdim);
    if (!strcmp(op, "max")) return ag_max(x);
    if (!strcmp(op, "min")) return ag_min(x);
    if (!strcmp(op, "max_dim")) return ag_max_dim(x, c->dim, c->keepdim, indices);
    if (!strcmp(op, "min_dim")) return ag_min_dim(x, c->dim, c->keepdim, indices);
    cr_assert_fail("unknown op %s in case %s", op, c->name);
    return NULL;
}

static void check_shape(const ref_case *c, const char *what, const ag_tensor *t)
{
    cr_assert_eq(t->ndim, c->out_ndim, "%s: %s has ndim %d, PyTorch %d", c->name, what, t->ndim,
                 c->out_ndim);
    for (int i = 0; i < c->out_ndim; i++)
        cr_assert_eq(t->shape[i], c->out_shape[i], "%s: %s size %d is %lld, PyTorch %lld", c->name,
                     what, i, (long long)t->shape[i], (long long)c->out_shape[i]);
}

/* |got - want| <= tol * scale[i] (scale NULL: tol), NaN equal to NaN whatever its sign,
 * infinities equal when the same. Returns the largest |got - want| / scale seen. */
static double check_close(const ref_case *c, const char *what, const float *got, const float *want,
                          const double *scale, int64_t n, double tol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], s = scale ? scale[i] : 1.0;
        if (isnan(w) || isinf(w)) {
            cr_assert(isnan(w) ? isnan(g) : g == w, "%s: %s[%lld] = %.9g, PyTorch %.9g", c->name,
                      what, (long long)i, g, w);
            continue;
        }
        double e = s > 0 ? fabs(g - w) / s : fabs(g - w);
        cr_assert(e <= tol, "%s: %s[%lld] = %.9g, PyTorch %.9g (error %.3g, tolerance %.3g)",
                  c->name, what, (long long)i, g, w, e, tol);
        if (e > worst) worst = e;
    }
    return worst;
}

/* For each result element of a sum or mean, a bound on the difference between agrad's
 * value and PyTorch's, in units of u * S (u = 2^-24, S = sum_k |x_k| over its n terms):
 * PyTorch's float sum is within (n - 1) u S of the exact sum and agrad's correctly
 * rounded one within u S, so sums differ by at most n u S; a mean divides both by n and
 * rounds twice more, so means differ by at most (n + 2) u S / n. Where terms cancel, an
 * ulp of the result says nothing about either. */
static double *sum_scales(const ref_case *c, const ag_tensor *x, const ag_tensor *out)
{
    double *scale = calloc((size_t)(out->numel ? out->numel : 1), sizeof *scale);
    cr_assert_not_null(scale, "out of memory");
    int d = c->dim < 0 ? c->dim + (x->ndim ? x->ndim : 1) : c->dim;
    int64_t outer = 1, n = x->shape[d], inner = 1;
    for (int i = 0; i < d; i++) outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++) inner *= x->shape[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += fabs(x->data[(o * n + k) * inner + i]);
            bool mean = !strcmp(c->op, "mean_dim");
            double units = mean ? (double)(n + 2) / (double)(n ? n : 1) : (double)n;
            scale[o * inner + i] = units * s * 0x1p-24;
        }
    return scale;
}

/* ------------------------------------------------------------------------------------ */
/* Against PyTorch                                                                       */

Test(reduce, forward_indices_and_gradients_match_pytorch)
{
    double worst_sum = 0, worst_other = 0, worst_grad = 0;
    for (size_t k = 0; k < ref_ncases; k++) {
        const ref_case *c = &ref_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *x = input(c, true), *idx;
        ag_tensor *out = apply(c, x, &idx);
        cr_assert_not_null(out, "%s: op failed: %s", c->name, ag_last_error());
        check_shape(c, "out", out);
        cr_assert_str_eq(ag_grad_fn_name(out), c->grad_fn, "%s: grad_fn %s, PyTorch %s", c->name,
                         ag_grad_fn_name(out), c->grad_fn);

        /* sum and mean round differently from PyTorch's float sums (see sum_scales);
         * max and min pick an element, which must be PyTorch's exactly. */
        bool summed = !strcmp(c->op, "sum_dim") || !strcmp(c->op, "mean_dim");
        double *scale = summed ? sum_scales(c, x, out) : NULL;
        double e = check_close(c, "out", out->data, c->out, scale, out->numel, summed ? 1.0 : 0.0);
        free(scale);
        if (summed && e > worst_sum) worst_sum = e;
        if (!summed && e > worst_other) worst_other = e;

        if (c->indices) {
            cr_assert_not_null(idx, "%s: no indices returned", c->name);
            check_shape(c, "indices", idx);
            cr_assert(!idx->requires_grad && ag_is_leaf(idx),
                      "%s: indices require grad (%d) or are recorded (%s)", c->name,
                      idx->requires_grad, ag_grad_fn_name(idx));
            check_close(c, "indices", idx->data, c->indices, NULL, idx->numel, 0.0);
        }

        ag_tensor *up =
            ag_tensor_from(out->numel ? c->upstream : (const float[]){0}, ag_size(out), false);
        cr_assert(ag_backward(ag_sum(ag_mul(out, up))), "%s: backward failed: %s", c->name,
                  ag_last_error());
        if (x->numel) {
            cr_assert_not_null(x->grad, "%s: x->grad is NULL", c->name);
            /* every gradient here is one float operation on the upstream value (a copy,
             * g / n, g / ties), as in PyTorch: it must agree to the bit */
            e = check_close(c, "grad", x->grad->data, c->gx, NULL, x->numel, 0.0);
            if (e > worst_grad) worst_grad = e;
        }
        ag_release(m);
    }
    cr_log_info("%zu cases; worst errors: sum/mean %.3g of the bound, max/min %.3g, "
                "gradients %.3g",
                ref_ncases, worst_sum, worst_other, worst_grad);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Against finite differences                                                            */

static ag_tensor *apply_fn(ag_tensor *const *inputs, void *userdata)
{
    return apply(userdata, inputs[0], NULL);
}

Test(reduce, gradcheck_every_smooth_case)
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
    cr_assert_gt(checked, 100, "only %d cases were gradchecked", checked);
    test_finish();
}

/* max_dim's gradient through a broadcast subtraction, with the other reductions after it. */
static ag_tensor *composed(ag_tensor *const *in, void *userdata)
{
    (void)userdata;
    ag_tensor *rowmax = ag_max_dim(in[0], 1, true, NULL);                 /* [2, 1] */
    ag_tensor *centred = ag_sub(in[0], rowmax);                           /* [2, 3] */
    ag_tensor *colmean = ag_mean_dim(ag_mul(centred, centred), 0, false); /* [3] */
    return ag_add(ag_sum_dim(colmean, -1, true), ag_min(in[0]));          /* [1] */
}

Test(reduce, gradcheck_composed_reductions)
{
    ag_tensor *x =
        ag_tensor_from((const float[]){0.3f, -1.2f, 2.1f, 1.7f, -0.4f, 0.9f}, AG_SHAPE(2, 3), true);
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(composed, &x, 1, NULL, NULL, &r), "%s (last error: %s)", r.report,
              ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Graph behaviour                                                                       */

Test(reduce, gradients_of_several_reductions_accumulate)
{
    /* x.max(1).values.sum() + x.sum(0).sum() + x.mean(1, keepdim=True).sum():
     * 1 at each row's max, plus 1 everywhere, plus 1/3 everywhere. */
    ag_tensor *x = ag_tensor_from((const float[]){1, 5, 2, 7, 3, 7}, AG_SHAPE(2, 3), true);
    ag_tensor *l =
        ag_add(ag_add(ag_sum(ag_max_dim(x, 1, false, NULL)), ag_sum(ag_sum_dim(x, 0, false))),
               ag_sum(ag_mean_dim(x, 1, true)));
    cr_assert(ag_backward(l), "backward: %s", ag_last_error());
    const float third = 1.0f / 3.0f;
    const float want[] = {1 + third, 2 + third, 1 + third, 2 + third, 1 + third, 1 + third};
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(x->grad->data[i], want[i], 1e-6f, "grad[%d] = %.9g, expected %.9g", i,
                           (double)x->grad->data[i], (double)want[i]);
    test_finish();
}

/* torch.mean of everything divides the float sum by n in float: two roundings, which a
 * mean taken in double and rounded once can miss by an ulp. The values are PyTorch's
 * (torch.manual_seed(0), 1.13): x.mean() is 6.140553951263428, the mean rounded once
 * 6.1405534744262695. Seen in the lab sgd_normal_equation, whose stop needs equal losses. */
Test(reduce, mean_of_everything_divides_the_float_sum_in_float)
{
    ag_tensor *x = ag_tensor_from(
        (const float[]){4.900934219360352f, 8.964447021484375f, 4.55627965927124f}, AG_SHAPE(3));
    double got = ag_item(ag_mean(x)), sum = ag_item(ag_sum(x));
    cr_assert(got == 6.140553951263428 && sum == 18.421661376953125,
              "mean %.17g (PyTorch 6.140553951263428), sum %.17g (PyTorch 18.421661376953125)", got,
              sum);
    test_finish();
}

Test(reduce, nothing_is_recorded_without_grad)
{
    ag_tensor *x = ag_tensor_from((const float[]){1, 5, 2, 7}, AG_SHAPE(2, 2), false);
    ag_tensor *idx;
    ag_tensor *r[] = {
        ag_sum_dim(x, 0, false),       ag_mean_dim(x, 1, true),      ag_max(x), ag_min(x),
        ag_max_dim(x, 0, false, &idx), ag_min_dim(x, -1, true, NULL)};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        cr_assert_not_null(r[i], "result %zu is NULL: %s", i, ag_last_error());
        cr_assert(!r[i]->requires_grad && ag_is_leaf(r[i]),
                  "result %zu requires grad (%d) or was recorded (%s)", i, r[i]->requires_grad,
                  ag_grad_fn_name(r[i]));
    }
    cr_assert(idx->data[0] == 1 && idx->data[1] == 1, "indices %g %g, expected 1 1",
              (double)idx->data[0], (double)idx->data[1]);

    ag_tensor *w = ag_tensor_from((const float[]){1, 5, 2, 7}, AG_SHAPE(2, 2), true);
    ag_tensor *y;
    AG_NO_GRAD { y = ag_max_dim(w, 1, false, NULL); }
    cr_assert(!y->requires_grad && ag_is_leaf(y),
              "max_dim inside no_grad requires grad (%d) or was recorded (%s)", y->requires_grad,
              ag_grad_fn_name(y));
    test_finish();
}

Test(reduce, max_of_everything_saves_its_input_and_result)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_tensor_from((const float[]){1, 5, 2}, AG_SHAPE(3), true);
    ag_tensor *m = ag_max(x);
    cr_assert(ag_backward(m), "first backward: %s", ag_last_error());
    cr_assert_not(ag_backward(m), "a second backward through MaxBackward1 succeeded");
    cr_assert(strstr(ag_last_error(), "backward through the graph a second time"), "message: %s",
              ag_last_error());

    ag_tensor *w = ag_tensor_from((const float[]){1, 5, 2}, AG_SHAPE(3), true);
    ag_tensor *n = ag_min(w);
    AG_NO_GRAD { ag_mul_(w, 2.0); }
    cr_assert_not(ag_backward(n), "backward after an in-place change of min's input succeeded");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "message: %s",
              ag_last_error());

    /* sum over a dimension saves no tensor: a second backward works */
    ag_tensor *v = ag_tensor_from((const float[]){1, 5, 2, 4}, AG_SHAPE(2, 2), true);
    ag_tensor *s = ag_sum(ag_sum_dim(v, 0, true));
    cr_assert(ag_backward(s) && ag_backward(s), "second backward: %s", ag_last_error());
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(v->grad->data[i], 2.0f, 1e-7f, "grad[%d] = %g, expected 2", i,
                           (double)v->grad->data[i]);

    /* PyTorch 1.13's MeanBackward1 saves its input: a second backward fails, and so does
     * one after an in-place change of the input */
    ag_tensor *u = ag_tensor_from((const float[]){1, 5, 2, 4}, AG_SHAPE(2, 2), true);
    ag_tensor *r = ag_sum(ag_mean_dim(u, 1, false));
    cr_assert(ag_backward(r), "first backward through MeanBackward1: %s", ag_last_error());
    cr_assert_not(ag_backward(r), "a second backward through MeanBackward1 succeeded");
    cr_assert(strstr(ag_last_error(), "second time") && strstr(ag_last_error(), "MeanBackward1"),
              "message: %s", ag_last_error());
    ag_tensor *r2 = ag_sum(ag_mean_dim(u, 0, true));
    AG_NO_GRAD { ag_add_(u, 1.0); }
    cr_assert_not(ag_backward(r2), "backward after an in-place change of mean's input succeeded");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "message: %s",
              ag_last_error());
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

Test(reduce, dimension_out_of_range)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_zeros(AG_SHAPE(2, 3)), *s = ag_scalar(3, true), *idx = x;
    expect_error("sum_dim(x, 2)", ag_sum_dim(x, 2, false),
                 "sum: Dimension out of range (expected to be in range of [-2, 1], but got 2) "
                 "for a tensor of shape [2, 3]");
    expect_error("mean_dim(x, -3)", ag_mean_dim(x, -3, true),
                 "mean: Dimension out of range (expected to be in range of [-2, 1], but got -3) "
                 "for a tensor of shape [2, 3]");
    expect_error("max_dim(x, 2)", ag_max_dim(x, 2, false, &idx),
                 "max: Dimension out of range (expected to be in range of [-2, 1], but got 2) "
                 "for a tensor of shape [2, 3]");
    cr_assert_null(idx, "indices not cleared on error");
    expect_error("min_dim(x, -3)", ag_min_dim(x, -3, false, NULL),
                 "min: Dimension out of range (expected to be in range of [-2, 1], but got -3) "
                 "for a tensor of shape [2, 3]");
    /* a 0-d tensor counts as one dimension */
    expect_error("sum_dim(scalar, 1)", ag_sum_dim(s, 1, false),
                 "sum: Dimension out of range (expected to be in range of [-1, 0], but got 1) "
                 "for a tensor of shape []");
    expect_error("max_dim(scalar, -2)", ag_max_dim(s, -2, true, NULL),
                 "max: Dimension out of range (expected to be in range of [-1, 0], but got -2) "
                 "for a tensor of shape []");
    ag_tensor *r = ag_max_dim(s, -1, true, &idx);
    cr_assert(r && r->ndim == 0 && r->data[0] == 3.0f && idx && idx->ndim == 0 &&
                  idx->data[0] == 0.0f,
              "max_dim(scalar, -1, keepdim): %s", ag_last_error());
    test_finish();
}

Test(reduce, empty_inputs)
{
    ag_set_error_handler(NULL, NULL);
    expect_error("max(zeros [0, 3])", ag_max(ag_zeros(AG_SHAPE(0, 3))),
                 "max: Expected reduction dim to be specified for input.numel() == 0 (shape "
                 "[0, 3]). Specify the reduction dim with the 'dim' argument.");
    expect_error("min(zeros [0])", ag_min(ag_zeros(AG_SHAPE(0))),
                 "min: Expected reduction dim to be specified for input.numel() == 0 (shape "
                 "[0]). Specify the reduction dim with the 'dim' argument.");
    ag_tensor *e = ag_zeros(AG_SHAPE(3, 0)), *idx = e;
    expect_error("max_dim([3, 0], -1)", ag_max_dim(e, -1, false, &idx),
                 "max: Expected reduction dim 1 to have non-zero size (shape [3, 0]).");
    cr_assert_null(idx, "indices not cleared on error");
    expect_error("min_dim([0, 3], 0)", ag_min_dim(ag_zeros(AG_SHAPE(0, 3)), 0, true, NULL),
                 "min: Expected reduction dim 0 to have non-zero size (shape [0, 3]).");
    test_finish();
}

Test(reduce, null_and_released_inputs)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *idx = ag_zeros(AG_SHAPE(1));
    /* NULL is reported once, naming the op; later NULLs in the same expression are silent */
    expect_error("sum_dim(NULL)", ag_sum_dim(NULL, 0, false), "sum: argument self is NULL");
    expect_error("mean_dim(NULL)", ag_mean_dim(NULL, 0, false), "mean: argument self is NULL");
    expect_error("max(NULL)", ag_max(NULL), "max: argument self is NULL");
    expect_error("min(NULL)", ag_min(NULL), "min: argument self is NULL");
    expect_error("max_dim(NULL)", ag_max_dim(NULL, 0, false, &idx), "max: argument self is NULL");
    cr_assert_null(idx, "max_dim(NULL) left *indices set");
    expect_error("min_dim(NULL)", ag_min_dim(NULL, 0, false, NULL), "min: argument self is NULL");
    cr_assert_null(ag_max(ag_sum_dim(ag_max(NULL), 0, false)),
                   "max(sum_dim(max(NULL))) is not NULL");
    cr_assert_str_eq(ag_last_error(), "max: argument self is NULL", "message: %s", ag_last_error());

    ag_mark m = ag_mark_now();
    ag_tensor *x = ag_zeros(AG_SHAPE(2));
    ag_release(m);
    cr_assert_null(ag_max_dim(x, 0, false, NULL), "max_dim of a released tensor succeeded");
    cr_assert(strstr(ag_last_error(), "max"), "message: %s", ag_last_error());
    test_finish();
}
