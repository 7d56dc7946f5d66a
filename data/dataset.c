/* Datasets: the interface a user implements (struct ag_dataset), the datasets agrad makes
 * (TensorDataset, and the Subsets of random_split), slicing, and reading items and batches
 * for the loader (loader.c).
 *
 * A dataset agrad makes lives in a block from the allocation hook, listed in `blocks`. A
 * freed one is marked dead and its block kept for the next dataset agrad makes, until
 * ag_shutdown: a pointer in the list is safe to read, so a freed dataset passed again is
 * reported, and a pointer in no block is a dataset of the user's. A Subset of a Subset
 * indexes the first one's dataset (the indices composed), so reading an item goes down one
 * level at most. The user's get, len and destroy run inside a deferral scope, as
 * gradcheck's function does: an error in them reaches the handler when they have
 * returned and agrad's state is consistent, and ag_shutdown from inside them is refused. */
#include "data_internal.h"

#include <math.h>
#include <string.h>

#define DS_LIVE 0x41474453u /* "AGDS" */
#define DS_DEAD 0x41474446u /* "AGDF" */

typedef enum kind { TENSORS = 1, SUBSET } kind;

typedef struct agds {
    ag_dataset base; /* first: what the user holds */
    uint32_t magic;  /* DS_LIVE, or DS_DEAD once freed */
    kind kind;
    /* TENSORS: base.fields tensors and their serials when the dataset was made, which tell
     * a released tensor whose memory a newer one took */
    const ag_tensor **t;
    uint64_t *serial;
    /* SUBSET: n indices into `of`, a dataset of the user's or a TensorDataset */
    ag_dataset *of;
    int64_t *idx;
    int64_t n;
    bool orphaned; /* `of` was freed */
} agds;

static ag__live blocks;
static int in_callback; /* user functions running (get, len, destroy) */

static agds *block_of(const void *p) { return ag__live_has(&blocks, p) ? (agds *)p : NULL; }

bool ag__data_in_callback(void) { return in_callback > 0; }

/* ------------------------------------------------------------------------------------ */
/* The user's functions                                                                  */

/* Around every call of a user's get, len or destroy: a deferral scope, so that an error in
 * it reaches the handler once it has returned, and the count that refuses frees and
 * ag_shutdown meanwhile. */
static void user_begin(void)
{
    ag__defer_begin();
    in_callback++;
}

static void user_end(void)
{
    in_callback--;
    ag__defer_end(); /* may call the handler: nothing is left to put back */
}

/* The message of an error the user's function set, when none was pending before it. */
static const char *fresh_error(bool was_clear, char copy[256])
{
    if (!was_clear || !ag_last_error()[0]) return "";
    snprintf(copy, 256, ": %s", ag_last_error());
    return copy;
}

/* A user's len, checked: -1 after an error (the user's own, when it set one). */
static int64_t user_len(const char *op, ag_dataset *d)
{
    bool was_clear = !ag_last_error()[0];
    user_begin();
    int64_t n = d->len(d);
    user_end();
    if (n < 0) {
        char copy[256];
        const char *why = fresh_error(was_clear, copy);
        ag__error("%s: the dataset's len returned %lld%s", op, (long long)n,
                  why[0] ? why : ": __len__() should return >= 0");
        return -1;
    }
    return n;
}

/* ------------------------------------------------------------------------------------ */
/* Checking a dataset argument                                                           */

static bool check_user(const char *op, const ag_dataset *d)
{
    if (!d) {
        ag__error("%s: the dataset is NULL", op);
        return false;
    }
    if (ag__liveness_of((const ag_tensor *)d) != AG__NOT_HELD) {
        ag__error("%s: the dataset is a tensor, not a dataset: make one of tensors with "
                  "ag_TensorDataset(X, Y)",
                  op);
        return false;
    }
    if (ag__is_loader(d)) {
        ag__error("%s: the dataset is a DataLoader, not a dataset", op);
        return false;
    }
    if (d->fields < 1 || !d->len || !d->get) {
        ag__error("%s: the dataset has fields=%d, len %s and get %s: a dataset needs at least "
                  "one field and both functions (AG_DATASET(fields, len, get))",
                  op, d->fields, d->len ? "set" : "NULL", d->get ? "set" : "NULL");
        return false;
    }
    return true;
}

/* Whether the tensors of a TensorDataset are all live and the ones it was made with. */
static bool check_tensors(const char *op, const agds *a)
{
    for (int k = 0; k < a->base.fields; k++)
        if (!ag__check_serial_at(a->t[k], a->serial[k], op, "dataset.tensors", k)) return false;
    return true;
}

bool ag__dataset_view(const char *op, void *ds, ag__view *v)
{
    *v = (ag__view){0};
    if (!ds) {
        if (!ag_last_error()[0]) ag__error("%s: the dataset is NULL", op);
        return false;
    }
    agds *a = block_of(ds);
    if (a && a->magic != DS_LIVE) {
        ag__error("%s: the dataset is not a live dataset (freed by ag_dataset_free or "
                  "ag_shutdown)",
                  op);
        return false;
    }
    if (!a) {
        ag_dataset *d = ds;
        if (!check_user(op, d)) return false;
        v->root = d;
        v->fields = d->fields;
        v->len = v->root_len = user_len(op, d);
        return v->len >= 0;
    }
    v->fields = a->base.fields;
    if (a->kind == SUBSET) {
        if (a->orphaned) {
            ag__error("%s: the dataset is a Subset of a freed dataset (freed by "
                      "ag_dataset_free)",
                      op);
            return false;
        }
        v->map = a->idx;
        v->len = a->n;
        agds *of = block_of(a->of);
        if (!of) {
            ag_dataset *d = a->of;
            if (!check_user(op, d) || !d)
                return false; /* check_user refuses NULL: said again for the analyzer */
            if (d->fields != a->base.fields) {
                ag__error("%s: the Subset's dataset has fields=%d, %d when the Subset was made", op,
                          d->fields, a->base.fields);
                return false;
            }
            v->root = d;
            v->root_len = user_len(op, d);
            return v->root_len >= 0;
        }
        a = of;
    }
    if (!check_tensors(op, a)) return false;
    v->root = &a->base;
    v->tensors = a->t;
    v->root_len = a->t[0]->shape[0];
    if (!v->map) v->len = v->root_len;
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Reading items and batches                                                             */

/* Item i (0 <= i < v->len) of v into items[0..fields-1]: views of rows for a TensorDataset,
 * the user's get otherwise. */
static bool read_item(const char *op, const ag__view *v, int64_t i, ag_tensor **items)
{
    int64_t j = v->map ? v->map[i] : i;
    char through[64] = "";
    if (v->map) snprintf(through, sizeof through, " (item %lld of the Subset)", (long long)i);
    if (j < 0 || j >= v->root_len) {
        ag__error("%s: index %lld%s is out of range for the dataset of length %lld (its "
                  "length changed)",
                  op, (long long)j, through, (long long)v->root_len);
        return false;
    }
    if (v->tensors) {
        for (int k = 0; k < v->fields; k++)
            if (!(items[k] = ag_select(v->tensors[k], 0, j))) return false;
        return true;
    }
    for (int k = 0; k < v->fields; k++) items[k] = NULL;
    bool was_clear = !ag_last_error()[0];
    char copy[256];
    user_begin();
    bool ok = v->root->get(v->root, j, items);
    user_end();
    if (!ok) {
        ag__error("%s: the dataset's get failed for index %lld%s%s", op, (long long)j, through,
                  fresh_error(was_clear, copy));
        return false;
    }
    for (int k = 0; k < v->fields; k++) {
        if (!items[k]) {
            ag__error("%s: the dataset's get gave NULL for item %d at index %lld%s%s", op, k,
                      (long long)j, through, fresh_error(was_clear, copy));
            return false;
        }
        if (!ag__check_at(items[k], op, "item", k)) return false;
    }
    return true;
}

/* Rows order[first + j] (or first + j) of t, copied into a new tensor (no graph: t does not
 * take a gradient here). */
static ag_tensor *gather(const char *op, const ag_tensor *t, const ag__view *v,
                         const int64_t *order, int64_t first, int64_t b)
{
    int64_t shape[AG_MAX_DIMS], row = 1;
    shape[0] = b;
    for (int d = 1; d < t->ndim; d++) row *= shape[d] = t->shape[d];
    ag_tensor *y = ag__new(op, t->ndim, shape, NULL, NULL);
    for (int64_t j = 0; y && row > 0 && j < b; j++) {
        int64_t p = order ? order[first + j] : first + j;
        int64_t r = v->map ? v->map[p] : p;
        memcpy(y->data + j * row, t->data + r * row, (size_t)row * sizeof(float));
    }
    return y;
}

/* Whether field k is read item by item (and stacked) rather than gathered: always for a
 * dataset of the user's, and for a tensor the gradient has to reach through the rows. */
static bool by_items(const ag__view *v, int k)
{
    return !v->tensors || (v->tensors[k]->requires_grad && ag__grad_mode());
}

/* Stacks the b items of field k (items[0..b-1]) as torch.stack(batch, 0) does, after
 * checking that they share a shape, naming the dataset's indices if they do not. */
static ag_tensor *stack(const char *op, ag_tensor **items, int64_t b, int k, const int64_t *order,
                        int64_t first)
{
    const ag_tensor *x0 = items[0];
    for (int64_t j = 1; j < b; j++) {
        const ag_tensor *x = items[j];
        bool same = x->ndim == x0->ndim;
        for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == x0->shape[d];
        if (!same) {
            char s0[AG__SHAPE_STR], s1[AG__SHAPE_STR];
            return ag__error("%s: stack expects each tensor to be equal size, but got %s at "
                             "entry 0 and %s at entry %lld (item %d of the dataset's indices "
                             "%lld and %lld)",
                             op, ag__shape_str(s0, x0->ndim, x0->shape),
                             ag__shape_str(s1, x->ndim, x->shape), (long long)j, k,
                             (long long)(order ? order[first] : first),
                             (long long)(order ? order[first + j] : first + j));
        }
    }
    if (x0->ndim + 1 > AG_MAX_DIMS) {
        char s[AG__SHAPE_STR];
        return ag__error("%s: a batch of item %d (of shape %s) would have %d dimensions; agrad "
                         "has at most %d",
                         op, k, ag__shape_str(s, x0->ndim, x0->shape), x0->ndim + 1, AG_MAX_DIMS);
    }
    if (b > INT32_MAX)
        return ag__error("%s: a batch of %lld items is more than stack takes (%d)", op,
                         (long long)b, INT32_MAX);
    return ag_stack(items, (int)b, 0);
}

bool ag__dataset_collate(const char *op, const ag__view *v, const int64_t *order, int64_t first,
                         int64_t b, ag_tensor **buf, ag_tensor **out)
{
    int f = v->fields;
    for (int k = 0; k < f; k++) out[k] = NULL;
    if (!v->tensors) {
        ag_tensor **item = buf + (size_t)b * (size_t)f;
        for (int64_t j = 0; j < b; j++) {
            if (!read_item(op, v, order ? order[first + j] : first + j, item)) return false;
            for (int k = 0; k < f; k++) buf[(size_t)k * (size_t)b + (size_t)j] = item[k];
        }
    } else {
        for (int k = 0; k < f; k++) {
            if (!by_items(v, k)) continue;
            for (int64_t j = 0; j < b; j++) {
                int64_t p = order ? order[first + j] : first + j;
                ag_tensor *x = ag_select(v->tensors[k], 0, v->map ? v->map[p] : p);
                if (!x) return false;
                buf[(size_t)k * (size_t)b + (size_t)j] = x;
            }
        }
    }
    for (int k = 0; k < f; k++) {
        out[k] = by_items(v, k) ? stack(op, buf + (size_t)k * (size_t)b, b, k, order, first)
                                : gather(op, v->tensors[k], v, order, first, b);
        if (!out[k]) {
            for (int i = 0; i < k; i++) out[i] = NULL;
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Making and freeing the datasets agrad makes                                           */

/* A zeroed, live block: a dead one reused, or a new one. NULL when out of memory. */
static agds *new_block(void)
{
    for (size_t i = 0; i < blocks.n; i++) {
        agds *a = blocks.p[i];
        if (a->magic == DS_DEAD) {
            *a = (agds){.magic = DS_LIVE};
            return a;
        }
    }
    agds *a = ag__malloc(sizeof *a);
    if (!a) return NULL;
    if (!ag__live_add(&blocks, a)) {
        ag__free(a);
        return NULL;
    }
    *a = (agds){.magic = DS_LIVE};
    return a;
}

/* Frees what a block holds and marks it dead. */
static void kill_block(agds *a)
{
    ag__free(a->t);
    ag__free(a->serial);
    ag__free(a->idx);
    *a = (agds){.magic = DS_DEAD};
}

/* The functions of the ag_dataset part of the datasets agrad makes, so that a user may
 * call ds->len(ds) and ds->get(ds, i, items) on them too. */
static int64_t made_len(ag_dataset *self) { return ag_dataset_len(self); }

static bool made_get(ag_dataset *self, int64_t index, ag_tensor **items)
{
    ag__view v;
    if (!ag__dataset_view("get", self, &v)) return false;
    if (index < 0 || index >= v.len) {
        ag__error("get: index %lld is out of bounds for dimension 0 with size %lld",
                  (long long)index, (long long)v.len);
        return false;
    }
    return read_item("get", &v, index, items);
}

AG_API ag_dataset *ag_tensor_dataset_new(const ag_tensor *const *tensors, int n)
{
    const char *op = "TensorDataset";
    if (!tensors || n < 1)
        return ag__error("%s: at least one tensor is needed (got %d)", op, tensors ? n : 0);
    for (int k = 0; k < n; k++) {
        const ag_tensor *t = tensors[k];
        if (!ag__check_at(t, op, "tensors", k)) return NULL;
        if (t->ndim == 0)
            return ag__error("%s: Dimension specified as 0 but tensor has no dimensions "
                             "(tensors[%d] is 0-d)",
                             op, k);
        if (t->shape[0] != tensors[0]->shape[0]) {
            char s0[AG__SHAPE_STR], s1[AG__SHAPE_STR];
            return ag__error("%s: Size mismatch between tensors: tensors[0] has shape %s and "
                             "tensors[%d] has shape %s (their first sizes must be equal)",
                             op, ag__shape_str(s0, tensors[0]->ndim, tensors[0]->shape), k,
                             ag__shape_str(s1, t->ndim, t->shape));
        }
    }
    agds *a = new_block();
    const ag_tensor **t = ag__malloc((size_t)n * sizeof *t);
    uint64_t *serial = ag__malloc((size_t)n * sizeof *serial);
    if (!a || !t || !serial) {
        ag__free(t);
        ag__free(serial);
        if (a) kill_block(a);
        return ag__error("%s: out of memory making a dataset of %d tensors", op, n);
    }
    for (int k = 0; k < n; k++) {
        t[k] = tensors[k];
        serial[k] = node(tensors[k])->serial;
    }
    a->base = (ag_dataset){n, made_len, made_get, NULL};
    a->kind = TENSORS;
    a->t = t;
    a->serial = serial;
    return &a->base;
}

AG_API void ag_dataset_free(void *ds)
{
    if (!ds) return;
    if (in_callback) {
        ag__error("dataset_free: called from inside a dataset's get, len or destroy, while "
                  "agrad reads a dataset; ignored");
        return;
    }
    agds *a = block_of(ds);
    if (a && a->magic != DS_LIVE) {
        ag__error("dataset_free: the dataset is not a live dataset (freed by ag_dataset_free "
                  "or ag_shutdown)");
        return;
    }
    if (!a) {
        ag_dataset *d = ds;
        if (ag__liveness_of((const ag_tensor *)d) != AG__NOT_HELD || ag__is_loader(d)) {
            check_user("dataset_free", d); /* says what it is */
            return;
        }
    }
    /* Whatever reads ds from now on reports it: the subsets over it, the loaders. */
    for (size_t i = 0; i < blocks.n; i++) {
        agds *s = blocks.p[i];
        if (s->magic == DS_LIVE && s->kind == SUBSET && s->of == ds) s->orphaned = true;
    }
    ag__loaders_dataset_freed(ds);
    if (a)
        kill_block(a);
    else if (((ag_dataset *)ds)->destroy) {
        ag_dataset *d = ds;
        user_begin();
        d->destroy(d);
        user_end();
    }
}

void ag__data_reset(void)
{
    ag__loaders_reset();
    for (size_t i = 0; i < blocks.n; i++) {
        kill_block(blocks.p[i]);
        ag__free(blocks.p[i]);
    }
    ag__live_clear(&blocks);
    in_callback = 0;
}

/* ------------------------------------------------------------------------------------ */
/* len, get, slice                                                                       */

AG_API int64_t ag_dataset_len(void *ds)
{
    ag__view v;
    return ag__dataset_view("dataset_len", ds, &v) ? v.len : -1;
}

bool ag__check_outputs(const char *op, const ag__view *v, ag_tensor **const *out, int n)
{
    if (n != v->fields) {
        ag__error("%s: the dataset gives %d tensor%s per item, but %d output%s given", op,
                  v->fields, v->fields == 1 ? "" : "s", n, n == 1 ? " was" : "s were");
        return false;
    }
    for (int k = 0; k < n; k++)
        if (!out || !out[k]) {
            ag__error("%s: output %d is NULL (pass &x, &y)", op, k);
            return false;
        }
    return true;
}

void ag__clear_outputs(ag_tensor **const *out, int n)
{
    for (int k = 0; out && k < n; k++)
        if (out[k]) *out[k] = NULL;
}

/* A small array of pointers on the stack, or from the hook when larger. */
enum { SMALL = 8 };
static ag_tensor **pointers(const char *op, ag_tensor **small, int64_t n)
{
    if (n <= SMALL) return small;
    ag_tensor **p = (size_t)n <= SIZE_MAX / sizeof *p ? ag__malloc((size_t)n * sizeof *p) : NULL;
    if (!p) ag__error("%s: out of memory for %lld pointers", op, (long long)n);
    return p;
}

AG_API bool ag_dataset_get_n(void *ds, int64_t index, ag_tensor **const *out, int n)
{
    const char *op = "dataset_get";
    ag__clear_outputs(out, n);
    ag__view v;
    if (!ag__dataset_view(op, ds, &v) || !ag__check_outputs(op, &v, out, n)) return false;
    int64_t i = index < 0 ? index + v.len : index;
    if (i < 0 || i >= v.len) {
        ag__error("%s: index %lld is out of bounds for dimension 0 with size %lld", op,
                  (long long)index, (long long)v.len);
        return false;
    }
    ag_tensor *small[SMALL] = {NULL}, **items = pointers(op, small, n);
    bool ok = items && read_item(op, &v, i, items);
    for (int k = 0; ok && k < n; k++) *out[k] = items[k];
    if (items != small) ag__free(items);
    return ok;
}

/* The empty slice: tensors of shape [0, item's shape], the item's shape from the
 * TensorDataset's tensors, or from item 0 of a dataset of the user's. */
static bool empty_slice(const char *op, const ag__view *v, ag_tensor **res)
{
    ag_tensor *small[SMALL], **items = NULL;
    if (!v->tensors) {
        if (v->len == 0) {
            ag__error("%s: an empty slice of an empty dataset: the items' shapes are unknown", op);
            return false;
        }
        if (!(items = pointers(op, small, v->fields))) return false;
        if (!read_item(op, v, 0, items)) {
            if (items != small) ag__free(items);
            return false;
        }
    }
    bool ok = true;
    for (int k = 0; ok && k < v->fields; k++) {
        const ag_tensor *x = items ? items[k] : v->tensors[k];
        int skip = items ? 0 : 1; /* a tensor's first size is the items' count */
        int64_t shape[AG_MAX_DIMS + 1] = {0};
        int ndim = x->ndim - skip + 1;
        for (int d = skip; d < x->ndim; d++) shape[d - skip + 1] = x->shape[d];
        if (ndim > AG_MAX_DIMS) {
            char s[AG__SHAPE_STR];
            ag__error("%s: a slice of item %d (of shape %s) would have %d dimensions; agrad has "
                      "at most %d",
                      op, k, ag__shape_str(s, x->ndim - skip, x->shape + skip), ndim, AG_MAX_DIMS);
            ok = false;
        } else {
            ok = (res[k] = ag__new(op, ndim, shape, NULL, NULL)) != NULL;
        }
    }
    if (items && items != small) ag__free(items);
    return ok;
}

AG_API bool ag_dataset_slice_n(void *ds, int64_t start, int64_t end, ag_tensor **const *out, int n)
{
    const char *op = "dataset_slice";
    ag__clear_outputs(out, n);
    ag__view v;
    if (!ag__dataset_view(op, ds, &v) || !ag__check_outputs(op, &v, out, n)) return false;
    /* Python's rules: negative counts from the end, then clip to [0, len]. */
    int64_t len = v.len;
    if (start < 0) start = start < -len ? 0 : start + len;
    if (end < 0) end = end < -len ? 0 : end + len;
    start = start > len ? len : start;
    end = end < start ? start : end > len ? len : end;
    int64_t b = end - start;

    ag_tensor *small[SMALL], **res = pointers(op, small, n);
    bool ok = res != NULL;
    if (ok && v.tensors && !v.map) {
        /* TensorDataset[a:b] is (X[a:b], Y[a:b]): views, as in PyTorch */
        for (int k = 0; ok && k < n; k++) ok = (res[k] = ag_slice(v.tensors[k], 0, start, end));
    } else if (ok && b == 0) {
        ok = empty_slice(op, &v, res);
    } else if (ok) {
        ag_tensor **buf = NULL;
        if ((uint64_t)b < (uint64_t)(INT64_MAX / n - 1) &&
            (size_t)(b + 1) * (size_t)n <= SIZE_MAX / sizeof *buf)
            buf = ag__malloc((size_t)(b + 1) * (size_t)n * sizeof *buf);
        if (!buf) {
            ag__error("%s: out of memory for a slice of %lld items", op, (long long)b);
            ok = false;
        }
        ok = ok && ag__dataset_collate(op, &v, NULL, start, b, buf, res);
        ag__free(buf);
    }
    for (int k = 0; ok && k < n; k++) *out[k] = res[k];
    if (res && res != small) ag__free(res);
    return ok;
}

/* ------------------------------------------------------------------------------------ */
/* random_split                                                                          */

/* PyTorch's lengths from fractions (1.13): floor(len * fraction) each, then the remainder
 * one by one from the first; a length of 0 warns. False after an error (a fraction outside
 * [0, 1]). */
static bool lengths_of_fractions(const char *op, const double *fr, int n, int64_t len, int64_t *out,
                                 const char *file, int line)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (fr[i] < 0 || fr[i] > 1) {
            ag__error("%s: Fraction at index %d is not between 0 and 1", op, i);
            return false;
        }
        double f = floor((double)len * fr[i]);
        out[i] = f >= (double)len ? len : (int64_t)f;
        sum += out[i];
    }
    for (int64_t i = 0; i < len - sum; i++) out[i % n]++;
    for (int i = 0; i < n; i++)
        if (out[i] == 0)
            ag__warn_once(file ? file : "", line,
                          "Length of split at index %d is 0. This might result in an empty "
                          "dataset.",
                          i);
    return true;
}

/* The lengths as PyTorch 1.13 reads them: fractions when their sum is close to 1
 * (math.isclose) and not above it, else lengths whose sum must be len. Whole numbers >= 0
 * too here: PyTorch makes splits of other sizes than asked from negative lengths. False
 * after an error. */
static bool split_lengths(const char *op, const double *lengths, int n, int64_t len, int64_t *out,
                          const char *file, int line)
{
    double sum = 0;
    for (int i = 0; i < n; i++) sum += lengths[i];
    bool fractions = fabs(sum - 1.0) <= 1e-9 * fmax(fabs(sum), 1.0) && sum <= 1.0;
    if (fractions) {
        if (!lengths_of_fractions(op, lengths, n, len, out, file, line)) return false;
        sum = 0;
        for (int i = 0; i < n; i++) sum += (double)out[i];
    }
    if (sum != (double)len) {
        ag__error("%s: Sum of input lengths does not equal the length of the input dataset!", op);
        return false;
    }
    for (int i = 0; !fractions && i < n; i++) {
        double l = lengths[i];
        if (!(l >= 0 && l < 0x1p63 && l == floor(l))) {
            ag__error("%s: lengths[%d] is %g: a length must be a whole number >= 0 (or the "
                      "lengths fractions summing to 1)",
                      op, i, l);
            return false;
        }
        out[i] = (int64_t)l;
    }
    return true;
}

AG_API bool ag_random_split_at(void *ds, const double *lengths, int n_lengths,
                               ag_dataset **const *out, int n_out, const char *file, int line)
{
    const char *op = "random_split";
    for (int k = 0; out && k < n_out; k++)
        if (out[k]) *out[k] = NULL;
    ag__view v;
    if (!ag__dataset_view(op, ds, &v)) return false;
    if (n_lengths < 0 || (n_lengths > 0 && !lengths) || n_out != n_lengths) {
        ag__error("%s: %d lengths but %d outputs: give one output per length", op, n_lengths,
                  n_out);
        return false;
    }
    for (int k = 0; k < n_out; k++)
        if (!out || !out[k]) {
            ag__error("%s: output %d is NULL (pass &train, &test)", op, k);
            return false;
        }
    int64_t small[SMALL],
        *len = n_lengths <= SMALL ? small : ag__malloc((size_t)n_lengths * sizeof *len);
    if (!len) {
        ag__error("%s: out of memory for %d lengths", op, n_lengths);
        return false;
    }
    bool ok = split_lengths(op, lengths, n_lengths, v.len, len, file, line);
    int64_t *perm = NULL;
    if (ok && (size_t)v.len <= SIZE_MAX / sizeof *perm)
        perm = ag__malloc((size_t)v.len * sizeof *perm);
    if (ok && !perm) {
        ag__error("%s: out of memory for a permutation of %lld", op, (long long)v.len);
        ok = false;
    }
    if (ok) ag__randperm_into(NULL, perm, v.len);
    /* Subsets of perm's consecutive pieces; a Subset of a Subset indexes its dataset. */
    agds *sub = block_of(ds);
    bool of_subset = sub && sub->kind == SUBSET;
    int made = 0;
    for (int64_t at = 0; ok && made < n_out; made++) {
        agds *a = new_block();
        int64_t *idx = a ? ag__malloc((size_t)(len[made] ? len[made] : 1) * sizeof *idx) : NULL;
        if (!idx) {
            if (a) kill_block(a);
            ag__error("%s: out of memory making a Subset of %lld items", op, (long long)len[made]);
            ok = false;
            break;
        }
        for (int64_t i = 0; i < len[made]; i++)
            idx[i] = of_subset ? sub->idx[perm[at + i]] : perm[at + i];
        at += len[made];
        a->base = (ag_dataset){v.fields, made_len, made_get, NULL};
        a->kind = SUBSET;
        a->of = of_subset ? sub->of : ds;
        a->idx = idx;
        a->n = len[made];
        *out[made] = &a->base;
    }
    if (!ok)
        for (int k = 0; k < made; k++) {
            kill_block((agds *)*out[k]);
            *out[k] = NULL;
        }
    ag__free(perm);
    if (len != small) ag__free(len);
    return ok;
}
