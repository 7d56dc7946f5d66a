/* The graph, seen: ag_graph_dot's text for the first lab's loss, before and after backward
 * (exact, hand-checked: values, grads, colours, edges); the text parsed by Graphviz's
 * libcgraph and rendered to PNG and SVG (when agrad has Graphviz; without it, the .dot
 * written beside and the error saying rendering is off); cat, stack, where, a shared
 * subexpression, module parameters, no_grad results, names that need escaping; a
 * 10,000-op chain; the statistics by hand; every error, and out of memory at every
 * allocation. */
#include <agrad_nn.h>

#include "agrad_test.h"

#ifndef AGT_HAVE_GRAPHVIZ
#error "meson passes AGT_HAVE_GRAPHVIZ (0 or 1)"
#endif
#if AGT_HAVE_GRAPHVIZ
#include <graphviz/cgraph.h>
#endif

static void setup(void)
{
    record_errors();
    agt_tmpdir_make("graph");
}

static void teardown(void) { agt_tmpdir_remove(); }

TestSuite(graph, .init = setup, .fini = teardown);

/* The DOT text of t's graph, in a buffer the caller frees; NULL after an error. */
static char *dot_of(const ag_tensor *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    bool ok = ag_graph_dot(t, f);
    fclose(f);
    if (!ok) {
        cr_assert_eq(len, 0, "a failed ag_graph_dot wrote %zu bytes", len);
        free(text);
        return NULL;
    }
    return text;
}

static size_t count_of(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* The first lab's loss over three points: mean((w * x + b - y)^2), w and b named. */
static ag_tensor *lab_loss(ag_tensor **w, ag_tensor **b)
{
    ag_tensor *x = VEC(false, 1, 2, 3), *y = VEC(false, 2, 4, 5);
    *w = ag_set_name(ag_scalar(0.5, true), "w");
    *b = ag_set_name(ag_scalar(-1.0, true), "b");
    return ag_set_name(ag_mean(ag_pow(ag_sub(ag_add(ag_mul(*w, x), *b), y), 2)), "loss");
}

static const char lab_before[] =
    "digraph agrad {\n"
    "  graph [rankdir=LR, fontname=\"Helvetica\", nodesep=0.3, ranksep=0.4];\n"
    "  node [fontname=\"Helvetica\", fontsize=11, penwidth=1.2];\n"
    "  edge [color=\"#444444\", arrowsize=0.7, fontname=\"Helvetica\", fontsize=9];\n"
    "  graph [labelloc=b, fontsize=10, label=<<table border=\"0\" cellspacing=\"4\"><tr><td "
    "bgcolor=\"#cfe2f3\" border=\"1\" color=\"#3d85c6\" style=\"rounded\">leaf, requires "
    "grad</td><td bgcolor=\"#ffffff\" border=\"1\" color=\"#999999\" style=\"rounded\">data (no "
    "grad)</td><td bgcolor=\"#eeeeee\" border=\"1\" color=\"#666666\" "
    "style=\"rounded\">result</td><td bgcolor=\"#fce5cd\" border=\"1\" color=\"#e69138\" "
    "style=\"rounded\">output</td><td bgcolor=\"#fff2cc\" border=\"1\" color=\"#bf9000\">op (its "
    "grad_fn)</td><td>dashed arrow: no gradient</td></tr></table>>];\n"
    "  t0 [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#999999\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">data (no grad)</font><br/>[1, 2, 3]>];\n"
    "  t1 [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#999999\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">data (no grad)</font><br/>[2, 4, 5]>];\n"
    "  t2 [shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2f3\", color=\"#3d85c6\", "
    "label=<<b>w</b><br/>scalar <font point-size=\"9\" color=\"#555555\">leaf, requires "
    "grad</font><br/>0.5>];\n"
    "  t3 [shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2f3\", color=\"#3d85c6\", "
    "label=<<b>b</b><br/>scalar <font point-size=\"9\" color=\"#555555\">leaf, requires "
    "grad</font><br/>-1>];\n"
    "  t4 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[0.5, 1, 1.5]>];\n"
    "  op4 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<MulBackward0>];\n"
    "  t2 -> op4;\n"
    "  t0 -> op4 [style=dashed, color=\"#999999\"];\n"
    "  op4 -> t4;\n"
    "  t5 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[-0.5, 0, 0.5]>];\n"
    "  op5 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<AddBackward0>];\n"
    "  t4 -> op5;\n"
    "  t3 -> op5;\n"
    "  op5 -> t5;\n"
    "  t6 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[-2.5, -4, -4.5]>];\n"
    "  op6 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<SubBackward0>];\n"
    "  t5 -> op6 [label=\"self\"];\n"
    "  t1 -> op6 [label=\"other\", style=dashed, color=\"#999999\"];\n"
    "  op6 -> t6;\n"
    "  t7 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[6.25, 16, 20.25]>];\n"
    "  op7 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<PowBackward0<br/>x ^ 2>];\n"
    "  t6 -> op7;\n"
    "  op7 -> t7;\n"
    "  t8 [shape=box, style=\"rounded,filled\", fillcolor=\"#fce5cd\", color=\"#e69138\", "
    "penwidth=2.5, label=<<b>loss</b><br/>scalar <font point-size=\"9\" color=\"#555555\">output, "
    "result</font><br/>14.17>];\n"
    "  op8 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<MeanBackward0>];\n"
    "  t7 -> op8;\n"
    "  op8 -> t8;\n"
    "}\n";
static const char lab_after[] =
    "digraph agrad {\n"
    "  graph [rankdir=LR, fontname=\"Helvetica\", nodesep=0.3, ranksep=0.4];\n"
    "  node [fontname=\"Helvetica\", fontsize=11, penwidth=1.2];\n"
    "  edge [color=\"#444444\", arrowsize=0.7, fontname=\"Helvetica\", fontsize=9];\n"
    "  graph [labelloc=b, fontsize=10, label=<<table border=\"0\" cellspacing=\"4\"><tr><td "
    "bgcolor=\"#cfe2f3\" border=\"1\" color=\"#3d85c6\" style=\"rounded\">leaf, requires "
    "grad</td><td bgcolor=\"#ffffff\" border=\"1\" color=\"#999999\" style=\"rounded\">data (no "
    "grad)</td><td bgcolor=\"#eeeeee\" border=\"1\" color=\"#666666\" "
    "style=\"rounded\">result</td><td bgcolor=\"#fce5cd\" border=\"1\" color=\"#e69138\" "
    "style=\"rounded\">output</td><td bgcolor=\"#fff2cc\" border=\"1\" color=\"#bf9000\">op (its "
    "grad_fn)</td><td>dashed arrow: no gradient</td></tr></table>>];\n"
    "  t0 [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#999999\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">data (no grad)</font><br/>[1, 2, 3]>];\n"
    "  t1 [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#999999\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">data (no grad)</font><br/>[2, 4, 5]>];\n"
    "  t2 [shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2f3\", color=\"#3d85c6\", "
    "label=<<b>w</b><br/>scalar <font point-size=\"9\" color=\"#555555\">leaf, requires "
    "grad</font><br/>0.5<br/><font color=\"#a61c00\">grad -16</font>>];\n"
    "  t3 [shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2f3\", color=\"#3d85c6\", "
    "label=<<b>b</b><br/>scalar <font point-size=\"9\" color=\"#555555\">leaf, requires "
    "grad</font><br/>-1<br/><font color=\"#a61c00\">grad -7.333</font>>];\n"
    "  t4 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[0.5, 1, 1.5]>];\n"
    "  op4 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<MulBackward0<br/><font point-size=\"9\" color=\"#555555\">saved values "
    "freed</font>>];\n"
    "  t2 -> op4;\n"
    "  t0 -> op4 [style=dashed, color=\"#999999\"];\n"
    "  op4 -> t4;\n"
    "  t5 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[-0.5, 0, 0.5]>];\n"
    "  op5 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<AddBackward0>];\n"
    "  t4 -> op5;\n"
    "  t3 -> op5;\n"
    "  op5 -> t5;\n"
    "  t6 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[-2.5, -4, -4.5]>];\n"
    "  op6 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<SubBackward0>];\n"
    "  t5 -> op6 [label=\"self\"];\n"
    "  t1 -> op6 [label=\"other\", style=dashed, color=\"#999999\"];\n"
    "  op6 -> t6;\n"
    "  t7 [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", color=\"#666666\", "
    "label=<[3] <font point-size=\"9\" color=\"#555555\">result</font><br/>[6.25, 16, 20.25]>];\n"
    "  op7 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<PowBackward0<br/>x ^ 2<br/><font point-size=\"9\" color=\"#555555\">saved values "
    "freed</font>>];\n"
    "  t6 -> op7;\n"
    "  op7 -> t7;\n"
    "  t8 [shape=box, style=\"rounded,filled\", fillcolor=\"#fce5cd\", color=\"#e69138\", "
    "penwidth=2.5, label=<<b>loss</b><br/>scalar <font point-size=\"9\" color=\"#555555\">output, "
    "result</font><br/>14.17>];\n"
    "  op8 [shape=ellipse, style=filled, fillcolor=\"#fff2cc\", color=\"#bf9000\", "
    "label=<MeanBackward0>];\n"
    "  t7 -> op8;\n"
    "  op8 -> t8;\n"
    "}\n";
Test(graph, lab_dot_exact)
{
    ag_tensor *w, *b, *loss = lab_loss(&w, &b);
    char *dot = dot_of(loss);
    cr_assert_str_eq(dot, lab_before);
    free(dot);
    cr_assert(ag_backward(loss));
    dot = dot_of(loss);
    cr_assert_str_eq(dot, lab_after); /* w.grad = -16, b.grad = -22/3; saved values freed */
    free(dot);
    test_finish();
}

Test(graph, same_text_for_same_graph)
{
    ag_tensor *w, *b;
    char *one = dot_of(lab_loss(&w, &b));
    ag_scalar(1.0, true); /* other tensors between: other addresses, other serials */
    char *two = dot_of(lab_loss(&w, &b));
    cr_assert_str_eq(one, two);
    free(one);
    free(two);
    test_finish();
}

#if AGT_HAVE_GRAPHVIZ
/* Parses text with libcgraph: the number of nodes and edges. */
static void parse_counts(const char *text, int *nodes, int *edges)
{
    Agraph_t *g = agmemread(text);
    cr_assert_not_null(g, "libcgraph could not parse the DOT text:\n%s", text);
    *nodes = agnnodes(g);
    *edges = agnedges(g);
    agclose(g);
}
#endif

static bool file_starts(const char *path, const void *want, size_t n)
{
    unsigned char buf[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n && !memcmp(buf, want, n);
}

static bool file_has(const char *path, const char *what)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char buf[1 << 14];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, what) != NULL;
}

Test(graph, lab_parses_and_renders)
{
    ag_tensor *w, *b, *loss = lab_loss(&w, &b);
    cr_assert(ag_backward(loss));
    char *dot = dot_of(loss);
    /* by hand: 9 tensors (x, y, w, b and 5 results) and 5 ops; 2 edges into each binary
     * op, 1 into pow and mean, 1 out of each op: 2 * 3 + 2 + 5 = 13 */
    cr_assert_eq(count_of(dot, "shape=box"), 9);
    cr_assert_eq(count_of(dot, "shape=ellipse"), 5);
    cr_assert_eq(count_of(dot, " -> "), 13);
    cr_assert(ag_graph_save(loss, agt_tmp("lab.dot")));
    cr_assert(file_has(agt_tmp("lab.dot"), "digraph agrad {"));
#if AGT_HAVE_GRAPHVIZ
    cr_assert(ag_graph_rendering());
    int nodes, edges;
    parse_counts(dot, &nodes, &edges);
    cr_assert_eq(nodes, 14);
    cr_assert_eq(edges, 13);
    cr_assert(ag_graph_save(loss, agt_tmp("lab.png")), "%s", ag_last_error());
    cr_assert(file_starts(agt_tmp("lab.png"), "\x89PNG\r\n\x1a\n", 8));
    cr_assert(ag_graph_save(loss, agt_tmp("lab.svg")), "%s", ag_last_error());
    cr_assert(file_has(agt_tmp("lab.svg"), "<svg"));
    cr_assert(file_has(agt_tmp("lab.svg"), "MulBackward0"));
#else
    cr_assert(!ag_graph_rendering());
    cr_assert(!ag_graph_save(loss, agt_tmp("lab.png")));
    EXPECT_ERROR("graph_save", "graph_save: rendering is off (agrad was built without Graphviz)",
                 "lab.dot' instead of", "lab.png'");
    cr_assert(access(agt_tmp("lab.png"), F_OK) != 0);
    cr_assert(file_has(agt_tmp("lab.dot"), "digraph agrad {"));
#endif
    free(dot);
    test_finish();
}

Test(graph, cat_stack_where)
{
    ag_tensor *a = ag_set_name(VEC(true, 1, 2), "a"), *c = VEC(false, 3, 4);
    ag_tensor *cat = ag_cat((ag_tensor *[]){a, c, a}, 3, 0);
    char *dot = dot_of(cat);
    cr_assert(strstr(dot, "label=<CatBackward0<br/>dim 0>"), "%s", dot);
    cr_assert(strstr(dot, "t0 -> op2 [label=\"0\"];"), "%s", dot);
    cr_assert(strstr(dot, "t1 -> op2 [label=\"1\", style=dashed, color=\"#999999\"];"), "%s", dot);
    cr_assert(strstr(dot, "t0 -> op2 [label=\"2\"];"), "%s", dot);
    cr_assert(strstr(dot, "[1, 2, 3, 4, 1, 2]"), "%s", dot);
    free(dot);

    ag_tensor *st = ag_stack((ag_tensor *[]){a, c}, 2, 1);
    dot = dot_of(st);
    cr_assert(strstr(dot, "label=<StackBackward0<br/>dim 1>"), "%s", dot);
    cr_assert(strstr(dot, "[[1, 3], [2, 4]]"), "%s", dot); /* values nested by shape */
    free(dot);

    ag_tensor *cond = ag_gt(c, 3.5);
    ag_tensor *wh = ag_where(cond, a, 0.0);
    dot = dot_of(wh);
    cr_assert(strstr(dot, "WhereBackward0"), "%s", dot);
    /* the condition is read by backward, never differentiated: shown, dashed */
    cr_assert(strstr(dot, "[label=\"condition\", style=dashed"), "%s", dot);
    /* a, cond, the 0 made a tensor (as PyTorch wraps it), the result */
    cr_assert_eq(count_of(dot, "shape=box"), 4);
    cr_assert(strstr(dot, "t2 -> op3 [label=\"other\", style=dashed"), "%s", dot);
    cr_assert(strstr(dot, "t1 -> op3 [label=\"condition\", style=dashed"), "%s", dot);
    ag_graph_stats st_w = ag_graph_stats_of(wh);
    cr_assert_eq(st_w.tensors, 4);
    free(dot);
    test_finish();
}

Test(graph, shared_subexpression_once)
{
    ag_tensor *a = ag_set_name(ag_scalar(2.0, true), "a");
    ag_tensor *u = ag_set_name(ag_add(a, 1.0), "u");
    ag_tensor *z = ag_add(ag_mul(u, u), ag_exp(u)); /* a diamond: u feeds three edges */
    char *dot = dot_of(z);
    cr_assert_eq(count_of(dot, "<b>u</b>"), 1, "%s", dot);
    cr_assert_eq(count_of(dot, "<b>a</b>"), 1);
    cr_assert_eq(count_of(dot, "shape=box"), 5); /* a, u, u*u, exp(u), z */
    cr_assert_eq(count_of(dot, "t1 -> op"), 3);  /* u into mul twice, into exp once */
    cr_assert(strstr(dot, "label=<AddBackward0<br/>x + 1>"), "%s", dot);
    ag_graph_stats st = ag_graph_stats_of(z);
    cr_assert_eq(st.tensors, 5);
    cr_assert_eq(st.ops, 4);
    cr_assert_eq(st.leaves, 1);
#if AGT_HAVE_GRAPHVIZ
    int nodes, edges;
    parse_counts(dot, &nodes, &edges);
    cr_assert_eq(nodes, 9);
    cr_assert_eq(edges, 1 + 1 + 2 + 1 + 1 + 1 + 2 + 1); /* add, mul, exp, add: in and out */
#endif
    free(dot);
    test_finish();
}

Test(graph, module_parameters)
{
    ag_manual_seed(0);
    ag_module *model = ag_Sequential(ag_Linear(2, 1));
    ag_tensor *X = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(2, 2), false);
    ag_tensor *out = ag_forward(model, X);
    char *dot = dot_of(out);
    cr_assert(strstr(dot,
                     "fillcolor=\"#d9ead3\", color=\"#6aa84f\", label=<<b>0.weight</b><br/>[1, "
                     "2] <font point-size=\"9\" color=\"#555555\">parameter</font>"),
              "%s", dot);
    cr_assert(strstr(dot, "<b>0.bias</b>"), "%s", dot);
    ag_graph_stats st = ag_graph_stats_of(out);
    cr_assert_eq(st.parameters, 2);
    cr_assert_eq(st.leaves, 3); /* X and the two parameters */
    free(dot);
    test_finish();
}

Test(graph, no_grad_result_is_a_leaf)
{
    ag_tensor *a = VEC(true, 1, 2);
    ag_tensor *y;
    ag_no_grad_begin();
    y = ag_mul(a, 2.0);
    ag_no_grad_end();
    char *dot = dot_of(y);
    cr_assert_eq(count_of(dot, "shape=box"), 1);
    cr_assert_eq(count_of(dot, "shape=ellipse"), 0);
    cr_assert(strstr(dot, "penwidth=2.5, label=<[2] <font point-size=\"9\" "
                          "color=\"#555555\">output, data (no grad)</font><br/>[2, 4]>"),
              "%s", dot);
    free(dot);
    test_finish();
}

Test(graph, names_escaped)
{
    ag_tensor *a = ag_set_name(ag_scalar(1.0, true), "a \"quoted\" <b> & c\\d\nnext\x01");
    char *dot = dot_of(ag_neg(a));
    cr_assert(strstr(dot, "<b>a &quot;quoted&quot; &lt;b&gt; &amp; c\\d\\nnext?</b>"), "%s", dot);
    free(dot);
    ag_set_name(a, "w\xc3\xa9ight\xff"); /* UTF-8 kept, a stray byte replaced */
    dot = dot_of(a);
    cr_assert(strstr(dot, "<b>w\xc3\xa9ight?</b>"), "%s", dot);
    free(dot);
#if AGT_HAVE_GRAPHVIZ
    int nodes, edges;
    ag_set_name(a, "a \"quoted\" <b> & c\\d\nnext");
    dot = dot_of(ag_neg(a));
    parse_counts(dot, &nodes, &edges);
    cr_assert_eq(nodes, 3);
    free(dot);
#endif
    test_finish();
}

/* A chain of n ops: the walk and the text are O(n), with no recursion. */
Test(graph, long_chain)
{
    enum { N = 10000 };
    ag_tensor *x = ag_set_name(ag_scalar(1.0, true), "x"), *y = x;
    for (int i = 0; i < N; i++) y = ag_mul(y, 1.0);
    char *dot = dot_of(y);
    cr_assert_not_null(dot, "%s", ag_last_error());
    cr_assert_eq(count_of(dot, "shape=ellipse"), N);
    cr_assert(strstr(dot, "t0 -> op1;"));
    cr_assert(strstr(dot, "op10000 -> t10000;"));
    free(dot);
    ag_graph_stats st = ag_graph_stats_of(y);
    cr_assert_eq(st.tensors, N + 1);
    cr_assert_eq(st.ops, N);
    test_finish();
}

Test(graph, stats_by_hand)
{
    ag_tensor *w, *b, *loss = lab_loss(&w, &b);
    ag_graph_stats st = ag_graph_stats_of(loss);
    cr_assert(st.ok);
    cr_assert_eq(st.tensors, 9);
    cr_assert_eq(st.ops, 5);
    cr_assert_eq(st.leaves, 4);
    cr_assert_eq(st.parameters, 0);
    /* every tensor here is one header (the same for all) and 1 or 3 floats, in one 32-byte
     * rounded block: 9 blocks of the size of w's */
    size_t block = st.largest[0].bytes;
    cr_assert_eq(st.bytes, 9 * block);
    cr_assert_eq(st.saved_bytes, 24); /* mul saves x (for w's grad), pow its input: 3 floats each */
    cr_assert_eq(st.grad_bytes, 0);
    cr_assert_eq(st.nlargest, 5);
    /* all of one size: the oldest first (x, y, w, b, w * x) */
    cr_assert_str_eq(st.largest[0].label, "data (no grad)");
    cr_assert_str_eq(st.largest[2].label, "w");
    cr_assert_str_eq(st.largest[3].label, "b");
    cr_assert_str_eq(st.largest[4].label, "MulBackward0");
    cr_assert(ag_backward(loss));
    st = ag_graph_stats_of(loss);
    cr_assert_eq(st.saved_bytes, 0);        /* backward freed what it saved */
    cr_assert_eq(st.grad_bytes, 2 * block); /* w.grad and b.grad, scalars as w and b */

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert(ag_graph_print_stats(loss, f));
    fclose(f);
    cr_assert(strstr(text, "graph: 9 tensors (5 made by ops, 4 leaves, of which 0 parameters)\n"),
              "%s", text);
    cr_assert(strstr(text, "0 B of it saved for backward"), "%s", text);
    cr_assert(strstr(text, "largest tensors:\n  1. data (no grad)"), "%s", text);
    free(text);
    test_finish();
}

Test(graph, largest_in_order)
{
    ag_tensor *small = ag_set_name(ag_zeros(AG_SHAPE(10), true), "small");
    ag_tensor *big = ag_set_name(ag_zeros(AG_SHAPE(1000), true), "big");
    ag_tensor *mid = ag_set_name(ag_zeros(AG_SHAPE(100), true), "mid");
    ag_tensor *y = ag_add(ag_sum(ag_mul(big, 2.0)), ag_add(ag_sum(mid), ag_sum(small)));
    ag_graph_stats st = ag_graph_stats_of(y);
    cr_assert_eq(st.tensors, 9); /* 3 leaves, mul, 3 sums, 2 adds */
    cr_assert_eq(st.nlargest, 5);
    cr_assert_str_eq(st.largest[0].label, "big"); /* 1000 floats, then its double */
    cr_assert_str_eq(st.largest[1].label, "MulBackward0");
    cr_assert_eq(st.largest[1].numel, 1000);
    cr_assert_str_eq(st.largest[2].label, "mid");
    cr_assert_str_eq(st.largest[3].label, "small");
    cr_assert_eq(st.largest[3].shape[0], 10);
    cr_assert_eq(st.largest[3].ndim, 1);
    cr_assert(st.largest[0].bytes >= 4000 && st.largest[0].bytes > st.largest[1].bytes - 1);
    cr_assert(st.largest[2].bytes > st.largest[3].bytes);
    cr_assert(st.largest[3].bytes >= st.largest[4].bytes);
    test_finish();
}

Test(graph, errors)
{
    ag_tensor *a = ag_scalar(1.0, true);
    cr_assert(!ag_graph_dot(NULL, stdout));
    EXPECT_ERROR("graph_dot", "graph_dot: argument self is NULL");
    cr_assert(!ag_graph_dot(a, NULL));
    EXPECT_ERROR("graph_dot", "graph_dot: the stream is NULL");
    cr_assert(!ag_graph_save(a, NULL));
    EXPECT_ERROR("graph_save", "graph_save: the path is NULL");
    cr_assert(!ag_graph_save(a, agt_tmp("graph.jpg")));
    EXPECT_ERROR("graph_save", "graph_save: cannot tell the format of '", "graph.jpg'",
                 "must end in .dot, .png or .svg");
    cr_assert(!ag_graph_save(a, agt_tmp("no/such/dir/graph.dot")));
    EXPECT_ERROR("graph_save", "graph_save: cannot write '", "no/such/dir/graph.dot'",
                 "No such file or directory");
    ag_graph_stats st = ag_graph_stats_of(NULL);
    cr_assert(!st.ok && st.tensors == 0);
    EXPECT_ERROR("graph_stats", "graph_stats: argument self is NULL");
    cr_assert(!ag_graph_print_stats(a, NULL));
    EXPECT_ERROR("graph_print_stats", "graph_print_stats: the stream is NULL");

    ag_mark m = ag_mark_now();
    ag_tensor *gone = ag_mul(a, 2.0);
    ag_release(m);
    cr_assert(!ag_graph_dot(gone, stdout));
    EXPECT_ERROR("graph_dot", "graph_dot: argument self is a released tensor");
    cr_assert(!ag_graph_save(gone, agt_tmp("g.dot")));
    EXPECT_ERROR("graph_save", "graph_save: argument self is a released tensor");
    cr_assert(!ag_graph_stats_of(gone).ok);
    EXPECT_ERROR("graph_stats", "graph_stats: argument self is a released tensor");
    cr_assert(!ag_graph_print_stats(gone, stdout));
    EXPECT_ERROR("graph_print_stats", "graph_print_stats: argument self is a released tensor");
    test_finish();
}

Test(graph, out_of_memory_everywhere)
{
    ag_tensor *w, *b, *loss = lab_loss(&w, &b);
    ag_set_allocator(agt_faulty_realloc, NULL);
    bool done = false;
    for (long k = 1; !done && k < 200; k++) {
        agt_arm(k);
        char *dot = dot_of(loss);
        if (!fault.failed) {
            cr_assert_not_null(dot, "%s", ag_last_error());
            done = true;
        } else {
            cr_assert_null(dot);
            EXPECT_ERROR("graph_dot", "graph_dot: out of memory", "a tensor of shape [] (loss)");
        }
        free(dot);
        agt_arm(k);
        ag_graph_stats st = ag_graph_stats_of(loss);
        if (fault.failed) {
            cr_assert(!st.ok);
            EXPECT_ERROR("graph_stats", "graph_stats: out of memory walking the graph");
        } else {
            cr_assert(st.ok && st.tensors == 9);
        }
    }
    cr_assert(done);
    agt_arm(0);
    ag_set_allocator(NULL, NULL);
    test_finish();
}
