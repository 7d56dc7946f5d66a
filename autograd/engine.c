/* The autograd engine: recording, no_grad, and the backward pass. */
#include "internal.h"

#include <string.h>

static struct {
    int no_grad_depth;
    bool running;        /* a backward pass is under way */
    ag_tensor **heap;    /* pending recorded tensors, a max-heap by serial: newest on top */
    ag_tensor **visited; /* every tensor given a gradient in this pass */
    ag_tensor **keep;    /* those of them that may keep it: leaves, retain_grad */
    size_t nheap, nvisited, nkeep;
    size_t cap;     /* room in all three: the heap and keep never hold more than visited */
    bool failed;    /* the lists could not grow in this pass */
    bool hand_over; /* nothing reads a node's gradient after its backward (hand_over) */
    size_t nodes;   /* tensors the last pass visited */
} eng;

const ag__op ag__ops[AG__OP_COUNT] = {
    [AG__OP_LEAF] = {NULL, {0, 0}, NULL, NULL, {NULL, NULL}},
#define AG__OP(id, grad_fn, forward, backward, needs0, needs1, rule0, rule1)                       \
    [AG__OP_##id] = {grad_fn, {needs0, needs1}, forward, backward, {rule0, rule1}},
#include "optable.h"
#undef AG__OP
};

const char *ag_grad_fn_name(const ag_tensor *t)
{
    if (!ag__check(t, "grad_fn", "self") || !node(t)->op) return NULL;
    /* a user's op (ag_map) carries its own name */
    return node(t)->op == AG__OP_MAP ? node(t)->arg.map.name : ag__ops[node(t)->op].grad_fn;
}

bool ag__grad_mode(void) { return eng.no_grad_depth == 0; }

void ag__engine_reset(void)
{
    ag__free(eng.heap);
    ag__free(eng.visited);
    ag__free(eng.keep);
    memset(&eng, 0, sizeof eng);
}

ag_stats ag_memory_stats(void)
{
    ag_stats st = {0};
    ag__memory_stats(&st);
    st.backward_nodes = eng.nodes;
    return st;
}

void ag__pass_visited(size_t n) { eng.nodes = n; }

void ag_no_grad_begin(void) { eng.no_grad_depth++; }

void ag_no_grad_end(void)
{
    if (eng.no_grad_depth == 0) {
        ag__error("no_grad_end: no no_grad scope is open");
        return;
    }
    eng.no_grad_depth--;
}

bool ag_is_grad_enabled(void) { return eng.no_grad_depth == 0; }

ag_tensor *ag__record(ag_tensor *out, int op, const ag_tensor *a, const ag_tensor *b)
{
    bool ga = a->requires_grad, gb = b && b->requires_grad;
    if (eng.no_grad_depth || !(ga || gb)) {
        ag__derive(out);
        return ag__watching ? ag__watch_forward(out, op, a, b) : out;
    }
    out->requires_grad = true;
    node(out)->op = (uint16_t)op;
    /* The graph keeps its inputs to read them and to give them gradients: their nodes
     * change in backward, their values never do, so const inputs are fine. */
    node(out)->src[0] = (ag_tensor *)a;
    node(out)->src[1] = (ag_tensor *)b;
    node(out)->src_version[0] = node(node(a)->base)->version;
    node(out)->src_version[1] = b ? node(node(b)->base)->version : 0;
    /* The edges to the inputs that require grad now, and what their gradients read. */
    const uint16_t *needs = ag__ops[op].needs;
    node(out)->flags |=
        (uint16_t)((ga ? needs[0] | AG__F_EDGE_A : 0) | (gb ? needs[1] | AG__F_EDGE_B : 0));
    return ag__watching ? ag__watch_forward(out, op, a, b) : out;
}

ag_tensor *ag__record_n(ag_tensor *out, int op, ag_tensor *const *inputs, int n, const char *name)
{
    bool any = false;
    for (int i = 0; i < n; i++) any = any || inputs[i]->requires_grad;
    if (eng.no_grad_depth || !any) {
        ag__derive(out);
        return ag__watching ? ag__watch_forward(out, op, NULL, NULL) : out;
    }
    ag_tensor **kept = ag__ctx_alloc((size_t)n * (sizeof *kept + sizeof(bool)));
    if (!kept) {
        char s[AG__SHAPE_STR];
        return ag__error("%s: out of memory recording %d inputs (result of shape %s)", name, n,
                         ag__tensor_str(s, out));
    }
    bool *edge = (bool *)(kept + n);
    for (int i = 0; i < n; i++) {
        kept[i] = inputs[i];
        edge[i] = inputs[i]->requires_grad;
    }
    out->requires_grad = true;
    node(out)->op = (uint16_t)op;
    node(out)->ctx = kept;
    node(out)->arg.join.count = n;
    return ag__watching ? ag__watch_forward(out, op, NULL, NULL) : out;
}

bool ag__inplace_refused(const ag_tensor *t, const char *op)
{
    if (node(t)->op == 0)
        ag__error("%s: a leaf Variable that requires grad is being used in an in-place "
                  "operation.",
                  op);
    else
        ag__error("%s: agrad does not record in-place operations on a tensor that requires "
                  "grad (made by %s); use the out-of-place form",
                  op, ag__ops[node(t)->op].grad_fn);
    return false;
}

ag_tensor *ag_retain_grad(ag_tensor *t)
{
    if (!ag__check(t, "retain_grad", "self")) return NULL;
    if (!t->requires_grad)
        return ag__error("retain_grad: can't retain_grad on Tensor that has "
                         "requires_grad=False");
    if (node(t)->op) node(t)->flags |= AG__F_RETAIN_GRAD;
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* Backward                                                                              */
/*                                                                                       */
/* Every tensor's serial is larger than its inputs', so a tensor's consumers are all     */
/* newer than it. The pass keeps the recorded tensors that have received a gradient in   */
/* a heap and always takes the newest: by then every consumer has given its share, so    */
/* the gradient is complete. The pass costs what is reachable from the output, however   */
/* many other tensors the tape holds.                                                    */

AG__INLINE void heap_push(ag_tensor *t)
{
    size_t i = eng.nheap++;
    while (i > 0 && node(eng.heap[(i - 1) / 2])->serial < node(t)->serial) {
        eng.heap[i] = eng.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    eng.heap[i] = t;
}

static ag_tensor *heap_pop(void)
{
    ag_tensor *top = eng.heap[0], *last = eng.heap[--eng.nheap];
    size_t i = 0, n = eng.nheap;
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && node(eng.heap[c + 1])->serial > node(eng.heap[c])->serial) c++;
        if (node(eng.heap[c])->serial <= node(last)->serial) break;
        eng.heap[i] = eng.heap[c];
    }
    if (n) eng.heap[i] = last;
    return top;
}

/* Room for n tensors in the three lists; false when out of memory, with the lists as they
 * were (a grown list keeps its contents, and eng.cap its old size). reserve(): room for
 * one more. */
static bool grow_lists(size_t n);
AG__INLINE bool reserve(void) { return eng.nvisited < eng.cap || grow_lists(eng.nvisited + 1); }
bool ag__pass_reserve(size_t n) { return n <= eng.cap || grow_lists(n); }
/* *list, with room for eng.cap tensors, grown to room for at least n (n > 0): its new
 * room, or 0 when out of memory (the list as it was). */
static size_t grow_list(ag_tensor ***list, size_t n)
{
    size_t cap = eng.cap;
    ag_tensor **grown = ag__grow(*list, &cap, n, sizeof **list);
    if (!grown) return 0;
    *list = grown;
    return cap;
}
static bool grow_lists(size_t n)
{
    size_t cap = grow_list(&eng.visited, n);
    if (!cap || !grow_list(&eng.heap, cap) || !grow_list(&eng.keep, cap)) return false;
    eng.cap = cap;
    return true;
}

/* x has its gradient in this pass (reserve() made room): it is listed, and kept apart
 * when the pass's end may give the gradient to its ->grad. */
AG__INLINE void visit(ag_tensor *x)
{
    node(x)->flags |= AG__F_PENDING;
    eng.visited[eng.nvisited++] = x;
    if (!node(x)->op || (node(x)->flags & AG__F_RETAIN_GRAD)) eng.keep[eng.nkeep++] = x;
}

/* x joins the pass, with buf as its gradient. A leaf has no backward to run: it waits for
 * the pass's end in the lists, outside the heap. */
AG__INLINE void enter(ag_tensor *x, float *buf)
{
    node(x)->gbuf = buf;
    visit(x);
    if (node(x)->op) heap_push(x);
}

float *ag__grad_buf(ag_tensor *x, bool *fresh)
{
    *fresh = !(node(x)->flags & AG__F_PENDING);
    if (!*fresh) return node(x)->gbuf;
    if (!reserve()) {
        eng.failed = true;
        return NULL;
    }
    if (node(x)->flags & AG__F_SET_ASIDE) { /* a replay's pass: its buffer, no heap */
        visit(x);
        return node(x)->gbuf;
    }
    /* a small tensor's in its spare room, where a scratch buffer would cost a call; a
     * failure is ag__scratch_failed's */
    float *buf = ag__has_spare_room(x) ? x->data + x->numel : ag__scratch_floats(x->numel);
    if (buf) enter(x, buf);
    return buf;
}

float *ag__grad_of(ag_tensor *x)
{
    bool fresh;
    float *buf = ag__grad_buf(x, &fresh);
    if (buf && fresh) memset(buf, 0, (size_t)x->numel * sizeof(float));
    return buf;
}

/* dst[i] += g[i] for i < n (into a fresh dst: AG__ADD_FLAT), vectorised: restrict
 * parameters, which gcc honours once inlined (restrict locals it does not). */
AG__INLINE void add_flat(float *restrict dst, bool fresh, const float *restrict g, int64_t n)
{
    AG__ADD_FLAT(fresh, dst, n, g[i]);
}

void ag__add_grad(ag_tensor *x, const float *g)
{
    bool fresh;
    float *dst = ag__grad_buf(x, &fresh);
    if (dst) add_flat(dst, fresh, g, x->numel);
}

/* out's gradient passes to x unchanged (add, sub's first input, a view): x takes out's
 * buffer as its own, where a copy would cost a pass over memory, as PyTorch passes the
 * same gradient tensor on. Only when nothing reads the buffer as out's after out's
 * backward: x has no gradient yet, out keeps none (retain_grad), gave its buffer to no
 * other input and has no other input that is x (x + x adds into it twice); and the pass
 * allows it (eng.hand_over: not a general replay, whose buffers are set aside for every
 * run, but a tiled one's pass, which sets them again at each tile; and no trace, anomaly
 * mode or ag_grad reading the buffers at its end). */
static bool hand_over(ag_tensor *x, const ag_tensor *out)
{
    ag__node *r = node(out);
    if ((node(x)->flags & AG__F_PENDING) || (r->flags & (AG__F_GIVEN | AG__F_RETAIN_GRAD)) ||
        r->src[0] == r->src[1] || !reserve())
        return false;
    r->flags |= AG__F_GIVEN;
    enter(x, r->gbuf);
    return true;
}

void ag__accum(ag_tensor *x, const ag_tensor *out, const float *g)
{
    if (!g) return;
    if (x->numel == out->numel) { /* same shape, or a view: no reduction */
        if (!eng.hand_over || g != node(out)->gbuf || !hand_over(x, out)) ag__add_grad(x, g);
        return;
    }
    /* sum_to_size: every element of g lands on the element of x it was broadcast from.
     * Summed in double, so that a million terms round once, as closely as PyTorch's
     * pairwise float sum, rather than a million times (in lanes: AG__LANES). */
    if (x->numel == 1) { /* x broadcast to all of out: one flat sum, in out's order */
        double own[AG__LANES] = {0}, *lanes = ag__one_lanes(x == node(out)->src[0] ? 0 : 1, own);
        AG__SUM_LANES(out->numel, lanes, g[i]);
        if (lanes != own) return; /* a tiled replay's */
        bool fresh;
        float *dst = ag__grad_buf(x, &fresh);
        if (dst) ag__add_lanes(dst, fresh, own);
        return;
    }
    float *dst = ag__grad_of(x);
    if (!dst) return;
    /* Lanes for each element of x: term k of its sum (k counts the elements of g broadcast
     * from it, in g's order: the index over the dimensions x is broadcast along, sk) goes
     * to its lane k % AG__LANES. */
    size_t bytes = (size_t)x->numel * AG__LANES * sizeof(double);
    double *acc = ag__scratch(bytes);
    if (!acc) return;
    memset(acc, 0, bytes);
    int64_t p[AG_MAX_DIMS], sx[AG_MAX_DIMS], sk[AG_MAX_DIMS], k = 1;
    ag__pad(out->ndim, out->shape, p);
    ag__bstrides(x, sx);
    for (int d = AG_MAX_DIMS - 1; d >= 0; d--) {
        sk[d] = sx[d] == 0 && p[d] > 1 ? k : 0;
        k *= sk[d] ? p[d] : 1;
    }
    AG__FOR_BCAST(p, sx, sk, acc[ia * AG__LANES + ib % AG__LANES] += g[io]);
    for (int64_t i = 0; i < x->numel; i++) dst[i] += (float)ag__lanes_total(acc + i * AG__LANES);
}

static bool seed_check(const ag_tensor *t, const ag_tensor *gradient)
{
    char s1[AG__SHAPE_STR];
    if (eng.running) {
        ag__error("backward: called while a backward pass is running (from a derivative "
                  "given to ag_map?)");
        return false;
    }
    if (!t->requires_grad) {
        ag__error("backward: element 0 of tensors does not require grad and does not have "
                  "a grad_fn (shape %s)",
                  ag__tensor_str(s1, t));
        return false;
    }
    if (!gradient && t->numel != 1) {
        ag__error("backward: grad can be implicitly created only for scalar outputs (shape %s)",
                  ag__tensor_str(s1, t));
        return false;
    }
    if (gradient && !ag__same_shape(gradient, t)) {
        char s2[AG__SHAPE_STR];
        ag__error("backward: Mismatch in shape: grad_output[0] has a shape of %s and "
                  "output[0] has a shape of %s.",
                  ag__tensor_str(s1, gradient), ag__tensor_str(s2, t));
        return false;
    }
    return true;
}

/* Whether a tensor that the backward of node name reads still has the version it had when
 * the node was recorded; else the error, in PyTorch's words. */
static bool intact(const ag_tensor *t, uint64_t expected, const char *role, const char *name)
{
    uint64_t version = node(node(t)->base)->version;
    if (version == expected) return true;
    char buf[AG__SHAPE_STR];
    ag__error("backward: one of the variables needed for gradient computation has been "
              "modified by an inplace operation: [FloatTensor %s] is at version %llu; expected "
              "version %llu instead (%s of %s).",
              ag__tensor_str(buf, t), (unsigned long long)version, (unsigned long long)expected,
              role, name);
    return false;
}

/* Checks that node's backward can run: what it saved still exists and was not modified
 * in place since it was recorded. */
static bool node_check(const ag_tensor *n)
{
    const char *name = ag__ops[node(n)->op].grad_fn;
    uint16_t saved = node(n)->flags & (AG__F_SAVED_A | AG__F_SAVED_B | AG__F_SAVED_OUT |
                                       AG__F_SAVED_CTX | AG__F_SAVED_EXT);
    if (!saved) return true;
    if (node(n)->flags & AG__F_FREED) {
        ag__error("backward: Trying to backward through the graph a second time (or directly "
                  "access saved tensors after they have already been freed), at %s. Saved "
                  "intermediate values of the graph are freed when you call .backward(). "
                  "Specify retain_graph=True if you need to backward through the graph a "
                  "second time.",
                  name);
        return false;
    }
    const ag__node *r = node(n);
    const ag__saved *extra = r->ctx;
    return (!(saved & AG__F_SAVED_A) || intact(r->src[0], r->src_version[0], "input 0", name)) &&
           (!(saved & AG__F_SAVED_B) || intact(r->src[1], r->src_version[1], "input 1", name)) &&
           (!(saved & AG__F_SAVED_OUT) || intact(n, 0, "result", name)) &&
           (!(saved & AG__F_SAVED_EXT) || intact(extra->t, extra->version, extra->role, name));
}

/* Makes the ->grad of every tensor that keeps its gradient and has none yet, all or
 * nothing: if one cannot be made, those made here are freed again. */
static bool make_grads(void)
{
    for (size_t i = 0; i < eng.nkeep; i++) {
        ag_tensor *t = eng.keep[i];
        if (t->grad || !ag__keeps_grad(t)) continue;
        t->grad = ag__new_grad(t);
        if (t->grad) {
            node(t)->flags |= AG__F_FRESH;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (node(eng.keep[j])->flags & AG__F_FRESH) ag__free_grad(eng.keep[j]);
        char s[AG__SHAPE_STR];
        ag__error("backward: out of memory allocating the ->grad of a tensor of shape %s",
                  ag__tensor_str(s, t));
        return false;
    }
    return true;
}

/* What ag__grad_into collects instead of committing. */
typedef struct capture {
    ag_tensor *const *inputs;
    int n;
    float *const *out;
} capture;

static void collect(const capture *cap)
{
    for (int k = 0; k < cap->n; k++) {
        const ag_tensor *x = cap->inputs[k];
        size_t bytes = (size_t)x->numel * sizeof(float);
        if (node(x)->flags & AG__F_PENDING)
            memcpy(cap->out[k], node(x)->gbuf, bytes);
        else
            memset(cap->out[k], 0, bytes);
    }
}

/* The end of a pass, eager or replayed: ok says whether every node's backward ran, at is
 * the node it stopped at. Gradients reach ->grad (or, with cap, cap's buffers) only when
 * the whole pass succeeded. */
static bool pass_end(bool ok, const ag_tensor *at, bool retain_graph, const capture *cap)
{
    if (!ok && (eng.failed || ag__scratch_failed())) {
        char s[AG__SHAPE_STR];
        ag__error("backward: out of memory at %s (the gradient of a tensor of shape %s)",
                  node(at)->op ? ag_grad_fn_name(at) : "the seed", ag__tensor_str(s, at));
    }
    if (ok && cap) collect(cap);
    bool commit = ok && !cap && make_grads();
    ok = ok && (cap || commit);
    if (ag__watching) ag__watch_end(ok, eng.visited, eng.nvisited);

    /* Gradients reach ->grad only now that nothing can fail. */
    for (size_t i = 0; commit && i < eng.nkeep; i++) {
        ag_tensor *n = eng.keep[i];
        if (n->grad && ag__keeps_grad(n)) /* make_grads made every ->grad needed */
            add_flat(n->grad->data, false, node(n)->gbuf, n->numel);
    }
    bool free_saved = ok && !retain_graph;
    for (size_t i = 0; i < eng.nvisited; i++) {
        ag__node *r = node(eng.visited[i]);
        r->flags &= (uint16_t) ~(AG__F_PENDING | AG__F_FRESH | AG__F_GIVEN);
        if (free_saved && r->op) r->flags |= AG__F_FREED;
        r->gbuf = NULL;
    }
    eng.nodes = eng.nvisited;
    eng.nheap = 0;
    eng.nvisited = 0;
    eng.nkeep = 0;
    eng.running = false;
    ag__scratch_reset();
    return ok;
}

/* One backward pass from t, seeded with gradient (or 1). */
static bool pass(ag_tensor *t, const ag_tensor *gradient, bool retain_graph, const capture *cap)
{
    eng.failed = false;
    eng.hand_over = !cap && !ag__watching;
    eng.running = true;
    float *seed = ag__grad_of(t); /* d t / d t: 1, or the gradient given */
    for (int64_t i = 0; seed && i < t->numel; i++) seed[i] = gradient ? gradient->data[i] : 1.0f;

    bool ok = seed != NULL && (!ag__watching || ag__watch_begin(t, seed));
    const ag_tensor *at = t;
    while (ok && eng.nheap > 0) {
        ag_tensor *n = heap_pop();
        at = n;
        ok = node_check(n);
        if (ok && ag__watching)
            ok = ag__watch_backward(n); /* the backward, with the trace or anomaly mode */
        else if (ok)
            ag__ops[node(n)->op].backward(n);
        ok = ok && !eng.failed && !ag__scratch_failed();
    }
    return pass_end(ok, at, retain_graph, cap);
}

bool ag__replay_pass(ag_tensor *loss, ag_tensor *const *nodes, size_t n)
{
    eng.failed = false;
    eng.hand_over = false; /* every buffer is set aside */
    eng.running = true;
    float *seed = ag__grad_of(loss);
    if (seed) seed[0] = 1.0f;
    bool ok = seed != NULL;
    const ag_tensor *at = loss;
    /* newest first, as the heap takes them; a node no gradient reached is skipped */
    for (size_t i = n; ok && i-- > 0;) {
        if (!(node(nodes[i])->flags & AG__F_PENDING)) continue;
        at = nodes[i];
        ag__ops[node(at)->op].backward(nodes[i]);
        ok = !eng.failed && !ag__scratch_failed();
    }
    return pass_end(ok, at, true, NULL);
}

double *ag__tile_lanes;

void ag__tile_pass(ag_tensor *const *nodes, size_t n, double *lanes)
{
    eng.hand_over = true; /* a tile's buffers are set aside again before the next */
    eng.running = true;
    for (size_t i = n; i-- > 0;) {
        if (!(node(nodes[i])->flags & AG__F_PENDING)) continue;
        ag__tile_lanes = lanes + i * 2 * AG__LANES;
        ag__ops[node(nodes[i])->op].backward(nodes[i]);
    }
    ag__tile_lanes = NULL;
    for (size_t i = 0; i < eng.nvisited; i++)
        node(eng.visited[i])->flags &= (uint16_t) ~(AG__F_PENDING | AG__F_FRESH | AG__F_GIVEN);
    eng.nvisited = 0;
    eng.nkeep = 0;
    eng.nheap = 0; /* what a hand-over put there: nothing is taken from the heap */
    eng.running = false;
}

bool ag_backward_with(const ag_tensor *t, const ag_tensor *gradient, bool retain_graph)
{
    if (!ag__check(t, "backward", "self")) return false;
    if (gradient && !ag__check(gradient, "backward", "gradient")) return false;
    if (!seed_check(t, gradient)) return false;
    /* Errors inside the pass reach the handler only once everything is put back. */
    ag__defer_begin();
    bool ok =
        pass((ag_tensor *)t, gradient, retain_graph, NULL); /* its node changes, not its values */
    ag__defer_end();
    return ok;
}

bool ag_backward(const ag_tensor *t) { return ag_backward_with(t, NULL, false); }

bool ag__grad_into(ag_tensor *y, ag_tensor *gradient, ag_tensor *const *inputs, int n,
                   float *const *out)
{
    if (!seed_check(y, gradient)) return false;
    capture cap = {inputs, n, out};
    ag__defer_begin();
    bool ok = pass(y, gradient, true, &cap);
    ag__defer_end();
    return ok;
}
