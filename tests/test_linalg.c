/* matmul, t, transpose and inverse against PyTorch (tests/ref/linalg_ref.h, made by
 * tools/gen_ref_linalg.py): forward values, gradients, grad_fn names and error
 * messages; every case through ag_gradcheck; the normal equation of linear regression.
 *
 * Tolerances. matmul: agrad and PyTorch both sum in float, so each element may differ by
 * terms * FLT_EPSILON * bound, the rounding-error bound of any summation order (bound is
 * the largest element of |a| @ |b|, or of the same for a gradient); with gcc or clang at
 * -O2 on x86-64 the results are in fact bit-identical, which the test logs (with
 * -Dblas=openblas, where cblas_sgemm sums in its own order, a third of them). t and
 * transpose: exact (copies). inverse: agrad inverts in double, PyTorch in float; on
 * well-conditioned matrices they differ by at most 1.2e-7 (measured), checked with atol
 * 2.5e-7, rtol 1e-6; the normal equation, five products and an inverse, differs by at
 * most 3.6e-7 on values near 1: atol 1e-7, rtol 1e-6. Last, agrad's kernels
 * (mm_kernels.h) and matmul against plain scalar loops, bit for bit. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agrad_test.h"

#include "ref/linalg_ref.h"

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

/* The inputs of the large cases: the same hash as gen_values() in the generator. */
static float gen_value(unsigned seed, uint32_t i)
{
    uint32_t h = i * 0x9E3779B1u + seed * 0x85EBCA77u;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return (float)(h >> 8) / 8388608.0f - 1.0f;
}

/* A leaf of the given shape holding values (or gen_values(seed) when values is NULL). */
static ag_tensor *make(int ndim, const int64_t *shape, const float *values, unsigned seed,
                       bool requires_grad)
{
    ag_tensor *t = ag_zeros(shape_of(ndim, shape));
    cr_assert_not_null(t, "ag_zeros failed: %s", ag_last_error());
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = values ? values[i] : gen_value(seed, (uint32_t)i);
    ag_requires_grad_(t, requires_grad);
    return t;
}

static bool is_vm(const lin_case *c)
{
    return !strcmp(c->op, "matmul") && c->a_ndim == 1 && c->b_ndim == 2;
}

static ag_tensor *apply(const lin_case *c, ag_tensor *a, ag_tensor *b)
{
    if (!strcmp(c->op, "matmul")) return ag_matmul(a, b);
    if (!strcmp(c->op, "t")) return ag_t(a);
    if (!strcmp(c->op, "transpose")) return ag_transpose(a, c->d0, c->d1);
    if (!strcmp(c->op, "inverse")) return ag_inverse(a);
    if (!strcmp(c->op, "normal_eq")) /* inverse(X^T X) @ X^T @ y */
        return ag_matmul(ag_matmul(ag_inverse(ag_matmul(ag_t(a), a)), ag_t(a)), b);
    cr_assert_fail("unknown op %s in case %s", c->op, c->name);
    return NULL;
}

/* The worst error seen, in units of the tolerance, and how many values were exact. */
typedef struct tally {
    double worst, worst_abs;
    int64_t exact, total;
} tally;

/* Checks got against want: within terms * FLT_EPSILON * bound for matmul cases, else
 * within atol + rtol * |want|. */
static void check_close(const lin_case *c, const char *what, int which, const float *got,
                        const float *want, int64_t n, tally *t)
{
    bool mm = !strcmp(c->op, "matmul");
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], err = fabs(g - w);
        double tol = mm ? c->terms[which] * (double)FLT_EPSILON * c->bound[which]
                        : c->atol + c->rtol * fabs(w);
        cr_assert(err <= tol, "%s: %s[%lld] = %.9g, PyTorch %.9g (difference %.3g, tolerance %.3g)",
                  c->name, what, (long long)i, g, w, err, tol);
        if (tol > 0 && err / tol > t->worst) t->worst = err / tol;
        if (err > t->worst_abs) t->worst_abs = err;
        t->exact += g == w;
        t->total++;
    }
}

static void check_shape(const lin_case *c, const ag_tensor *out)
{
    cr_assert_eq(out->ndim, c->out_ndim, "%s: rank %d, PyTorch %d", c->name, out->ndim,
                 c->out_ndim);
    for (int i = 0; i < c->out_ndim; i++)
        cr_assert_eq(out->shape[i], c->out_shape[i], "%s: size %d is %lld, PyTorch %lld", c->name,
                     i, (long long)out->shape[i], (long long)c->out_shape[i]);
}

/* ------------------------------------------------------------------------------------ */
/* Forward values and gradients                                                          */

Test(linalg, forward_and_gradients_match_pytorch)
{
    const char *ops[] = {"matmul", "t", "transpose", "inverse", "normal_eq"};
    tally tallies[5] = {{0}};
    for (size_t k = 0; k < lin_ncases; k++) {
        const lin_case *c = &lin_cases[k];
        tally *t = NULL;
        for (int i = 0; i < 5; i++)
            if (!strcmp(c->op, ops[i])) t = &tallies[i];
        ag_mark m = ag_mark_now();
        ag_tensor *a = make(c->a_ndim, c->a_shape, c->a, c->gen, true);
        ag_tensor *b = c->b || c->gen ? make(c->b_ndim, c->b_shape, c->b, c->gen + 1, true) : NULL;
        ag_tensor *out = apply(c, a, b);
        cr_assert_not_null(out, "%s: failed: %s", c->name, ag_last_error());
        check_shape(c, out);
        check_close(c, "out", 0, out->data, c->out, out->numel, t);

        ag_tensor *up = make(c->out_ndim, c->out_shape, c->upstream, c->gen + 2, false);
        cr_assert(ag_backward(ag_sum(ag_mul(out, up))), "%s: backward failed: %s", c->name,
                  ag_last_error());
        if (a->numel) {
            cr_assert_not_null(a->grad, "%s: a->grad is NULL", c->name);
            check_close(c, "grad a", 1, a->grad->data, c->ga, a->numel, t);
        }
        if (b && b->numel) {
            cr_assert_not_null(b->grad, "%s: b->grad is NULL", c->name);
            check_close(c, "grad b", 2, b->grad->data, c->gb, b->numel, t);
        }
        ag_release(m);
    }
    for (int i = 0; i < 5; i++)
        cr_log_info("%s: %lld of %lld values bit-identical to PyTorch; largest difference "
                    "%.3g (%.3g of the tolerance)",
                    ops[i], (long long)tallies[i].exact, (long long)tallies[i].total,
                    tallies[i].worst_abs, tallies[i].worst);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* grad_fn names                                                                         */

static void check_grad_fn(const lin_case *c)
{
    ag_mark m = ag_mark_now();
    ag_tensor *a = make(c->a_ndim, c->a_shape, c->a, c->gen, true);
    ag_tensor *b = c->b || c->gen ? make(c->b_ndim, c->b_shape, c->b, c->gen + 1, false) : NULL;
    ag_tensor *out = apply(c, a, b);
    cr_assert_not_null(out, "%s: failed: %s", c->name, ag_last_error());
    const char *name = ag_grad_fn_name(out);
    cr_assert(name && !strcmp(name, c->grad_fn), "%s: grad_fn %s, expected %s (PyTorch shows %s)",
              c->name, name ? name : "NULL", c->grad_fn, c->grad_fn);
    ag_release(m);
}

Test(linalg, grad_fn_names)
{
    for (size_t k = 0; k < lin_ncases; k++)
        if (!is_vm(&lin_cases[k])) check_grad_fn(&lin_cases[k]);
    test_finish();
}

/* vector @ matrix: PyTorch 1.13 computes unsqueeze(0).mm(b).squeeze_(0), whose node is
 * SqueezeBackward3 (the in-place squeeze_ with a dim). */
Test(linalg, grad_fn_name_vector_matrix)
{
    for (size_t k = 0; k < lin_ncases; k++)
        if (is_vm(&lin_cases[k])) check_grad_fn(&lin_cases[k]);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* gradcheck                                                                             */

static ag_tensor *case_fn(ag_tensor *const *inputs, void *userdata)
{
    const lin_case *c = userdata;
    return apply(c, inputs[0], c->b || c->gen ? inputs[1] : NULL);
}

Test(linalg, gradcheck_every_case)
{
    int checked = 0;
    for (size_t k = 0; k < lin_ncases; k++) {
        const lin_case *c = &lin_cases[k];
        if (c->gen) continue; /* the large products: their gradients are checked above */
        ag_mark m = ag_mark_now();
        ag_tensor *in[2] = {make(c->a_ndim, c->a_shape, c->a, 0, true), NULL};
        if (c->b) in[1] = make(c->b_ndim, c->b_shape, c->b, 0, true);
        int64_t n = in[0]->numel + (in[1] ? in[1]->numel : 0), out = 1;
        for (int i = 0; i < c->out_ndim; i++) out *= c->out_shape[i];
        if (n == 0 || out == 0) {
            ag_release(m);
            continue;
        }
        ag_gradcheck_result r;
        bool ok = ag_gradcheck(case_fn, in, c->b ? 2 : 1, (void *)c, NULL, &r);
        cr_assert(ok && r.passed, "%s: gradcheck failed: %s\n%s", c->name, ag_last_error(),
                  r.report);
        checked++;
        ag_release(m);
    }
    cr_log_info("gradcheck passed on %d cases", checked);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

Test(linalg, errors_match_pytorch)
{
    record_errors();
    for (size_t k = 0; k < lin_nerrors; k++) {
        const lin_error *e = &lin_errors[k];
        ag_mark m = ag_mark_now();
        ag_tensor *a = make(e->a_ndim, e->a_shape, e->a, 0, true);
        ag_tensor *b = make(e->b_ndim, e->b_shape, NULL, 0, true);
        size_t live = ag_memory_stats().live_tensors;
        ag_tensor *out = NULL;
        if (!strcmp(e->op, "matmul")) out = ag_matmul(a, b);
        if (!strcmp(e->op, "t")) out = ag_t(a);
        if (!strcmp(e->op, "transpose")) out = ag_transpose(a, e->d0, e->d1);
        if (!strcmp(e->op, "inverse")) out = ag_inverse(a);
        cr_assert_null(out, "%s (case %zu): no error; PyTorch says \"%s\"", e->op, k, e->message);
        char want[512];
        snprintf(want, sizeof want, "%s: %s", e->op, e->message);
        cr_assert(!strncmp(ag_last_error(), want, strlen(want)),
                  "case %zu: the message is\n    %s\nPyTorch's is\n    %s", k, ag_last_error(),
                  want);
        cr_assert_eq(ag_memory_stats().live_tensors, live,
                     "%s (case %zu): the failed call left %zu tensors", e->op, k,
                     ag_memory_stats().live_tensors - live);
        ag_clear_error();
        ag_release(m);
    }
    test_finish();
}

Test(linalg, errors_name_the_shapes)
{
    record_errors();
    ag_tensor *a = ag_zeros(AG_SHAPE(2, 3, 4)), *b = ag_zeros(AG_SHAPE(2, 4));
    cr_assert_null(ag_matmul(a, b), "[2, 3, 4] @ [2, 4] succeeded");
    cr_assert(strstr(ag_last_error(), "(shapes [2, 3, 4] and [2, 4])"),
              "the message does not name the shapes: %s", ag_last_error());
    cr_assert_null(ag_transpose(b, 0, 2), "transpose(0, 2) of a matrix succeeded");
    cr_assert(strstr(ag_last_error(), "for a tensor of shape [2, 4]"),
              "the message does not name the shape: %s", ag_last_error());
    cr_assert_null(ag_inverse(a), "inverse of [2, 3, 4] succeeded");
    cr_assert(strstr(ag_last_error(), "(shape [2, 3, 4])"),
              "the message does not name the shape: %s", ag_last_error());
    test_finish();
}

Test(linalg, null_and_released_arguments)
{
    record_errors();
    ag_tensor *x = ag_ones(AG_SHAPE(2, 2));
    cr_assert_null(ag_matmul(NULL, x), "matmul(NULL, x) returned a tensor");
    cr_assert(strstr(ag_last_error(), "matmul"), "message: %s", ag_last_error());
    ag_clear_error();
    cr_assert_null(ag_matmul(x, NULL), "matmul(x, NULL) returned a tensor");
    cr_assert_null(ag_t(NULL), "t(NULL) returned a tensor");
    cr_assert_null(ag_transpose(NULL, 0, 1), "transpose(NULL) returned a tensor");
    cr_assert_null(ag_inverse(NULL), "inverse(NULL) returned a tensor");
    ag_mark m = ag_mark_now();
    ag_tensor *y = ag_ones(AG_SHAPE(2, 2));
    ag_release(m);
    ag_clear_error();
    cr_assert_null(ag_inverse(y), "inverse of a released tensor returned a tensor");
    cr_assert(strstr(ag_last_error(), "released"), "message: %s", ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Autograd semantics                                                                    */

Test(linalg, only_inputs_that_require_grad_get_gradients)
{
    ag_tensor *a = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), true);
    ag_tensor *b = ag_tensor_from((const float[]){1, -1, 2}, AG_SHAPE(3), false);
    ag_tensor *y = ag_matmul(a, b); /* [5, 11] */
    cr_assert(y->requires_grad, "a @ b does not require grad");
    cr_assert(ag_backward(ag_sum(y)), "backward failed: %s", ag_last_error());
    cr_assert_null(b->grad, "b, which does not require grad, got a gradient");
    const float want[] = {1, -1, 2, 1, -1, 2};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(a->grad->data[i], want[i], "a.grad[%d] = %g, expected %g", i,
                     (double)a->grad->data[i], (double)want[i]);

    AG_NO_GRAD { y = ag_matmul(a, b); }
    cr_assert(!y->requires_grad && ag_is_leaf(y), "matmul under no_grad recorded a node");
    test_finish();
}

Test(linalg, saved_operands_and_second_backward)
{
    record_errors();
    ag_tensor *a = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(2, 2), true);
    ag_tensor *b = ag_tensor_from((const float[]){1, 0, 0, 1}, AG_SHAPE(2, 2), false);
    ag_tensor *y = ag_sum(ag_matmul(a, b));
    cr_assert(ag_backward_with(y, NULL, true), "backward failed: %s", ag_last_error());
    cr_assert(ag_backward(y), "second backward with the graph retained failed: %s",
              ag_last_error());
    for (int i = 0; i < 4; i++) /* dA = ones @ I^T, twice */
        cr_assert_eq(a->grad->data[i], 2.0f,
                     "a.grad[%d] = %g after two backward passes, "
                     "expected 2",
                     i, (double)a->grad->data[i]);
    cr_assert(!ag_backward(y), "a third backward through a freed graph succeeded");
    cr_assert(strstr(ag_last_error(), "second time"), "message: %s", ag_last_error());
    ag_clear_error();

    /* dA reads b: changing b in place after the product makes backward refuse. */
    y = ag_sum(ag_matmul(a, b));
    ag_add_(b, 1.0);
    cr_assert(!ag_backward(y), "backward used a saved operand modified in place");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "message: %s",
              ag_last_error());
    ag_clear_error();

    /* The inverse's backward reads its result. */
    ag_tensor *inv = ag_inverse(a);
    y = ag_sum(inv);
    AG_NO_GRAD { ag_mul_(inv, 2.0); }
    cr_assert(!ag_backward(y), "backward used an inverse modified in place");
    cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "message: %s",
              ag_last_error());
    test_finish();
}

Test(linalg, same_tensor_on_both_sides)
{
    /* d sum(X X) / dX = ones X^T + X^T ones */
    ag_tensor *x = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(2, 2), true);
    cr_assert(ag_backward(ag_sum(ag_matmul(x, x))), "backward failed: %s", ag_last_error());
    const float want[] = {3 + 4, 7 + 4, 3 + 6, 7 + 6};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(x->grad->data[i], want[i], "x.grad[%d] = %g, expected %g", i,
                     (double)x->grad->data[i], (double)want[i]);
    test_finish();
}

/* A's and B's gradients reach them from matmul and from (A + B) * 3, in either order: the
 * product's is the first to reach them, or is added to the other's; four times, so that
 * the later passes' buffers are memory the earlier ones used. */
Test(linalg, gradient_from_matmul_and_another_op)
{
    ag_tensor *a = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(2, 2), true);
    ag_tensor *b = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(2, 2), true);
    ag_mark start = ag_mark_now();
    for (int run = 0; run < 4; run++) {
        ag_tensor *mm = ag_sum(ag_matmul(a, b)), *times3 = ag_sum(ag_mul(ag_add(a, b), 3));
        ag_tensor *y = run % 2 ? ag_add(times3, mm) : ag_add(mm, times3);
        cr_assert(ag_backward(y), "backward failed: %s", ag_last_error());
        /* dA = ones B^T + 3 (B's row sums, plus 3); dB = A^T ones + 3 (A's column sums) */
        const float want_a[] = {6, 10, 6, 10}, want_b[] = {7, 7, 9, 9};
        for (int i = 0; i < 4; i++) {
            cr_assert_eq(a->grad->data[i], want_a[i], "run %d: a.grad[%d] = %g, expected %g", run,
                         i, (double)a->grad->data[i], (double)want_a[i]);
            cr_assert_eq(b->grad->data[i], want_b[i], "run %d: b.grad[%d] = %g, expected %g", run,
                         i, (double)b->grad->data[i], (double)want_b[i]);
        }
        ag_zero_(a->grad);
        ag_zero_(b->grad);
        ag_release(start);
    }
    test_finish();
}

Test(linalg, transposes_are_copies)
{
    ag_tensor *x = ag_tensor_from((const float[]){1, 2, 3}, AG_SHAPE(3), false);
    ag_tensor *y = ag_t(x);
    cr_assert(y != x && y->data != x->data, "t() of a vector shares x's storage");
    ag_fill_(y, 7.0);
    cr_assert_eq(x->data[0], 1.0f, "writing t(x) changed x[0] to %g", (double)x->data[0]);
    ag_tensor *m = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), true);
    ag_tensor *mt = ag_t(m);
    cr_assert(ag_get(mt, AG_SHAPE(2, 1)) == 6.0f && ag_get(mt, AG_SHAPE(0, 1)) == 4.0f,
              "t() of [[1, 2, 3], [4, 5, 6]] is wrong: [2, 1] = %g, [0, 1] = %g",
              ag_get(mt, AG_SHAPE(2, 1)), ag_get(mt, AG_SHAPE(0, 1)));
    test_finish();
}

Test(linalg, inverse_times_matrix_is_identity)
{
    /* A 6 x 6 matrix with a large diagonal, inverted in double: A A^-1 = I to float
     * rounding. */
    float v[36];
    for (int i = 0; i < 36; i++) v[i] = gen_value(7, (uint32_t)i) + (i % 7 == 0 ? 6.0f : 0.0f);
    ag_tensor *a = ag_tensor_from(v, AG_SHAPE(6, 6), false);
    ag_tensor *p = ag_matmul(a, ag_inverse(a));
    double worst = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            double e = fabs(ag_get(p, AG_SHAPE(i, j)) - (i == j));
            cr_assert(e <= 4 * FLT_EPSILON, "(A A^-1)[%d][%d] = %.9g", i, j,
                      ag_get(p, AG_SHAPE(i, j)));
            worst = fmax(worst, e);
        }
    cr_log_info("largest |A A^-1 - I|: %.3g", worst);
    test_finish();
}

Test(linalg, inverse_of_nan_is_nan_and_of_the_textbook_singular_matrix_an_error)
{
    record_errors();
    ag_tensor *a = ag_tensor_from((const float[]){NAN, 0, 0, 1}, AG_SHAPE(2, 2), false);
    ag_tensor *inv = ag_inverse(a);
    cr_assert_not_null(inv, "inverse of a matrix holding NaN failed: %s", ag_last_error());
    for (int i = 0; i < 4; i++)
        cr_assert(isnan(inv->data[i]), "inverse[%d] = %g, PyTorch gives NaN", i,
                  (double)inv->data[i]);
    /* In double its last pivot is 1e-16, not 0: agrad counts that as zero, as PyTorch's
     * float LU finds it. */
    ag_tensor *s =
        ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, AG_SHAPE(3, 3), false);
    cr_assert_null(ag_inverse(s), "[[1, 2, 3], [4, 5, 6], [7, 8, 9]] was inverted");
    cr_assert(strstr(ag_last_error(), "The diagonal element 3 is zero"), "message: %s",
              ag_last_error());
    /* A tiny but regular matrix is inverted. */
    ag_tensor *t = ag_tensor_from((const float[]){1e-30f, 0, 0, 1e-30f}, AG_SHAPE(2, 2), false);
    inv = ag_inverse(t);
    cr_assert(inv && inv->data[0] == 1e30f, "inverse of 1e-30 I: %s",
              inv ? "wrong value" : ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* The kernels against plain scalar loops, bit for bit                                   */

#include "mm_kernels.h"

/* n values of gen_value(seed), in a buffer the caller frees. */
static float *values_of(int64_t n, unsigned seed)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = gen_value(seed, (uint32_t)i);
    return v;
}

static void expect_same_bits(const char *what, const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(!memcmp(&got[i], &want[i], sizeof *got), "%s[%lld] = %.9g, scalar loop %.9g",
                  what, (long long)i, (double)got[i], (double)want[i]);
}

/* mm_kernels.h's ag__mm_nn, ag__mm_tn and ag__mm_nt (vectorised, in blocks of AG__MM_W
 * floats and a tail) against the loops they replace, on sizes below, at and around the
 * block width, each adding into a c that holds values already. */
Test(linalg, kernels_equal_scalar_loops_bit_for_bit)
{
    static const int64_t sizes[][3] = {{1, 1, 1}, {3, 5, 7},   {17, 33, 9}, {9, 17, 33},
                                       {8, 8, 8}, {16, 1, 17}, {2, 31, 65}, {0, 3, 4},
                                       {3, 0, 4}, {3, 4, 0}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int64_t n = sizes[s][0], k = sizes[s][1], p = sizes[s][2];
        char what[64];
        /* c[n,p] += a[n,k] b[k,p] */
        float *a = values_of(n * k, 1), *b = values_of(k * p, 2), *c = values_of(n * p, 3);
        float *want = values_of(n * p, 3);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < p; j++)
                for (int64_t l = 0; l < k; l++) want[i * p + j] += a[i * k + l] * b[l * p + j];
        ag__mm_nn(c, a, b, n, k, p);
        snprintf(what, sizeof what, "nn %lldx%lldx%lld", (long long)n, (long long)k, (long long)p);
        expect_same_bits(what, c, want, n * p);
        free(b), free(c), free(want);

        /* c[k,p] += a[n,k]^T b[n,p] */
        b = values_of(n * p, 4), c = values_of(k * p, 5), want = values_of(k * p, 5);
        for (int64_t l = 0; l < k; l++)
            for (int64_t j = 0; j < p; j++)
                for (int64_t i = 0; i < n; i++) want[l * p + j] += a[i * k + l] * b[i * p + j];
        ag__mm_tn(c, a, b, n, k, p);
        snprintf(what, sizeof what, "tn %lldx%lldx%lld", (long long)n, (long long)k, (long long)p);
        expect_same_bits(what, c, want, k * p);
        free(a), free(b), free(c), free(want);

        /* c[n,k] += a[n,p] b[k,p]^T: dot products of rows */
        a = values_of(n * p, 6), b = values_of(k * p, 7), c = values_of(n * k, 8);
        want = values_of(n * k, 8);
        float *bt = values_of(k * p, 0);
        for (int64_t i = 0; i < n; i++)
            for (int64_t l = 0; l < k; l++) {
                float acc = want[i * k + l];
                for (int64_t j = 0; j < p; j++) acc += a[i * p + j] * b[l * p + j];
                want[i * k + l] = acc;
            }
        ag__mm_transpose(bt, b, k, p);
        ag__mm_nt(c, a, bt, n, p, k);
        snprintf(what, sizeof what, "nt %lldx%lldx%lld", (long long)n, (long long)k, (long long)p);
        expect_same_bits(what, c, want, n * k);
        free(a), free(b), free(c), free(want), free(bt);
    }
    test_finish();
}

/* One element of a reference product: the float sum in order, and for the BLAS build the
 * bound of any order's rounding error (terms * eps * sum of |terms|). */
typedef struct ref_sum {
    float sum;
    double abs;
    int64_t terms;
} ref_sum;

static void check_ref(const char *what, const float *got, const ref_sum *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
#if AGT_HAVE_BLAS /* cblas_sgemm sums in its own order */
        double tol = 2.0 * (double)want[i].terms * FLT_EPSILON * want[i].abs;
        cr_assert(fabs((double)got[i] - want[i].sum) <= tol,
                  "%s[%lld] = %.9g, scalar loop %.9g (tolerance %.3g)", what, (long long)i,
                  (double)got[i], (double)want[i].sum, tol);
#else
        cr_assert(!memcmp(&got[i], &want[i].sum, sizeof *got), "%s[%lld] = %.9g, scalar loop %.9g",
                  what, (long long)i, (double)got[i], (double)want[i].sum);
#endif
    }
}

/* Batches as matmul sees them: padded on the left to two dimensions (1: none). */
typedef struct batches {
    int64_t a[2], b[2], nb[2];
} batches;

static int64_t batch_index(const int64_t *sizes, int64_t i0, int64_t i1)
{
    return (sizes[0] == 1 ? 0 : i0) * sizes[1] + (sizes[1] == 1 ? 0 : i1);
}

/* ag_matmul's value and both gradients (upstream u: loss sum(out * u)) against scalar
 * loops in PyTorch's order, on odd sizes and with batches: broadcast ones, batches folded
 * into rows (one operand of rank <= 2: the gradient's sums run on across batches) and
 * batched on both sides (each batch's product, then the batches summed). Bit for bit with
 * agrad's own kernels; with -Dblas=openblas within the rounding bound. */
Test(linalg, matmul_equals_scalar_loops_with_batches)
{
    static const struct {
        int an, bn;
        int64_t as[4], bs[4];
    } cases[] = {
        {2, 2, {1, 1}, {1, 1}},          {2, 2, {3, 5}, {5, 7}},
        {2, 2, {17, 33}, {33, 9}},       {4, 3, {2, 3, 17, 33}, {3, 33, 9}},
        {4, 3, {2, 1, 3, 5}, {3, 5, 7}}, {3, 2, {4, 17, 33}, {33, 9}},
        {2, 4, {17, 33}, {2, 3, 33, 9}}, {1, 3, {33}, {2, 33, 9}},
        {3, 1, {2, 17, 33}, {33}},       {1, 1, {33}, {33}},
        {3, 3, {1, 1, 1}, {1, 1, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int an = cases[c].an, bn = cases[c].bn;
        const int64_t *as = cases[c].as, *bs = cases[c].bs;
        ag_mark m = ag_mark_now();
        ag_tensor *a = make(an, as, NULL, 11 + (unsigned)c, true);
        ag_tensor *b = make(bn, bs, NULL, 31 + (unsigned)c, true);
        ag_tensor *out = ag_matmul(a, b);
        cr_assert_not_null(out, "case %zu: %s", c, ag_last_error());
        ag_tensor *u = make(out->ndim, out->shape, NULL, 51 + (unsigned)c, false);
        cr_assert(ag_backward(ag_sum(ag_mul(out, u))), "case %zu: %s", c, ag_last_error());

        int64_t n = an == 1 ? 1 : as[an - 2], k = as[an - 1], p = bn == 1 ? 1 : bs[bn - 1];
        batches bt = {{1, 1}, {1, 1}, {1, 1}};
        for (int i = 0; i < an - 2; i++) bt.a[2 - (an - 2) + i] = as[i];
        for (int i = 0; i < bn - 2; i++) bt.b[2 - (bn - 2) + i] = bs[i];
        for (int i = 0; i < 2; i++) bt.nb[i] = bt.a[i] > bt.b[i] ? bt.a[i] : bt.b[i];
        bool both = an > 2 && bn > 2; /* per batch, then summed; else sums run on */
        const float *A = a->data, *B = b->data, *U = u->data;

        ref_sum *want = calloc((size_t)(out->numel + a->numel + b->numel), sizeof *want);
        cr_assert_not_null(want);
        ref_sum *wo = want, *wa = want + out->numel, *wb = wa + a->numel;
        for (int64_t i0 = 0; i0 < bt.nb[0]; i0++)
            for (int64_t i1 = 0; i1 < bt.nb[1]; i1++) {
                int64_t ia = batch_index(bt.a, i0, i1), ib = batch_index(bt.b, i0, i1);
                int64_t io = i0 * bt.nb[1] + i1;
                const float *Ab = A + ia * n * k, *Bb = B + ib * k * p, *Ub = U + io * n * p;
                for (int64_t i = 0; i < n; i++) /* out = A B */
                    for (int64_t j = 0; j < p; j++) {
                        ref_sum *r = &wo[io * n * p + i * p + j];
                        for (int64_t l = 0; l < k; l++) {
                            r->sum += Ab[i * k + l] * Bb[l * p + j];
                            r->abs += fabs((double)Ab[i * k + l] * Bb[l * p + j]);
                        }
                        r->terms = k;
                    }
                for (int64_t i = 0; i < n; i++) /* dA = U B^T */
                    for (int64_t l = 0; l < k; l++) {
                        ref_sum *r = &wa[ia * n * k + i * k + l];
                        float t = both ? 0.0f : r->sum;
                        for (int64_t j = 0; j < p; j++) {
                            t += Ub[i * p + j] * Bb[l * p + j];
                            r->abs += fabs((double)Ub[i * p + j] * Bb[l * p + j]);
                        }
                        r->sum = both ? r->sum + t : t;
                        r->terms += p + 1;
                    }
                for (int64_t l = 0; l < k; l++) /* dB = A^T U */
                    for (int64_t j = 0; j < p; j++) {
                        ref_sum *r = &wb[ib * k * p + l * p + j];
                        float t = both ? 0.0f : r->sum;
                        for (int64_t i = 0; i < n; i++) {
                            t += Ab[i * k + l] * Ub[i * p + j];
                            r->abs += fabs((double)Ab[i * k + l] * Ub[i * p + j]);
                        }
                        r->sum = both ? r->sum + t : t;
                        r->terms += n + 1;
                    }
            }
        char what[48];
        snprintf(what, sizeof what, "case %zu: out", c);
        check_ref(what, out->data, wo, out->numel);
        snprintf(what, sizeof what, "case %zu: grad a", c);
        check_ref(what, a->grad->data, wa, a->numel);
        snprintf(what, sizeof what, "case %zu: grad b", c);
        check_ref(what, b->grad->data, wb, b->numel);
        free(want);
        ag_release(m);
    }
    test_finish();
}
