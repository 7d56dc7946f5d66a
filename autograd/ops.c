/* Elementwise arithmetic, sum, mean, views and in-place writes. Each op keeps its
 * forward and its backward side by side.
 *
 * Adding an op:
 *   1. write its forward (a public ag_ function: check the arguments, make the result,
 *      compute it, ag__record it) and its backward (read node(out)->gbuf, the gradient
 *      of the result, and ag__accum what reaches each input);
 *   2. give it a line in optable.h.
 * The engine needs nothing else: it calls ag__ops[op].backward for each node it
 * reaches. ag__accum sums a gradient back over broadcast dimensions for every op.
 * elementwise.h has the loops that elementwise ops share. */
#include "elementwise.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* With a number s on either side, as in ag_mul(x, 2) or ag_sub(1, x): the number is the   */
/* op's argument (arg.number, rounded to float as PyTorch rounds a Python number), not a  */
/* tensor, so nothing is made but the result. The tensor is checked first, named as the   */
/* user wrote the call (ag_sub(1, t) names argument b). As in PyTorch, x * s and x / s    */
/* keep s for backward (a second backward is an error); x + s, x - s and s - x keep       */
/* nothing.                                                                              */

AG__INLINE ag_tensor *with_number(int op, const char *name, const char *role, const ag_tensor *x,
                                  double s, float (*f)(float, float))
{
    if (!ag__check(x, name, role)) return NULL;
    ag_tensor *y = ag__new_like(name, x);
    if (!y) return NULL;
    node(y)->arg.number = (float)s;
    map_number(y, x, node(y)->arg.number, f);
    return ag__record(y, op, x, NULL);
}

/* A number on the left of div and pow is rare: it becomes a 0-d constant tensor. */
static ag_tensor *number_left(const char *name, double s, const ag_tensor *x,
                              ag_tensor *(*f)(const ag_tensor *, const ag_tensor *))
{
    if (!ag__check(x, name, "b")) return NULL;
    ag_tensor *c = ag__new(name, 0, NULL, NULL, NULL);
    if (!c) return NULL;
    c->data[0] = (float)s;
    return f(c, x);
}

/* ------------------------------------------------------------------------------------ */
/* add: y = a + b                          dy/da = 1, dy/db = 1                          */
/* with a number: y = x + s                dy/dx = 1                                     */

static float add_f(float a, float b) { return a + b; }
bool ag__add_forward(ag_tensor *y) { return forward2(y, add_f); }
bool ag__add_number_forward(ag_tensor *y) { return forward_number(y, add_f); }
void ag__add_backward(ag_tensor *y) { backward2(y, NULL, NULL); }
RULE1(add_number_dx, x) { return g; }
void ag__add_number_backward(ag_tensor *y) { backward1(y, add_number_dx); }

ag_tensor *ag_add_tt(const ag_tensor *a, const ag_tensor *b)
{
    return binary(AG__OP_ADD, "add", a, b, add_f);
}
ag_tensor *ag_add_ts(const ag_tensor *a, double b)
{
    return with_number(AG__OP_ADD_NUMBER, "add", "a", a, b, add_f);
}
ag_tensor *ag_add_st(double a, const ag_tensor *b)
{
    return with_number(AG__OP_ADD_NUMBER, "add", "b", b, a, add_f);
}

/* ------------------------------------------------------------------------------------ */
/* sub: y = a - b                          dy/da = 1, dy/db = -1                         */
/* with a number: y = x - s                dy/dx = 1                                     */
/* rsub, a number on the left: y = s - x   dy/dx = -1  (PyTorch's RsubBackward1)         */

static float sub_f(float a, float b) { return a - b; }
bool ag__sub_forward(ag_tensor *y) { return forward2(y, sub_f); }
bool ag__sub_number_forward(ag_tensor *y) { return forward_number(y, sub_f); }
RULE(sub_db, a, b) { return -g; }
void ag__sub_backward(ag_tensor *y) { backward2(y, NULL, sub_db); }

static float rsub_f(float x, float s) { return s - x; }
bool ag__rsub_forward(ag_tensor *y) { return forward_number(y, rsub_f); }
RULE1(rsub_dx, x) { return -g; }
void ag__rsub_backward(ag_tensor *y) { backward1(y, rsub_dx); }

ag_tensor *ag_sub_tt(const ag_tensor *a, const ag_tensor *b)
{
    return binary(AG__OP_SUB, "sub", a, b, sub_f);
}
ag_tensor *ag_sub_ts(const ag_tensor *a, double b)
{
    return with_number(AG__OP_SUB_NUMBER, "sub", "a", a, b, sub_f);
}
ag_tensor *ag_sub_st(double a, const ag_tensor *b)
{
    return with_number(AG__OP_RSUB, "sub", "b", b, a, rsub_f);
}

/* ------------------------------------------------------------------------------------ */
/* mul: y = a * b                          dy/da = b, dy/db = a                          */
/* with a number: y = x * s                dy/dx = s                                     */

static float mul_f(float a, float b) { return a * b; }
bool ag__mul_forward(ag_tensor *y) { return forward2(y, mul_f); }
bool ag__mul_number_forward(ag_tensor *y) { return forward_number(y, mul_f); }
RULE(mul_da, a, b) { return g * b; }
RULE(mul_db, a, b) { return g * a; }
RULE(mul_number_dx, x, s) { return g * s; }
void ag__mul_backward(ag_tensor *y) { backward2(y, mul_da, mul_db); }
void ag__mul_number_backward(ag_tensor *y) { backward1(y, mul_number_dx); }

ag_tensor *ag_mul_tt(const ag_tensor *a, const ag_tensor *b)
{
    return binary(AG__OP_MUL, "mul", a, b, mul_f);
}
ag_tensor *ag_mul_ts(const ag_tensor *a, double b)
{
    return with_number(AG__OP_MUL_NUMBER, "mul", "a", a, b, mul_f);
}
ag_tensor *ag_mul_st(double a, const ag_tensor *b)
{
    return with_number(AG__OP_MUL_NUMBER, "mul", "b", b, a, mul_f);
}

/* ------------------------------------------------------------------------------------ */
/* div: y = a / b                          dy/da = 1 / b, dy/db = -a / b^2               */
/* with a number: y = x / s                dy/dx = 1 / s                                 */

static float div_f(float a, float b) { return a / b; }
bool ag__div_forward(ag_tensor *y) { return forward2(y, div_f); }
bool ag__div_number_forward(ag_tensor *y) { return forward_number(y, div_f); }
RULE(div_da, a, b) { return g / b; }
RULE(div_db, a, b) { return -g * ((a / b) / b); } /* in PyTorch's order of operations */
RULE(div_number_dx, x, s) { return g / s; }
void ag__div_backward(ag_tensor *y) { backward2(y, div_da, div_db); }
void ag__div_number_backward(ag_tensor *y) { backward1(y, div_number_dx); }

ag_tensor *ag_div_tt(const ag_tensor *a, const ag_tensor *b)
{
    return binary(AG__OP_DIV, "div", a, b, div_f);
}
ag_tensor *ag_div_ts(const ag_tensor *a, double b)
{
    return with_number(AG__OP_DIV_NUMBER, "div", "a", a, b, div_f);
}
ag_tensor *ag_div_st(double a, const ag_tensor *b) { return number_left("div", a, b, ag_div_tt); }

/* ------------------------------------------------------------------------------------ */
/* pow with a tensor exponent: y = x ^ p   dy/dx = p x^(p-1), dy/dp = x^p ln x           */
/* Where p == 0, dy/dx is 0; where x == 0 and p >= 0, dy/dp is 0 (PyTorch's choices,     */
/* which avoid 0 * inf).                                                                 */

static float pow_f(float x, float p) { return powf(x, p); }
bool ag__pow_tensor_forward(ag_tensor *y) { return forward2(y, pow_f); }
RULE(pow_dx, x, p) { return p == 0.0f ? 0.0f : g * (p * powf(x, p - 1.0f)); }
RULE(pow_dp, x, p) { return (x == 0.0f && p >= 0.0f) ? 0.0f : g * (y * logf(x)); }
void ag__pow_tensor_backward(ag_tensor *y) { backward2(y, pow_dx, pow_dp); }

ag_tensor *ag_pow_tt(const ag_tensor *a, const ag_tensor *b)
{
    return binary(AG__OP_POW_TENSOR, "pow", a, b, pow_f);
}
ag_tensor *ag_pow_st(double a, const ag_tensor *b) { return number_left("pow", a, b, ag_pow_tt); }

/* ------------------------------------------------------------------------------------ */
/* neg: y = -x                             dy/dx = -1                                    */

static float neg_f(float x) { return -x; }
bool ag__neg_forward(ag_tensor *y) { return forward1(y, neg_f); }
RULE1(neg_dx, x) { return -g; }
void ag__neg_backward(ag_tensor *y) { backward1(y, neg_dx); }

ag_tensor *ag_neg(const ag_tensor *x) { return unary(AG__OP_NEG, "neg", x, neg_f); }

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
RULE(pow_number_dx, x, p) { return p == 0.0f ? 0.0f : g * (p * pow_scalar(x, p - 1.0f)); }
/* x ^ 2, the square of a loss, has its own loops: with p the constant 2, pow_scalar and the
 * rule fold to x * x and g * (2 * x), which vectorise (the same floats, as PyTorch's). */
void ag__pow_scalar_backward(ag_tensor *y)
{
    if (node(y)->arg.number == 2.0f)
        backward1_with(y, pow_number_dx, 2.0f);
    else
        backward1(y, pow_number_dx);
}

AG__INLINE void pow_loop(float *restrict y, const float *restrict x, int64_t n, float p)
{
    AG__FOR_FLAT(n, y[i] = pow_scalar(x[i], p));
}
static void pow_into(ag_tensor *y, const ag_tensor *x, float p)
{
    if (p == 2.0f)
        pow_loop(y->data, x->data, x->numel, 2.0f);
    else
        pow_loop(y->data, x->data, x->numel, p);
}
bool ag__pow_scalar_forward(ag_tensor *y)
{
    pow_into(y, node(y)->src[0], node(y)->arg.number);
    return true;
}

ag_tensor *ag_pow_ts(const ag_tensor *x, double exponent)
{
    if (!ag__check(x, "pow", "self")) return NULL;
    ag_tensor *y = ag__new_like("pow", x);
    if (!y) return NULL;
    node(y)->arg.number = (float)exponent;
    pow_into(y, x, node(y)->arg.number);
    return ag__record(y, AG__OP_POW_SCALAR, x, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* sum: y = sum_i x_i                      dy/dx_i = 1                                   */
/* mean: y = sum_i x_i / n                 dy/dx_i = 1 / n                               */

/* The sum of v's n floats, accumulated in double: the float result is then the correctly
 * rounded sum, within an ulp of PyTorch's pairwise float sum. Inlined into total and into
 * the scalar form of sum below, where n is 1. */
AG__INLINE double sum_floats(const float *v, int64_t n)
{
    double s = 0;
    AG__SUM_FLAT(n, s, v[i]);
    return s;
}
static double total(const ag_tensor *x) { return sum_floats(x->data, x->numel); }

/* PyTorch's mean divides the float sum by n in float (ReduceOps.cpp, mean_out on CPU:
 * sum_out(...).div_(dim_prod)), as mean over a dimension does here. A tiled replay
 * (replay.c) finishes its sums with these too. */
float ag__reduce_value(double total, int64_t n, bool mean)
{
    float s = (float)total;
    return mean ? s / (float)n : s;
}
float ag__reduce_dx(float g, int64_t n, bool mean) { return mean ? g / (float)n : g; }

static void reduce_backward(ag_tensor *y, bool mean)
{
    ag_tensor *x = node(y)->src[0];
    bool fresh;
    float *dx = ag__grad_buf(x, &fresh);
    if (!dx) return;
    float g = ag__reduce_dx(node(y)->gbuf[0], x->numel, mean);
    AG__ADD_FLAT(fresh, dx, x->numel, g);
}
void ag__sum_backward(ag_tensor *y) { reduce_backward(y, false); }
void ag__mean_backward(ag_tensor *y) { reduce_backward(y, true); }

static void sum_into(ag_tensor *y, const ag_tensor *x, bool mean)
{
    y->data[0] = ag__reduce_value(total(x), x->numel, mean);
}
bool ag__sum_forward(ag_tensor *y)
{
    sum_into(y, node(y)->src[0], false);
    return true;
}
bool ag__mean_forward(ag_tensor *y)
{
    sum_into(y, node(y)->src[0], true);
    return true;
}

static ag_tensor *reduce(int op, const char *name, const ag_tensor *x)
{
    if (!ag__check(x, name, "self")) return NULL;
    ag_tensor *y = ag__new(name, 0, NULL, NULL, NULL);
    if (!y) return NULL;
    sum_into(y, x, op == AG__OP_MEAN);
    return ag__record(y, op, x, NULL);
}

ag_tensor *ag_sum(const ag_tensor *x) { return reduce(AG__OP_SUM, "sum", x); }
ag_tensor *ag_mean(const ag_tensor *x) { return reduce(AG__OP_MEAN, "mean", x); }

/* ------------------------------------------------------------------------------------ */
/* The scalar forms of the ops above (ag__scalar_of), for a replay of a graph of          */
/* one-element tensors: each op's own function and rules, called once rather than folded  */
/* into a loop. Sum and mean of one element are sum_into's, with the gradient passed      */
/* unchanged (reduce_backward's g / 1). unary.c has those of the functions of one tensor. */

static float sum1_f(float x, float unused) { return AG__UNUSED(unused), (float)sum_floats(&x, 1); }
static float mean1_f(float x, float unused) { return sum1_f(x, unused) / 1.0f; }
SCALAR1(neg_s, neg_f)

static const ag__scalar_op scalar_ops[AG__OP_COUNT] = {
    [AG__OP_ADD] = {add_f, {NULL, NULL}},
    [AG__OP_SUB] = {sub_f, {NULL, sub_db}},
    [AG__OP_MUL] = {mul_f, {mul_da, mul_db}},
    [AG__OP_DIV] = {div_f, {div_da, div_db}},
    [AG__OP_POW_TENSOR] = {pow_f, {pow_dx, pow_dp}},
    [AG__OP_ADD_NUMBER] = {add_f, {add_number_dx}},
    [AG__OP_SUB_NUMBER] = {sub_f, {add_number_dx}},
    [AG__OP_RSUB] = {rsub_f, {rsub_dx}},
    [AG__OP_MUL_NUMBER] = {mul_f, {mul_number_dx}},
    [AG__OP_DIV_NUMBER] = {div_f, {div_number_dx}},
    [AG__OP_POW_SCALAR] = {pow_scalar, {pow_number_dx}},
    [AG__OP_SUM] = {sum1_f, {NULL}},
    [AG__OP_MEAN] = {mean1_f, {NULL}},
    [AG__OP_NEG] = {neg_s, {neg_dx}},
};

const ag__scalar_op *ag__scalar_of(int op)
{
    return scalar_ops[op].f ? &scalar_ops[op] : ag__unary_scalar_of(op);
}

/* ------------------------------------------------------------------------------------ */
/* view / reshape: y shares x's storage    dy/dx = identity, read in x's shape           */

/* its values are its input's storage: nothing to compute */
bool ag__view_forward(ag_tensor *y) { return AG__UNUSED(y), true; }
void ag__view_backward(ag_tensor *y) { ag__accum(node(y)->src[0], y, node(y)->gbuf); }

static ag_tensor *view(int op, const char *name, const ag_tensor *x, ag_shape shape)
{
    char s[AG__SHAPE_STR]; /* the shape asked for, written only for a message */
    if (!ag__check(x, name, "self")) return NULL;
    if (shape.ndim < 0 || shape.ndim > AG_MAX_DIMS)
        return ag__error("%s: tensors have at most %d dimensions, got %d", name, AG_MAX_DIMS,
                         shape.ndim);
    int infer = -1;
    int64_t known = 1; /* product of the nonzero sizes given */
    bool zero = false;
    for (int i = 0; i < shape.ndim; i++) {
        int64_t d = shape.d[i];
        if (d == -1 && infer >= 0)
            return ag__error("%s: only one dimension can be inferred (shape %s)", name,
                             ag__shape_str(s, shape.ndim, shape.d));
        if (d == -1) {
            infer = i;
        } else if (d < 0) {
            return ag__error("%s: invalid shape dimension %lld in %s", name, (long long)d,
                             ag__shape_str(s, shape.ndim, shape.d));
        } else if (d == 0) {
            zero = true;
        } else if (known > AG__NUMEL_MAX / d) {
            return ag__error("%s: shape '%s' is invalid: numel: integer multiplication overflow",
                             name, ag__shape_str(s, shape.ndim, shape.d));
        } else {
            known *= d;
        }
    }
    if (infer >= 0 && zero && x->numel == 0)
        return ag__error("%s: cannot reshape tensor of 0 elements into shape %s because the "
                         "unspecified dimension size -1 can be any value and is ambiguous",
                         name, ag__shape_str(s, shape.ndim, shape.d));
    int64_t given = zero ? 0 : known;
    if (infer >= 0 && given != 0 && x->numel % given == 0) {
        shape.d[infer] = x->numel / given;
        given = x->numel;
    }
    if (given != x->numel) {
        char s2[AG__SHAPE_STR];
        return ag__error("%s: shape '%s' is invalid for input of size %lld (input shape %s)", name,
                         ag__shape_str(s, shape.ndim, shape.d), (long long)x->numel,
                         ag__tensor_str(s2, x));
    }
    ag_tensor *y = ag__new(name, shape.ndim, shape.d, x, x->data);
    if (!y) return NULL;
    return ag__record(y, op, x, NULL);
}

ag_tensor *ag_view(const ag_tensor *x, ag_shape shape)
{
    return view(AG__OP_VIEW, "view", x, shape);
}
ag_tensor *ag_reshape(const ag_tensor *x, ag_shape shape)
{
    return view(AG__OP_RESHAPE, "reshape", x, shape);
}

/* ------------------------------------------------------------------------------------ */
/* detach / .data: a leaf sharing x's storage, outside the graph (not recorded)          */

static ag_tensor *alias(const char *name, const ag_tensor *x)
{
    if (!ag__check(x, name, "self")) return NULL;
    ag_tensor *y = ag__new(name, x->ndim, x->shape, x, x->data);
    if (y) ag__derive(y);
    return y;
}

ag_tensor *ag_detach(const ag_tensor *x) { return alias("detach", x); }
ag_tensor *ag_data(const ag_tensor *x) { return alias("data", x); }

/* ------------------------------------------------------------------------------------ */
/* In-place writes (not recorded: see ag__inplace_begin)                                 */

/* PyTorch refuses to write t from x when their memory partly overlaps (a row of t from
 * t itself, [1, 6] from [6] over the same storage): the result would depend on the order
 * of the writes. The same memory seen with the same shape is fine, elementwise. */
AG__RARE static bool overlap_error(const char *name, const ag_tensor *t, const ag_tensor *x)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    ag__error("%s: unsupported operation: some elements of the input tensor and the written-to "
              "tensor refer to a single memory location. Please clone() the tensor before "
              "performing the operation. (shapes %s and %s)",
              name, ag__tensor_str(s1, x), ag__tensor_str(s2, t));
    return false;
}

static bool overlap_check(const char *name, const ag_tensor *t, const ag_tensor *x)
{
    if (node(t)->base != node(x)->base || !t->numel || !x->numel) return true;
    const float *t0 = t->data, *t1 = t->data + t->numel, *x0 = x->data, *x1 = x->data + x->numel;
    bool same = t0 == x0 && t1 == x1 && ag__same_shape(t, x);
    return same || t1 <= x0 || x1 <= t0 || overlap_error(name, t, x);
}

/* x broadcasts to t's shape (a shape of its own); else the error. */
AG__RARE static bool broadcasts_to(const char *name, const ag_tensor *t, const ag_tensor *x)
{
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape(name, t, x, &ndim, shape)) return false;
    if (ndim == t->ndim && !memcmp(shape, t->shape, (size_t)ndim * sizeof *shape)) return true;
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    ag__error("%s: output with shape %s doesn't match the broadcast shape %s", name,
              ag__tensor_str(s1, t), ag__shape_str(s2, ndim, shape));
    return false;
}

/* The checks of t op= x, x broadcast to t's shape; false after an error. */
static bool inplace2_check(const char *name, ag_tensor *t, const ag_tensor *x)
{
    if (!ag__check(t, name, "self") || !ag__check(x, name, "other")) return false;
    return (ag__same_shape(t, x) || broadcasts_to(name, t, x)) && overlap_check(name, t, x);
}

/* t op= x with x broadcast to t's shape. */
AG__INLINE ag_tensor *inplace2(const char *name, ag_tensor *t, const ag_tensor *x,
                               float (*f)(float, float))
{
    if (!inplace2_check(name, t, x) || !ag__inplace_begin(t, name)) return NULL;
    map2(t, t, x, f);
    return t;
}

static float second_f(float a, float b) { return AG__UNUSED(a), b; }

ag_tensor *ag_iadd_tt(ag_tensor *t, const ag_tensor *x) { return inplace2("add_", t, x, add_f); }
ag_tensor *ag_isub_tt(ag_tensor *t, const ag_tensor *x) { return inplace2("sub_", t, x, sub_f); }
ag_tensor *ag_imul_tt(ag_tensor *t, const ag_tensor *x) { return inplace2("mul_", t, x, mul_f); }
ag_tensor *ag_idiv_tt(ag_tensor *t, const ag_tensor *x) { return inplace2("div_", t, x, div_f); }

AG__FMA_CLONES static void add_scaled_flat(float *restrict o, const float *restrict v, float a,
                                           int64_t n)
{
    if (n == 1) /* a scalar parameter's step: no vector loop to set up */
        o[0] = fmaf(v[0], a, o[0]);
    else
        AG__FOR_FLAT(n, o[i] = fmaf(v[i], a, o[i]));
}
/* For the optimizers: a cloned function is called through its resolver only from its
 * own file. */
void ag__add_scaled_flat(float *restrict o, const float *restrict v, float a, int64_t n)
{
    add_scaled_flat(o, v, a, n);
}

/* add_scaled_'s loop for an x broadcast to t's shape (out of line: the flat path, taken by
 * every optimizer step, keeps a small frame). */
static AG__OUTLINE void add_scaled_bcast(ag_tensor *t, const ag_tensor *x, float a)
{
    float *o = t->data;
    const float *v = x->data;
    int64_t p[AG_MAX_DIMS], sx[AG_MAX_DIMS];
    ag__pad(t->ndim, t->shape, p);
    ag__bstrides(x, sx);
    AG__FOR_BCAST(p, sx, sx, {
        o[io] = fmaf(v[ia], a, o[io]);
        AG__UNUSED(ib);
    });
}

/* t.add_(x, alpha=a): t + a x with one rounding, as PyTorch's CPU add_ computes it (a
 * fused multiply-add, as its SGD step's param.add_(d_p, alpha=-lr) and agrad's do). */
ag_tensor *ag_add_scaled_(ag_tensor *t, const ag_tensor *x, double alpha)
{
    if (!inplace2_check("add_", t, x) || !ag__inplace_begin(t, "add_")) return NULL;
    float a = (float)alpha, *o = t->data;
    const float *v = x->data;
    if (x->numel != t->numel) /* x broadcast */
        add_scaled_bcast(t, x, a);
    else if (o != v) /* no storage in common (overlap_check) */
        add_scaled_flat(o, v, a, t->numel);
    else /* t.add_(t, alpha=a), which the flat loop's restrict forbids */
        for (int64_t i = 0; i < t->numel; i++) o[i] = fmaf(o[i], a, o[i]);
    return t;
}

/* t op= a number */
#define INPLACE_SCALAR(fn, name, f)                                                                \
    ag_tensor *fn(ag_tensor *t, double x)                                                          \
    {                                                                                              \
        if (!ag__check(t, name, "self") || !ag__inplace_begin(t, name)) return NULL;               \
        float v = (float)x;                                                                        \
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = f(t->data[i], v);                      \
        return t;                                                                                  \
    }
INPLACE_SCALAR(ag_iadd_ts, "add_", add_f)
INPLACE_SCALAR(ag_isub_ts, "sub_", sub_f)
INPLACE_SCALAR(ag_imul_ts, "mul_", mul_f)
INPLACE_SCALAR(ag_idiv_ts, "div_", div_f)

/* ------------------------------------------------------------------------------------ */
/* copy_: t = src (broadcast), in place    dt/dsrc = identity, summed to src's shape     */
/* When src requires grad, PyTorch records the copy (CopyBackwards) and t joins the graph. */
/* agrad's graph points from each tensor to older ones, which the release rule frees     */
/* later, so it records a copy only into a tensor of its own storage made after src, and */
/* refuses the rest clearly rather than drop the gradient.                               */

void ag__copy_backward(ag_tensor *t) { ag__accum(node(t)->src[0], t, node(t)->gbuf); }

ag_tensor *ag_copy_(ag_tensor *t, const ag_tensor *src)
{
    if (!inplace2_check("copy_", t, src)) return NULL;
    bool record = src->requires_grad && ag__grad_mode() && !t->requires_grad;
    char s1[AG__SHAPE_STR];
    if (record && node(t)->base != t)
        return ag__error("copy_: src requires grad, and agrad cannot record a copy into a view "
                         "(self of shape %s shares another tensor's storage; PyTorch records "
                         "it on that tensor, CopySlices): copy into a tensor of its own",
                         ag__tensor_str(s1, t));
    if (record && node(t)->serial < node(src)->serial) {
        char s2[AG__SHAPE_STR];
        return ag__error("copy_: src (shape %s) requires grad and was made after self (shape "
                         "%s); agrad records a copy only into a tensor made after its source, "
                         "so that releasing the source cannot leave self's graph dangling: "
                         "make self after src, or copy under no_grad",
                         ag__tensor_str(s2, src), ag__tensor_str(s1, t));
    }
    if (!ag__inplace_begin(t, "copy_")) return NULL;
    map2(t, t, src, second_f);
    return record ? ag__record(t, AG__OP_COPY, src, NULL) : t;
}

ag_tensor *ag_fill_(ag_tensor *t, double value)
{
    if (!ag__check(t, "fill_", "self") || !ag__inplace_begin(t, "fill_")) return NULL;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)value;
    return t;
}

ag_tensor *ag_zero_(ag_tensor *t)
{
    if (!ag__check(t, "zero_", "self") || !ag__inplace_begin(t, "zero_")) return NULL;
    if (t->numel == 1) /* a scalar's ->grad, every step: a store, where memset is a call */
        t->data[0] = 0.0f;
    else
        memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

ag_tensor *ag_set_data(ag_tensor *t, const ag_tensor *src)
{
    if (!ag__check(t, "set_data", "self") || !ag__check(src, "set_data", "data")) return NULL;
    if (!ag__same_shape(src, t)) {
        char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
        return ag__error("set_data: new data of shape %s for a tensor of shape %s; agrad "
                         "keeps a tensor's shape",
                         ag__tensor_str(s1, src), ag__tensor_str(s2, t));
    }
    /* `.data =` is how parameters are updated, so it bypasses the leaf rule; the version
     * still moves, so a retained graph that saved t's old values refuses to backward. */
    memmove(t->data, src->data, (size_t)t->numel * sizeof(float));
    ag__bump_version(t);
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* The op table                                                                          */
