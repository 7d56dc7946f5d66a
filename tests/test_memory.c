/* The memory rule: tensors live in an arena, ag_release frees a loop's graph and its
 * memory is reused; nothing has a fixed capacity; backward does not recurse. */
#include <math.h>

#include "agrad_test.h"

/* One step of the SGD lab's inner loop on sample i. */
static void sgd_step(ag_tensor *w, ag_tensor *b, const ag_tensor *X, const ag_tensor *Y, int64_t i)
{
    ag_tensor *x = ag_tensor_from(X->data + i, AG_SHAPE(1), false);
    ag_tensor *y = ag_tensor_from(Y->data + i, AG_SHAPE(1), false);
    ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), y), 2));
    cr_assert(ag_backward(loss), "backward failed: %s", ag_last_error());
    AG_NO_GRAD
    {
        ag_sub_(w, ag_mul(0.01, w->grad));
        ag_sub_(b, ag_mul(0.01, b->grad));
    }
    ag_zero_(w->grad);
    ag_zero_(b->grad);
}

Test(memory, steady_state_loop_allocates_nothing)
{
    ag_set_checked(false); /* checked mode keeps released memory out of use for a while */
    ag_manual_seed(1);
    ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    ag_tensor *Y = ag_add(ag_sub(X, 1), ag_mul(0.1, ag_randn(ag_size(X))));
    ag_tensor *w = ag_scalar(-15.0, true), *b = ag_scalar(-10.0, true);
    ag_mark graph = ag_mark_now();
    size_t live = ag_memory_stats().live_tensors;

    for (int i = 0; i < 100; i++) {
        sgd_step(w, b, X, Y, i % 60);
        ag_release(graph);
    }
    ag_stats warm = ag_memory_stats();
    for (int i = 0; i < 20000; i++) {
        sgd_step(w, b, X, Y, i % 60);
        ag_release(graph);
        cr_assert_eq(ag_memory_stats().live_tensors, live,
                     "iteration %d: %zu live tensors, %zu "
                     "before the loop",
                     i, ag_memory_stats().live_tensors, live);
    }
    ag_stats end = ag_memory_stats();
    cr_assert_eq(end.system_allocs, warm.system_allocs,
                 "system allocations grew from %zu to %zu in the steady state", warm.system_allocs,
                 end.system_allocs);
    cr_assert_eq(end.arena_bytes, warm.arena_bytes, "arena grew from %zu to %zu bytes",
                 warm.arena_bytes, end.arena_bytes);
    /* It trained: the fit approaches y = x - 1. */
    cr_assert(fabs(w->data[0] - 1.0) < 0.05 && fabs(b->data[0] + 1.0) < 0.05,
              "w = %g, b = %g after training", (double)w->data[0], (double)b->data[0]);
    test_finish();
}

Test(memory, release_keeps_older_tensors_and_frees_newer)
{
    ag_set_checked(false); /* so that the released memory is reused at once */
    ag_tensor *keep = ag_full(AG_SHAPE(3), 2.5);
    ag_tensor *w = ag_scalar(3.0, true);
    ag_mark m = ag_mark_now();
    ag_tensor *y = ag_mul(w, keep);
    ag_backward(ag_sum(y));
    cr_assert_eq(ag_memory_stats().live_tensors, 4u, "keep, w, w*keep, sum: %zu",
                 ag_memory_stats().live_tensors);
    ag_release(m);
    cr_assert_eq(ag_memory_stats().live_tensors, 2u, "after release: %zu",
                 ag_memory_stats().live_tensors);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(keep->data[i], 2.5f, "keep[%d] = %g", i, (double)keep->data[i]);
    /* w's gradient survives: it belongs to w, which was made before the mark. */
    cr_assert(w->grad && w->grad->data[0] == 7.5f, "w.grad = %g",
              w->grad ? (double)w->grad->data[0] : NAN);
    /* New tensors reuse the released memory. */
    ag_tensor *z = ag_zeros(AG_SHAPE(3));
    cr_assert_eq((void *)z, (void *)y, "the arena reuses released memory");
    /* Releasing past the end is a no-op. */
    ag_release((ag_mark){1000, UINT64_MAX});
    cr_assert_eq(ag_memory_stats().live_tensors, 3u, "live tensors: %zu",
                 ag_memory_stats().live_tensors);
    test_finish();
}

Test(memory, released_grads_of_per_iteration_leaves_are_freed)
{
    ag_mark m = ag_mark_now();
    for (int i = 0; i < 1000; i++) {
        ag_tensor *x = ag_full(AG_SHAPE(100), 1.0);
        ag_requires_grad_(x, true);
        ag_backward(ag_sum(ag_mul(x, x)));
        cr_assert_eq(x->grad->data[99], 2.0f, "grad = %g", (double)x->grad->data[99]);
        ag_release(m);
    }
    test_finish();
}

Test(memory, long_chain_backward_does_not_recurse)
{
    /* 400,000 nodes: y = ((x + x) + x) + ..., so dy/dx = 200,001, exact in float. */
    ag_tensor *x = ag_scalar(0.5, true);
    ag_tensor *y = x;
    for (int i = 0; i < 200000; i++) y = ag_add(ag_mul(y, 1), x);
    cr_assert(ag_backward(y), "backward failed: %s", ag_last_error());
    cr_assert_eq(x->grad->data[0], 200001.0f, "dy/dx = %.1f, expected 200001",
                 (double)x->grad->data[0]);
    cr_assert_geq(ag_memory_stats().live_tensors, 400001u, "graph of %zu tensors",
                  ag_memory_stats().live_tensors);
    test_finish();
}

Test(memory, tensors_larger_than_a_chunk)
{
    /* 8M floats: larger than the arena's chunks, which grow to fit. */
    ag_tensor *a = ag_full(AG_SHAPE(2048, 4096), 0.5);
    ag_requires_grad_(a, true);
    ag_tensor *loss = ag_mean(ag_mul(a, a));
    cr_assert_float_eq(ag_item(loss), 0.25, 1e-7, "mean(a*a) = %g", ag_item(loss));
    ag_backward(loss);
    /* d mean(a^2) / da = 2a / n */
    cr_assert_float_eq(a->grad->data[12345], 1.0f / 8388608.0f, 1e-12, "grad = %g",
                       (double)a->grad->data[12345]);
    test_finish();
}

Test(memory, shutdown_then_reuse)
{
    for (int round = 0; round < 3; round++) {
        ag_tensor *w = ag_scalar(2.0, true);
        ag_backward(ag_pow(w, 3));
        cr_assert_eq(w->grad->data[0], 12.0f, "round %d: d w^3 / dw = %g", round,
                     (double)w->grad->data[0]);
        test_finish();
        cr_assert_eq(ag_memory_stats().live_tensors, 0u, "live after shutdown: %zu",
                     ag_memory_stats().live_tensors);
    }
}

Test(memory, backward_costs_the_graph_not_the_tape)
{
    /* The parameters come first on the tape, then 100,000 tensors that have nothing to do
     * with the loss (recorded ones among them), then the loss's graph: the pass visits the
     * graph's 7 tensors (mean, pow, sub, add, mul, w, b) and nothing else. */
    ag_tensor *w = ag_scalar(2.0, true), *b = ag_scalar(1.0, true);
    for (int i = 0; i < 50000; i++) {
        ag_mul(w, 3.0);
        ag_ones(AG_SHAPE(2));
    }
    ag_tensor *x = ag_scalar(3.0, false);
    ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), 1.0), 2));
    cr_assert(ag_backward(loss), "backward: %s", ag_last_error());
    cr_assert_eq(ag_memory_stats().backward_nodes, 7u, "the pass visited %zu tensors",
                 ag_memory_stats().backward_nodes);
    /* d/dw (w x + b - 1)^2 = 2 (w x + b - 1) x = 36; d/db = 12 */
    cr_assert(w->grad->data[0] == 36.0f && b->grad->data[0] == 12.0f, "grads %g, %g",
              (double)w->grad->data[0], (double)b->grad->data[0]);
    test_finish();
}
