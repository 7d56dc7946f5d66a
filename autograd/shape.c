/* Shapes: unsqueeze, squeeze and flatten.
 *
 * Each result is a view of x: it shares x's storage and, through the base, x's version
 * counter, as PyTorch's views do. agrad tensors are contiguous, and a size-1 dimension
 * inserted or removed, or neighbouring dimensions merged, leave the row-major layout
 * unchanged, so every one of them is a view, whatever the dimension.
 *
 *   y = x under another shape              dy/dx = identity, read in x's shape
 *
 * which is view's backward: these ops record ag__view_backward (ops.c) in optable.h, under
 * their own grad_fn names. They save nothing. */
#include "internal.h"

/* A view of x of shape, recorded as op. */
static ag_tensor *reshaped(int op, const char *name, const ag_tensor *x, int ndim,
                           const int64_t *shape)
{
    ag_tensor *y = ag__new(name, ndim, shape, x, x->data);
    if (!y) return NULL;
    return ag__record(y, op, x, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* unsqueeze: a size-1 dimension inserted at dim (UnsqueezeBackward0)                    */

ag_tensor *ag_unsqueeze(const ag_tensor *x, int dim)
{
    if (!ag__check(x, "unsqueeze", "self")) return NULL;
    /* the result's dimensions: dim counts from the end of those */
    int d = ag__wrap_dim("unsqueeze", x, dim, x->ndim + 1);
    if (d < 0) return NULL;
    if (x->ndim == AG_MAX_DIMS) {
        char s[AG__SHAPE_STR];
        return ag__error("unsqueeze: the result would have %d dimensions; agrad has at most %d "
                         "(self of shape %s)",
                         x->ndim + 1, AG_MAX_DIMS, ag__tensor_str(s, x));
    }
    int64_t shape[AG_MAX_DIMS];
    for (int i = 0, j = 0; i <= x->ndim; i++) shape[i] = i == d ? 1 : x->shape[j++];
    return reshaped(AG__OP_UNSQUEEZE, "unsqueeze", x, x->ndim + 1, shape);
}

/* ------------------------------------------------------------------------------------ */
/* squeeze: every size-1 dimension removed (SqueezeBackward0); squeeze_dim: dimension dim */
/* removed if its size is 1, else the same shape (SqueezeBackward1, a view either way).   */

ag_tensor *ag_squeeze(const ag_tensor *x)
{
    if (!ag__check(x, "squeeze", "self")) return NULL;
    int64_t shape[AG_MAX_DIMS];
    int ndim = 0;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != 1) shape[ndim++] = x->shape[i];
    return reshaped(AG__OP_SQUEEZE, "squeeze", x, ndim, shape);
}

ag_tensor *ag_squeeze_dim(const ag_tensor *x, int dim)
{
    if (!ag__check(x, "squeeze", "self")) return NULL;
    /* a 0-d x takes dim 0 or -1, as if it had one dimension, and stays 0-d */
    int d = ag__wrap_dim("squeeze", x, dim, x->ndim > 0 ? x->ndim : 1);
    if (d < 0) return NULL;
    int64_t shape[AG_MAX_DIMS];
    int ndim = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d || x->shape[i] != 1) shape[ndim++] = x->shape[i];
    return reshaped(AG__OP_SQUEEZE_DIM, "squeeze", x, ndim, shape);
}

/* ------------------------------------------------------------------------------------ */
/* flatten: dimensions start..end merged into one. PyTorch reshapes (ReshapeAliasBackward0) */
/* a 0-d x to [1], returns x itself when there is nothing to merge (start == end), and   */
/* otherwise reshapes.                                                                   */

ag_tensor *ag_flatten(const ag_tensor *x, int start_dim, int end_dim)
{
    if (!ag__check(x, "flatten", "self")) return NULL;
    int rank = x->ndim > 0 ? x->ndim : 1;
    int s = ag__wrap_dim("flatten", x, start_dim, rank);
    if (s < 0) return NULL;
    int e = ag__wrap_dim("flatten", x, end_dim, rank);
    if (e < 0) return NULL;
    if (s > e) {
        char sh[AG__SHAPE_STR];
        return ag__error("flatten: flatten() has invalid args: start_dim cannot come after "
                         "end_dim (start_dim %d, end_dim %d, self of shape %s)",
                         start_dim, end_dim, ag__tensor_str(sh, x));
    }
    if (x->ndim == 0) return reshaped(AG__OP_RESHAPE, "flatten", x, 1, (const int64_t[]){1});
    if (s == e) return (ag_tensor *)x; /* PyTorch's `return self`: x is not copied or changed */
    int64_t shape[AG_MAX_DIMS];
    int ndim = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i <= s || i > e)
            shape[ndim++] = x->shape[i];
        else
            shape[ndim - 1] *= x->shape[i]; /* a product of x's sizes: it fits (AG__NUMEL_MAX) */
    }
    return reshaped(AG__OP_RESHAPE, "flatten", x, ndim, shape);
}
