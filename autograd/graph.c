/* The graph, seen: the recorded graph of a tensor as Graphviz DOT text (and, when agrad is
 * built with Graphviz's libgvc, as a PNG or SVG picture), and what the graph holds.
 *
 * Both walk the same set: every tensor reachable from the given one through the inputs its
 * op recorded (src[0] and src[1], cat's and stack's list in ctx, where's condition). The
 * walk is iterative (an explicit stack) with a hash set of the tensors seen, so it costs
 * O(graph), not O(tape), and no recursion grows with the graph. The tensors are then put in
 * creation order (serial, then the order found), which numbers the DOT nodes: the text is
 * the same for the same graph, whatever the addresses. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef AG_HAVE_GRAPHVIZ
#include <graphviz/gvc.h>
#endif

/* ------------------------------------------------------------------------------------ */
/* The reachable set                                                                     */

typedef struct gentry {
    const ag_tensor *t;
    size_t order; /* when the walk found it; its index once sorted */
    bool saved;   /* a backward of the graph reads its values */
} gentry;

typedef struct graph {
    gentry *v; /* the tensors, in the order found, then by serial */
    size_t n, cap;
    size_t *slot; /* open addressing: index + 1 into v, 0 for an empty slot */
    size_t nslots;
    const ag_tensor **stack;
    size_t nstack, stack_cap;
} graph;

static void graph_free(graph *g)
{
    ag__free(g->v);
    ag__free(g->slot);
    ag__free(g->stack);
}

static size_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

/* The slot of t: where it is, or the empty slot where it would go. */
static size_t *slot_of(const graph *g, const ag_tensor *t)
{
    size_t mask = g->nslots - 1;
    for (size_t i = hash_ptr(t) & mask;; i = (i + 1) & mask)
        if (!g->slot[i] || g->v[g->slot[i] - 1].t == t) return &g->slot[i];
}

static bool rehash(graph *g, size_t nslots)
{
    size_t *s = ag__malloc(nslots * sizeof *s);
    if (!s) return false;
    memset(s, 0, nslots * sizeof *s);
    ag__free(g->slot);
    g->slot = s;
    g->nslots = nslots;
    for (size_t i = 0; i < g->n; i++) *slot_of(g, g->v[i].t) = i + 1;
    return true;
}

/* The index of t in g, or (size_t)-1. */
static size_t index_of(const graph *g, const ag_tensor *t)
{
    size_t s = *slot_of(g, t);
    return s ? s - 1 : (size_t)-1;
}

/* Adds t to g unless it is there; marks it saved if asked. False when out of memory. */
static bool visit(graph *g, const ag_tensor *t, bool saved)
{
    if (g->nslots && *slot_of(g, t)) {
        if (saved) g->v[*slot_of(g, t) - 1].saved = true;
        return true;
    }
    gentry *v = ag__grow(g->v, &g->cap, g->n + 1, sizeof *v);
    if (!v) return false;
    g->v = v;
    const ag_tensor **st = ag__grow(g->stack, &g->stack_cap, g->nstack + 1, sizeof *st);
    if (!st) return false;
    g->stack = st;
    if ((g->n + 1) * 2 > g->nslots && !rehash(g, g->nslots ? g->nslots * 2 : 64)) return false;
    g->v[g->n] = (gentry){t, g->n, saved};
    *slot_of(g, t) = ++g->n;
    g->stack[g->nstack++] = t;
    return true;
}

/* One recorded input of an op: the tensor, whether a gradient flows to it, what the op
 * calls it (NULL: nothing worth saying), and whether its backward reads its values. */
typedef struct ginput {
    const ag_tensor *t;
    bool grad, saved;
    const char *role;
    int64_t index; /* cat's and stack's position, else -1 */
} ginput;

/* Ops whose inputs' order matters to the reader: their edges say which input is which. */
static bool ordered(int op) { return op != AG__OP_ADD && op != AG__OP_MUL; }

/* The inputs ag__inputs gives, and where's condition after them. */
static int64_t input_count(const ag_tensor *t)
{
    ag_tensor *const *xs;
    return ag__inputs(t, &xs) + (node(t)->op == AG__OP_WHERE && node(t)->ctx);
}

static ginput input_at(const ag_tensor *t, int64_t k)
{
    const ag__node *n = node(t);
    ag_tensor *const *xs;
    int count = ag__inputs(t, &xs);
    if (k < count) {
        bool joined = n->op == AG__OP_CAT || n->op == AG__OP_STACK;
        /* what the gradients of the inputs that take one read (ag__record set the flags) */
        bool saved = !joined && (n->flags & (AG__F_SAVED_A << k));
        const char *role = !joined && count == 2 && ordered(n->op) ? (k ? "other" : "self") : NULL;
        return (ginput){xs[k], ag__input_wants(t, (int)k), saved, role, joined ? k : -1};
    }
    const ag__saved *cond = n->ctx; /* where's condition: read, never differentiated */
    return (ginput){cond->t, false, (n->flags & AG__F_SAVED_EXT) != 0, cond->role, -1};
}

/* Whether a backward of t's op still reads what it saved (not yet freed by a backward). */
static bool reads_saved(const ag_tensor *t) { return !(node(t)->flags & AG__F_FREED); }

/* Sorts g->v by serial, ties in the order found (a heap sort: no recursion, no memory). */
static bool before(const gentry *a, const gentry *b)
{
    uint64_t sa = node(a->t)->serial, sb = node(b->t)->serial;
    return sa != sb ? sa < sb : a->order < b->order;
}

static void sift(gentry *v, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && before(&v[c], &v[c + 1])) c++;
        if (!before(&v[i], &v[c])) return;
        gentry x = v[i];
        v[i] = v[c];
        v[c] = x;
        i = c;
    }
}

static void sort_by_serial(graph *g)
{
    for (size_t i = g->n / 2; i-- > 0;) sift(g->v, i, g->n);
    for (size_t n = g->n; n > 1; n--) {
        gentry x = g->v[0];
        g->v[0] = g->v[n - 1];
        g->v[n - 1] = x;
        sift(g->v, 0, n - 1);
    }
    for (size_t i = 0; i < g->n; i++) {
        g->v[i].order = i;
        *slot_of(g, g->v[i].t) = i + 1;
    }
}

/* Walks everything reachable from t into g, in creation order. False after an error
 * naming op. */
static bool walk(graph *g, const ag_tensor *t, const char *op)
{
    *g = (graph){0};
    bool ok = visit(g, t, reads_saved(t) && (node(t)->flags & AG__F_SAVED_OUT) && node(t)->op);
    while (ok && g->nstack) {
        const ag_tensor *x = g->stack[--g->nstack];
        if (node(x)->op && (node(x)->flags & AG__F_SAVED_OUT) && reads_saved(x))
            g->v[index_of(g, x)].saved = true;
        int64_t n = input_count(x);
        for (int64_t k = 0; ok && k < n; k++) {
            ginput in = input_at(x, k);
            /* inputs outlive their users (the tape's order, a freed module's parameters kept
             * as orphans): a dead one would be a broken graph, left out rather than read */
            if (ag__liveness_of(in.t) != AG__LIVE) continue;
            ok = visit(g, in.t, in.saved && reads_saved(x));
        }
    }
    if (!ok) {
        graph_free(g);
        char s[AG__SHAPE_STR];
        ag__error("%s: out of memory walking the graph of a tensor of shape %s", op,
                  ag__tensor_str(s, t));
        return false;
    }
    sort_by_serial(g);
    return true;
}

bool ag__graph_tensors(const ag_tensor *t, const char *op, ag_tensor ***out, size_t *n)
{
    graph g;
    if (!walk(&g, t, op)) return false;
    ag_tensor **ts = ag__malloc((g.n ? g.n : 1) * sizeof *ts);
    for (size_t i = 0; ts && i < g.n; i++) ts[i] = (ag_tensor *)g.v[i].t;
    *out = ts;
    *n = g.n;
    graph_free(&g);
    if (ts) return true;
    char s[AG__SHAPE_STR];
    ag__error("%s: out of memory walking the graph of a tensor of shape %s", op,
              ag__tensor_str(s, t));
    return false;
}

/* ------------------------------------------------------------------------------------ */
/* Text in memory (through the allocation hook)                                          */

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

/* s in an HTML-like label: & < > " escaped, a newline or tab shown as \n or \t, other
 * control bytes and bytes that are no UTF-8 as '?'; cut after AG__NAME_SHOWN bytes. */
static void put_escaped(ag__text *o, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        if (i >= AG__NAME_SHOWN) {
            ag__put(o, "...");
            return;
        }
        unsigned char c = u[i];
        if (c >= 0x80) {
            size_t len = utf8_len(u + i, n - i);
            if (len) {
                ag__put(o, "%.*s", (int)len, s + i);
                i += len;
            } else {
                ag__put(o, "?");
                i++;
            }
            continue;
        }
        i++;
        switch (c) {
        case '&':
            ag__put(o, "&amp;");
            break;
        case '<':
            ag__put(o, "&lt;");
            break;
        case '>':
            ag__put(o, "&gt;");
            break;
        case '"':
            ag__put(o, "&quot;");
            break;
        case '\n':
            ag__put(o, "\\n");
            break;
        case '\t':
            ag__put(o, "\\t");
            break;
        default:
            ag__put(o, "%c", c < 0x20 || c == 0x7f ? '?' : c);
        }
    }
}

enum { SMALL = 6 }; /* tensors of at most this many elements show their values */

/* The values v of a tensor of t's shape: "1.5", "[1, 2, 3]", "[[1, 2], [3, 4]]" when few,
 * else "min -1.2  max 3"; %.4g each. */
static void put_values(ag__text *o, const ag_tensor *t, const float *v)
{
    if (t->numel == 0) {
        ag__put(o, "empty");
        return;
    }
    if (t->numel > SMALL) {
        float lo = v[0], hi = v[0];
        for (int64_t i = 1; i < t->numel; i++) {
            lo = v[i] < lo || isnan(v[i]) ? v[i] : lo;
            hi = v[i] > hi || isnan(v[i]) ? v[i] : hi;
        }
        ag__put(o, "min %.4g  max %.4g", (double)lo, (double)hi);
        return;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        /* brackets open where an index along a dimension starts, close where it ends */
        int64_t span = 1;
        int open = 0, close = 0;
        for (int d = t->ndim - 1; d >= 0; d--) {
            span *= t->shape[d];
            open += i % span == 0;
            close += (i + 1) % span == 0;
        }
        ag__put(o, "%s%.*s%.4g%.*s", i ? ", " : "", open, "[[[[", (double)v[i], close, "]]]]");
    }
}

/* The ->grad of t, if it has one that is live. */
static const ag_tensor *grad_of(const ag_tensor *t)
{
    return t->grad && ag__liveness_of(t->grad) == AG__LIVE ? t->grad : NULL;
}

/* Node kinds, their colours, and the words that say them in black and white. */
typedef enum kind { K_LEAF, K_PARAM, K_DATA, K_RESULT, K_COUNT } kind;
static const struct {
    const char *fill, *line, *words;
} kinds[K_COUNT] = {
    [K_LEAF] = {"#cfe2f3", "#3d85c6", "leaf, requires grad"},
    [K_PARAM] = {"#d9ead3", "#6aa84f", "parameter"},
    [K_DATA] = {"#ffffff", "#999999", "data (no grad)"},
    [K_RESULT] = {"#eeeeee", "#666666", "result"},
};
#define OUT_FILL "#fce5cd"
#define OUT_LINE "#e69138"
#define OP_FILL  "#fff2cc"
#define OP_LINE  "#bf9000"

static kind kind_of(const ag_tensor *t)
{
    if (node(t)->op) return K_RESULT;
    if (ag__parameter_name(t, NULL, 0) > 0) return K_PARAM;
    return t->requires_grad ? K_LEAF : K_DATA;
}

static void put_tensor(ag__text *o, const ag_tensor *t, size_t id, bool output)
{
    kind k = kind_of(t);
    ag__put(o,
            "  t%zu [shape=box, style=\"rounded,filled\", fillcolor=\"%s\", color=\"%s\"%s, "
            "label=<",
            id, output ? OUT_FILL : kinds[k].fill, output ? OUT_LINE : kinds[k].line,
            output ? ", penwidth=2.5" : "");
    char nbuf[AG__NAME_SHOWN + 8];
    const char *name = ag__name_of(t, nbuf, sizeof nbuf);
    if (name) {
        ag__put(o, "<b>");
        put_escaped(o, name);
        ag__put(o, "</b><br/>");
    }
    char s[AG__SHAPE_STR];
    /* a 0-d tensor says so in words: "[]" reads as nothing to a newcomer */
    ag__put(o, "%s <font point-size=\"9\" color=\"#555555\">%s%s</font>",
            t->ndim ? ag__shape_str(s, t->ndim, t->shape) : "scalar", output ? "output, " : "",
            kinds[k].words);
    ag__put(o, "<br/>");
    put_values(o, t, t->data);
    const ag_tensor *g = grad_of(t);
    if (g) {
        ag__put(o, "<br/><font color=\"#a61c00\">grad ");
        put_values(o, g, g->data);
        ag__put(o, "</font>");
    }
    ag__put(o, ">];\n");
}

/* What an op's number or dimension argument was, for its label. */
static void put_op_arg(ag__text *o, const ag_tensor *t)
{
    const ag__node *n = node(t);
    double x = n->arg.number;
    switch (n->op) {
    case AG__OP_ADD_NUMBER:
        ag__put(o, "<br/>x + %.4g", x);
        break;
    case AG__OP_SUB_NUMBER:
        ag__put(o, "<br/>x - %.4g", x);
        break;
    case AG__OP_RSUB:
        ag__put(o, "<br/>%.4g - x", x);
        break;
    case AG__OP_MUL_NUMBER:
        ag__put(o, "<br/>x * %.4g", x);
        break;
    case AG__OP_DIV_NUMBER:
        ag__put(o, "<br/>x / %.4g", x);
        break;
    case AG__OP_POW_SCALAR:
        ag__put(o, "<br/>x ^ %.4g", x);
        break;
    case AG__OP_SUM_DIM:
    case AG__OP_MEAN_DIM:
    case AG__OP_MAX_DIM:
    case AG__OP_MIN_DIM:
        ag__put(o, "<br/>dim %lld", (long long)n->arg.dim);
        break;
    case AG__OP_SELECT:
        ag__put(o, "<br/>dim %lld, index %lld", (long long)n->arg.take.dim,
                (long long)n->arg.take.start);
        break;
    case AG__OP_SLICE:
        ag__put(o, "<br/>dim %lld, from %lld", (long long)n->arg.take.dim,
                (long long)n->arg.take.start);
        break;
    case AG__OP_CAT:
    case AG__OP_STACK:
        ag__put(o, "<br/>dim %lld", (long long)n->arg.join.dim);
        break;
    case AG__OP_TRANSPOSE:
        ag__put(o, "<br/>dims %lld, %lld", (long long)n->arg.swap.dim0,
                (long long)n->arg.swap.dim1);
        break;
    case AG__OP_CLAMP:
        if (!isinf(n->arg.clamp.lo)) ag__put(o, "<br/>min %.4g", (double)n->arg.clamp.lo);
        if (!isinf(n->arg.clamp.hi)) ag__put(o, "<br/>max %.4g", (double)n->arg.clamp.hi);
        break;
    default:
        break;
    }
}

static void put_op(ag__text *o, const graph *g, const ag_tensor *t, size_t id)
{
    const ag__node *n = node(t);
    const char *grad_fn = n->op == AG__OP_MAP ? n->arg.map.name : ag__ops[n->op].grad_fn;
    ag__put(o,
            "  op%zu [shape=ellipse, style=filled, fillcolor=\"" OP_FILL "\", color=\"" OP_LINE
            "\", label=<",
            id);
    put_escaped(o, grad_fn ? grad_fn : "?");
    put_op_arg(o, t);
    bool saves = n->flags & (AG__F_SAVED_A | AG__F_SAVED_B | AG__F_SAVED_OUT | AG__F_SAVED_CTX |
                             AG__F_SAVED_EXT);
    if (saves && !reads_saved(t))
        ag__put(o, "<br/><font point-size=\"9\" color=\"#555555\">saved values freed</font>");
    ag__put(o, ">];\n");
    int64_t count = input_count(t);
    for (int64_t k = 0; k < count; k++) {
        ginput in = input_at(t, k);
        if (ag__liveness_of(in.t) != AG__LIVE) continue;
        ag__put(o, "  t%zu -> op%zu", index_of(g, in.t), id);
        bool label = in.role || (in.index >= 0 && count > 1);
        if (label || !in.grad) {
            ag__put(o, " [");
            if (in.index >= 0 && count > 1)
                ag__put(o, "label=\"%lld\"", (long long)in.index);
            else if (in.role)
                ag__put(o, "label=\"%s\"", in.role);
            if (!in.grad) ag__put(o, "%sstyle=dashed, color=\"#999999\"", label ? ", " : "");
            ag__put(o, "]");
        }
        ag__put(o, ";\n");
    }
    ag__put(o, "  op%zu -> t%zu;\n", id, id);
}

static void put_legend(ag__text *o, const graph *g, const ag_tensor *out)
{
    bool has[K_COUNT] = {0}, ops = false, dashed = false;
    for (size_t i = 0; i < g->n; i++) {
        const ag_tensor *t = g->v[i].t;
        if (t != out) has[kind_of(t)] = true;
        ops = ops || node(t)->op;
        for (int64_t k = 0, n = input_count(t); k < n; k++) dashed = dashed || !input_at(t, k).grad;
    }
    ag__put(o,
            "  graph [labelloc=b, fontsize=10, label=<<table border=\"0\" cellspacing=\"4\"><tr>");
    for (int k = 0; k < K_COUNT; k++)
        if (has[k])
            ag__put(o, "<td bgcolor=\"%s\" border=\"1\" color=\"%s\" style=\"rounded\">%s</td>",
                    kinds[k].fill, kinds[k].line, kinds[k].words);
    ag__put(o, "<td bgcolor=\"" OUT_FILL "\" border=\"1\" color=\"" OUT_LINE
               "\" style=\"rounded\">output</td>");
    if (ops)
        ag__put(o, "<td bgcolor=\"" OP_FILL "\" border=\"1\" color=\"" OP_LINE
                   "\">op (its grad_fn)</td>");
    if (dashed) ag__put(o, "<td>dashed arrow: no gradient</td>");
    ag__put(o, "</tr></table>>];\n");
}

/* The DOT text of t's graph into o. False after an error naming op, with o freed. */
static bool write_dot(ag__text *o, const ag_tensor *t, const char *op)
{
    graph g;
    if (!walk(&g, t, op)) return false;
    ag__put(o, "digraph agrad {\n"
               "  graph [rankdir=LR, fontname=\"Helvetica\", nodesep=0.3, ranksep=0.4];\n"
               "  node [fontname=\"Helvetica\", fontsize=11, penwidth=1.2];\n"
               "  edge [color=\"#444444\", arrowsize=0.7, fontname=\"Helvetica\", fontsize=9];\n");
    put_legend(o, &g, t);
    for (size_t i = 0; i < g.n; i++) {
        const ag_tensor *x = g.v[i].t;
        put_tensor(o, x, i, x == t);
        if (node(x)->op) put_op(o, &g, x, i);
    }
    ag__put(o, "}\n");
    graph_free(&g);
    if (o->failed) {
        ag__free(o->s);
        *o = (ag__text){0};
        char s[AG__SHAPE_STR];
        ag__error("%s: out of memory writing the graph of a tensor of shape %s", op,
                  ag__tensor_str(s, t));
        return false;
    }
    return true;
}

bool ag_graph_dot(const ag_tensor *t, FILE *stream)
{
    if (!ag__check(t, "graph_dot", "self")) return false;
    if (!stream) return ag__error("graph_dot: the stream is NULL"), false;
    ag__text o = {0};
    bool ok = write_dot(&o, t, "graph_dot");
    if (ok && (fwrite(o.s, 1, o.len, stream) != o.len || fflush(stream) != 0)) {
        int err = errno;
        ag__free(o.s);
        return ag__error("graph_dot: cannot write the graph: %s", strerror(err)), false;
    }
    ag__free(o.s);
    return ok;
}

/* ------------------------------------------------------------------------------------ */
/* Files and pictures                                                                    */

bool ag_graph_rendering(void)
{
#ifdef AG_HAVE_GRAPHVIZ
    return true;
#else
    return false;
#endif
}

/* The reports below are made once everything is freed (the error handler may not return):
 * a step that fails writes its message into a buffer first. */
enum { MSG = 512 };

/* Writes o's text to path; false with the message in msg. */
static bool write_file(const char *path, const ag__text *o, char msg[MSG])
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(msg, MSG, "graph_save: cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(o->s, 1, o->len, f) == o->len;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) snprintf(msg, MSG, "graph_save: cannot write '%s': %s", path, strerror(err));
    return ok;
}

#ifdef AG_HAVE_GRAPHVIZ
/* Lays out the DOT text with dot and renders it to path in format ("png", "svg"); false
 * with the message in msg. */
static bool render(const ag__text *o, const char *path, const char *format, char msg[MSG])
{
    /* One Graphviz context for the process, made at the first picture and never freed (not
     * by ag_shutdown either): Graphviz 2.43's pango plugin keeps a pointer to the last font
     * name it measured, which lives in the context, and a second context would read the
     * first one's freed name. Held by this static, it is no leak to LeakSanitizer. */
    static GVC_t *gvc;
    if (!gvc) gvc = gvContext();
    if (!gvc) {
        snprintf(msg, MSG, "graph_save: Graphviz could not start (gvContext)");
        return false;
    }
    Agraph_t *g = agmemread(o->s);
    if (!g) {
        snprintf(msg, MSG, "graph_save: Graphviz could not read the graph's DOT text");
        return false;
    }
    bool ok = false;
    if (gvLayout(gvc, g, "dot") != 0) {
        snprintf(msg, MSG, "graph_save: Graphviz's dot layout failed");
    } else {
        errno = 0;
        if (gvRenderFilename(gvc, g, format, path) != 0) {
            int err = errno;
            snprintf(msg, MSG, "graph_save: Graphviz could not render '%s' as %s%s%s", path, format,
                     err ? ": " : "", err ? strerror(err) : "");
        } else {
            ok = true;
        }
        gvFreeLayout(gvc, g);
    }
    agclose(g);
    return ok;
}
#endif

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

bool ag_graph_save(const ag_tensor *t, const char *path)
{
    if (!ag__check(t, "graph_save", "self")) return false;
    if (!path) return ag__error("graph_save: the path is NULL"), false;
    const char *format = ends_with(path, ".dot")   ? "dot"
                         : ends_with(path, ".png") ? "png"
                         : ends_with(path, ".svg") ? "svg"
                                                   : NULL;
    if (!format)
        return ag__error("graph_save: cannot tell the format of '%s': its name must end in "
                         ".dot, .png or .svg",
                         path),
               false;
    ag__text o = {0};
    if (!write_dot(&o, t, "graph_save")) return false;
    char msg[MSG] = "";
    bool ok;
    if (!strcmp(format, "dot")) {
        ok = write_file(path, &o, msg);
    } else {
#ifdef AG_HAVE_GRAPHVIZ
        ok = render(&o, path, format, msg);
#else
        /* no renderer: the DOT text beside, where the picture would be, and an error */
        ok = false;
        size_t len = strlen(path);
        char *dot = ag__malloc(len + 1);
        if (!dot) {
            snprintf(msg, MSG, "graph_save: out of memory naming the .dot file for '%s'", path);
        } else {
            memcpy(dot, path, len - 3);
            memcpy(dot + len - 3, "dot", 4);
            if (write_file(dot, &o, msg))
                snprintf(msg, MSG,
                         "graph_save: rendering is off (agrad was built without Graphviz); "
                         "wrote '%s' instead of '%s'",
                         dot, path);
            ag__free(dot);
        }
#endif
    }
    ag__free(o.s);
    if (!ok) ag__error("%s", msg);
    return ok;
}

/* ------------------------------------------------------------------------------------ */
/* Statistics                                                                            */

/* What a tensor takes in agrad's memory: its header (ag_tensor and agrad's node, rounded
 * to 32 bytes as memory.c's HEADER is) and, unless it is a view, its storage; rounded to
 * the arena's 32 bytes. */
enum { ALIGN = 32 };
static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }
static size_t header_bytes(void) { return align_up(sizeof(ag_tensor) + sizeof(ag__node)); }
static size_t tensor_bytes(const ag_tensor *t)
{
    bool owns = node(t)->base == t;
    return align_up(header_bytes() + (owns ? (size_t)t->numel * sizeof(float) : 0));
}

/* What an op kept beside its tensors, when agrad knows its size: cat's and stack's lists,
 * where's saved condition. */
static size_t ctx_bytes(const ag_tensor *t)
{
    const ag__node *n = node(t);
    if (!n->ctx) return 0;
    if (n->op == AG__OP_CAT || n->op == AG__OP_STACK)
        return align_up((size_t)n->arg.join.count * (sizeof(ag_tensor *) + sizeof(bool)));
    if (n->op == AG__OP_WHERE) return align_up(sizeof(ag__saved));
    return 0;
}

static void rank_largest(ag_graph_stats *st, const ag_tensor *t, size_t bytes)
{
    size_t n = st->nlargest, at = n;
    while (at > 0 && st->largest[at - 1].bytes < bytes) at--; /* ties: the older first */
    if (at >= AG_GRAPH_LARGEST) return;
    if (n == AG_GRAPH_LARGEST) n--;
    memmove(&st->largest[at + 1], &st->largest[at], (n - at) * sizeof st->largest[0]);
    ag_graph_tensor *e = &st->largest[at];
    *e = (ag_graph_tensor){.bytes = bytes, .numel = t->numel, .ndim = t->ndim};
    memcpy(e->shape, t->shape, sizeof e->shape);
    char nbuf[sizeof e->label];
    const char *name = ag__name_of(t, nbuf, sizeof nbuf);
    const char *grad_fn =
        node(t)->op == AG__OP_MAP ? node(t)->arg.map.name : ag__ops[node(t)->op].grad_fn;
    snprintf(e->label, sizeof e->label, "%s",
             name      ? name
             : grad_fn ? grad_fn
                       : kinds[kind_of(t)].words);
    st->nlargest = n + 1;
}

ag_graph_stats ag_graph_stats_of(const ag_tensor *t)
{
    ag_graph_stats st = {0};
    if (!ag__check(t, "graph_stats", "self")) return st;
    graph g;
    if (!walk(&g, t, "graph_stats")) return st;
    for (size_t i = 0; i < g.n; i++) {
        const ag_tensor *x = g.v[i].t;
        size_t bytes = tensor_bytes(x);
        st.tensors++;
        if (node(x)->op) {
            st.ops++;
        } else {
            st.leaves++;
            st.parameters += kind_of(x) == K_PARAM;
        }
        st.bytes += bytes + ctx_bytes(x);
        if (g.v[i].saved) st.saved_bytes += (size_t)x->numel * sizeof(float);
        if (node(x)->op && reads_saved(x)) st.saved_bytes += ctx_bytes(x);
        const ag_tensor *gr = grad_of(x);
        if (gr) st.grad_bytes += tensor_bytes(gr);
        rank_largest(&st, x, bytes);
    }
    graph_free(&g);
    st.ok = true;
    return st;
}

/* n bytes as "812 B", "1.5 KiB", "3.2 MiB". */
static const char *size_str(char buf[32], size_t n)
{
    if (n < 1024) {
        snprintf(buf, 32, "%zu B", n);
        return buf;
    }
    double x = (double)n;
    const char *unit = "KiB";
    x /= 1024;
    if (x >= 1024) x /= 1024, unit = "MiB";
    if (x >= 1024) x /= 1024, unit = "GiB";
    snprintf(buf, 32, "%.1f %s", x, unit);
    return buf;
}

bool ag_graph_print_stats(const ag_tensor *t, FILE *stream)
{
    if (!ag__check(t, "graph_print_stats", "self")) return false;
    if (!stream) return ag__error("graph_print_stats: the stream is NULL"), false;
    ag_graph_stats st = ag_graph_stats_of(t);
    if (!st.ok) return false;
    char a[32], b[32], c[32], s[AG__SHAPE_STR];
    int r = fprintf(stream,
                    "graph: %zu tensors (%zu made by ops, %zu leaves, of which %zu parameters)\n"
                    "memory: %s in tensors and what ops kept, %s of it saved for backward, "
                    "%s in gradients\n",
                    st.tensors, st.ops, st.leaves, st.parameters, size_str(a, st.bytes),
                    size_str(b, st.saved_bytes), size_str(c, st.grad_bytes));
    if (r >= 0 && st.nlargest) r = fprintf(stream, "largest tensors:\n");
    for (size_t i = 0; r >= 0 && i < st.nlargest; i++) {
        const ag_graph_tensor *e = &st.largest[i];
        r = fprintf(stream, "  %zu. %-24s %-16s %s\n", i + 1, e->label,
                    ag__shape_str(s, e->ndim, e->shape), size_str(a, e->bytes));
    }
    if (r < 0 || fflush(stream) != 0) {
        int err = errno;
        return ag__error("graph_print_stats: cannot write: %s", strerror(err)), false;
    }
    return true;
}
