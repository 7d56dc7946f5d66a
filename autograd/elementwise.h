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
            char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
            ag__error("%s: The size of tensor a (%lld) must match the size of tensor b (%lld) "
                      "at non-singleton dimension %d (shapes %s and %s)",
                      op, (long long)sa, (long long)sb, k, ag__tensor_str(s1, a),
                      ag__tensor_str(s2, b));
            return false;
        }
        shape[k] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return true;
}

/* out[i] = f(a[i'], b[i'']) over the broadcast shape. Inlined into each op so that f is
 * a constant the compiler folds into the loop. */
AG__INLINE void map2(ag_tensor *out, const ag_tensor *a, const ag_tensor *b,
                     float (*f)(float, float))
{
    float *o = out->data;
    const float *x = a->data, *y = b->data;
    if (a->numel == out->numel && b->numel == out->numel) {
        for (int64_t i = 0; i < out->numel; i++) o[i] = f(x[i], y[i]);
    } else if (a->numel == out->numel && b->numel == 1) {
        for (int64_t i = 0; i < out->numel; i++) o[i] = f(x[i], y[0]);
    } else if (a->numel == 1 && b->numel == out->numel) {
        for (int64_t i = 0; i < out->numel; i++) o[i] = f(x[0], y[i]);
    } else {
        int64_t p[AG_MAX_DIMS], sa[AG_MAX_DIMS], sb[AG_MAX_DIMS];
        ag__pad(out->ndim, out->shape, p);
        ag__bstrides(a, sa);
        ag__bstrides(b, sb);
        AG__FOR_BCAST(p, sa, sb, o[io] = f(x[ia], y[ib]));
    }
}

/* out[i] = f(x[i]), and out[i] = f(x[i], s) for a number s. */
AG__INLINE void map1(ag_tensor *out, const ag_tensor *x, float (*f)(float))
{
    for (int64_t i = 0; i < x->numel; i++) out->data[i] = f(x->data[i]);
}
AG__INLINE void map_number(ag_tensor *out, const ag_tensor *x, float s, float (*f)(float, float))
{
    for (int64_t i = 0; i < x->numel; i++) out->data[i] = f(x->data[i], s);
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
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__check(a, name, "a") || !ag__check(b, name, "b")) return NULL;
    if (!ag__broadcast_shape(name, a, b, &ndim, shape)) return NULL;
    ag_tensor *out = ag__new(name, ndim, shape, NULL, NULL);
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

/* The gradient of input k of y = f(a, b): d(a, b, y, g) at every element of y, summed back
 * to the input's own shape. A NULL rule means the gradient passes through unchanged. An
 * input of y's shape takes its gradient directly; only a broadcast one needs a buffer of
 * y's shape to sum from. Inlined with d a constant, so that the rule is folded into the
 * loop rather than called per element. */
AG__INLINE void backward_input(ag_tensor *y, int k, rule_fn d)
{
    if (!ag__wants(y, k)) return;
    ag_tensor *in[2] = {node(y)->src[0], node(y)->src[1]};
    const float *g = node(y)->gbuf, *a = in[0]->data, *b = in[1]->data, *o = y->data;
    if (!d) {
        ag__accum(in[k], y, g);
        return;
    }
    int64_t p[AG_MAX_DIMS], sa[AG_MAX_DIMS], sb[AG_MAX_DIMS];
    ag__pad(y->ndim, y->shape, p);
    ag__bstrides(in[0], sa);
    ag__bstrides(in[1], sb);
    if (in[k]->numel == y->numel) {
        float *dx = ag__grad_of(in[k]);
        if (!dx) return;
        AG__FOR_BCAST(p, sa, sb, dx[io] += d(a[ia], b[ib], o[io], g[io]));
        return;
    }
    float *t = ag__scratch_floats(y->numel);
    if (!t) return;
    AG__FOR_BCAST(p, sa, sb, t[io] = d(a[ia], b[ib], o[io], g[io]));
    ag__accum(in[k], y, t);
}

/* Backward of y = f(a, b): each input that wants a gradient gets its rule's. */
AG__INLINE void backward2(ag_tensor *y, rule_fn da, rule_fn db)
{
    backward_input(y, 0, da);
    backward_input(y, 1, db);
}

/* Same for y = f(x), or f(x, s) for the op's number s: d(x, s, y, g). */
AG__INLINE void backward1(ag_tensor *y, rule_fn d)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx) return;
    for (int64_t i = 0; i < y->numel; i++)
        dx[i] += d(x->data[i], node(y)->arg.number, y->data[i], node(y)->gbuf[i]);
}

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
