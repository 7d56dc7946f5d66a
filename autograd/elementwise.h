/* Private: the loops that elementwise ops share (ops.c, unary.c). Everything here is
 * inlined into each op, so that the op's scalar function is a constant the compiler
 * folds into the loop. */
#ifndef AGRAD_ELEMENTWISE_H
#define AGRAD_ELEMENTWISE_H

#include "internal.h"

/* The broadcast shape of a and b (NumPy rules), or an error in PyTorch's words, about
 * the last dimension that does not match, as PyTorch checks from the right. */
static inline bool ag__broadcast_shape(const char *op, const ag_tensor *a, const ag_tensor *b,
                                       int *ndim, int64_t shape[AG_MAX_DIMS])
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = n - 1; k >= 0; k--) {
        int ja = k - (n - a->ndim), jb = k - (n - b->ndim);
        int64_t sa = ja >= 0 ? a->shape[ja] : 1, sb = jb >= 0 ? b->shape[jb] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            ag__broadcast_error(op, a, b, k, sa, sb);
            return false;
        }
        shape[k] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return true;
}

/* o[i] = f(x[i * sx], y[i * sy]) for i < n, sx and sy constants 0 or 1 (an operand of one
 * element, or of all n), o apart from x and y. */
AG__INLINE void map2_flat(float *restrict o, const float *restrict x, const float *restrict y,
                          int64_t n, int64_t sx, int64_t sy, float (*f)(float, float))
{
    AG__FOR_FLAT(n, o[i] = f(x[i * sx], y[i * sy]));
}

/* o[i] = f(x[i]) for i < n, o apart from x. */
AG__INLINE void map1_flat(float *restrict o, const float *restrict x, int64_t n, float (*f)(float))
{
    AG__FOR_FLAT(n, o[i] = f(x[i]));
}

/* out[i] = f(a[i'], b[i'']) over the broadcast shape. Inlined into each op so that f is
 * a constant the compiler folds into the loop. out may be a or b (in-place ops). */
AG__INLINE void map2(ag_tensor *out, const ag_tensor *a, const ag_tensor *b,
                     float (*f)(float, float))
{
    float *o = out->data;
    const float *x = a->data, *y = b->data;
    int64_t n = out->numel;
    bool fa = a->numel == n, fb = b->numel == n, apart = o != x && o != y;
    if (apart && fa && fb) {
        map2_flat(o, x, y, n, 1, 1, f);
    } else if (apart && fa && b->numel == 1) {
        map2_flat(o, x, y, n, 1, 0, f);
    } else if (apart && a->numel == 1 && fb) {
        map2_flat(o, x, y, n, 0, 1, f);
    } else if (fa && fb) {
        for (int64_t i = 0; i < n; i++) o[i] = f(x[i], y[i]);
    } else if (fa && b->numel == 1) {
        for (int64_t i = 0; i < n; i++) o[i] = f(x[i], y[0]);
    } else if (a->numel == 1 && fb) {
        for (int64_t i = 0; i < n; i++) o[i] = f(x[0], y[i]);
    } else {
        int64_t p[AG_MAX_DIMS], sa[AG_MAX_DIMS], sb[AG_MAX_DIMS];
        ag__pad(out->ndim, out->shape, p);
        ag__bstrides(a, sa);
        ag__bstrides(b, sb);
        AG__FOR_BCAST(p, sa, sb, o[io] = f(x[ia], y[ib]));
    }
}

/* out[i] = f(x[i]), and out[i] = f(x[i], s) for a number s; out apart from x. */
AG__INLINE void map1(ag_tensor *out, const ag_tensor *x, float (*f)(float))
{
    map1_flat(out->data, x->data, x->numel, f);
}
AG__INLINE void map_number(ag_tensor *out, const ag_tensor *x, float s, float (*f)(float, float))
{
    map2_flat(out->data, x->data, &s, x->numel, 1, 0, f);
}

/* An elementwise op's forward run again by a replay, on its recorded inputs: the loops
 * of its first run (map2, map1, map_number), so the same floats. */
AG__INLINE bool forward2(ag_tensor *y, float (*f)(float, float))
{
    map2(y, node(y)->src[0], node(y)->src[1], f);
    return true;
}
AG__INLINE bool forward1(ag_tensor *y, float (*f)(float))
{
    map1(y, node(y)->src[0], f);
    return true;
}
AG__INLINE bool forward_number(ag_tensor *y, float (*f)(float, float))
{
    map_number(y, node(y)->src[0], node(y)->arg.number, f);
    return true;
}

/* out = f(a, b) elementwise over the broadcast shape, not recorded (comparisons use it
 * as it is); NULL after an error naming op. */
AG__INLINE ag_tensor *broadcast_map(const char *name, const ag_tensor *a, const ag_tensor *b,
                                    float (*f)(float, float))
{
    if (!ag__check(a, name, "a") || !ag__check(b, name, "b")) return NULL;
    ag_tensor *out;
    if (ag__same_shape(a, b)) { /* the common case: nothing to broadcast */
        out = ag__new_like(name, a);
    } else {
        int ndim;
        int64_t shape[AG_MAX_DIMS];
        if (!ag__broadcast_shape(name, a, b, &ndim, shape)) return NULL;
        out = ag__new(name, ndim, shape, NULL, NULL);
    }
    if (out) map2(out, a, b, f);
    return out;
}

AG__INLINE ag_tensor *binary(int op, const char *name, const ag_tensor *a, const ag_tensor *b,
                             float (*f)(float, float))
{
    ag_tensor *out = broadcast_map(name, a, b, f);
    return out ? ag__record(out, op, a, b) : NULL;
}

/* A derivative rule of an elementwise op, one line that reads as the formula in the op's
 * banner:
 *     RULE(mul_da, a, b) { return g * b; }        d loss / d a, for y = a * b
 * g is d loss / d y, y the result, and the inputs are named as the op names them (x and
 * p for x ^ p). RULE1 is for ops of one tensor, y = f(x); their rule is also handed the
 * op's number (arg.number), which most of them do not use. */
#if defined(__GNUC__)
#define AG__MAYBE_UNUSED __attribute__((unused))
#else
#define AG__MAYBE_UNUSED
#endif
#define RULE(name, a, b)                                                                           \
    static float name(float a AG__MAYBE_UNUSED, float b AG__MAYBE_UNUSED,                          \
                      float y AG__MAYBE_UNUSED, float g AG__MAYBE_UNUSED)
#define RULE1(name, x) RULE(name, x, number)
typedef float (*rule_fn)(float a, float b, float y, float g);

/* The scalar form (ag__scalar_op's f) of a function of one tensor, y = f(x): it is handed
 * the op's number too, and ignores it. */
#define SCALAR1(name, f)                                                                           \
    static float name(float x, float unused) { return AG__UNUSED(unused), f(x); }

/* dx[i] += d(a[i * sa], b[i * sb], o[i], g[i]) for i < n (into a fresh dx: AG__ADD_FLAT),
 * sa and sb constants 0 or 1. The pointers are restrict parameters, which gcc honours once
 * inlined (restrict locals it does not), so that the loop vectorises. */
AG__INLINE void rule_flat(float *restrict dx, bool fresh, const float *restrict a, int64_t sa,
                          const float *restrict b, int64_t sb, const float *restrict o,
                          const float *restrict g, int64_t n, rule_fn d)
{
    AG__ADD_FLAT(fresh, dx, n, d(a[i * sa], b[i * sb], o[i], g[i]));
}

/* Input k's gradient from d when both inputs have y's numel or one element (sa, sb: 1 or
 * 0, constants), the flat loop over y's n elements: an input of all n takes d at each
 * element; an input of one element, broadcast, takes their sum, in double and in y's
 * order, which is what summing a buffer of d's values over y's shape gives (in a tiled
 * replay, the sum is carried in ag__tile_lanes). */
AG__INLINE void backward_flat(ag_tensor *y, int k, rule_fn d, int64_t sa, int64_t sb)
{
    ag_tensor *x = node(y)->src[k];
    const float *g = node(y)->gbuf, *a = node(y)->src[0]->data, *b = node(y)->src[1]->data,
                *o = y->data;
    int64_t n = y->numel;
    bool fresh;
    if (x->numel == n) {
        float *dx = ag__grad_buf(x, &fresh);
        if (dx) rule_flat(dx, fresh, a, sa, b, sb, o, g, n, d);
        return;
    }
    double own[AG__LANES] = {0}, *lanes = ag__one_lanes(k, own);
    AG__SUM_LANES(n, lanes, d(a[i * sa], b[i * sb], o[i], g[i]));
    if (lanes != own) return; /* a tiled replay's */
    float *dx = ag__grad_buf(x, &fresh);
    if (dx) ag__add_lanes(dx, fresh, own);
}

/* backward_input's general loop, for inputs broadcast other than from one element. */
AG__INLINE void backward_broadcast(ag_tensor *y, int k, rule_fn d)
{
    ag_tensor *in[2] = {node(y)->src[0], node(y)->src[1]};
    const float *g = node(y)->gbuf, *a = in[0]->data, *b = in[1]->data, *o = y->data;
    int64_t n = y->numel;
    int64_t p[AG_MAX_DIMS], sa[AG_MAX_DIMS], sb[AG_MAX_DIMS];
    ag__pad(y->ndim, y->shape, p);
    ag__bstrides(in[0], sa);
    ag__bstrides(in[1], sb);
    if (in[k]->numel == n) {
        float *dx = ag__grad_of(in[k]);
        if (!dx) return;
        AG__FOR_BCAST(p, sa, sb, dx[io] += d(a[ia], b[ib], o[io], g[io]));
        return;
    }
    float *t = ag__scratch_floats(n);
    if (!t) return;
    AG__FOR_BCAST(p, sa, sb, t[io] = d(a[ia], b[ib], o[io], g[io]));
    ag__accum(in[k], y, t);
}

/* The gradient of input k of y = f(a, b): d(a, b, y, g) at every element of y, summed back
 * to the input's own shape. A NULL rule means the gradient passes through unchanged.
 * Inputs of y's numel or of one element take the flat loops of backward_flat; other
 * broadcasts the general loop, where an input of y's shape takes its gradient directly
 * and a broadcast one needs a buffer of y's shape to sum from. Inlined with d a
 * constant, so that the rule is folded into the loop rather than called per element. */
AG__INLINE void backward_input(ag_tensor *y, int k, rule_fn d)
{
    if (!ag__wants(y, k)) return;
    ag_tensor *in[2] = {node(y)->src[0], node(y)->src[1]};
    if (!d) {
        ag__accum(in[k], y, node(y)->gbuf);
        return;
    }
    int64_t n = y->numel;
    bool fa = in[0]->numel == n, fb = in[1]->numel == n;
    bool oa = in[0]->numel == 1, ob = in[1]->numel == 1;
    if (fa && fb)
        backward_flat(y, k, d, 1, 1);
    else if (fa && ob)
        backward_flat(y, k, d, 1, 0);
    else if (oa && fb)
        backward_flat(y, k, d, 0, 1);
    else if (oa && ob) /* y is empty */
        backward_flat(y, k, d, 0, 0);
    else
        backward_broadcast(y, k, d);
}

/* Backward of y = f(a, b): each input that wants a gradient gets its rule's. */
AG__INLINE void backward2(ag_tensor *y, rule_fn da, rule_fn db)
{
    backward_input(y, 0, da);
    backward_input(y, 1, db);
}

/* Same for y = f(x), or f(x, s) for a number s: d(x, s, y, g). Inlined with s a constant
 * where an op specialises its rule on it (pow's exponent 2). */
AG__INLINE void backward1_with(ag_tensor *y, rule_fn d, float s)
{
    ag_tensor *x = node(y)->src[0];
    bool fresh;
    float *dx = ag__grad_buf(x, &fresh);
    if (dx) rule_flat(dx, fresh, x->data, 1, &s, 0, y->data, node(y)->gbuf, y->numel, d);
}

/* Same with s the op's number (arg.number). */
AG__INLINE void backward1(ag_tensor *y, rule_fn d) { backward1_with(y, d, node(y)->arg.number); }

/* y = f(x), recorded as op when x requires grad. */
AG__INLINE ag_tensor *unary(int op, const char *name, const ag_tensor *x, float (*f)(float))
{
    if (!ag__check(x, name, "self")) return NULL;
    ag_tensor *y = ag__new_like(name, x);
    if (!y) return NULL;
    map1(y, x, f);
    return ag__record(y, op, x, NULL);
}

#endif /* AGRAD_ELEMENTWISE_H */
