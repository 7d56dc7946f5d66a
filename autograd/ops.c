/* The recorded ops. Each op keeps its forward and its backward side by side.
 *
 * Adding an op:
 *   1. write its forward (a public ag_ function: check the arguments, make the result,
 *      compute it, ag__record it) and its backward (read out->ag__.gbuf, the gradient
 *      of the result, and ag__accum what reaches each input);
 *   2. give it an enum value below and an entry in ag__ops[] at the end of this file.
 * The engine needs nothing else: it calls ag__ops[op].backward for each node it
 * reaches. ag__accum sums a gradient back over broadcast dimensions for every op. */
#include "internal.h"

#include <math.h>
#include <string.h>

enum {
    OP_LEAF,
    OP_ADD,
    OP_SUB,
    OP_RSUB,
    OP_MUL,
    OP_DIV,
    OP_POW_TENSOR,
    OP_NEG,
    OP_POW_SCALAR,
    OP_SUM,
    OP_MEAN,
    OP_VIEW,
    OP_RESHAPE,
};

/* ------------------------------------------------------------------------------------ */
/* Shared machinery for elementwise ops                                                  */

/* The broadcast shape of a and b (NumPy rules), or an error in PyTorch's words. */
static bool broadcast_shape(const char *op, const ag_tensor *a, const ag_tensor *b, int *ndim,
                            int64_t shape[AG_MAX_DIMS])
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < n; k++) {
        int ja = k - (n - a->ndim), jb = k - (n - b->ndim);
        int64_t sa = ja >= 0 ? a->shape[ja] : 1, sb = jb >= 0 ? b->shape[jb] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
            ag__error("%s: The size of tensor a (%lld) must match the size of tensor b (%lld) "
                      "at non-singleton dimension %d (shapes %s and %s)",
                      op, (long long)sa, (long long)sb, k, ag__shape_str(s1, a->ndim, a->shape),
                      ag__shape_str(s2, b->ndim, b->shape));
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

AG__INLINE ag_tensor *binary(int op, const char *name, ag_tensor *a, ag_tensor *b,
                             float (*f)(float, float))
{
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__check(a, name, "a") || !ag__check(b, name, "b")) return NULL;
    if (!broadcast_shape(name, a, b, &ndim, shape)) return NULL;
    ag_tensor *out = ag__new(name, ndim, shape, NULL, NULL);
    if (!out) return NULL;
    map2(out, a, b, f);
    ag__record(out, op, a, b);
    return out;
}

/* A partial derivative of an elementwise op: the gradient reaching one input from the
 * gradient g of the output y = f(a, b). */
typedef float (*partial_fn)(float a, float b, float y, float g);
#define PARTIAL(name, expr)                                                                        \
    static float name(float a, float b, float y, float g)                                          \
    {                                                                                              \
        (void)a, (void)b, (void)y, (void)g;                                                        \
        return (expr);                                                                             \
    }

/* Backward of y = f(a, b): each input that wants a gradient gets d(a, b, y, g) at every
 * element of y, summed back to its own shape. A NULL partial means the gradient passes
 * through unchanged. */
AG__INLINE void backward2(ag_tensor *y, partial_fn da, partial_fn db)
{
    ag_tensor *in[2] = {y->ag__.src[0], y->ag__.src[1]};
    partial_fn d[2] = {da, db};
    const float *g = y->ag__.gbuf, *a = in[0]->data, *b = in[1]->data, *o = y->data;
    int64_t p[AG_MAX_DIMS], sa[AG_MAX_DIMS], sb[AG_MAX_DIMS];
    ag__pad(y->ndim, y->shape, p);
    ag__bstrides(in[0], sa);
    ag__bstrides(in[1], sb);
    for (int k = 0; k < 2; k++) {
        if (!ag__wants(in[k])) continue;
        if (!d[k]) {
            ag__accum(in[k], y, g);
            continue;
        }
        float *t = ag__scratch(y->numel);
        if (!t) return;
        partial_fn f = d[k];
        AG__FOR_BCAST(p, sa, sb, t[io] = f(a[ia], b[ib], o[io], g[io]));
        ag__accum(in[k], y, t);
    }
}

/* Same for y = f(x) with the op's scalar argument: d(x, arg, y, g). */
AG__INLINE void backward1(ag_tensor *y, partial_fn d)
{
    ag_tensor *x = y->ag__.src[0];
    if (!ag__wants(x)) return;
    float *t = ag__scratch(y->numel);
    if (!t) return;
    for (int64_t i = 0; i < y->numel; i++)
        t[i] = d(x->data[i], y->ag__.arg, y->data[i], y->ag__.gbuf[i]);
    ag__accum(x, y, t);
}

static ag_tensor *constant(double value) { return ag_scalar(value, false); }

/* ------------------------------------------------------------------------------------ */
/* add: y = a + b                          dy/da = 1, dy/db = 1                          */

static float add_f(float a, float b) { return a + b; }
static void add_backward(ag_tensor *y) { backward2(y, NULL, NULL); }

ag_tensor *ag_add_tt(ag_tensor *a, ag_tensor *b) { return binary(OP_ADD, "add", a, b, add_f); }
ag_tensor *ag_add_ts(ag_tensor *a, double b) { return ag_add_tt(a, constant(b)); }
ag_tensor *ag_add_st(double a, ag_tensor *b) { return ag_add_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* sub: y = a - b                          dy/da = 1, dy/db = -1                         */
/* rsub: y = s - x, for a number s on the left (PyTorch's RsubBackward1)                 */

static float sub_f(float a, float b) { return a - b; }
PARTIAL(neg_g, -g)
static void sub_backward(ag_tensor *y) { backward2(y, NULL, neg_g); }

static float rsub_f(float x, float s) { return s - x; }
static void rsub_backward(ag_tensor *y) { backward2(y, neg_g, NULL); }

ag_tensor *ag_sub_tt(ag_tensor *a, ag_tensor *b) { return binary(OP_SUB, "sub", a, b, sub_f); }
ag_tensor *ag_sub_ts(ag_tensor *a, double b) { return ag_sub_tt(a, constant(b)); }
ag_tensor *ag_sub_st(double a, ag_tensor *b)
{
    return binary(OP_RSUB, "rsub", b, constant(a), rsub_f);
}

/* ------------------------------------------------------------------------------------ */
/* mul: y = a * b                          dy/da = b, dy/db = a                          */

static float mul_f(float a, float b) { return a * b; }
PARTIAL(mul_da, g *b)
PARTIAL(mul_db, g *a)
static void mul_backward(ag_tensor *y) { backward2(y, mul_da, mul_db); }

ag_tensor *ag_mul_tt(ag_tensor *a, ag_tensor *b) { return binary(OP_MUL, "mul", a, b, mul_f); }
ag_tensor *ag_mul_ts(ag_tensor *a, double b) { return ag_mul_tt(a, constant(b)); }
ag_tensor *ag_mul_st(double a, ag_tensor *b) { return ag_mul_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* div: y = a / b                          dy/da = 1 / b, dy/db = -a / b^2               */

static float div_f(float a, float b) { return a / b; }
PARTIAL(div_da, g / b)
/* -g * ((a / b) / b), in PyTorch's order of operations */
PARTIAL(div_db, -g *((a / b) / b))
static void div_backward(ag_tensor *y) { backward2(y, div_da, div_db); }

ag_tensor *ag_div_tt(ag_tensor *a, ag_tensor *b) { return binary(OP_DIV, "div", a, b, div_f); }
ag_tensor *ag_div_ts(ag_tensor *a, double b) { return ag_div_tt(a, constant(b)); }
ag_tensor *ag_div_st(double a, ag_tensor *b) { return ag_div_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* pow with a tensor exponent: y = a ^ b   dy/da = b a^(b-1), dy/db = a^b ln a           */
/* Where b == 0, dy/da is 0; where a == 0 and b >= 0, dy/db is 0 (PyTorch's choices,     */
/* which avoid 0 * inf).                                                                 */

static float pow_f(float a, float b) { return powf(a, b); }
PARTIAL(pow_da, b == 0.0f ? 0.0f : g * (b * powf(a, b - 1.0f)))
PARTIAL(pow_db, (a == 0.0f && b >= 0.0f) ? 0.0f : g *(y *logf(a)))
static void pow_tensor_backward(ag_tensor *y) { backward2(y, pow_da, pow_db); }

ag_tensor *ag_pow_tt(ag_tensor *a, ag_tensor *b)
{
    return binary(OP_POW_TENSOR, "pow", a, b, pow_f);
}
ag_tensor *ag_pow_st(double a, ag_tensor *b) { return ag_pow_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* neg: y = -x                             dy/dx = -1                                    */

static void neg_backward(ag_tensor *y) { backward1(y, neg_g); }

ag_tensor *ag_neg(ag_tensor *x)
{
    if (!ag__check(x, "neg", "self")) return NULL;
    ag_tensor *y = ag__new_like("neg", x);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = -x->data[i];
    ag__record(y, OP_NEG, x, NULL);
    return y;
}

/* ------------------------------------------------------------------------------------ */
/* pow with a number exponent: y = x ^ p   dy/dx = p x^(p-1)  (0 when p == 0)            */

/* x ^ p with PyTorch's special cases, which are exact where powf may round differently. */
static float pow_scalar(float x, float p)
{
    if (p == 2.0f) return x * x;
    if (p == 3.0f) return x * x * x;
    if (p == 1.0f) return x;
    if (p == 0.0f) return 1.0f;
    if (p == 0.5f) return sqrtf(x);
    if (p == -0.5f) return 1.0f / sqrtf(x);
    if (p == -1.0f) return 1.0f / x;
    if (p == -2.0f) return 1.0f / (x * x);
    return powf(x, p);
}
/* here a is x and b the exponent p */
PARTIAL(pow_scalar_d, b == 0.0f ? 0.0f : g * (b * pow_scalar(a, b - 1.0f)))
static void pow_scalar_backward(ag_tensor *y) { backward1(y, pow_scalar_d); }

ag_tensor *ag_pow_ts(ag_tensor *x, double exponent)
{
    if (!ag__check(x, "pow", "self")) return NULL;
    ag_tensor *y = ag__new_like("pow", x);
    if (!y) return NULL;
    float p = (float)exponent;
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = pow_scalar(x->data[i], p);
    y->ag__.arg = p;
    ag__record(y, OP_POW_SCALAR, x, NULL);
    return y;
}

/* ------------------------------------------------------------------------------------ */
/* sum: y = sum_i x_i                      dy/dx_i = 1                                   */
/* mean: y = sum_i x_i / n                 dy/dx_i = 1 / n                               */

/* Accumulated in double: the float result is then the correctly rounded sum, within
 * an ulp of PyTorch's pairwise float sum. */
static double total(const ag_tensor *x)
{
    double s = 0;
    for (int64_t i = 0; i < x->numel; i++) s += x->data[i];
    return s;
}

static void reduce_backward(ag_tensor *y, float scale_div)
{
    ag_tensor *x = y->ag__.src[0];
    float *t = ag__scratch(x->numel);
    if (!t) return;
    float g = y->ag__.gbuf[0] / scale_div;
    for (int64_t i = 0; i < x->numel; i++) t[i] = g;
    ag__accum(x, x, t);
}
static void sum_backward(ag_tensor *y) { reduce_backward(y, 1.0f); }
static void mean_backward(ag_tensor *y) { reduce_backward(y, (float)y->ag__.src[0]->numel); }

static ag_tensor *reduce(int op, const char *name, ag_tensor *x)
{
    if (!ag__check(x, name, "self")) return NULL;
    ag_tensor *y = ag__new(name, 0, NULL, NULL, NULL);
    if (!y) return NULL;
    double s = total(x);
    y->data[0] = (float)(op == OP_MEAN ? s / (double)x->numel : s);
    ag__record(y, op, x, NULL);
    return y;
}

ag_tensor *ag_sum(ag_tensor *x) { return reduce(OP_SUM, "sum", x); }
ag_tensor *ag_mean(ag_tensor *x) { return reduce(OP_MEAN, "mean", x); }

/* ------------------------------------------------------------------------------------ */
/* view / reshape: y shares x's storage    dy/dx = identity, read in x's shape           */

static void view_backward(ag_tensor *y) { ag__accum(y->ag__.src[0], y, y->ag__.gbuf); }

static ag_tensor *view(int op, const char *name, ag_tensor *x, ag_shape shape)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    if (!ag__check(x, name, "self")) return NULL;
    if (shape.ndim < 0 || shape.ndim > AG_MAX_DIMS)
        return ag__error("%s: tensors have at most %d dimensions, got %d", name, AG_MAX_DIMS,
                         shape.ndim),
               NULL;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.d[i] == -1) {
            if (infer >= 0)
                return ag__error("%s: only one dimension can be inferred (shape %s)", name,
                                 ag__shape_str(s1, shape.ndim, shape.d)),
                       NULL;
            infer = i;
        } else if (shape.d[i] < 0) {
            return ag__error("%s: invalid shape dimension %lld in %s", name, (long long)shape.d[i],
                             ag__shape_str(s1, shape.ndim, shape.d)),
                   NULL;
        } else {
            known *= shape.d[i];
        }
    }
    if (infer >= 0 && known != 0 && x->numel % known == 0) shape.d[infer] = x->numel / known;
    if ((infer >= 0 && (known == 0 || x->numel % known)) || (infer < 0 && known != x->numel))
        return ag__error("%s: shape '%s' is invalid for input of size %lld (input shape %s)", name,
                         ag__shape_str(s1, shape.ndim, shape.d), (long long)x->numel,
                         ag__shape_str(s2, x->ndim, x->shape)),
               NULL;
    ag_tensor *y = ag__new(name, shape.ndim, shape.d, x, x->data);
    if (!y) return NULL;
    ag__record(y, op, x, NULL);
    return y;
}

ag_tensor *ag_view(ag_tensor *x, ag_shape shape) { return view(OP_VIEW, "view", x, shape); }
ag_tensor *ag_reshape(ag_tensor *x, ag_shape shape)
{
    return view(OP_RESHAPE, "reshape", x, shape);
}

/* ------------------------------------------------------------------------------------ */
/* detach / .data: a leaf sharing x's storage, outside the graph (not recorded)          */

static ag_tensor *alias(const char *name, ag_tensor *x)
{
    if (!ag__check(x, name, "self")) return NULL;
    return ag__new(name, x->ndim, x->shape, x, x->data);
}

ag_tensor *ag_detach(ag_tensor *x) { return alias("detach", x); }
ag_tensor *ag_data(ag_tensor *x) { return alias("data", x); }

/* ------------------------------------------------------------------------------------ */
/* In-place writes (not recorded: see ag__inplace_begin)                                 */

/* t op= x with x broadcast to t's shape. */
AG__INLINE ag_tensor *inplace2(const char *name, ag_tensor *t, ag_tensor *x,
                               float (*f)(float, float))
{
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__check(t, name, "self") || !ag__check(x, name, "other")) return NULL;
    if (!broadcast_shape(name, t, x, &ndim, shape)) return NULL;
    if (ndim != t->ndim || memcmp(shape, t->shape, (size_t)ndim * sizeof *shape)) {
        char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
        return ag__error("%s: output with shape %s doesn't match the broadcast shape %s", name,
                         ag__shape_str(s1, t->ndim, t->shape), ag__shape_str(s2, ndim, shape)),
               NULL;
    }
    if (!ag__inplace_begin(t, name)) return NULL;
    map2(t, t, x, f);
    return t;
}

static float second_f(float a, float b) { return AG__UNUSED(a), b; }

ag_tensor *ag_add__tt(ag_tensor *t, ag_tensor *x) { return inplace2("add_", t, x, add_f); }
ag_tensor *ag_sub__tt(ag_tensor *t, ag_tensor *x) { return inplace2("sub_", t, x, sub_f); }
ag_tensor *ag_mul__tt(ag_tensor *t, ag_tensor *x) { return inplace2("mul_", t, x, mul_f); }
ag_tensor *ag_div__tt(ag_tensor *t, ag_tensor *x) { return inplace2("div_", t, x, div_f); }
ag_tensor *ag_copy_(ag_tensor *t, ag_tensor *src) { return inplace2("copy_", t, src, second_f); }

/* The number forms check t first so that the constant is not made for nothing. */
#define INPLACE_SCALAR(fn, name, f)                                                                \
    ag_tensor *fn(ag_tensor *t, double x)                                                          \
    {                                                                                              \
        if (!ag__check(t, name, "self")) return NULL;                                              \
        return inplace2(name, t, constant(x), f);                                                  \
    }
INPLACE_SCALAR(ag_add__ts, "add_", add_f)
INPLACE_SCALAR(ag_sub__ts, "sub_", sub_f)
INPLACE_SCALAR(ag_mul__ts, "mul_", mul_f)
INPLACE_SCALAR(ag_div__ts, "div_", div_f)

ag_tensor *ag_fill_(ag_tensor *t, double value)
{
    if (!ag__check(t, "fill_", "self") || !ag__inplace_begin(t, "fill_")) return NULL;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)value;
    return t;
}

ag_tensor *ag_zero_(ag_tensor *t)
{
    if (!ag__check(t, "zero_", "self") || !ag__inplace_begin(t, "zero_")) return NULL;
    memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

ag_tensor *ag_set_data(ag_tensor *t, ag_tensor *src)
{
    if (!ag__check(t, "set_data", "self") || !ag__check(src, "set_data", "data")) return NULL;
    if (src->numel != t->numel || src->ndim != t->ndim ||
        memcmp(src->shape, t->shape, sizeof t->shape)) {
        char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
        return ag__error("set_data: new data of shape %s for a tensor of shape %s; agrad "
                         "keeps a tensor's shape",
                         ag__shape_str(s1, src->ndim, src->shape),
                         ag__shape_str(s2, t->ndim, t->shape)),
               NULL;
    }
    /* `.data =` is how parameters are updated, so it bypasses the leaf rule; the version
     * still moves, so a retained graph that saved t's old values refuses to backward. */
    memmove(t->data, src->data, (size_t)t->numel * sizeof(float));
    t->ag__.base->ag__.version++;
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* The op table                                                                          */

/* needs: what the gradients of input 0 and input 1 read (see ag__op). */
enum { A = AG__F_SAVED_A, B = AG__F_SAVED_B, OUT = AG__F_SAVED_OUT };

const ag__op ag__ops[] = {
    [OP_LEAF] = {NULL, {0, 0}, NULL},
    [OP_ADD] = {"AddBackward0", {0, 0}, add_backward},
    [OP_SUB] = {"SubBackward0", {0, 0}, sub_backward},
    [OP_RSUB] = {"RsubBackward1", {0, 0}, rsub_backward},
    [OP_MUL] = {"MulBackward0", {B, A}, mul_backward},
    [OP_DIV] = {"DivBackward0", {B, A | B}, div_backward},
    [OP_POW_TENSOR] = {"PowBackward1", {A | B, A | B | OUT}, pow_tensor_backward},
    [OP_NEG] = {"NegBackward0", {0, 0}, neg_backward},
    [OP_POW_SCALAR] = {"PowBackward0", {A, 0}, pow_scalar_backward},
    [OP_SUM] = {"SumBackward0", {0, 0}, sum_backward},
    [OP_MEAN] = {"MeanBackward0", {0, 0}, mean_backward},
    [OP_VIEW] = {"ViewBackward0", {0, 0}, view_backward},
    [OP_RESHAPE] = {"ReshapeAliasBackward0", {0, 0}, view_backward},
};
