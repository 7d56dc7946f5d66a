/* Fault injection: every system allocation agrad makes goes through its allocation hook,
 * so a test can refuse any one of them. For every n, the n-th allocation of a whole
 * training step (record, backward, update, release) fails; each failure must be a clear
 * out-of-memory error naming the op and the shape, leave the caller's tensors as they
 * were, and the next step must succeed with the right numbers. */
#include <stdlib.h>

#include "agrad_test.h"

/* A small network and its data; the step is one of its training loop. */
enum { NPARAMS = 4 };
typedef struct net {
    ag_tensor *X, *Y, *p[NPARAMS]; /* W1 [3, 8], b1 [8], W2 [8, 1], b2 [1] */
} net;

static const int64_t param_shapes[NPARAMS][2] = {{3, 8}, {8, 0}, {8, 1}, {1, 0}};

static net make_net(const float *values[NPARAMS])
{
    net n;
    ag_manual_seed(3);
    n.X = ag_randn(AG_SHAPE(16, 3));
    n.Y = ag_randn(AG_SHAPE(16, 1));
    for (int k = 0; k < NPARAMS; k++) {
        ag_shape s = param_shapes[k][1] ? AG_SHAPE(param_shapes[k][0], param_shapes[k][1])
                                        : AG_SHAPE(param_shapes[k][0]);
        n.p[k] = values ? ag_tensor_from(values[k], s, true) : ag_randn(s);
        ag_requires_grad_(n.p[k], true);
    }
    return n;
}

/* One step: zero the grads, forward, backward, compute every update, then apply them all,
 * so that a step either changes every parameter or none. False at the first failure. */
static bool step(net *n, ag_mark mark)
{
    bool ok = true;
    for (int k = 0; k < NPARAMS; k++)
        if (n->p[k]->grad) ok = ok && ag_zero_(n->p[k]->grad);
    ag_tensor *h = ag_relu(ag_add(ag_matmul(n->X, n->p[0]), n->p[1]));
    ag_tensor *out = ag_add(ag_matmul(h, n->p[2]), n->p[3]);
    ag_tensor *loss = ag_mean(ag_pow(ag_sub(out, n->Y), 2));
    ok = ok && ag_backward(loss);
    ag_tensor *next[NPARAMS] = {0};
    AG_NO_GRAD
    {
        for (int k = 0; ok && k < NPARAMS; k++) {
            next[k] = ag_sub(ag_data(n->p[k]), ag_mul(n->p[k]->grad, 0.05));
            ok = next[k] != NULL;
        }
    }
    for (int k = 0; ok && k < NPARAMS; k++) ag_set_data(n->p[k], next[k]);
    ag_release(mark);
    return ok;
}

/* A copy of the parameters' values. */
typedef struct snapshot {
    float v[NPARAMS][64];
} snapshot;

static snapshot take(const net *n)
{
    snapshot s;
    for (int k = 0; k < NPARAMS; k++)
        for (int64_t i = 0; i < n->p[k]->numel; i++) s.v[k][i] = n->p[k]->data[i];
    return s;
}

static void expect_same(const char *when, long at, const net *n, const snapshot *s)
{
    for (int k = 0; k < NPARAMS; k++)
        for (int64_t i = 0; i < n->p[k]->numel; i++)
            cr_assert_eq(n->p[k]->data[i], s->v[k][i],
                         "%s (allocation %ld refused): parameter %d element %lld is %.9g, "
                         "expected %.9g",
                         when, at, k, (long long)i, (double)n->p[k]->data[i], (double)s->v[k][i]);
}

Test(faults, every_allocation_of_a_training_step_can_fail)
{
    ag_set_allocator(agt_faulty_realloc, NULL);
    ag_set_checked(false);

    /* The numbers a step gives when nothing fails, from fresh parameters. */
    record_errors();
    net n = make_net(NULL);
    snapshot start = take(&n);
    const float *values[NPARAMS];
    for (int k = 0; k < NPARAMS; k++) values[k] = start.v[k];
    cr_assert(step(&n, ag_mark_now()), "a step without faults failed: %s", ag_last_error());
    snapshot one = take(&n);
    cr_assert(step(&n, ag_mark_now()), "a second step failed: %s", ag_last_error());
    snapshot two = take(&n);

    long tested = 0;
    for (long at = 1;; at++) {
        /* A fresh start each time, so that the step makes its first allocations again. */
        ag_shutdown();
        record_errors();
        n = make_net(values);
        ag_mark mark = ag_mark_now();
        agt_arm(at);
        bool ok = step(&n, mark);
        bool refused = fault.failed;
        agt_arm(0);
        if (!refused) {
            cr_assert(ok, "the step failed with no refused allocation: %s", ag_last_error());
            expect_same("a step with no refusal", at, &n, &one);
            break;
        }
        tested++;
        cr_assert_not(ok, "allocation %ld was refused, yet the step reports success", at);
        const char *msg = ag_last_error();
        cr_assert(strstr(msg, "out of memory") && strstr(msg, "shape ["),
                  "allocation %ld: the error does not say out of memory for a shape: \"%s\"", at,
                  msg);
        expect_same("after the failed step", at, &n, &start);
        cr_assert_eq(n.X->numel, 48, "X changed");
        ag_clear_error();
        cr_assert(step(&n, mark), "allocation %ld: the next step failed: %s", at, ag_last_error());
        expect_same("after the next step", at, &n, &one);
        cr_assert(step(&n, mark), "allocation %ld: the step after failed: %s", at, ag_last_error());
        expect_same("two steps after", at, &n, &two);
    }
    cr_assert_geq(tested, 8, "only %ld allocations in a first training step", tested);
    test_finish();
}

static ag_tensor *small_sum(ag_tensor *x) { return ag_sum(x); }

Test(faults, backward_is_all_or_nothing)
{
    /* The second ->grad of a pass cannot be made: neither gradient is committed, and the
     * first ->grad made in the pass is freed again. */
    ag_set_allocator(agt_faulty_realloc, NULL);
    record_errors();
    ag_tensor *small = ag_ones(AG_SHAPE(4));
    ag_tensor *big = ag_ones(AG_SHAPE(1 << 20)); /* its grad needs a new pool chunk */
    ag_requires_grad_(small, true);
    ag_requires_grad_(big, true);
    ag_tensor *loss = ag_add(ag_sum(ag_mul(small, 2.0)), ag_sum(ag_mul(big, 3.0)));
    /* The pass's scratch chunks stay under 6 MiB; the grad pool needs an 8 MiB chunk for
     * big's ->grad (a power-of-two block above 4 MiB). */
    fault.limit = (size_t)6 << 20;
    cr_assert(!ag_backward_with(loss, NULL, true), "backward succeeded without memory");
    EXPECT_ERROR("backward", "backward: out of memory allocating the ->grad of a tensor of shape",
                 "[1048576]");
    cr_assert_null(small->grad, "the small leaf kept a ->grad from the failed pass");
    cr_assert_null(big->grad, "the big leaf got a ->grad");
    fault.limit = 0;
    cr_assert(ag_backward_with(loss, NULL, true), "backward with memory: %s", ag_last_error());
    CHECK("small.grad", small->grad, 0, 2, 2, 2, 2);
    cr_assert_eq(big->grad->data[12345], 3.0f, "big.grad = %g", (double)big->grad->data[12345]);
    /* With the grads there, a pass that runs out of scratch memory half way (it needs
     * more than the last pass did) leaves them exactly as they were. */
    ag_tensor *loss2 = ag_sum(ag_mul(ag_mul(big, 2.0), ag_mul(ag_mul(big, small_sum(small)), 3.0)));
    agt_arm(1);
    cr_assert(!ag_backward(loss2), "backward succeeded with its scratch memory refused");
    cr_assert(fault.failed, "no allocation was refused");
    agt_arm(0);
    EXPECT_ERROR("backward", "backward: out of memory at", "shape [");
    CHECK("small.grad", small->grad, 0, 2, 2, 2, 2);
    cr_assert_eq(big->grad->data[12345], 3.0f, "big.grad = %g", (double)big->grad->data[12345]);
    test_finish();
}

Test(faults, out_of_memory_names_the_op_and_the_shape)
{
    ag_set_allocator(agt_faulty_realloc, NULL);
    record_errors();
    ag_tensor *a = ag_ones(AG_SHAPE(1000, 2));
    ag_requires_grad_(a, true);
    ag_tensor *b = ag_ones(AG_SHAPE(2, 1 << 19));
    fault.limit = (size_t)8 << 20;
    cr_assert_null(ag_zeros(AG_SHAPE(1 << 20, 64)), "zeros of 256 MiB with 4 MiB allowed");
    EXPECT_ERROR("zeros", "zeros: out of memory allocating a tensor of shape [1048576, 64]");
    cr_assert_null(ag_matmul(a, b), "a matmul of 2 GB with 8 MiB allowed");
    EXPECT_ERROR("matmul", "matmul: out of memory allocating a tensor of shape [1000, 524288]");
    fault.limit = 64;
    cr_assert_null(ag_repr(a), "repr with 64 bytes allowed");
    EXPECT_ERROR("repr", "repr: out of memory writing a tensor of shape [1000, 2]");
    fault.limit = 0;
    char *s = ag_repr(a);
    cr_assert_not_null(s, "repr: %s", ag_last_error());
    ag_free(s);
    test_finish();
}
