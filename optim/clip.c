/* Gradient clipping: torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (1.13).
 *
 * The norms follow torch.norm's float32 CPU kernels: the 2-norm sums squares in eight
 * fused multiply-add lanes over whole blocks of eight, adds the lanes in order and the rest
 * one by one; other orders sum |x|^p one by one in float. Then the norm of the norms, the
 * coefficient max_norm / (total + 1e-6) as PyTorch computes it (a reciprocal times
 * max_norm), clamped to 1, and every gradient multiplied by it. */
#include "optim_private.h"

#include <math.h>

/* torch.norm(x, p) of n floats, for p other than +inf. */
static float norm_p(const float *x, int64_t n, float p)
{
    if (p == 2) {
        float lanes[8] = {0}, acc;
        int64_t i = 0;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) lanes[j] = fmaf(x[i + j], x[i + j], lanes[j]);
        acc = lanes[0];
        for (int j = 1; j < 8; j++) acc += lanes[j];
        for (; i < n; i++) acc = fmaf(x[i], x[i], acc);
        return sqrtf(acc);
    }
    float acc = 0;
    if (n == 0) return 0;
    if (p == -INFINITY) {
        acc = INFINITY;
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            acc = isnan(acc) || isnan(a) ? NAN : fminf(acc, a);
        }
        return acc;
    }
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        acc += p == 0 ? (x[i] != 0 ? 1.0f : 0.0f) : p == 1 ? a : powf(a, p);
    }
    return p == 0 || p == 1 ? acc : powf(acc, 1.0f / p);
}

/* max |x| (NaN propagates, as torch.max does); 0 for an empty x. */
static float norm_inf(const float *x, int64_t n)
{
    float acc = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        acc = isnan(acc) || isnan(a) ? NAN : fmaxf(acc, a);
    }
    return acc;
}

/* The checks of both: not from inside backward, the list. False after an error. */
static bool check_params(ag_params p, const char *op)
{
    if (ag__deferring()) return ag__error("%s: " AG__INSIDE, op) != NULL;
    return ag__check_params(p, op, "parameters");
}

double ag_clip_grad_norm_with(ag_clip_args a)
{
    const char *op = "clip_grad_norm_";
    if (!check_params(a.params, op)) return NAN;
    if (ag__unset(a.max_norm)) {
        ag__error("%s: clip_grad_norm_() missing 1 required positional argument: 'max_norm'", op);
        return NAN;
    }
    ag_tensor *const *t = a.params.tensors;
    float p = (float)a.norm_type, total = 0;
    bool inf = a.norm_type == INFINITY;
    int count = 0;
    /* The norm of the norms, taken as they come in the order torch.norm of their stack
     * takes them: for p = 2 in the eight lanes, block by block. */
    float lanes[8] = {0}, block[8];
    int inblock = 0;
    for (int i = 0; i < a.params.n; i++) {
        const ag_tensor *g = t[i]->grad;
        if (!g) continue;
        float v = inf ? norm_inf(g->data, g->numel) : norm_p(g->data, g->numel, p);
        if (inf) {
            total = count == 0 ? v : isnan(total) || isnan(v) ? NAN : fmaxf(total, v);
        } else if (p == 2) {
            block[inblock++] = v;
            if (inblock == 8) {
                for (int j = 0; j < 8; j++) lanes[j] = fmaf(block[j], block[j], lanes[j]);
                inblock = 0;
            }
        } else if (p == -INFINITY) {
            total = count == 0 ? v : isnan(total) || isnan(v) ? NAN : fminf(total, v);
        } else {
            float av = fabsf(v);
            total += p == 0 ? (v != 0 ? 1.0f : 0.0f) : p == 1 ? av : powf(av, p);
        }
        count++;
    }
    if (count == 0) return 0; /* torch.tensor(0.) */
    if (p == 2 && !inf) {
        float acc = lanes[0];
        for (int j = 1; j < 8; j++) acc += lanes[j];
        for (int j = 0; j < inblock; j++) acc = fmaf(block[j], block[j], acc);
        total = sqrtf(acc);
    } else if (!inf && p != -INFINITY && p != 0 && p != 1) {
        total = powf(total, 1.0f / p);
    }
    if (a.error_if_nonfinite && !isfinite(total)) {
        char b[AG__PYFLOAT];
        ag__error("%s: The total norm of order %s for gradients from `parameters` is "
                  "non-finite, so it cannot be clipped. To disable this error and scale the "
                  "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`",
                  op, ag__pyfloat(b, a.norm_type));
        return NAN;
    }
    /* clip_coef = max_norm / (total_norm + 1e-6), which Tensor.__rtruediv__ computes as
     * reciprocal() * max_norm; then clamp(max=1.0), NaN staying NaN. */
    float coef = (1.0f / (total + (float)1e-6)) * (float)a.max_norm;
    if (coef > 1.0f) coef = 1.0f;
    for (int i = 0; i < a.params.n; i++)
        if (t[i]->grad) ag_imul_ts(t[i]->grad, coef); /* grad.mul_(clip_coef_clamped) */
    return total;
}

bool ag_clip_grad_value_(ag_params params, double clip_value)
{
    const char *op = "clip_grad_value_";
    if (!check_params(params, op)) return false;
    /* clamp_(min=-clip_value, max=clip_value): a NaN element stays NaN, a NaN bound makes
     * every element NaN, and a negative clip_value (min above max) gives max everywhere. */
    float lo = (float)-clip_value, hi = (float)clip_value;
    bool nan_bound = isnan(clip_value);
    for (int i = 0; i < params.n; i++) {
        ag_tensor *g = params.tensors[i]->grad;
        if (!g) continue;
        for (int64_t k = 0; k < g->numel; k++) {
            float v = g->data[k];
            g->data[k] = nan_bound ? NAN : isnan(v) ? v : fminf(fmaxf(v, lo), hi);
        }
        ag__bump_version(g); /* as clamp_ */
    }
    return true;
}
