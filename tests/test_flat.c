/* The flat loops of the elementwise kernels (autograd/elementwise.h, engine.c's ag__accum
 * and ag__add_grad, the sum and mean) against the general broadcast loop, bit for bit.
 *
 * Operands of y's numel or of one element take the flat loops; other broadcasts take the
 * general one. Each flat case is embedded in a case the general loop computes: the input
 * whose gradient is checked gets a first dimension of 2 with both rows equal to it ([2, n],
 * or [2, 1] for one element), the other input [1, n] (or [2, 1]). Every row of that result
 * and of that gradient must hold exactly the flat case's floats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agrad_test.h"

#include <agrad_nn.h>

typedef ag_tensor *(*binop)(const ag_tensor *, const ag_tensor *);

/* The shape an input of the flat case has: n elements, one element ([1]) or 0-d. */
typedef enum { FULL, ONE, SCALAR } kind;

static const struct {
    const char *name;
    binop f;
    bool positive; /* pow's: positive inputs, so that the values are numbers */
} ops[] = {
    {"add", ag_add_tt, false}, {"sub", ag_sub_tt, false}, {"mul", ag_mul_tt, false},
    {"div", ag_div_tt, false}, {"pow", ag_pow_tt, true},
};
enum { NOPS = sizeof ops / sizeof ops[0] };

/* count values: normal samples, or uniform in [0.5, 1.5) when positive. */
static float *values(int64_t count, bool positive)
{
    float *v = malloc((size_t)(count ? count : 1) * sizeof *v);
    cr_assert_not_null(v);
    ag_tensor *t = positive ? ag_rand(AG_SHAPE(count)) : ag_randn(AG_SHAPE(count));
    cr_assert_not_null(t, "%s", ag_last_error());
    for (int64_t i = 0; i < count; i++) v[i] = positive ? t->data[i] + 0.5f : t->data[i];
    return v;
}

/* A leaf requiring grad: rows copies of the m values v, as [rows, m] (rows 0: the flat
 * case's shape for kind k). */
static ag_tensor *leaf(kind k, int rows, int64_t m, const float *v)
{
    ag_shape s = rows == 0 ? (k == FULL  ? AG_SHAPE(m)
                              : k == ONE ? AG_SHAPE(1)
                                         : (ag_shape){0})
                           : AG_SHAPE(rows, m);
    ag_tensor *t = ag_zeros(s, .requires_grad = true);
    cr_assert_not_null(t, "%s", ag_last_error());
    for (int r = 0; r < (rows ? rows : 1); r++)
        if (m) memcpy(t->data + r * m, v, (size_t)m * sizeof *v);
    return t;
}

/* Whether the n floats at got are those at want, bit for bit (a nan is any nan: the
 * payload of an operation on two nans is the compiler's choice of operand order). */
static void same_bits(const char *what, const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(!memcmp(&got[i], &want[i], sizeof(float)) || (isnan(got[i]) && isnan(want[i])),
                  "%s, element %lld: %.9g (flat), %.9g (general loop)", what, (long long)i,
                  (double)want[i], (double)got[i]);
}

/* y = f(a, b), or f(a, b) + f(b, a) when twice (each input then gets two gradients, the
 * second added to the first), for the flat case (ka, kb) over n elements, and its
 * embedding for input k; compares the results and input k's gradients. */
static void compare(int op, kind ka, kind kb, int64_t n, int k, bool twice)
{
    kind kk[2] = {ka, kb};
    int64_t m[2] = {ka == FULL ? n : 1, kb == FULL ? n : 1};
    float *v[2] = {values(m[0], ops[op].positive), values(m[1], ops[op].positive)};
    float *g = values(n, false);
    char what[128];
    snprintf(what, sizeof what, "%s%s(%s, %s) n=%lld, input %d", twice ? "twice " : "",
             ops[op].name,
             ka == FULL  ? "[n]"
             : ka == ONE ? "[1]"
                         : "[]",
             kb == FULL  ? "[n]"
             : kb == ONE ? "[1]"
                         : "[]",
             (long long)n, k);

    ag_tensor *in[2], *big[2];
    for (int j = 0; j < 2; j++) {
        in[j] = leaf(kk[j], 0, m[j], v[j]);
        /* the checked input's rows repeat it; the other's [1, n] broadcasts over them */
        big[j] = leaf(kk[j], j == k || kk[j] != FULL ? 2 : 1, m[j], v[j]);
    }
    binop f = ops[op].f;
    ag_tensor *y = twice ? ag_add(f(in[0], in[1]), f(in[1], in[0])) : f(in[0], in[1]);
    ag_tensor *yb = twice ? ag_add(f(big[0], big[1]), f(big[1], big[0])) : f(big[0], big[1]);
    cr_assert(y && yb, "%s: %s", what, ag_last_error());
    cr_assert_eq(y->numel, n, "%s: y has %lld elements", what, (long long)y->numel);
    cr_assert_eq(yb->numel, 2 * n, "%s: the embedding has %lld elements", what,
                 (long long)yb->numel);
    ag_tensor *gy = ag_tensor_from(g, ag_size(y));
    ag_tensor *gb = ag_zeros(ag_size(yb));
    for (int r = 0; r < 2; r++)
        if (n) memcpy(gb->data + r * n, g, (size_t)n * sizeof *g);
    cr_assert(ag_backward_with(y, gy, false) && ag_backward_with(yb, gb, false), "%s: %s", what,
              ag_last_error());

    cr_assert_not_null(in[k]->grad, "%s: no gradient", what);
    cr_assert_not_null(big[k]->grad, "%s: no gradient (general loop)", what);
    for (int r = 0; r < 2; r++) {
        same_bits(what, yb->data + r * n, y->data, n);
        same_bits(what, big[k]->grad->data + r * m[k], in[k]->grad->data, m[k]);
    }
    free(v[0]);
    free(v[1]);
    free(g);
}

static const int64_t lengths[] = {1, 2, 7, 8, 9, 1000};

Test(flat, same_shape_inputs_match_the_general_loop)
{
    record_errors();
    for (int op = 0; op < NOPS; op++)
        for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
            for (int k = 0; k < 2; k++) {
                compare(op, FULL, FULL, lengths[i], k, false);
                compare(op, FULL, FULL, lengths[i], k, true);
            }
    test_finish();
}

Test(flat, one_element_on_either_side_matches_the_general_loop)
{
    record_errors();
    for (int op = 0; op < NOPS; op++)
        for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
            for (int k = 0; k < 2; k++)
                for (int twice = 0; twice < 2; twice++) {
                    compare(op, FULL, ONE, lengths[i], k, twice);
                    compare(op, ONE, FULL, lengths[i], k, twice);
                    compare(op, FULL, SCALAR, lengths[i], k, twice);
                    compare(op, SCALAR, FULL, lengths[i], k, twice);
                }
    test_finish();
}

Test(flat, a_hundred_thousand_and_three_elements_sum_in_the_same_order)
{
    /* the one-element input's gradient is a double sum of 100,003 terms, rounded once
     * (sums_add_in_eight_lanes below shows that the order decides such a sum) */
    record_errors();
    for (int op = 0; op < NOPS; op++)
        for (int k = 0; k < 2; k++) {
            compare(op, FULL, SCALAR, 100003, k, false);
            compare(op, ONE, FULL, 100003, k, false);
        }
    compare(2, FULL, FULL, 100003, 0, true);
    test_finish();
}

/* 2^60, seven ones, -2^60, seven ones: added one after another in double, each one after
 * 2^60 is lost (2^60 + 1 needs 61 bits), and the sum is 7. In eight lanes (term k in lane
 * k % 8), lane 0 holds 2^60 - 2^60 = 0 and lanes 1 to 7 hold 1 + 1 each: the sum is 14,
 * the exact one. Every path that sums these terms must say 14. */
static const float lanes16[16] = {0x1p60f, 1, 1, 1, 1, 1, 1, 1, -0x1p60f, 1, 1, 1, 1, 1, 1, 1};

Test(flat, sums_add_in_eight_lanes)
{
    record_errors();
    ag_tensor *x = ag_tensor_from(lanes16, AG_SHAPE(16));
    ag_tensor *rows = ag_zeros(AG_SHAPE(2, 16)), *cols = ag_zeros(AG_SHAPE(16, 2));
    cr_assert(x && rows && cols, "%s", ag_last_error());
    for (int k = 0; k < 16; k++)
        rows->data[k] = rows->data[16 + k] = cols->data[2 * k] = cols->data[2 * k + 1] = lanes16[k];
    cr_assert_float_eq(ag_item(ag_sum(x)), 14.0f, 0, "sum");
    cr_assert_float_eq(ag_item(ag_mean(x)), 14.0f / 16, 0, "mean");
    ag_tensor *s1 = ag_sum_dim(rows, 1, false), *s0 = ag_mean_dim(cols, 0, false);
    cr_assert(s1 && s0, "%s", ag_last_error());
    for (int r = 0; r < 2; r++) {
        cr_assert_float_eq(s1->data[r], 14.0f, 0, "sum over dimension 1, row %d", r);
        cr_assert_float_eq(s0->data[r], 14.0f / 16, 0, "mean over dimension 0, column %d", r);
    }
    /* gradients summed back: a one-element input (flat) and a [2, 1] one (general loop),
     * each broadcast over 16 elements whose gradients are the terms */
    ag_tensor *one = ag_zeros(AG_SHAPE(1), .requires_grad = true);
    ag_tensor *two = ag_zeros(AG_SHAPE(2, 1), .requires_grad = true);
    cr_assert(one && two, "%s", ag_last_error());
    cr_assert(ag_backward_with(ag_add(one, ag_zeros(AG_SHAPE(16))), x, false), "%s",
              ag_last_error());
    cr_assert(ag_backward_with(ag_mul(two, ag_ones(AG_SHAPE(2, 16))), rows, false), "%s",
              ag_last_error());
    cr_assert_float_eq(one->grad->data[0], 14.0f, 0, "d (one + z) / d one");
    for (int r = 0; r < 2; r++)
        cr_assert_float_eq(two->grad->data[r], 14.0f, 0, "d (two * ones) / d two, row %d", r);
    /* broadcast along two dimensions, [1, 2, 1] to [2, 2, 8]: term k of each sum is
     * element (k / 8, j, k % 8), counted over the broadcast dimensions in order */
    ag_tensor *mid = ag_zeros(AG_SHAPE(1, 2, 1), .requires_grad = true);
    ag_tensor *g3 = ag_zeros(AG_SHAPE(2, 2, 8));
    cr_assert(mid && g3, "%s", ag_last_error());
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 2; j++) g3->data[(k / 8) * 16 + j * 8 + k % 8] = lanes16[k];
    cr_assert(ag_backward_with(ag_mul(mid, ag_ones(AG_SHAPE(2, 2, 8))), g3, false), "%s",
              ag_last_error());
    for (int j = 0; j < 2; j++)
        cr_assert_float_eq(mid->grad->data[j], 14.0f, 0, "[1, 2, 1] from [2, 2, 8], element %d", j);
    /* A loss's reduction (mse_loss's squares, so no cancelling): 1, 2^-24, then twelve
     * terms of 2^-54, lanes 2 to 7 twice each, and two zeros (lanes 0 and 1). One after
     * another, each 2^-54 is lost (a quarter of the ulp of 1 in double), and 1 + 2^-24,
     * halfway between two floats, rounds to the even one, 1. In lanes, the small terms
     * meet first and add up to 3 * 2^-52, which is kept: the sum rounds up, to
     * 1 + 2^-23. */
    float d[16] = {1, 0x1p-12f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 2; k < 16; k++) d[k] = k % 8 < 2 ? 0.0f : 0x1p-27f;
    ag_tensor *loss =
        ag_mse_loss(ag_tensor_from(d, AG_SHAPE(16)), ag_zeros(AG_SHAPE(16)), .reduction = AG_SUM);
    cr_assert_not_null(loss, "%s", ag_last_error());
    cr_assert_float_eq(ag_item(loss), 1.0f + 0x1p-23f, 0, "mse_loss, reduction sum");
    test_finish();
}

Test(flat, one_element_inputs_of_one_element)
{
    record_errors();
    kind kinds[] = {ONE, SCALAR};
    for (int op = 0; op < NOPS; op++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                for (int k = 0; k < 2; k++) {
                    ag_tensor *a =
                        leaf(kinds[i], 0, 1, (float[]){ops[op].positive ? 1.25f : -0.5f});
                    ag_tensor *b = leaf(kinds[j], 0, 1, (float[]){0.75f});
                    ag_tensor *y = ops[op].f(a, b);
                    cr_assert_not_null(y, "%s", ag_last_error());
                    /* 0-d only when both are: [1] with [] broadcasts to [1] */
                    cr_assert_eq(y->ndim, kinds[i] == SCALAR && kinds[j] == SCALAR ? 0 : 1);
                    cr_assert(ag_backward(y), "%s", ag_last_error());
                    cr_assert(a->grad && b->grad);
                }
    test_finish();
}

Test(flat, empty_inputs)
{
    /* y is empty: a one-element input's gradient is the sum of nothing, 0 (PyTorch gives
     * tensor([0.]) too), and the empty input's is empty */
    record_errors();
    for (int op = 0; op < NOPS; op++)
        for (int k = 0; k < 2; k++) {
            compare(op, FULL, ONE, 0, k, false);
            compare(op, SCALAR, FULL, 0, k, true);
            compare(op, FULL, FULL, 0, k, false);
        }
    ag_tensor *w = ag_ones(AG_SHAPE(1), .requires_grad = true);
    ag_tensor *x = ag_zeros(AG_SHAPE(0), .requires_grad = true);
    ag_tensor *y = ag_mul(w, x);
    cr_assert(ag_backward_with(y, ag_zeros(AG_SHAPE(0)), false), "%s", ag_last_error());
    cr_assert_not_null(w->grad);
    cr_assert(w->grad->data[0] == 0.0f && !signbit(w->grad->data[0]));
    cr_assert_not_null(x->grad);
    cr_assert_eq(x->grad->numel, 0);
    test_finish();
}

Test(flat, broadcasts_of_more_than_one_element_take_the_general_loop)
{
    /* [3, 1] * [1, 4]: neither input has y's numel or one element; the gradients are
     * each input's products summed in double over the other's dimension */
    record_errors();
    ag_tensor *a = VEC(true, 0.1f, -2.5f, 3.0f);
    ag_tensor *b = VEC(true, 1.5f, 0.25f, -0.7f, 9.0f);
    ag_tensor *a31 = ag_view(a, AG_SHAPE(3, 1)), *b14 = ag_view(b, AG_SHAPE(1, 4));
    ag_tensor *y = ag_mul(a31, b14);
    cr_assert_not_null(y, "%s", ag_last_error());
    cr_assert_eq(y->ndim, 2);
    float g[12];
    for (int i = 0; i < 12; i++) g[i] = (float)(i + 1) / 7.0f;
    cr_assert(ag_backward_with(y, ag_tensor_from(g, AG_SHAPE(3, 4)), false), "%s", ag_last_error());
    for (int i = 0; i < 3; i++) {
        double da = 0;
        for (int j = 0; j < 4; j++) {
            float p = a->data[i] * b->data[j];
            cr_assert(!memcmp(&y->data[i * 4 + j], &p, sizeof p));
            da += g[i * 4 + j] * b->data[j];
        }
        float want = (float)da;
        cr_assert(!memcmp(&a->grad->data[i], &want, sizeof want), "da[%d] = %.9g, want %.9g", i,
                  (double)a->grad->data[i], (double)want);
    }
    for (int j = 0; j < 4; j++) {
        double db = 0;
        for (int i = 0; i < 3; i++) db += g[i * 4 + j] * a->data[i];
        float want = (float)db;
        cr_assert(!memcmp(&b->grad->data[j], &want, sizeof want), "db[%d] = %.9g, want %.9g", j,
                  (double)b->grad->data[j], (double)want);
    }
    test_finish();
}

Test(flat, sum_and_mean_match_the_reduction_over_a_dimension)
{
    /* ag_sum and ag_mean of everything (flat) against sum and mean over dimension 1 of
     * two equal rows (reduce.c's loop), values and gradients */
    record_errors();
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths + 1; i++) {
        int64_t n = i < sizeof lengths / sizeof *lengths ? lengths[i] : 100003;
        float *v = values(n, false);
        for (int mean = 0; mean < 2; mean++) {
            ag_tensor *x = leaf(FULL, 0, n, v), *x2 = leaf(FULL, 2, n, v);
            ag_tensor *s = mean ? ag_mean(x) : ag_sum(x);
            ag_tensor *s2 = mean ? ag_mean_dim(x2, 1, false) : ag_sum_dim(x2, 1, false);
            cr_assert(s && s2, "%s", ag_last_error());
            same_bits("sum", &s2->data[0], &s->data[0], 1);
            same_bits("sum", &s2->data[1], &s->data[0], 1);
            cr_assert(ag_backward_with(s, ag_scalar(0.3), false), "%s", ag_last_error());
            cr_assert(ag_backward_with(s2, VEC(false, 0.3f, 0.3f), false), "%s", ag_last_error());
            same_bits("d sum", x2->grad->data, x->grad->data, n);
            same_bits("d sum", x2->grad->data + n, x->grad->data, n);
        }
        free(v);
    }
    test_finish();
}

Test(flat, squares_fold_to_x_times_x)
{
    /* x ^ 2 is x * x and its gradient g * (2 * x), the floats PyTorch's pow gives; other
     * exponents take pow_scalar's cases */
    record_errors();
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        int64_t n = lengths[i];
        float *v = values(n, false), *g = values(n, false);
        ag_tensor *x = leaf(FULL, 0, n, v);
        ag_tensor *y = ag_pow(x, 2);
        cr_assert_not_null(y, "%s", ag_last_error());
        cr_assert(ag_backward_with(y, ag_tensor_from(g, AG_SHAPE(n)), false), "%s",
                  ag_last_error());
        for (int64_t j = 0; j < n; j++) {
            float sq = v[j] * v[j], d = g[j] * (2.0f * v[j]);
            same_bits("x ^ 2", &y->data[j], &sq, 1);
            same_bits("d x ^ 2", &x->grad->data[j], &d, 1);
        }
        free(v);
        free(g);
    }
    ag_tensor *x = VEC(true, 4.0f, 0.25f);
    ag_tensor *y = ag_pow(x, 3);
    CHECK("x ^ 3", y, 0.0f, 64.0f, 0.015625f);
    cr_assert(ag_backward(ag_sum(y)));
    CHECK("d x ^ 3", x->grad, 0.0f, 48.0f, 0.1875f);
    test_finish();
}
