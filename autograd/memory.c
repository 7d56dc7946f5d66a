/* Memory: every byte agrad takes from the system, the arena and tape that own every
 * tensor, marks and release, the pool that gradients live in, and the check that tells
 * a live tensor from a released one without reading memory agrad no longer holds.
 *
 * The rules this file keeps:
 *   - every system allocation goes through one hook (ag_set_allocator), and every
 *     failure is returned to the caller, who reports it with the op and the shape;
 *   - memory that ever held a tensor header stays agrad's until ag_shutdown (the
 *     arena rewinds, the grad pool recycles, neither returns memory to the system),
 *     so ag__liveness_of may read a header at any address inside that memory;
 *   - in checked mode released memory is not reused until a quarantine window of
 *     bytes has passed, so a released tensor's header still says "dead" when a stale
 *     pointer to it comes back; under AddressSanitizer released memory is poisoned. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef AG__ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define IS_POISONED(p) __asan_address_is_poisoned(p)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define IS_POISONED(p) ((void)(p), 0)
#endif

#ifndef AG_CHECKED_DEFAULT
#define AG_CHECKED_DEFAULT 0
#endif

/* ------------------------------------------------------------------------------------ */
/* The allocation hook                                                                   */

static void *system_realloc(void *p, size_t size, void *userdata)
{
    AG__UNUSED(userdata);
    if (size == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, size);
}

static struct {
    ag_realloc_fn fn;
    void *userdata;
    size_t allocs; /* calls that asked for memory */
} sys = {system_realloc, NULL, 0};

void ag_set_allocator(ag_realloc_fn fn, void *userdata)
{
    sys.fn = fn ? fn : system_realloc;
    sys.userdata = fn ? userdata : NULL;
}

void *ag__realloc(void *p, size_t size)
{
    if (size == 0) size = 1; /* size 0 means free to the hook */
    sys.allocs++;
    return sys.fn(p, size, sys.userdata);
}

void *ag__malloc(size_t size) { return ag__realloc(NULL, size); }

void ag__free(void *p)
{
    if (p) sys.fn(p, 0, sys.userdata);
}

void ag_free(void *p) { ag__free(p); }

void *ag__grow(void *items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return items;
    size_t n = *cap > 8 ? *cap : 8;
    while (n < need) n = n > SIZE_MAX / 2 ? need : n * 2;
    if (n > SIZE_MAX / size) return NULL;
    void *p = ag__realloc(items, n * size);
    if (p) *cap = n;
    return p;
}

bool ag__live_add(ag__live *l, void *p)
{
    void **grown = ag__grow(l->p, &l->cap, l->n + 1, sizeof *l->p);
    if (!grown) return false;
    l->p = grown;
    l->p[l->n++] = p;
    return true;
}

bool ag__live_has(const ag__live *l, const void *p)
{
    for (size_t i = l->n; p && i-- > 0;)
        if (l->p[i] == p) return true;
    return false;
}

bool ag__live_check(const ag__live *l, const void *p, const char *op, const char *kind,
                    const char *freer)
{
    if (ag__live_has(l, p)) return true;
    if (p)
        ag__error("%s: the %s is not a live %s (freed by %s or ag_shutdown, or not made by agrad)",
                  op, kind, kind, freer);
    else if (!ag_last_error()[0])
        ag__error("%s: the %s is NULL", op, kind);
    return false;
}

void ag__live_remove(ag__live *l, const void *p)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i] == p) {
            l->p[i] = l->p[--l->n];
            return;
        }
}

void ag__live_clear(ag__live *l)
{
    ag__free(l->p);
    *l = (ag__live){0};
}

/* ------------------------------------------------------------------------------------ */
/* Checked mode                                                                          */

static struct {
    int checked;   /* -1: not decided yet (the environment, then the build, decide) */
    size_t window; /* quarantine, bytes; 0: not read from the environment yet */
} mode = {-1, 0};

bool ag_is_checked(void)
{
    if (mode.checked < 0) {
        const char *env = getenv("AGRAD_CHECKED");
        mode.checked = env && *env ? (*env != '0') : AG_CHECKED_DEFAULT;
    }
    return mode.checked;
}

bool ag_set_checked(bool on)
{
    bool was = ag_is_checked();
    mode.checked = on;
    return was;
}

static size_t quarantine_window(void)
{
    if (mode.window == 0) {
        const char *env = getenv("AGRAD_QUARANTINE_MB");
        long mb = env ? strtol(env, NULL, 10) : 0;
        mode.window = (mb > 0 ? (size_t)mb : 256) << 20;
    }
    return ag_is_checked() ? mode.window : 0;
}

/* ------------------------------------------------------------------------------------ */
/* Arenas: bump allocators over chunks that are kept once allocated                      */

typedef struct chunk {
    char *base;
    size_t size;
} chunk;

/* A position in an arena: chunk index, then offset. Positions grow with allocation
 * order, so tensors' positions grow with their place on the tape. */
typedef struct apos {
    size_t chunk, off;
} apos;

typedef struct arena {
    chunk *chunks;
    size_t n, cap;
    apos at;           /* the next allocation starts here (at.chunk < n once allocated) */
    size_t bytes;      /* sum of the chunks' sizes */
    chunk hot;         /* a copy of chunks[at.chunk], for the quick test of ag__check */
    ag__chunk *mirror; /* where ag__check's inline test reads hot, or NULL */
} arena;

enum { CHUNK_MIN = 1 << 20, CHUNK_STEP_MAX = 1 << 28, ALIGN = AG__ALIGN };

static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

#define HEADER AG__HEADER

/* A new chunk of at least size bytes, put right after the current one: chunks after it
 * hold nothing yet, so the order of positions is kept. Chunks grow with the arena (up to
 * CHUNK_STEP_MAX at a time), so that an arena holds few of them. */
static bool arena_add_chunk(arena *a, size_t size)
{
    size_t grow = a->bytes < CHUNK_MIN ? CHUNK_MIN : a->bytes;
    if (grow > CHUNK_STEP_MAX) grow = CHUNK_STEP_MAX;
    if (size < grow) size = grow;
    chunk *grown = ag__grow(a->chunks, &a->cap, a->n + 1, sizeof(chunk));
    if (!grown) return false;
    a->chunks = grown;
    char *base = ag__malloc(size);
    if (!base) return false;
    POISON(base, size);
    size_t at = a->n ? a->at.chunk + 1 : 0;
    memmove(a->chunks + at + 1, a->chunks + at, (a->n - at) * sizeof(chunk));
    a->chunks[at] = (chunk){base, size};
    a->n++;
    a->bytes += size;
    return true;
}

ag__chunk ag__hot_chunks[2];
/* headers, storage and ctx of every tensor on the tape */
static arena tensors = {.mirror = &ag__hot_chunks[0]};

/* Moves the arena's position to at. */
static void arena_set(arena *a, apos at)
{
    a->at = at;
    a->hot = a->chunks[at.chunk];
    if (a->mirror) *a->mirror = (ag__chunk){a->hot.base, a->hot.size};
}

/* arena_alloc when the current chunk is full: the next chunk, if there is one and it is
 * large enough, else a new one. */
AG__RARE static void *arena_alloc_next(arena *a, size_t size)
{
    size_t next = a->n ? a->at.chunk + 1 : 0;
    if ((next == a->n || a->chunks[next].size < size) && !arena_add_chunk(a, size)) return NULL;
    arena_set(a, (apos){next, size});
    UNPOISON(a->chunks[next].base, size);
    return a->chunks[next].base;
}

/* size bytes, ALIGN-aligned; NULL when the system refuses (nothing is reported). */
static inline void *arena_alloc(arena *a, size_t size)
{
    if (size > SIZE_MAX - ALIGN) return NULL;
    size = align_up(size ? size : 1);
    if (size > a->hot.size - a->at.off) return arena_alloc_next(a, size);
    char *p = a->hot.base + a->at.off;
    a->at.off += size;
    UNPOISON(p, size);
    return p;
}

/* The index of the chunk holding p, or a->n. */
static size_t arena_find(const arena *a, const void *p)
{
    const char *c = p;
    for (size_t i = a->n; i-- > 0;)
        if (c >= a->chunks[i].base && c < a->chunks[i].base + a->chunks[i].size) return i;
    return a->n;
}

static apos arena_pos(const arena *a, const void *p)
{
    size_t i = arena_find(a, p);
    return (apos){i, (size_t)((const char *)p - a->chunks[i].base)};
}

/* Bytes between position from and the arena's current position (from <= current). */
static size_t arena_span(const arena *a, apos from)
{
    if (from.chunk == a->at.chunk) return a->at.off - from.off;
    size_t n = a->chunks[from.chunk].size - from.off + a->at.off;
    for (size_t i = from.chunk + 1; i < a->at.chunk; i++) n += a->chunks[i].size;
    return n;
}

/* Poisons everything from position from up to the current position. */
static void arena_poison_from(const arena *a, apos from)
{
    for (size_t i = from.chunk; i <= a->at.chunk && i < a->n; i++) {
        size_t lo = i == from.chunk ? from.off : 0;
        size_t hi = i == a->at.chunk ? a->at.off : a->chunks[i].size;
        if (hi > lo) POISON(a->chunks[i].base + lo, hi - lo);
    }
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++) {
        UNPOISON(a->chunks[i].base, a->chunks[i].size);
        ag__free(a->chunks[i].base);
    }
    ag__free(a->chunks);
    ag__chunk *mirror = a->mirror;
    memset(a, 0, sizeof *a);
    a->mirror = mirror;
    if (mirror) *mirror = (ag__chunk){NULL, 0};
}

/* ------------------------------------------------------------------------------------ */
/* The tape: every live tensor, in creation order                                         */

static arena scratch; /* backward-pass buffers */

static struct {
    ag_tensor **t;
    size_t len, cap;
} tape;

/* Serial numbers: every tensor gets the next one, never reused, not even across
 * ag_shutdown. A mark remembers the next serial at its making, so it can tell whether
 * the tensors below it are still the ones that were there. */
static uint64_t next_serial = 1, session_start = 1;

/* Checked mode: memory released at tape position pos, from arena position start, waiting
 * in quarantine. Positions are increasing; a release at or below pos merges the hole. */
typedef struct hole {
    size_t pos;
    apos start;
} hole;

static struct {
    hole *h;
    size_t n, cap;
} holes;

bool ag__scratch_fail; /* an ag__scratch since the last reset returned NULL */

AG__RARE static ag_tensor *alloc_tensor_slow(const char *op, int ndim, const int64_t *shape,
                                             int64_t numel, const ag_tensor *base, float *data);

/* The bytes a tensor takes on the tape: its header, and its storage unless it is a view
 * (data); 0 when they would not fit a size_t. */
static inline size_t tensor_bytes(int64_t numel, const float *data)
{
    if ((size_t)numel > (SIZE_MAX - HEADER - ALIGN) / sizeof(float)) return 0;
    return data ? HEADER : align_up(HEADER + (size_t)numel * sizeof(float));
}

/* The common case makes no call, so that it saves no registers: the rare one (the tape
 * or the chunk is full) makes room and comes back. */
ag_tensor *ag__alloc_tensor(const char *op, int ndim, const int64_t *shape, int64_t numel,
                            const ag_tensor *base, float *data)
{
    size_t size = tensor_bytes(numel, data);
    if (tape.len == tape.cap || !size || size > tensors.hot.size - tensors.at.off)
        return alloc_tensor_slow(op, ndim, shape, numel, base, data);
    ag_tensor *t = (ag_tensor *)(tensors.hot.base + tensors.at.off);
    tensors.at.off += size;
    UNPOISON(t, size);
    /* Every field is written once, in order: a leaf with no gradient, no record, no
     * arguments. */
    *t = (ag_tensor){
        .data = data ? data : (float *)((char *)t + HEADER), .numel = numel, .ndim = ndim};
    ag__node *r = node(t);
    r->magic = AG__MAGIC_LIVE;
    r->op = 0;
    r->flags = 0;
    r->version = 0;
    r->src_version[0] = r->src_version[1] = 0;
    r->src[0] = r->src[1] = NULL;
    r->base = base ? node(base)->base : t;
    r->gbuf = NULL;
    r->serial = next_serial++;
    r->ctx = NULL;
    memset(&r->arg, 0, sizeof r->arg);
    int64_t *d = t->shape; /* sizes past ndim are 1 */
    d[0] = ndim > 0 ? shape[0] : 1;
    d[1] = ndim > 1 ? shape[1] : 1;
    d[2] = ndim > 2 ? shape[2] : 1;
    d[3] = ndim > 3 ? shape[3] : 1;
    tape.t[tape.len++] = t;
    return t;
}

AG__RARE static ag_tensor *alloc_tensor_slow(const char *op, int ndim, const int64_t *shape,
                                             int64_t numel, const ag_tensor *base, float *data)
{
    size_t size = tensor_bytes(numel, data);
    bool room = tape.len < tape.cap;
    if (!room) {
        ag_tensor **grown = ag__grow(tape.t, &tape.cap, tape.len + 1, sizeof *tape.t);
        if (grown) tape.t = grown;
        room = grown != NULL;
    }
    if (room && size && size > tensors.hot.size - tensors.at.off) {
        room = arena_alloc_next(&tensors, size) != NULL; /* the next chunk, its room taken */
        if (room) tensors.at.off = 0; /* ... and given back, for the common case to take */
    }
    if (room && size) return ag__alloc_tensor(op, ndim, shape, numel, base, data);
    char s[AG__SHAPE_STR];
    return ag__error("%s: out of memory allocating a tensor of shape %s (%lld bytes of data)", op,
                     ag__shape_str(s, ndim, shape), data ? 0LL : (long long)numel * 4);
}

void *ag__ctx_alloc(size_t bytes) { return arena_alloc(&tensors, bytes); }

ag_mark ag_mark_now(void) { return (ag_mark){tape.len, next_serial}; }

/* A mark is stale when the tensors below it are no longer those that were there when it
 * was made: the tape was released below it (and regrew), or agrad was shut down. */
static bool mark_stale(ag_mark m)
{
    if (m.private_serial < session_start) return true;
    return m.private_pos > 0 && m.private_pos <= tape.len &&
           node(tape.t[m.private_pos - 1])->serial >= m.private_serial;
}

static void grad_free(ag_tensor *g);

static void release_tape(ag_mark mark)
{
    size_t from = mark.private_pos;
    if (from >= tape.len || mark_stale(mark)) return;
    for (size_t i = tape.len; i-- > from;) {
        ag_tensor *t = tape.t[i];
        if (t->grad) grad_free(t->grad);
        node(t)->magic = AG__MAGIC_DEAD;
    }
    /* Every tensor's header is its first allocation, so the released memory starts at
     * the first released header, or lower where an earlier release left a hole. */
    apos start = arena_pos(&tensors, tape.t[from]);
    while (holes.n && holes.h[holes.n - 1].pos >= from) start = holes.h[--holes.n].start;
    tape.len = from;
    arena_poison_from(&tensors, start);
    if (arena_span(&tensors, start) <= quarantine_window()) {
        /* Quarantined. If the hole cannot be recorded, its memory stays out of use until
         * ag_shutdown: checked mode's promise does not depend on memory to keep it. */
        hole *grown = ag__grow(holes.h, &holes.cap, holes.n + 1, sizeof *holes.h);
        if (grown) {
            holes.h = grown;
            holes.h[holes.n++] = (hole){from, start};
        }
        return;
    }
    arena_set(&tensors, start);
}

/* ------------------------------------------------------------------------------------ */
/* Gradients                                                                              */
/* A leaf's ->grad is made by a backward pass, after the loop's mark, yet lives as long   */
/* as the leaf, so it cannot live on the tape; a module's parameters live as long as the  */
/* module, and come from the same pool. Grads come from a pool of blocks whose            */
/* sizes are powers of two, carved from an arena that never rewinds and recycled through  */
/* one free list per size. A freed block keeps a dead header, linked through ->data with  */
/* its size class in ->numel, so a held pointer to it is caught like a released tensor.   */

static size_t grad_bytes(int64_t numel) { return HEADER + (size_t)numel * sizeof(float); }
/* A block is a power of two of at least grad_bytes(1) bytes: with a header of more than
 * 128 bytes, at least 256, so past a small tensor's storage there is as much room again
 * (ag__has_spare_room), as on the tape. */
_Static_assert(HEADER > 128 && HEADER + ALIGN <= 256, "grad pool blocks and spare room");

static struct {
    arena mem;
    ag_tensor *free[64];   /* free blocks by size class (log2 of the block's bytes) */
    ag_tensor *quarantine; /* checked mode: freed blocks not yet back on a free list */
    size_t quarantine_bytes;
    size_t persistent; /* live persistent tensors (parameters) */
} grads = {.mem = {.mirror = &ag__hot_chunks[1]}};

/* Persistent tensors freed while the tape still used them (a module freed before the
 * graph of its last forward pass was released). */
static struct {
    ag_tensor **t;
    size_t n, cap;
} orphans;

static int size_class(size_t bytes)
{
    int c = 5; /* 32 bytes: the arena's alignment */
    while (((size_t)1 << c) < bytes) c++;
    return c;
}

/* Links dead block g onto list. */
static void block_push(ag_tensor **list, ag_tensor *g)
{
    g->data = (float *)*list;
    *list = g;
    POISON(g, (size_t)1 << g->numel);
}

static ag_tensor *block_pop(ag_tensor **list)
{
    ag_tensor *g = *list;
    if (!g) return NULL;
    UNPOISON(g, sizeof *g);
    *list = (ag_tensor *)g->data;
    UNPOISON(g, (size_t)1 << g->numel);
    return g;
}

/* A live block of the pool holding a tensor of the given shape, zeros, or NULL. */
static ag_tensor *pool_alloc(int ndim, const int64_t *shape, int64_t numel, uint16_t flags)
{
    int c = size_class(grad_bytes(numel));
    if (c >= 63) return NULL;
    ag_tensor *g = block_pop(&grads.free[c]);
    if (!g) g = arena_alloc(&grads.mem, (size_t)1 << c);
    if (!g) return NULL;
    *g = (ag_tensor){.data = (float *)((char *)g + HEADER), .numel = numel, .ndim = ndim};
    *node(g) = (ag__node){.magic = AG__MAGIC_LIVE, .flags = flags, .base = g};
    memcpy(g->shape, shape, sizeof g->shape);
    memset(g->data, 0, (size_t)numel * sizeof(float));
    return g;
}

ag_tensor *ag__new_grad(const ag_tensor *t)
{
    return pool_alloc(t->ndim, t->shape, t->numel, AG__F_GRAD);
}

ag_tensor *ag__alloc_persistent(int ndim, const int64_t *shape, int64_t numel)
{
    int64_t padded[AG_MAX_DIMS];
    for (int k = 0; k < AG_MAX_DIMS; k++) padded[k] = k < ndim ? shape[k] : 1;
    ag_tensor *t = pool_alloc(ndim, padded, numel, 0);
    if (!t) return NULL;
    node(t)->serial = next_serial++;
    grads.persistent++;
    return t;
}

static void grad_free(ag_tensor *g)
{
    int c = size_class(grad_bytes(g->numel));
    node(g)->magic = AG__MAGIC_DEAD;
    g->numel = c;
    if (!ag_is_checked()) {
        block_push(&grads.free[c], g);
        return;
    }
    /* Checked mode: no reuse until the quarantine holds more than its window; then all
     * of it goes back to the free lists at once. */
    block_push(&grads.quarantine, g);
    grads.quarantine_bytes += (size_t)1 << c;
    if (grads.quarantine_bytes <= quarantine_window()) return;
    ag_tensor *b;
    while ((b = block_pop(&grads.quarantine))) block_push(&grads.free[b->numel], b);
    grads.quarantine_bytes = 0;
}

void ag__free_grad(ag_tensor *t)
{
    if (t->grad) grad_free(t->grad);
    t->grad = NULL;
}

/* Whether live tensor t refers to x: as its storage, as an input of its op, or as a tensor
 * its backward reads (where's condition). */
static bool refers_to(const ag_tensor *t, const ag_tensor *x)
{
    const ag__node *n = node(t);
    if (n->base == x || n->src[0] == x || n->src[1] == x) return true;
    if ((n->flags & AG__F_SAVED_EXT) && ((const ag__saved *)n->ctx)->t == x) return true;
    if (n->op == AG__OP_CAT || n->op == AG__OP_STACK) {
        ag_tensor *const *kept = n->ctx;
        for (int64_t i = 0; i < n->arg.join.count; i++)
            if (kept[i] == x) return true;
    }
    return false;
}

static bool in_use(const ag_tensor *x)
{
    /* The tape is in creation order and a user is newer than what it uses. */
    for (size_t i = tape.len; i-- > 0 && node(tape.t[i])->serial > node(x)->serial;)
        if (refers_to(tape.t[i], x)) return true;
    return false;
}

static void persistent_free(ag_tensor *t)
{
    ag__free_grad(t);
    grad_free(t);
    grads.persistent--;
}

void ag__free_persistent(ag_tensor *t)
{
    if (!in_use(t)) {
        persistent_free(t);
        return;
    }
    /* Still used by the graph of a forward pass: freed by the release that frees its
     * users. If it cannot be recorded, it stays until ag_shutdown. */
    ag_tensor **grown = ag__grow(orphans.t, &orphans.cap, orphans.n + 1, sizeof *grown);
    if (!grown) return;
    orphans.t = grown;
    orphans.t[orphans.n++] = t;
}

/* Frees the orphans that no live tensor uses any more (after a release). */
static void free_unused_orphans(void)
{
    size_t kept = 0;
    for (size_t i = 0; i < orphans.n; i++) {
        if (in_use(orphans.t[i]))
            orphans.t[kept++] = orphans.t[i];
        else
            persistent_free(orphans.t[i]);
    }
    orphans.n = kept;
}

void ag_release(ag_mark mark)
{
    release_tape(mark);
    if (orphans.n) free_unused_orphans();
    ag__names_prune();
    ag__sites_prune(mark.private_serial);
}

/* ------------------------------------------------------------------------------------ */
/* Which pointers are live tensors                                                       */

/* Whether a tensor header at t would lie inside memory agrad holds (where reading it is
 * safe), and where. */
static int held_by(const ag_tensor *t)
{
    const arena *in[2] = {&tensors, &grads.mem};
    for (int k = 0; k < 2; k++) {
        size_t i = arena_find(in[k], t);
        if (i == in[k]->n) continue;
        const chunk *c = &in[k]->chunks[i];
        size_t off = (size_t)((const char *)t - c->base);
        return off % ALIGN == 0 && off + HEADER <= c->size ? k + 1 : 0;
    }
    return 0;
}

/* Whether t lies at a header position in the chunk a allocates from. */
static inline bool in_chunk(const arena *a, const ag_tensor *t)
{
    size_t off = (size_t)((uintptr_t)t - (uintptr_t)a->hot.base);
    return off < a->hot.size && a->hot.size - off >= HEADER && off % ALIGN == 0;
}

/* Where a tensor header at t would lie: 1 on the tape, 2 in the grad pool (gradients and
 * parameters), 0 in no memory agrad holds. */
static inline int where(const ag_tensor *t)
{
    /* Most arguments are recent tensors or gradients, in the chunks new ones come from. */
    return in_chunk(&tensors, t) ? 1 : in_chunk(&grads.mem, t) ? 2 : held_by(t);
}

static inline ag__liveness liveness(const ag_tensor *t)
{
    if (!t) return AG__NULL;
    int in = where(t);
    if (!in) return AG__NOT_HELD;
    if (IS_POISONED(&node(t)->magic) || node(t)->magic != AG__MAGIC_LIVE)
        return in == 1 ? AG__RELEASED : AG__RELEASED_GRAD;
    return AG__LIVE;
}

ag__liveness ag__liveness_of(const ag_tensor *t) { return liveness(t); }

bool ag__check_slow(const ag_tensor *t, const char *op, const char *role)
{
    ag__liveness why = liveness(t);
    return why == AG__LIVE || ag__check_failed(why, op, role, -1);
}

bool ag__check_at_slow(const ag_tensor *t, const char *op, const char *list, int k)
{
    ag__liveness why = liveness(t);
    return why == AG__LIVE || ag__check_failed(why, op, list, k);
}

size_t ag__serial_bound(const void *items, size_t n, size_t size, uint64_t serial)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s;
        memcpy(&s, (const char *)items + mid * size, sizeof s);
        if (s < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool ag__check_list(ag_tensor *const *t, int n, const char *op, const char *list)
{
    for (int k = 0; k < n; k++)
        if (!ag__check_at(t[k], op, list, k)) return false;
    return true;
}

bool ag__check_serial_at(const ag_tensor *t, uint64_t serial, const char *op, const char *list,
                         int k)
{
    ag__liveness why = liveness(t);
    if (why == AG__LIVE && node(t)->serial != serial)
        why = where(t) == 1 ? AG__RELEASED : AG__RELEASED_GRAD; /* as liveness would say */
    return why == AG__LIVE || ag__check_failed(why, op, list, k);
}

/* ------------------------------------------------------------------------------------ */
/* Scratch memory for one backward pass                                                   */

void *ag__scratch(size_t bytes)
{
    void *p = arena_alloc(&scratch, bytes);
    if (!p) ag__scratch_fail = true;
    return p;
}

void ag__scratch_reset(void)
{
    if (scratch.n) arena_set(&scratch, (apos){0, 0});
    ag__scratch_fail = false;
}

/* ------------------------------------------------------------------------------------ */
/* Shutdown and statistics                                                                */

void ag__memory_reset(void)
{
    ag_release((ag_mark){0, next_serial});
    arena_free(&tensors);
    arena_free(&scratch);
    arena_free(&grads.mem);
    memset(&grads, 0, sizeof grads);
    ag__free(tape.t);
    memset(&tape, 0, sizeof tape);
    ag__free(holes.h);
    memset(&holes, 0, sizeof holes);
    ag__free(orphans.t);
    memset(&orphans, 0, sizeof orphans);
    /* A new session starts at a serial no mark from before can hold, even when no tensor
     * was made since the last start. */
    session_start = ++next_serial;
}

void ag__memory_stats(ag_stats *st)
{
    st->live_tensors = tape.len;
    st->parameters = grads.persistent;
    st->arena_bytes = tensors.bytes + scratch.bytes + grads.mem.bytes;
    st->system_allocs = sys.allocs;
    st->checked = ag_is_checked();
}
