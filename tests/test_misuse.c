/* The misuse catalogue (README, "What agrad answers to misuse"): each row that is not
 * already a test of test_core.c is a test here. Every misuse ends in a clear error or in
 * PyTorch's result, never in a crash, a sanitizer report or silently wrong numbers. */
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>

#include "agrad_test.h"
#include "internal.h" /* one white-box test sets a version counter */
#include "ref/bgd_ref.h"

#ifdef AGT_HAVE_LSAN
#include <sanitizer/asan_interface.h>
#endif

static ag_tensor *cube_sum(ag_tensor *const *in, void *userdata)
{
    (void)userdata;
    return ag_sum(ag_mul(ag_mul(in[0], in[0]), in[0]));
}

/* ------------------------------------------------------------------------------------ */
/* Memory: use after release, after shutdown, stale marks                                */

Test(misuse, released_tensor_is_reported_in_fast_mode)
{
    /* Fast mode reports a released tensor until newer tensors reuse its memory. The
     * number forms make nothing before checking their tensor, so they report it too. */
    ag_set_checked(false);
    record_errors();
    ag_tensor *keep = VEC(true, 1, 2);
    ag_mark mark = ag_mark_now();
    ag_tensor *t = ag_mul(keep, 3.0);
    ag_release(mark);
    cr_assert_null(ag_mul(t, 2.0), "mul(released, 2) computed something");
    EXPECT_ERROR("mul(released, 2)", "mul: argument a is a released tensor");
    cr_assert_null(ag_sub(1, t), "sub(1, released) computed something");
    EXPECT_ERROR("sub(1, released)", "sub: argument b is a released tensor");
    cr_assert_null(ag_add(t, keep), "add(released, x) computed something");
    EXPECT_ERROR("add(released, x)", "add: argument a is a released tensor");
    cr_assert_null(ag_sub_(t, 1.0), "sub_(released, 1) wrote something");
    EXPECT_ERROR("sub_(released, 1)", "sub_: argument self is a released tensor");
    CHECK("keep", keep, 0, 1, 2);
    test_finish();
}

Test(misuse, released_tensor_is_reported_in_checked_mode_even_after_new_tensors)
{
    /* Checked mode keeps released memory out of use, so a stale pointer is always caught,
     * however many tensors came after it. */
    ag_set_checked(true);
    record_errors();
    ag_tensor *keep = VEC(true, 1, 2);
    ag_mark mark = ag_mark_now();
    ag_tensor *t = ag_mul(keep, 3.0);
    const void *was = t;
    for (int i = 0; i < 1000; i++) {
        ag_release(mark);
        ag_tensor *fresh = ag_mul(keep, (double)i);
        cr_assert_neq((const void *)fresh, was, "iteration %d reused the released memory", i);
    }
    cr_assert_null(ag_mul(t, 2.0), "mul(released, 2) computed something");
    EXPECT_ERROR("mul(released, 2)", "mul: argument a is a released tensor");
    cr_assert(isnan(ag_item(t)), "item(released) is not NAN");
    EXPECT_ERROR("item(released)", "item: argument self is a released tensor");
    cr_assert(ag_memory_stats().checked, "ag_memory_stats() does not say checked");
    test_finish();
}

Test(misuse, grad_of_a_released_tensor_is_reported)
{
    for (int checked = 0; checked < 2; checked++) {
        ag_set_checked(checked);
        record_errors();
        ag_mark mark = ag_mark_now();
        ag_tensor *x = VEC(true, 1, 2, 3);
        cr_assert(ag_backward(ag_sum(ag_mul(x, x))), "backward: %s", ag_last_error());
        ag_tensor *g = x->grad;
        CHECK("x.grad", g, 0, 2, 4, 6);
        ag_release(mark); /* frees x and its gradient */
        cr_assert_null(ag_mul(g, 2.0), "mul(released grad, 2) computed something");
        EXPECT_ERROR("mul(released grad)", "mul: argument a is the ->grad of a released tensor");
        cr_assert_null(ag_zero_(g), "zero_(released grad) wrote something");
        EXPECT_ERROR("zero_(released grad)", "zero_: argument self is the ->grad");
        test_finish();
    }
}

Test(misuse, tensor_used_after_shutdown_is_reported)
{
    for (int checked = 0; checked < 2; checked++) {
        ag_set_checked(checked);
        ag_tensor *w = ag_scalar(2.0, true);
        cr_assert(ag_backward(ag_mul(w, w)), "backward: %s", ag_last_error());
        ag_tensor *g = w->grad;
        ag_shutdown(); /* frees every chunk: w and g point to memory agrad gave back */
        record_errors();
        cr_assert_null(ag_mul(w, 2.0), "mul(w from before shutdown) computed something");
        EXPECT_ERROR("mul(old w)", "mul: argument a is not a tensor agrad holds", "ag_shutdown");
        cr_assert(isnan(ag_item(g)), "item(old grad) is not NAN");
        EXPECT_ERROR("item(old grad)", "item: argument self is not a tensor agrad holds");
        cr_assert(!ag_backward(w), "backward(old w) succeeded");
        EXPECT_ERROR("backward(old w)", "backward: argument self is not a tensor agrad holds");
        /* agrad works again (the system may now hand out the old addresses anew) */
        ag_tensor *v = ag_scalar(3.0, true);
        cr_assert(ag_backward(ag_mul(v, v)), "backward after shutdown: %s", ag_last_error());
        CHECK("v.grad", v->grad, 0, 6);
        test_finish();
    }
}

Test(misuse, stale_mark_is_a_no_op)
{
    record_errors();
    ag_tensor *keep = VEC(false, 1);
    ag_mark m1 = ag_mark_now();
    ag_tensor *a = VEC(false, 2);
    ag_mark m2 = ag_mark_now(); /* above a */
    ag_release(m1);             /* frees a: m2 is now stale */
    ag_tensor *b = VEC(false, 3), *c = VEC(false, 4);
    size_t live = ag_memory_stats().live_tensors;
    ag_release(m2); /* must not free b or c, made after the release that passed m2 */
    cr_assert_eq(ag_memory_stats().live_tensors, live, "a stale mark freed %zu live tensors",
                 live - ag_memory_stats().live_tensors);
    CHECK("b", b, 0, 3);
    CHECK("c", c, 0, 4);
    (void)a;
    /* m1 itself stays good: releasing to it again frees b and c */
    ag_release(m1);
    cr_assert_eq(ag_memory_stats().live_tensors, 1u, "after release(m1): %zu live",
                 ag_memory_stats().live_tensors);
    /* A mark from before shutdown is stale afterwards, even one at the very start. */
    ag_mark early = ag_mark_now(), start = {0, 0};
    ag_shutdown();
    record_errors();
    ag_tensor *d = VEC(false, 5), *e = VEC(false, 6);
    ag_release(early);
    ag_release(start);
    cr_assert_eq(ag_memory_stats().live_tensors, 2u,
                 "a mark from before ag_shutdown freed tensors made after it");
    CHECK("d", d, 0, 5);
    CHECK("e", e, 0, 6);
    /* ... also when no tensor was made between the mark and the shutdown (found by the
     * fuzz target) */
    ag_shutdown();
    ag_mark empty = ag_mark_now();
    ag_shutdown();
    record_errors();
    ag_tensor *f = VEC(false, 7);
    ag_release(empty);
    cr_assert_eq(ag_memory_stats().live_tensors, 1u, "a mark from an empty session freed f");
    CHECK("f", f, 0, 7);
    (void)keep;
    test_finish();
}

Test(misuse, released_memory_is_poisoned_under_address_sanitizer)
{
#ifndef AGT_HAVE_LSAN
    cr_skip_test("not an AddressSanitizer build");
#else
    for (int checked = 0; checked < 2; checked++) {
        ag_set_checked(checked);
        ag_mark mark = ag_mark_now();
        ag_tensor *t = ag_ones(AG_SHAPE(4));
        ag_requires_grad_(t, true);
        ag_backward(ag_sum(t));
        ag_tensor *g = t->grad;
        float *data = t->data;
        cr_assert(!__asan_address_is_poisoned(data), "live data is poisoned");
        ag_release(mark);
        cr_assert(__asan_address_is_poisoned(t), "a released header is not poisoned");
        cr_assert(__asan_address_is_poisoned(data), "released data is not poisoned");
        cr_assert(__asan_address_is_poisoned(g), "a released gradient is not poisoned");
        test_finish();
    }
#endif
}

Test(misuse, checked_mode_from_the_environment)
{
    setenv("AGRAD_CHECKED", "1", 1);
    cr_assert(ag_is_checked(), "AGRAD_CHECKED=1 did not turn checked mode on");
    cr_assert(ag_set_checked(false), "ag_set_checked did not return the previous setting");
    cr_assert(!ag_is_checked(), "ag_set_checked(false) did not override the environment");
    test_finish();
}

Test(misuse, fast_mode_from_the_environment)
{
    setenv("AGRAD_CHECKED", "0", 1);
    cr_assert(!ag_is_checked(), "AGRAD_CHECKED=0 did not turn checked mode off");
    test_finish();
}

Test(misuse, checked_mode_recycles_memory_after_its_window)
{
    /* With a 1 MiB window, a loop that releases 20 MiB runs in bounded memory. */
    setenv("AGRAD_QUARANTINE_MB", "1", 1);
    ag_set_checked(true);
    ag_tensor *w = ag_ones(AG_SHAPE(1000));
    ag_requires_grad_(w, true);
    ag_mark mark = ag_mark_now();
    for (int i = 0; i < 2000; i++) {
        ag_tensor *y = ag_sum(ag_mul(w, ag_ones(AG_SHAPE(1000))));
        cr_assert(ag_backward(y), "backward: %s", ag_last_error());
        ag_release(mark);
    }
    size_t bytes = ag_memory_stats().arena_bytes;
    cr_assert_lt(bytes, (size_t)8 << 20, "the arenas hold %zu bytes after 20 MiB of releases",
                 bytes);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Error handlers that do not return                                                      */

static jmp_buf escape;
static int escapes;
static void longjmp_handler(const char *message, void *userdata)
{
    (void)message, (void)userdata;
    escapes++;
    longjmp(escape, 1);
}

Test(misuse, handler_that_longjmps_out_of_backward)
{
    ag_set_error_handler(longjmp_handler, NULL);
    ag_tensor *w = ag_scalar(3.0, true);
    ag_tensor *y = ag_mul(ag_mul(w, w), w); /* saves its inputs */
    ag_backward(y);
    if (setjmp(escape) == 0) {
        ag_backward(y); /* a second time: an error in the middle of the pass */
        cr_assert_fail("the second backward returned");
    }
    cr_assert_eq(escapes, 1, "the handler ran %d times", escapes);
    /* The engine is consistent: a new graph backpropagates, with the right gradient. */
    ag_zero_(ag_data(w->grad));
    ag_tensor *z = ag_mul(w, w);
    cr_assert(ag_backward(z), "backward after the escape failed: %s", ag_last_error());
    CHECK("w.grad", w->grad, 0, 6);
    test_finish();
}

static void shutdown_handler(const char *message, void *userdata)
{
    (void)message;
    *(int *)userdata += 1;
    ag_shutdown();
}

Test(misuse, handler_that_calls_shutdown)
{
    int calls = 0;
    ag_set_error_handler(shutdown_handler, &calls);
    ag_tensor *w = ag_scalar(3.0, true);
    ag_tensor *y = ag_mul(w, w);
    ag_backward(y);
    cr_assert(!ag_backward(y), "the second backward succeeded");
    cr_assert_eq(calls, 1, "the handler ran %d times", calls);
    cr_assert_eq(ag_memory_stats().live_tensors, 0u, "the handler's shutdown did not free all");
    record_errors();
    ag_tensor *v = ag_scalar(2.0, true);
    cr_assert(ag_backward(ag_mul(ag_mul(v, v), v)), "backward after shutdown: %s", ag_last_error());
    CHECK("v.grad", v->grad, 0, 12);
    test_finish();
}

static ag_tensor *fails_when_moved(ag_tensor *const *in, void *userdata)
{
    (void)userdata;
    /* fine at the inputs given, a shape error once an element is moved */
    if (in[0]->data[0] == 1.0f) return ag_sum(ag_mul(in[0], in[0]));
    return ag_add(in[0], ag_ones(AG_SHAPE(5)));
}

Test(misuse, handler_that_longjmps_out_of_gradcheck)
{
    ag_set_error_handler(longjmp_handler, NULL);
    ag_tensor *x = VEC(true, 1, 2, 3);
    if (setjmp(escape) == 0) {
        ag_gradcheck(fails_when_moved, &x, 1, NULL, NULL, NULL);
        cr_assert_fail("gradcheck returned after an error");
    }
    cr_assert_eq(escapes, 1, "the handler ran %d times", escapes);
    cr_assert(strstr(ag_last_error(), "gradcheck: fn returned NULL when input 0 element 0"),
              "message: %s", ag_last_error());
    cr_assert(ag_is_grad_enabled(), "gradcheck left a no_grad scope open");
    CHECK("x, put back", x, 0, 1, 2, 3);
    record_errors();
    ag_tensor *y = ag_sum(ag_mul(x, x));
    cr_assert(ag_backward(y), "backward after the escape: %s", ag_last_error());
    CHECK("x.grad", x->grad, 0, 2, 4, 6);
    test_finish();
}

static ag_tensor *shuts_down_then_cubes(ag_tensor *const *in, void *userdata)
{
    *(int *)userdata += 1;
    ag_shutdown(); /* refused: gradcheck holds memory this would free */
    return cube_sum(in, NULL);
}

Test(misuse, shutdown_from_inside_gradcheck_is_refused)
{
    record_errors();
    ag_tensor *x = VEC(true, 0.5, -1, 2);
    int calls = 0;
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(shuts_down_then_cubes, &x, 1, &calls, NULL, &r), "%s", r.report);
    cr_assert_gt(calls, 1, "fn ran %d times", calls);
    EXPECT_ERROR("shutdown in fn",
                 "ag_shutdown: called from inside ag_backward, ag_gradcheck or a dataset's get");
    CHECK("x", x, 0, 0.5, -1, 2);
    test_finish();
}

Test(misuse, version_counter_does_not_wrap)
{
    /* 2^32 in-place writes after a graph saved x must still be caught. The writes are
     * simulated by setting the counter, which a 32-bit counter would wrap back to the
     * saved value. */
    record_errors();
    ag_tensor *x = VEC(true, 1, 2);
    ag_tensor *y = ag_sum(ag_mul(x, x));
    node(x)->version += UINT64_C(1) << 32;
    cr_assert(!ag_backward(y), "backward after 2^32 writes to a saved tensor succeeded");
    EXPECT_ERROR("backward", "modified by an inplace operation", "version 4294967296",
                 "expected version 0");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Shapes and sizes                                                                       */

Test(misuse, empty_tensors_with_huge_sizes_cost_nothing, .timeout = 10)
{
    record_errors();
    const int64_t T40 = INT64_C(1) << 40, T20 = INT64_C(1) << 20;
    ag_tensor *x = ag_zeros(AG_SHAPE(T40, T20, 0));
    cr_assert_not_null(x, "zeros([2^40, 2^20, 0]): %s", ag_last_error());
    ag_requires_grad_(x, true);
    ag_tensor *c = ag_zeros(AG_SHAPE(T40, 1, 0));
    ag_requires_grad_(c, true);
    ag_tensor *r[] = {
        ag_sum_dim(x, 1, false),
        ag_mean_dim(x, 0, true),
        ag_transpose(x, 0, 2),
        ag_add(c, ag_zeros(AG_SHAPE(T20, 1))),
        ag_max_dim(x, 1, false, NULL),
        ag_cat((ag_tensor *[]){x, x}, 2, 2),
        ag_matmul(x, ag_zeros(AG_SHAPE(0, 0))),
        ag_slice(x, 1, 1, 5),
        ag_select(x, 2 - 1, 3),
        ag_relu(x),
        ag_mul(x, 2.0),
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        cr_assert_not_null(r[i], "op %zu: %s", i, ag_last_error());
        cr_assert_eq(r[i]->numel, 0, "op %zu made %lld elements", i, (long long)r[i]->numel);
        cr_assert(ag_backward_with(r[i], ag_zeros(ag_size(r[i])), true), "backward %zu: %s", i,
                  ag_last_error());
    }
    cr_assert_eq(x->grad->numel, 0, "x.grad has %lld elements", (long long)x->grad->numel);
    test_finish();
}

Test(misuse, overflowing_sizes_are_errors)
{
    record_errors();
    const int64_t T40 = INT64_C(1) << 40;
    cr_assert_null(ag_zeros(AG_SHAPE(T40, T40)), "zeros([2^40, 2^40]) made a tensor");
    EXPECT_ERROR("zeros", "zeros: Storage size calculation overflowed with sizes=",
                 "[1099511627776, 1099511627776]");
    cr_assert_null(ag_ones(AG_SHAPE(INT64_C(1) << 62)), "ones([2^62]) made a tensor");
    EXPECT_ERROR("ones", "ones: Storage size calculation overflowed", "4611686018427387904");
    /* PyTorch accepts this one (a zero comes first); agrad refuses its nonzero sizes */
    cr_assert_null(ag_zeros(AG_SHAPE(0, T40, T40)), "zeros([0, 2^40, 2^40]) made a tensor");
    EXPECT_ERROR("zeros", "Storage size calculation overflowed");
    /* two empty tensors whose broadcast shape overflows */
    ag_tensor *col = ag_zeros(AG_SHAPE(T40, 1, 0)), *row = ag_zeros(AG_SHAPE(1, T40, 0));
    cr_assert_null(ag_add(col, row), "[2^40, 1, 0] + [1, 2^40, 0] made a tensor");
    EXPECT_ERROR("add", "add: Storage size calculation overflowed with sizes=",
                 "[1099511627776, 1099511627776, 0]");
    cr_assert_null(ag_view(ag_zeros(AG_SHAPE(0)), AG_SHAPE(T40, T40, 0)), "view overflow");
    EXPECT_ERROR("view", "numel: integer multiplication overflow");
    cr_assert_null(ag_reshape(ag_zeros(AG_SHAPE(0)), AG_SHAPE(-1, 0)), "reshape(-1, 0) of 0");
    EXPECT_ERROR("reshape", "cannot reshape tensor of 0 elements into shape [-1, 0]", "ambiguous");
    /* found by the fuzz target: sizes multiplied before the shape was known to be valid */
    cr_assert_null(ag_inverse(ag_zeros(AG_SHAPE(0, T40))), "inverse of [0, 2^40]");
    EXPECT_ERROR("inverse", "inverse: A must be batches of square matrices", "[0, 1099511627776]");
    cr_assert_null(ag_matmul(ag_zeros(AG_SHAPE(T40, 1, 0, 3)), ag_zeros(AG_SHAPE(1, T40, 0, 5))),
                   "matmul with batches broadcasting to 2^80 (and mismatched inner sizes)");
    EXPECT_ERROR("matmul", "matmul: Storage size calculation overflowed");
    cr_assert_null(ag_matmul(ag_zeros(AG_SHAPE(T40, 1 << 20, 0)), ag_zeros(AG_SHAPE(0, 1 << 12))),
                   "matmul to 2^72 elements made a tensor");
    EXPECT_ERROR("matmul", "matmul: Storage size calculation overflowed",
                 "[1099511627776, 1048576, 4096]");
    test_finish();
}

Test(misuse, arange_checks_its_range_before_converting_it)
{
    record_errors();
    cr_assert_null(ag_arange(0, 1e30, 1), "arange(0, 1e30) made a tensor");
    EXPECT_ERROR("arange(0, 1e30)", "arange: invalid size, possible overflow?");
    cr_assert_null(ag_arange(-1e300, 1e300, 1e-300), "arange over 1e600 steps");
    EXPECT_ERROR("arange(-1e300, 1e300, 1e-300)", "invalid size, possible overflow?");
    cr_assert_null(ag_arange(0, NAN, 1), "arange(0, nan) made a tensor");
    EXPECT_ERROR("arange(0, nan)", "arange: unsupported range: 0 -> nan");
    cr_assert_null(ag_arange(-INFINITY, 1, 1), "arange(-inf, 1) made a tensor");
    EXPECT_ERROR("arange(-inf, 1)", "unsupported range: -inf -> 1");
    cr_assert_null(ag_arange(0, 1, NAN), "arange with a nan step made a tensor");
    EXPECT_ERROR("arange(0, 1, nan)", "arange: step must be nonzero");
    cr_assert_null(ag_arange(0, 1e18, 1), "arange of 10^18 floats made a tensor");
    EXPECT_ERROR("arange(0, 1e18)", "arange: out of memory", "[1000000000000000000]");
    ag_tensor *e = ag_arange(0, 1, INFINITY); /* PyTorch: an empty tensor */
    cr_assert(e && e->numel == 0, "arange(0, 1, inf): %s", ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Where agrad follows PyTorch 1.13                                                       */

Test(misuse, writing_a_tensor_from_overlapping_memory_is_refused)
{
    record_errors();
    ag_tensor *a = ag_view(ag_arange(0, 6, 1), AG_SHAPE(2, 3));
    ag_tensor *flat = ag_view(a, AG_SHAPE(-1));
    /* PyTorch: "unsupported operation: some elements of the input tensor and the written-to
     * tensor refer to a single memory location. Please clone() the tensor before
     * performing the operation." */
    const char *words = "unsupported operation: some elements of the input tensor and the "
                        "written-to tensor refer to a single memory location. Please clone() "
                        "the tensor before performing the operation.";
    cr_assert_null(ag_copy_(ag_slice(flat, 0, 0, 3), ag_slice(flat, 0, 1, 4)), "copy_ overlap");
    EXPECT_ERROR("copy_(flat[0:3], flat[1:4])", "copy_: ", words);
    cr_assert_null(ag_copy_(ag_view(a, AG_SHAPE(1, 6)), ag_view(a, AG_SHAPE(6))), "[1,6]<-[6]");
    EXPECT_ERROR("copy_([1, 6] from [6])", words);
    cr_assert_null(ag_copy_(a, ag_select(a, 0, 0)), "copy_(a, a[0])");
    EXPECT_ERROR("copy_(a, a[0])", words);
    cr_assert_null(ag_add_(ag_slice(flat, 0, 0, 3), ag_slice(flat, 0, 1, 4)), "add_ overlap");
    EXPECT_ERROR("add_(flat[0:3], flat[1:4])", "add_: ", words);
    cr_assert_null(ag_mul_(a, ag_select(a, 0, 1)), "mul_(a, a[1])");
    EXPECT_ERROR("mul_(a, a[1])", words);
    CHECK("a, untouched", a, 0, 0, 1, 2, 3, 4, 5);
    /* The same memory with the same shape is fine, elementwise, as in PyTorch. */
    cr_assert_not_null(ag_copy_(ag_view(a, AG_SHAPE(6)), flat), "copy_ of itself: %s",
                       ag_last_error());
    cr_assert_not_null(ag_add_(a, a), "add_(a, a): %s", ag_last_error());
    CHECK("a + a", a, 0, 0, 2, 4, 6, 8, 10);
    test_finish();
}

Test(misuse, requires_grad_set_after_use_adds_no_edge)
{
    /* PyTorch: x = ones(2); y = (x * w).sum(); x.requires_grad_(); y.backward() leaves
     * x.grad None; and requires_grad_(False) before backward leaves it None too. */
    record_errors();
    ag_tensor *x = VEC(false, 1, 1), *w = VEC(true, 2, 3);
    ag_tensor *y = ag_sum(ag_mul(x, w));
    ag_requires_grad_(x, true);
    cr_assert(ag_backward(y), "backward: %s", ag_last_error());
    cr_assert_null(x->grad, "x got a gradient through an op recorded before it required grad");
    CHECK("w.grad", w->grad, 0, 1, 1);
    ag_tensor *v = VEC(true, 1, 1);
    ag_tensor *z = ag_sum(ag_mul(v, 2.0));
    ag_requires_grad_(v, false);
    cr_assert(ag_backward(z), "backward: %s", ag_last_error());
    cr_assert_null(v->grad, "v got a gradient though it no longer requires grad");
    test_finish();
}

Test(misuse, copy_from_a_source_that_requires_grad_is_recorded)
{
    /* PyTorch: s = tensor([1., 2.], requires_grad=True); t = zeros(2); t.copy_(s);
     * t.grad_fn is CopyBackwards; (t * 3).sum().backward() gives s.grad = [3, 3]; and a
     * broadcast copy into zeros(2, 2), times [[1, 2], [3, 4]], gives [4, 6]. */
    record_errors();
    ag_tensor *s = VEC(true, 1, 2);
    ag_tensor *t = ag_zeros(AG_SHAPE(2));
    cr_assert_not_null(ag_copy_(t, s), "copy_: %s", ag_last_error());
    cr_assert(t->requires_grad && !ag_is_leaf(t), "t after copy_ is not part of the graph");
    cr_assert_str_eq(ag_grad_fn_name(t), "CopyBackwards", "grad_fn %s", ag_grad_fn_name(t));
    cr_assert(ag_backward(ag_sum(ag_mul(t, 3.0))), "backward: %s", ag_last_error());
    CHECK("s.grad", s->grad, 0, 3, 3);
    ag_tensor *s2 = VEC(true, 1, 2);
    ag_tensor *t2 = ag_zeros(AG_SHAPE(2, 2));
    ag_copy_(t2, s2);
    ag_tensor *k = ag_view(ag_arange(1, 5, 1), AG_SHAPE(2, 2));
    cr_assert(ag_backward(ag_sum(ag_mul(t2, k))), "backward: %s", ag_last_error());
    CHECK("s2.grad", s2->grad, 0, 4, 6);
    test_finish();
}

Test(misuse, copy_that_cannot_be_recorded_is_refused)
{
    record_errors();
    ag_tensor *old = ag_zeros(AG_SHAPE(2)); /* made before the source */
    ag_tensor *s = VEC(true, 1, 2);
    cr_assert_null(ag_copy_(old, s), "a copy into an older tensor was not refused");
    EXPECT_ERROR("copy_(older, s)", "copy_: src (shape [2]) requires grad and was made after "
                                    "self (shape [2])");
    CHECK("old, untouched", old, 0, 0, 0);
    ag_tensor *s2 = VEC(true, 1, 2);
    ag_tensor *base2 = ag_zeros(AG_SHAPE(2, 2));
    cr_assert_null(ag_copy_(ag_select(base2, 0, 0), s2), "a copy into a view was not refused");
    EXPECT_ERROR("copy_(view, s)", "copy_: src requires grad", "view", "CopySlices");
    /* Under no_grad, or from a source that does not require grad, it is a plain copy. */
    AG_NO_GRAD { cr_assert_not_null(ag_copy_(old, s), "copy_ in no_grad: %s", ag_last_error()); }
    CHECK("old", old, 0, 1, 2);
    cr_assert(ag_is_leaf(old) && !old->requires_grad, "a no_grad copy_ recorded something");
    test_finish();
}

Test(misuse, large_broadcast_reductions_match_pytorch)
{
    /* The gradient reaching a 0-d w from a million elements, summed as precisely as
     * PyTorch sums it, epoch after epoch of batch gradient descent. */
    record_errors();
    ag_tensor *X = ag_view(ag_arange(-3, 3, 6e-6), AG_SHAPE(-1, 1));
    cr_assert_eq(X->numel, BGD_N, "X has %lld points", (long long)X->numel);
    ag_tensor *Y = ag_add(ag_mul(-3, X), 2);
    ag_tensor *w = ag_scalar(-15, true), *b = ag_scalar(-10, true);
    ag_mark mark = ag_mark_now();
    for (int epoch = 0; epoch < BGD_EPOCHS; epoch++) {
        ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, X), b), Y), 2));
        cr_assert(ag_backward(loss), "backward: %s", ag_last_error());
        /* 1e-6 relative, and 1e-7 of the scale of the terms: late gradients are small
         * differences of large terms, where PyTorch's own float sum rounds. (Summed one
         * term at a time in float, the gradients were off by 2e-5 to 1e-2.) */
        double ew = fabs(w->grad->data[0] - bgd_dw[epoch]),
               eb = fabs(b->grad->data[0] - bgd_db[epoch]);
        cr_assert(ew <= 1e-6 * fabs(bgd_dw[epoch]) + 1e-7 * fabs(bgd_dw[0]) &&
                      eb <= 1e-6 * fabs(bgd_db[epoch]) + 1e-7 * fabs(bgd_db[0]),
                  "epoch %d: dw %.9g (PyTorch %.9g), db %.9g (PyTorch %.9g)", epoch,
                  (double)w->grad->data[0], (double)bgd_dw[epoch], (double)b->grad->data[0],
                  (double)bgd_db[epoch]);
        cr_assert(fabs(ag_item(loss) / bgd_loss[epoch] - 1) <= 1e-6, "epoch %d: loss %.9g, %.9g",
                  epoch, ag_item(loss), (double)bgd_loss[epoch]);
        ag_set_data(w, ag_sub(ag_data(w), ag_mul(0.1, ag_data(w->grad))));
        ag_set_data(b, ag_sub(ag_data(b), ag_mul(0.1, ag_data(b->grad))));
        ag_zero_(w->grad);
        ag_zero_(b->grad);
        ag_release(mark);
        cr_assert(fabs(w->data[0] / bgd_w[epoch] - 1) <= 1e-6, "epoch %d: w %.9g, PyTorch %.9g",
                  epoch, (double)w->data[0], (double)bgd_w[epoch]);
        cr_assert(fabs(b->data[0] - bgd_b[epoch]) <= 1e-6 * fabs(bgd_b[0]),
                  "epoch %d: b %.9g, PyTorch %.9g", epoch, (double)b->data[0],
                  (double)bgd_b[epoch]);
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* gradcheck                                                                              */

Test(misuse, gradcheck_of_an_input_made_by_other_ops)
{
    /* PyTorch's gradcheck differentiates with respect to the input itself (autograd.grad)
     * and leaves every .grad alone. */
    record_errors();
    ag_tensor *leaf = VEC(true, 0.5, -1, 2);
    ag_tensor *x = ag_mul(leaf, 2.0);
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(cube_sum, &x, 1, NULL, NULL, &r), "%s", r.report);
    cr_assert_null(leaf->grad, "gradcheck changed the leaf's grad");
    cr_assert_null(x->grad, "gradcheck gave the non-leaf input a grad");
    test_finish();
}

Test(misuse, gradcheck_ignores_what_grad_holds)
{
    record_errors();
    ag_tensor *x = VEC(true, 0.5, -1, 2);
    ag_backward(cube_sum(&x, NULL));
    ag_fill_(x->grad, INFINITY);
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(cube_sum, &x, 1, NULL, NULL, &r), "%s", r.report);
    for (int i = 0; i < 3; i++)
        cr_assert(isinf(x->grad->data[i]), "x.grad[%d] changed to %g", i, (double)x->grad->data[i]);
    test_finish();
}

static ag_tensor *null_when_moved(ag_tensor *const *in, void *userdata)
{
    (void)userdata;
    return in[0]->data[1] == -1.0f ? cube_sum(in, NULL) : NULL;
}

Test(misuse, gradcheck_says_why_fn_failed)
{
    record_errors();
    ag_tensor *x = VEC(true, 0.5, -1, 2);
    cr_assert(!ag_gradcheck(null_when_moved, &x, 1, NULL, NULL, NULL), "gradcheck passed");
    EXPECT_ERROR("gradcheck", "gradcheck: fn returned NULL when input 0 element 1 was moved by",
                 "no error was reported");
    cr_assert(!ag_gradcheck(fails_when_moved, &x, 1, NULL, NULL, NULL), "gradcheck passed");
    EXPECT_ERROR("gradcheck",
                 "gradcheck: fn returned NULL at the inputs given: add:", "must match");
    CHECK("x, put back", x, 0, 0.5, -1, 2);
    test_finish();
}

Test(misuse, gradcheck_rejects_options_and_inputs_it_cannot_use)
{
    record_errors();
    ag_tensor *x = VEC(true, 0.5, -1, 2);
    ag_gradcheck_opts inf_eps = {INFINITY, 0, 0}, neg = {0, -1, 0}, nan_rtol = {0, 0, NAN};
    cr_assert(!ag_gradcheck(cube_sum, &x, 1, NULL, &inf_eps, NULL), "eps = inf accepted");
    EXPECT_ERROR("eps = inf", "gradcheck: opts->eps must be a finite number > 0", "inf");
    cr_assert(!ag_gradcheck(cube_sum, &x, 1, NULL, &neg, NULL), "atol = -1 accepted");
    EXPECT_ERROR("atol = -1", "opts->atol");
    cr_assert(!ag_gradcheck(cube_sum, &x, 1, NULL, &nan_rtol, NULL), "rtol = nan accepted");
    EXPECT_ERROR("rtol = nan", "opts->rtol");
    ag_tensor *y = VEC(true, 1, INFINITY);
    cr_assert(!ag_gradcheck(cube_sum, &y, 1, NULL, NULL, NULL), "an infinite input accepted");
    EXPECT_ERROR("inf input", "gradcheck: input 0 element 1 is inf");
    ag_gradcheck_opts huge = {1e308, 0, 0};
    cr_assert(!ag_gradcheck(cube_sum, &x, 1, NULL, &huge, NULL), "eps * |x| = inf accepted");
    EXPECT_ERROR("eps = 1e308", "finite");
    CHECK("x, put back", x, 0, 0.5, -1, 2);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                               */

Test(misuse, messages_name_the_argument_as_the_user_wrote_it)
{
    record_errors();
    ag_tensor *a = VEC(true, 1, 2);
    cr_assert_null(ag_cat((ag_tensor *[]){a, a, NULL}, 3, 0), "cat with a NULL");
    EXPECT_ERROR("cat", "cat: argument tensors[2] is NULL");
    cr_assert_null(ag_stack((ag_tensor *[]){a, NULL}, 2, 0), "stack with a NULL");
    EXPECT_ERROR("stack", "stack: argument tensors[1] is NULL");
    cr_assert_null(ag_sub(1, (ag_tensor *)NULL), "sub(1, NULL)");
    EXPECT_ERROR("sub(1, NULL)", "sub: argument b is NULL");
    cr_assert_null(ag_div(2, (ag_tensor *)NULL), "div(2, NULL)");
    EXPECT_ERROR("div(2, NULL)", "div: argument b is NULL");
    cr_assert_null(ag_pow((ag_tensor *)NULL, 2), "pow(NULL, 2)");
    EXPECT_ERROR("pow(NULL, 2)", "pow: argument self is NULL");
    cr_assert(!ag_gradcheck(cube_sum, (ag_tensor *[]){a, NULL}, 2, NULL, NULL, NULL), "gc");
    EXPECT_ERROR("gradcheck", "gradcheck: argument inputs[1] is NULL");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* More rows of the catalogue                                                            */

static ag_tensor *outer_loss;
static float reenter(float x)
{
    /* a derivative that calls backward: refused, the pass it runs in goes on */
    ag_backward(outer_loss);
    return 2 * x;
}
static float square(float x) { return x * x; }

Test(misuse, backward_from_inside_a_backward_pass_is_refused)
{
    record_errors();
    ag_tensor *x = VEC(true, 1, 2);
    outer_loss = ag_sum(ag_map(x, square, reenter, "SquareBackward"));
    cr_assert(ag_backward(outer_loss), "the outer backward failed: %s", ag_last_error());
    EXPECT_ERROR("inner backward", "backward: called while a backward pass is running");
    CHECK("x.grad", x->grad, 0, 2, 4);
    test_finish();
}

Test(misuse, inplace_on_a_recorded_tensor_is_refused)
{
    /* PyTorch records it (rebasing the graph); agrad refuses clearly instead. */
    record_errors();
    ag_tensor *x = VEC(true, 1, 2);
    ag_tensor *y = ag_mul(x, 2.0);
    cr_assert_null(ag_add_(y, 1.0), "add_ on a recorded tensor was accepted");
    EXPECT_ERROR("add_(y, 1)", "add_: agrad does not record in-place operations on a tensor "
                               "that requires grad (made by MulBackward0)");
    CHECK("y, untouched", y, 0, 2, 4);
    test_finish();
}

Test(misuse, nan_and_inf_in_data_propagate_as_in_pytorch)
{
    /* No error, as in PyTorch: IEEE arithmetic forward and backward. */
    record_errors();
    ag_tensor *x = VEC(true, NAN, INFINITY, -INFINITY, 1);
    ag_tensor *y = ag_sum(ag_mul(x, x));
    cr_assert(isnan(ag_item(y)), "sum(x * x) = %g", ag_item(y));
    cr_assert(ag_backward(y), "backward: %s", ag_last_error());
    const float *g = x->grad->data; /* 2x */
    cr_assert(isnan(g[0]) && g[1] == INFINITY && g[2] == -INFINITY && g[3] == 2.0f,
              "grad = [%g, %g, %g, %g]", (double)g[0], (double)g[1], (double)g[2], (double)g[3]);
    cr_assert(isnan(ag_item(ag_max(x))), "max with a nan is not nan");
    cr_assert_str_eq(ag_last_error(), "", "an error was reported: %s", ag_last_error());
    test_finish();
}
