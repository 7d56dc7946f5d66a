/* gradcheck: backward's Jacobian against finite differences.
 *
 * The analytical Jacobian comes one row at a time: backward with a one-hot gradient on
 * each output element (retain_graph) and the change in every input's ->grad. The
 * numerical one comes one column at a time from forward values with one input element
 * moved by +-h and +-2h:
 *
 *     f'(x) ~ (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h,
 *
 * whose error is O(h^4) instead of the O(h^2) of the two-point formula. That lets h be
 * large (1e-2 relative), which float32 needs: forward values carry a relative error of
 * about 6e-8, which a step h turns into about 6e-8 |f| / h in the derivative. h is a
 * power of two, so that x +- h and x +- 2h are exact in float and the stencil is
 * symmetric. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Forward values of fn with grad mode off, as doubles; false after an error. */
static bool evaluate(ag_fn fn, ag_tensor *const *inputs, void *userdata, double *out, int64_t numel)
{
    ag_mark m = ag_mark_now();
    ag_no_grad_begin();
    ag_tensor *y = fn(inputs, userdata);
    ag_no_grad_end();
    bool ok = y && y->numel == numel;
    if (y && !ok)
        ag__error("gradcheck: fn returned %lld elements for perturbed inputs, %lld before",
                  (long long)y->numel, (long long)numel);
    for (int64_t j = 0; ok && j < numel; j++) out[j] = y->data[j];
    ag_release(m);
    return ok;
}

/* The largest power of two not above eps * max(1, |x|). */
static double step_for(float x, double eps)
{
    double scale = fabs((double)x) > 1.0 ? fabs((double)x) : 1.0;
    return ldexp(1.0, (int)floor(log2(eps * scale)));
}

typedef struct worst {
    double excess; /* |a - n| - (atol + rtol |n|): > 0 fails */
    int input;
    int64_t index, output;
    double analytical, numerical;
} worst;

static void consider(worst *w, const ag_gradcheck_opts *o, int k, int64_t i, int64_t j, double a,
                     double n)
{
    double excess = fabs(a - n) - (o->atol + o->rtol * fabs(n));
    if (isnan(a) != isnan(n)) excess = INFINITY;
    if (excess > w->excess || w->input < 0) *w = (worst){excess, k, i, j, a, n};
}

/* Input grads before gradcheck, restored after it: it must not leave traces. */
typedef struct saved_grad {
    bool had;
    float *values;
} saved_grad;

static bool run(ag_fn fn, ag_tensor *const *inputs, int n, void *userdata,
                const ag_gradcheck_opts *o, worst *w)
{
    ag_tensor *y = fn(inputs, userdata);
    if (!y) {
        if (!ag_last_error()[0]) ag__error("gradcheck: fn returned NULL");
        return false;
    }
    if (!y->requires_grad) {
        ag__error("gradcheck: the output of fn does not require grad: no input that requires "
                  "grad reaches it");
        return false;
    }
    int64_t m = y->numel;
    ag_tensor *onehot = ag_zeros(ag_size(y));
    double *cols = ag__malloc((size_t)(m > 0 ? m : 1) * 4 * sizeof(double));
    float **before = ag__malloc((size_t)n * sizeof *before);
    bool ok = onehot && cols && before;
    for (int k = 0; k < n; k++) before[k] = NULL;
    for (int k = 0; ok && k < n; k++) {
        if (!inputs[k]->requires_grad) continue;
        before[k] = ag__malloc((size_t)(inputs[k]->numel > 0 ? inputs[k]->numel : 1) *
                               (size_t)(m > 0 ? m : 1) * sizeof(float));
        ok = before[k] != NULL;
    }

    /* Row j of the analytical Jacobian: the change in each ->grad from a backward pass
     * seeded with the one-hot gradient e_j. before[k] ends up holding J_k[i][j]. */
    for (int64_t j = 0; ok && j < m; j++) {
        onehot->data[j] = 1.0f;
        for (int k = 0; k < n; k++) {
            ag_tensor *x = inputs[k];
            if (before[k] && x->grad)
                for (int64_t i = 0; i < x->numel; i++) before[k][i * m + j] = -x->grad->data[i];
            else if (before[k])
                for (int64_t i = 0; i < x->numel; i++) before[k][i * m + j] = 0.0f;
        }
        ok = ag_backward_with(y, onehot, true);
        onehot->data[j] = 0.0f;
        for (int k = 0; ok && k < n; k++) {
            ag_tensor *x = inputs[k];
            if (before[k] && x->grad)
                for (int64_t i = 0; i < x->numel; i++) before[k][i * m + j] += x->grad->data[i];
        }
    }

    /* Column (k, i) of the numerical Jacobian, compared as it comes. */
    for (int k = 0; ok && k < n; k++) {
        ag_tensor *x = inputs[k];
        if (!before[k]) continue;
        for (int64_t i = 0; ok && i < x->numel; i++) {
            float v = x->data[i];
            double h = step_for(v, o->eps);
            const double offsets[4] = {h, -h, 2 * h, -2 * h};
            for (int s = 0; ok && s < 4; s++) {
                x->data[i] = (float)(v + offsets[s]);
                ok = evaluate(fn, inputs, userdata, cols + s * m, m);
            }
            x->data[i] = v;
            for (int64_t j = 0; ok && j < m; j++) {
                double d1 = cols[j] - cols[m + j], d2 = cols[2 * m + j] - cols[3 * m + j];
                double numerical = (8.0 * d1 - d2) / (12.0 * h);
                consider(w, o, k, i, j, before[k][i * m + j], numerical);
            }
        }
    }
    free(cols);
    for (int k = 0; before && k < n; k++) free(before[k]);
    free(before);
    return ok;
}

bool ag_gradcheck(ag_fn fn, ag_tensor *const *inputs, int n, void *userdata,
                  const ag_gradcheck_opts *opts, ag_gradcheck_result *result)
{
    if (result) memset(result, 0, sizeof *result);
    if (!fn || !inputs || n <= 0)
        return ag__error("gradcheck: needs a function and at least one input (fn %s, inputs "
                         "%s, n = %d)",
                         fn ? "given" : "NULL", inputs ? "given" : "NULL", n),
               false;
    bool any = false;
    for (int k = 0; k < n; k++) {
        if (!ag__check(inputs[k], "gradcheck", "inputs[k]")) return false;
        any = any || inputs[k]->requires_grad;
    }
    if (!any) return ag__error("gradcheck: no input requires grad"), false;
    ag_gradcheck_opts o = {1e-2, 1e-3, 1e-2};
    if (opts && opts->eps > 0) o.eps = opts->eps;
    if (opts && opts->atol > 0) o.atol = opts->atol;
    if (opts && opts->rtol > 0) o.rtol = opts->rtol;

    /* The inputs' ->grad as they were, to be put back. */
    saved_grad *saved = ag__malloc((size_t)n * sizeof *saved);
    if (!saved) return false;
    bool ok = true;
    for (int k = 0; k < n; k++) {
        ag_tensor *g = inputs[k]->grad;
        saved[k] = (saved_grad){g != NULL, NULL};
        if (g && (saved[k].values = ag__malloc((size_t)g->numel * sizeof(float) + 1)))
            memcpy(saved[k].values, g->data, (size_t)g->numel * sizeof(float));
        ok = ok && (!g || saved[k].values);
    }

    worst w = {0, -1, 0, 0, 0, 0};
    ag_mark m = ag_mark_now();
    ok = ok && run(fn, inputs, n, userdata, &o, &w);
    ag_release(m);

    for (int k = 0; k < n; k++) {
        ag_tensor *x = inputs[k];
        if (saved[k].had && saved[k].values && x->grad) {
            memcpy(x->grad->data, saved[k].values, (size_t)x->numel * sizeof(float));
        } else if (!saved[k].had && x->grad) {
            x->grad->ag__.magic = AG__MAGIC_DEAD;
            free(x->grad);
            x->grad = NULL;
        }
        free(saved[k].values);
    }
    free(saved);
    if (!ok) return false;

    bool passed = w.input < 0 || w.excess <= 0;
    if (result) {
        *result = (ag_gradcheck_result){passed,      w.input, w.index, w.output, w.analytical,
                                        w.numerical, o.eps,   o.atol,  o.rtol,   ""};
        if (w.input < 0)
            snprintf(result->report, sizeof result->report,
                     "gradcheck passed: no element to check (empty output or inputs)");
        else
            snprintf(result->report, sizeof result->report,
                     "gradcheck %s: worst element d output[%lld] / d input %d[%lld]: analytical "
                     "%.8g, numerical %.8g, |difference| %.3g %s atol %g + rtol %g * "
                     "|numerical| = %.3g (eps %g)",
                     passed ? "passed" : "FAILED", (long long)w.output, w.input, (long long)w.index,
                     w.analytical, w.numerical, fabs(w.analytical - w.numerical),
                     passed ? "<=" : ">", o.atol, o.rtol, o.atol + o.rtol * fabs(w.numerical),
                     o.eps);
    }
    return passed;
}
