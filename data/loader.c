/* The DataLoader: batches of a dataset, epoch after epoch, in PyTorch 1.13's order.
 *
 * A loader is memory from the allocation hook, listed in `loaders` so that a freed one
 * passed again is reported, never read. It follows Python's single-process loader step by
 * step, because each step draws from the global generator at its own moment:
 *   - iter(loader) makes an iterator, which draws an int64 base seed (random_(): one
 *     random64 % 2^63) that a single-process loader never uses (ag_iter; ag_next does it
 *     first when no epoch is open);
 *   - the first next() starts the sampler: with shuffle, RandomSampler draws a second int64,
 *     seeds a fresh generator with it (torch.Generator().manual_seed) and takes the epoch's
 *     order from randperm(n) of that generator; without, the order is 0..n-1;
 *   - then BatchSampler cuts the order into batches of batch_size, the last one smaller
 *     unless drop_last, and default_collate stacks each field of a batch's items.
 * The epoch's order and the pointers collate needs are kept in the loader and reused, so
 * that an epoch allocates nothing from the system after the first (the progress line, when
 * asked for, is the exception: one small block an epoch). */
#include "data_internal.h"

#include <string.h>

typedef enum state {
    IDLE,     /* no epoch open: the next ag_next begins one, as `for` calls iter() */
    ITERATED, /* iter() done, the sampler not started yet */
    RUNNING,  /* an epoch in progress */
} state;

struct ag_loader {
    void *dataset;
    int64_t batch_size;
    bool shuffle, drop_last;
    bool progress;    /* draw a progress line for each epoch */
    ag_progress *bar; /* the epoch's line, while one is open */
    int64_t epochs;   /* epochs begun, to number the lines */
    bool orphaned;    /* the dataset was freed (ag_dataset_free) */
    bool busy;        /* inside ag_next: meaningful while a user's get runs */
    state state;
    int64_t n, pos;   /* the epoch's number of items, the next position */
    int64_t *order;   /* shuffle: the epoch's permutation */
    size_t cap_order; /* in items */
    ag_tensor **buf;  /* (batch + 1) * fields pointers for collate */
    size_t cap_buf;   /* in pointers */
    ag__mt gen;       /* the generator a shuffled epoch seeds afresh */
};

static ag__live loaders;

bool ag__is_loader(const void *p) { return ag__live_has(&loaders, p); }

void ag__loaders_dataset_freed(const void *ds)
{
    for (size_t i = 0; i < loaders.n; i++) {
        ag_loader *l = loaders.p[i];
        if (l->dataset == ds) l->orphaned = true;
    }
}

static void destroy(ag_loader *l)
{
    ag__free(l->order);
    ag__free(l->buf);
    ag__free(l);
}

void ag__loaders_reset(void)
{
    for (size_t i = 0; i < loaders.n; i++) destroy(loaders.p[i]);
    ag__live_clear(&loaders);
}

/* Checks a loader argument of op: live, not being read by the call's own get, its dataset
 * not freed. */
static bool check_loader(const ag_loader *l, const char *op)
{
    if (!ag__live_has(&loaders, l)) {
        if (l)
            ag__error("%s: the loader is not a live DataLoader (freed by ag_loader_free or "
                      "ag_shutdown)",
                      op);
        else if (!ag_last_error()[0])
            ag__error("%s: the loader is NULL", op);
        return false;
    }
    if (l->busy && ag__data_in_callback()) {
        ag__error("%s: called from inside the get of the dataset this loader is reading", op);
        return false;
    }
    if (l->orphaned) {
        ag__error("%s: the loader's dataset was freed (ag_dataset_free)", op);
        return false;
    }
    return true;
}

/* len(loader) over n items: BatchSampler's length. */
static int64_t batches(const ag_loader *l, int64_t n)
{
    return n / l->batch_size + (!l->drop_last && n % l->batch_size != 0);
}

static void num_samples_error(const char *op)
{
    ag__error("%s: num_samples should be a positive integer value, but got num_samples=0", op);
}

AG_API ag_loader *ag_dataloader_with(ag_loader_args a)
{
    const char *op = "DataLoader";
    ag__view v;
    if (!ag__dataset_view(op, a.dataset, &v)) return NULL;
    /* PyTorch's order: the RandomSampler is made (and checks its length) before the
     * BatchSampler checks batch_size. */
    if (a.shuffle && v.len == 0) return num_samples_error(op), NULL;
    if (a.batch_size <= 0)
        return ag__error("%s: batch_size should be a positive integer value, but got "
                         "batch_size=%lld",
                         op, (long long)a.batch_size);
    ag_loader *l = ag__malloc(sizeof *l);
    if (!l || !ag__live_add(&loaders, l)) {
        ag__free(l);
        return ag__error("%s: out of memory making a loader", op);
    }
    *l = (ag_loader){.dataset = a.dataset,
                     .batch_size = a.batch_size,
                     .shuffle = a.shuffle,
                     .drop_last = a.drop_last,
                     .progress = a.progress,
                     .state = IDLE};
    return l;
}

/* Python's iter(loader): the base seed, drawn and not used. */
static void iterate(ag_loader *l)
{
    (void)ag__random64();
    l->state = ITERATED;
}

AG_API bool ag_iter(ag_loader *l)
{
    ag__view v;
    if (!check_loader(l, "iter") || !ag__dataset_view("iter", l->dataset, &v)) return false;
    iterate(l);
    return true;
}

/* Closes the epoch's progress line, if one is open: it stays on the terminal as tqdm's
 * does. */
static void end_bar(ag_loader *l)
{
    ag_progress_close(l->bar);
    l->bar = NULL;
}

/* The sampler's start, at the epoch's first next(): its length, and with shuffle the
 * order from a fresh generator seeded by a second draw. False after an error. */
static bool start_epoch(ag_loader *l, const ag__view *v)
{
    l->n = v->len;
    l->pos = 0;
    end_bar(l); /* an epoch abandoned before its end */
    if (l->progress) {
        char desc[32];
        snprintf(desc, sizeof desc, "epoch %lld", (long long)++l->epochs);
        /* the function, not the macro: no statement expression in the library */
        l->bar = ag_progress_new_with((ag_progress_args){.desc = desc, .total = batches(l, l->n)});
        if (!l->bar) return false;
    }
    if (l->shuffle) {
        const char *op = "next";
        if (l->n == 0) return num_samples_error(op), false;
        int64_t *order = (size_t)l->n <= SIZE_MAX / sizeof *order
                             ? ag__grow(l->order, &l->cap_order, (size_t)l->n, sizeof *order)
                             : NULL;
        if (!order) {
            ag__error("%s: out of memory for the order of %lld items", op, (long long)l->n);
            return false;
        }
        l->order = order;
        ag__mt_seed(&l->gen, ag__random64() & (uint64_t)INT64_MAX);
        ag__randperm_into(&l->gen, l->order, l->n);
    }
    l->state = RUNNING;
    return true;
}

AG_API bool ag_next_n(ag_loader *l, ag_tensor **const *out, int n)
{
    const char *op = "next";
    ag__clear_outputs(out, n);
    ag__view v;
    if (!check_loader(l, op) || !ag__dataset_view(op, l->dataset, &v) ||
        !ag__check_outputs(op, &v, out, n))
        return false;

    if (l->state == IDLE) iterate(l);
    if (l->state == ITERATED && !start_epoch(l, &v)) {
        l->state = IDLE;
        return false;
    }
    int64_t left = l->n - l->pos;
    if (left == 0 || (l->drop_last && left < l->batch_size)) {
        l->state = IDLE; /* the end of the epoch */
        end_bar(l);
        return false;
    }
    int64_t b = left < l->batch_size ? left : l->batch_size;
    /* collate's (b + 1) * n pointers, then the n results */
    ag_tensor **buf = NULL;
    if (b < INT64_MAX / n - 2 && (size_t)(b + 2) * (size_t)n <= SIZE_MAX / sizeof *buf)
        buf = ag__grow(l->buf, &l->cap_buf, (size_t)(b + 2) * (size_t)n, sizeof *buf);
    if (!buf) {
        l->state = IDLE;
        ag__error("%s: out of memory for a batch of %lld items", op, (long long)b);
        return false;
    }
    l->buf = buf;
    ag_tensor **res = buf + (size_t)(b + 1) * (size_t)n;

    /* Until the batch is made the epoch counts as abandoned, as an exception out of a
     * Python `for` leaves it, so that an error handler that longjmps out of collate
     * leaves a loader the next call can use. */
    l->state = IDLE;
    l->busy = true;
    bool ok = ag__dataset_collate(op, &v, l->shuffle ? l->order : NULL, l->pos, b, buf, res);
    l->busy = false;
    if (!ok) return false;
    for (int k = 0; k < n; k++) *out[k] = res[k];
    l->pos += b;
    l->state = RUNNING;
    return l->bar ? ag_progress_update(l->bar, 1) : true;
}

AG_API int64_t ag_loader_len(const ag_loader *l)
{
    ag__view v;
    if (!check_loader(l, "loader_len") || !ag__dataset_view("loader_len", l->dataset, &v))
        return -1;
    return batches(l, v.len);
}

AG_API void ag_loader_free(ag_loader *l)
{
    if (!l) return;
    if (ag__data_in_callback()) {
        ag__error("loader_free: called from inside a dataset's get, len or destroy, while "
                  "agrad reads a dataset; ignored");
        return;
    }
    if (!ag__live_has(&loaders, l)) {
        ag__error("loader_free: the loader is not a live DataLoader (freed by ag_loader_free "
                  "or ag_shutdown)");
        return;
    }
    ag__live_remove(&loaders, l);
    end_bar(l);
    destroy(l);
}
