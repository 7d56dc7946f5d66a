/* Elementwise functions of one tensor: exp, log, sqrt, abs, relu, sigmoid, tanh, clamp,
 * and ag_map for a function the user supplies with its derivative. Each op keeps its
 * forward and its backward side by side.
 *
 * The derivatives are PyTorch's (tools/autograd/derivatives.yaml), evaluated in the
 * same order of operations, so that the same forward values give the same float
 * gradients. The forward values come from the C library's float functions; PyTorch's
 * vectorised kernels use SLEEF instead, within an ulp or two of them (see
 * tests/test_unary.c for the measured differences). */
#include "elementwise.h"

#include <float.h>
#include <math.h>

/* ------------------------------------------------------------------------------------ */
/* exp: y = e^x                            dy/dx = y                                     */

static float exp_f(float x) { return expf(x); }
bool ag__exp_forward(ag_tensor *y) { return forward1(y, exp_f); }
RULE1(exp_dx, x) { return g * y; }
void ag__exp_backward(ag_tensor *y) { backward1(y, exp_dx); }

ag_tensor *ag_exp(const ag_tensor *x) { return unary(AG__OP_EXP, "exp", x, exp_f); }

/* ------------------------------------------------------------------------------------ */
/* log: y = ln x                           dy/dx = 1 / x                                 */
/* log(0) = -inf and log(x < 0) = nan, and the gradient at 0 is inf, all without an      */
/* error, as in PyTorch.                                                                 */

static float log_f(float x) { return logf(x); }
bool ag__log_forward(ag_tensor *y) { return forward1(y, log_f); }
RULE1(log_dx, x) { return g / x; }
void ag__log_backward(ag_tensor *y) { backward1(y, log_dx); }

ag_tensor *ag_log(const ag_tensor *x) { return unary(AG__OP_LOG, "log", x, log_f); }

/* ------------------------------------------------------------------------------------ */
/* sqrt: y = x^(1/2)                       dy/dx = 1 / (2 y)                             */

static float sqrt_f(float x) { return sqrtf(x); }
bool ag__sqrt_forward(ag_tensor *y) { return forward1(y, sqrt_f); }
RULE1(sqrt_dx, x) { return g / (2.0f * y); }
void ag__sqrt_backward(ag_tensor *y) { backward1(y, sqrt_dx); }

ag_tensor *ag_sqrt(const ag_tensor *x) { return unary(AG__OP_SQRT, "sqrt", x, sqrt_f); }

/* ------------------------------------------------------------------------------------ */
/* abs: y = |x|                            dy/dx = sgn(x), 0 at 0 (and at nan)           */

static float abs_f(float x) { return fabsf(x); }
bool ag__abs_forward(ag_tensor *y) { return forward1(y, abs_f); }
/* PyTorch multiplies by sgn(x) rather than selecting g or -g, so that an inf or nan
 * gradient still turns into nan at x == 0. */
RULE1(abs_dx, x) { return g * (float)((0.0f < x) - (x < 0.0f)); }
void ag__abs_backward(ag_tensor *y) { backward1(y, abs_dx); }

ag_tensor *ag_abs(const ag_tensor *x) { return unary(AG__OP_ABS, "abs", x, abs_f); }

/* ------------------------------------------------------------------------------------ */
/* relu: y = max(x, 0)                     dy/dx = 1 where y > 0, else 0                 */
/* PyTorch's relu is clamp_min(x, 0): nan stays nan and -0 stays -0. Its backward is     */
/* threshold_backward on the result, which zeroes where y <= 0: where y is nan the       */
/* gradient passes.                                                                      */

static float relu_f(float x) { return x < 0.0f ? 0.0f : x; }
bool ag__relu_forward(ag_tensor *y) { return forward1(y, relu_f); }
RULE1(relu_dx, x) { return y <= 0.0f ? 0.0f : g; }
void ag__relu_backward(ag_tensor *y) { backward1(y, relu_dx); }

ag_tensor *ag_relu(const ag_tensor *x) { return unary(AG__OP_RELU, "relu", x, relu_f); }

/* ------------------------------------------------------------------------------------ */
/* sigmoid: y = 1 / (1 + e^-x)             dy/dx = (1 - y) y                             */
/* Below x = -88.7, e^-x overflows and y is 0, as in PyTorch. The gradient is            */
/* g * (1 - y) * y, evaluated left to right as PyTorch's sigmoid_backward does.          */

static float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }
bool ag__sigmoid_forward(ag_tensor *y) { return forward1(y, sigmoid_f); }
RULE1(sigmoid_dx, x) { return g * (1.0f - y) * y; }
void ag__sigmoid_backward(ag_tensor *y) { backward1(y, sigmoid_dx); }

ag_tensor *ag_sigmoid(const ag_tensor *x) { return unary(AG__OP_SIGMOID, "sigmoid", x, sigmoid_f); }

/* ------------------------------------------------------------------------------------ */
/* tanh: y = tanh x                        dy/dx = 1 - y^2                               */
/* PyTorch 1.13's tanh_backward (its AVX2 build, scalar and vector loops alike) rounds   */
/* 1 - y*y once, as a fused multiply-add; fmaf gives the same bits on any machine.       */

static float tanh_f(float x) { return tanhf(x); }
bool ag__tanh_forward(ag_tensor *y) { return forward1(y, tanh_f); }
RULE1(tanh_dx, x) { return g * fmaf(-y, y, 1.0f); }
void ag__tanh_backward(ag_tensor *y) { backward1(y, tanh_dx); }

ag_tensor *ag_tanh(const ag_tensor *x) { return unary(AG__OP_TANH, "tanh", x, tanh_f); }

/* ------------------------------------------------------------------------------------ */
/* clamp: y = min(max(x, lo), hi)          dy/dx = 1 where lo <= x <= hi, else 0         */
/* PyTorch's rules: a nan x stays nan; a nan bound makes every value nan; lo > hi gives  */
/* hi everywhere, and then no gradient passes, since no x lies in [lo, hi]. The          */
/* comparisons are in float, against the bounds rounded to float (arg.clamp).           */

static float clamp_f(float x, float lo, float hi)
{
    float r = (x < lo || isnan(lo)) ? lo : x;
    return (r > hi || isnan(hi)) ? hi : r;
}

static void clamp_into(ag_tensor *y, const ag_tensor *x, float lo, float hi)
{
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = clamp_f(x->data[i], lo, hi);
}
bool ag__clamp_forward(ag_tensor *y)
{
    clamp_into(y, node(y)->src[0], node(y)->arg.clamp.lo, node(y)->arg.clamp.hi);
    return true;
}

void ag__clamp_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx) return;
    float lo = node(y)->arg.clamp.lo, hi = node(y)->arg.clamp.hi;
    for (int64_t i = 0; i < y->numel; i++) {
        float v = x->data[i];
        dx[i] += (v >= lo && v <= hi) ? node(y)->gbuf[i] : 0.0f;
    }
}

/* A bound as the float the comparisons use; PyTorch refuses a finite one that float
 * cannot hold rather than turn it into an infinity. */
static bool clamp_bound(const ag_tensor *x, const char *role, double b, float *out)
{
    if (isfinite(b) && fabs(b) > FLT_MAX) {
        char s[AG__SHAPE_STR];
        ag__error("clamp: value cannot be converted to type float without overflow (%s = %g, "
                  "input shape %s)",
                  role, b, ag__tensor_str(s, x));
        return false;
    }
    *out = (float)b;
    return true;
}

ag_tensor *ag_clamp(const ag_tensor *x, double min, double max)
{
    float lo, hi;
    if (!ag__check(x, "clamp", "self")) return NULL;
    if (!clamp_bound(x, "min", min, &lo) || !clamp_bound(x, "max", max, &hi)) return NULL;
    ag_tensor *y = ag__new_like("clamp", x);
    if (!y) return NULL;
    clamp_into(y, x, lo, hi);
    node(y)->arg.clamp.lo = lo;
    node(y)->arg.clamp.hi = hi;
    return ag__record(y, AG__OP_CLAMP, x, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* map: y = f(x)                           dy/dx = df(x), both given by the user         */

void ag__map_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    float *dx = ag__grad_of(x);
    if (!dx) return;
    float (*df)(float) = node(y)->arg.map.df;
    for (int64_t i = 0; i < y->numel; i++) dx[i] += node(y)->gbuf[i] * df(x->data[i]);
}

ag_tensor *ag_map(const ag_tensor *x, float (*f)(float), float (*df)(float), const char *name)
{
    if (!ag__check(x, "map", "self")) return NULL;
    if (!f || !df || !name)
        return ag__error("map: argument %s is NULL", !f ? "f" : !df ? "df" : "name");
    ag_tensor *y = ag__new_like("map", x);
    if (!y) return NULL;
    for (int64_t i = 0; i < x->numel; i++) y->data[i] = f(x->data[i]);
    node(y)->arg.map.df = df;
    node(y)->arg.map.name = name;
    return ag__record(y, AG__OP_MAP, x, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* The scalar forms of the functions above (ag__scalar_of), for a replay of a graph of    */
/* one-element tensors: each function and its rule, called once rather than folded into   */
/* a loop. clamp (two bounds) and map (the user's functions, kept per node) have none.     */

SCALAR1(exp_s, exp_f)
SCALAR1(log_s, log_f)
SCALAR1(sqrt_s, sqrt_f)
SCALAR1(abs_s, abs_f)
SCALAR1(relu_s, relu_f)
SCALAR1(sigmoid_s, sigmoid_f)
SCALAR1(tanh_s, tanh_f)

/* clang-format off */
static const ag__scalar_op scalar_ops[AG__OP_COUNT] = {
    [AG__OP_EXP] = {exp_s, {exp_dx}},
    [AG__OP_LOG] = {log_s, {log_dx}},
    [AG__OP_SQRT] = {sqrt_s, {sqrt_dx}},
    [AG__OP_ABS] = {abs_s, {abs_dx}},
    [AG__OP_RELU] = {relu_s, {relu_dx}},
    [AG__OP_SIGMOID] = {sigmoid_s, {sigmoid_dx}},
    [AG__OP_TANH] = {tanh_s, {tanh_dx}},
};
/* clang-format on */

const ag__scalar_op *ag__unary_scalar_of(int op)
{
    return scalar_ops[op].f ? &scalar_ops[op] : NULL;
}
