/* Watching the graph: the backward trace (ag_set_trace) and anomaly mode
 * (ag_set_detect_anomaly).
 *
 * The engine calls in here only while one of them is on (ag__watching), so both cost one
 * test when off. Around each node's backward, the trace notes what the node's inputs have
 * received so far and sets their gradients aside, so that what the node gives each input
 * can be printed on its own; adding the two back is the same float addition the pass makes
 * without the trace, so the gradients do not change. Anomaly mode checks every recorded
 * op's result, and every gradient a node gives, for nan and inf, and names the op and the
 * user's line that recorded it (kept from the op macros, ag_private_site, in a table by
 * serial, like names). */
#include "internal.h"

#include <math.h>
#include <string.h>

bool ag__watching;
ag_private_site_t ag_private_site;

typedef struct site {
    uint64_t serial; /* first: the table is searched by it */
    const char *file;
    int line;
} site;

/* What the trace set aside for one input of the node being run. */
typedef struct held {
    ag_tensor *x;
    float *before; /* its gradient before the node ran; NULL: it had none */
    bool alone;    /* set aside (not another input of the node too) */
} held;

static struct {
    FILE *trace;
    bool anomaly;
    site *sites; /* in serial order */
    size_t nsites, cap_sites;
    held *held;
    size_t nheld, cap_held;
    size_t step; /* nodes the trace has shown in this pass */
} w;

static void update(void) { ag__watching = w.trace || w.anomaly; }

/* ------------------------------------------------------------------------------------ */
/* The switches                                                                          */

static bool refused(const char *op)
{
    if (!ag__deferring()) return false;
    ag__error("%s: " AG__INSIDE, op);
    return true;
}

bool ag_set_detect_anomaly(bool on)
{
    bool was = w.anomaly;
    if (refused("set_detect_anomaly")) return was;
    w.anomaly = on;
    update();
    return was;
}

bool ag_is_anomaly_enabled(void) { return w.anomaly; }

FILE *ag_set_trace(FILE *stream)
{
    FILE *was = w.trace;
    if (refused("set_trace")) return was;
    w.trace = stream;
    update();
    return was;
}

/* ------------------------------------------------------------------------------------ */
/* Call sites                                                                            */

static size_t site_index(uint64_t serial)
{
    return ag__serial_bound(w.sites, w.nsites, sizeof *w.sites, serial);
}

/* Keeps where t was recorded. Out of memory, the site is not kept (messages then say
 * nothing of where): watching must not make a working program fail. */
static void keep_site(const ag_tensor *t)
{
    if (!ag_private_site.file) return;
    site *grown = ag__grow(w.sites, &w.cap_sites, w.nsites + 1, sizeof *grown);
    if (!grown) return;
    w.sites = grown;
    size_t i = site_index(node(t)->serial); /* the end, but for a result made early */
    memmove(w.sites + i + 1, w.sites + i, (w.nsites - i) * sizeof *w.sites);
    w.sites[i] = (site){node(t)->serial, ag_private_site.file, ag_private_site.line};
    w.nsites++;
}

/* " (recorded at lab.c:12)", or "" when not known. */
static const char *where(char *buf, size_t size, const ag_tensor *t)
{
    size_t i = site_index(node(t)->serial);
    if (i == w.nsites || w.sites[i].serial != node(t)->serial) return "";
    snprintf(buf, size, " (recorded at %s:%d)", w.sites[i].file, w.sites[i].line);
    return buf;
}

void ag__sites_prune(uint64_t serial) { w.nsites = site_index(serial); }

void ag__watch_reset(void)
{
    ag__free(w.sites);
    ag__free(w.held);
    memset(&w, 0, sizeof w);
    ag_private_site = (ag_private_site_t){NULL, 0};
    update();
}

/* ------------------------------------------------------------------------------------ */
/* Showing values                                                                        */

/* v as %.4g writes it, but nan always "nan" (printf may write "-nan"). */
enum { NUM_STR = 32 };
static const char *num(char buf[NUM_STR], double v)
{
    if (isnan(v)) return "nan";
    snprintf(buf, NUM_STR, "%.4g", v);
    return buf;
}

/* The first element of v[0..n) that is nan or inf, or -1. */
static int64_t first_bad(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return -1;
}

/* The element at flat index i of shape t as "[1, 0]" (or "[]" for a scalar). */
static const char *index_str(char buf[AG__SHAPE_STR], const ag_tensor *t, int64_t i)
{
    int64_t at[AG_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        at[d] = t->shape[d] ? i % t->shape[d] : 0;
        i = t->shape[d] ? i / t->shape[d] : 0;
    }
    return ag__shape_str(buf, t->ndim, at);
}

/* Values as the trace shows them: all of a small tensor ("[0.3333, -1]", or "2.5" for one
 * element), a summary of a large one ("min -1.2, max 3.4, norm 5.6, 2 nan"). */
enum { SHOWN = 6, VALUES_STR = 160 };
static const char *values(char buf[VALUES_STR], const float *v, int64_t n, bool scalar)
{
    int k = 0;
    if (n <= SHOWN) {
        if (!scalar) k += snprintf(buf + k, VALUES_STR - (size_t)k, "[");
        char nb[NUM_STR];
        for (int64_t i = 0; i < n; i++)
            k += snprintf(buf + k, VALUES_STR - (size_t)k, i ? ", %s" : "%s", num(nb, v[i]));
        if (!scalar) snprintf(buf + k, VALUES_STR - (size_t)k, "]");
        return buf;
    }
    double lo = INFINITY, hi = -INFINITY, sq = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            bad++;
            continue;
        }
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
        sq += (double)v[i] * v[i];
    }
    k = snprintf(buf, VALUES_STR, "min %.4g, max %.4g, norm %.4g", lo, hi, sqrt(sq));
    if (bad) snprintf(buf + k, VALUES_STR - (size_t)k, ", %lld nan or inf", (long long)bad);
    return buf;
}

/* How the trace and messages call t: "w []", "loss []", or, unnamed, "[3] (output of
 * MulBackward0)" and "[3] (leaf)". */
enum { LABEL_STR = AG__SHAPE_STR + AG__NAME_SHOWN + 32 };
static const char *label(char buf[LABEL_STR], const ag_tensor *t)
{
    char nbuf[AG__NAME_SHOWN + 1], s[AG__SHAPE_STR];
    const char *name = ag__name_of(t, nbuf, sizeof nbuf);
    ag__shape_str(s, t->ndim, t->shape);
    if (name)
        snprintf(buf, LABEL_STR, "%.*s %s", AG__NAME_SHOWN, name, s);
    else if (node(t)->op)
        snprintf(buf, LABEL_STR, "%s (output of %.*s)", s, AG__NAME_SHOWN, ag_grad_fn_name(t));
    else
        snprintf(buf, LABEL_STR, "%s (leaf)", s);
    return buf;
}

/* The number an op keeps (x * s, x ^ p), for the rule's line. */
static bool number_of(const ag_tensor *n, const char **letter)
{
    switch (node(n)->op) {
    case AG__OP_ADD_NUMBER:
    case AG__OP_SUB_NUMBER:
    case AG__OP_RSUB:
    case AG__OP_MUL_NUMBER:
    case AG__OP_DIV_NUMBER:
        *letter = "s";
        return true;
    case AG__OP_POW_SCALAR:
        *letter = "p";
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Anomaly mode: forward                                                                 */

ag_tensor *ag__watch_forward(ag_tensor *out, int op, const ag_tensor *a, const ag_tensor *b)
{
    if (node(out)->op) keep_site(out);
    if (!w.anomaly) return out;
    int64_t i = first_bad(out->data, out->numel);
    if (i < 0) return out;
    const char *fn = op == AG__OP_MAP ? node(out)->arg.map.name : ag__ops[op].grad_fn;
    char at[AG__SHAPE_STR + 32], l1[LABEL_STR], l2[LABEL_STR], v[VALUES_STR], ix[AG__SHAPE_STR],
        nb[NUM_STR];
    snprintf(at, sizeof at, "%s:%d", ag_private_site.file ? ag_private_site.file : "?",
             ag_private_site.line);
    const char *site = ag_private_site.file ? at : "an unknown line (called without the macros)";
    /* a nan that came in: an input held it already */
    const ag_tensor *in[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        int64_t j = in[k] ? first_bad(in[k]->data, in[k]->numel) : -1;
        if (j < 0) continue;
        return ag__error("anomaly mode: input %d (%s) of %s, at %s, holds %s at element %s%s", k,
                         label(l1, in[k]), fn, site, num(nb, in[k]->data[j]),
                         index_str(ix, in[k], j),
                         node(in[k])->op ? ", made while anomaly mode was off"
                                         : ": it came into the graph so, from a leaf");
    }
    char more[LABEL_STR + VALUES_STR + 32] = "";
    if (b) {
        char l3[LABEL_STR], v2[VALUES_STR];
        snprintf(more, sizeof more, "; input 1 (%s) holds %s", label(l3, b),
                 values(v2, b->data, b->numel, !b->ndim));
    }
    if (!a) /* cat and stack: the inputs are a list */
        return ag__error("anomaly mode: %s, at %s, produced %s at element %s of its result %s", fn,
                         site, num(nb, out->data[i]), index_str(ix, out, i),
                         ag__tensor_str(l1, out));
    return ag__error("anomaly mode: %s, at %s, produced %s at element %s of its result %s; its "
                     "input 0 (%s) holds %s%s",
                     fn, site, num(nb, out->data[i]), index_str(ix, out, i),
                     ag__tensor_str(l1, out), label(l2, a), values(v, a->data, a->numel, !a->ndim),
                     more);
}

/* ------------------------------------------------------------------------------------ */
/* Around each node of a backward pass                                                   */

bool ag__watch_begin(const ag_tensor *t, const float *seed)
{
    w.step = 0;
    if (w.trace) {
        char l[LABEL_STR], v1[VALUES_STR], v2[VALUES_STR];
        fprintf(w.trace, "backward from %s = %s, seeded with %s\n", label(l, t),
                values(v1, t->data, t->numel, !t->ndim), values(v2, seed, t->numel, !t->ndim));
    }
    int64_t i = w.anomaly ? first_bad(seed, t->numel) : -1;
    if (i < 0) return true;
    char ix[AG__SHAPE_STR];
    char nb[NUM_STR];
    ag__error("backward: anomaly mode: the gradient given to backward holds %s at element %s",
              num(nb, seed[i]), index_str(ix, t, i));
    return false;
}

/* Sets aside the gradient each input of n has received so far (trace only). */
static bool watch_before(ag_tensor *n)
{
    if (!w.trace) return true;
    ag_tensor *const *xs;
    int count = ag__inputs(n, &xs);
    w.nheld = 0;
    held *grown = ag__grow(w.held, &w.cap_held, (size_t)count, sizeof *grown);
    if (!grown) {
        ag__error("backward: out of memory tracing %s", ag_grad_fn_name(n));
        return false;
    }
    w.held = grown;
    for (int k = 0; k < count; k++) {
        held h = {xs[k], NULL, true};
        for (size_t j = 0; j < w.nheld; j++)
            if (w.held[j].x == xs[k]) h.alone = w.held[j].alone = false;
        w.held[w.nheld++] = h;
    }
    for (size_t j = 0; j < w.nheld; j++) { /* held[j] is input j */
        held *h = &w.held[j];
        if (!ag__input_wants(n, (int)j) || !(node(h->x)->flags & AG__F_PENDING)) continue;
        size_t bytes = (size_t)h->x->numel * sizeof(float);
        h->before = ag__scratch(bytes);
        if (!h->before) return false; /* the engine reports the scratch's failure */
        memcpy(h->before, node(h->x)->gbuf, bytes);
        /* an input that is two of n's inputs keeps its sum, so that both shares are added
         * to it as they would be without the trace */
        if (h->alone) memset(node(h->x)->gbuf, 0, bytes);
    }
    return true;
}

/* Prints what input k of n received and its total, and adds back what was set aside. */
static void trace_input(const ag_tensor *n, int k, const held *h)
{
    char l[LABEL_STR], v2[VALUES_STR];
    const ag_tensor *x = h->x;
    bool scalar = !x->ndim;
    if (!ag__input_wants(n, k)) {
        fprintf(w.trace, "    input %d, %s: takes no gradient\n", k, label(l, x));
        return;
    }
    float *g = node(x)->gbuf;
    if (!(node(x)->flags & AG__F_PENDING)) return; /* out of memory: the engine reports */
    if (h->alone) {
        char v1[VALUES_STR];
        fprintf(w.trace, "    input %d, %s: receives %s", k, label(l, x),
                values(v1, g, x->numel, scalar));
        if (h->before) {
            for (int64_t i = 0; i < x->numel; i++) g[i] = h->before[i] + g[i];
            fprintf(w.trace, ", total %s", values(v2, g, x->numel, scalar));
        }
        fputc('\n', w.trace);
        return;
    }
    /* the same tensor in two places: what the node gave it, together */
    fprintf(w.trace, "    input %d, %s (also another input): total %s\n", k, label(l, x),
            values(v2, g, x->numel, scalar));
}

/* Checks the gradients n gave (anomaly mode); prints them (trace). */
static bool watch_after(ag_tensor *n)
{
    ag_tensor *const *xs;
    int count = ag__inputs(n, &xs);
    if (w.trace) {
        char l[LABEL_STR], v[VALUES_STR], at[AG__SHAPE_STR + 64];
        const char *letter;
        fprintf(w.trace, "%zu. %s -> %s%s\n", ++w.step, ag_grad_fn_name(n), label(l, n),
                where(at, sizeof at, n));
        fprintf(w.trace, "    gradient arriving: %s\n",
                values(v, node(n)->gbuf, n->numel, !n->ndim));
        for (int k = 0; k < 2 && k < count; k++) {
            const char *rule = ag__ops[node(n)->op].rule[k];
            if (!rule || !ag__input_wants(n, k)) continue;
            fprintf(w.trace, "    local rule: %s", rule);
            if (number_of(n, &letter))
                fprintf(w.trace, ", %s = %.4g", letter, (double)node(n)->arg.number);
            fputc('\n', w.trace);
        }
        for (int k = 0; k < count; k++) trace_input(n, k, &w.held[k]);
    }
    if (!w.anomaly) return true;
    for (int k = 0; k < count; k++) {
        const ag_tensor *x = xs[k];
        if (!ag__input_wants(n, k) || !(node(x)->flags & AG__F_PENDING)) continue;
        int64_t i = first_bad(node(x)->gbuf, x->numel);
        if (i < 0) continue;
        char l[LABEL_STR], at[AG__SHAPE_STR + 64], ix[AG__SHAPE_STR], v[VALUES_STR];
        ag__error("backward: anomaly mode: Function '%s' returned %s values in its %dth output "
                  "(the gradient of input %d, %s, at element %s)%s; the gradient arriving at "
                  "it held %s",
                  ag_grad_fn_name(n), isnan(node(x)->gbuf[i]) ? "nan" : "inf", k, k, label(l, x),
                  index_str(ix, x, i), where(at, sizeof at, n),
                  values(v, node(n)->gbuf, n->numel, !n->ndim));
        return false;
    }
    return true;
}

bool ag__watch_backward(ag_tensor *n)
{
    if (!watch_before(n)) return false;
    ag__ops[node(n)->op].backward(n);
    return ag__scratch_failed() || watch_after(n); /* out of memory: the engine says so */
}

void ag__watch_end(bool ok, ag_tensor *const *visited, size_t n)
{
    if (!w.trace) return;
    if (!ok) {
        fprintf(w.trace, "backward stopped: nothing was added to any .grad\n");
        return;
    }
    char l[LABEL_STR], v[VALUES_STR], nbuf[AG__NAME_SHOWN + 1];
    for (size_t i = 0; i < n; i++) {
        const ag_tensor *t = visited[i];
        bool leaf = node(t)->op == 0;
        if (!(leaf ? t->requires_grad : node(t)->flags & AG__F_RETAIN_GRAD)) continue;
        const char *name = ag__name_of(t, nbuf, sizeof nbuf);
        const char *op = node(t)->flags & AG__F_FRESH ? "=" : "+=";
        values(v, node(t)->gbuf, t->numel, !t->ndim);
        if (name)
            fprintf(w.trace, "%s.grad %s %s\n", name, op, v);
        else
            fprintf(w.trace, "the .grad of %s %s %s\n", label(l, t), op, v);
    }
}
