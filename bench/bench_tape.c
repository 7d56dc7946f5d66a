/* What a backward pass costs when the tape holds much more than its graph.
 *
 *   1. Per-sample SGD over 40,000 samples (the SGD lab's step), the graph released once
 *      per epoch or after every sample: the parameters come first on the tape, so a pass
 *      that walked the tape down to them would cost the whole epoch so far.
 *   2. A small MLP trained for 2,000, 4,000 and 8,000 steps without ever releasing:
 *      the time per step must not grow with the steps.
 *
 *   bench_tape [samples [steps]]     (defaults 40000 and 2000: the MLP runs steps, then
 *                                     twice, four and eight times as many)
 *
 * Each figure is the median of 5 runs; the tensors each pass visits (ag_memory_stats's
 * backward_nodes) are printed beside, to show that they do not depend on the tape, and
 * the arena's size: a loop that never releases touches new memory at every step, which
 * costs page faults and cache misses of its own (about 1 us a step here once the working
 * set outgrows the caches). */
#include <agrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median5(double *t)
{
    qsort(t, 5, sizeof *t, cmp);
    return t[2];
}

/* One epoch of per-sample SGD on y = x - 1; returns seconds. */
static size_t arena_mib;

static double sgd_epoch(int64_t samples, bool release_each, size_t *nodes)
{
    ag_shutdown();
    ag_set_checked(false);
    ag_tensor *X = ag_view(ag_arange(0, (double)samples, 1), AG_SHAPE(-1, 1));
    X = ag_div(X, (double)samples);
    ag_tensor *Y = ag_sub(X, 1.0);
    ag_tensor *w = ag_scalar(-15.0, true), *b = ag_scalar(-10.0, true);
    ag_mark mark = ag_mark_now();
    double t0 = now_s();
    for (int64_t i = 0; i < samples; i++) {
        ag_tensor *x = ag_select(X, 0, i), *y = ag_select(Y, 0, i);
        ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), y), 2));
        ag_backward(loss);
        AG_NO_GRAD
        {
            ag_sub_(w, ag_mul(w->grad, 0.01));
            ag_sub_(b, ag_mul(b->grad, 0.01));
        }
        ag_zero_(w->grad);
        ag_zero_(b->grad);
        if (release_each) ag_release(mark);
    }
    double t = now_s() - t0;
    *nodes = ag_memory_stats().backward_nodes;
    arena_mib = ag_memory_stats().arena_bytes >> 20;
    ag_release(mark);
    return t;
}

/* steps of an MLP 4 -> 16 -> 1 on one row at a time, never released; returns seconds. */
static double mlp_steps(int steps, size_t *nodes, size_t *live)
{
    ag_shutdown();
    ag_set_checked(false);
    ag_manual_seed(0);
    ag_tensor *X = ag_randn(AG_SHAPE(64, 4)), *Y = ag_randn(AG_SHAPE(64, 1));
    ag_tensor *p[4] = {ag_mul(ag_randn(AG_SHAPE(4, 16)), 0.5), ag_zeros(AG_SHAPE(16)),
                       ag_mul(ag_randn(AG_SHAPE(16, 1)), 0.25), ag_zeros(AG_SHAPE(1))};
    for (int k = 0; k < 4; k++) ag_requires_grad_(p[k], true);
    double t0 = now_s();
    for (int s = 0; s < steps; s++) {
        ag_tensor *x = ag_slice(X, 0, s % 64, s % 64 + 1), *y = ag_slice(Y, 0, s % 64, s % 64 + 1);
        ag_tensor *h = ag_relu(ag_add(ag_matmul(x, p[0]), p[1]));
        ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_matmul(h, p[2]), p[3]), y), 2));
        ag_backward(loss);
        AG_NO_GRAD
        {
            for (int k = 0; k < 4; k++) ag_sub_(p[k], ag_mul(p[k]->grad, 0.01));
        }
        for (int k = 0; k < 4; k++) ag_zero_(p[k]->grad);
    }
    double t = now_s() - t0;
    *nodes = ag_memory_stats().backward_nodes;
    *live = ag_memory_stats().live_tensors;
    arena_mib = ag_memory_stats().arena_bytes >> 20;
    return t;
}

int main(int argc, char **argv)
{
    int64_t samples = argc > 1 ? atoll(argv[1]) : 40000;
    int steps0 = argc > 2 ? atoi(argv[2]) : 2000;
    if (samples < 100) samples = 100;
    if (steps0 < 10) steps0 = 10;
    double t[5];
    size_t nodes = 0, live = 0;

    printf("per-sample SGD, %lld samples in one epoch (median of 5)\n", (long long)samples);
    for (int r = 0; r < 5; r++) t[r] = sgd_epoch(samples, false, &nodes);
    double once = median5(t);
    printf("  released once per epoch   %9.4f s  (%6.0f ns/sample, last pass visited %zu "
           "tensors, arena %zu MiB)\n",
           once, once / (double)samples * 1e9, nodes, arena_mib);
    for (int r = 0; r < 5; r++) t[r] = sgd_epoch(samples, true, &nodes);
    double each = median5(t);
    printf("  released after each sample %8.4f s  (%6.0f ns/sample, last pass visited %zu "
           "tensors, arena %zu MiB)\n",
           each, each / (double)samples * 1e9, nodes, arena_mib);
    printf("  ratio                     %9.2f\n", once / each);

    printf("MLP 4-16-1, one row per step, never released (median of 5)\n");
    for (int steps = steps0; steps <= 8 * steps0; steps *= 2) {
        for (int r = 0; r < 5; r++) t[r] = mlp_steps(steps, &nodes, &live);
        double m = median5(t);
        printf("  %5d steps %8.4f s  (%6.0f ns/step; %zu tensors on the tape, last pass visited "
               "%zu, arena %zu MiB)\n",
               steps, m, m / steps * 1e9, live, nodes, arena_mib);
    }
    ag_shutdown();
    return 0;
}
