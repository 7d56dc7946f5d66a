/* Reductions: sum and mean over one dimension, max and min of everything or over one
 * dimension. Each op keeps its forward and its backward side by side.
 *
 * A reduction over dimension d sees x as [outer, n, inner]: outer is the product of
 * the sizes before d, n the size of d, inner the product of the sizes after d. Element
 * (o, k, i) is at (o * n + k) * inner + i and reduces into result element o * inner + i,
 * whether or not keepdim keeps d as a size-1 dimension (the layout is the same). A 0-d
 * tensor reduces as if it had one dimension of size 1, as in PyTorch.
 * argmax and argmin, at the end, are the positions max and min choose. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Shared: the result's shape                                                           */

/* A new tensor for the reduction of x over d: d dropped, or kept with size 1. */
static ag_tensor *new_reduced(const char *op, const ag_tensor *x, int d, bool keepdim)
{
    int64_t shape[AG_MAX_DIMS];
    int ndim = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d)
            shape[ndim++] = x->shape[i];
        else if (keepdim)
            shape[ndim++] = 1;
    }
    return ag__new(op, ndim, shape, NULL, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* sum over d: y[o, i] = sum_k x[o, k, i]          dy/dx[o, k, i] = 1                    */
/* mean over d: y[o, i] = sum_k x[o, k, i] / n     dy/dx[o, k, i] = 1 / n                */
/* The gradient of y is expanded back along d, kept in arg.dim.                         */

/* dx[o, k, i] += g[o, i] / div. PyTorch divides the expanded gradient in float, as here. */
static void expand_backward(ag_tensor *y, float div)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx || x->numel == 0) return;
    ag__split s = ag__split_at(x, (int)node(y)->arg.dim);
    const float *g = node(y)->gbuf;
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t k = 0; k < s.n; k++)
            for (int64_t i = 0; i < s.inner; i++)
                dx[(o * s.n + k) * s.inner + i] += g[o * s.inner + i] / div;
}

void ag__sum_dim_backward(ag_tensor *y) { expand_backward(y, 1.0f); }
void ag__mean_dim_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    expand_backward(y, (float)x->shape[node(y)->arg.dim]);
}

/* y = the sum (or mean) of x over d; 0 / 0 is nan. */
static void sum_dim_into(ag_tensor *y, const ag_tensor *x, int d, bool mean)
{
    ag__split s = ag__split_at(x, d);
    for (int64_t o = 0; y->numel > 0 && o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            /* in double and in lanes, as ag_sum (AG__LANES) */
            double acc[AG__LANES] = {0};
            for (int64_t k = 0; k < s.n; k++)
                acc[k % AG__LANES] += x->data[(o * s.n + k) * s.inner + i];
            float sum = (float)ag__lanes_total(acc);
            /* PyTorch's mean is the float sum divided by n in float */
            y->data[o * s.inner + i] = mean ? sum / (float)s.n : sum;
        }
}
bool ag__sum_dim_forward(ag_tensor *y)
{
    sum_dim_into(y, node(y)->src[0], (int)node(y)->arg.dim, false);
    return true;
}
bool ag__mean_dim_forward(ag_tensor *y)
{
    sum_dim_into(y, node(y)->src[0], (int)node(y)->arg.dim, true);
    return true;
}

static ag_tensor *sum_or_mean(int op, const char *name, const ag_tensor *x, int dim, bool keepdim)
{
    if (!ag__check(x, name, "self")) return NULL;
    int d = ag__wrap_dim(name, x, dim, x->ndim > 0 ? x->ndim : 1);
    if (d < 0) return NULL;
    ag_tensor *y = new_reduced(name, x, d, keepdim);
    if (!y) return NULL;
    sum_dim_into(y, x, d, op == AG__OP_MEAN_DIM);
    node(y)->arg.dim = d;
    return ag__record(y, op, x, NULL);
}

ag_tensor *ag_sum_dim(const ag_tensor *x, int dim, bool keepdim)
{
    return sum_or_mean(AG__OP_SUM_DIM, "sum", x, dim, keepdim);
}
ag_tensor *ag_mean_dim(const ag_tensor *x, int dim, bool keepdim)
{
    return sum_or_mean(AG__OP_MEAN_DIM, "mean", x, dim, keepdim);
}

/* Whether v replaces best as the max (or min) so far. NaN wins over any number and
 * nothing replaces it; equal values do not replace, so the first of ties is kept. */
static inline bool beats(float v, float best, bool is_min)
{
    if (isnan(best)) return false;
    return isnan(v) || (is_min ? v < best : v > best);
}

/* The position of the max (or min) of the n > 0 values v[0], v[stride], ...: the first
 * of ties, the first NaN if there is one. Shared by max, max_dim and argmax. */
static int64_t best_at(const float *v, int64_t n, int64_t stride, bool is_min)
{
    int64_t best = 0;
    for (int64_t k = 1; k < n; k++)
        if (beats(v[k * stride], v[best * stride], is_min)) best = k;
    return best;
}

/* The error for max, min, argmax or argmin of all of an empty x, in PyTorch's words (with
 * its hint for max and min). */
static void *of_nothing(const char *name, const ag_tensor *x, const char *hint)
{
    char s[AG__SHAPE_STR];
    return ag__error("%s: Expected reduction dim to be specified for input.numel() == 0 (shape "
                     "%s).%s",
                     name, ag__tensor_str(s, x), hint);
}

/* ------------------------------------------------------------------------------------ */
/* max / min of everything: y = max_j x_j          dy/dx_j = 1 / m where x_j == y        */
/* (m the number of elements equal to y: PyTorch shares the gradient evenly among ties,  */
/* evenly_distribute_backward; when y is nan, among the nan elements).                   */

static inline bool equals_result(float a, float y) { return isnan(y) ? isnan(a) : a == y; }

void ag__max_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx) return;
    float v = y->data[0];
    int64_t m = 0;
    for (int64_t j = 0; j < x->numel; j++) m += equals_result(x->data[j], v);
    float share = node(y)->gbuf[0] / (float)m;
    for (int64_t j = 0; j < x->numel; j++)
        if (equals_result(x->data[j], v)) dx[j] += share;
}

bool ag__max_forward(ag_tensor *y)
{
    const ag_tensor *x = node(y)->src[0];
    y->data[0] = x->data[best_at(x->data, x->numel, 1, node(y)->op == AG__OP_MIN)];
    return true;
}

static ag_tensor *max_all(int op, const char *name, const ag_tensor *x)
{
    if (!ag__check(x, name, "self")) return NULL;
    if (x->numel == 0)
        return of_nothing(name, x, " Specify the reduction dim with the 'dim' argument.");
    ag_tensor *y = ag__new(name, 0, NULL, NULL, NULL);
    if (!y) return NULL;
    y->data[0] = x->data[best_at(x->data, x->numel, 1, op == AG__OP_MIN)];
    return ag__record(y, op, x, NULL);
}

ag_tensor *ag_max(const ag_tensor *x) { return max_all(AG__OP_MAX, "max", x); }
ag_tensor *ag_min(const ag_tensor *x) { return max_all(AG__OP_MIN, "min", x); }

/* ------------------------------------------------------------------------------------ */
/* max / min over d: y[o, i] = x[o, k*, i], k* the position of the max (the first, on    */
/* ties; the first nan, if any)                    dy/dx[o, k, i] = 1 where k == k*      */
/* The positions k* (int64, one per element of y) are in ctx; d is arg.dim.            */

void ag__max_dim_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx || y->numel == 0) return;
    ag__split s = ag__split_at(x, (int)node(y)->arg.dim);
    const int64_t *at = node(y)->ctx;
    const float *g = node(y)->gbuf;
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            int64_t r = o * s.inner + i;
            dx[(o * s.n + at[r]) * s.inner + i] += g[r];
        }
}

/* dim of x wrapped for a max, min, argmax or argmin over it, which must not be empty;
 * -1 after an error naming op. */
static int reduced_dim(const char *name, const ag_tensor *x, int dim)
{
    int d = ag__wrap_dim(name, x, dim, x->ndim > 0 ? x->ndim : 1);
    if (d < 0 || x->shape[d] > 0) return d; /* a 0-d x has size 1 there */
    char sh[AG__SHAPE_STR];
    ag__error("%s: Expected reduction dim %d to have non-zero size (shape %s).", name, d,
              ag__tensor_str(sh, x));
    return -1;
}

/* For each slice of x along d, the position of its max (or min): into idx (as floats)
 * and at, and the value into values; each may be NULL. */
static void scan_dim(const ag_tensor *x, int d, bool is_min, float *values, float *idx, int64_t *at)
{
    ag__split s = ag__split_at(x, d);
    if (s.outer == 0 || s.inner == 0) return; /* no slice: O(1), whatever the other sizes */
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            const float *slice = x->data + o * s.n * s.inner + i;
            int64_t best = best_at(slice, s.n, s.inner, is_min), r = o * s.inner + i;
            if (values) values[r] = slice[best * s.inner];
            if (idx) idx[r] = (float)best;
            if (at) at[r] = best;
        }
}

bool ag__max_dim_forward(ag_tensor *y)
{
    scan_dim(node(y)->src[0], (int)node(y)->arg.dim, node(y)->op == AG__OP_MIN_DIM, y->data, NULL,
             node(y)->ctx);
    return true;
}

static ag_tensor *max_dim(int op, const char *name, const ag_tensor *x, int dim, bool keepdim,
                          ag_tensor **indices)
{
    if (indices) *indices = NULL;
    if (!ag__check(x, name, "self")) return NULL;
    int d = reduced_dim(name, x, dim);
    if (d < 0) return NULL;
    ag_tensor *y = new_reduced(name, x, d, keepdim);
    if (!y) return NULL;
    ag_tensor *idx = indices ? new_reduced(name, x, d, keepdim) : NULL;
    if (indices && !idx) return NULL;
    /* The positions outlive the forward only when backward will read them. */
    int64_t *at = NULL;
    if (ag__grad_mode() && x->requires_grad) {
        at = ag__ctx_alloc((size_t)y->numel * sizeof *at);
        if (!at) {
            char sh[AG__SHAPE_STR];
            return ag__error("%s: out of memory keeping the positions of the %s (shape %s)", name,
                             name, ag__tensor_str(sh, y));
        }
    }
    scan_dim(x, d, op == AG__OP_MIN_DIM, y->data, idx ? idx->data : NULL, at);
    node(y)->ctx = at;
    node(y)->arg.dim = d;
    if (!ag__record(y, op, x, NULL)) return NULL;
    if (idx) ag__derive(idx);
    if (indices) *indices = idx;
    return y;
}

ag_tensor *ag_max_dim(const ag_tensor *x, int dim, bool keepdim, ag_tensor **indices)
{
    return max_dim(AG__OP_MAX_DIM, "max", x, dim, keepdim, indices);
}
ag_tensor *ag_min_dim(const ag_tensor *x, int dim, bool keepdim, ag_tensor **indices)
{
    return max_dim(AG__OP_MIN_DIM, "min", x, dim, keepdim, indices);
}

/* ------------------------------------------------------------------------------------ */
/* argmax / argmin: the positions max and min choose, as float tensors, not recorded     */
/* (PyTorch's int64 indices take no gradient). Of everything: the position in x          */
/* flattened, 0-d. Over d: max_dim's indices without its values.                         */

static ag_tensor *arg_all(const char *name, const ag_tensor *x, bool is_min)
{
    if (!ag__check(x, name, "self")) return NULL;
    if (x->numel == 0) return of_nothing(name, x, "");
    ag_tensor *y = ag__new(name, 0, NULL, NULL, NULL);
    if (!y) return NULL;
    y->data[0] = (float)best_at(x->data, x->numel, 1, is_min);
    ag__derive(y);
    return y;
}

ag_tensor *ag_argmax(const ag_tensor *x) { return arg_all("argmax", x, false); }
ag_tensor *ag_argmin(const ag_tensor *x) { return arg_all("argmin", x, true); }

static ag_tensor *arg_dim(const char *name, const ag_tensor *x, int dim, bool keepdim, bool is_min)
{
    if (!ag__check(x, name, "self")) return NULL;
    int d = reduced_dim(name, x, dim);
    if (d < 0) return NULL;
    ag_tensor *y = new_reduced(name, x, d, keepdim);
    if (!y) return NULL;
    scan_dim(x, d, is_min, NULL, y->data, NULL);
    ag__derive(y);
    return y;
}

ag_tensor *ag_argmax_dim(const ag_tensor *x, int dim, bool keepdim)
{
    return arg_dim("argmax", x, dim, keepdim, false);
}
ag_tensor *ag_argmin_dim(const ag_tensor *x, int dim, bool keepdim)
{
    return arg_dim("argmin", x, dim, keepdim, true);
}
