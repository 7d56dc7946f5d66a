/* Elementwise arithmetic, sum, mean, views and in-place writes. Each op keeps its
 * forward and its backward side by side.
 *
 * Adding an op:
 *   1. write its forward (a public ag_ function: check the arguments, make the result,
 *      compute it, ag__record it) and its backward (read out->ag__.gbuf, the gradient
 *      of the result, and ag__accum what reaches each input);
 *   2. give it a line in optable.h.
 * The engine needs nothing else: it calls ag__ops[op].backward for each node it
 * reaches. ag__accum sums a gradient back over broadcast dimensions for every op.
 * elementwise.h has the loops that elementwise ops share. */
#include "elementwise.h"

#include <math.h>
#include <string.h>

static ag_tensor *constant(double value) { return ag_scalar(value, false); }

/* ------------------------------------------------------------------------------------ */
/* add: y = a + b                          dy/da = 1, dy/db = 1                          */

static float add_f(float a, float b) { return a + b; }
void ag__add_backward(ag_tensor *y) { backward2(y, NULL, NULL); }

ag_tensor *ag_add_tt(ag_tensor *a, ag_tensor *b) { return binary(AG__OP_ADD, "add", a, b, add_f); }
ag_tensor *ag_add_ts(ag_tensor *a, double b) { return ag_add_tt(a, constant(b)); }
ag_tensor *ag_add_st(double a, ag_tensor *b) { return ag_add_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* sub: y = a - b                          dy/da = 1, dy/db = -1                         */
/* rsub: y = s - x, for a number s on the left (PyTorch's RsubBackward1)                 */

static float sub_f(float a, float b) { return a - b; }
PARTIAL(neg_g, -g)
void ag__sub_backward(ag_tensor *y) { backward2(y, NULL, neg_g); }

static float rsub_f(float x, float s) { return s - x; }
void ag__rsub_backward(ag_tensor *y) { backward2(y, neg_g, NULL); }

ag_tensor *ag_sub_tt(ag_tensor *a, ag_tensor *b) { return binary(AG__OP_SUB, "sub", a, b, sub_f); }
ag_tensor *ag_sub_ts(ag_tensor *a, double b) { return ag_sub_tt(a, constant(b)); }
ag_tensor *ag_sub_st(double a, ag_tensor *b)
{
    return binary(AG__OP_RSUB, "rsub", b, constant(a), rsub_f);
}

/* ------------------------------------------------------------------------------------ */
/* mul: y = a * b                          dy/da = b, dy/db = a                          */

static float mul_f(float a, float b) { return a * b; }
PARTIAL(mul_da, g *b)
PARTIAL(mul_db, g *a)
void ag__mul_backward(ag_tensor *y) { backward2(y, mul_da, mul_db); }

ag_tensor *ag_mul_tt(ag_tensor *a, ag_tensor *b) { return binary(AG__OP_MUL, "mul", a, b, mul_f); }
ag_tensor *ag_mul_ts(ag_tensor *a, double b) { return ag_mul_tt(a, constant(b)); }
ag_tensor *ag_mul_st(double a, ag_tensor *b) { return ag_mul_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* div: y = a / b                          dy/da = 1 / b, dy/db = -a / b^2               */

static float div_f(float a, float b) { return a / b; }
PARTIAL(div_da, g / b)
/* -g * ((a / b) / b), in PyTorch's order of operations */
PARTIAL(div_db, -g *((a / b) / b))
void ag__div_backward(ag_tensor *y) { backward2(y, div_da, div_db); }

ag_tensor *ag_div_tt(ag_tensor *a, ag_tensor *b) { return binary(AG__OP_DIV, "div", a, b, div_f); }
ag_tensor *ag_div_ts(ag_tensor *a, double b) { return ag_div_tt(a, constant(b)); }
ag_tensor *ag_div_st(double a, ag_tensor *b) { return ag_div_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* pow with a tensor exponent: y = a ^ b   dy/da = b a^(b-1), dy/db = a^b ln a           */
/* Where b == 0, dy/da is 0; where a == 0 and b >= 0, dy/db is 0 (PyTorch's choices,     */
/* which avoid 0 * inf).                                                                 */

static float pow_f(float a, float b) { return powf(a, b); }
PARTIAL(pow_da, b == 0.0f ? 0.0f : g * (b * powf(a, b - 1.0f)))
PARTIAL(pow_db, (a == 0.0f && b >= 0.0f) ? 0.0f : g *(y *logf(a)))
void ag__pow_tensor_backward(ag_tensor *y) { backward2(y, pow_da, pow_db); }

ag_tensor *ag_pow_tt(ag_tensor *a, ag_tensor *b)
{
    return binary(AG__OP_POW_TENSOR, "pow", a, b, pow_f);
}
ag_tensor *ag_pow_st(double a, ag_tensor *b) { return ag_pow_tt(constant(a), b); }

/* ------------------------------------------------------------------------------------ */
/* neg: y = -x                             dy/dx = -1                                    */

void ag__neg_backward(ag_tensor *y) { backward1(y, neg_g); }

ag_tensor *ag_neg(ag_tensor *x)
{
    if (!ag__check(x, "neg", "self")) return NULL;
    ag_tensor *y = ag__new_like("neg", x);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = -x->data[i];
    ag__record(y, AG__OP_NEG, x, NULL);
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
void ag__pow_scalar_backward(ag_tensor *y) { backward1(y, pow_scalar_d); }

ag_tensor *ag_pow_ts(ag_tensor *x, double exponent)
{
    if (!ag__check(x, "pow", "self")) return NULL;
    ag_tensor *y = ag__new_like("pow", x);
    if (!y) return NULL;
    float p = (float)exponent;
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = pow_scalar(x->data[i], p);
    y->ag__.farg[0] = p;
    ag__record(y, AG__OP_POW_SCALAR, x, NULL);
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
    float *dx = ag__grad_of(x);
    if (!dx) return;
    float g = y->ag__.gbuf[0] / scale_div;
    for (int64_t i = 0; i < x->numel; i++) dx[i] += g;
}
void ag__sum_backward(ag_tensor *y) { reduce_backward(y, 1.0f); }
void ag__mean_backward(ag_tensor *y) { reduce_backward(y, (float)y->ag__.src[0]->numel); }

static ag_tensor *reduce(int op, const char *name, ag_tensor *x)
{
    if (!ag__check(x, name, "self")) return NULL;
    ag_tensor *y = ag__new(name, 0, NULL, NULL, NULL);
    if (!y) return NULL;
    double s = total(x);
    y->data[0] = (float)(op == AG__OP_MEAN ? s / (double)x->numel : s);
    ag__record(y, op, x, NULL);
    return y;
}

ag_tensor *ag_sum(ag_tensor *x) { return reduce(AG__OP_SUM, "sum", x); }
ag_tensor *ag_mean(ag_tensor *x) { return reduce(AG__OP_MEAN, "mean", x); }

/* ------------------------------------------------------------------------------------ */
/* view / reshape: y shares x's storage    dy/dx = identity, read in x's shape           */

void ag__view_backward(ag_tensor *y) { ag__accum(y->ag__.src[0], y, y->ag__.gbuf); }

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

ag_tensor *ag_view(ag_tensor *x, ag_shape shape) { return view(AG__OP_VIEW, "view", x, shape); }
ag_tensor *ag_reshape(ag_tensor *x, ag_shape shape)
{
    return view(AG__OP_RESHAPE, "reshape", x, shape);
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
    if (!ag__broadcast_shape(name, t, x, &ndim, shape)) return NULL;
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
