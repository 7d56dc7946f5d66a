/* ag_gradcheck itself: no false failures on smooth functions at its defaults, a planted
 * wrong derivative caught with a readable report, no traces left on the inputs. */
#include <math.h>
#include <string.h>

#include "agrad_test.h"

static ag_tensor *smooth(ag_tensor *const *in, void *ud)
{
    (void)ud;
    /* (a * b + a / (b * b)) ** 3 - b, with a [2, 3] and b [3]: broadcasting, powers,
     * division, values that reach a few hundred. */
    ag_tensor *a = in[0], *b = in[1];
    return ag_sub(ag_pow(ag_add(ag_mul(a, b), ag_div(a, ag_mul(b, b))), 3), b);
}

static ag_tensor *inputs_ab(ag_tensor **ab)
{
    ab[0] = ag_tensor_from((float[]){0.5f, -1.25f, 2.0f, 1.5f, 0.75f, -0.3f}, AG_SHAPE(2, 3), true);
    ab[1] = ag_tensor_from((float[]){1.1f, -0.7f, 1.9f}, AG_SHAPE(3), true);
    return ab[0];
}

Test(gradcheck, passes_a_smooth_function_at_its_defaults)
{
    ag_tensor *ab[2];
    inputs_ab(ab);
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(smooth, ab, 2, NULL, NULL, &r), "%s", r.report);
    cr_assert(r.passed, "result.passed is false: %s", r.report);
    cr_assert_eq(r.eps, 1e-2, "default eps %g", r.eps);
    cr_assert_eq(r.atol, 1e-3, "default atol %g", r.atol);
    cr_assert_eq(r.rtol, 1e-2, "default rtol %g", r.rtol);
    cr_assert(strstr(r.report, "gradcheck passed"), "report: %s", r.report);
    test_finish();
}

static float cube(float x) { return x * x * x; }
static float cube_d(float x) { return 3 * x * x; }
static float cube_d_wrong(float x) { return 3 * x * x + 0.05f * x; }

static ag_tensor *mapped(ag_tensor *const *in, void *ud)
{
    float (*df)(float) = *(float (**)(float))ud;
    return ag_mul(ag_map(in[0], cube, df, "CubeBackward"), in[1]);
}

Test(gradcheck, catches_a_planted_wrong_derivative)
{
    ag_tensor *ab[2];
    ab[0] = ag_tensor_from((float[]){0.5f, -1.5f, 2.0f}, AG_SHAPE(3), true);
    ab[1] = ag_tensor_from((float[]){1.0f, 2.0f, -1.0f}, AG_SHAPE(3), true);
    float (*right)(float) = cube_d, (*wrong)(float) = cube_d_wrong;
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(mapped, ab, 2, &right, NULL, &r), "right derivative: %s", r.report);

    cr_assert_not(ag_gradcheck(mapped, ab, 2, &wrong, NULL, &r), "wrong derivative passed: %s",
                  r.report);
    cr_assert_not(r.passed, "result.passed: %s", r.report);
    /* d out[i] / d a[i] = 3 a^2 b, the planted one (3 a^2 + 0.05 a) b. Beyond the
     * tolerance 1e-3 + 1e-2 |numerical|: element 0 by 0.0165 (0.775 against 0.75),
     * element 1 by 0.014 (13.35 against 13.5); element 2 is within it. */
    cr_assert_eq(r.input, 0, "worst input %d: %s", r.input, r.report);
    cr_assert_eq(r.input_index, 0, "worst element %lld: %s", (long long)r.input_index, r.report);
    cr_assert_eq(r.output_index, 0, "worst output %lld: %s", (long long)r.output_index, r.report);
    cr_assert_float_eq(r.analytical, 0.775, 1e-6, "analytical %g: %s", r.analytical, r.report);
    cr_assert_float_eq(r.numerical, 0.75, 1e-4, "numerical %g: %s", r.numerical, r.report);
    cr_assert(fabs(r.analytical - r.numerical) > r.atol + r.rtol * fabs(r.numerical),
              "the reported element is outside the tolerance: %s", r.report);
    cr_assert(strstr(r.report, "gradcheck FAILED") && strstr(r.report, "analytical") &&
                  strstr(r.report, "numerical") && strstr(r.report, "atol"),
              "report: %s", r.report);
    test_finish();
}

Test(gradcheck, leaves_no_trace_on_the_inputs)
{
    ag_tensor *ab[2];
    inputs_ab(ab);
    float a0[6];
    memcpy(a0, ab[0]->data, sizeof a0);
    /* b has a gradient already; a has none. */
    ag_backward(ag_sum(ab[1]));
    size_t live = ag_memory_stats().live_tensors;
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(smooth, ab, 2, NULL, NULL, &r), "%s", r.report);
    cr_assert_null(ab[0]->grad, "a.grad was NULL and is now %p", (void *)ab[0]->grad);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ab[1]->grad->data[i], 1.0f, "b.grad[%d] = %g, was 1", i,
                     (double)ab[1]->grad->data[i]);
    cr_assert(!memcmp(a0, ab[0]->data, sizeof a0), "the values of a changed");
    cr_assert_eq(ag_memory_stats().live_tensors, live, "live tensors %zu, %zu before",
                 ag_memory_stats().live_tensors, live);
    test_finish();
}

Test(gradcheck, skips_inputs_that_do_not_require_grad)
{
    ag_tensor *ab[2];
    inputs_ab(ab);
    ag_requires_grad_(ab[1], false);
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(smooth, ab, 2, NULL, NULL, &r), "%s", r.report);
    cr_assert_eq(r.input, 0, "only input 0 is checked: %d", r.input);
    test_finish();
}

typedef ag_tensor *(*binop)(const ag_tensor *, const ag_tensor *);
static ag_tensor *apply_binop(ag_tensor *const *in, void *ud)
{
    return (*(binop *)ud)(in[0], in[1]);
}

static ag_tensor *core_unary(ag_tensor *const *in, void *ud)
{
    ag_tensor *x = in[0];
    switch (*(int *)ud) {
    case 0:
        return ag_neg(x);
    case 1:
        return ag_pow(x, 2);
    case 2:
        return ag_pow(x, 0.5);
    case 3:
        return ag_pow(x, -1.5);
    case 4:
        return ag_sum(ag_mul(x, x));
    case 5:
        return ag_mean(ag_mul(x, x));
    case 6:
        return ag_mul(ag_view(x, AG_SHAPE(3, -1)), ag_reshape(x, AG_SHAPE(3, 2)));
    case 7:
        return ag_sub(1, ag_mul(0.5, ag_add(x, 2)));
    default:
        return ag_div(2, x);
    }
}

Test(gradcheck, checks_every_recorded_op_of_the_core)
{
    /* Smooth points, and broadcasting of [2, 3] against [3] and against [2, 1]. */
    ag_tensor *a =
        ag_tensor_from((float[]){0.6f, 1.3f, 2.2f, 0.9f, 1.7f, 0.4f}, AG_SHAPE(2, 3), true);
    ag_tensor *others[] = {ag_tensor_from((float[]){1.2f, 0.8f, 1.6f}, AG_SHAPE(3), true),
                           ag_tensor_from((float[]){1.4f, -0.9f}, AG_SHAPE(2, 1), true),
                           ag_scalar(0.7, true)};
    binop ops[] = {ag_add_tt, ag_sub_tt, ag_mul_tt, ag_div_tt, ag_pow_tt};
    const char *names[] = {"add", "sub", "mul", "div", "pow"};
    ag_gradcheck_result r;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (size_t o = 0; o < sizeof others / sizeof others[0]; o++) {
            ag_tensor *in[2] = {a, others[o]};
            cr_assert(ag_gradcheck(apply_binop, in, 2, &ops[k], NULL, &r), "%s, other %zu: %s",
                      names[k], o, r.report);
        }
    for (int u = 0; u <= 8; u++)
        cr_assert(ag_gradcheck(core_unary, &a, 1, &u, NULL, &r), "unary case %d: %s", u, r.report);
    test_finish();
}

static ag_tensor *returns_null(ag_tensor *const *in, void *ud)
{
    (void)in, (void)ud;
    return NULL;
}

static ag_tensor *detached(ag_tensor *const *in, void *ud)
{
    (void)ud;
    return ag_detach(ag_mul(in[0], 2));
}

Test(gradcheck, errors)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *ab[2];
    inputs_ab(ab);
    cr_assert_not(ag_gradcheck(NULL, ab, 2, NULL, NULL, NULL), "NULL fn");
    cr_assert(strstr(ag_last_error(), "gradcheck: needs a function"), "%s", ag_last_error());
    ag_clear_error();
    cr_assert_not(ag_gradcheck(smooth, ab, 0, NULL, NULL, NULL), "n = 0");
    cr_assert(strstr(ag_last_error(), "n = 0"), "%s", ag_last_error());
    ag_clear_error();
    cr_assert_not(ag_gradcheck(returns_null, ab, 2, NULL, NULL, NULL), "fn returns NULL");
    cr_assert(strstr(ag_last_error(), "gradcheck: fn returned NULL"), "%s", ag_last_error());
    ag_clear_error();
    cr_assert_not(ag_gradcheck(detached, ab, 2, NULL, NULL, NULL), "output cut from the graph");
    cr_assert(strstr(ag_last_error(), "does not require grad"), "%s", ag_last_error());
    ag_clear_error();
    ag_requires_grad_(ab[0], false);
    ag_requires_grad_(ab[1], false);
    cr_assert_not(ag_gradcheck(smooth, ab, 2, NULL, NULL, NULL), "nothing requires grad");
    cr_assert(strstr(ag_last_error(), "no input requires grad"), "%s", ag_last_error());
    test_finish();
}
