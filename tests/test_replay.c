/* Replay: a recorded graph run again gives the eager results bit for bit (the SGD lab's
 * trajectory, and a graph of every op a replay runs, with broadcasts and a tensor used
 * twice), allocates nothing in steady state, and refuses what it cannot do. */
#include <agrad.h>
#include <agrad_nn.h>
#include <agrad_optim.h>
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "agrad_test.h"
#include "internal.h" /* whether a replay runs as a scalar program */

TestSuite(replay, .init = record_errors);

static bool same_bits(const ag_tensor *a, const ag_tensor *b)
{
    return a->numel == b->numel && !memcmp(a->data, b->data, (size_t)a->numel * sizeof(float));
}

/* The SGD lab's step: mean((w*x + b - y)^2). */
static ag_tensor *lab(ag_tensor *w, ag_tensor *b, ag_tensor *x, ag_tensor *y)
{
    return ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), y), 2));
}

/* w -= lr * w.grad under no_grad, and the grad zeroed. */
static void step(ag_tensor *w, double lr)
{
    AG_NO_GRAD { ag_sub_(w, ag_mul(lr, w->grad)); }
    ag_zero_(w->grad);
}

Test(replay, sgd_lab_trajectory_is_eager_bit_for_bit)
{
    ag_manual_seed(1);
    ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    ag_tensor *Y = ag_add(ag_sub(X, 1), ag_mul(0.1, ag_randn(ag_size(X))));
    ag_tensor *w1 = ag_scalar(-15.0, true), *b1 = ag_scalar(-10.0, true);
    ag_tensor *w2 = ag_scalar(-15.0, true), *b2 = ag_scalar(-10.0, true);
    ag_tensor *rows[60], *targets[60];
    for (int i = 0; i < 60; i++) {
        rows[i] = ag_select(X, 0, i);
        targets[i] = ag_select(Y, 0, i);
    }
    ag_tensor *x = ag_zeros(AG_SHAPE(1)), *y = ag_zeros(AG_SHAPE(1));
    ag_tensor *loss2 = lab(w2, b2, x, y);
    ag_replay *r = ag_replay_new(loss2, (ag_tensor *[]){x, y}, 2);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_mark start = ag_mark_now();
    for (int epoch = 0; epoch < 3; epoch++)
        for (int i = 0; i < 60; i++) {
            ag_tensor *loss1 = lab(w1, b1, rows[i], targets[i]);
            cr_assert(ag_backward(loss1));
            cr_assert(ag_replay_run(r, (ag_tensor *[]){rows[i], targets[i]}, 2), "%s",
                      ag_last_error());
            cr_assert(same_bits(loss1, loss2), "epoch %d, sample %d: loss %.9g vs %.9g", epoch, i,
                      (double)loss1->data[0], (double)loss2->data[0]);
            cr_assert(same_bits(w1->grad, w2->grad) && same_bits(b1->grad, b2->grad),
                      "epoch %d, sample %d: grads differ", epoch, i);
            step(w1, 0.01);
            step(b1, 0.01);
            step(w2, 0.01);
            step(b2, 0.01);
            ag_release(start);
        }
    cr_assert(same_bits(w1, w2) && same_bits(b1, b2));
    /* on the way from (-15, -10) to the data's (1, -1) */
    cr_assert(fabsf(w2->data[0] - 1.0f) < 0.1f && fabsf(b2->data[0] + 1.0f) < 0.5f, "w %g, b %g",
              (double)w2->data[0], (double)b2->data[0]);
    ag_replay_free(r);
    test_finish();
}

/* Every op a replay runs, with broadcasts ([3,1] by [1,4]), a tensor used twice, views and
 * numbers on either side. */
static ag_tensor *every_op(ag_tensor *p, ag_tensor *q, ag_tensor *x, ag_tensor *y)
{
    ag_tensor *h = ag_mul(x, p); /* [3,1] * [1,4]: [3,4] */
    h = ag_add(h, ag_div(ag_tanh(h), ag_add(ag_exp(ag_neg(ag_mul(y, p))), 1.5)));
    h = ag_sub(ag_sigmoid(h), ag_mul(ag_relu(ag_sub(ag_mul(y, q), 0.2)), q));
    h = ag_add(ag_pow(ag_abs(h), 1.5), ag_sqrt(ag_add(ag_mul(h, h), 1)));
    h = ag_clamp(ag_log(ag_add(h, 2)), -1, 0.9);
    ag_tensor *v = ag_unsqueeze(ag_view(h, AG_SHAPE(12)), 0);        /* [1,12] */
    ag_tensor *u = ag_reshape(ag_squeeze_dim(v, 0), AG_SHAPE(4, 3)); /* [4,3] */
    ag_tensor *z = ag_squeeze(ag_unsqueeze(ag_div(ag_sub(1.0, u), 3), 2));
    ag_tensor *e = ag_pow(ag_add(ag_abs(q), 1), ag_mean(ag_mul(2.0, z)));
    return ag_add(ag_sum(ag_pow(ag_sub(z, 0.5), 2)), ag_mul(e, ag_div(1.0, ag_add(q, 4))));
}

Test(replay, every_op_is_eager_bit_for_bit)
{
    ag_manual_seed(3);
    ag_tensor *p1 = ag_randn(AG_SHAPE(1, 4), .requires_grad = true);
    ag_tensor *q1 = ag_scalar(0.7, true);
    ag_tensor *p2 = ag_tensor_from(p1->data, AG_SHAPE(1, 4), true), *q2 = ag_scalar(0.7, true);
    ag_tensor *x = ag_zeros(AG_SHAPE(3, 1)), *y = ag_zeros(AG_SHAPE(3, 4));
    ag_tensor *loss2 = every_op(p2, q2, x, y);
    ag_replay *r = ag_replay_new(loss2, (ag_tensor *[]){x, y}, 2);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_mark start = ag_mark_now();
    for (int k = 0; k < 5; k++) {
        ag_tensor *xk = ag_randn(AG_SHAPE(3, 1)), *yk = ag_randn(AG_SHAPE(3, 4));
        ag_tensor *loss1 = every_op(p1, q1, xk, yk);
        cr_assert(ag_backward(loss1));
        cr_assert(ag_replay_run(r, (ag_tensor *[]){xk, yk}, 2), "%s", ag_last_error());
        cr_assert(isfinite(loss1->data[0]));
        cr_assert(same_bits(loss1, loss2), "run %d: loss %.9g vs %.9g", k, (double)loss1->data[0],
                  (double)loss2->data[0]);
        cr_assert(same_bits(p1->grad, p2->grad) && same_bits(q1->grad, q2->grad),
                  "run %d: grads differ", k);
        /* not zeroed every time: gradients accumulate across runs as across backward calls */
        if (k % 2) {
            step(p1, 0.1);
            step(q1, 0.1);
            step(p2, 0.1);
            step(q2, 0.1);
        }
        ag_release(start);
    }
    ag_replay_free(r);
    test_finish();
}

/* A graph of one-element tensors (0-d, [1] and [1,1]) made by every op of a scalar form:
 * numbers on either side, a tensor used twice, sum and mean of one element, pow's special
 * exponents and a tensor exponent, the functions of one tensor. k, kept through
 * retain_grad, is returned in *kept. */
static ag_tensor *scalar_graph(ag_tensor *p, ag_tensor *q, ag_tensor *x, ag_tensor *y,
                               ag_tensor **kept)
{
    ag_tensor *h = ag_add(ag_mul(p, x), q);
    ag_tensor *k = *kept = ag_retain_grad(ag_sub(h, y)); /* [1,1] */
    ag_tensor *a = ag_div(ag_mul(k, k), ag_add(ag_pow(q, 2), 1));
    ag_tensor *b = ag_sub(2.0, ag_div(ag_mul(0.5, h), 3));
    ag_tensor *r = ag_add(ag_pow(ag_add(ag_pow(b, 3), 40), 0.5), 1); /* above 1 */
    ag_tensor *c = ag_pow(r, ag_mean(ag_pow(p, 3)));
    ag_tensor *d = ag_add(ag_pow(r, -1), ag_pow(r, -2));
    d = ag_add(d, ag_mul(ag_pow(r, 1.7), ag_pow(r, -0.5)));
    d = ag_add(d, ag_sub(ag_pow(r, 0), ag_pow(ag_sum(q), 1)));
    /* the functions of one tensor, on both sides of 0 (h and k change sign over the runs) */
    ag_tensor *e = ag_add(ag_exp(ag_mul(h, 0.5)), ag_log(r));
    e = ag_add(e, ag_mul(ag_sqrt(r), ag_abs(k)));
    e = ag_add(e, ag_sub(ag_relu(h), ag_relu(ag_neg(k))));
    e = ag_add(e, ag_mul(ag_sigmoid(h), ag_tanh(k)));
    return ag_sum(ag_add(ag_add(a, c), ag_add(ag_sub(ag_mul(d, 0.25), 3.0), e)));
}

Test(replay, scalar_program_is_eager_bit_for_bit)
{
    ag_manual_seed(5);
    ag_tensor *p1 = ag_scalar(0.8, true), *q1 = VEC(true, -0.3f);
    ag_tensor *p2 = ag_scalar(0.8, true), *q2 = VEC(true, -0.3f);
    ag_tensor *x = ag_zeros(AG_SHAPE(1)), *y = ag_zeros(AG_SHAPE(1, 1)), *k1, *k2;
    ag_tensor *loss2 = scalar_graph(p2, q2, x, y, &k2);
    ag_replay *r = ag_replay_new(loss2, (ag_tensor *[]){x, y}, 2);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_mark start = ag_mark_now();
    for (int run = 0; run < 24; run++) {
        /* the first run makes the ->grads (the general path), the others add into them */
        ag_tensor *xk = ag_randn(AG_SHAPE(1)), *yk = ag_randn(AG_SHAPE(1, 1));
        if (run == 5) xk->data[0] = -0.0f; /* p * x gives p a signed zero */
        ag_tensor *loss1 = scalar_graph(p1, q1, xk, yk, &k1);
        cr_assert(ag_backward(loss1));
        size_t visited = ag_memory_stats().backward_nodes;
        if (k2->grad) ag_zero_(k2->grad); /* k1 is new at every run, and its gradient too */
        cr_assert_eq(ag__replay_path(r), run == 0 ? AG__REPLAY_GENERAL : AG__REPLAY_SCALAR);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){xk, yk}, 2), "%s", ag_last_error());
        cr_assert(isfinite(loss1->data[0]));
        cr_assert(same_bits(loss1, loss2), "run %d: loss %.9g vs %.9g", run, (double)loss1->data[0],
                  (double)loss2->data[0]);
        cr_assert(same_bits(p1->grad, p2->grad) && same_bits(q1->grad, q2->grad) &&
                      same_bits(k1->grad, k2->grad),
                  "run %d: grads differ: p %.9g vs %.9g, q %.9g vs %.9g, k %.9g vs %.9g", run,
                  (double)p1->grad->data[0], (double)p2->grad->data[0], (double)q1->grad->data[0],
                  (double)q2->grad->data[0], (double)k1->grad->data[0], (double)k2->grad->data[0]);
        cr_assert_eq(ag_memory_stats().backward_nodes, visited);
        if (run % 3 == 2) { /* accumulated over three runs, then a step */
            step(p1, 0.05);
            step(q1, 0.05);
            step(p2, 0.05);
            step(q2, 0.05);
        }
        ag_release(start);
    }
    ag_replay_free(r);
    test_finish();
}

/* A graph of elementwise ops on n elements and leaves of one (p, q), ending in a sum or a
 * mean: every op of a scalar form that a tiled program runs, p and q on either side and
 * twice, d used twice by one op, a retained gradient (k) and, with X requiring grad, a
 * leaf of n elements that keeps its gradient. */
static ag_tensor *tiled_graph(ag_tensor *p, ag_tensor *q, ag_tensor *X, ag_tensor *Y, bool mean,
                              ag_tensor **kept)
{
    ag_tensor *h = ag_add(ag_mul(p, X), q); /* p: a rule's lanes; q: passed through */
    ag_tensor *k = *kept = ag_retain_grad(ag_sigmoid(h));
    ag_tensor *d = ag_sub(ag_div(k, ag_add(ag_exp(ag_neg(h)), 1.5)), Y);
    ag_tensor *e = ag_add(ag_pow(d, 2), ag_mul(ag_tanh(ag_mul(d, d)), p));
    e = ag_add(e, ag_div(ag_sub(2.0, ag_abs(h)), q));  /* q as a divisor */
    e = ag_add(e, ag_pow(ag_add(ag_relu(h), 0.5), q)); /* q as an exponent */
    e = ag_sub(ag_mul(ag_sqrt(ag_add(ag_abs(d), 1)), ag_log(ag_add(k, 1))), ag_div(e, 4));
    e = ag_add(ag_sub(e, ag_div(p, ag_add(ag_abs(e), 1))), ag_pow(ag_sub(h, 1.0), 3));
    return mean ? ag_mean(e) : ag_sum(e);
}

/* n: 2 whole tiles (AG__TILE elements) and a part, whose length is no multiple of 8; one
 * tile; or less than one. */
static void tiled_case(int64_t n, bool mean, bool x_grad)
{
    ag_manual_seed(9);
    ag_tensor *p1 = ag_scalar(0.7, true), *q1 = VEC(true, 1.3f);
    ag_tensor *p2 = ag_scalar(0.7, true), *q2 = VEC(true, 1.3f);
    ag_tensor *X1 = ag_randn(AG_SHAPE(n), .requires_grad = x_grad);
    ag_tensor *X2 = ag_tensor_from(X1->data, AG_SHAPE(n), x_grad);
    ag_tensor *Y = ag_zeros(AG_SHAPE(n)), *k1, *k2;
    ag_tensor *loss2 = tiled_graph(p2, q2, X2, Y, mean, &k2);
    ag_replay *r = ag_replay_new(loss2, (ag_tensor *[]){Y}, 1);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_mark start = ag_mark_now();
    for (int run = 0; run < 6; run++) {
        /* the first run makes the ->grads (the general path), the others add into them */
        ag_tensor *Yk = ag_randn(AG_SHAPE(n));
        ag_tensor *loss1 = tiled_graph(p1, q1, X1, Yk, mean, &k1);
        cr_assert(ag_backward(loss1));
        size_t visited = ag_memory_stats().backward_nodes;
        if (k2->grad) ag_zero_(k2->grad); /* k1 is new at every run, and its gradient too */
        cr_assert_eq(ag__replay_path(r), run == 0 ? AG__REPLAY_GENERAL : AG__REPLAY_TILED);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){Yk}, 1), "%s", ag_last_error());
        cr_assert(isfinite(loss1->data[0]));
        cr_assert(same_bits(loss1, loss2), "n %lld, run %d: loss %.9g vs %.9g", (long long)n, run,
                  (double)loss1->data[0], (double)loss2->data[0]);
        cr_assert(same_bits(p1->grad, p2->grad) && same_bits(q1->grad, q2->grad),
                  "n %lld, run %d: p %.9g vs %.9g, q %.9g vs %.9g", (long long)n, run,
                  (double)p1->grad->data[0], (double)p2->grad->data[0], (double)q1->grad->data[0],
                  (double)q2->grad->data[0]);
        cr_assert(same_bits(k1->grad, k2->grad), "n %lld, run %d: k's gradient", (long long)n, run);
        cr_assert(!x_grad || same_bits(X1->grad, X2->grad), "n %lld, run %d: X's gradient",
                  (long long)n, run);
        cr_assert(same_bits(k1, k2), "n %lld, run %d: an intermediate's values", (long long)n, run);
        cr_assert_eq(ag_memory_stats().backward_nodes, visited);
        if (run % 3 == 2) { /* accumulated over three runs, then a step */
            double lr = 0.05 / (double)n;
            step(p1, lr);
            step(q1, lr);
            step(p2, lr);
            step(q2, lr);
            if (x_grad) {
                step(X1, lr);
                step(X2, lr);
            }
        }
        ag_release(start);
    }
    ag_replay_free(r);
}

Test(replay, tiled_program_is_eager_bit_for_bit)
{
    tiled_case(2 * AG__TILE + 77, true, false);
    tiled_case(2 * AG__TILE + 77, false, true);
    tiled_case(5, true, true);
    tiled_case(AG__TILE, false, false);
    test_finish();
}

/* Random graphs, each replayed beside its eager twin: ops drawn over a pool of values whose
 * first four are the leaves p and q (parameters) and x and y (the inputs), each op taking
 * one or two of the newest values or any; numbers on either side; a tensor used twice.
 * Three families of shapes lead to the three paths: every tensor one element (0-d, [1],
 * [1,1]: the scalar program); parameters of one element and inputs of n (tiled); and
 * broadcasts of [1,4] by [3,1] (general). An op without a scalar form, a view or a sum
 * inside sends a graph to the general path, so each family takes the others' too. */
enum { RG_MAX = 16 };
enum rg_kind {
    RG_ADD,
    RG_SUB,
    RG_MUL,
    RG_DIV,
    RG_ADD_N,
    RG_N_SUB,
    RG_MUL_N,
    RG_N_DIV,
    RG_POW_N,
    RG_POW_T,
    RG_N_POW,
    RG_NEG,
    RG_EXP,
    RG_LOG,
    RG_SQRT,
    RG_ABS,
    RG_RELU,
    RG_SIGMOID,
    RG_TANH,
    RG_CLAMP,
    RG_SUM,
    RG_VIEW,
    RG_KINDS
};
typedef struct rg_op {
    int kind, a, b; /* operands: positions in the pool */
    double num;
} rg_op;
typedef struct rgraph {
    rg_op op[RG_MAX];
    int n, kept; /* kept: the op whose result is given retain_grad */
    bool mean;
} rgraph;

static uint32_t rg_state;
static uint32_t rg_next(void) /* a fixed stream (xorshift), the same on every machine */
{
    rg_state ^= rg_state << 13;
    rg_state ^= rg_state >> 17;
    rg_state ^= rg_state << 5;
    return rg_state;
}

/* One of the four newest values in a pool of `have`, or (one time in four) any of them. */
static int rg_pick(int have)
{
    int newest = (int)(rg_next() % 4);
    return rg_next() % 4 == 0 || newest >= have ? (int)(rg_next() % (uint32_t)have)
                                                : have - 1 - newest;
}

static bool rg_binary(int kind) { return kind <= RG_DIV || kind == RG_POW_T; }

/* Pool positions 2 and 3, x and y, take no gradient; p, q and every op's result do. */
static bool rg_input(int k) { return k == 2 || k == 3; }

/* A graph of 4 to RG_MAX - 1 ops. An op on the inputs alone would not be recorded, and a
 * replay refuses a graph that reads its result: an operand that goes through an op of its
 * own (b in a / (|b| + 1)), or an op's only operand, is p or q in place of an input. A
 * graph meant for the tiled program (tiled: p and q of one element, x and y of n) begins
 * with p * x, so that every result holds n elements, and has no op without a scalar form;
 * an op on p and q alone (a node of one element) takes the previous result in place of its
 * first operand. */
static rgraph rg_make(bool tiled)
{
    static const double exps[] = {2, 3, 0.5, -1, -2, 1.7, 0, 1};
    rgraph g = {.n = 4 + (int)(rg_next() % (RG_MAX - 4)), .mean = rg_next() % 2};
    for (int i = 0; i < g.n; i++) {
        rg_op *o = &g.op[i];
        o->kind = (int)(rg_next() % RG_KINDS);
        o->a = rg_pick(4 + i);
        o->b = rg_pick(4 + i);
        o->num = o->kind == RG_POW_N ? exps[rg_next() % 8] : (double)(rg_next() % 9) / 4 - 1;
        bool binary = rg_binary(o->kind);
        if (rg_input(o->a) && (o->kind == RG_POW_T || !binary || rg_input(o->b))) o->a = 0;
        if (rg_input(o->b) && (o->kind == RG_DIV || o->kind == RG_POW_T)) o->b = 1;
        if (!tiled) continue;
        if (i == 0) *o = (rg_op){RG_MUL, 0, 2, 0};
        if (o->kind >= RG_CLAMP) o->kind = RG_TANH;
        if (o->a < 2 && !(rg_binary(o->kind) && o->b >= 2)) o->a = 3 + i; /* p or q alone */
    }
    g.kept = (int)(rg_next() % (uint32_t)g.n);
    return g;
}

/* Op o on a and b. The domains are kept safe (a divisor, a base or a root above 0), so
 * that every value is finite. */
static ag_tensor *rg_apply(const rg_op *o, ag_tensor *a, ag_tensor *b)
{
    double n = o->num;
    switch (o->kind) {
    case RG_ADD:
        return ag_add(a, b);
    case RG_SUB:
        return ag_sub(a, b);
    case RG_MUL:
        return ag_mul(a, b);
    case RG_DIV:
        return ag_div(a, ag_add(ag_abs(b), 1));
    case RG_ADD_N:
        return ag_add(a, n);
    case RG_N_SUB:
        return ag_sub(n, a);
    case RG_MUL_N:
        return ag_mul(n, a);
    case RG_N_DIV:
        return ag_div(n, ag_add(ag_abs(a), 0.5));
    case RG_POW_N:
        return ag_pow(ag_add(ag_abs(ag_tanh(a)), 0.5), n);
    case RG_POW_T:
        return ag_pow(ag_add(ag_sigmoid(a), 0.5), ag_tanh(b));
    case RG_N_POW:
        return ag_pow(1.5, ag_tanh(a));
    case RG_NEG:
        return ag_neg(a);
    case RG_EXP:
        return ag_exp(ag_tanh(a));
    case RG_LOG:
        return ag_log(ag_add(ag_abs(a), 0.25));
    case RG_SQRT:
        return ag_sqrt(ag_add(ag_abs(a), 0.25));
    case RG_ABS:
        return ag_abs(a);
    case RG_RELU:
        return ag_relu(a);
    case RG_SIGMOID:
        return ag_sigmoid(a);
    case RG_TANH:
        return ag_tanh(a);
    case RG_CLAMP:
        return ag_clamp(a, -1, n);
    case RG_SUM:
        return ag_sum(ag_mul(a, 0.25));
    default:
        return ag_view(ag_view(a, AG_SHAPE(-1)), ag_size(a)); /* RG_VIEW */
    }
}

/* Builds g over p, q, x, y; v gets the pool. */
static ag_tensor *rg_build(const rgraph *g, ag_tensor *v[4 + RG_MAX])
{
    for (int i = 0; i < g->n; i++) {
        ag_tensor *r = rg_apply(&g->op[i], v[g->op[i].a], v[g->op[i].b]);
        cr_assert_not_null(r, "op %d (kind %d): %s", i, g->op[i].kind, ag_last_error());
        v[4 + i] = r;
        if (i == g->kept) ag_retain_grad(r);
    }
    /* p x - p y: the loss takes a gradient and reads both inputs, whatever the ops drew */
    ag_tensor *last = ag_add(v[3 + g->n], ag_sub(ag_mul(v[0], v[2]), ag_mul(v[0], v[3])));
    return g->mean ? ag_mean(last) : ag_sum(last);
}

/* Same floats, or both NULL (a leaf the loss does not reach has no ->grad). */
static bool same_or_none(const ag_tensor *a, const ag_tensor *b)
{
    return a == b || (a && b && same_bits(a, b));
}

Test(replay, random_graphs_are_eager_bit_for_bit)
{
    enum { GRAPHS = 150, RUNS = 4 };
    const ag_shape shapes[3][4] = {
        {{0}, AG_SHAPE(1), AG_SHAPE(1), AG_SHAPE(1, 1)},
        {{0}, AG_SHAPE(1), AG_SHAPE(AG__TILE + 77), AG_SHAPE(AG__TILE + 77)},
        {AG_SHAPE(1, 4), {0}, AG_SHAPE(3, 1), AG_SHAPE(3, 4)},
    };
    int paths[3] = {0}; /* runs after the first on each path */
    rg_state = 2463534242u;
    ag_manual_seed(11);
    for (int family = 0; family < 3; family++)
        for (int k = 0; k < GRAPHS; k++) {
            const ag_shape *s = shapes[family];
            rgraph g = rg_make(family == 1);
            ag_mark start = ag_mark_now();
            ag_tensor *p1 = ag_randn(s[0], .requires_grad = true);
            ag_tensor *q1 = ag_randn(s[1], .requires_grad = true);
            ag_tensor *p2 = ag_tensor_from(p1->data, s[0], true);
            ag_tensor *q2 = ag_tensor_from(q1->data, s[1], true);
            ag_tensor *v1[4 + RG_MAX], *v2[4 + RG_MAX] = {p2, q2, ag_zeros(s[2]), ag_zeros(s[3])};
            ag_tensor *loss2 = rg_build(&g, v2);
            ag_replay *r = ag_replay_new(loss2, v2 + 2, 2);
            cr_assert_not_null(r, "family %d, graph %d: %s", family, k, ag_last_error());
            ag_mark run_start = ag_mark_now();
            for (int run = 0; run < RUNS; run++) {
                ag_tensor *x = ag_randn(s[2]), *y = ag_randn(s[3]);
                memcpy(v1, (ag_tensor *[]){p1, q1, x, y}, sizeof(ag_tensor *[4]));
                ag_tensor *loss1 = rg_build(&g, v1);
                cr_assert(ag_backward(loss1), "%s", ag_last_error());
                ag_tensor *kept = v2[4 + g.kept];
                if (kept->grad) ag_zero_(kept->grad); /* v1's is new at every run */
                if (run > 0) paths[ag__replay_path(r)]++;
                cr_assert(ag_replay_run(r, (ag_tensor *[]){x, y}, 2), "%s", ag_last_error());
                cr_assert(isfinite(loss1->data[0]), "family %d, graph %d", family, k);
                cr_assert(same_bits(loss1, loss2), "family %d, graph %d, run %d: loss %.9g vs %.9g",
                          family, k, run, (double)loss1->data[0], (double)loss2->data[0]);
                cr_assert(same_or_none(p1->grad, p2->grad) && same_or_none(q1->grad, q2->grad),
                          "family %d, graph %d, run %d: a parameter's gradient", family, k, run);
                cr_assert(same_or_none(v1[4 + g.kept]->grad, kept->grad),
                          "family %d, graph %d, run %d: the kept gradient", family, k, run);
                /* every value the loss reached (the others were not run again) */
                bool reached[4 + RG_MAX] = {false};
                reached[3 + g.n] = true;
                for (int i = g.n; i-- > 0;)
                    if (reached[4 + i]) {
                        reached[g.op[i].a] = true;
                        if (rg_binary(g.op[i].kind)) reached[g.op[i].b] = true;
                    }
                for (int i = 4; i < 4 + g.n; i++)
                    cr_assert(!reached[i] || same_bits(v1[i], v2[i]),
                              "family %d, graph %d, run %d: value %d", family, k, run, i);
                if (run % 2) /* accumulated over two runs, then a step */
                    for (int i = 0; i < 2; i++)
                        if (v1[i]->grad) {
                            step(v1[i], 0.1);
                            step(v2[i], 0.1);
                        }
                ag_release(run_start);
            }
            ag_replay_free(r);
            ag_release(start);
        }
    /* each path was taken by a fair share of the runs */
    for (int path = 0; path < 3; path++)
        cr_assert_geq(paths[path], GRAPHS, "path %d: %d runs", path, paths[path]);
    test_finish();
}

/* Only graphs of one-element tensors and ops of a scalar form become scalar programs;
 * only graphs of elementwise ops on n elements and leaves of one, whose loss is their sum
 * or mean, become tiled programs; the rest take the general path. Each is run once to make
 * its ->grads (the general path), then asked the path its next run takes, and run. */
Test(replay, which_graphs_take_which_path)
{
    enum { GENERAL = AG__REPLAY_GENERAL, SCALAR = AG__REPLAY_SCALAR, TILED = AG__REPLAY_TILED };
    ag_tensor *w = ag_scalar(2.0, true), *b = ag_scalar(0.5, true);
    ag_tensor *x = ag_zeros(AG_SHAPE(1)), *y = ag_zeros(AG_SHAPE(1));
    ag_tensor *X = ag_arange(0, 6, 1), *Y = ag_ones(AG_SHAPE(6));
    ag_tensor *P = ag_zeros(AG_SHAPE(6), .requires_grad = true);
    ag_tensor *M = ag_zeros(AG_SHAPE(6), .requires_grad = true);
    struct {
        ag_tensor *loss;
        int path;
    } cases[] = {
        {lab(w, b, x, y), SCALAR},
        {ag_sum(ag_exp(ag_mul(w, x))), SCALAR},                   /* exp */
        {ag_sum(ag_clamp(ag_mul(w, x), -1, 1)), GENERAL},         /* clamp: no scalar form */
        {ag_sum(ag_view(ag_mul(w, x), AG_SHAPE(1))), GENERAL},    /* a view */
        {ag_mul(ag_sum(P), w), GENERAL},                          /* sum: one element, of six */
        {lab(w, b, X, Y), TILED},                                 /* six elements */
        {ag_mean(M), TILED},                                      /* the mean of a leaf */
        {ag_mul(lab(w, b, X, Y), 2.0), GENERAL},                  /* loss: no sum or mean */
        {ag_sum(ag_mul(ag_mul(w, w), X)), GENERAL},               /* a node of one element */
        {ag_sum(ag_clamp(ag_mul(w, X), -1, 1)), GENERAL},         /* clamp */
        {ag_sum(ag_view(ag_mul(w, X), AG_SHAPE(2, 3))), GENERAL}, /* a view */
        {ag_sum(ag_mul(ag_view(X, AG_SHAPE(6, 1)), P)), GENERAL}, /* a broadcast [6,1] by [6] */
        {ag_sum(ag_mul(ag_sum_dim(ag_mul(w, X), 0, true), P)), GENERAL}, /* a reduction inside */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ag_replay *r = ag_replay_new(cases[i].loss, NULL, 0);
        cr_assert_not_null(r, "case %zu: %s", i, ag_last_error());
        cr_assert(ag_replay_run(r, NULL, 0), "%s", ag_last_error()); /* makes the ->grads */
        cr_assert_eq(ag__replay_path(r), cases[i].path, "case %zu", i);
        cr_assert(ag_replay_run(r, NULL, 0), "%s", ag_last_error());
        ag_replay_free(r);
    }
    /* the mean of M, run twice (the second run tiled): 1/6 twice in every element */
    for (int i = 0; i < 6; i++) cr_assert_eq(M->grad->data[i], 1.0f / 6.0f + 1.0f / 6.0f);
    test_finish();
}

/* A replay writes its nodes' values again, in place: a graph outside it that saved one of
 * them (other = h * h) refuses to backward afterwards, as after any in-place write, rather
 * than give a gradient from h's new values for a value computed from its old ones. On
 * every path; and the replay's own graph still backwards eagerly. */
Test(replay, a_graph_that_saved_a_replayed_tensor_refuses_to_backward)
{
    const int paths[] = {AG__REPLAY_SCALAR, AG__REPLAY_TILED, AG__REPLAY_GENERAL};
    for (int i = 0; i < 3; i++) {
        ag_tensor *w = ag_scalar(2.0, true), *x = ag_ones(i == 0 ? AG_SHAPE(1) : AG_SHAPE(4));
        ag_tensor *h = ag_mul(w, x);
        ag_tensor *loss = i < 2 ? ag_sum(h) : ag_sum(ag_view(h, AG_SHAPE(2, 2)));
        ag_tensor *other = ag_sum(ag_mul(h, h));
        ag_replay *r = ag_replay_new(loss, (ag_tensor *[]){x}, 1);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){x}, 1), "%s", ag_last_error());
        cr_assert_eq(ag__replay_path(r), paths[i], "case %d", i);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){x}, 1), "%s", ag_last_error());
        cr_assert(!ag_backward(other), "case %d", i);
        cr_assert(strstr(ag_last_error(), "modified by an inplace operation"), "%s",
                  ag_last_error());
        ag_clear_error();
        cr_assert(ag_backward(loss), "case %d: %s", i, ag_last_error());
        ag_replay_free(r);
    }
    test_finish();
}

/* The other ops a replay runs: reductions over a dimension, max and min, softmax and its
 * kin, rows, slices, cat, stack, where (its condition an input), and the four losses.
 * cond is x > 0, given as an input. */
static ag_tensor *other_ops(ag_tensor *p, ag_tensor *x, ag_tensor *t, ag_tensor *cond,
                            ag_tensor *labels, ag_tensor *targets)
{
    ag_tensor *h = ag_mul(x, p);                                             /* [4,3] */
    ag_tensor *a = ag_add(ag_sum_dim(h, 1, true), ag_mean_dim(h, 0, false)); /* [4,3] */
    ag_tensor *m = ag_add(ag_max(h), ag_min(ag_max_dim(a, 1, false, NULL))); /* [] */
    ag_tensor *s = ag_add(ag_softmax(a, 1), ag_log_softmax(a, 0));           /* [4,3] */
    ag_tensor *l = ag_logsumexp(ag_add(s, m), 1, true);                      /* [4,1] */
    ag_tensor *c = ag_cat(
        (ag_tensor *[]){ag_select(s, 1, 2), ag_view(ag_slice(s, 0, 1, 3), AG_SHAPE(6))}, 2, 0);
    ag_tensor *k = ag_stack((ag_tensor *[]){ag_squeeze_dim(l, 1), ag_select(s, 1, 1)}, 2, 0);
    ag_tensor *w = ag_where(cond, h, ag_neg(h)); /* [4,3] */
    ag_tensor *loss = ag_add(ag_sum(c), ag_mean(k));
    loss = ag_add(loss, ag_mse_loss(w, t));
    loss = ag_add(loss, ag_cross_entropy(a, labels));
    loss = ag_add(loss, ag_binary_cross_entropy(ag_sigmoid(h), targets));
    loss = ag_add(loss, ag_binary_cross_entropy_with_logits(h, targets, .reduction = AG_SUM));
    return ag_add(loss, ag_min_dim(ag_min_dim(w, 0, true, NULL), 1, false, NULL));
}

Test(replay, other_ops_are_eager_bit_for_bit)
{
    ag_manual_seed(5);
    ag_tensor *p1 = ag_randn(AG_SHAPE(1, 3), .requires_grad = true);
    ag_tensor *p2 = ag_tensor_from(p1->data, AG_SHAPE(1, 3), true);
    ag_tensor *x = ag_zeros(AG_SHAPE(4, 3)), *t = ag_zeros(AG_SHAPE(4, 3));
    ag_tensor *cond = ag_zeros(AG_SHAPE(4, 3)), *labels = ag_zeros(AG_SHAPE(4));
    ag_tensor *targets = ag_zeros(AG_SHAPE(4, 3));
    ag_tensor *loss2 = ag_sum(other_ops(p2, x, t, cond, labels, targets));
    ag_tensor *in[] = {x, t, cond, labels, targets};
    ag_replay *r = ag_replay_new(loss2, in, 5);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_mark start = ag_mark_now();
    for (int k = 0; k < 4; k++) {
        ag_tensor *xk = ag_randn(AG_SHAPE(4, 3)), *tk = ag_randn(AG_SHAPE(4, 3));
        ag_tensor *ck = ag_gt(xk, 0),
                  *lk = ag_tensor_from(((const float[]){k % 3, 2, 0, 1}), AG_SHAPE(4));
        ag_tensor *gk = ag_rand(AG_SHAPE(4, 3));
        ag_tensor *loss1 = ag_sum(other_ops(p1, xk, tk, ck, lk, gk));
        cr_assert(ag_backward(loss1));
        cr_assert(ag_replay_run(r, (ag_tensor *[]){xk, tk, ck, lk, gk}, 5), "%s", ag_last_error());
        cr_assert(isfinite(loss1->data[0]));
        cr_assert(same_bits(loss1, loss2), "run %d: loss %.9g vs %.9g", k, (double)loss1->data[0],
                  (double)loss2->data[0]);
        cr_assert(same_bits(p1->grad, p2->grad), "run %d: grads differ", k);
        ag_release(start);
    }
    /* the ops' own checks hold in a replay: a class out of range, a probability above 1 */
    ag_tensor *bad = ag_tensor_from(((const float[]){0, 1, 7, 2}), AG_SHAPE(4));
    ag_tensor *g = ag_zeros(AG_SHAPE(4, 3)),
              *before = ag_tensor_from(p2->grad->data, AG_SHAPE(1, 3));
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x, t, cond, bad, g}, 5));
    EXPECT_ERROR("replay_run", "nll_loss: Target 7 is out of bounds.");
    ag_tensor *over = ag_full(AG_SHAPE(4, 3), NAN); /* sigmoid(nan) is no probability */
    ag_tensor *good = ag_zeros(AG_SHAPE(4));
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){over, t, cond, good, g}, 5));
    EXPECT_ERROR("replay_run", "binary_cross_entropy: all elements of input should be between 0 "
                               "and 1");
    cr_assert(same_bits(before, p2->grad), "a refused run changed no gradient");
    /* the graph holds part of the new values: an eager backward refuses it */
    cr_assert(!ag_backward(loss2));
    EXPECT_ERROR("backward", "modified by an inplace operation");
    ag_replay_free(r);
    test_finish();
}

/* An MLP's training step, Linear-ReLU-Linear, cross entropy, SGD with momentum: the replay
 * and the eager step move two copies of the model the same way, bit for bit. */
Test(replay, mlp_training_is_eager_bit_for_bit)
{
    ag_manual_seed(7);
    ag_module *m1 = ag_Sequential(ag_Linear(6, 5), ag_ReLU(), ag_Linear(5, 3));
    ag_manual_seed(7);
    ag_module *m2 = ag_Sequential(ag_Linear(6, 5), ag_ReLU(), ag_Linear(5, 3));
    ag_optimizer *o1 = ag_SGD(ag_parameters(m1), .lr = 0.1, .momentum = 0.9);
    ag_optimizer *o2 = ag_SGD(ag_parameters(m2), .lr = 0.1, .momentum = 0.9);
    ag_tensor *x = ag_zeros(AG_SHAPE(4, 6)), *labels = ag_zeros(AG_SHAPE(4));
    ag_tensor *loss2 = ag_cross_entropy(ag_t(ag_t(ag_forward(m2, x))), labels);
    ag_replay *r = ag_replay_new(loss2, (ag_tensor *[]){x, labels}, 2);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_mark start = ag_mark_now();
    for (int k = 0; k < 6; k++) {
        ag_tensor *xk = ag_randn(AG_SHAPE(4, 6));
        ag_tensor *lk = ag_tensor_from(((const float[]){k % 3, 1, 2, 0}), AG_SHAPE(4));
        ag_tensor *loss1 = ag_cross_entropy(ag_t(ag_t(ag_forward(m1, xk))), lk);
        cr_assert(ag_backward(loss1));
        ag_step(o1);
        ag_zero_grad(o1);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){xk, lk}, 2), "%s", ag_last_error());
        ag_step(o2);
        ag_zero_grad(o2);
        cr_assert(same_bits(loss1, loss2), "step %d: loss %.9g vs %.9g", k, (double)loss1->data[0],
                  (double)loss2->data[0]);
        ag_params p1 = ag_parameters(m1), p2 = ag_parameters(m2);
        for (int i = 0; i < p1.n; i++)
            cr_assert(same_bits(p1.tensors[i], p2.tensors[i]), "step %d: parameter %d differs", k,
                      i);
        ag_release(start);
    }
    ag_replay_free(r);
    test_finish();
}

Test(replay, gradients_match_hand_derived_values)
{
    /* d/dw of mean((w*x + b - y)^2) = 2 (w x + b - y) x, by hand, at new x, y */
    ag_tensor *w = ag_scalar(2.0, true), *b = ag_scalar(0.5, true);
    ag_tensor *x = ag_zeros(AG_SHAPE(1)), *y = ag_zeros(AG_SHAPE(1));
    ag_tensor *loss = lab(w, b, x, y);
    ag_replay *r = ag_replay_new(loss, (ag_tensor *[]){x, y}, 2);
    ag_tensor *xv = VEC(false, 3.0f), *yv = VEC(false, 1.0f);
    cr_assert(ag_replay_run(r, (ag_tensor *[]){xv, yv}, 2), "%s", ag_last_error());
    CHECK("loss", loss, 0, 30.25f);            /* (6 + 0.5 - 1)^2 */
    CHECK("w.grad", w->grad, 0, 2 * 5.5f * 3); /* 33 */
    CHECK("b.grad", b->grad, 0, 2 * 5.5f);     /* 11 */
    CHECK("x", x, 0, 3.0f);                    /* the input holds the values given */
    ag_replay_free(r);
    test_finish();
}

Test(replay, retain_grad_and_a_second_eager_backward)
{
    ag_tensor *w = ag_scalar(2.0, true), *x = ag_zeros(AG_SHAPE(2));
    ag_tensor *h = ag_retain_grad(ag_mul(w, x));
    ag_tensor *loss = ag_sum(ag_mul(h, h));
    cr_assert(ag_backward(loss)); /* eager first: frees the saved values */
    ag_zero_(w->grad);
    ag_zero_(h->grad);
    ag_replay *r = ag_replay_new(loss, (ag_tensor *[]){x}, 1);
    cr_assert(ag_replay_run(r, (ag_tensor *[]){VEC(false, 1.0f, 2.0f)}, 1), "%s", ag_last_error());
    CHECK("loss", loss, 0, 20.0f);           /* (2*1)^2 + (2*2)^2 */
    CHECK("h.grad", h->grad, 0, 4.0f, 8.0f); /* 2 h */
    CHECK("w.grad", w->grad, 0, 20.0f);      /* sum 2 h x = 4 + 16 */
    /* the replay put the saved values back: an eager backward through the graph works */
    cr_assert(ag_backward(loss), "%s", ag_last_error());
    CHECK("w.grad", w->grad, 0, 40.0f);
    ag_replay_free(r);
    test_finish();
}

Test(replay, no_system_allocation_in_steady_state)
{
    ag_tensor *w = ag_randn(AG_SHAPE(8), .requires_grad = true);
    ag_tensor *x = ag_zeros(AG_SHAPE(16, 8)), *y = ag_zeros(AG_SHAPE(16, 1));
    ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_sum_dim(ag_mul(x, w), 1, true), y), 2));
    ag_replay *r = ag_replay_new(loss, (ag_tensor *[]){x, y}, 2);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_tensor *xv = ag_randn(AG_SHAPE(16, 8)), *yv = ag_randn(AG_SHAPE(16, 1));
    ag_replay_run(r, (ag_tensor *[]){xv, yv}, 2);
    size_t before = ag_memory_stats().system_allocs;
    for (int k = 0; k < 100; k++) cr_assert(ag_replay_run(r, (ag_tensor *[]){xv, yv}, 2));
    cr_assert_eq(ag_memory_stats().system_allocs, before);
    ag_replay_free(r);
    test_finish();
}

static float twice(float x) { return 2 * x; }
static float two(float x)
{
    (void)x;
    return 2;
}

Test(replay, refusals)
{
    ag_tensor *w = ag_scalar(2.0, true), *x = ag_zeros(AG_SHAPE(1)), *y = ag_zeros(AG_SHAPE(1));
    ag_tensor *loss = lab(w, ag_scalar(0.0, true), x, y);
    cr_assert_null(ag_replay_new(NULL, NULL, 0));
    EXPECT_ERROR("replay_new", "replay_new: argument loss is NULL");
    cr_assert_null(ag_replay_new(w, NULL, 0));
    EXPECT_ERROR("replay_new", "replay_new: loss ([]) was made by no recorded op");
    ag_replay *one = ag_replay_new(ag_mul(w, x), NULL, 0); /* shape [1]: one element, fine */
    cr_assert_not_null(one, "%s", ag_last_error());
    ag_replay_free(one);
    cr_assert_null(ag_replay_new(ag_mul(w, ag_zeros(AG_SHAPE(2))), NULL, 0));
    EXPECT_ERROR("replay_new", "grad can be implicitly created only for scalar outputs", "[2]");
    cr_assert_null(ag_replay_new(loss, NULL, 1));
    EXPECT_ERROR("replay_new", "replay_new: 1 inputs given from NULL");
    cr_assert_null(ag_replay_new(loss, (ag_tensor *[]){ag_zeros(AG_SHAPE(3))}, 1));
    EXPECT_ERROR("replay_new", "inputs[0] ([3]) is not in the graph of loss");
    cr_assert_null(ag_replay_new(loss, (ag_tensor *[]){x, x}, 2));
    EXPECT_ERROR("replay_new", "inputs[0] and inputs[1] are the same tensor");
    ag_tensor *h = ag_mul(w, x);
    cr_assert_null(ag_replay_new(ag_sum(h), (ag_tensor *[]){h}, 1));
    EXPECT_ERROR("replay_new", "inputs[0] ([1]) was made by MulBackward0");
    cr_assert_null(ag_replay_new(ag_sum(ag_map(h, twice, two, "Twice")), NULL, 0));
    EXPECT_ERROR("replay_new", "holds Twice", "a replay cannot run yet");
    /* a tensor computed from the graph without being recorded */
    ag_tensor *mask = ag_gt(h, 0);
    cr_assert_null(ag_replay_new(ag_sum(ag_mul(h, mask)), NULL, 0));
    EXPECT_ERROR("replay_new", "reads a tensor of shape [1] that an unrecorded op",
                 "computed after its inputs or parameters were made");
    ag_tensor *scaled;
    AG_NO_GRAD { scaled = ag_mul(w, 3); }
    cr_assert_null(ag_replay_new(ag_sum(ag_mul(h, scaled)), NULL, 0));
    EXPECT_ERROR("replay_new", "unrecorded op", "give it as an input");
    /* so is one computed from an input, and one computed from data made before */
    ag_tensor *x2 = ag_mul(x, 2);
    ag_tensor *both = ag_sum(ag_add(ag_mul(w, x), ag_mul(w, x2)));
    cr_assert_null(ag_replay_new(both, (ag_tensor *[]){x}, 1));
    EXPECT_ERROR("replay_new", "unrecorded op", "give it as an input");
    ag_tensor *old = ag_mul(ag_zeros(AG_SHAPE(1)), 2), *w3 = ag_scalar(1.0, true);
    ag_replay *fine = ag_replay_new(ag_sum(ag_mul(w3, old)), NULL, 0);
    cr_assert_not_null(fine, "%s", ag_last_error());
    ag_replay_free(fine);
    /* given as an input, it is fine: each run takes its new values */
    ag_replay *r = ag_replay_new(ag_sum(ag_mul(h, mask)), (ag_tensor *[]){mask}, 1);
    cr_assert_not_null(r, "%s", ag_last_error());
    ag_replay_free(r);

    r = ag_replay_new(loss, (ag_tensor *[]){x, y}, 2);
    cr_assert_not_null(r);
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x}, 1));
    EXPECT_ERROR("replay_run", "replay_run: the replay takes 2 inputs; 1 given");
    cr_assert(!ag_replay_run(r, NULL, 2));
    EXPECT_ERROR("replay_run", "the replay takes 2 inputs; 2 given from NULL");
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x, ag_zeros(AG_SHAPE(2))}, 2));
    EXPECT_ERROR("replay_run", "values[1] has shape [2], but input 1 of the replay was recorded "
                               "with shape [1]");
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x, ag_zeros(AG_SHAPE(1, 1))}, 2));
    EXPECT_ERROR("replay_run", "values[1] has shape [1, 1]");
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x, NULL}, 2));
    EXPECT_ERROR("replay_run", "replay_run: argument values[1] is NULL");
    cr_assert_null(w->grad, "a refused run changed no gradient");
    /* the trace and anomaly mode watch ag_backward only */
    ag_set_detect_anomaly(true);
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x, y}, 2));
    EXPECT_ERROR("replay_run", "the backward trace and anomaly mode watch ag_backward");
    ag_set_detect_anomaly(false);
    cr_assert(ag_replay_run(r, (ag_tensor *[]){x, y}, 2), "%s", ag_last_error());
    ag_replay_free(r);
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){x, y}, 2));
    EXPECT_ERROR("replay_run", "replay_run: the replay is not a live replay (freed by "
                               "ag_replay_free or ag_shutdown");
    ag_replay_free(r);
    EXPECT_ERROR("replay_free", "replay_free: the replay is not a live replay");
    ag_replay_free(NULL); /* like free(NULL) */
    cr_assert_str_empty(ag_last_error());
    test_finish();
}

Test(replay, released_graph)
{
    ag_tensor *w = ag_scalar(2.0, true);
    ag_mark m = ag_mark_now();
    ag_tensor *x = ag_zeros(AG_SHAPE(1));
    ag_replay *r = ag_replay_new(ag_sum(ag_mul(w, x)), (ag_tensor *[]){x}, 1);
    cr_assert_not_null(r);
    ag_release(m);
    ag_tensor *v = ag_zeros(AG_SHAPE(1));
    ag_sum(ag_mul(w, v)); /* new tensors in the released memory */
    cr_assert(!ag_replay_run(r, (ag_tensor *[]){v}, 1));
    EXPECT_ERROR("replay_run", "the replay's graph was released (ag_release freed its loss)");
    ag_replay_free(r);
    test_finish();
}

static ag_replay *inner;
static ag_tensor *inner_x;
static float calls_replay(float x)
{
    cr_assert(!ag_replay_run(inner, (ag_tensor *[]){inner_x}, 1));
    return x;
}

Test(replay, not_from_inside_backward)
{
    ag_tensor *w = ag_scalar(2.0, true);
    inner_x = ag_zeros(AG_SHAPE(1));
    inner = ag_replay_new(ag_sum(ag_mul(w, inner_x)), (ag_tensor *[]){inner_x}, 1);
    cr_assert(ag_backward(ag_sum(ag_map(w, twice, calls_replay, "Calls"))));
    EXPECT_ERROR("replay_run", "replay_run: called from inside ag_backward");
    cr_assert(ag_replay_run(inner, (ag_tensor *[]){inner_x}, 1), "%s", ag_last_error());
    test_finish(); /* ag_shutdown frees the replay */
}

/* Each allocation of ag_replay_new fails in turn, for the lab's graph on one sample (a
 * scalar program) and on three (a tiled one). */
static void out_of_memory_case(int64_t n)
{
    ag_tensor *w = ag_scalar(2.0, true), *x = ag_zeros(AG_SHAPE(n)), *y = ag_zeros(AG_SHAPE(n));
    ag_tensor *loss = lab(w, ag_scalar(1.0, true), x, y);
    ag_set_allocator(agt_faulty_realloc, NULL);
    bool done = false;
    for (long k = 1; !done && k < 100; k++) {
        agt_arm(k);
        ag_replay *r = ag_replay_new(loss, (ag_tensor *[]){x, y}, 2);
        if (fault.failed) {
            cr_assert_null(r);
            /* walking the graph (graph.c's walk) or keeping it */
            const char *msg = ag_last_error();
            cr_assert(strstr(msg, "replay_new: out of memory walking the graph of a tensor of "
                                  "shape []") ||
                          strstr(msg, "replay_new: out of memory keeping the graph of loss (9 "
                                      "tensors)"),
                      "%s", msg);
            ag_clear_error();
            continue;
        }
        cr_assert_not_null(r, "%s", ag_last_error());
        agt_arm(0);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){x, y}, 2), "%s", ag_last_error());
        cr_assert_eq(ag__replay_path(r), n == 1 ? AG__REPLAY_SCALAR : AG__REPLAY_TILED);
        cr_assert(ag_replay_run(r, (ag_tensor *[]){x, y}, 2), "%s", ag_last_error());
        ag_replay_free(r);
        done = true;
    }
    cr_assert(done);
    agt_arm(0);
    ag_set_allocator(NULL, NULL);
}

Test(replay, out_of_memory_everywhere)
{
    out_of_memory_case(1);
    out_of_memory_case(3);
    test_finish();
}
