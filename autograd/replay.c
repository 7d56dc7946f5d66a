/* Replay: a recorded graph run again, forward and backward, on new values of its leaves,
 * without recording anything or allocating.
 *
 * ag_replay_new walks the graph of loss once and keeps it as a program: its recorded
 * tensors oldest first (a topological order), and one block of gradient buffers for every
 * tensor the backward pass gives a gradient. ag_replay_run copies the new values into the
 * graph's input leaves, runs each node's forward (ag__ops[op].forward, the loops of its
 * first run) into the tensor it recorded, then the backward pass over the same nodes in
 * the same order as ag_backward's, with the buffers set aside instead of taken from the
 * scratch arena and a heap. The floats are the eager ones, bit for bit.
 *
 * The graph's leaves are read as they are at each run: parameters after an optimizer's
 * step, and the inputs given anew. Only recorded ops run again: a leaf that an unrecorded
 * op computed (under no_grad, on data alone, a comparison, argmax) after the graph's
 * inputs or parameters were made may have been computed from them, so a graph that reads
 * one is refused unless it is one of the inputs.
 *
 * A graph whose every tensor holds one element, made by ops of a scalar form (the SGD
 * lab's step on one sample), is also kept as a scalar program: a step per node on the
 * tensors' values, and a gradient slot per tensor that takes one. Its run is the same
 * pass without the engine's loops and bookkeeping: each op's function, then its rules
 * newest node first, adding into the slots in the order the engine adds, so the same
 * floats. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A node of the scalar program's forward: *y = f(*a, *b). */
typedef struct sstep {
    float (*f)(float a, float b);
    float *y;
    const float *a, *b; /* the inputs' values; b the op's number for an op of one tensor */
} sstep;

/* An edge of its backward, from a node (its step s) to an input that takes a gradient, in
 * the order of the pass: the input's slot *gin takes d(*s->a, *s->b, *s->y, *gy) (or *gy,
 * for a NULL rule), written when fresh (the first gradient to reach that slot: 0 + d, as a
 * new buffer takes it) and added after. */
typedef struct sedge {
    float (*d)(float a, float b, float y, float g);
    const sstep *s;
    const float *gy; /* the node's gradient slot */
    float *gin;
    bool fresh;
} sedge;

/* A tensor a program's pass reaches, and its gradient slot in r->grads. */
typedef struct reach {
    ag_tensor *t;
    const float *g;
} reach;

/* A version a node saved and the version it is copied from when the node's forward ran
 * again (refresh, below). */
typedef struct vcopy {
    uint64_t *saved;
    const uint64_t *now;
} vcopy;

/* An edge of the tiled program from a node to an input of one element: the sum carried
 * in lanes is its gradient, added into slot (fresh: written). */
typedef struct tedge {
    const double *lanes;
    float *slot;
    bool fresh;
} tedge;

/* The tiled program (below). */
typedef struct tiles {
    int64_t n;           /* elements of loss's input */
    ag_tensor **tensors; /* the tensors of n elements, windowed a tile at a time */
    float **data;        /* ... and their own data */
    size_t ntensors;
    ag_tensor **takers; /* those of them that take a gradient, */
    float *grads;       /* ... a tile of it each */
    size_t ntakers;
    tedge *edges; /* the edges to inputs of one element, in the pass's order */
    size_t nedges;
    ag_tensor **ones; /* the takers of one element (loss first), */
    float **slots;    /* ... and their gradients */
    size_t nones;
    double *lanes; /* the sums: 2 AG__LANES per node, then loss's */
} tiles;

struct ag_replay {
    ag_tensor *loss;
    uint64_t serial;   /* loss's: a released graph is told from a live one */
    ag_tensor **nodes; /* the recorded tensors loss depends on, oldest first */
    size_t nnodes;
    ag_tensor **takers; /* every tensor the pass gives a gradient: loss, nodes' inputs */
    size_t ntakers;
    float *grads; /* their gradient buffers, one after another */
    size_t nfloats;
    ag_tensor **inputs; /* the leaves each run takes new values for */
    int ninputs;
    sstep *steps; /* the scalar program, one step per node; NULL: none */
    sedge *edges; /* ... and its backward, at most two edges a node */
    size_t nedges;
    reach *reached; /* the takers a gradient reaches in either program, */
    reach *keep;    /* ... and those of them that keep it, at this run (grads_ready) */
    size_t nreached, nkeep;
    vcopy *versions; /* what either program's refresh copies */
    size_t nversions;
    tiles tiles; /* the tiled program; tiles.tensors NULL: none */
};

static ag__live replays; /* every live replay, so a freed one passed again is reported */

bool ag__no_replay(ag_tensor *out) { return AG__UNUSED(out), false; }

static bool listed(ag_tensor *const *ts, size_t n, const ag_tensor *t)
{
    for (size_t i = 0; i < n; i++)
        if (ts[i] == t) return true;
    return false;
}

/* Whether the graph (its tensors ts) can be replayed with these inputs; else the error.
 * Checked before anything is kept. */
static bool program_check(ag_tensor *const *ts, size_t n, ag_tensor *const *inputs, int ninputs)
{
    char s[AG__SHAPE_STR];
    for (int k = 0; k < ninputs; k++) {
        if (!ag__check_at(inputs[k], "replay_new", "inputs", k)) return false;
        if (node(inputs[k])->op) {
            ag__error("replay_new: inputs[%d] (%s) was made by %s: the inputs are leaves "
                      "of the graph, whose values each run replaces",
                      k, ag__tensor_str(s, inputs[k]), ag__ops[node(inputs[k])->op].grad_fn);
            return false;
        }
        if (!listed(ts, n, inputs[k])) {
            ag__error("replay_new: inputs[%d] (%s) is not in the graph of loss", k,
                      ag__tensor_str(s, inputs[k]));
            return false;
        }
        for (int j = 0; j < k; j++)
            if (inputs[j] == inputs[k]) {
                ag__error("replay_new: inputs[%d] and inputs[%d] are the same tensor", j, k);
                return false;
            }
    }
    /* A leaf computed by an unrecorded op after the oldest input or parameter may have
     * been computed from them: a replay would read its old values. */
    uint64_t oldest = UINT64_MAX;
    for (int k = 0; k < ninputs; k++)
        if (node(inputs[k])->serial < oldest) oldest = node(inputs[k])->serial;
    for (size_t i = 0; i < n; i++)
        if (!node(ts[i])->op && ts[i]->requires_grad && node(ts[i])->serial < oldest)
            oldest = node(ts[i])->serial;
    for (size_t i = 0; i < n; i++) {
        const ag_tensor *t = ts[i];
        int op = node(t)->op;
        if (op && ag__ops[op].forward == ag__no_replay) {
            ag__error("replay_new: the graph of loss holds %s (a tensor of shape %s), which a "
                      "replay cannot run yet; ag_backward can",
                      ag_grad_fn_name(t), ag__tensor_str(s, t));
            return false;
        }
        if (op || t->requires_grad || !(node(t)->flags & AG__F_DERIVED) || node(t)->serial < oldest)
            continue;
        if (!listed(inputs, (size_t)ninputs, t)) {
            ag__error("replay_new: the graph of loss reads a tensor of shape %s that an unrecorded "
                      "op (under no_grad, on data only, a comparison, argmax) computed after its "
                      "inputs or parameters were made, maybe from them; a replay cannot compute it "
                      "again: give it as an input, with its new values at each run",
                      ag__tensor_str(s, t));
            return false;
        }
    }
    return true;
}

/* The program: nodes oldest first (ts, the graph in creation order, is reordered), the
 * takers of a gradient and their buffers. */
static bool program_make(ag_replay *r, ag_tensor **ts, size_t n)
{
    size_t nodes = 0;
    for (size_t i = 0; i < n; i++)
        if (node(ts[i])->op) ts[nodes++] = ts[i];
    r->nodes = ag__malloc((nodes ? nodes : 1) * sizeof *r->nodes);
    r->takers = ag__malloc(n * sizeof *r->takers);
    if (!r->nodes || !r->takers) return false;
    memcpy(r->nodes, ts, nodes * sizeof *r->nodes);
    r->nnodes = nodes;
    /* loss and every input a node gives a gradient to, each once (SET_ASIDE marks them) */
    node(r->loss)->flags |= AG__F_SET_ASIDE;
    r->takers[r->ntakers++] = r->loss;
    for (size_t i = nodes; i-- > 0;) {
        ag_tensor *const *xs;
        int count = ag__inputs(r->nodes[i], &xs);
        for (int k = 0; k < count; k++) {
            if (!ag__input_wants(r->nodes[i], k) || (node(xs[k])->flags & AG__F_SET_ASIDE))
                continue;
            node(xs[k])->flags |= AG__F_SET_ASIDE;
            r->takers[r->ntakers++] = xs[k];
        }
    }
    for (size_t i = 0; i < r->ntakers; i++) {
        node(r->takers[i])->flags &= (uint16_t)~AG__F_SET_ASIDE;
        r->nfloats += (size_t)r->takers[i]->numel;
    }
    r->grads = ag__malloc((r->nfloats ? r->nfloats : 1) * sizeof *r->grads);
    return r->grads != NULL;
}

/* The versions refresh copies: each node's inputs' (and the third tensor's it saved) from
 * the tensors whose storage they read. */
static bool versions_make(ag_replay *r)
{
    r->versions = ag__malloc((3 * r->nnodes + 1) * sizeof *r->versions);
    if (!r->versions) return false;
    for (size_t i = 0; i < r->nnodes; i++) {
        ag__node *nd = node(r->nodes[i]);
        for (int k = 0; k < 2 && nd->src[k]; k++)
            r->versions[r->nversions++] =
                (vcopy){&nd->src_version[k], &node(node(nd->src[k])->base)->version};
        if (nd->flags & AG__F_SAVED_EXT) {
            ag__saved *extra = nd->ctx;
            r->versions[r->nversions++] =
                (vcopy){&extra->version, &node(node(extra->t)->base)->version};
        }
    }
    return true;
}

/* Every node's forward ran again: its storage was written in place (its version moves, so
 * that a graph outside the replay's that saved it refuses to backward), its saved values
 * are back, and what it read is as recorded. */
static void refresh(const ag_replay *r)
{
    /* the bounds read once: C must assume that a version written may be one of r's fields */
    ag_tensor *const *t = r->nodes, *const *tend = t + r->nnodes;
    const vcopy *v = r->versions, *vend = v + r->nversions;
    for (; t < tend; t++) {
        if (node(*t)->base == *t) ag__bump_version(*t); /* a view's storage is its base's */
        node(*t)->flags &= (uint16_t)~AG__F_FREED;
    }
    for (; v < vend; v++) *v->saved = *v->now;
}

/* Room for n takers in r->reached and r->keep. */
static bool reach_alloc(ag_replay *r, size_t n)
{
    r->reached = ag__malloc(n * sizeof *r->reached);
    r->keep = ag__malloc(n * sizeof *r->keep);
    return r->reached && r->keep;
}

/* ---- The scalar program ---- */

typedef struct slot {
    uint64_t serial; /* a taker's, to find its slot by */
    size_t i;        /* its index in r->takers, and in r->grads */
} slot;

static int by_serial(const void *x, const void *y)
{
    uint64_t a = ((const slot *)x)->serial, b = ((const slot *)y)->serial;
    return (a > b) - (a < b);
}

/* t's slot index in slots (sorted by serial), or n if t takes no gradient. In a scalar
 * program every node and every input a node gives a gradient is a taker (program_make), so
 * n never comes back; it keeps an index out of the slots if that ever changes. */
static size_t slot_of(const slot *slots, size_t n, const ag_tensor *t)
{
    size_t k = ag__serial_bound(slots, n, sizeof *slots, node(t)->serial);
    return k < n && slots[k].serial == node(t)->serial ? slots[k].i : n;
}

/* The program's steps, when every node and every input holds one element and every op
 * has a scalar form; otherwise none, and the runs take the general path. False when out
 * of memory. (An elementwise result has as many elements as its inputs, or more: only sum
 * and mean read more than they make, from their one input.) */
static bool scalar_make(ag_replay *r)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        const ag_tensor *t = r->nodes[i];
        if (t->numel != 1 || !ag__scalar_of(node(t)->op) || node(t)->src[0]->numel != 1)
            return true;
    }
    size_t n = r->ntakers;
    slot *slots = ag__malloc(n * sizeof *slots);
    bool *has = ag__malloc(n * sizeof *has);
    r->steps = ag__malloc(r->nnodes * sizeof *r->steps);
    r->edges = ag__malloc(2 * r->nnodes * sizeof *r->edges);
    bool ok = slots && has && r->steps && r->edges && reach_alloc(r, n);
    if (ok) {
        for (size_t i = 0; i < n; i++) {
            slots[i] = (slot){node(r->takers[i])->serial, i};
            has[i] = i == 0; /* the seed reaches loss, taker 0 */
        }
        qsort(slots, n, sizeof *slots, by_serial);
        /* newest first, as the pass goes: a slot's first gradient is fresh */
        for (size_t i = r->nnodes; i-- > 0;) {
            ag_tensor *t = r->nodes[i];
            const ag__node *nd = node(t);
            const ag__scalar_op *op = ag__scalar_of(nd->op);
            sstep *s = &r->steps[i];
            *s = (sstep){.f = op->f,
                         .y = t->data,
                         .a = nd->src[0]->data,
                         .b = nd->src[1] ? nd->src[1]->data : &nd->arg.number};
            size_t gy = slot_of(slots, n, t);
            for (int k = 0; k < 2 && gy < n && has[gy]; k++) {
                if (!nd->src[k] || !ag__wants(t, k)) continue;
                size_t j = slot_of(slots, n, nd->src[k]);
                r->edges[r->nedges++] = (sedge){op->d[k], s, &r->grads[gy], &r->grads[j], !has[j]};
                has[j] = true;
            }
        }
        for (size_t i = 0; i < n; i++) /* every taker holds one element: its slot is grads[i] */
            if (has[i]) r->reached[r->nreached++] = (reach){r->takers[i], &r->grads[i]};
    }
    ag__free(slots);
    ag__free(has);
    return ok;
}

/* Whether every tensor a program (scalar or tiled) gives a gradient to and that keeps it
 * has a ->grad to add into (making one can fail, which the general path reports); lists
 * them in r->keep, from which the scalar program's end adds (the tiled one adds a tile at
 * a time, from its own lists). */
AG__INLINE bool grads_ready(ag_replay *r)
{
    size_t n = 0;
    for (const reach *e = r->reached; e < r->reached + r->nreached; e++) {
        if (!ag__keeps_grad(e->t)) continue;
        if (!e->t->grad) return false;
        r->keep[n++] = *e;
    }
    r->nkeep = n;
    return true;
}

/* The forward and the backward pass of the scalar program; nothing in it can fail. */
static void scalar_run(ag_replay *r)
{
    for (const sstep *s = r->steps; s < r->steps + r->nnodes; s++) *s->y = s->f(*s->a, *s->b);
    refresh(r);
    r->grads[0] = 1.0f; /* d loss / d loss */
    for (const sedge *e = r->edges; e < r->edges + r->nedges; e++) {
        float d = e->d ? e->d(*e->s->a, *e->s->b, *e->s->y, *e->gy) : *e->gy;
        *e->gin = e->fresh ? 0.0f + d : *e->gin + d;
    }
    for (const reach *e = r->keep; e < r->keep + r->nkeep; e++) e->t->grad->data[0] += *e->g;
    ag__pass_visited(r->nreached);
}

/* ---- The tiled program ---- */

/* A graph of elementwise ops on tensors of n elements (and leaves of one, broadcast),
 * whose loss is their sum or mean, is also kept as a tiled program: its run takes the
 * elements a tile at a time, and on each tile runs every node's forward, then the
 * backward pass from the loss, before the next, so that what a node makes is read again
 * while it is in the cache rather than after the whole tensor has gone through. Each op
 * runs its own loops on windows of its tensors (their data and numel narrowed to the
 * tile), so every element takes the same floats as in an eager run: elements do not meet
 * in these ops, and the loss's gradient (1 / n for a mean) does not depend on its value.
 * They meet only in sums, the loss's and those that give an input of one element its
 * gradient; these go on in lanes from tile to tile (AG__SUM_LANES), which adds the same
 * terms in the same order as one sum over all n elements, and are added up at the end in
 * the pass's order. A tile is AG__TILE elements (internal.h), a multiple of AG__LANES. */

/* The tensors of n elements: every node but loss, and their inputs of n elements; and
 * those of them that take a gradient (every taker of n elements, but loss when n is 1). */
static bool tile_tensors(ag_replay *r, tiles *tl)
{
    size_t nodes = r->nnodes - 1, cap = 3 * nodes + 1;
    tl->tensors = ag__malloc(cap * sizeof *tl->tensors);
    tl->data = ag__malloc(cap * sizeof *tl->data);
    tl->takers = ag__malloc(r->ntakers * sizeof *tl->takers);
    if (!tl->tensors || !tl->data || !tl->takers) return false;
    ag_tensor *z = node(r->loss)->src[0];
    for (size_t i = 0; i <= nodes; i++) { /* SET_ASIDE marks those listed, as in program_make */
        ag_tensor *t = i < nodes ? r->nodes[i] : z, *const *xs = NULL;
        int count = i < nodes ? ag__inputs(t, &xs) : 0;
        for (int k = -1; k < count; k++) {
            ag_tensor *x = k < 0 ? t : xs[k];
            if (x->numel != tl->n || (node(x)->flags & AG__F_SET_ASIDE)) continue;
            node(x)->flags |= AG__F_SET_ASIDE;
            tl->data[tl->ntensors] = x->data;
            tl->tensors[tl->ntensors++] = x;
        }
    }
    for (size_t j = 0; j < tl->ntensors; j++)
        node(tl->tensors[j])->flags &= (uint16_t)~AG__F_SET_ASIDE;
    for (size_t j = 1; j < r->ntakers; j++)
        if (r->takers[j]->numel == tl->n) tl->takers[tl->ntakers++] = r->takers[j];
    tl->grads = ag__malloc(((size_t)AG__TILE * tl->ntakers + 1) * sizeof *tl->grads);
    return tl->grads != NULL;
}

/* The takers of one element (loss and the leaves), their slots in r->grads, and the edges
 * to them in the pass's order (newest node first, input 0 then 1), each fresh when it is
 * the first to its taker. */
static bool tile_edges(ag_replay *r, tiles *tl)
{
    size_t nodes = r->nnodes - 1;
    tl->edges = ag__malloc((2 * nodes + 1) * sizeof *tl->edges);
    tl->ones = ag__malloc(r->ntakers * sizeof *tl->ones);
    tl->slots = ag__malloc(r->ntakers * sizeof *tl->slots);
    tl->lanes = ag__malloc((2 * nodes + 1) * AG__LANES * sizeof *tl->lanes);
    bool *has = ag__malloc(r->ntakers * sizeof *has);
    bool ok = tl->edges && tl->ones && tl->slots && tl->lanes && has;
    float *g = r->grads; /* the takers' buffers lie one after another */
    for (size_t j = 0; ok && j < r->ntakers; g += r->takers[j++]->numel)
        if (j == 0 || r->takers[j]->numel != tl->n) {
            has[tl->nones] = j == 0; /* the seed reaches loss */
            tl->ones[tl->nones] = r->takers[j];
            tl->slots[tl->nones++] = g;
        }
    for (size_t i = nodes; ok && i-- > 0;)
        for (int k = 0; k < 2; k++) {
            ag_tensor *x = node(r->nodes[i])->src[k];
            if (!x || !ag__wants(r->nodes[i], k) || x->numel == tl->n) continue;
            size_t j = 0;
            while (tl->ones[j] != x) j++; /* it is a taker: program_make listed it */
            const double *lanes = tl->lanes + (2 * i + (size_t)k) * AG__LANES; /* ag__tile_pass */
            tl->edges[tl->nedges++] = (tedge){lanes, tl->slots[j], !has[j]};
            has[j] = true;
        }
    ag__free(has);
    return ok;
}

/* The tiled program, when every node but loss is an elementwise op (one of a scalar form,
 * but sum and mean) of n elements whose inputs hold n elements or are leaves of one, and
 * loss is their sum or mean; otherwise none. False when out of memory. Every node is
 * reached by the pass: a recorded tensor requires grad, so each of its users recorded an
 * edge to it. */
static bool tile_make(ag_replay *r)
{
    int op = node(r->loss)->op;
    if (r->steps || (op != AG__OP_SUM && op != AG__OP_MEAN)) return true;
    tiles tl = {.n = node(r->loss)->src[0]->numel};
    for (size_t i = 0; i + 1 < r->nnodes; i++) {
        const ag_tensor *t = r->nodes[i];
        int o = node(t)->op;
        if (t->numel != tl.n || !ag__scalar_of(o) || o == AG__OP_SUM || o == AG__OP_MEAN)
            return true;
        for (int k = 0; k < 2; k++) {
            const ag_tensor *x = node(t)->src[k];
            if (x && x->numel != tl.n && (x->numel != 1 || node(x)->op)) return true;
        }
    }
    bool ok = tile_tensors(r, &tl) && tile_edges(r, &tl) && reach_alloc(r, r->ntakers);
    const float *g = r->grads;
    for (size_t j = 0; ok && j < r->ntakers; g += r->takers[j++]->numel)
        r->reached[r->nreached++] = (reach){r->takers[j], g};
    r->tiles = tl; /* destroy frees what was made */
    return ok;
}

/* Narrows the tensors of n elements to the tile of len elements from i0. */
static void window(const tiles *tl, int64_t i0, int64_t len)
{
    for (size_t j = 0; j < tl->ntensors; j++) {
        tl->tensors[j]->data = tl->data[j] + i0;
        tl->tensors[j]->numel = len;
    }
}

/* The forward and the backward pass of the tiled program; nothing in it can fail. */
static AG__OUTLINE void tile_run(ag_replay *r)
{
    const tiles *tl = &r->tiles;
    size_t nodes = r->nnodes - 1;
    ag_tensor *z = node(r->loss)->src[0];
    bool mean = node(r->loss)->op == AG__OP_MEAN;
    float dz = ag__reduce_dx(1.0f, tl->n, mean); /* what reaches each of z's elements */
    double *sum = tl->lanes + 2 * nodes * AG__LANES;
    memset(tl->lanes, 0, (2 * nodes + 1) * AG__LANES * sizeof *tl->lanes);
    for (size_t j = 0; j < tl->ntakers; j++) node(tl->takers[j])->flags |= AG__F_SET_ASIDE;
    for (int64_t i0 = 0; i0 < tl->n; i0 += AG__TILE) {
        int64_t len = tl->n - i0 < AG__TILE ? tl->n - i0 : AG__TILE;
        window(tl, i0, len);
        for (size_t j = 0; j < tl->ntakers; j++) /* a hand-over moved some in the last tile */
            node(tl->takers[j])->gbuf = tl->grads + j * AG__TILE;
        for (size_t i = 0; i < nodes; i++) ag__ops[node(r->nodes[i])->op].forward(r->nodes[i]);
        AG__SUM_LANES(len, sum, z->data[i]);
        bool fresh;
        float *g = ag__grad_buf(z, &fresh); /* fresh: the first gradient of z in the pass */
        AG__ADD_FLAT(fresh, g, len, dz);
        ag__tile_pass(r->nodes, nodes, tl->lanes);
        for (size_t j = 0; j < tl->ntakers; j++) {
            ag_tensor *t = tl->takers[j];
            const float *gt = node(t)->gbuf;
            if (ag__keeps_grad(t)) AG__ADD_FLAT(false, t->grad->data + i0, len, gt[i]);
        }
    }
    window(tl, 0, tl->n);
    for (size_t j = 0; j < tl->ntakers; j++) {
        node(tl->takers[j])->gbuf = NULL;
        node(tl->takers[j])->flags &= (uint16_t)~AG__F_SET_ASIDE;
    }
    double total = 0;
    total += ag__lanes_total(sum);
    r->loss->data[0] = ag__reduce_value(total, tl->n, mean);
    refresh(r);
    /* the inputs of one element: the sums in the pass's order, as ag__accum adds them */
    tl->slots[0][0] = 1.0f; /* d loss / d loss */
    for (const tedge *e = tl->edges; e < tl->edges + tl->nedges; e++)
        ag__add_lanes(e->slot, e->fresh, e->lanes);
    for (size_t j = 0; j < tl->nones; j++)
        if (ag__keeps_grad(tl->ones[j])) tl->ones[j]->grad->data[0] += tl->slots[j][0];
    ag__pass_visited(r->nreached);
}

/* The path r's next run takes: a program, when it has one and every ->grad it adds into
 * exists (and, for the tiled one, the pass has room for every taker); else the general. */
AG__INLINE int next_path(ag_replay *r)
{
    if (r->steps && grads_ready(r)) return AG__REPLAY_SCALAR;
    if (r->tiles.tensors && grads_ready(r) && ag__pass_reserve(r->ntakers)) return AG__REPLAY_TILED;
    return AG__REPLAY_GENERAL;
}
int ag__replay_path(ag_replay *r) { return next_path(r); }

static void destroy(ag_replay *r)
{
    ag__free(r->tiles.tensors);
    ag__free(r->tiles.data);
    ag__free(r->tiles.takers);
    ag__free(r->tiles.grads);
    ag__free(r->tiles.edges);
    ag__free(r->tiles.ones);
    ag__free(r->tiles.slots);
    ag__free(r->tiles.lanes);
    ag__free(r->steps);
    ag__free(r->edges);
    ag__free(r->reached);
    ag__free(r->keep);
    ag__free(r->versions);
    ag__free(r->nodes);
    ag__free(r->takers);
    ag__free(r->grads);
    ag__free(r->inputs);
    ag__free(r);
}

void ag_replay_free(ag_replay *r)
{
    if (!r) return;
    if (!ag__live_check(&replays, r, "replay_free", "replay", "ag_replay_free")) return;
    ag__live_remove(&replays, r);
    destroy(r);
}

ag_replay *ag_replay_new(const ag_tensor *loss, ag_tensor *const *inputs, int n)
{
    char s[AG__SHAPE_STR];
    if (!ag__check(loss, "replay_new", "loss")) return NULL;
    if (n < 0 || (n > 0 && !inputs))
        return ag__error("replay_new: %d inputs given from %s", n, inputs ? "a list" : "NULL");
    if (!node(loss)->op)
        return ag__error("replay_new: loss (%s) was made by no recorded op: there is no graph to "
                         "replay",
                         ag__tensor_str(s, loss));
    if (loss->numel != 1)
        return ag__error("replay_new: grad can be implicitly created only for scalar outputs "
                         "(loss has shape %s)",
                         ag__tensor_str(s, loss));
    ag_tensor **ts = NULL;
    size_t nts = 0;
    if (!ag__graph_tensors(loss, "replay_new", &ts, &nts)) return NULL;
    if (!program_check(ts, nts, inputs, n)) {
        ag__free(ts);
        return NULL;
    }
    ag_replay *r = ag__malloc(sizeof *r);
    if (r) *r = (ag_replay){.loss = (ag_tensor *)loss, .serial = node(loss)->serial, .ninputs = n};
    bool ok = r && (r->inputs = ag__malloc((n ? (size_t)n : 1) * sizeof *r->inputs)) &&
              program_make(r, ts, nts) && versions_make(r) && scalar_make(r) && tile_make(r) &&
              ag__live_add(&replays, r);
    ag__free(ts);
    if (!ok) {
        if (r) destroy(r);
        return ag__error("replay_new: out of memory keeping the graph of loss (%zu tensors)", nts);
    }
    for (int k = 0; k < n; k++) r->inputs[k] = inputs[k];
    return r;
}

/* Everything run reads is still what the replay was made from, and values fit. */
static bool run_check(const ag_replay *r, ag_tensor *const *values, int n)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    if (ag__deferring()) {
        ag__error("replay_run: " AG__INSIDE);
        return false;
    }
    if (ag__watching) {
        ag__error("replay_run: the backward trace and anomaly mode watch ag_backward, not a "
                  "replay: turn them off, or run the step eagerly");
        return false;
    }
    bool live = ag__quick_live(r->loss) || ag__liveness_of(r->loss) == AG__LIVE;
    if (!live || node(r->loss)->serial != r->serial) {
        ag__error("replay_run: the replay's graph was released (ag_release freed its loss): "
                  "record the step again and make a new replay");
        return false;
    }
    if (n != r->ninputs || (n > 0 && !values)) {
        ag__error("replay_run: the replay takes %d inputs; %d given%s", r->ninputs, n,
                  n > 0 && !values ? " from NULL" : "");
        return false;
    }
    /* The inputs are leaves of the graph, older than loss: a live loss keeps them live. */
    for (int k = 0; k < n; k++) {
        if (!ag__check_at(values[k], "replay_run", "values", k)) return false;
        const ag_tensor *x = r->inputs[k], *v = values[k];
        if (!ag__same_shape(v, x)) {
            ag__error("replay_run: values[%d] has shape %s, but input %d of the replay "
                      "was recorded with shape %s",
                      k, ag__tensor_str(s1, v), k, ag__tensor_str(s2, x));
            return false;
        }
    }
    return true;
}

bool ag_replay_run(ag_replay *r, ag_tensor *const *values, int n)
{
    if (!ag__live_check(&replays, r, "replay_run", "replay", "ag_replay_free")) return false;
    if (!run_check(r, values, n)) return false;
    for (int k = 0; k < n; k++) {
        ag_tensor *x = r->inputs[k];
        const float *v = values[k]->data;
        if (x->numel == 1) /* a sample of the SGD lab: no call */
            x->data[0] = v[0];
        else if (v != x->data)
            memmove(x->data, v, (size_t)x->numel * sizeof *x->data);
        ag__bump_version(x);
    }
    switch (next_path(r)) {
    case AG__REPLAY_SCALAR:
        scalar_run(r);
        return true;
    case AG__REPLAY_TILED:
        tile_run(r);
        return true;
    default:
        break; /* the general path, below */
    }
    /* a refused run moves no saved version: the graph, part new, refuses an eager backward */
    for (size_t i = 0; i < r->nnodes; i++)
        if (!ag__ops[node(r->nodes[i])->op].forward(r->nodes[i]))
            return false; /* its check said why */
    refresh(r);
    float *g = r->grads; /* written afresh by each pass, as the scratch buffers are */
    for (size_t i = 0; i < r->ntakers; i++) {
        node(r->takers[i])->gbuf = g;
        node(r->takers[i])->flags |= AG__F_SET_ASIDE;
        g += r->takers[i]->numel;
    }
    ag__defer_begin();
    bool ok = ag__replay_pass(r->loss, r->nodes, r->nnodes);
    for (size_t i = 0; i < r->ntakers; i++) {
        node(r->takers[i])->gbuf = NULL;
        node(r->takers[i])->flags &= (uint16_t)~AG__F_SET_ASIDE;
    }
    ag__defer_end();
    return ok;
}

void ag__replay_reset(void)
{
    while (replays.n > 0) ag_replay_free(replays.p[replays.n - 1]);
    ag__live_clear(&replays);
}
