/* Autograd semantics and errors against PyTorch 1.13: which results require grad and
 * what they record, backward seeding and accumulation, retain_graph, diamonds, broadcast
 * gradients, no_grad, detach / .data and the in-place rules, and every error message.
 * Expected values are derived by hand (and were checked once against PyTorch); the tests
 * never need PyTorch at run time. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agrad_test.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */

static const ag_shape SCALAR = {0, {0}};

static const char *shape_str(char *buf, size_t size, int ndim, const int64_t *d)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)d[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

static void check_shape(const char *what, const ag_tensor *t, ag_shape want)
{
    char got[96], exp[96];
    cr_assert_not_null(t, "%s is NULL (last error: \"%s\")", what, ag_last_error());
    bool same = t->ndim == want.ndim;
    for (int i = 0; same && i < want.ndim; i++) same = t->shape[i] == want.d[i];
    cr_assert(same, "%s has shape %s, expected %s", what,
              shape_str(got, sizeof got, t->ndim, t->shape),
              shape_str(exp, sizeof exp, want.ndim, want.d));
}

/* ------------------------------------------------------------------------------------ */
/* requires_grad propagation, leaves, grad_fn names                                      */

Test(grad_mode, factories_do_not_require_grad)
{
    const char *names[] = {"zeros", "ones", "full", "scalar", "tensor_from", "arange", "randn"};
    ag_tensor *made[] = {ag_zeros(AG_SHAPE(2, 3)), ag_ones(AG_SHAPE(3)), ag_full(AG_SHAPE(2), 7),
                         ag_scalar(1, false),      VEC(false, 1, 2),     ag_arange(0, 5, 1),
                         ag_randn(AG_SHAPE(4))};
    for (size_t i = 0; i < sizeof made / sizeof *made; i++) {
        cr_assert_not_null(made[i], "%s returned NULL: %s", names[i], ag_last_error());
        cr_assert(!made[i]->requires_grad, "%s: requires_grad is true", names[i]);
        cr_assert(ag_is_leaf(made[i]), "%s: not a leaf", names[i]);
        cr_assert_null(ag_grad_fn_name(made[i]), "%s: grad_fn %s", names[i],
                       ag_grad_fn_name(made[i]));
        cr_assert_null(made[i]->grad, "%s: ->grad is %p", names[i], (void *)made[i]->grad);
    }
    test_finish();
}

Test(grad_mode, result_requires_grad_iff_an_input_does)
{
    ag_tensor *a = VEC(true, 1, 2, 3), *c = VEC(false, 4, 5, 6);
    struct {
        const char *expr;
        ag_tensor *t;
        bool want;
    } cases[] = {{"a + c", ag_add(a, c), true},
                 {"c + a", ag_add(c, a), true},
                 {"c * c", ag_mul(c, c), false},
                 {"c * 2", ag_mul(c, 2.0), false},
                 {"2 * a", ag_mul(2.0, a), true},
                 {"1 - a", ag_sub(1.0, a), true},
                 {"sum(c)", ag_sum(c), false},
                 {"mean(a)", ag_mean(a), true},
                 {"-c", ag_neg(c), false},
                 {"2 ** c", ag_pow(2.0, c), false},
                 {"c ** a", ag_pow(c, a), true},
                 {"view(a)", ag_view(a, AG_SHAPE(3, 1)), true},
                 {"reshape(c)", ag_reshape(c, AG_SHAPE(1, 3)), false}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_not_null(cases[i].t, "%s returned NULL: %s", cases[i].expr, ag_last_error());
        cr_assert_eq(cases[i].t->requires_grad, cases[i].want, "%s: requires_grad %d, expected %d",
                     cases[i].expr, cases[i].t->requires_grad, cases[i].want);
        cr_assert_eq(ag_is_leaf(cases[i].t), !cases[i].want, "%s: is_leaf %d, expected %d",
                     cases[i].expr, ag_is_leaf(cases[i].t), !cases[i].want);
    }
    test_finish();
}

Test(grad_mode, is_leaf)
{
    ag_tensor *x = ag_scalar(2, true), *c = ag_scalar(3, false);
    cr_assert(ag_is_leaf(x), "a user-made tensor that requires grad is a leaf");
    ag_tensor *y = ag_mul(x, c);
    cr_assert(!ag_is_leaf(y), "x * c with x requiring grad is not a leaf");
    cr_assert_not_null(ag_grad_fn_name(y), "x * c has no grad_fn");
    /* As in PyTorch: an op whose inputs do not require grad records nothing: a leaf. */
    ag_tensor *z = ag_add(ag_mul(c, c), 1.0);
    cr_assert(ag_is_leaf(z), "c * c + 1 without requires_grad should be a leaf");
    cr_assert_null(ag_grad_fn_name(z), "c * c + 1 has grad_fn %s", ag_grad_fn_name(z));
    test_finish();
}

/* type(r.grad_fn).__name__ in PyTorch 1.13 for the same expressions, and whether the node
 * saves tensors, so that a second backward through it fails. ag_pow(2, x) is Python's
 * 2 ** x, which PyTorch evaluates as tensor(2) ** x: PowBackward1. */
typedef struct {
    const char *expr;
    ag_tensor *r;
    const char *name;
    bool saves;
} fn_case;
enum { N_FN_CASES = 19 };

static void make_fn_cases(fn_case c[N_FN_CASES], ag_tensor *x, ag_tensor *y)
{
    const fn_case all[N_FN_CASES] = {
        {"x + y", ag_add(x, y), "AddBackward0", false},
        {"x + 1", ag_add(x, 1.0), "AddBackward0", false},
        {"1 + x", ag_add(1.0, x), "AddBackward0", false},
        {"x - y", ag_sub(x, y), "SubBackward0", false},
        {"x - 1", ag_sub(x, 1.0), "SubBackward0", false},
        {"1 - x", ag_sub(1.0, x), "RsubBackward1", false},
        {"x * y", ag_mul(x, y), "MulBackward0", true},
        {"2 * x", ag_mul(2.0, x), "MulBackward0", true},
        {"x / y", ag_div(x, y), "DivBackward0", true},
        {"x / 2", ag_div(x, 2.0), "DivBackward0", true},
        {"x ** 2", ag_pow(x, 2.0), "PowBackward0", true},
        {"x ** 0.5", ag_pow(x, 0.5), "PowBackward0", true},
        {"x ** y", ag_pow(x, y), "PowBackward1", true},
        {"2 ** x", ag_pow(2.0, x), "PowBackward1", true},
        {"-x", ag_neg(x), "NegBackward0", false},
        {"x.sum()", ag_sum(x), "SumBackward0", false},
        {"x.mean()", ag_mean(x), "MeanBackward0", false},
        {"x.view(3, 1)", ag_view(x, AG_SHAPE(3, 1)), "ViewBackward0", false},
        {"x.reshape(3, 1)", ag_reshape(x, AG_SHAPE(3, 1)), "ReshapeAliasBackward0", false},
    };
    memcpy(c, all, sizeof all);
}

Test(grad_mode, grad_fn_names_match_pytorch)
{
    fn_case c[N_FN_CASES];
    make_fn_cases(c, VEC(true, 1, 2, 3), VEC(true, 2, 3, 4));
    for (int i = 0; i < N_FN_CASES; i++) {
        cr_assert_not_null(c[i].r, "%s returned NULL: %s", c[i].expr, ag_last_error());
        const char *got = ag_grad_fn_name(c[i].r);
        cr_assert(got && strcmp(got, c[i].name) == 0, "%s: grad_fn %s, PyTorch: %s", c[i].expr,
                  got ? got : "NULL", c[i].name);
    }
    test_finish();
}

Test(grad_mode, requires_grad_on_a_leaf)
{
    ag_tensor *c = ag_zeros(AG_SHAPE(2));
    cr_assert_eq(ag_requires_grad_(c, true), c, "requires_grad_ should return its argument");
    cr_assert(c->requires_grad, "requires_grad_(c, true) left requires_grad false");
    ag_tensor *y = ag_mul(c, 2.0);
    cr_assert(y->requires_grad && !ag_is_leaf(y), "c * 2 after requires_grad_ should record");
    /* PyTorch allows requires_grad_(True) on a non-leaf (it already requires grad). */
    cr_assert_eq(ag_requires_grad_(y, true), y, "requires_grad_(nonleaf, true) should be a no-op");
    cr_assert_eq(ag_requires_grad_(c, false), c, "requires_grad_(leaf, false) failed");
    cr_assert(!c->requires_grad, "requires_grad_(c, false) left requires_grad true");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* backward: seeding, explicit gradients, accumulation, retain_graph, retain_grad        */

Test(backward, one_element_output_is_seeded_with_one)
{
    ag_tensor *x = ag_scalar(3, true);
    cr_assert(ag_backward(ag_mul(x, 5.0)), "backward failed: %s", ag_last_error());
    check_shape("x.grad", x->grad, SCALAR);
    CHECK("x.grad of 5x", x->grad, 0, 5);
    /* One element but rank 1: still seeded with 1, and the grad keeps shape [1]. */
    ag_tensor *v = VEC(true, 2);
    cr_assert(ag_backward(ag_mul(v, 4.0)), "backward of a [1] tensor failed: %s", ag_last_error());
    check_shape("v.grad", v->grad, AG_SHAPE(1));
    CHECK("v.grad of 4v", v->grad, 0, 4);
    /* A leaf's own backward seeds its grad. */
    ag_tensor *l = ag_scalar(2, true);
    cr_assert(ag_backward(l), "l.backward() failed: %s", ag_last_error());
    CHECK("l.grad", l->grad, 0, 1);
    test_finish();
}

Test(backward, explicit_gradient_on_a_non_scalar)
{
    ag_tensor *x = VEC(true, 1, 2, 3);
    ag_tensor *y = ag_mul(x, x);
    cr_assert(ag_backward_with(y, VEC(false, 1, 2, 3), false), "failed: %s", ag_last_error());
    check_shape("x.grad", x->grad, AG_SHAPE(3));
    CHECK("x.grad = 2x * g", x->grad, 0, 2, 8, 18);
    test_finish();
}

Test(backward, gradients_accumulate_until_zeroed)
{
    ag_tensor *x = VEC(true, 1, -1);
    cr_assert(ag_backward(ag_sum(ag_mul(x, 3.0))), "first backward: %s", ag_last_error());
    CHECK("x.grad after one backward", x->grad, 0, 3, 3);
    cr_assert(ag_backward(ag_sum(ag_mul(x, 3.0))), "second backward: %s", ag_last_error());
    CHECK("x.grad after two", x->grad, 0, 6, 6);
    cr_assert_eq(ag_zero_(x->grad), x->grad, "ag_zero_(x->grad) failed: %s", ag_last_error());
    CHECK("x.grad after zero_", x->grad, 0, 0, 0);
    cr_assert(ag_backward(ag_sum(ag_mul(x, x))), "backward: %s", ag_last_error());
    CHECK("x.grad = 2x after zeroing", x->grad, 0, 2, -2);
    test_finish();
}

Test(backward, retain_graph_allows_a_second_backward_that_accumulates)
{
    record_errors();
    ag_tensor *x = VEC(true, 1, -2, 3);
    ag_tensor *s = ag_sum(ag_mul(x, x));
    cr_assert(ag_backward_with(s, NULL, true), "retained backward: %s", ag_last_error());
    CHECK("x.grad = 2x", x->grad, 0, 2, -4, 6);
    cr_assert(ag_backward(s), "backward after retain_graph failed: %s", ag_last_error());
    CHECK("x.grad = 4x", x->grad, 0, 4, -8, 12);
    /* The second call did not retain: a third fails. */
    cr_assert(!ag_backward(s), "third backward without retain_graph succeeded");
    EXPECT_ERROR("third backward", "Trying to backward through the graph a second time");
    CHECK("x.grad unchanged", x->grad, 0, 4, -8, 12);
    test_finish();
}

Test(backward, second_backward_fails_and_changes_no_grad)
{
    record_errors();
    ag_tensor *x = VEC(true, 1, 2), *w = VEC(true, 5, 7);
    ag_tensor *s = ag_sum(ag_add(ag_mul(x, x), w));
    cr_assert(ag_backward(s), "first backward: %s", ag_last_error());
    cr_assert(!ag_backward(s), "second backward without retain_graph succeeded");
    EXPECT_ERROR("second backward", "backward",
                 "Trying to backward through the graph a second time", "retain_graph=True",
                 "MulBackward0");
    CHECK("x.grad unchanged", x->grad, 0, 2, 4);
    CHECK("w.grad unchanged (its path saves nothing)", w->grad, 0, 1, 1);
    test_finish();
}

Test(backward, second_backward_fails_exactly_at_ops_that_save_tensors)
{
    record_errors();
    for (int i = 0; i < N_FN_CASES; i++) {
        fn_case c[N_FN_CASES];
        ag_tensor *x = VEC(true, 1, 2, 3);
        make_fn_cases(c, x, VEC(true, 2, 3, 4)); /* fresh leaves for each case */
        ag_tensor *s = ag_sum(c[i].r);
        cr_assert(ag_backward(s), "%s: first backward: %s", c[i].expr, ag_last_error());
        float g0 = x->grad->data[0];
        bool ok = ag_backward(s);
        if (c[i].saves) {
            cr_assert(!ok, "%s: second backward succeeded; PyTorch fails", c[i].expr);
            EXPECT_ERROR(c[i].expr, "Trying to backward through the graph a second time",
                         c[i].name);
            cr_assert_eq(x->grad->data[0], g0, "%s: x.grad[0] changed from %g to %g", c[i].expr,
                         (double)g0, (double)x->grad->data[0]);
        } else {
            cr_assert(ok, "%s saves nothing: a second backward works in PyTorch; got: %s",
                      c[i].expr, ag_last_error());
            cr_assert_eq(x->grad->data[0], 2 * g0, "%s: x.grad[0] %g, expected %g", c[i].expr,
                         (double)x->grad->data[0], 2.0 * g0);
        }
    }
    test_finish();
}

Test(backward, chain_without_saved_tensors_backwards_twice)
{
    ag_tensor *a = VEC(true, 1, 2, 3), *b = VEC(true, 4, 5, 6);
    /* -(1 - ((a - b) + a)) = 2a - b - 1; its mean has d/da = 2/3, d/db = -1/3. */
    ag_tensor *u = ag_neg(ag_sub(1.0, ag_add(ag_sub(a, b), a)));
    ag_tensor *s = ag_mean(ag_reshape(ag_view(u, AG_SHAPE(3, 1)), AG_SHAPE(3)));
    cr_assert(ag_backward(s), "first backward: %s", ag_last_error());
    cr_assert(ag_backward(s), "second backward: %s", ag_last_error());
    CHECK("a.grad = 2 * 2/3", a->grad, 1e-6f, 4.f / 3, 4.f / 3, 4.f / 3);
    CHECK("b.grad = 2 * -1/3", b->grad, 1e-6f, -2.f / 3, -2.f / 3, -2.f / 3);
    test_finish();
}

Test(backward, retain_grad_fills_a_non_leaf_grad)
{
    ag_tensor *x = VEC(true, 1, 2, 3);
    ag_tensor *y = ag_mul(x, 2.0), *h = ag_mul(x, 3.0);
    cr_assert_eq(ag_retain_grad(y), y, "retain_grad should return its argument");
    cr_assert_eq(ag_retain_grad(x), x, "retain_grad on a leaf is a no-op returning it");
    /* s = sum(y*y + h): ds/dy = 2y = 4x; ds/dx = 2 * 4x + 3 = 8x + 3 */
    cr_assert(ag_backward(ag_sum(ag_add(ag_mul(y, y), h))), "backward: %s", ag_last_error());
    check_shape("y.grad", y->grad, AG_SHAPE(3));
    CHECK("y.grad = 2y", y->grad, 0, 4, 8, 12);
    cr_assert_null(h->grad, "a non-leaf without retain_grad got ->grad %p", (void *)h->grad);
    CHECK("x.grad = 8x + 3", x->grad, 0, 11, 19, 27);
    test_finish();
}

Test(backward, works_inside_no_grad)
{
    ag_tensor *x = ag_scalar(2, true), *y = ag_mul(x, 3.0);
    bool ok = false;
    AG_NO_GRAD { ok = ag_backward(y); } /* allowed in PyTorch: no_grad only affects recording */
    cr_assert(ok, "backward inside no_grad failed: %s", ag_last_error());
    CHECK("x.grad", x->grad, 0, 3);
    test_finish();
}

/* A pass from a leaf: the leaf takes the seed and waits for the pass's end outside the
 * heap, which never holds anything. PyTorch: w.backward() twice gives w.grad 2, and
 * v.backward(g) gives v.grad g. */
Test(graph, backward_from_a_leaf_gives_it_the_seed)
{
    ag_tensor *w = ag_scalar(2.0, true), *v = VEC(true, 1, 2, 3);
    cr_assert(ag_backward(w), "backward(w): %s", ag_last_error());
    cr_assert(ag_backward(w), "backward(w) again: %s", ag_last_error());
    CHECK("w.grad, accumulated", w->grad, 0, 2);
    cr_assert_eq(ag_memory_stats().backward_nodes, 1u, "the pass visited %zu tensors",
                 ag_memory_stats().backward_nodes);
    cr_assert(ag_backward_with(v, VEC(false, 0.5f, -1, 4), false), "%s", ag_last_error());
    CHECK("v.grad = gradient", v->grad, 0, 0.5f, -1, 4);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Shared nodes                                                                          */

Test(graph, diamond_y_plus_y)
{
    ag_tensor *x = VEC(true, 1, -2, 3);
    ag_tensor *y = ag_mul(x, x);
    cr_assert(ag_backward(ag_sum(ag_add(y, y))), "backward: %s", ag_last_error());
    CHECK("dz/dx = 4x", x->grad, 0, 4, -8, 12);
    test_finish();
}

Test(graph, deeper_shared_nodes)
{
    /* a = 2x, b = a*a, c = a + b, d = c*a = a^2 + a^3.
     * dd/da = c + a + 2a*a = 2a + 3a^2 (a reaches d along three paths); dd/dx = 2(2a + 3a^2).
     * x = [0.5, 1, -2]: a = [1, 2, -4], d = [2, 12, -48], dd/dx = [10, 32, 80]. */
    ag_tensor *x = VEC(true, 0.5f, 1, -2);
    ag_tensor *a = ag_mul(x, 2.0);
    ag_tensor *b = ag_mul(a, a);
    ag_tensor *c = ag_add(a, b);
    ag_tensor *d = ag_mul(c, a);
    CHECK("d", d, 0, 2, 12, -48);
    cr_assert(ag_backward(ag_sum(d)), "backward: %s", ag_last_error());
    CHECK("dd/dx", x->grad, 0, 10, 32, 80);
    test_finish();
}

/* add, sub's first input and views pass their gradient on unchanged, and the input then
 * takes the buffer itself rather than a copy (engine.c, hand_over), unless something reads
 * the buffer later. The first three cases give wrong numbers if it were handed over there. */
Test(graph, a_gradient_passed_on_unchanged_is_handed_over_only_when_nothing_else_reads_it)
{
    ag_tensor *x = VEC(true, 1, 2, 3), *c = VEC(false, 1, 10, 100), *d = VEC(false, 4, 5, 6);
    /* out keeps its gradient (retain_grad) and u gets another one after out's backward */
    ag_tensor *u = ag_mul(x, 2.0);
    ag_tensor *v = ag_view(u, AG_SHAPE(3, 1)); /* older than out: its backward runs later */
    ag_tensor *out = ag_retain_grad(ag_add(u, ag_ones(AG_SHAPE(3))));
    ag_tensor *loss = ag_add(ag_sum(ag_mul(out, c)), ag_sum(ag_mul(v, ag_view(d, AG_SHAPE(3, 1)))));
    cr_assert(ag_backward(loss), "%s", ag_last_error());
    CHECK("out.grad = c", out->grad, 0, 1, 10, 100);
    CHECK("x.grad = 2 (c + d)", x->grad, 0, 10, 30, 212);
    ag_zero_(x->grad);
    /* a + b (and a - b) hands its buffer to a; b, both of whose gradients were still to
     * come, takes a copy, so that what reaches a later (from e, older than s) does not
     * reach b: x.grad = 2 (c + d) + 3 c, and 2 (c + d) - 3 c */
    static const struct {
        ag_tensor *(*f)(const ag_tensor *, const ag_tensor *);
        float want[3];
    } ops[] = {{ag_add_tt, {13, 60, 512}}, {ag_sub_tt, {7, 0, -88}}};
    for (int k = 0; k < 2; k++) {
        ag_tensor *a = ag_mul(x, 2.0), *b = ag_mul(x, 3.0);
        ag_tensor *e = ag_mul(a, d);
        ag_tensor *s = ops[k].f(a, b);
        cr_assert(ag_backward(ag_add(ag_sum(ag_mul(s, c)), ag_sum(e))), "%s", ag_last_error());
        for (int i = 0; i < 3; i++)
            cr_assert_float_eq(x->grad->data[i], ops[k].want[i], 0, "%s: x.grad[%d] = %g",
                               k ? "a - b" : "a + b", i, (double)x->grad->data[i]);
        ag_zero_(x->grad);
    }
    /* h + h: one tensor on both sides, which must not take the buffer it is then added
     * from a second time */
    ag_tensor *h = ag_mul(x, 2.0);
    cr_assert(ag_backward(ag_sum(ag_mul(ag_add(h, h), c))), "%s", ag_last_error());
    CHECK("x.grad = 4 c", x->grad, 0, 4, 40, 400);
    test_finish();
}

Test(graph, same_leaf_on_both_sides_of_an_op)
{
    ag_tensor *x = VEC(true, 1.5f, -3), *p = ag_scalar(2, true);
    cr_assert(ag_backward(ag_sum(ag_mul(x, x))), "backward x * x: %s", ag_last_error());
    CHECK("d(x*x)/dx = 2x", x->grad, 0, 3, -6);
    ag_zero_(x->grad);
    /* x/x: 1/x from the numerator, -x/x^2 = -1/x from the denominator: 0. */
    ag_tensor *q = ag_div(x, x);
    CHECK("x / x", q, 0, 1, 1);
    cr_assert(ag_backward(ag_sum(q)), "backward x / x: %s", ag_last_error());
    CHECK("d(x/x)/dx", x->grad, 1e-7f, 0, 0);
    cr_assert(ag_backward(ag_sum(ag_sub(x, x))), "backward x - x: %s", ag_last_error());
    CHECK("d(x-x)/dx", x->grad, 1e-7f, 0, 0);
    cr_assert(ag_backward(ag_sum(ag_add(x, x))), "backward x + x: %s", ag_last_error());
    CHECK("d(x+x)/dx", x->grad, 1e-7f, 2, 2);
    /* d(p^p)/dp = p * p^(p-1) + p^p ln p = p^p (1 + ln p); at 2: 4 (1 + ln 2) */
    cr_assert(ag_backward(ag_pow(p, p)), "backward p ** p: %s", ag_last_error());
    cr_assert_float_eq(p->grad->data[0], 4 * (1 + log(2.0)), 1e-5,
                       "d(p^p)/dp = %.9g, expected %.9g", (double)p->grad->data[0],
                       4 * (1 + log(2.0)));
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Broadcast gradients are summed back to each input's shape                             */

Test(broadcast, scalar_weight_and_bias_over_a_column)
{
    /* The lab: Yhat = w X + b, loss = mean((Yhat - Y)^2) with Y = X - 1, w = -15, b = -10.
     * r = Yhat - Y = -16 x - 9. Over x = -3.0, -2.9, ..., 2.9: sum x = -3, sum x^2 = 180.1.
     * loss = (256 * 180.1 + 288 * -3 + 81 * 60) / 60 = 835.02667
     * dw = 2/60 * sum r x = (-16 * 180.1 - 9 * -3) / 30 = -95.153333
     * db = 2/60 * sum r = (-16 * -3 - 9 * 60) / 30 = -16.4 */
    ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    check_shape("X", X, AG_SHAPE(60, 1));
    ag_tensor *Y = ag_sub(X, 1.0);
    ag_tensor *w = ag_scalar(-15, true), *b = ag_scalar(-10, true);
    ag_tensor *Yhat = ag_add(ag_mul(w, X), b);
    check_shape("Yhat", Yhat, AG_SHAPE(60, 1));
    ag_tensor *loss = ag_mean(ag_pow(ag_sub(Yhat, Y), 2));
    cr_assert_float_eq(ag_item(loss), 835.02667, 1e-3, "loss %.9g", ag_item(loss));
    cr_assert(ag_backward(loss), "backward: %s", ag_last_error());
    check_shape("w.grad", w->grad, SCALAR);
    check_shape("b.grad", b->grad, SCALAR);
    cr_assert_float_eq(w->grad->data[0], -95.153333, 1e-3, "w.grad %.9g, expected -95.1533",
                       (double)w->grad->data[0]);
    cr_assert_float_eq(b->grad->data[0], -16.4, 1e-4, "b.grad %.9g, expected -16.4",
                       (double)b->grad->data[0]);
    test_finish();
}

Test(broadcast, column_times_row)
{
    /* p[i][j] = a_i b_j with gradient G[i][j] = 4i + j:
     * da_i = sum_j G_ij b_j = 400 i + 200;  db_j = sum_i G_ij a_i = 32 + 6 j */
    ag_tensor *a = ag_tensor_from((const float[]){1, 2, 3}, AG_SHAPE(3, 1), true);
    ag_tensor *b = ag_tensor_from((const float[]){10, 20, 30, 40}, AG_SHAPE(1, 4), true);
    ag_tensor *p = ag_mul(a, b);
    check_shape("a * b", p, AG_SHAPE(3, 4));
    CHECK("a * b", p, 0, 10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120);
    ag_tensor *G = ag_view(ag_arange(0, 12, 1), AG_SHAPE(3, 4));
    cr_assert(ag_backward_with(p, G, false), "backward: %s", ag_last_error());
    check_shape("a.grad", a->grad, AG_SHAPE(3, 1));
    check_shape("b.grad", b->grad, AG_SHAPE(1, 4));
    CHECK("a.grad", a->grad, 0, 200, 600, 1000);
    CHECK("b.grad", b->grad, 0, 32, 38, 44, 50);
    test_finish();
}

Test(broadcast, matrix_plus_row)
{
    /* z = sum((A + v) * C): dA = C, dv_j = sum_i C_ij = [5, 7, 9] */
    ag_tensor *A = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), true);
    ag_tensor *v = VEC(true, 10, 20, 30);
    ag_tensor *C = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), false);
    ag_tensor *s = ag_add(A, v);
    CHECK("A + v", s, 0, 11, 22, 33, 14, 25, 36);
    cr_assert(ag_backward(ag_sum(ag_mul(s, C))), "backward: %s", ag_last_error());
    check_shape("A.grad", A->grad, AG_SHAPE(2, 3));
    check_shape("v.grad", v->grad, AG_SHAPE(3));
    CHECK("A.grad = C", A->grad, 0, 1, 2, 3, 4, 5, 6);
    CHECK("v.grad", v->grad, 0, 5, 7, 9);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* no_grad                                                                               */

Test(no_grad, results_do_not_require_grad_and_record_nothing)
{
    ag_tensor *x = VEC(true, 1, 2);
    ag_no_grad_begin();
    ag_tensor *y = ag_mul(x, 2.0);
    ag_tensor *s = ag_sum(ag_add(x, y));
    ag_no_grad_end();
    cr_assert(!y->requires_grad && ag_is_leaf(y) && !ag_grad_fn_name(y),
              "x * 2 in no_grad: requires_grad %d, is_leaf %d, grad_fn %s", y->requires_grad,
              ag_is_leaf(y), ag_grad_fn_name(y) ? ag_grad_fn_name(y) : "NULL");
    cr_assert(!s->requires_grad && ag_is_leaf(s), "sum in no_grad requires grad");
    CHECK("x * 2 is still computed", y, 0, 2, 4);
    ag_tensor *z = ag_mul(x, 2.0);
    cr_assert(z->requires_grad && !ag_is_leaf(z), "after the scope ops record again");
    test_finish();
}

Test(no_grad, nests_and_restores_the_depth)
{
    cr_assert(ag_is_grad_enabled(), "grad mode starts enabled");
    ag_no_grad_begin();
    ag_no_grad_begin();
    cr_assert(!ag_is_grad_enabled(), "disabled at depth 2");
    ag_no_grad_end();
    cr_assert(!ag_is_grad_enabled(), "still disabled at depth 1");
    ag_tensor *y = ag_mul(ag_scalar(1, true), 2.0);
    cr_assert(!y->requires_grad, "op at depth 1 requires grad");
    ag_no_grad_end();
    cr_assert(ag_is_grad_enabled(), "enabled again at depth 0");
    test_finish();
}

Test(no_grad, block_macro_nests)
{
    ag_tensor *x = ag_scalar(1, true), *inner = NULL, *outer = NULL;
    AG_NO_GRAD
    {
        AG_NO_GRAD { inner = ag_mul(x, 2.0); }
        cr_assert(!ag_is_grad_enabled(), "inner block end re-enabled grad");
        outer = ag_mul(x, 3.0);
    }
    cr_assert(ag_is_grad_enabled(), "grad not enabled after the outer block");
    cr_assert(!inner->requires_grad && !outer->requires_grad, "ops in AG_NO_GRAD require grad");
    cr_assert(ag_mul(x, 4.0)->requires_grad, "op after AG_NO_GRAD does not require grad");
    test_finish();
}

Test(no_grad, unmatched_end_is_an_error)
{
    record_errors();
    ag_no_grad_end();
    EXPECT_ERROR("unmatched ag_no_grad_end", "no_grad_end");
    cr_assert(ag_is_grad_enabled(), "an unmatched end disabled grad mode");
    /* The depth did not go negative: one begin disables again. */
    ag_no_grad_begin();
    cr_assert(!ag_is_grad_enabled(), "begin after an unmatched end did not disable grad");
    ag_no_grad_end();
    cr_assert(ag_is_grad_enabled(), "end did not re-enable grad");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* detach, .data and in-place writes                                                     */

Test(data, detach_and_data_share_storage_and_are_cut_from_the_graph)
{
    ag_tensor *x = VEC(true, 1, 2, 3);
    ag_tensor *y = ag_mul(x, 2.0);
    ag_tensor *dx = ag_detach(x), *dy = ag_detach(y), *d = ag_data(x);
    cr_assert(dx->data == x->data && dy->data == y->data && d->data == x->data,
              "detach / data do not share storage");
    cr_assert(!dx->requires_grad && ag_is_leaf(dx), "detach(x) requires grad or is not a leaf");
    cr_assert(!dy->requires_grad && ag_is_leaf(dy), "detach(x*2) requires grad or is not a leaf");
    cr_assert(!d->requires_grad && ag_is_leaf(d), "x.data requires grad or is not a leaf");
    cr_assert(!ag_mul(dy, 3.0)->requires_grad, "op on a detached tensor requires grad");
    cr_assert_not_null(ag_fill_(dy, 5), "fill_ on a detached tensor failed: %s", ag_last_error());
    CHECK("y after detach(y).fill_(5)", y, 0, 5, 5, 5);
    /* Writing through x.data changes x, which still requires grad. */
    cr_assert_not_null(ag_sub_(d, 0.5), "x.data.sub_(0.5) failed: %s", ag_last_error());
    CHECK("x after x.data.sub_(0.5)", x, 0, 0.5f, 1.5f, 2.5f);
    cr_assert(x->requires_grad && ag_is_leaf(x), "x lost requires_grad or leafness");
    test_finish();
}

Test(data, set_data_updates_a_parameter_as_in_the_lab)
{
    /* w.data = w.data - lr * w.grad.data with loss = w^2, grad -30: -15 + 0.1 * 30 = -12 */
    ag_tensor *w = ag_scalar(-15, true);
    cr_assert(ag_backward(ag_mul(w, w)), "backward: %s", ag_last_error());
    ag_tensor *r = ag_set_data(w, ag_sub(ag_data(w), ag_mul(0.1, w->grad)));
    cr_assert_eq(r, w, "set_data should return w (error: %s)", ag_last_error());
    CHECK("w", w, 1e-6f, -12);
    CHECK("w.grad untouched", w->grad, 0, -30);
    cr_assert(w->requires_grad && ag_is_leaf(w), "w lost requires_grad or leafness");
    cr_assert(ag_mul(w, 2.0)->requires_grad, "ops on the updated w should record");
    test_finish();
}

Test(data, inplace_on_a_leaf_that_requires_grad_is_an_error)
{
    record_errors();
    ag_tensor *w = VEC(true, 1, 2), *other = VEC(false, 1, 1);
    struct {
        const char *op;
        ag_tensor *r;
    } calls[] = {{"add_", ag_add_(w, 1.0)},    {"sub_", ag_sub_(w, 1.0)},
                 {"sub_", ag_sub_(w, other)},  {"mul_", ag_mul_(w, 2.0)},
                 {"div_", ag_div_(w, 2.0)},    {"fill_", ag_fill_(w, 3)},
                 {"copy_", ag_copy_(w, other)}};
    /* Each call recorded the same error; the last one is checked below, each returned NULL. */
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++)
        cr_assert_null(calls[i].r, "%s on a leaf requiring grad succeeded", calls[i].op);
    EXPECT_ERROR("copy_(w, other)", "copy_",
                 "a leaf Variable that requires grad is being used in an in-place operation.");
    cr_assert_null(ag_zero_(w), "zero_ on a leaf requiring grad succeeded");
    EXPECT_ERROR("zero_(w)",
                 "a leaf Variable that requires grad is being used in an in-place operation.");
    cr_assert_null(ag_sub_(w, ag_mul(0.1, other)), "w.sub_(lr * g) outside no_grad succeeded");
    EXPECT_ERROR("sub_(w, t)", "sub_",
                 "a leaf Variable that requires grad is being used in an in-place operation.");
    CHECK("w unchanged", w, 0, 1, 2);
    test_finish();
}

Test(data, inplace_inside_no_grad_updates_the_leaf)
{
    /* The lab's `with torch.no_grad(): model.sub_(lr * model.grad)`. */
    ag_tensor *w = VEC(true, 1, 2);
    cr_assert(ag_backward(ag_sum(ag_mul(w, w))), "backward: %s", ag_last_error());
    ag_tensor *r = NULL;
    AG_NO_GRAD { r = ag_sub_(w, ag_mul(0.5, w->grad)); }
    cr_assert_eq(r, w, "sub_ in no_grad failed: %s", ag_last_error());
    CHECK("w - 0.5 * 2w", w, 0, 0, 0);
    cr_assert(w->requires_grad && ag_is_leaf(w), "w lost requires_grad or leafness");
    test_finish();
}

Test(data, add_scaled_rounds_once_and_makes_no_tensor)
{
    record_errors();
    /* 1 + (-(1 - 2^-23)) (1 + 2^-23) = 2^-46 exactly; rounding the product first gives 0 */
    ag_tensor *t = VEC(false, 1.0f), *x = VEC(false, 1.0f + 0x1p-23f);
    cr_assert_eq(ag_add_scaled_(t, x, -(1.0 - 0x1p-23)), t);
    CHECK("fused", t, 0, 0x1p-46f);
    /* the same over a block of 8 and one more (the flat loop's two parts) */
    const float one = 1.0f, next = 1.0f + 0x1p-23f;
    ag_tensor *t9 = VEC(false, one, one, one, one, one, one, one, one, one);
    ag_tensor *x9 = VEC(false, next, next, next, next, next, next, next, next, next);
    cr_assert_eq(ag_add_scaled_(t9, x9, -(1.0 - 0x1p-23)), t9);
    CHECK("fused, 9", t9, 0, 0x1p-46f, 0x1p-46f, 0x1p-46f, 0x1p-46f, 0x1p-46f, 0x1p-46f, 0x1p-46f,
          0x1p-46f, 0x1p-46f);
    /* t.add_(t, alpha): (1 + 2^-23) (1 - (1 - 2^-23)) rounded once is 2^-23 + 2^-46; the
     * product rounded first gives 2^-23 */
    ag_tensor *s = VEC(false, next);
    cr_assert_eq(ag_add_scaled_(s, s, -(1.0 - 0x1p-23)), s);
    CHECK("fused, itself", s, 0, 0x1p-23f + 0x1p-46f);
    /* x broadcast over t's rows; the update of a leaf under no_grad, as an optimizer's */
    ag_tensor *w = ag_tensor_from(((const float[]){1, 2, 3, 4, 5, 6}), AG_SHAPE(2, 3), true);
    size_t before = ag_memory_stats().live_tensors;
    AG_NO_GRAD { cr_assert_eq(ag_add_scaled_(w, VEC(false, 1, 0, -1), 2.0), w); }
    CHECK("w + 2 x", w, 0, 3, 2, 1, 6, 5, 4);
    cr_assert_eq(ag_memory_stats().live_tensors, before + 1, "only the VEC was made");
    /* its refusals are add_'s */
    cr_assert_null(ag_add_scaled_(w, x, 1.0));
    EXPECT_ERROR("add_scaled_", "add_: a leaf Variable that requires grad is being used in an "
                                "in-place operation.");
    cr_assert_null(ag_add_scaled_(x, w, 1.0));
    EXPECT_ERROR("add_scaled_", "add_: output with shape [1] doesn't match the broadcast shape "
                                "[2, 3]");
    cr_assert_null(ag_add_scaled_(NULL, x, 1.0));
    EXPECT_ERROR("add_scaled_", "add_: argument self is NULL");
    test_finish();
}

Test(data, modifying_a_saved_input_then_backward_is_an_error)
{
    record_errors();
    ag_tensor *w = VEC(true, 1, 1, 1), *x = VEC(false, 1, 2, 3);
    ag_tensor *s = ag_sum(ag_mul(w, x)); /* MulBackward0 saves x for w's gradient */
    cr_assert_not_null(ag_add_(x, 1.0), "x.add_(1) failed: %s", ag_last_error());
    cr_assert(!ag_backward(s), "backward after modifying a saved input succeeded");
    EXPECT_ERROR("backward",
                 "one of the variables needed for gradient computation has been "
                 "modified by an inplace operation",
                 "[3]", "is at version 1; expected version 0 instead", "MulBackward0");
    cr_assert_null(w->grad, "w.grad was set by a failed backward");
    test_finish();
}

Test(data, writing_a_saved_parameter_in_no_grad_or_through_detach_is_caught)
{
    record_errors();
    ag_tensor *w = VEC(true, 1, 2, 3);
    ag_tensor *s1 = ag_sum(ag_pow(w, 2)); /* PowBackward0 saves w */
    AG_NO_GRAD { ag_sub_(w, 1.0); }
    cr_assert(!ag_backward(s1), "backward after w.sub_ in no_grad succeeded");
    EXPECT_ERROR("backward", "modified by an inplace operation", "PowBackward0");
    cr_assert_null(w->grad, "w.grad was set by a failed backward");
    /* w.detach() shares w's version counter (PyTorch too), so the write is caught. */
    ag_tensor *w2 = VEC(true, 1, 2, 3), *s3 = ag_sum(ag_mul(w2, w2));
    ag_sub_(ag_detach(w2), 1.0);
    cr_assert(!ag_backward(s3), "backward after w.detach().sub_ succeeded");
    EXPECT_ERROR("backward", "modified by an inplace operation", "MulBackward0");
    test_finish();
}

Test(data, modifying_an_input_the_graph_did_not_save_is_allowed)
{
    /* PyTorch's MulBackward0 saves `other` for self's gradient and `self` only when other
     * requires grad: in w * x with x constant, w is not saved, so modifying w before
     * backward is fine and w.grad = x. Likewise w * 2. */
    record_errors();
    ag_tensor *w = VEC(true, 1, 1, 1), *x = VEC(false, 1, 2, 3);
    ag_tensor *s1 = ag_sum(ag_mul(w, x)), *s2 = ag_sum(ag_mul(w, 2.0));
    AG_NO_GRAD { ag_sub_(w, 1.0); }
    cr_assert(ag_backward(s1), "backward of sum(w * x) after w.sub_: %s", ag_last_error());
    CHECK("w.grad = x", w->grad, 0, 1, 2, 3);
    cr_assert(ag_backward(s2), "backward of sum(w * 2) after w.sub_: %s", ag_last_error());
    CHECK("w.grad = x + 2", w->grad, 0, 3, 4, 5);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Errors: PyTorch's words, plus the op and the shapes                                   */

Test(errors, shapes_that_do_not_broadcast)
{
    record_errors();
    ag_tensor *a = ag_ones(AG_SHAPE(2, 3)), *b = ag_ones(AG_SHAPE(2, 4));
    const char *ops[] = {"add", "sub", "mul", "div", "pow"};
    ag_tensor *(*fns[])(const ag_tensor *, const ag_tensor *) = {ag_add_tt, ag_sub_tt, ag_mul_tt,
                                                                 ag_div_tt, ag_pow_tt};
    for (int i = 0; i < 5; i++) {
        cr_assert_null(fns[i](a, b), "%s([2, 3], [2, 4]) succeeded", ops[i]);
        EXPECT_ERROR(ops[i], ops[i],
                     "The size of tensor a (3) must match the size of tensor b (4) at "
                     "non-singleton dimension 1",
                     "[2, 3]", "[2, 4]");
    }
    /* The dimension is counted in the broadcast shape: [2, 3, 4] against [5, 4]. */
    cr_assert_null(ag_add(ag_ones(AG_SHAPE(2, 3, 4)), ag_ones(AG_SHAPE(5, 4))), "add succeeded");
    EXPECT_ERROR("add([2, 3, 4], [5, 4])",
                 "The size of tensor a (3) must match the size of tensor b (5) at non-singleton "
                 "dimension 1",
                 "[2, 3, 4]", "[5, 4]");
    test_finish();
}

Test(errors, backward_on_a_tensor_that_does_not_require_grad)
{
    record_errors();
    cr_assert(!ag_backward(ag_sum(ag_ones(AG_SHAPE(3)))), "backward succeeded");
    EXPECT_ERROR("backward", "backward",
                 "element 0 of tensors does not require grad and does not have a grad_fn", "[]");
    test_finish();
}

Test(errors, non_scalar_backward_needs_a_gradient)
{
    record_errors();
    ag_tensor *x = VEC(true, 1, 2, 3);
    cr_assert(!ag_backward(ag_mul(x, 2.0)), "backward of a [3] tensor succeeded");
    EXPECT_ERROR("backward", "backward", "grad can be implicitly created only for scalar outputs",
                 "[3]");
    cr_assert_null(x->grad, "x.grad set by a failed backward");
    test_finish();
}

Test(errors, gradient_of_the_wrong_size)
{
    record_errors();
    ag_tensor *x = VEC(true, 1, 2, 3);
    cr_assert(!ag_backward_with(ag_mul(x, x), VEC(false, 1, 2), false), "backward succeeded");
    EXPECT_ERROR("backward", "Mismatch in shape", "[2]", "[3]");
    cr_assert_null(x->grad, "x.grad set by a failed backward");
    test_finish();
}

Test(errors, gradient_of_the_same_size_but_another_shape)
{
    /* PyTorch compares shapes, not sizes: "Mismatch in shape: grad_output[0] has a shape of
     * torch.Size([1, 3]) and output[0] has a shape of torch.Size([3])." */
    record_errors();
    ag_tensor *x = VEC(true, 1, 2, 3);
    ag_tensor *g = ag_ones(AG_SHAPE(1, 3));
    cr_assert(!ag_backward_with(ag_mul(x, x), g, false),
              "backward with a [1, 3] gradient for a [3] output succeeded; PyTorch refuses");
    EXPECT_ERROR("backward", "Mismatch in shape", "[1, 3]", "[3]");
    cr_assert_null(x->grad, "x.grad set by a failed backward");
    test_finish();
}

Test(errors, null_arguments)
{
    record_errors();
    ag_tensor *x = VEC(true, 1, 2);
    cr_assert_null(ag_add(NULL, x), "add(NULL, x) returned a tensor");
    EXPECT_ERROR("add(NULL, x)", "add", "NULL");
    cr_assert_null(ag_mul(x, (ag_tensor *)NULL), "mul(x, NULL) returned a tensor");
    EXPECT_ERROR("mul(x, NULL)", "mul", "NULL");
    cr_assert_null(ag_sum(NULL), "sum(NULL) returned a tensor");
    EXPECT_ERROR("sum(NULL)", "sum", "NULL");
    cr_assert_null(ag_view(NULL, AG_SHAPE(2)), "view(NULL) returned a tensor");
    EXPECT_ERROR("view(NULL)", "view", "NULL");
    cr_assert(!ag_backward(NULL), "backward(NULL) returned true");
    EXPECT_ERROR("backward(NULL)", "backward", "NULL");
    double v = ag_item(NULL);
    cr_assert(isnan(v), "item(NULL) returned %g, expected NAN", v);
    EXPECT_ERROR("item(NULL)", "item", "NULL");
    cr_assert_null(ag_sub_(NULL, 1.0), "sub_(NULL, 1) returned a tensor");
    EXPECT_ERROR("sub_(NULL)", "sub_", "NULL");
    cr_assert_null(ag_tensor_from(NULL, AG_SHAPE(2), false), "tensor_from(NULL) returned a tensor");
    EXPECT_ERROR("tensor_from(NULL)", "tensor_from", "NULL");
    test_finish();
}

static int handler_calls;
static void count_errors(const char *message, void *userdata)
{
    (void)message;
    *(int *)userdata += 1;
}

Test(errors, null_from_a_failed_op_is_reported_once)
{
    ag_error_fn previous = ag_set_error_handler(count_errors, &handler_calls);
    cr_assert_not_null(previous, "the default handler should be installed at start");
    ag_tensor *bad = ag_add(ag_ones(AG_SHAPE(2, 3)), ag_ones(AG_SHAPE(2, 4)));
    cr_assert_null(bad, "add([2, 3], [2, 4]) returned a tensor");
    char first[1024];
    snprintf(first, sizeof first, "%s", ag_last_error());
    cr_assert_null(ag_sum(ag_mul(ag_neg(bad), 2.0)), "ops on NULL returned a tensor");
    cr_assert(!ag_backward(ag_mean(bad)), "backward of an expression on NULL returned true");
    cr_assert(isnan(ag_item(bad)), "item(NULL) is not NAN");
    cr_assert_str_eq(ag_last_error(), first, "the first message was replaced:\n%s\nby:\n%s", first,
                     ag_last_error());
    cr_assert_eq(handler_calls, 1, "handler called %d times, expected once", handler_calls);
    test_finish();
}

Test(errors, tensor_from_a_released_graph)
{
    record_errors();
    ag_tensor *keep = VEC(true, 1, 2);
    ag_mark mark = ag_mark_now();
    ag_tensor *t = ag_mul(keep, 2.0);
    ag_release(mark);
    cr_assert_null(ag_add(t, keep), "add on a released tensor returned a tensor");
    EXPECT_ERROR("add(released, x)", "add", "released");
    cr_assert(isnan(ag_item(ag_sum(t))), "sum/item on a released tensor is not NAN");
    EXPECT_ERROR("sum(released)", "sum", "released");
    cr_assert(!ag_backward(t), "backward on a released tensor returned true");
    EXPECT_ERROR("backward(released)", "backward", "released");
    CHECK("the tensor made before the mark survives", keep, 0, 1, 2);
    test_finish();
}

Test(errors, item_on_a_multi_element_tensor)
{
    record_errors();
    double v = ag_item(ag_ones(AG_SHAPE(3)));
    cr_assert(isnan(v), "item of a [3] tensor returned %g, expected NAN", v);
    EXPECT_ERROR("item", "item", "a Tensor with 3 elements cannot be converted to Scalar", "[3]");
    test_finish();
}

Test(errors, get_out_of_range)
{
    record_errors();
    ag_tensor *t = ag_ones(AG_SHAPE(2, 3));
    cr_assert(isnan(ag_get(t, AG_SHAPE(2, 0))), "t[2, 0] of a [2, 3] tensor is not NAN");
    EXPECT_ERROR("get(2, 0)", "get", "index 2 is out of bounds for dimension 0 with size 2",
                 "[2, 3]");
    cr_assert(isnan(ag_get(t, AG_SHAPE(1, -4))), "t[1, -4] of a [2, 3] tensor is not NAN");
    EXPECT_ERROR("get(1, -4)", "index -4 is out of bounds for dimension 1 with size 3");
    cr_assert(isnan(ag_get(t, AG_SHAPE(1))), "one index for a [2, 3] tensor is not NAN");
    EXPECT_ERROR("get(1)", "get", "[2, 3]");
    test_finish();
}

Test(errors, view_with_an_impossible_shape)
{
    record_errors();
    ag_tensor *x = ag_arange(0, 60, 1);
    cr_assert_null(ag_view(x, AG_SHAPE(7, -1)), "view(7, -1) of 60 elements succeeded");
    EXPECT_ERROR("view(7, -1)", "view", "shape '[7, -1]' is invalid for input of size 60", "[60]");
    cr_assert_null(ag_reshape(x, AG_SHAPE(7, 8)), "reshape(7, 8) of 60 elements succeeded");
    EXPECT_ERROR("reshape(7, 8)", "reshape", "shape '[7, 8]' is invalid for input of size 60");
    cr_assert_null(ag_view(x, AG_SHAPE(-1, -1)), "view(-1, -1) succeeded");
    EXPECT_ERROR("view(-1, -1)", "view", "only one dimension can be inferred");
    cr_assert_null(ag_view(x, AG_SHAPE(-2, 30)), "view(-2, 30) succeeded");
    EXPECT_ERROR("view(-2, 30)", "view", "invalid shape dimension -2");
    test_finish();
}

Test(errors, rank_above_four)
{
    record_errors();
    cr_assert_null(ag_full(AG_SHAPE(1, 1, 1, 1, 2), 0), "full with 5 dims succeeded");
    EXPECT_ERROR("full 5-d", "full", "at most 4 dimensions", "5");
    cr_assert_null(ag_view(ag_ones(AG_SHAPE(6)), AG_SHAPE(1, 1, 1, 1, 6)), "5-d view succeeded");
    EXPECT_ERROR("view 5-d", "view", "at most 4 dimensions");
    cr_assert_null(ag_tensor_from((const float[]){1}, AG_SHAPE(1, 1, 1, 1, 1), false),
                   "5-d tensor_from succeeded");
    EXPECT_ERROR("tensor_from 5-d", "tensor_from", "at most 4 dimensions");
    test_finish();
}

Test(errors, factory_errors_name_the_factory)
{
    /* ag_zeros and ag_ones report their own names, not the helper they are built on. */
    record_errors();
    cr_assert_null(ag_zeros(AG_SHAPE(1, 1, 1, 1, 2)), "zeros with 5 dims succeeded");
    EXPECT_ERROR("zeros 5-d", "zeros", "at most 4 dimensions");
    cr_assert_null(ag_ones(AG_SHAPE(2, -3)), "ones with a negative size succeeded");
    EXPECT_ERROR("ones [2, -3]", "ones", "[2, -3]");
    test_finish();
}

Test(errors, requires_grad_false_on_a_non_leaf)
{
    record_errors();
    ag_tensor *y = ag_mul(VEC(true, 1, 2), 2.0);
    cr_assert_null(ag_requires_grad_(y, false), "requires_grad_(nonleaf, false) succeeded");
    EXPECT_ERROR("requires_grad_", "requires_grad_",
                 "you can only change requires_grad flags of leaf variables.");
    cr_assert(y->requires_grad, "the failed call changed requires_grad");
    test_finish();
}

Test(errors, retain_grad_on_a_tensor_that_does_not_require_grad)
{
    record_errors();
    cr_assert_null(ag_retain_grad(ag_ones(AG_SHAPE(2))), "retain_grad succeeded");
    EXPECT_ERROR("retain_grad", "retain_grad",
                 "can't retain_grad on Tensor that has requires_grad=False");
    test_finish();
}

Test(errors, inplace_with_a_shape_that_does_not_fit_self)
{
    record_errors();
    ag_tensor *t = VEC(false, 1, 2, 3), *big = ag_ones(AG_SHAPE(2, 3));
    cr_assert_null(ag_copy_(t, big), "copy_([3] <- [2, 3]) succeeded");
    EXPECT_ERROR("copy_", "copy_",
                 "output with shape [3] doesn't match the broadcast shape [2, 3]");
    cr_assert_null(ag_sub_(t, big), "sub_([3], [2, 3]) succeeded");
    EXPECT_ERROR("sub_", "sub_", "output with shape [3] doesn't match the broadcast shape [2, 3]");
    CHECK("t unchanged", t, 0, 1, 2, 3);
    cr_assert_null(ag_sub_(big, ag_ones(AG_SHAPE(2, 4))), "sub_([2, 3], [2, 4]) succeeded");
    EXPECT_ERROR("sub_ [2, 4]", "sub_",
                 "The size of tensor a (3) must match the size of tensor b (4) at non-singleton "
                 "dimension 1");
    CHECK("big unchanged", big, 0, 1, 1, 1, 1, 1, 1);
    test_finish();
}

/* Without a handler an error ends the process with status 1, like an uncaught exception. */
Test(errors, default_handler_exits_with_status_1, .exit_code = 1)
{
    ag_backward(ag_sum(ag_ones(AG_SHAPE(3))));
    cr_assert_fail("backward on a tensor without requires_grad returned under the default "
                   "handler");
}

Test(errors, shutdown_restores_the_default_handler, .exit_code = 1)
{
    record_errors();
    ag_shutdown();
    ag_item(ag_ones(AG_SHAPE(2)));
    cr_assert_fail("item of a [2] tensor returned after ag_shutdown reset the handler");
}

/* ------------------------------------------------------------------------------------ */
/* arange                                                                                */

Test(arange, length_is_ceil_of_span_over_step)
{
    struct {
        double start, end, step;
        int64_t n;
    } cases[] = {{0, 1, 0.3, 4}, {5, 0, -1, 5},    {0, 10, 3, 4},
                 {1, 1, 0.1, 0}, {-3, 3, 0.1, 60}, {0, 1, 0.1, 10}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ag_tensor *t = ag_arange(cases[i].start, cases[i].end, cases[i].step);
        cr_assert_not_null(t, "arange(%g, %g, %g): %s", cases[i].start, cases[i].end, cases[i].step,
                           ag_last_error());
        check_shape("arange", t, AG_SHAPE(cases[i].n));
    }
    CHECK("arange(5, 0, -1)", ag_arange(5, 0, -1), 0, 5, 4, 3, 2, 1);
    CHECK("arange(0, 1, 0.3)", ag_arange(0, 1, 0.3), 0, 0, 0.3f, 0.6f, 0.9f);
    test_finish();
}

Test(arange, values_are_pytorchs_floats)
{
    /* torch.arange(-3, 3, 0.1) from PyTorch 1.13 (AVX2 kernel), bit for bit. Element 9 is
     * -2.1000001f, not the float nearest -3 + 9 * 0.1. */
    static const float want[60] = {
        -0x1.8p+1,       -0x1.733334p+1, -0x1.666666p+1, -0x1.59999ap+1, -0x1.4cccccp+1,
        -0x1.4p+1,       -0x1.333334p+1, -0x1.266666p+1, -0x1.19999ap+1, -0x1.0ccccep+1,
        -0x1p+1,         -0x1.e66668p+0, -0x1.cccccep+0, -0x1.b33334p+0, -0x1.99999ap+0,
        -0x1.8p+0,       -0x1.666666p+0, -0x1.4cccccp+0, -0x1.333332p+0, -0x1.19999ap+0,
        -0x1p+0,         -0x1.ccccccp-1, -0x1.999998p-1, -0x1.666666p-1, -0x1.333334p-1,
        -0x1p-1,         -0x1.99999cp-2, -0x1.333334p-2, -0x1.99999cp-3, -0x1.9999ap-4,
        -0x1.99999ap-26, 0x1.999994p-4,  0x1.99999ap-3,  0x1.333334p-2,  0x1.99999ap-2,
        0x1p-1,          0x1.333334p-1,  0x1.666666p-1,  0x1.99999ap-1,  0x1.ccccccp-1,
        0x1p+0,          0x1.19999ap+0,  0x1.333334p+0,  0x1.4cccccp+0,  0x1.666666p+0,
        0x1.8p+0,        0x1.99999ap+0,  0x1.b33334p+0,  0x1.ccccccp+0,  0x1.e66666p+0,
        0x1p+1,          0x1.0cccccp+1,  0x1.19999ap+1,  0x1.266666p+1,  0x1.333334p+1,
        0x1.4p+1,        0x1.4cccccp+1,  0x1.59999ap+1,  0x1.666666p+1,  0x1.733334p+1};
    ag_tensor *t = ag_arange(-3, 3, 0.1);
    cr_assert_not_null(t, "arange(-3, 3, 0.1): %s", ag_last_error());
    cr_assert_eq(t->numel, 60, "arange(-3, 3, 0.1) has %lld elements", (long long)t->numel);
    for (int i = 0; i < 60; i++)
        cr_assert(t->data[i] == want[i], "arange(-3, 3, 0.1)[%d] = %a (%.9g), PyTorch: %a (%.9g)",
                  i, (double)t->data[i], (double)t->data[i], (double)want[i], (double)want[i]);
    cr_assert_eq(t->data[9], -2.1000001f, "element 9 = %.9g, PyTorch -2.1000001",
                 (double)t->data[9]);
    test_finish();
}

Test(arange, errors)
{
    record_errors();
    cr_assert_null(ag_arange(0, 1, 0), "arange with step 0 succeeded");
    EXPECT_ERROR("arange(0, 1, 0)", "arange", "step must be nonzero");
    cr_assert_null(ag_arange(0, 1, -0.1), "arange(0, 1, -0.1) succeeded");
    EXPECT_ERROR("arange(0, 1, -0.1)", "arange",
                 "upper bound and larger bound inconsistent with step sign");
    cr_assert_null(ag_arange(1, 0, 0.1), "arange(1, 0, 0.1) succeeded");
    EXPECT_ERROR("arange(1, 0, 0.1)", "upper bound and larger bound inconsistent with step sign");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Making and reading tensors; views                                                     */

Test(tensors, factories_values_and_shapes)
{
    ag_tensor *t = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), true);
    check_shape("tensor_from", t, AG_SHAPE(2, 3));
    CHECK("tensor_from", t, 0, 1, 2, 3, 4, 5, 6);
    cr_assert(t->requires_grad && ag_is_leaf(t), "tensor_from(..., true) should be a leaf");
    ag_tensor *s = ag_scalar(-2.5, false);
    check_shape("scalar", s, SCALAR);
    CHECK("scalar", s, 0, -2.5f);
    check_shape("zeros", ag_zeros(AG_SHAPE(2, 1, 2)), AG_SHAPE(2, 1, 2));
    CHECK("zeros", ag_zeros(AG_SHAPE(2, 1, 2)), 0, 0, 0, 0, 0);
    CHECK("ones", ag_ones(AG_SHAPE(3)), 0, 1, 1, 1);
    check_shape("full", ag_full(AG_SHAPE(1, 2), 0.25), AG_SHAPE(1, 2));
    CHECK("full", ag_full(AG_SHAPE(1, 2), 0.25), 0, 0.25f, 0.25f);
    check_shape("zeros of shape []", ag_zeros(SCALAR), SCALAR);
    check_shape("zeros with a 0 size", ag_zeros(AG_SHAPE(2, 0)), AG_SHAPE(2, 0));
    cr_assert_eq(ag_zeros(AG_SHAPE(2, 0))->numel, 0, "a [2, 0] tensor has elements");
    test_finish();
}

Test(tensors, shape_macro_and_size)
{
    ag_shape s = AG_SHAPE(3, 1);
    cr_assert(s.ndim == 2 && s.d[0] == 3 && s.d[1] == 1, "AG_SHAPE(3, 1) = {%d: %lld, %lld}",
              s.ndim, (long long)s.d[0], (long long)s.d[1]);
    cr_assert_eq(AG_SHAPE(1, 2, 3, 4).ndim, 4, "AG_SHAPE(1, 2, 3, 4).ndim = %d",
                 AG_SHAPE(1, 2, 3, 4).ndim);
    ag_shape z = ag_size(ag_zeros(AG_SHAPE(2, 5, 1)));
    cr_assert(z.ndim == 3 && z.d[0] == 2 && z.d[1] == 5 && z.d[2] == 1,
              "size = {%d: %lld, %lld, %lld}", z.ndim, (long long)z.d[0], (long long)z.d[1],
              (long long)z.d[2]);
    cr_assert_eq(ag_size(ag_scalar(1, false)).ndim, 0, "size of a scalar has %d dims",
                 ag_size(ag_scalar(1, false)).ndim);
    test_finish();
}

Test(tensors, item_and_get)
{
    cr_assert_eq(ag_item(ag_scalar(1.5, false)), 1.5, "item of 1.5 = %g",
                 ag_item(ag_scalar(1.5, false)));
    ag_tensor *one = ag_tensor_from((const float[]){-4}, AG_SHAPE(1, 1), false);
    cr_assert_eq(ag_item(one), -4.0, "item of [[-4]] = %g", ag_item(one));
    ag_tensor *t = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), false);
    struct {
        int64_t i, j;
        double want;
    } cases[] = {{0, 0, 1}, {1, 2, 6}, {-1, -1, 6}, {-2, 0, 1}, {0, -3, 1}, {-1, 1, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        double v = ag_get(t, AG_SHAPE(cases[k].i, cases[k].j));
        cr_assert_eq(v, cases[k].want, "t[%lld, %lld] = %g, expected %g", (long long)cases[k].i,
                     (long long)cases[k].j, v, cases[k].want);
    }
    cr_assert_eq(ag_get(ag_scalar(7, false), SCALAR), 7.0, "t[()] of a scalar");
    test_finish();
}

Test(tensors, view_and_reshape_share_storage)
{
    ag_tensor *x = ag_arange(0, 6, 1);
    ag_tensor *v = ag_view(x, AG_SHAPE(2, -1)), *r = ag_reshape(x, AG_SHAPE(-1, 2));
    check_shape("view(2, -1)", v, AG_SHAPE(2, 3));
    check_shape("reshape(-1, 2)", r, AG_SHAPE(3, 2));
    cr_assert(v->data == x->data && r->data == x->data, "view/reshape do not share storage");
    ag_fill_(x, 9);
    cr_assert_eq(ag_get(v, AG_SHAPE(1, 2)), 9.0, "view does not see writes to its base");
    check_shape("view to a scalar", ag_view(ag_ones(AG_SHAPE(1, 1)), SCALAR), SCALAR);
    test_finish();
}

Test(tensors, gradients_flow_back_through_view_and_reshape)
{
    /* s = sum(reshape(view(x, [2, 3]), [3, 2]) * C): ds/dx = C in x's (flat) order */
    ag_tensor *x = ag_arange(0, 6, 1);
    ag_requires_grad_(x, true);
    ag_tensor *C = ag_tensor_from((const float[]){1, -1, 2, -2, 3, -3}, AG_SHAPE(3, 2), false);
    ag_tensor *r = ag_reshape(ag_view(x, AG_SHAPE(2, 3)), AG_SHAPE(3, 2));
    cr_assert(ag_backward(ag_sum(ag_mul(r, C))), "backward: %s", ag_last_error());
    check_shape("x.grad", x->grad, AG_SHAPE(6));
    CHECK("x.grad = C", x->grad, 0, 1, -1, 2, -2, 3, -3);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* The API's forms                                                                       */

/* A user function with read-only inputs, the common case: every generic form takes const
 * tensors, on either side of a number. */
static ag_tensor *affine(const ag_tensor *w, const ag_tensor *x, const ag_tensor *b)
{
    return ag_sub(ag_add(ag_mul(w, x), ag_div(b, 2.0)), ag_pow(ag_mul(2.0, x), 1.0));
}

Test(api, generic_forms_take_const_tensors)
{
    record_errors();
    ag_tensor *w = ag_scalar(3, true), *b = ag_scalar(4, true);
    const ag_tensor *x = VEC(false, 1, 2);
    ag_tensor *y = affine(w, x, b); /* 3x + 2 - 2x */
    CHECK("y", y, 0, 3, 4);
    ag_tensor *z = ag_sub(1, (const ag_tensor *)y);
    CHECK("1 - y", z, 0, -2, -3);
    cr_assert(ag_backward(ag_sum(y)), "backward: %s", ag_last_error());
    CHECK("w.grad", w->grad, 0, 3);
    CHECK("b.grad", b->grad, 0, 1);
    test_finish();
}

Test(api, factories_take_requires_grad_in_order_or_by_name)
{
    record_errors();
    ag_tensor *t[] = {
        ag_zeros(AG_SHAPE(3), .requires_grad = true),
        ag_ones(AG_SHAPE(2, 2), true),
        ag_full(AG_SHAPE(2), 1.5, .requires_grad = true),
        ag_randn(AG_SHAPE(4), .requires_grad = true),
        ag_rand(AG_SHAPE(4), true),
        ag_scalar(-15.0, .requires_grad = true),
        ag_scalar(-15.0, true),
        ag_tensor_from((const float[]){1, 2}, AG_SHAPE(2), .requires_grad = true),
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        cr_assert(t[i] && t[i]->requires_grad && ag_is_leaf(t[i]),
                  "factory %zu: no leaf that requires grad (%s)", i, ag_last_error());
    ag_tensor *plain[] = {ag_zeros(AG_SHAPE(3)), ag_full(AG_SHAPE(2), 1.5), ag_randn(AG_SHAPE(2)),
                          ag_scalar(2.0)};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        cr_assert(plain[i] && !plain[i]->requires_grad, "factory %zu requires grad unasked", i);
    CHECK("full", t[2], 0, 1.5, 1.5);
    CHECK("scalar", t[5], 0, -15);
    /* torch.zeros(3, requires_grad=True) then backward, in one line each */
    cr_assert(ag_backward(ag_sum(ag_mul(t[0], 2.0))), "backward: %s", ag_last_error());
    CHECK("zeros.grad", t[0]->grad, 0, 2, 2, 2);
    test_finish();
}
