/* softmax, log_softmax and logsumexp over one dimension. Each op keeps its forward and
 * its backward side by side.
 *
 * Like the reductions (reduce.c), each sees x as [outer, n, inner] around its dimension d
 * and works on one slice of n elements, inner apart, at a time. The maximum of the slice
 * is subtracted before exp, so that nothing overflows: softmax([1000, 999]) is fine.
 *
 * The order of the float operations is that of PyTorch's CPU kernels (SoftMaxKernel.cpp
 * in its AVX2 build, checked bit for bit against PyTorch 1.13 on the same exp values), so
 * that agrad's results differ from PyTorch's only by the C library's expf and logf, within
 * an ulp of PyTorch's vectorised ones:
 *   - along the last dimension (where the slice is contiguous), sums are PyTorch's
 *     vectorised sums (lane_sum), softmax multiplies by 1 / sum, and softmax's backward
 *     sums g * y with fused multiply-adds after the first eight terms;
 *   - along any other dimension, sums run one element after the other, softmax divides by
 *     the sum, and softmax's backward sums g * y with fused multiply-adds;
 *   - log_softmax is (x - max) - log(sum) in that order, and its backward g - exp(y) * sum
 *     with one rounding (a fused multiply-add), either way.
 * NaN anywhere in a slice makes the whole slice NaN, and so does +inf or a slice of only
 * -inf (inf - inf), as in PyTorch. logsumexp subtracts a maximum of +-inf as 0 instead, so
 * that a slice of only -inf gives -inf and one holding +inf gives +inf. */
#include "internal.h"

#include <math.h>

/* ------------------------------------------------------------------------------------ */
/* Shared                                                                                */

/* The sum of the n terms a[k] (or a[k] * b[k] when b is not NULL) as PyTorch's vectorised
 * reduction over AVX2's 8 float lanes adds them (vec::reduce_all, map2_reduce_all): fewer
 * than 8 one after the other; else lane j adds terms j, j + 8, j + 16, ..., and the lanes
 * are then added pairwise (j and j + 4, j and j + 2, 0 and 1). Products after a lane's
 * first are fused into its sum, as the FMA build contracts them. */
enum { LANES = 8 };
static inline float term(const float *a, const float *b, int64_t k)
{
    return b ? a[k] * b[k] : a[k];
}
static float lane_sum(const float *a, const float *b, int64_t n)
{
    if (n < LANES) {
        float s = n > 0 ? term(a, b, 0) : 0.0f;
        for (int64_t k = 1; k < n; k++) s += term(a, b, k);
        return s;
    }
    float acc[LANES];
    for (int j = 0; j < LANES; j++) acc[j] = term(a, b, j);
    for (int64_t k = LANES; k < n; k++)
        acc[k % LANES] = b ? fmaf(a[k], b[k], acc[k % LANES]) : acc[k % LANES] + a[k];
    for (int h = LANES / 2; h > 0; h /= 2)
        for (int j = 0; j < h; j++) acc[j] += acc[j + h];
    return acc[0];
}

/* The largest element of the slice; a NaN makes the slice NaN whatever this returns. */
static float slice_max(const float *x, int64_t n, int64_t stride)
{
    float m = x[0];
    for (int64_t k = 1; k < n; k++)
        if (x[k * stride] > m) m = x[k * stride];
    return m;
}

/* Whether ops over dimension d of x take PyTorch's last-dimension kernels: d is the last
 * dimension, or x is 0-d (which PyTorch views as one element along dimension 0). */
static bool along_last(const ag_tensor *x, int d) { return d == x->ndim - 1 || x->ndim == 0; }

/* Checks x and wraps dim for op (a 0-d x takes 0 or -1); -1 after an error. */
static int dim_of(const char *op, const ag_tensor *x, int dim)
{
    if (!ag__check(x, op, "self")) return -1;
    return ag__wrap_dim(op, x, dim, x->ndim > 0 ? x->ndim : 1);
}

/* ------------------------------------------------------------------------------------ */
/* softmax: y_k = exp(x_k - m) / sum_j exp(x_j - m), m = max_j x_j                       */
/*                                         dL/dx_k = y_k (g_k - sum_j g_j y_j)           */
/* log_softmax: y_k = (x_k - m) - log(sum_j exp(x_j - m))                                */
/*                                         dL/dx_k = g_k - exp(y_k) sum_j g_j            */
/* Both save only their result; the dimension is arg.dim.                                */

static void softmax_slice(float *y, const float *x, int64_t n, int64_t st, bool last, bool log)
{
    float m = slice_max(x, n, st);
    for (int64_t k = 0; k < n; k++) y[k * st] = expf(x[k * st] - m);
    float s = 0;
    if (last) {
        s = lane_sum(y, NULL, n);
    } else {
        for (int64_t k = 0; k < n; k++) s += y[k * st];
    }
    if (log) {
        float l = logf(s);
        for (int64_t k = 0; k < n; k++) y[k * st] = (x[k * st] - m) - l;
    } else if (last) {
        float r = 1.0f / s;
        for (int64_t k = 0; k < n; k++) y[k * st] *= r;
    } else {
        for (int64_t k = 0; k < n; k++) y[k * st] /= s;
    }
}

static void softmax_into(ag_tensor *y, const ag_tensor *x, int d, bool log)
{
    ag__split s = ag__split_at(x, d);
    bool last = along_last(x, d);
    for (int64_t o = 0; s.n > 0 && o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            int64_t at = o * s.n * s.inner + i;
            softmax_slice(y->data + at, x->data + at, s.n, s.inner, last, log);
        }
}
bool ag__softmax_forward(ag_tensor *y)
{
    softmax_into(y, node(y)->src[0], (int)node(y)->arg.dim, node(y)->op == AG__OP_LOG_SOFTMAX);
    return true;
}

static ag_tensor *softmax_op(int op, const char *name, const ag_tensor *x, int dim)
{
    int d = dim_of(name, x, dim);
    if (d < 0) return NULL;
    ag_tensor *y = ag__new_like(name, x);
    if (!y) return NULL;
    softmax_into(y, x, d, op == AG__OP_LOG_SOFTMAX);
    node(y)->arg.dim = d;
    return ag__record(y, op, x, NULL);
}

ag_tensor *ag_softmax(const ag_tensor *x, int dim)
{
    return softmax_op(AG__OP_SOFTMAX, "softmax", x, dim);
}

ag_tensor *ag_log_softmax(const ag_tensor *x, int dim)
{
    return softmax_op(AG__OP_LOG_SOFTMAX, "log_softmax", x, dim);
}

void ag__softmax_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx) return;
    int d = (int)node(y)->arg.dim;
    ag__split s = ag__split_at(x, d);
    bool last = along_last(x, d), log = node(y)->op == AG__OP_LOG_SOFTMAX;
    for (int64_t o = 0; s.n > 0 && o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            int64_t at = o * s.n * s.inner + i, st = s.inner;
            const float *g = node(y)->gbuf + at, *out = y->data + at;
            float *gx = dx + at;
            float sum = 0;
            if (last) {
                sum = lane_sum(g, log ? NULL : out, s.n);
            } else {
                for (int64_t k = 0; k < s.n; k++)
                    sum = log ? sum + g[k * st] : fmaf(g[k * st], out[k * st], sum);
            }
            for (int64_t k = 0; k < s.n; k++)
                gx[k * st] += log ? fmaf(-expf(out[k * st]), sum, g[k * st])
                                  : (g[k * st] - sum) * out[k * st];
        }
}

/* ------------------------------------------------------------------------------------ */
/* logsumexp: y = log(sum_k exp(x_k - m)) + m, m = max_k x_k (0 if infinite)            */
/*                                         dL/dx_k = g exp(x_k - y)                      */
/* Saves its input and its result, as PyTorch; the dimension is arg.dim. The sum is in   */
/* double, as agrad's sum (within an ulp of PyTorch's float sum).                        */

static void logsumexp_into(ag_tensor *y, const ag_tensor *x, int d)
{
    ag__split s = ag__split_at(x, d);
    for (int64_t o = 0; y->numel > 0 && o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const float *slice = x->data + o * s.n * s.inner + i;
            float m = s.n ? slice_max(slice, s.n, s.inner) : 0.0f;
            if (isinf(m)) m = 0.0f;
            double acc[AG__LANES] = {0}; /* in lanes, as every sum */
            for (int64_t k = 0; k < s.n; k++) acc[k % AG__LANES] += expf(slice[k * s.inner] - m);
            float sum = (float)ag__lanes_total(acc); /* 0 for an empty slice or only -inf */
            y->data[o * s.inner + i] = (sum == 0.0f ? -INFINITY : logf(sum)) + m;
        }
}
bool ag__logsumexp_forward(ag_tensor *y)
{
    logsumexp_into(y, node(y)->src[0], (int)node(y)->arg.dim);
    return true;
}

ag_tensor *ag_logsumexp(const ag_tensor *x, int dim, bool keepdim)
{
    int d = dim_of("logsumexp", x, dim);
    if (d < 0) return NULL;
    int64_t shape[AG_MAX_DIMS];
    int ndim = 0;
    for (int k = 0; k < x->ndim; k++)
        if (k != d || keepdim) shape[ndim++] = k == d ? 1 : x->shape[k];
    ag_tensor *y = ag__new("logsumexp", ndim, shape, NULL, NULL);
    if (!y) return NULL;
    logsumexp_into(y, x, d);
    node(y)->arg.dim = d;
    return ag__record(y, AG__OP_LOGSUMEXP, x, NULL);
}

void ag__logsumexp_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx || y->numel == 0) return;
    ag__split s = ag__split_at(x, (int)node(y)->arg.dim);
    const float *g = node(y)->gbuf;
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t k = 0; k < s.n; k++)
            for (int64_t i = 0; i < s.inner; i++) {
                int64_t r = o * s.inner + i, at = (o * s.n + k) * s.inner + i;
                dx[at] += g[r] * expf(x->data[at] - y->data[r]);
            }
}
