/* Rows, slices and concatenation: x[i], x[a:b], torch.cat, torch.stack.
 *
 * A tensor is contiguous, so every op here sees it as blocks (ag__split_at): `outer`
 * repetitions of the dimensions before dim, and within each, `n` slabs of `inner`
 * floats (the dimensions after dim). Along dim 0 (outer = 1) a row or a range of rows is one piece
 * of x's storage, so select and slice return views there, as PyTorch does; along any
 * other dimension they copy. */
#include "internal.h"

#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* select / slice: y = x[..., start:start+len, ...] along dim (select drops the dim)     */
/* dy/dx: the gradient lands on the selected elements, zero elsewhere                    */

/* Copies the block into y; along dim 0, y is a view of it, with nothing to copy. */
static void take_into(ag_tensor *y, const ag_tensor *x, int dim, int64_t start, int64_t len)
{
    ag__split b = ag__split_at(x, dim);
    if (dim != 0)
        for (int64_t o = 0; y->numel > 0 && o < b.outer; o++)
            memcpy(y->data + o * len * b.inner, x->data + (o * b.n + start) * b.inner,
                   (size_t)(len * b.inner) * sizeof(float));
}
bool ag__take_forward(ag_tensor *y)
{
    int dim = (int)node(y)->arg.take.dim;
    take_into(y, node(y)->src[0], dim, node(y)->arg.take.start,
              node(y)->op == AG__OP_SLICE ? y->shape[dim] : 1);
    return true;
}

static ag_tensor *take(int op, const char *name, const ag_tensor *x, int dim, int64_t start,
                       int64_t len)
{
    ag__split b = ag__split_at(x, dim);
    int64_t shape[AG_MAX_DIMS];
    int ndim = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != dim)
            shape[ndim++] = x->shape[i];
        else if (op == AG__OP_SLICE)
            shape[ndim++] = len;
    }
    ag_tensor *y = dim == 0 ? ag__new(name, ndim, shape, x, x->data + start * b.inner)
                            : ag__new(name, ndim, shape, NULL, NULL);
    if (!y) return NULL;
    take_into(y, x, dim, start, len);
    node(y)->arg.take.dim = dim;
    node(y)->arg.take.start = start;
    return ag__record(y, op, x, NULL);
}

/* Backward of select and slice: add g into the block of x's gradient it came from. */
static void take_backward(ag_tensor *y, int64_t len)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx) return;
    ag__split b = ag__split_at(x, (int)node(y)->arg.take.dim);
    int64_t start = node(y)->arg.take.start, n = len * b.inner;
    const float *g = node(y)->gbuf;
    for (int64_t o = 0; y->numel > 0 && o < b.outer; o++)
        for (int64_t k = 0; k < n; k++) dx[(o * b.n + start) * b.inner + k] += g[o * n + k];
}

ag_tensor *ag_select(const ag_tensor *x, int dim, int64_t index)
{
    if (!ag__check(x, "select", "self")) return NULL;
    if (x->ndim == 0) return ag__error("select: select() cannot be applied to a 0-dim tensor.");
    if ((dim = ag__wrap_dim("select", x, dim, x->ndim)) < 0) return NULL;
    int64_t size = x->shape[dim], i = index < 0 ? index + size : index;
    if (i < 0 || i >= size) {
        char s[AG__SHAPE_STR];
        return ag__error("select: index %lld out of range for tensor of size %s at dimension %d",
                         (long long)index, ag__tensor_str(s, x), dim);
    }
    return take(AG__OP_SELECT, "select", x, dim, i, 1);
}

void ag__select_backward(ag_tensor *y) { take_backward(y, 1); }

ag_tensor *ag_slice(const ag_tensor *x, int dim, int64_t start, int64_t end)
{
    if (!ag__check(x, "slice", "self")) return NULL;
    if (x->ndim == 0) return ag__error("slice: slice() cannot be applied to a 0-dim tensor.");
    if ((dim = ag__wrap_dim("slice", x, dim, x->ndim)) < 0) return NULL;
    /* Python's rules: negative counts from the end, then clip to [0, size]. */
    int64_t size = x->shape[dim];
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = start < 0 ? 0 : start > size ? size : start;
    end = end < start ? start : end > size ? size : end;
    return take(AG__OP_SLICE, "slice", x, dim, start, end - start);
}

void ag__slice_backward(ag_tensor *y)
{
    int dim = (int)node(y)->arg.take.dim;
    take_backward(y, y->shape[dim]);
}

int64_t ag_len(const ag_tensor *x)
{
    if (!ag__check(x, "len", "self")) return -1;
    if (x->ndim == 0) return ag__error("len: len() of a 0-d tensor"), -1;
    return x->shape[0];
}

/* ------------------------------------------------------------------------------------ */
/* cat / stack: y = the inputs side by side along dim (stack: along a new dim)           */
/* dy/dx_k: the block of the gradient where x_k was put                                  */

/* The floats x puts in one outer block of the result: its sizes from dim on (for stack,
 * which gives each input a new dimension of size 1 at dim, the same). */
static int64_t block_of(const ag_tensor *x, int dim)
{
    ag__split s = ag__split_at(x, dim);
    return s.n * s.inner;
}

/* The inputs' blocks side by side in y. */
static void join_into(ag_tensor *y, ag_tensor *const *xs, int n, int dim)
{
    int64_t outer = ag__split_at(xs[0], dim).outer, row = y->numel / (outer ? outer : 1), at = 0;
    for (int k = 0; y->numel > 0 && k < n; k++) {
        int64_t p = block_of(xs[k], dim);
        for (int64_t o = 0; p > 0 && o < outer; o++)
            memcpy(y->data + o * row + at, xs[k]->data + o * p, (size_t)p * sizeof(float));
        at += p;
    }
}
bool ag__join_forward(ag_tensor *y)
{
    join_into(y, node(y)->ctx, (int)node(y)->arg.join.count, (int)node(y)->arg.join.dim);
    return true;
}

static ag_tensor *join(int op, const char *name, ag_tensor *const *xs, int n, int dim)
{
    bool stack = op == AG__OP_STACK;
    if (!xs || n <= 0)
        return ag__error("%s: expected a non-empty list of Tensors (got %d)", name, n);
    for (int k = 0; k < n; k++)
        if (!ag__check_at(xs[k], name, "tensors", k)) return NULL;
    const ag_tensor *first = xs[0];
    int ndim = first->ndim + (stack ? 1 : 0);
    if (!stack && first->ndim == 0)
        return ag__error("%s: zero-dimensional tensor (at position 0) cannot be concatenated",
                         name);
    if (ndim > AG_MAX_DIMS)
        return ag__error("%s: the result would have %d dimensions; agrad has at most %d", name,
                         ndim, AG_MAX_DIMS);
    if ((dim = ag__wrap_dim(name, first, dim, ndim)) < 0) return NULL;

    int64_t shape[AG_MAX_DIMS];
    for (int i = 0, j = 0; i < ndim; i++) shape[i] = stack && i == dim ? n : first->shape[j++];
    if (!stack) shape[dim] = 0;
    for (int k = 0; k < n; k++) {
        const ag_tensor *x = xs[k];
        bool same = x->ndim == first->ndim;
        for (int i = 0; same && i < x->ndim; i++)
            same = x->shape[i] == first->shape[i] || (!stack && i == dim);
        if (!same) {
            char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
            ag__tensor_str(s1, first);
            ag__tensor_str(s2, x);
            if (stack)
                ag__error("%s: stack expects each tensor to be equal size, but got %s at entry 0 "
                          "and %s at entry %d",
                          name, s1, s2, k);
            else
                ag__error("%s: Sizes of tensors must match except in dimension %d. Expected a "
                          "tensor like %s but got %s for tensor number %d in the list.",
                          name, dim, s1, s2, k);
            return NULL;
        }
        if (!stack) shape[dim] += x->shape[dim];
    }

    ag_tensor *y = ag__new(name, ndim, shape, NULL, NULL);
    if (!y) return NULL;
    join_into(y, xs, n, dim);
    node(y)->arg.join.dim = dim;
    return ag__record_n(y, op, xs, n, name);
}

void ag__cat_backward(ag_tensor *y)
{
    ag_tensor **xs = node(y)->ctx;
    int n = (int)node(y)->arg.join.count, dim = (int)node(y)->arg.join.dim;
    const bool *edge = (const bool *)(xs + n); /* which inputs take a gradient */
    int64_t outer = ag__split_at(xs[0], dim).outer, row = y->numel / (outer ? outer : 1), at = 0;
    for (int k = 0; k < n; k++) {
        int64_t p = block_of(xs[k], dim);
        float *dx = edge[k] ? ag__grad_of(xs[k]) : NULL;
        for (int64_t o = 0; dx && p > 0 && o < outer; o++)
            for (int64_t i = 0; i < p; i++) dx[o * p + i] += node(y)->gbuf[o * row + at + i];
        at += p;
    }
}

ag_tensor *ag_cat(ag_tensor *const *xs, int n, int dim)
{
    return join(AG__OP_CAT, "cat", xs, n, dim);
}

ag_tensor *ag_stack(ag_tensor *const *xs, int n, int dim)
{
    return join(AG__OP_STACK, "stack", xs, n, dim);
}
