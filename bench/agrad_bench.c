/* agrad's graph overhead, measured: each workload timed for a stable median beside the same
 * work written by hand in C, as a table or as JSON (bench/compare_torch.py puts PyTorch's
 * figures beside them). bench/README.md says what each figure means.
 *
 *   agrad-bench                      the table
 *   agrad-bench --json               the figures as one JSON object
 *   agrad-bench --only NAME --steps N
 *                                    exactly N steps of one workload and nothing else, for
 *                                    callgrind's instructions per step:
 *       valgrind --tool=callgrind agrad-bench --only sgd_step --steps 1000   (and 2000:
 *       the difference over 1000 is the cost of one step, without the setup)
 *
 * Workloads (NAME): sgd_step, sgd_step_replay, sgd_step_floor (the same step as the smallest
 * replay program runs it, nothing of agrad's), sgd_step_handwritten, node, bgd_1e6,
 * bgd_1e6_replay, bgd_1e6_handwritten, matmul_256, matmul_256_direct (its three products called
 * directly, nothing recorded), mlp_784_128_10, mlp_784_128_10_replay. */
#include <agrad.h>
#include <agrad_nn.h>
#include <agrad_optim.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* agrad's own matrix kernels (an internal header), for matmul_256_direct; with
 * -Dblas=openblas, OpenBLAS's cblas_sgemm instead. */
#include "mm_kernels.h"
#ifdef AG_HAVE_BLAS
#include <cblas.h>
#endif

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n samples (sorted in place). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A workload: make its state once, then run `steps` steps of it; the sink keeps the compiler
 * from dropping hand-written loops. */
typedef struct workload {
    const char *name;
    void (*setup)(void);
    void (*run)(long steps);
    long steps; /* per timed repetition */
    double per; /* the figure is ns per step divided by this (1e6: ms) */
    const char *unit;
} workload;

static volatile float sink;

/* ------------------------------------------------------------------------------------ */
/* The SGD lab's step: record mean((w*x + b - y)^2) for one sample, backward, update under */
/* no_grad, zero the grads, release the graph.                                            */

static struct {
    ag_tensor *X, *Y, *w, *b;
    ag_mark graph;
    int64_t n, i;
} sgd;

static void sgd_setup(void)
{
    ag_manual_seed(1);
    sgd.X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    sgd.Y = ag_add(ag_sub(sgd.X, 1), ag_mul(0.1, ag_randn(ag_size(sgd.X))));
    sgd.w = ag_scalar(-15.0, true);
    sgd.b = ag_scalar(-10.0, true);
    sgd.n = sgd.X->numel;
    sgd.i = 0;
    sgd.graph = ag_mark_now();
}

/* The labs' loss: mean((w*x + b - y)**2), x and y a sample or the whole data. */
static inline ag_tensor *mse_line(ag_tensor *w, ag_tensor *b, ag_tensor *x, ag_tensor *y)
{
    return ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), y), 2));
}

/* After backward: w.add_(w.grad, alpha=-lr) and b likewise under no_grad (in place, no
 * tensor made), then zero the grads (both lab workloads end their steps so). */
static void update(ag_tensor *w, ag_tensor *b, double lr)
{
    AG_NO_GRAD
    {
        ag_add_scaled_(w, w->grad, -lr);
        ag_add_scaled_(b, b->grad, -lr);
    }
    ag_zero_(w->grad);
    ag_zero_(b->grad);
}

static void sgd_run(long steps)
{
    const double lr = 0.01;
    for (long s = 0; s < steps; s++, sgd.i = (sgd.i + 1) % sgd.n) {
        ag_tensor *x = ag_tensor_from(sgd.X->data + sgd.i, AG_SHAPE(1));
        ag_tensor *y = ag_tensor_from(sgd.Y->data + sgd.i, AG_SHAPE(1));
        ag_backward(mse_line(sgd.w, sgd.b, x, y));
        update(sgd.w, sgd.b, lr);
        ag_release(sgd.graph);
    }
}

/* The same step replayed: the graph recorded once with leaves x and y, and each step
 * ag_replay_run copies the sample into them, runs forward and backward again; then the
 * same update. The samples are views of X's and Y's rows, made once. */
enum { SAMPLES = 60 };
static struct {
    ag_replay *step;
    ag_tensor *xs[SAMPLES], *ys[SAMPLES];
} rep;

static void replay_setup(void)
{
    sgd_setup();
    if (sgd.n > SAMPLES) abort();
    for (int64_t i = 0; i < sgd.n; i++) {
        rep.xs[i] = ag_select(sgd.X, 0, i);
        rep.ys[i] = ag_select(sgd.Y, 0, i);
    }
    ag_tensor *x = ag_zeros(AG_SHAPE(1)), *y = ag_zeros(AG_SHAPE(1));
    ag_tensor *loss = mse_line(sgd.w, sgd.b, x, y);
    rep.step = ag_replay_new(loss, (ag_tensor *[]){x, y}, 2);
}

static void replay_run(long steps)
{
    const double lr = 0.01;
    for (long s = 0; s < steps; s++, sgd.i = (sgd.i + 1) % sgd.n) {
        ag_replay_run(rep.step, (ag_tensor *[]){rep.xs[sgd.i], rep.ys[sgd.i]}, 2);
        update(sgd.w, sgd.b, lr); /* nothing to release: no tensor was made */
    }
}

static struct {
    float w, b;
} hand;

static void hand_setup(void)
{
    sgd_setup();
    hand.w = -15.0f;
    hand.b = -10.0f;
}

static void hand_run(long steps)
{
    const float lr = 0.01f;
    const float *X = sgd.X->data, *Y = sgd.Y->data;
    for (long s = 0; s < steps; s++, sgd.i = (sgd.i + 1) % sgd.n) {
        float d = hand.w * X[sgd.i] + hand.b - Y[sgd.i];
        hand.w -= lr * (2.0f * d * X[sgd.i]);
        hand.b -= lr * (2.0f * d);
    }
    sink = hand.w + hand.b;
}

/* The same step as the smallest replay program would run it: each node a function and the
 * places of its inputs and output in one array of floats, each edge its derivative rule
 * and places, newest first; no tensor, no check, no version. Then the gradients are added
 * into w's and b's, the update is the hand-written step's, and the zeroing follows. Like
 * any program that is run rather than compiled, each value goes through memory on its way to
 * the next node: this is the floor under agrad's replay (bench/README.md). The program
 * is filled at setup, so that the compiler cannot turn it back into the hand-written step. */
enum { TW, TB, TX, TY, TWX, TLIN, TDIFF, TSQ, TLOSS, TNV };
typedef struct {
    float (*f)(float a, float b);
    int y, a, b;
} floor_node;
typedef struct {
    float (*d)(float a, float b, float g); /* the gradient reaching input a or b */
    int node, gin;
    bool fresh; /* the first gradient to reach gin: written, not added */
} floor_edge;
static float t_mul(float a, float b) { return a * b; }
static float t_add(float a, float b) { return a + b; }
static float t_sub(float a, float b) { return a - b; }
static float t_square(float a, float b) { return (void)b, a * a; }
static float t_mean1(float a, float b) { return (void)b, a / 1.0f; }
static float t_pass(float a, float b, float g) { return (void)a, (void)b, g; }
static float t_dmul_a(float a, float b, float g) { return (void)a, g * b; }
static float t_dsquare(float a, float b, float g) { return (void)b, g * (2.0f * a); }
static float t_dmean1(float a, float b, float g) { return (void)a, (void)b, g / 1.0f; }
static struct {
    floor_node nodes[5];
    floor_edge edges[6];
    int nnodes, nedges;
    float v[TNV], g[TNV], wgrad, bgrad;
} flr;

static void floor_setup(void)
{
    sgd_setup();
    const floor_node nodes[] = {{t_mul, TWX, TW, TX},
                                {t_add, TLIN, TWX, TB},
                                {t_sub, TDIFF, TLIN, TY},
                                {t_square, TSQ, TDIFF, TDIFF},
                                {t_mean1, TLOSS, TSQ, TSQ}};
    const floor_edge edges[] = {{t_dmean1, 4, TSQ, true}, {t_dsquare, 3, TDIFF, true},
                                {t_pass, 2, TLIN, true},  {t_pass, 1, TWX, true},
                                {t_pass, 1, TB, true},    {t_dmul_a, 0, TW, true}};
    memcpy(flr.nodes, nodes, sizeof nodes);
    memcpy(flr.edges, edges, sizeof edges);
    flr.nnodes = 5;
    flr.nedges = 6;
    flr.v[TW] = -15.0f;
    flr.v[TB] = -10.0f;
}

static void floor_run(long steps)
{
    const float lr = 0.01f, *X = sgd.X->data, *Y = sgd.Y->data;
    float *v = flr.v, *g = flr.g;
    for (long s = 0; s < steps; s++, sgd.i = (sgd.i + 1) % sgd.n) {
        v[TX] = X[sgd.i];
        v[TY] = Y[sgd.i];
        for (const floor_node *n = flr.nodes; n < flr.nodes + flr.nnodes; n++)
            v[n->y] = n->f(v[n->a], v[n->b]);
        g[TLOSS] = 1.0f;
        for (const floor_edge *e = flr.edges; e < flr.edges + flr.nedges; e++) {
            const floor_node *n = &flr.nodes[e->node];
            float d = e->d(v[n->a], v[n->b], g[n->y]);
            g[e->gin] = e->fresh ? d : g[e->gin] + d;
        }
        flr.wgrad += g[TW];
        flr.bgrad += g[TB];
        v[TW] -= lr * flr.wgrad;
        v[TB] -= lr * flr.bgrad;
        flr.wgrad = flr.bgrad = 0.0f;
    }
    sink = v[TW] + v[TB];
}

/* ------------------------------------------------------------------------------------ */
/* One scalar node, forward and backward: a chain of 1000 multiply-adds from a leaf, then  */
/* its backward; the figure is per node (2 nodes per link).                               */

enum { CHAIN = 1000 };
static struct {
    ag_tensor *x;
    ag_mark start;
    size_t bytes_per_node;
} node;

static void node_setup(void)
{
    node.x = ag_scalar(0.5, true);
    node.start = ag_mark_now();
    /* bytes per node as the graph's statistics count them: header, value, alignment */
    ag_tensor *y = node.x;
    for (int k = 0; k < CHAIN; k++) y = ag_add(ag_mul(y, 0.999), 0.001);
    ag_graph_stats st = ag_graph_stats_of(y);
    node.bytes_per_node = st.ops ? st.bytes / st.tensors : 0;
    ag_release(node.start);
}

static void node_run(long steps) /* steps: nodes, rounded to whole chains */
{
    for (long done = 0; done < steps; done += 2 * CHAIN) {
        ag_tensor *y = node.x;
        for (int k = 0; k < CHAIN; k++) y = ag_add(ag_mul(y, 0.999), 0.001);
        ag_backward(y);
        ag_zero_(node.x->grad);
        ag_release(node.start);
    }
}

/* ------------------------------------------------------------------------------------ */
/* One batch-GD epoch over 10^6 points: yhat = w*X + b, mean((yhat - Y)^2), backward,     */
/* update; beside it the same epoch fused by hand into one loop.                          */

enum { BGD_N = 1000000 };
static struct {
    ag_tensor *X, *Y, *w, *b;
    ag_mark graph;
} bgd;

static void bgd_setup(void)
{
    ag_manual_seed(1);
    bgd.X = ag_rand(AG_SHAPE(BGD_N));
    bgd.Y = ag_add(ag_mul(bgd.X, 2.0), ag_mul(0.1, ag_randn(AG_SHAPE(BGD_N))));
    bgd.w = ag_scalar(0.0, true);
    bgd.b = ag_scalar(0.0, true);
    bgd.graph = ag_mark_now();
}

static void bgd_run(long steps)
{
    for (long s = 0; s < steps; s++) {
        ag_backward(mse_line(bgd.w, bgd.b, bgd.X, bgd.Y));
        update(bgd.w, bgd.b, 0.1);
        ag_release(bgd.graph);
    }
}

/* The same epoch replayed: the graph recorded once, each step run again on the updated w
 * and b (X and Y do not change). */
static ag_replay *bgd_replay;

static void bgd_replay_setup(void)
{
    bgd_setup();
    ag_tensor *loss = mse_line(bgd.w, bgd.b, bgd.X, bgd.Y);
    bgd_replay = ag_replay_new(loss, NULL, 0);
}

static void bgd_replay_run(long steps)
{
    for (long s = 0; s < steps; s++) {
        ag_replay_run(bgd_replay, NULL, 0);
        update(bgd.w, bgd.b, 0.1);
    }
}

static void bgd_hand_run(long steps)
{
    const float *X = bgd.X->data, *Y = bgd.Y->data;
    float w = 0, b = 0;
    for (long s = 0; s < steps; s++) {
        double gw = 0, gb = 0;
        for (int i = 0; i < BGD_N; i++) {
            float d = w * X[i] + b - Y[i];
            gw += d * X[i];
            gb += d;
        }
        w -= 0.1f * (float)(2.0 * gw / BGD_N);
        b -= 0.1f * (float)(2.0 * gb / BGD_N);
    }
    sink = w + b;
}

/* ------------------------------------------------------------------------------------ */
/* A 256x256 matmul, forward and backward (sum of the product as the loss).               */

static struct {
    ag_tensor *A, *B;
    ag_mark graph;
} mm;

static void mm_setup(void)
{
    ag_manual_seed(1);
    mm.A = ag_randn(AG_SHAPE(256, 256), .requires_grad = true);
    mm.B = ag_randn(AG_SHAPE(256, 256), .requires_grad = true);
    mm.graph = ag_mark_now();
}

static void mm_run(long steps)
{
    for (long s = 0; s < steps; s++) {
        ag_backward(ag_sum(ag_matmul(mm.A, mm.B)));
        ag_zero_(mm.A->grad);
        ag_zero_(mm.B->grad);
        ag_release(mm.graph);
    }
}

/* The same three products called directly on plain arrays, nothing recorded: C = A B and,
 * for the loss sum(C) (G all ones), dA = G B^T and dB = A^T G. With agrad's own kernels
 * (mm_kernels.h, as matmul runs them: G B^T as G (B^T)), or with -Dblas=openblas the three
 * cblas_sgemm calls matmul then makes. */
enum { MM = 256 };
static float mm_a[MM * MM], mm_b[MM * MM], mm_c[MM * MM], mm_g[MM * MM], mm_da[MM * MM],
    mm_db[MM * MM];
#ifndef AG_HAVE_BLAS
static float mm_bt[MM * MM];
#endif

static void mm_direct_setup(void)
{
    mm_setup();
    memcpy(mm_a, mm.A->data, sizeof mm_a);
    memcpy(mm_b, mm.B->data, sizeof mm_b);
    for (int i = 0; i < MM * MM; i++) mm_g[i] = 1.0f;
}

static void mm_direct_run(long steps)
{
    for (long s = 0; s < steps; s++) {
#ifdef AG_HAVE_BLAS
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, MM, MM, MM, 1.0f, mm_a, MM, mm_b, MM,
                    0.0f, mm_c, MM);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, MM, MM, MM, 1.0f, mm_g, MM, mm_b, MM,
                    0.0f, mm_da, MM);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, MM, MM, MM, 1.0f, mm_a, MM, mm_g, MM,
                    0.0f, mm_db, MM);
#else
        memset(mm_c, 0, sizeof mm_c);
        ag__mm_nn(mm_c, mm_a, mm_b, MM, MM, MM);
        memset(mm_da, 0, sizeof mm_da);
        ag__mm_transpose(mm_bt, mm_b, MM, MM);
        ag__mm_nt(mm_da, mm_g, mm_bt, MM, MM, MM);
        memset(mm_db, 0, sizeof mm_db);
        ag__mm_tn(mm_db, mm_a, mm_g, MM, MM, MM);
#endif
        sink = mm_c[s % (MM * MM)] + mm_da[0] + mm_db[0];
    }
}

/* ------------------------------------------------------------------------------------ */
/* An MLP training step: Linear(784, 128), ReLU, Linear(128, 10), cross entropy over a    */
/* batch of 64, backward, SGD step, zero_grad.                                            */

static struct {
    ag_module *model;
    ag_optimizer *opt;
    ag_tensor *X, *T;
    ag_mark graph;
} mlp;

static void mlp_setup(void)
{
    ag_manual_seed(1);
    mlp.model = ag_sequential_new(
        (ag_module *[]){ag_linear_new(784, 128, true), ag_ReLU(), ag_linear_new(128, 10, true)}, 3);
    mlp.opt = ag_SGD(ag_parameters(mlp.model), .lr = 0.01);
    mlp.X = ag_randn(AG_SHAPE(64, 784));
    float t[64];
    for (int i = 0; i < 64; i++) t[i] = (float)(i % 10);
    mlp.T = ag_tensor_from(t, AG_SHAPE(64));
    mlp.graph = ag_mark_now();
}

static void mlp_run(long steps)
{
    for (long s = 0; s < steps; s++) {
        ag_tensor *loss = ag_cross_entropy(ag_forward(mlp.model, mlp.X), mlp.T);
        ag_backward(loss);
        ag_step(mlp.opt);
        ag_zero_grad(mlp.opt);
        ag_release(mlp.graph);
    }
}

/* The same MLP step replayed: the graph recorded once (X and T are its leaves, as they
 * stay), then each step a run, the optimizer's step and zero_grad. */
static ag_replay *mlp_replay;

static void mlp_replay_setup(void)
{
    mlp_setup();
    mlp_replay = ag_replay_new(ag_cross_entropy(ag_forward(mlp.model, mlp.X), mlp.T), NULL, 0);
}

static void mlp_replay_run(long steps)
{
    for (long s = 0; s < steps; s++) {
        ag_replay_run(mlp_replay, NULL, 0);
        ag_step(mlp.opt);
        ag_zero_grad(mlp.opt);
    }
}

/* ------------------------------------------------------------------------------------ */

static const workload workloads[] = {
    {"sgd_step", sgd_setup, sgd_run, 20000, 1, "ns"},
    {"sgd_step_replay", replay_setup, replay_run, 100000, 1, "ns"},
    {"sgd_step_floor", floor_setup, floor_run, 1000000, 1, "ns"},
    {"sgd_step_handwritten", hand_setup, hand_run, 2000000, 1, "ns"},
    {"node", node_setup, node_run, 200000, 1, "ns"},
    {"bgd_1e6", bgd_setup, bgd_run, 2, 1e6, "ms"},
    {"bgd_1e6_replay", bgd_replay_setup, bgd_replay_run, 4, 1e6, "ms"},
    {"bgd_1e6_handwritten", bgd_setup, bgd_hand_run, 4, 1e6, "ms"},
    {"matmul_256", mm_setup, mm_run, 4, 1e6, "ms"},
    {"matmul_256_direct", mm_direct_setup, mm_direct_run, 4, 1e6, "ms"},
    {"mlp_784_128_10", mlp_setup, mlp_run, 10, 1e6, "ms"},
    {"mlp_784_128_10_replay", mlp_replay_setup, mlp_replay_run, 10, 1e6, "ms"},
};
enum { NWORK = sizeof workloads / sizeof workloads[0], REPS = 7 };

/* The index of the workload of that name in workloads[]. */
static int index_of(const char *name)
{
    int k = 0;
    while (k < NWORK && strcmp(workloads[k].name, name)) k++;
    if (k == NWORK) abort(); /* a name misspelt here */
    return k;
}

/* The median over REPS repetitions of one workload, in its unit per step, after a warm-up
 * of one repetition (the arena and the pools have their steady size then) and more until
 * WARM_NS have passed: a machine can run a process's first tens of milliseconds at up to
 * half speed (bench/README.md). */
enum { WARM_NS = 200 * 1000 * 1000 };
static double measure(const workload *wl)
{
    double t[REPS];
    wl->setup();
    double start = now_ns();
    do wl->run(wl->steps);
    while (now_ns() - start < WARM_NS);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_ns();
        wl->run(wl->steps);
        t[r] = (now_ns() - t0) / (double)wl->steps / wl->per;
    }
    ag_shutdown();
    return median(t, REPS);
}

/* System allocations per SGD step in steady state. */
static double allocs_per_step(void)
{
    sgd_setup();
    sgd_run(1000);
    size_t before = ag_memory_stats().system_allocs;
    sgd_run(10000);
    double a = (double)(ag_memory_stats().system_allocs - before) / 10000;
    ag_shutdown();
    return a;
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    long steps = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            char *end;
            steps = strtol(argv[++i], &end, 10);
            if (*end || steps <= 0) {
                fprintf(stderr, "agrad-bench: --steps needs a whole number > 0\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--json] [--only NAME --steps N]\n", argv[0]);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (only) {
        for (int k = 0; k < NWORK; k++) {
            if (strcmp(only, workloads[k].name)) continue;
            workloads[k].setup();
            workloads[k].run(steps ? steps : workloads[k].steps);
            ag_shutdown();
            return 0;
        }
        fprintf(stderr, "agrad-bench: no workload '%s'\n", only);
        return 2;
    }

    double fig[NWORK];
    for (int k = 0; k < NWORK; k++) fig[k] = measure(&workloads[k]);
    node_setup(); /* the bytes per node, measured apart */
    size_t node_bytes = node.bytes_per_node;
    ag_shutdown();
    double allocs = allocs_per_step();

    if (json) {
        printf("{");
        for (int k = 0; k < NWORK; k++)
            printf("\"%s_%s\": %.6g, ", workloads[k].name, workloads[k].unit, fig[k]);
        printf("\"node_bytes\": %zu, \"allocs_per_step\": %g}\n", node_bytes, allocs);
        return 0;
    }
    printf("%-24s %12s\n", "workload", "median");
    for (int k = 0; k < NWORK; k++)
        printf("%-24s %9.4g %-2s per step\n", workloads[k].name, fig[k], workloads[k].unit);
    printf("%-24s %9zu B  per recorded scalar node\n", "node_bytes", node_bytes);
    printf("%-24s %9g    system allocations per SGD step in steady state\n", "allocs_per_step",
           allocs);
#define FIG(name) fig[index_of(name)]
    double hand = FIG("sgd_step_handwritten"), fused = FIG("bgd_1e6_handwritten");
    printf("sgd_step / handwritten: %.0f x; replayed: %.1f x; floor: %.1f x; bgd_1e6 / "
           "handwritten: %.1f x, replayed: %.1f x\n",
           FIG("sgd_step") / hand, FIG("sgd_step_replay") / hand, FIG("sgd_step_floor") / hand,
           FIG("bgd_1e6") / fused, FIG("bgd_1e6_replay") / fused);
    printf("matmul_256 / its products called directly (%s): %.2f x\n",
#ifdef AG_HAVE_BLAS
           "cblas_sgemm",
#else
           "agrad's kernels",
#endif
           FIG("matmul_256") / FIG("matmul_256_direct"));
    return 0;
}
