/* Every op's forward values and gradients against PyTorch (tests/ref/ops_ref.h, made by
 * tools/gen_ref_ops.py), and its backward against central finite differences. */
#include <math.h>
#include <string.h>

#include "agrad_test.h"

#include "ref/ops_ref.h"

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

/* The op of a reference case applied to a (and b, for tensor-tensor forms). */
static ag_tensor *apply(const ref_case *c, ag_tensor *a, ag_tensor *b)
{
    const char *op = c->op;
    double s = c->scalar;
    struct {
        const char *name;
        ag_tensor *(*tt)(const ag_tensor *, const ag_tensor *);
        ag_tensor *(*ts)(const ag_tensor *, double);
        ag_tensor *(*st)(double, const ag_tensor *);
    } bin[] = {
        {"add", ag_add_tt, ag_add_ts, ag_add_st}, {"sub", ag_sub_tt, ag_sub_ts, ag_sub_st},
        {"mul", ag_mul_tt, ag_mul_ts, ag_mul_st}, {"div", ag_div_tt, ag_div_ts, ag_div_st},
        {"pow", ag_pow_tt, ag_pow_ts, ag_pow_st},
    };
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
        size_t n = strlen(bin[i].name);
        if (strncmp(op, bin[i].name, n)) continue;
        if (!op[n]) return bin[i].tt(a, b);
        if (!strcmp(op + n, "_ts")) return bin[i].ts(a, s);
        if (!strcmp(op + n, "_st")) return bin[i].st(s, a);
    }
    if (!strcmp(op, "neg")) return ag_neg(a);
    if (!strcmp(op, "sum")) return ag_sum(a);
    if (!strcmp(op, "mean")) return ag_mean(a);
    if (!strcmp(op, "view")) return ag_view(a, shape_of(c->view_ndim, c->view_shape));
    if (!strcmp(op, "reshape")) return ag_reshape(a, shape_of(c->view_ndim, c->view_shape));
    cr_assert_fail("unknown op %s in case %s", op, c->name);
    return NULL;
}

static ag_tensor *input(int ndim, const int64_t *shape, const float *values)
{
    ag_shape s = shape_of(ndim, shape);
    ag_tensor *t = ag_zeros(s);
    ag_requires_grad_(t, true);
    if (values) memcpy(t->data, values, (size_t)t->numel * sizeof(float));
    return t;
}

/* |got - want| <= atol + rtol * |want|, with NaN equal to NaN. */
static void assert_close(const char *what, const ref_case *c, const float *got, const float *want,
                         int64_t n, double rtol, double atol)
{
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) && isnan(g)) continue;
        cr_assert(fabs(g - w) <= atol + rtol * fabs(w), "%s: %s[%lld] = %.9g, PyTorch %.9g",
                  c->name, what, (long long)i, g, w);
    }
}

Test(ops, forward_and_gradients_match_pytorch)
{
    for (size_t k = 0; k < ref_ncases; k++) {
        const ref_case *c = &ref_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *a = input(c->a_ndim, c->a_shape, c->a);
        ag_tensor *b = c->b ? input(c->b_ndim, c->b_shape, c->b) : NULL;
        ag_tensor *out = apply(c, a, b);
        cr_assert(out, "%s: op failed: %s", c->name, ag_last_error());
        cr_assert_eq(out->ndim, c->out_ndim, "%s: ndim %d, PyTorch %d", c->name, out->ndim,
                     c->out_ndim);
        for (int i = 0; i < c->out_ndim; i++)
            cr_assert_eq(out->shape[i], c->out_shape[i], "%s: size %d is %lld, PyTorch %lld",
                         c->name, i, (long long)out->shape[i], (long long)c->out_shape[i]);
        assert_close("out", c, out->data, c->out, out->numel, 2e-6, 1e-6);

        ag_tensor *up = ag_tensor_from(out->numel ? c->upstream : (float[]){0},
                                       shape_of(c->out_ndim, c->out_shape), false);
        ag_tensor *loss = ag_sum(ag_mul(out, up));
        cr_assert(ag_backward(loss), "%s: backward failed: %s", c->name, ag_last_error());
        if (a->numel) {
            cr_assert(a->grad, "%s: a->grad is NULL", c->name);
            assert_close("grad a", c, a->grad->data, c->ga, a->numel, 1e-5, 1e-6);
        }
        if (b && b->numel) {
            cr_assert(b->grad, "%s: b->grad is NULL", c->name);
            assert_close("grad b", c, b->grad->data, c->gb, b->numel, 1e-5, 1e-6);
        }
        ag_release(m);
    }
    test_finish();
}

/* sum(op(a, b) * upstream) in double, from agrad's forward. */
static double loss_at(const ref_case *c, ag_tensor *a, ag_tensor *b)
{
    ag_mark m = ag_mark_now();
    double s = 0;
    ag_no_grad_begin();
    ag_tensor *out = apply(c, a, b);
    ag_no_grad_end();
    for (int64_t i = 0; i < out->numel; i++) s += (double)out->data[i] * c->upstream[i];
    ag_release(m);
    return s;
}

/* Central differences with a step relative to each value; float32 forward values carry
 * about 1e-7 relative noise, which the step of 1e-3 turns into about 1e-4. */
static double worst_fd_error(const ref_case *c, ag_tensor *x, ag_tensor *a, ag_tensor *b)
{
    double worst = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = x->data[i];
        float h = 1e-3f * fmaxf(1.0f, fabsf(v));
        x->data[i] = v + h;
        double up = loss_at(c, a, b);
        x->data[i] = v - h;
        double down = loss_at(c, a, b);
        x->data[i] = v;
        double fd = (up - down) / ((double)(v + h) - (double)(v - h));
        double an = x->grad->data[i];
        double err = fabs(fd - an) / (1e-2 + fabs(an));
        cr_assert(err <= 5e-3, "%s: d loss / d x[%lld]: backward %.7g, finite difference %.7g",
                  c->name, (long long)i, an, fd);
        if (err > worst) worst = err;
    }
    return worst;
}

Test(ops, gradients_match_finite_differences)
{
    double worst = 0;
    for (size_t k = 0; k < ref_ncases; k++) {
        const ref_case *c = &ref_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *a = input(c->a_ndim, c->a_shape, c->a);
        ag_tensor *b = c->b ? input(c->b_ndim, c->b_shape, c->b) : NULL;
        ag_tensor *out = apply(c, a, b);
        if (out->numel == 0) {
            ag_release(m);
            continue;
        }
        ag_tensor *up = ag_tensor_from(c->upstream, shape_of(c->out_ndim, c->out_shape), false);
        cr_assert(ag_backward(ag_sum(ag_mul(out, up))), "%s: %s", c->name, ag_last_error());
        double e = worst_fd_error(c, a, a, b);
        if (e > worst) worst = e;
        if (b) {
            e = worst_fd_error(c, b, a, b);
            if (e > worst) worst = e;
        }
        ag_release(m);
    }
    cr_log_info("worst relative finite-difference error: %.3g", worst);
    test_finish();
}
