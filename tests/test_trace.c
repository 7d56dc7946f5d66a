/* Seeing backward: names (ag_set_name, parameters' dotted names, in printing and messages),
 * the backward trace of a fixed graph against the text expected, call sites noted by the op
 * macros, gradients unchanged by the trace, and anomaly mode catching a nan planted in
 * forward and one planted in backward, naming the op and the line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <agrad_nn.h>

#include "agrad_test.h"

/* What a stream written by fn holds, as a string the caller frees. */
static char *captured(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *s = calloc((size_t)n + 1, 1);
    rewind(f);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

/* The two-parameter lab's graph, every tensor named: loss = mean((w*x + b - y)^2). */
typedef struct lab {
    ag_tensor *x, *y, *w, *b, *loss;
} lab;

static lab lab_graph(void)
{
    lab g;
    g.x = ag_set_name(VEC(false, -1, 0, 1), "x");
    g.y = ag_set_name(VEC(false, -2, -1, 0), "y");
    g.w = ag_set_name(ag_scalar(-15.0, true), "w");
    g.b = ag_set_name(ag_scalar(-10.0, true), "b");
    ag_tensor *wx = ag_set_name(ag_mul(g.w, g.x), "wx");
    ag_tensor *yhat = ag_set_name(ag_add(wx, g.b), "yhat");
    ag_tensor *err = ag_set_name(ag_sub(yhat, g.y), "err");
    ag_tensor *sq = ag_set_name(ag_pow(err, 2), "sq");
    g.loss = ag_set_name(ag_mean(sq), "loss");
    return g;
}

/* ------------------------------------------------------------------------------------ */
/* Names                                                                                 */

Test(names, given_kept_renamed_removed)
{
    record_errors();
    ag_tensor *w = ag_scalar(-15.0, true);
    cr_assert_null(ag_name(w));
    cr_assert_eq(ag_set_name(w, "w"), w, "set_name returns its tensor");
    cr_assert_str_eq(ag_name(w), "w");
    char *r = ag_repr(w);
    cr_assert_str_eq(r, "tensor(-15., requires_grad=True, name='w')");
    ag_free(r);
    ag_set_name(w, "weight");
    cr_assert_str_eq(ag_name(w), "weight");
    ag_set_name(w, NULL);
    cr_assert_null(ag_name(w));
    ag_set_name(w, "w");
    ag_set_name(w, "");
    cr_assert_null(ag_name(w));
    /* the name is a copy */
    char buf[8] = "abc";
    ag_set_name(w, buf);
    buf[0] = 'X';
    cr_assert_str_eq(ag_name(w), "abc");
    test_finish();
}

Test(names, die_with_their_tensor)
{
    record_errors();
    ag_mark m = ag_mark_now();
    ag_tensor *t = ag_set_name(ag_zeros(AG_SHAPE(3)), "tmp");
    cr_assert_str_eq(ag_name(t), "tmp");
    ag_release(m);
    /* in fast mode the memory is the next tensor's: that tensor has no name */
    ag_tensor *u = ag_zeros(AG_SHAPE(3));
    cr_assert_null(ag_name(u), "a new tensor took the name of the released one: %s", ag_name(u));
    cr_assert_null(ag_name(t));
    if (ag_is_checked()) /* else t is u's memory now, and so u */
        EXPECT_ERROR("name(released)", "name: argument self is a released tensor");
    cr_assert_null(ag_set_name(NULL, "x"));
    EXPECT_ERROR("set_name(NULL)", "set_name", "self");
    /* many names over many releases: the table keeps only the live ones */
    ag_mark m2 = ag_mark_now();
    for (int i = 0; i < 1000; i++) {
        ag_set_name(ag_zeros(AG_SHAPE(1)), "step");
        ag_release(m2);
    }
    test_finish();
}

Test(names, parameters_named_by_their_modules)
{
    record_errors();
    ag_module *seq = ag_sequential_new(
        (ag_module *[]){ag_linear_new(2, 3, true), ag_ReLU(), ag_linear_new(3, 1, true)}, 3);
    ag_params p = ag_parameters(seq);
    cr_assert_eq(p.n, 4);
    const char *want[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    for (int i = 0; i < 4; i++) cr_assert_str_eq(ag_name(p.tensors[i]), want[i]);
    /* a module added under another: its parameters' names grow */
    ag_module *outer = ag_module_new(sizeof(ag_module), "Outer", NULL);
    ag_add_module(outer, "body", seq);
    cr_assert_str_eq(ag_name(p.tensors[3]), "body.2.bias");
    /* a name given wins */
    ag_set_name(p.tensors[0], "first");
    cr_assert_str_eq(ag_name(p.tensors[0]), "first");
    char *r = ag_repr(p.tensors[1]);
    cr_assert(strstr(r, "name='body.0.bias'"), "%s", r);
    ag_free(r);
    test_finish();
}

Test(names, in_messages)
{
    record_errors();
    ag_tensor *a = ag_set_name(ag_zeros(AG_SHAPE(2)), "pred");
    ag_tensor *b = ag_set_name(ag_zeros(AG_SHAPE(3)), "target");
    cr_assert_null(ag_add(a, b));
    EXPECT_ERROR("add", "(shapes [2] (pred) and [3] (target))");
    cr_assert_null(ag_matmul(ag_zeros(AG_SHAPE(2, 4)), b));
    EXPECT_ERROR("matmul", "(target)");
    /* a long name is cut in messages */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ag_set_name(a, longname);
    cr_assert_null(ag_add(a, b));
    cr_assert(strstr(ag_last_error(), "nnn...)"), "%s", ag_last_error());
    cr_assert_str_eq(ag_name(a), longname, "the name itself is whole");
    ag_clear_error();
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* The backward trace                                                                    */

static const char lab_trace[] = "backward from loss [] = 251.7, seeded with 1\n"
                                "1. MeanBackward0 -> loss []\n"
                                "    gradient arriving: 1\n"
                                "    local rule: d mean(x)/dx = 1/numel(x)\n"
                                "    input 0, sq [3]: receives [0.3333, 0.3333, 0.3333]\n"
                                "2. PowBackward0 -> sq [3]\n"
                                "    gradient arriving: [0.3333, 0.3333, 0.3333]\n"
                                "    local rule: d(x^p)/dx = p*x^(p-1), p = 2\n"
                                "    input 0, err [3]: receives [4.667, -6, -16.67]\n"
                                "3. SubBackward0 -> err [3]\n"
                                "    gradient arriving: [4.667, -6, -16.67]\n"
                                "    local rule: d(a-b)/da = 1\n"
                                "    input 0, yhat [3]: receives [4.667, -6, -16.67]\n"
                                "    input 1, y [3]: takes no gradient\n"
                                "4. AddBackward0 -> yhat [3]\n"
                                "    gradient arriving: [4.667, -6, -16.67]\n"
                                "    local rule: d(a+b)/da = 1\n"
                                "    local rule: d(a+b)/db = 1\n"
                                "    input 0, wx [3]: receives [4.667, -6, -16.67]\n"
                                "    input 1, b []: receives -18\n"
                                "5. MulBackward0 -> wx [3]\n"
                                "    gradient arriving: [4.667, -6, -16.67]\n"
                                "    local rule: d(a*b)/da = b\n"
                                "    input 0, w []: receives -21.33\n"
                                "    input 1, x [3]: takes no gradient\n"
                                "b.grad = -18\n"
                                "w.grad = -21.33\n";

Test(trace, lab_graph_as_expected)
{
    /* the trace turned on after the forward: no call sites in the text */
    lab g = lab_graph();
    FILE *f = tmpfile();
    cr_assert_null(ag_set_trace(f), "the trace is off by default");
    cr_assert(ag_backward(g.loss));
    cr_assert_eq(ag_set_trace(NULL), f);
    char *text = captured(f);
    cr_assert_str_eq(text, lab_trace);
    free(text);
    /* the hand-derived gradients: dL/dw = 2/n sum(r x), dL/db = 2/n sum(r), r = wx + b - y */
    CHECK("w.grad", g.w->grad, 1e-5f, -64.0f / 3.0f);
    CHECK("b.grad", g.b->grad, 1e-5f, -18.0f);
    test_finish();
}

Test(trace, totals_and_call_sites)
{
    FILE *f = tmpfile();
    ag_set_trace(f);
    ag_tensor *x = ag_set_name(ag_scalar(3.0, true), "x");
    /* exp, then mul, in two statements: C leaves the order of arguments open (gcc takes
     * them right to left, clang left to right), and the trace's order follows it */
    ag_tensor *e = ag_exp(x), *m = ag_mul(x, 2.0);
    int line = __LINE__ + 1;
    ag_tensor *y = ag_add(m, e); /* x reaches y twice */
    cr_assert(ag_backward(y));
    ag_set_trace(NULL);
    char *text = captured(f);
    char site[256];
    snprintf(site, sizeof site, "AddBackward0 -> [] (output of AddBackward0) (recorded at %s:%d)",
             __FILE__, line);
    cr_assert(strstr(text, site), "no \"%s\" in:\n%s", site, text);
    cr_assert(strstr(text, "local rule: d(x*s)/dx = s, s = 2"), "%s", text);
    /* the second share shows the total of both */
    /* MulBackward0 (the newer node) runs first: its share alone, then exp's with the total */
    cr_assert(strstr(text, "input 0, x []: receives 2\n"), "%s", text);
    cr_assert(strstr(text, "input 0, x []: receives 20.09, total 22.09\n"), "%s", text);
    cr_assert(strstr(text, "x.grad = 22.09"), "%s", text);
    free(text);
    test_finish();
}

Test(trace, large_tensors_summarised)
{
    FILE *f = tmpfile();
    ag_tensor *v = ag_set_name(ag_ones(AG_SHAPE(100), .requires_grad = true), "v");
    ag_tensor *s = ag_sum(ag_mul(v, 3.0));
    ag_set_trace(f);
    cr_assert(ag_backward(s));
    ag_set_trace(NULL);
    char *text = captured(f);
    cr_assert(strstr(text, "input 0, v [100]: receives min 3, max 3, norm 30\n"), "%s", text);
    free(text);
    test_finish();
}

/* The trace sets gradients aside and adds them back: the floats are the same as without it,
 * also where one tensor is two inputs of a node and where a gradient is broadcast back. */
static void grads_of(bool traced, float out[4])
{
    ag_tensor *a = ag_tensor_from((const float[]){0.1f, 0.7f, -1.3f}, AG_SHAPE(3, 1), true);
    ag_tensor *b = ag_tensor_from((const float[]){1e7f}, AG_SHAPE(1), true);
    FILE *f = traced ? fopen("/dev/null", "w") : NULL;
    ag_set_trace(f);
    ag_tensor *y = ag_mul(ag_add(ag_mul(a, a), b), ag_div(a, 3.0));
    y = ag_sum(ag_add(y, ag_exp(ag_mul(b, 1e-7))));
    cr_assert(ag_backward(y), "%s", ag_last_error());
    ag_set_trace(NULL);
    if (f) fclose(f);
    memcpy(out, a->grad->data, 3 * sizeof(float));
    out[3] = b->grad->data[0];
}

Test(trace, gradients_unchanged)
{
    float plain[4], traced[4];
    grads_of(false, plain);
    ag_shutdown();
    grads_of(true, traced);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(memcmp(&plain[i], &traced[i], sizeof(float)), 0, "grad %d: %.9g vs %.9g", i,
                     (double)plain[i], (double)traced[i]);
    test_finish();
}

static float set_trace_inside(float x)
{
    ag_set_trace(stderr);
    return x;
}

static float set_anomaly_inside(float x)
{
    ag_set_detect_anomaly(true);
    return x;
}

Test(trace, not_switched_inside_backward)
{
    record_errors();
    ag_tensor *x = ag_scalar(1.0, true);
    ag_tensor *y = ag_map(x, expf, set_trace_inside, "Inside");
    /* the refused call changes nothing: the pass goes on and gives x its gradient, 1 * df(1) */
    cr_assert(ag_backward(y), "%s", ag_last_error());
    CHECK("x.grad", x->grad, 0, 1.0f);
    EXPECT_ERROR("set_trace inside backward", "set_trace: called from inside ag_backward");
    cr_assert_null(ag_set_trace(NULL), "the trace was turned on from inside backward");
    /* anomaly mode likewise */
    ag_tensor *z = ag_map(x, expf, set_anomaly_inside, "Inside");
    cr_assert(ag_backward(z), "%s", ag_last_error());
    EXPECT_ERROR("set_detect_anomaly inside backward",
                 "set_detect_anomaly: called from inside ag_backward");
    cr_assert(!ag_is_anomaly_enabled(), "anomaly mode was turned on from inside backward");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Anomaly mode                                                                          */

Test(anomaly, nan_planted_in_forward)
{
    record_errors();
    cr_assert(!ag_is_anomaly_enabled());
    cr_assert(!ag_set_detect_anomaly(true));
    ag_tensor *x = ag_set_name(VEC(true, 1, -2, 3), "x");
    ag_tensor *h = ag_mul(x, 2.0);
    int line = __LINE__ + 1;
    ag_tensor *bad = ag_sqrt(h); /* sqrt(-4) */
    cr_assert_null(bad, "anomaly mode let a nan through");
    char where[256];
    snprintf(where, sizeof where,
             "anomaly mode: SqrtBackward0, at %s:%d, produced nan at element [1]", __FILE__, line);
    EXPECT_ERROR("sqrt", where, "its input 0 ([3] (output of MulBackward0)) holds [2, -4, 6]");
    /* a nan in data that comes in from outside */
    ag_tensor *d = ag_set_name(VEC(false, 1, NAN), "data");
    line = __LINE__ + 1;
    cr_assert_null(ag_add(x, ag_sum(d)));
    snprintf(where, sizeof where, "at %s:%d", __FILE__, line);
    EXPECT_ERROR("sum", "input 0 (data [2]) of SumBackward0", where, "holds nan at element [1]",
                 "from a leaf");
    /* off again: the same op passes, as in PyTorch */
    cr_assert(ag_set_detect_anomaly(false));
    cr_assert_not_null(ag_sqrt(h));
    test_finish();
}

Test(anomaly, inf_planted_in_backward)
{
    record_errors();
    ag_set_detect_anomaly(true);
    ag_tensor *w = ag_set_name(ag_scalar(2.0, true), "w");
    ag_tensor *z = ag_set_name(ag_mul(w, 0.0), "z"); /* 0 */
    int line = __LINE__ + 1;
    ag_tensor *r = ag_sqrt(z); /* forward: sqrt(0) = 0, fine; backward: 1 / (2 * 0) = inf */
    ag_tensor *loss = ag_sum(r);
    cr_assert_not_null(loss, "%s", ag_last_error());
    cr_assert(!ag_backward(loss));
    char where[256];
    snprintf(where, sizeof where, "(recorded at %s:%d)", __FILE__, line);
    EXPECT_ERROR("backward", "Function 'SqrtBackward0' returned inf values in its 0th output",
                 "the gradient of input 0, z []", where);
    cr_assert_null(w->grad, "a stopped pass gave w a gradient");
    /* without anomaly mode the inf flows, as in PyTorch */
    ag_set_detect_anomaly(false);
    cr_assert(ag_backward(ag_sum(ag_sqrt(z))));
    cr_assert(isnan(w->grad->data[0]), "inf * 0: %g", (double)w->grad->data[0]);
    test_finish();
}

Test(anomaly, sites_through_modules_and_losses)
{
    record_errors();
    ag_set_detect_anomaly(true);
    ag_module *lin = ag_linear_new(1, 1, true);
    ag_tensor *X = ag_tensor_from((const float[]){INFINITY}, AG_SHAPE(1, 1));
    int line = __LINE__ + 1;
    cr_assert_null(ag_forward(lin, X));
    char where[256];
    snprintf(where, sizeof where, "at %s:%d", __FILE__, line);
    EXPECT_ERROR("forward", where, "holds inf");
    ag_tensor *p = ag_tensor_from((const float[]){0.0f}, AG_SHAPE(1), true);
    line = __LINE__ + 1;
    cr_assert_null(ag_binary_cross_entropy(p, VEC(false, 1), .weight = VEC(false, INFINITY)));
    snprintf(where, sizeof where, "BinaryCrossEntropyBackward0, at %s:%d", __FILE__, line);
    EXPECT_ERROR("bce", where);
    /* a call through a function pointer has no site */
    ag_tensor *(*f)(const ag_tensor *) = ag_log;
    cr_assert_null(f(ag_neg(p)));
    EXPECT_ERROR("log", "an unknown line");
    test_finish();
}

Test(anomaly, bad_seed)
{
    record_errors();
    ag_set_detect_anomaly(true);
    ag_tensor *x = VEC(true, 1, 2);
    ag_tensor *y = ag_mul(x, 2.0);
    cr_assert(!ag_backward_with(y, VEC(false, 1, NAN), false));
    EXPECT_ERROR("backward", "the gradient given to backward holds nan at element [1]");
    cr_assert_null(x->grad);
    test_finish();
}
