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
static bool evaluate(ag_fn fn, ag_tensor *const *inputs, void *userdata, double *out, int64_t numel,
                     int k, int64_t i, double h)
{
    ag_mark m = ag_mark_now();
    ag_no_grad_begin();
    ag_tensor *y = fn(inputs, userdata);
    ag_no_grad_end();
    bool ok = y && y->numel == numel;
    if (!y) {
        char inner[768];
        snprintf(inner, sizeof inner, "%s",
                 ag_last_error()[0] ? ag_last_error() : "no error was reported");
        ag__error("gradcheck: fn returned NULL when input %d element %lld was moved by %g: %s", k,
                  (long long)i, h, inner);
    } else if (!ok) {
        ag__error("gradcheck: fn returned %lld elements when input %d element %lld was moved by "
                  "%g, %lld before",
                  (long long)y->numel, k, (long long)i, h, (long long)numel);
    }
    for (int64_t j = 0; ok && j < numel; j++) out[j] = y->data[j];
    ag_release(m);
    return ok;
}

/* The largest power of two not above eps * max(1, |x|); 0 after an error. */
static double step_for(float x, double eps, int k, int64_t i)
{
    double scale = fabs((double)x) > 1.0 ? fabs((double)x) : 1.0, h = eps * scale;
    /* Checked before floor() meets an int: the conversion is undefined for inf or nan. */
    if (!isfinite(x) || !isfinite(h)) {
        ag__error("gradcheck: input %d element %lld is %g: finite differences need finite values "
                  "(and eps * |x| finite, eps = %g)",
                  k, (long long)i, (double)x, eps);
        return 0;
    }
    return ldexp(1.0, (int)floor(log2(h)));
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

/* What run allocates, freed in one place. */
typedef struct work {
    ag_tensor **ins; /* the inputs that require grad */
    int *index;      /* their positions in inputs */
    float **jac;     /* jac[c][i * m + j] = d y_j / d ins[c]_i, from backward */
    float **row;     /* one backward pass's gradient for each of ins */
    double *cols;    /* four forward evaluations of y */
    int count;
} work;

static void work_free(work *wk)
{
    for (int c = 0; c < wk->count; c++) {
        ag__free(wk->jac ? wk->jac[c] : NULL);
        ag__free(wk->row ? wk->row[c] : NULL);
    }
    ag__free(wk->ins);
    ag__free(wk->index);
    ag__free(wk->jac);
    ag__free(wk->row);
    ag__free(wk->cols);
}

static bool work_alloc(work *wk, ag_tensor *const *inputs, int n, int64_t m)
{
    for (int k = 0; k < n; k++) wk->count += inputs[k]->requires_grad;
    size_t c = (size_t)wk->count;
    wk->ins = ag__malloc(c * sizeof *wk->ins);
    wk->index = ag__malloc(c * sizeof *wk->index);
    wk->jac = ag__malloc(c * sizeof *wk->jac);
    wk->row = ag__malloc(c * sizeof *wk->row);
    wk->cols = ag__malloc((size_t)(m > 0 ? m : 1) * 4 * sizeof(double));
    if (!wk->ins || !wk->index || !wk->jac || !wk->row || !wk->cols) {
        if (wk->jac) memset(wk->jac, 0, c * sizeof *wk->jac);
        if (wk->row) memset(wk->row, 0, c * sizeof *wk->row);
        return false;
    }
    for (int k = 0, at = 0; k < n; k++) {
        if (!inputs[k]->requires_grad) continue;
        int64_t numel = inputs[k]->numel;
        wk->ins[at] = inputs[k];
        wk->index[at] = k;
        /* numel * m floats: the sizes are checked against overflow first */
        bool fits = m == 0 || numel <= AG__NUMEL_MAX / m;
        wk->jac[at] = fits ? ag__malloc((size_t)(numel * m) * sizeof(float)) : NULL;
        wk->row[at] = ag__malloc((size_t)numel * sizeof(float));
        at++;
    }
    for (int c2 = 0; c2 < wk->count; c2++)
        if (!wk->jac[c2] || !wk->row[c2]) return false;
    return true;
}

static bool run(ag_fn fn, ag_tensor *const *inputs, int n, void *userdata,
                const ag_gradcheck_opts *o, worst *w)
{
    ag_tensor *y = fn(inputs, userdata);
    if (!y) {
        char inner[768];
        snprintf(inner, sizeof inner, "%s",
                 ag_last_error()[0] ? ag_last_error() : "no error was reported");
        ag__error("gradcheck: fn returned NULL at the inputs given: %s", inner);
        return false;
    }
    if (!y->requires_grad) {
        ag__error("gradcheck: the output of fn does not require grad: no input that requires "
                  "grad reaches it");
        return false;
    }
    int64_t m = y->numel;
    ag_tensor *onehot = ag_zeros(ag_size(y));
    work wk = {0};
    bool ok = onehot && work_alloc(&wk, inputs, n, m);
    if (onehot && !ok) {
        char s[AG__SHAPE_STR];
        ag__error("gradcheck: out of memory for the Jacobian (output of shape %s)",
                  ag__shape_str(s, y->ndim, y->shape));
    }

    /* Row j of the analytical Jacobian: the gradients at the inputs of a backward pass
     * seeded with the one-hot gradient e_j, as torch.autograd.grad gives them: no ->grad
     * is read or changed, and an input made by other ops is differentiated like a leaf. */
    for (int64_t j = 0; ok && j < m; j++) {
        onehot->data[j] = 1.0f;
        ok = ag__grad_into(y, onehot, wk.ins, wk.count, wk.row);
        onehot->data[j] = 0.0f;
        for (int c = 0; ok && c < wk.count; c++)
            for (int64_t i = 0; i < wk.ins[c]->numel; i++) wk.jac[c][i * m + j] = wk.row[c][i];
    }

    /* Column (k, i) of the numerical Jacobian, compared as it comes. */
    double *cols = wk.cols;
    for (int c = 0; ok && c < wk.count; c++) {
        ag_tensor *x = wk.ins[c];
        int k = wk.index[c];
        for (int64_t i = 0; ok && i < x->numel; i++) {
            float v = x->data[i];
            double h = step_for(v, o->eps, k, i);
            ok = h > 0;
            const double offsets[4] = {h, -h, 2 * h, -2 * h};
            for (int s = 0; ok && s < 4; s++) {
                x->data[i] = (float)(v + offsets[s]);
                ok = evaluate(fn, inputs, userdata, cols + s * m, m, k, i, offsets[s]);
            }
            x->data[i] = v; /* the input as it was, whatever happened */
            for (int64_t j = 0; ok && j < m; j++) {
                double d1 = cols[j] - cols[m + j], d2 = cols[2 * m + j] - cols[3 * m + j];
                double numerical = (8.0 * d1 - d2) / (12.0 * h);
                consider(w, o, k, i, j, wk.jac[c][i * m + j], numerical);
            }
        }
    }
    work_free(&wk);
    return ok;
}

/* The option named name: 0 takes the default; else finite and positive. */
static bool option(const char *name, double given, double fallback, double *out)
{
    if (given == 0) {
        *out = fallback;
        return true;
    }
    if (!(given > 0) || !isfinite(given)) {
        ag__error("gradcheck: opts->%s must be a finite number > 0 (or 0 for the default), got %g",
                  name, given);
        return false;
    }
    *out = given;
    return true;
}

bool ag_gradcheck(ag_fn fn, ag_tensor *const *inputs, int n, void *userdata,
                  const ag_gradcheck_opts *opts, ag_gradcheck_result *result)
{
    if (result) memset(result, 0, sizeof *result);
    if (!fn || !inputs || n <= 0) {
        ag__error("gradcheck: needs a function and at least one input (fn %s, inputs "
                  "%s, n = %d)",
                  fn ? "given" : "NULL", inputs ? "given" : "NULL", n);
        return false;
    }
    bool any = false;
    for (int k = 0; k < n; k++) {
        if (!ag__check_at(inputs[k], "gradcheck", "inputs", k)) return false;
        any = any || inputs[k]->requires_grad;
    }
    if (!any) {
        ag__error("gradcheck: no input requires grad");
        return false;
    }
    ag_gradcheck_opts o;
    ag_gradcheck_opts given = opts ? *opts : (ag_gradcheck_opts){0};
    if (!option("eps", given.eps, 1e-2, &o.eps) || !option("atol", given.atol, 1e-3, &o.atol) ||
        !option("rtol", given.rtol, 1e-2, &o.rtol))
        return false;

    /* fn runs many times: errors inside reach the handler once, when all is put back. */
    ag__defer_begin();
    worst w = {0, -1, 0, 0, 0, 0};
    ag_mark m = ag_mark_now();
    bool ok = run(fn, inputs, n, userdata, &o, &w);
    ag_release(m);
    ag__defer_end();
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
