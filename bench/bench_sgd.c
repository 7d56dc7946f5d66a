/* One step of the SGD lab's inner loop, per sample: record mean((w*x + b - y)**2),
 * backward, update w and b under no_grad, zero the grads, release the graph. Prints
 * nanoseconds per step for agrad and for a hand-written C loop of the same step, and
 * the resident memory over a million steps.
 *
 *   bench_sgd [steps]        (default 1000000)
 *
 * Anomaly mode and the trace cost one test each when off: callgrind's instructions per
 * step, before and after they came in, are the figure (README, Speed). With anomaly mode
 * on, a tenth of the steps are run again and timed.
 *
 * PyTorch beside it: bench/torch_sgd_step.py runs the same step with python3-torch. */
#include <agrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One step of the lab's inner loop on sample i. */
static void step(const ag_tensor *X, const ag_tensor *Y, ag_tensor *w, ag_tensor *b, int64_t i,
                 double lr, ag_mark graph)
{
    ag_tensor *x = ag_tensor_from(X->data + i, AG_SHAPE(1), false);
    ag_tensor *y = ag_tensor_from(Y->data + i, AG_SHAPE(1), false);
    ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), y), 2));
    ag_backward(loss);
    AG_NO_GRAD
    {
        ag_sub_(w, ag_mul(lr, w->grad));
        ag_sub_(b, ag_mul(lr, b->grad));
    }
    ag_zero_(w->grad);
    ag_zero_(b->grad);
    ag_release(graph);
}

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1000000;
    if (steps < 1000) steps = 1000;
    const double lr = 0.01;

    ag_manual_seed(1);
    ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    ag_tensor *Y = ag_add(ag_sub(ag_mul(1, X), 1), ag_mul(0.1, ag_randn(ag_size(X))));
    ag_tensor *w = ag_scalar(-15.0, true), *b = ag_scalar(-10.0, true);
    int64_t n = X->numel;

    ag_mark graph = ag_mark_now();
    long rss_at[8] = {0}, rss_step[8] = {0};
    int nrss = 0;
    double t0 = 0;
    for (long s = 0; s < steps; s++) {
        if (s == 1000) t0 = now_ns(); /* warmed up: the arena has its steady size */
        if (s == 1000 || s == 10000 || s == 100000 || s == 1000000 || s == 10000000) {
            rss_step[nrss] = s;
            rss_at[nrss++] = rss_kib();
        }
        step(X, Y, w, b, s % n, lr, graph);
    }
    double agrad_ns = (now_ns() - t0) / (double)(steps - 1000);
    rss_step[nrss] = steps;
    rss_at[nrss++] = rss_kib();
    float wa = w->data[0], ba = b->data[0];

    /* Anomaly mode on: every op's result and every gradient checked for nan and inf. */
    ag_set_detect_anomaly(true);
    long checked = steps / 10;
    double t2 = now_ns();
    for (long s = 0; s < checked; s++) step(X, Y, w, b, s % n, lr, graph);
    double anomaly_ns = (now_ns() - t2) / (double)checked;
    ag_set_detect_anomaly(false);

    /* The same step by hand: the floor that any graph overhead sits on. */
    volatile float wv = -15.0f, bv = -10.0f;
    float wh = wv, bh = bv;
    double t1 = now_ns();
    for (long s = 0; s < steps; s++) {
        int64_t i = s % n;
        float x = X->data[i], y = Y->data[i];
        float d = wh * x + bh - y;
        float gw = 2.0f * d * x, gb = 2.0f * d;
        wh -= (float)lr * gw;
        bh -= (float)lr * gb;
    }
    double hand_ns = (now_ns() - t1) / (double)steps;
    wv = wh;
    bv = bh;

    printf("sgd step (mean((w*x + b - y)**2), backward, update, zero), %ld steps\n", steps);
    printf("  agrad      %10.1f ns/step   (w = %.6f, b = %.6f)\n", agrad_ns, wa, ba);
    printf("  hand C     %10.1f ns/step   (w = %.6f, b = %.6f)\n", hand_ns, (double)wv, (double)bv);
    printf("  ratio      %10.1f x hand-written C\n", agrad_ns / hand_ns);
    printf("  agrad with anomaly mode on: %.1f ns/step (%ld steps)\n", anomaly_ns, checked);
    printf("  PyTorch 1.13 on this machine: about 35000 ns/step (bench/torch_sgd_step.py)\n");
    printf("  resident memory:");
    for (int k = 0; k < nrss; k++)
        printf(" %ld KiB after %ld steps%s", rss_at[k], rss_step[k], k + 1 < nrss ? "," : "\n");
    ag_stats st = ag_memory_stats();
    printf("  arena: %zu bytes, %zu system allocations in all\n", st.arena_bytes, st.system_allocs);
    ag_shutdown();
    return 0;
}
