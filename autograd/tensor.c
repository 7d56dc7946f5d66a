/* Tensors: errors, the arena and tape that own every tensor, creation and access. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_ds.h>

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

static void default_handler(const char *message, void *userdata)
{
    AG__UNUSED(userdata);
    fprintf(stderr, "agrad: %s\n", message);
    exit(EXIT_FAILURE);
}

static struct {
    ag_error_fn fn;
    void *userdata;
    char message[1024];
} err = {default_handler, NULL, ""};

ag_error_fn ag_set_error_handler(ag_error_fn fn, void *userdata)
{
    ag_error_fn previous = err.fn;
    err.fn = fn;
    err.userdata = userdata;
    return previous;
}

const char *ag_last_error(void) { return err.message; }
void ag_clear_error(void) { err.message[0] = '\0'; }

void ag__error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    if (err.fn) err.fn(err.message, err.userdata);
}

bool ag__check(const ag_tensor *t, const char *op, const char *role)
{
    if (!t) {
        /* A NULL that comes out of a failed op was reported there already. */
        if (!err.message[0]) ag__error("%s: argument %s is NULL", op, role);
        return false;
    }
    if (t->ag__.magic != AG__MAGIC_LIVE) {
        ag__error("%s: argument %s is a released tensor (freed by ag_release or "
                  "ag_shutdown)",
                  op, role);
        return false;
    }
    return true;
}

int ag__wrap_dim(const char *op, const ag_tensor *x, int dim, int rank)
{
    if (dim < -rank || dim >= rank) {
        char s[AG__SHAPE_STR];
        ag__error("%s: Dimension out of range (expected to be in range of [%d, %d], but got %d) "
                  "for a tensor of shape %s",
                  op, -rank, rank - 1, dim, ag__shape_str(s, x->ndim, x->shape));
        return -1;
    }
    return dim < 0 ? dim + rank : dim;
}

const char *ag__shape_str(char buf[AG__SHAPE_STR], int ndim, const int64_t *shape)
{
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(buf + n, AG__SHAPE_STR - n, i ? ", %lld" : "%lld",
                              (long long)shape[i]);
    snprintf(buf + n, AG__SHAPE_STR - n, "]");
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* Memory                                                                                */

/* A bump allocator over chunks that are kept once allocated: resetting it makes the
 * memory available again without returning it to the system. */
typedef struct arena {
    char **chunks;  /* stb_ds array */
    size_t *sizes;  /* stb_ds array, bytes of each chunk */
    size_t current; /* chunk being filled */
    size_t used;    /* bytes used in it */
} arena;

enum { CHUNK_MIN = 1 << 20, ALIGN = 32 };

static size_t system_allocs;

void *ag__malloc(size_t size) { return ag__realloc(NULL, size); }

void *ag__realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    system_allocs++;
    if (!q) ag__error("out of memory allocating %zu bytes", size);
    return q;
}

static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

static void *arena_alloc(arena *a, size_t size)
{
    size = align_up(size);
    if (arrlenu(a->chunks) && a->used + size <= a->sizes[a->current]) {
        void *p = a->chunks[a->current] + a->used;
        a->used += size;
        return p;
    }
    /* Move to the next chunk; chunks after the current one hold nothing, so one that
     * is too small is replaced. */
    size_t next = arrlenu(a->chunks) ? a->current + 1 : 0;
    if (next == arrlenu(a->chunks) || a->sizes[next] < size) {
        size_t bytes = size > CHUNK_MIN ? size : CHUNK_MIN;
        char *c = ag__malloc(bytes);
        if (!c) return NULL;
        if (next == arrlenu(a->chunks)) {
            arrput(a->chunks, c);
            arrput(a->sizes, bytes);
        } else {
            free(a->chunks[next]);
            a->chunks[next] = c;
            a->sizes[next] = bytes;
        }
    }
    a->current = next;
    a->used = size;
    return a->chunks[next];
}

/* Rewinds the arena to the position of p, an address it handed out. */
static void arena_rewind(arena *a, const void *p)
{
    for (size_t i = 0; i < arrlenu(a->chunks); i++) {
        const char *c = a->chunks[i];
        if ((const char *)p >= c && (const char *)p < c + a->sizes[i]) {
            a->current = i;
            a->used = (size_t)((const char *)p - c);
            return;
        }
    }
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < arrlenu(a->chunks); i++) free(a->chunks[i]);
    arrfree(a->chunks);
    arrfree(a->sizes);
    memset(a, 0, sizeof *a);
}

static arena tensors;    /* headers and storage of every tensor on the tape */
static arena scratch;    /* backward-pass buffers */
static ag_tensor **tape; /* stb_ds array: live tensors in creation order */

ag_tensor *ag__tape_at(size_t i) { return tape[i]; }

static bool scratch_failed;

float *ag__scratch(int64_t n)
{
    float *p = arena_alloc(&scratch, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) scratch_failed = true;
    return p;
}

bool ag__scratch_failed(void) { return scratch_failed; }

void ag__scratch_reset(void)
{
    scratch.current = 0;
    scratch.used = 0;
    scratch_failed = false;
}

ag_tensor *ag__new(const char *op, int ndim, const int64_t *shape, ag_tensor *base, float *data)
{
    char s[AG__SHAPE_STR];
    if (ndim < 0 || ndim > AG_MAX_DIMS) {
        ag__error("%s: tensors have at most %d dimensions, got %d", op, AG_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            ag__error("%s: negative dimension %lld in shape %s", op, (long long)shape[i],
                      ag__shape_str(s, ndim, shape));
            return NULL;
        }
        if (shape[i] && numel > INT64_MAX / 4 / shape[i]) {
            ag__error("%s: shape %s is too large", op, ag__shape_str(s, ndim, shape));
            return NULL;
        }
        numel *= shape[i];
    }
    size_t header = align_up(sizeof(ag_tensor));
    ag_tensor *t = arena_alloc(&tensors, header + (data ? 0 : (size_t)numel * sizeof(float)));
    if (!t) return NULL;
    /* One assignment of the whole header: the compiler writes each field once, in
     * order, which is measurably faster than memset and then the fields. */
    *t = (ag_tensor){
        .data = data ? data : (float *)((char *)t + header),
        .numel = numel,
        .ndim = ndim,
        .ag__ = {.magic = AG__MAGIC_LIVE, .base = base ? base->ag__.base : t, .id = arrlenu(tape)}};
    for (int i = 0; i < AG_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    arrput(tape, t);
    return t;
}

ag_tensor *ag__new_grad(const ag_tensor *t)
{
    size_t header = align_up(sizeof(ag_tensor));
    ag_tensor *g = ag__malloc(header + (size_t)t->numel * sizeof(float));
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    g->data = (float *)((char *)g + header);
    memcpy(g->shape, t->shape, sizeof g->shape);
    g->ndim = t->ndim;
    g->numel = t->numel;
    memset(g->data, 0, (size_t)t->numel * sizeof(float));
    g->ag__.magic = AG__MAGIC_LIVE;
    g->ag__.flags = AG__F_GRAD;
    g->ag__.base = g;
    g->ag__.id = SIZE_MAX;
    return g;
}

void *ag__ctx_alloc(size_t bytes) { return arena_alloc(&tensors, bytes); }

ag_tensor *ag__new_like(const char *op, const ag_tensor *t)
{
    return ag__new(op, t->ndim, t->shape, NULL, NULL);
}

ag_mark ag_mark_now(void) { return (ag_mark){arrlenu(tape)}; }

void ag_release(ag_mark mark)
{
    size_t n = arrlenu(tape);
    if (mark.ag__tape >= n) return;
    for (size_t i = n; i-- > mark.ag__tape;) {
        ag_tensor *t = tape[i];
        if (t->grad && (t->grad->ag__.flags & AG__F_GRAD)) {
            t->grad->ag__.magic = AG__MAGIC_DEAD;
            free(t->grad);
        }
        t->ag__.magic = AG__MAGIC_DEAD;
    }
    /* Every tensor's header is its first allocation, so the arena position before the
     * first released tensor is that tensor's address. */
    arena_rewind(&tensors, tape[mark.ag__tape]);
    arrsetlen(tape, mark.ag__tape);
}

void ag_shutdown(void)
{
    ag_release((ag_mark){0});
    arena_free(&tensors);
    arena_free(&scratch);
    arrfree(tape);
    ag__engine_reset();
    ag__random_reset();
    err.fn = default_handler;
    err.userdata = NULL;
    err.message[0] = '\0';
}

ag_stats ag_memory_stats(void)
{
    ag_stats st = {arrlenu(tape), 0, system_allocs};
    for (size_t i = 0; i < arrlenu(tensors.chunks); i++) st.arena_bytes += tensors.sizes[i];
    for (size_t i = 0; i < arrlenu(scratch.chunks); i++) st.arena_bytes += scratch.sizes[i];
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* Creating tensors                                                                      */

static ag_tensor *new_shape(const char *op, ag_shape shape)
{
    return ag__new(op, shape.ndim, shape.d, NULL, NULL);
}

ag_tensor *ag_tensor_from(const float *values, ag_shape shape, bool requires_grad)
{
    if (!values) return ag__error("tensor_from: values is NULL"), NULL;
    ag_tensor *t = new_shape("tensor_from", shape);
    if (!t) return NULL;
    memcpy(t->data, values, (size_t)t->numel * sizeof(float));
    t->requires_grad = requires_grad;
    return t;
}

ag_tensor *ag_scalar(double value, bool requires_grad)
{
    ag_tensor *t = ag__new("scalar", 0, NULL, NULL, NULL);
    if (!t) return NULL;
    t->data[0] = (float)value;
    t->requires_grad = requires_grad;
    return t;
}

static ag_tensor *filled(const char *op, ag_shape shape, double value)
{
    ag_tensor *t = new_shape(op, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)value;
    return t;
}

ag_tensor *ag_full(ag_shape shape, double value) { return filled("full", shape, value); }
ag_tensor *ag_zeros(ag_shape shape) { return filled("zeros", shape, 0.0); }
ag_tensor *ag_ones(ag_shape shape) { return filled("ones", shape, 1.0); }

ag_tensor *ag_arange(double start, double end, double step)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
        return ag__error("arange: step must be nonzero and bounds finite (start=%g, "
                         "end=%g, step=%g)",
                         start, end, step),
               NULL;
    if ((step > 0 && start > end) || (step < 0 && start < end))
        return ag__error("arange: upper bound and larger bound inconsistent with step sign "
                         "(start=%g, end=%g, step=%g)",
                         start, end, step),
               NULL;
    int64_t n = (int64_t)ceil((end - start) / step);
    ag_tensor *t = ag__new("arange", 1, &n, NULL, NULL);
    if (!t) return NULL;
    /* PyTorch's AVX2 kernel fills whole 16-element chunks as vectors of 8 lanes, each
     * lane computed from a float base; the tail uses start + i * step in double. The
     * two disagree by an ulp on about a third of the values, so both are reproduced. */
    int64_t vec_end = n / 16 * 16;
    for (int64_t i = 0; i < n; i++) {
        if (i < vec_end) {
            float base = (float)(start + step * (double)(i - i % 8));
            t->data[i] = (float)((double)base + (double)(i % 8) * step);
        } else {
            t->data[i] = (float)(start + (double)i * step);
        }
    }
    return t;
}

ag_tensor *ag_requires_grad_(ag_tensor *t, bool requires_grad)
{
    if (!ag__check(t, "requires_grad_", "self")) return NULL;
    if (t->ag__.flags & AG__F_GRAD)
        return ag__error("requires_grad_: a .grad tensor cannot require grad in agrad; "
                         "make a copy with ag_mul(1, grad) first"),
               NULL;
    if (t->ag__.op && !requires_grad)
        return ag__error("requires_grad_: you can only change requires_grad flags of leaf "
                         "variables. If you want to use a computed variable in a subgraph "
                         "that doesn't require differentiation use var_no_grad = var.detach()."),
               NULL;
    t->requires_grad = requires_grad;
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* Reading tensors                                                                       */

ag_shape ag_size(const ag_tensor *t)
{
    ag_shape s = {0, {0}};
    if (!ag__check(t, "size", "self")) return s;
    s.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) s.d[i] = t->shape[i];
    return s;
}

double ag_item(const ag_tensor *t)
{
    if (!ag__check(t, "item", "self")) return NAN;
    if (t->numel != 1) {
        char s[AG__SHAPE_STR];
        ag__error("item: a Tensor with %lld elements cannot be converted to Scalar (shape %s)",
                  (long long)t->numel, ag__shape_str(s, t->ndim, t->shape));
        return NAN;
    }
    return t->data[0];
}

double ag_get(const ag_tensor *t, ag_shape index)
{
    char s[AG__SHAPE_STR];
    if (!ag__check(t, "get", "self")) return NAN;
    if (index.ndim != t->ndim) {
        ag__error("get: %d indices for a tensor of shape %s", index.ndim,
                  ag__shape_str(s, t->ndim, t->shape));
        return NAN;
    }
    int64_t offset = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t k = index.d[i] < 0 ? index.d[i] + t->shape[i] : index.d[i];
        if (k < 0 || k >= t->shape[i]) {
            ag__error("get: index %lld is out of bounds for dimension %d with size %lld "
                      "(shape %s)",
                      (long long)index.d[i], i, (long long)t->shape[i],
                      ag__shape_str(s, t->ndim, t->shape));
            return NAN;
        }
        offset = offset * t->shape[i] + k;
    }
    return t->data[offset];
}

bool ag_is_leaf(const ag_tensor *t) { return ag__check(t, "is_leaf", "self") && t->ag__.op == 0; }

const char *ag_grad_fn_name(const ag_tensor *t)
{
    if (!ag__check(t, "grad_fn", "self") || !t->ag__.op) return NULL;
    if (t->ag__.op == AG__OP_MAP) return ag__map_name(t);
    return ag__ops[t->ag__.op].grad_fn;
}
