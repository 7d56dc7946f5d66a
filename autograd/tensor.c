/* Tensors: shapes, new tensors, creation and access. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ag__wrap_dim(const char *op, const ag_tensor *x, int dim, int rank)
{
    if (dim < -rank || dim >= rank) {
        char s[AG__SHAPE_STR];
        ag__error("%s: Dimension out of range (expected to be in range of [%d, %d], but got %d) "
                  "for a tensor of shape %s",
                  op, -rank, rank - 1, dim, ag__shape_str(s, x->ndim, x->shape));
        return -1;
    }
    return dim < 0 ? dim + rank : dim;
}

/* ------------------------------------------------------------------------------------ */
/* Shapes and new tensors                                                                */

/* ag__numel's errors, out of its loop (and of its stack frame). */
int64_t ag__bad_shape(const char *op, int ndim, const int64_t *shape)
{
    char s[AG__SHAPE_STR];
    if (ndim < 0 || ndim > AG_MAX_DIMS)
        return ag__error("%s: tensors have at most %d dimensions, got %d", op, AG_MAX_DIMS, ndim),
               -1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return ag__error("%s: Trying to create tensor with negative dimension %lld: %s", op,
                             (long long)shape[i], ag__shape_str(s, ndim, shape)),
                   -1;
    return ag__error("%s: Storage size calculation overflowed with sizes=%s", op,
                     ag__shape_str(s, ndim, shape)),
           -1;
}

void ag__broadcast_error(const char *op, const ag_tensor *a, const ag_tensor *b, int k, int64_t sa,
                         int64_t sb)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    ag__error("%s: The size of tensor a (%lld) must match the size of tensor b (%lld) at "
              "non-singleton dimension %d (shapes %s and %s)",
              op, (long long)sa, (long long)sb, k, ag__tensor_str(s1, a), ag__tensor_str(s2, b));
}

ag_tensor *ag__new(const char *op, int ndim, const int64_t *shape, const ag_tensor *base,
                   float *data)
{
    int64_t numel = ag__numel(op, ndim, shape);
    return numel < 0 ? NULL : ag__alloc_tensor(op, ndim, shape, numel, base, data);
}

/* ------------------------------------------------------------------------------------ */
/* Creating tensors                                                                      */

ag_tensor *ag__new_leaf(const char *op, ag_shape shape, bool requires_grad)
{
    ag_tensor *t = ag__new(op, shape.ndim, shape.d, NULL, NULL);
    if (t) t->requires_grad = requires_grad;
    return t;
}

ag_tensor *ag_tensor_from_with(ag_tensor_from_args a)
{
    if (!a.values) return ag__error("tensor_from: values is NULL");
    ag_tensor *t = ag__new_leaf("tensor_from", a.shape, a.requires_grad);
    if (t) memcpy(t->data, a.values, (size_t)t->numel * sizeof(float));
    return t;
}

ag_tensor *ag_scalar_with(ag_scalar_args a)
{
    ag_tensor *t = ag__new_leaf("scalar", (ag_shape){0, {0}}, a.requires_grad);
    if (t) t->data[0] = (float)a.value;
    return t;
}

static ag_tensor *filled(const char *op, ag_shape shape, double value, bool requires_grad)
{
    ag_tensor *t = ag__new_leaf(op, shape, requires_grad);
    for (int64_t i = 0; t && i < t->numel; i++) t->data[i] = (float)value;
    return t;
}

ag_tensor *ag_full_with(ag_full_args a)
{
    return filled("full", a.shape, a.value, a.requires_grad);
}
ag_tensor *ag_zeros_with(ag_new_args a) { return filled("zeros", a.shape, 0.0, a.requires_grad); }
ag_tensor *ag_ones_with(ag_new_args a) { return filled("ones", a.shape, 1.0, a.requires_grad); }

ag_tensor *ag_arange(double start, double end, double step)
{
    /* PyTorch's checks, in its order and words; a NaN step is "zero" there too. */
    if (!(step > 0 || step < 0)) {
        ag__error("arange: step must be nonzero (start=%g, end=%g, step=%g)", start, end, step);
        return NULL;
    }
    if (!isfinite(start) || !isfinite(end)) {
        ag__error("arange: unsupported range: %g -> %g", start, end);
        return NULL;
    }
    if ((step > 0 && start > end) || (step < 0 && start < end)) {
        ag__error("arange: upper bound and larger bound inconsistent with step sign (start=%g, "
                  "end=%g, step=%g)",
                  start, end, step);
        return NULL;
    }
    /* Checked before the conversion, which is undefined for values int64_t cannot hold. */
    double size = ceil((end - start) / step);
    if (!(size >= 0 && size < 0x1p63)) {
        ag__error("arange: invalid size, possible overflow? (start=%g, end=%g, step=%g)", start,
                  end, step);
        return NULL;
    }
    int64_t n = (int64_t)size;
    ag_tensor *t = ag__new("arange", 1, &n, NULL, NULL);
    if (!t) return NULL;
    /* PyTorch's AVX2 kernel fills whole 16-element chunks as vectors of 8 lanes, each
     * lane computed from a float base; the tail uses start + i * step in double. The
     * two disagree by an ulp on about a third of the values, so both are reproduced. */
    int64_t vec_end = n / 16 * 16;
    for (int64_t i = 0; i < n; i++) {
        if (i < vec_end) {
            float base = (float)(start + step * (double)(i - i % 8));
            t->data[i] = (float)((double)base + (double)(i % 8) * step);
        } else {
            t->data[i] = (float)(start + (double)i * step);
        }
    }
    return t;
}

ag_tensor *ag_requires_grad_(ag_tensor *t, bool requires_grad)
{
    if (!ag__check(t, "requires_grad_", "self")) return NULL;
    if (node(t)->flags & AG__F_GRAD)
        return ag__error("requires_grad_: a .grad tensor cannot require grad in agrad; "
                         "make a copy with ag_mul(1, grad) first");
    if (node(t)->op && !requires_grad)
        return ag__error("requires_grad_: you can only change requires_grad flags of leaf "
                         "variables. If you want to use a computed variable in a subgraph "
                         "that doesn't require differentiation use var_no_grad = var.detach().");
    t->requires_grad = requires_grad;
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* Reading tensors                                                                       */

ag_shape ag_size(const ag_tensor *t)
{
    ag_shape s = {0, {0}};
    if (!ag__check(t, "size", "self")) return s;
    s.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) s.d[i] = t->shape[i];
    return s;
}

double ag_item(const ag_tensor *t)
{
    if (!ag__check(t, "item", "self")) return NAN;
    if (t->numel != 1) {
        char s[AG__SHAPE_STR];
        ag__error("item: a Tensor with %lld elements cannot be converted to Scalar (shape %s)",
                  (long long)t->numel, ag__shape_str(s, t->ndim, t->shape));
        return NAN;
    }
    return t->data[0];
}

double ag_get(const ag_tensor *t, ag_shape index)
{
    char s[AG__SHAPE_STR];
    if (!ag__check(t, "get", "self")) return NAN;
    if (index.ndim != t->ndim) {
        ag__error("get: %d indices for a tensor of shape %s", index.ndim,
                  ag__shape_str(s, t->ndim, t->shape));
        return NAN;
    }
    int64_t offset = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t k = index.d[i] < 0 ? index.d[i] + t->shape[i] : index.d[i];
        if (k < 0 || k >= t->shape[i]) {
            ag__error("get: index %lld is out of bounds for dimension %d with size %lld "
                      "(shape %s)",
                      (long long)index.d[i], i, (long long)t->shape[i],
                      ag__shape_str(s, t->ndim, t->shape));
            return NAN;
        }
        offset = offset * t->shape[i] + k;
    }
    return t->data[offset];
}

bool ag_is_leaf(const ag_tensor *t) { return ag__check(t, "is_leaf", "self") && node(t)->op == 0; }
