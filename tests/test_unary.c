/* The elementwise functions of one tensor (exp, log, sqrt, abs, relu, sigmoid, tanh,
 * clamp, ag_map): forward values, gradients and grad_fn names against PyTorch
 * (tests/ref/unary_ref.h, made by tools/gen_ref_unary.py), gradcheck on every op, a
 * planted wrong derivative caught by gradcheck, and the errors.
 *
 * Tolerances. Forward values, in ulps of PyTorch's: what separates the C library's float
 * functions from the SLEEF ones of PyTorch's vectorised kernels, measured over 4M inputs
 * in [-100, 100] and e^[-40, 40]: exp, log and sin 1 ulp, tanh 2, sigmoid 4 (against
 * PyTorch's scalar loop, which tensors under 16 elements take, sigmoid is bit for bit
 * the same). sqrt, abs, relu and clamp are exact, signed zeros included.
 * Gradients: where the forward value is PyTorch's to the bit, the gradient must be too.
 * Where it is not, the difference in y carries over: 2 ulps for exp (g y) and for sin's
 * cos; for sigmoid and tanh, whose derivatives subtract y from 1, the bound is an
 * absolute |d(dy/dx)/dy| |dy| + rounding: 2.5 and 3 FLT_EPSILON |upstream|. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agrad_test.h"

#include "ref/unary_ref.h"

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

/* op (a name of the reference cases) applied to x; lo and hi are clamp's bounds. */
static ag_tensor *apply(const char *op, ag_tensor *x, double lo, double hi)
{
    if (!strcmp(op, "exp")) return ag_exp(x);
    if (!strcmp(op, "log")) return ag_log(x);
    if (!strcmp(op, "sqrt")) return ag_sqrt(x);
    if (!strcmp(op, "abs")) return ag_abs(x);
    if (!strcmp(op, "relu")) return ag_relu(x);
    if (!strcmp(op, "sigmoid")) return ag_sigmoid(x);
    if (!strcmp(op, "tanh")) return ag_tanh(x);
    if (!strcmp(op, "clamp")) return ag_clamp(x, lo, hi);
    if (!strcmp(op, "map_sin")) return ag_map(x, sinf, cosf, "SinBackward0");
    cr_assert_fail("unknown op %s", op);
    return NULL;
}

typedef struct tolerance {
    const char *op;
    int64_t out_ulps, grad_ulps;
    double grad_abs;    /* times |upstream| */
    bool grad_from_x_y; /* the gradient is a function of x, y and upstream alone */
} tolerance;

static const tolerance tolerances[] = {
    {"exp", 1, 2, 0, true},
    {"log", 1, 0, 0, true},
    {"sqrt", 0, 0, 0, true},
    {"abs", 0, 0, 0, true},
    {"relu", 0, 0, 0, true},
    {"sigmoid", 4, 2, 2.5 * FLT_EPSILON, true},
    {"tanh", 2, 2, 3 * FLT_EPSILON, true},
    {"clamp", 0, 0, 0, true},
    {"map_sin", 1, 2, 0, false}, /* cosf against PyTorch's SLEEF cos */
};
enum { NOPS = sizeof tolerances / sizeof tolerances[0] };

static int op_index(const char *op)
{
    for (int k = 0; k < NOPS; k++)
        if (!strcmp(tolerances[k].op, op)) return k;
    cr_assert_fail("no tolerance for op %s", op);
    return 0;
}

/* The position of f on a line where neighbouring floats are 1 apart; -0 is 1 below +0,
 * so that an exact comparison also checks the sign of zero. */
static int64_t ulp_pos(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? -(int64_t)(i & INT32_MAX) - 1 : i;
}

/* Distance in ulps; nan equals nan (of either sign) and nothing else. */
static int64_t ulp_diff(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    return llabs(ulp_pos(a) - ulp_pos(b));
}

/* A leaf requiring grad holding the case's input. */
static ag_tensor *case_input(const unary_case *c)
{
    ag_tensor *x = ag_zeros(shape_of(c->ndim, c->shape));
    cr_assert(x, "%s: zeros failed: %s", c->name, ag_last_error());
    memcpy(x->data, c->x, (size_t)x->numel * sizeof(float));
    return ag_requires_grad_(x, true);
}

Test(unary, forward_matches_pytorch)
{
    int64_t worst[NOPS] = {0};
    for (size_t k = 0; k < unary_ncases; k++) {
        const unary_case *c = &unary_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *x = case_input(c);
        ag_tensor *y = apply(c->op, x, c->lo, c->hi);
        cr_assert(y, "%s: op failed: %s", c->name, ag_last_error());
        cr_assert_eq(y->ndim, c->ndim, "%s: ndim %d, PyTorch %d", c->name, y->ndim, c->ndim);
        for (int i = 0; i < c->ndim; i++)
            cr_assert_eq(y->shape[i], c->shape[i], "%s: size %d is %lld, PyTorch %lld", c->name, i,
                         (long long)y->shape[i], (long long)c->shape[i]);
        int t = op_index(c->op);
        for (int64_t i = 0; i < y->numel; i++) {
            int64_t d = ulp_diff(y->data[i], c->out[i]);
            cr_assert(d <= tolerances[t].out_ulps,
                      "%s: out[%lld] = %.9g at x = %.9g, PyTorch %.9g (%lld ulps apart)", c->name,
                      (long long)i, (double)y->data[i], (double)c->x[i], (double)c->out[i],
                      (long long)d);
            if (d > worst[t]) worst[t] = d;
        }
        ag_release(m);
    }
    for (int t = 0; t < NOPS; t++)
        cr_log_info("%s: forward within %lld ulps of PyTorch", tolerances[t].op,
                    (long long)worst[t]);
    test_finish();
}

/* Where agrad's forward value is PyTorch's to the bit, the gradient must be too: that
 * checks that each derivative is PyTorch's expression, evaluated in its order. Elsewhere
 * the difference in y carries over (the tolerances above). */
Test(unary, gradients_match_pytorch)
{
    int64_t exact = 0, near = 0, worst[NOPS] = {0};
    double worst_abs[NOPS] = {0}; /* in FLT_EPSILON |upstream|, where beyond grad_ulps */
    for (size_t k = 0; k < unary_ncases; k++) {
        const unary_case *c = &unary_cases[k];
        ag_mark m = ag_mark_now();
        ag_tensor *x = case_input(c);
        ag_tensor *y = apply(c->op, x, c->lo, c->hi);
        cr_assert(y, "%s: op failed: %s", c->name, ag_last_error());
        ag_tensor *up = ag_tensor_from(c->upstream, shape_of(c->ndim, c->shape), false);
        cr_assert(ag_backward(ag_sum(ag_mul(y, up))), "%s: backward failed: %s", c->name,
                  ag_last_error());
        const tolerance *t = &tolerances[op_index(c->op)];
        for (int64_t i = 0; i < x->numel; i++) {
            float got = x->grad->data[i], want = c->grad[i];
            bool same_y = t->grad_from_x_y && ulp_diff(y->data[i], c->out[i]) == 0;
            int64_t ulps = same_y ? 0 : t->grad_ulps;
            double slack = same_y ? 0 : t->grad_abs * fabs((double)c->upstream[i]);
            cr_assert(ulp_diff(got, want) <= ulps || fabs((double)got - want) <= slack,
                      "%s: grad[%lld] = %.9g at x = %.9g (y %s PyTorch's), upstream %.9g; "
                      "PyTorch %.9g",
                      c->name, (long long)i, (double)got, (double)c->x[i],
                      same_y ? "equal to" : "differs from", (double)c->upstream[i], (double)want);
            if (same_y) {
                exact++;
            } else {
                near++;
                int64_t d = ulp_diff(got, want);
                double a = fabs((double)got - want) / (FLT_EPSILON * fabs((double)c->upstream[i]));
                if (d <= t->grad_ulps && d > worst[t - tolerances]) worst[t - tolerances] = d;
                if (d > t->grad_ulps && a > worst_abs[t - tolerances])
                    worst_abs[t - tolerances] = a;
            }
        }
        ag_release(m);
    }
    cr_log_info("%lld gradients checked bit for bit, %lld within tolerance", (long long)exact,
                (long long)near);
    for (int t = 0; t < NOPS; t++)
        cr_log_info("%s: where y differs, gradient within %lld ulps of PyTorch, or %.3g "
                    "FLT_EPSILON |upstream|",
                    tolerances[t].op, (long long)worst[t], worst_abs[t]);
    test_finish();
}

Test(unary, grad_fn_names_match_pytorch)
{
    for (size_t k = 0; k < unary_ncases; k++) {
        const unary_case *c = &unary_cases[k];
        if (!strcmp(c->op, "map_sin")) continue; /* ag_map: the name is the user's */
        ag_tensor *y = apply(c->op, case_input(c), c->lo, c->hi);
        const char *name = ag_grad_fn_name(y);
        cr_assert(name && !strcmp(name, c->grad_fn), "%s: grad_fn %s, PyTorch %s", c->name,
                  name ? name : "NULL", c->grad_fn);
    }
    test_finish();
}

Test(unary, map_grad_fn_is_the_name_given)
{
    ag_tensor *x = ag_tensor_from((float[]){0.5f, 1.0f}, AG_SHAPE(2), true);
    ag_tensor *y = ag_map(x, sinf, cosf, "MySinBackward");
    const char *name = ag_grad_fn_name(y);
    cr_assert(name && !strcmp(name, "MySinBackward"), "grad_fn %s, expected MySinBackward",
              name ? name : "NULL");
    char *repr = ag_repr(y);
    cr_assert(repr && strstr(repr, "grad_fn=<MySinBackward>"), "repr: %s", repr ? repr : "NULL");
    free(repr);
    test_finish();
}

Test(unary, results_record_nothing_without_grad)
{
    static const char *ops[] = {"exp",     "log",  "sqrt",  "abs",    "relu",
                                "sigmoid", "tanh", "clamp", "map_sin"};
    ag_tensor *plain = ag_tensor_from((float[]){0.5f, 2.0f}, AG_SHAPE(2), false);
    ag_tensor *wants = ag_tensor_from((float[]){0.5f, 2.0f}, AG_SHAPE(2), true);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        ag_tensor *y = apply(ops[k], plain, 0.0, 1.0);
        cr_assert(y && ag_is_leaf(y) && !y->requires_grad && !ag_grad_fn_name(y),
                  "%s of a tensor without grad: a leaf without grad expected", ops[k]);
        AG_NO_GRAD { y = apply(ops[k], wants, 0.0, 1.0); }
        cr_assert(y && ag_is_leaf(y) && !y->requires_grad && !ag_grad_fn_name(y),
                  "%s under no_grad: a leaf without grad expected", ops[k]);
    }
    test_finish();
}

/* PyTorch: log of [0, -1, 1] is [-inf, nan, 0] and the gradient of its sum is
 * [inf, -1, 1]; sqrt of [0, -1, 4] is [0, nan, 2] with gradient [inf, nan, 0.25]. */
Test(unary, log_at_zero_gives_minus_inf_like_pytorch_not_a_crash)
{
    ag_tensor *x = ag_tensor_from((float[]){0.0f, -1.0f, 1.0f}, AG_SHAPE(3), true);
    ag_tensor *y = ag_log(x);
    cr_assert(y, "log failed: %s", ag_last_error());
    cr_assert(isinf(y->data[0]) && y->data[0] < 0, "log(0) = %g, PyTorch -inf", (double)y->data[0]);
    cr_assert(isnan(y->data[1]), "log(-1) = %g, PyTorch nan", (double)y->data[1]);
    cr_assert(y->data[2] == 0.0f, "log(1) = %g", (double)y->data[2]);
    cr_assert(ag_backward(ag_sum(y)), "backward failed: %s", ag_last_error());
    const float *g = x->grad->data;
    cr_assert(isinf(g[0]) && g[0] > 0 && g[1] == -1.0f && g[2] == 1.0f,
              "grad [%g, %g, %g], PyTorch [inf, -1, 1]", (double)g[0], (double)g[1], (double)g[2]);

    ag_tensor *s = ag_tensor_from((float[]){0.0f, -1.0f, 4.0f}, AG_SHAPE(3), true);
    y = ag_sqrt(s);
    cr_assert(y->data[0] == 0.0f && isnan(y->data[1]) && y->data[2] == 2.0f,
              "sqrt [%g, %g, %g], PyTorch [0, nan, 2]", (double)y->data[0], (double)y->data[1],
              (double)y->data[2]);
    cr_assert(ag_backward(ag_sum(y)), "backward failed: %s", ag_last_error());
    g = s->grad->data;
    cr_assert(isinf(g[0]) && g[0] > 0 && isnan(g[1]) && g[2] == 0.25f,
              "grad [%g, %g, %g], PyTorch [inf, nan, 0.25]", (double)g[0], (double)g[1],
              (double)g[2]);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* gradcheck                                                                             */

typedef struct op_spec {
    const char *op;
    double lo, hi;
} op_spec;

static ag_tensor *apply_spec(ag_tensor *const *in, void *userdata)
{
    const op_spec *s = userdata;
    return apply(s->op, in[0], s->lo, s->hi);
}

/* Points at least 0.07 from the kinks of abs, relu (0) and clamp (the bounds below),
 * beyond the +-2h = 0.016 that gradcheck's stencil reaches; positive for log and sqrt. */
static ag_tensor *points(const char *op, ag_shape shape)
{
    ag_tensor *x = ag_zeros(shape);
    for (int64_t i = 0; i < x->numel; i++) {
        float v = 0.2f + 0.23f * (float)(i % 7);
        if (!strcmp(op, "log") || !strcmp(op, "sqrt"))
            v += 0.1f;
        else
            v = i % 2 ? -v : v;
        if (!strcmp(op, "exp") || !strcmp(op, "sigmoid") || !strcmp(op, "tanh")) v *= 2.0f;
        x->data[i] = v;
    }
    return ag_requires_grad_(x, true);
}

Test(unary, gradcheck_passes_for_every_op)
{
    static const op_spec specs[] = {
        {"exp", 0, 0},
        {"log", 0, 0},
        {"sqrt", 0, 0},
        {"abs", 0, 0},
        {"relu", 0, 0},
        {"sigmoid", 0, 0},
        {"tanh", 0, 0},
        {"map_sin", 0, 0},
        {"clamp", -0.5, 0.5},
        {"clamp", 0, INFINITY},
        {"clamp", -INFINITY, 1.0},
        {"clamp", 1.0, -1.0}, /* max everywhere: a zero derivative */
    };
    const ag_shape shapes[] = {{0, {0}},    AG_SHAPE(5),   AG_SHAPE(2, 3), AG_SHAPE(2, 1, 3, 2),
                               AG_SHAPE(0), AG_SHAPE(4, 8)};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            ag_mark m = ag_mark_now();
            ag_tensor *x = points(specs[k].op, shapes[s]);
            ag_gradcheck_result r;
            bool ok = ag_gradcheck(apply_spec, &x, 1, (void *)&specs[k], NULL, &r);
            cr_assert(ok && r.passed, "%s [%g, %g] on %d dims (%lld elements): %s %s", specs[k].op,
                      specs[k].lo, specs[k].hi, shapes[s].ndim, (long long)x->numel, r.report,
                      ag_last_error());
            ag_release(m);
        }
    }
    test_finish();
}

/* ag_map's f and df, for gradcheck. */
typedef struct map_spec {
    float (*f)(float);
    float (*df)(float);
} map_spec;

static ag_tensor *apply_map(ag_tensor *const *in, void *userdata)
{
    const map_spec *s = userdata;
    return ag_map(in[0], s->f, s->df, "UserBackward");
}

static float cube(float x) { return x * x * x; }
static float cube_d(float x) { return 3.0f * x * x; }

Test(unary, map_with_the_right_derivative_passes_gradcheck)
{
    static const map_spec maps[] = {{sinf, cosf}, {cube, cube_d}, {expf, expf}};
    static const char *names[] = {"sin", "cube", "exp"};
    ag_tensor *x = ag_tensor_from((float[]){0.3f, -1.2f, 2.5f, 0.0f, -3.0f}, AG_SHAPE(5), true);
    for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++) {
        ag_gradcheck_result r;
        bool ok = ag_gradcheck(apply_map, &x, 1, (void *)&maps[k], NULL, &r);
        cr_assert(ok && r.passed, "map %s: %s %s", names[k], r.report, ag_last_error());
    }
    test_finish();
}

/* The planted wrong derivatives: cos(x) + 0.1 for sin is off by 0.1 everywhere, which
 * exceeds the tolerance 1e-3 + 1e-2 |cos x| most where cos x is 0, at x = pi/2 (element
 * 1); the sign flip above x = 2 is wrong at element 2 only. */
static float sin_d_off(float x) { return cosf(x) + 0.1f; }
static float sin_d_flipped_above_2(float x) { return x > 2.0f ? -cosf(x) : cosf(x); }

Test(unary, map_with_a_wrong_derivative_fails_gradcheck_naming_the_element)
{
    static const map_spec wrong[] = {{sinf, sin_d_off}, {sinf, sin_d_flipped_above_2}};
    static const int64_t worst[] = {1, 2};
    ag_tensor *x =
        ag_tensor_from((float[]){0.3f, 1.5707964f, 2.8f, -0.4f, -2.9f}, AG_SHAPE(5), true);
    for (int k = 0; k < 2; k++) {
        ag_gradcheck_result r;
        ag_clear_error();
        cr_assert_not(ag_gradcheck(apply_map, &x, 1, (void *)&wrong[k], NULL, &r),
                      "wrong derivative %d passed: %s", k, r.report);
        cr_assert_str_empty(ag_last_error(), "a failed check is not an error: %s", ag_last_error());
        cr_assert_not(r.passed, "result.passed is true: %s", r.report);
        cr_assert_eq(r.input, 0, "worst input %d: %s", r.input, r.report);
        cr_assert_eq(r.input_index, worst[k], "worst element %lld, expected %lld: %s",
                     (long long)r.input_index, (long long)worst[k], r.report);
        cr_assert_eq(r.output_index, worst[k], "worst output %lld, expected %lld: %s",
                     (long long)r.output_index, (long long)worst[k], r.report);
        float v = x->data[worst[k]];
        double right = cos((double)v), planted = wrong[k].df(v);
        cr_assert(fabs(r.numerical - right) < 1e-4, "numerical %.8g, cos(x) = %.8g: %s",
                  r.numerical, right, r.report);
        cr_assert(fabs(r.analytical - planted) < 1e-6, "analytical %.8g, planted %.8g: %s",
                  r.analytical, planted, r.report);
        char where[64];
        snprintf(where, sizeof where, "d output[%lld] / d input 0[%lld]", (long long)worst[k],
                 (long long)worst[k]);
        cr_assert(strstr(r.report, "FAILED") && strstr(r.report, where),
                  "the report should name %s: %s", where, r.report);
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

typedef ag_tensor *(*unary_fn)(const ag_tensor *);
static ag_tensor *clamp_01(const ag_tensor *x) { return ag_clamp(x, 0.0, 1.0); }
static ag_tensor *map_sin(const ag_tensor *x) { return ag_map(x, sinf, cosf, "SinBackward0"); }

static const struct {
    const char *name;
    unary_fn fn;
} named_ops[] = {{"exp", ag_exp},   {"log", ag_log},     {"sqrt", ag_sqrt},
                 {"abs", ag_abs},   {"relu", ag_relu},   {"sigmoid", ag_sigmoid},
                 {"tanh", ag_tanh}, {"clamp", clamp_01}, {"map", map_sin}};
enum { NNAMED = sizeof named_ops / sizeof named_ops[0] };

Test(unary, null_and_released_arguments_are_errors)
{
    ag_set_error_handler(NULL, NULL);
    char want[128];
    for (int k = 0; k < NNAMED; k++) {
        ag_clear_error();
        ag_tensor *y = named_ops[k].fn(NULL);
        snprintf(want, sizeof want, "%s: argument self is NULL", named_ops[k].name);
        cr_assert_null(y, "%s(NULL) returned a tensor", named_ops[k].name);
        cr_assert_str_eq(ag_last_error(), want, "message \"%s\", expected \"%s\"", ag_last_error(),
                         want);
    }
    /* An error inside an expression is reported once, by the op that failed. */
    ag_clear_error();
    cr_assert_null(ag_exp(ag_tanh(ag_log(NULL))), "exp(tanh(log(NULL))) returned a tensor");
    cr_assert_str_eq(ag_last_error(), "log: argument self is NULL", "message \"%s\"",
                     ag_last_error());

    ag_mark m = ag_mark_now();
    ag_tensor *gone = ag_ones(AG_SHAPE(2));
    ag_release(m);
    for (int k = 0; k < NNAMED; k++) {
        ag_clear_error();
        snprintf(want, sizeof want, "%s: argument self is a released tensor", named_ops[k].name);
        cr_assert_null(named_ops[k].fn(gone), "%s of a released tensor returned a tensor",
                       named_ops[k].name);
        cr_assert(!strncmp(ag_last_error(), want, strlen(want)),
                  "message \"%s\", expected \"%s...\"", ag_last_error(), want);
    }
    test_finish();
}

Test(unary, map_without_a_function_is_an_error)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_ones(AG_SHAPE(2));
    size_t live = ag_memory_stats().live_tensors;
    static const char *msgs[] = {"map: argument f is NULL", "map: argument df is NULL",
                                 "map: argument name is NULL"};
    for (int k = 0; k < 3; k++) {
        ag_clear_error();
        ag_tensor *y =
            ag_map(x, k == 0 ? NULL : sinf, k == 1 ? NULL : cosf, k == 2 ? NULL : "SinBackward0");
        cr_assert_null(y, "map with a NULL argument returned a tensor");
        cr_assert_str_eq(ag_last_error(), msgs[k], "message \"%s\", expected \"%s\"",
                         ag_last_error(), msgs[k]);
    }
    cr_assert_eq(ag_memory_stats().live_tensors, live, "%zu live tensors, %zu before",
                 ag_memory_stats().live_tensors, live);
    test_finish();
}

/* PyTorch: x.clamp(1e39) raises "value cannot be converted to type float without
 * overflow"; an infinite bound is fine (it is no bound). */
Test(unary, clamp_bound_beyond_float_is_an_error)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_ones(AG_SHAPE(2, 3));
    ag_clear_error();
    cr_assert_null(ag_clamp(x, 1e39, INFINITY), "clamp(1e39) returned a tensor");
    cr_assert_str_eq(ag_last_error(),
                     "clamp: value cannot be converted to type float without overflow (min = "
                     "1e+39, input shape [2, 3])",
                     "message \"%s\"", ag_last_error());
    ag_clear_error();
    cr_assert_null(ag_clamp(x, -INFINITY, -3.5e38), "clamp(max=-3.5e38) returned a tensor");
    cr_assert_str_eq(ag_last_error(),
                     "clamp: value cannot be converted to type float without overflow (max = "
                     "-3.5e+38, input shape [2, 3])",
                     "message \"%s\"", ag_last_error());
    ag_clear_error();
    ag_tensor *y = ag_clamp(x, -FLT_MAX, FLT_MAX);
    cr_assert(y && y->data[0] == 1.0f, "clamp(-FLT_MAX, FLT_MAX) failed: %s", ag_last_error());
    test_finish();
}

/* Every one of these ops saves a tensor for its backward (its input or its result), so
 * PyTorch refuses a second backward through it without retain_graph. */
Test(unary, second_backward_is_an_error)
{
    ag_set_error_handler(NULL, NULL);
    for (int k = 0; k < NNAMED; k++) {
        ag_tensor *x = ag_tensor_from((float[]){0.5f, 2.0f}, AG_SHAPE(2), true);
        ag_tensor *y = named_ops[k].fn(x);
        cr_assert(ag_backward(ag_sum(y)), "%s: first backward failed: %s", named_ops[k].name,
                  ag_last_error());
        ag_clear_error();
        cr_assert_not(ag_backward(ag_sum(y)), "%s: second backward succeeded", named_ops[k].name);
        cr_assert(strstr(ag_last_error(), "Trying to backward through the graph a second time"),
                  "%s: message \"%s\"", named_ops[k].name, ag_last_error());
    }
    test_finish();
}

/* exp's gradient reads its result and log's its input: changing either in place (here
 * under no_grad, which allows it) makes the saved value stale, as in PyTorch. */
Test(unary, changing_a_saved_tensor_in_place_is_an_error)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_tensor_from((float[]){0.5f, 2.0f}, AG_SHAPE(2), true);
    ag_tensor *y = ag_exp(x);
    AG_NO_GRAD { ag_mul_(y, 2.0); }
    ag_clear_error();
    cr_assert_not(ag_backward(ag_sum(y)), "exp: backward after y *= 2 succeeded");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "exp: message \"%s\"",
              ag_last_error());

    y = ag_log(x);
    AG_NO_GRAD { ag_mul_(x, 2.0); }
    ag_clear_error();
    cr_assert_not(ag_backward(ag_sum(y)), "log: backward after x *= 2 succeeded");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "log: message \"%s\"",
              ag_last_error());
    test_finish();
}
