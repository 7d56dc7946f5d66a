/* Datasets and the DataLoader against PyTorch 1.13 (tests/ref/data_ref.h, made by
 * tools/gen_ref_data.py): batches and their order epoch after epoch, the generator's state
 * after them, random_split's subsets, slices of the lab's dataset and the lab's SGD with a
 * DataLoader; then every error, the release rule over many epochs, and out of memory. */
#include "agrad_test.h"
#include "ref/data_ref.h"
#include <agrad_data.h>

#include <setjmp.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------ */
/* A dataset of the user's: the lab's class Data(Dataset)                                */

typedef struct Data {
    ag_dataset base;
    ag_tensor *x, *y;
} Data;

static int64_t data_len(ag_dataset *self) { return ag_len(((Data *)self)->x); }

static bool data_get(ag_dataset *self, int64_t index, ag_tensor **items)
{
    Data *d = (Data *)self;
    items[0] = ag_select(d->x, 0, index);
    items[1] = ag_select(d->y, 0, index);
    return items[0] && items[1];
}

/* x = arange(n).view(-1, 1), y = arange(n): the values are the items' indices. */
static ag_tensor *column(int64_t n) { return ag_view(ag_arange(0, (double)n, 1), AG_SHAPE(-1, 1)); }

/* ------------------------------------------------------------------------------------ */
/* Loader programs against PyTorch                                                       */

/* One ag_next checked against the trace at *t: a batch (its size, its indices) or the
 * end (0). Returns whether a batch came. */
static bool next_checked(const data_loader_ref *c, const char *how, ag_loader *l, int *t, bool grad)
{
    ag_tensor *x, *y;
    bool got = ag_next(l, &x, &y);
    cr_assert(*t < c->ntrace, "%s (%s): more batches than PyTorch gives", c->name, how);
    int64_t b = (int64_t)c->trace[(*t)++];
    if (!got) {
        cr_assert_str_empty(ag_last_error(), "%s (%s): ag_next failed: %s", c->name, how,
                            ag_last_error());
        cr_assert_eq(b, 0, "%s (%s): the epoch ended where PyTorch gives a batch of %lld", c->name,
                     how, (long long)b);
        cr_assert(x == NULL && y == NULL);
        return false;
    }
    cr_assert_neq(b, 0, "%s (%s): a batch where PyTorch's epoch ends", c->name, how);
    cr_assert(x->ndim == 2 && x->shape[0] == b && x->shape[1] == 1 && y->ndim == 1 &&
                  y->shape[0] == b,
              "%s (%s): batch shapes [%lld, %lld] and [%lld] for %lld items", c->name, how,
              (long long)x->shape[0], (long long)x->shape[1], (long long)y->shape[0], (long long)b);
    for (int64_t j = 0; j < b; j++) {
        double want = c->trace[(*t)++];
        cr_assert(x->data[j] == want && y->data[j] == want,
                  "%s (%s): item %lld of the batch is %g (x %g), PyTorch's index %g", c->name, how,
                  (long long)j, (double)y->data[j], (double)x->data[j], want);
    }
    if (grad)
        cr_assert_str_eq(ag_grad_fn_name(x), "StackBackward0");
    else
        cr_assert_null(ag_grad_fn_name(x));
    return true;
}

/* Replays c's program on a loader over ds, made right after manual_seed. */
static void run_program(const data_loader_ref *c, void *ds, const char *how, bool grad)
{
    ag_manual_seed(c->seed);
    ag_loader *l = ag_DataLoader(ds, .batch_size = c->batch_size, .shuffle = c->shuffle,
                                 .drop_last = c->drop_last);
    cr_assert_not_null(l, "%s: %s", c->name, ag_last_error());
    cr_assert_eq(ag_loader_len(l), c->len, "%s: len %lld, PyTorch %lld", c->name,
                 (long long)ag_loader_len(l), (long long)c->len);
    ag_mark step = ag_mark_now();
    int t = 0;
    for (const char *p = c->program; *p; p++) {
        switch (*p) {
        case 'E':
            while (next_checked(c, how, l, &t, grad)) ag_release(step);
            break;
        case 'I':
            cr_assert(ag_iter(l), "%s: iter failed: %s", c->name, ag_last_error());
            break;
        case 'N':
            next_checked(c, how, l, &t, grad);
            ag_release(step);
            break;
        default: {
            ag_tensor *r = ag_rand(AG_SHAPE(1));
            double want = c->trace[t++];
            cr_assert(r->data[0] == want,
                      "%s (%s): torch.rand(1) after the program's %s gives %.9g in agrad, %.9g "
                      "in PyTorch: the generator's state differs",
                      c->name, how, c->program, (double)r->data[0], want);
            ag_release(step);
        }
        }
    }
    cr_assert_eq(t, c->ntrace, "%s (%s): %d of PyTorch's %d values seen", c->name, how, t,
                 c->ntrace);
    ag_loader_free(l);
}

Test(loader, batches_and_orders_equal_pytorchs)
{
    record_errors();
    size_t n = sizeof data_loader_refs / sizeof *data_loader_refs;
    for (size_t k = 0; k < n; k++) {
        const data_loader_ref *c = &data_loader_refs[k];
        ag_tensor *X = column(c->n), *Y = ag_arange(0, (double)c->n, 1);
        /* a TensorDataset, its rows gathered */
        ag_dataset *ds = ag_TensorDataset(X, Y);
        run_program(c, ds, "TensorDataset", false);
        /* the same of a tensor that requires grad: rows selected and stacked, recorded */
        ag_tensor *Xg = ag_requires_grad_(column(c->n), true);
        ag_dataset *dg = ag_TensorDataset(Xg, Y);
        run_program(c, dg, "TensorDataset requiring grad", true);
        /* a dataset of the user's: its get called for each item */
        Data data = {AG_DATASET(2, data_len, data_get), X, Y};
        run_program(c, &data, "Data", false);
        ag_dataset_free(ds);
        ag_dataset_free(dg);
        ag_shutdown();
        record_errors();
    }
    cr_assert_geq(n, 153, "%zu loader programs in tests/ref/data_ref.h", n);
    test_finish();
}

Test(loader, shuffle_check_value_of_torch_rng_md)
{
    ag_tensor *v = ag_arange(0, 10, 1);
    ag_loader *l = ag_DataLoader(ag_TensorDataset(v), .shuffle = true);
    ag_manual_seed(1);
    const float want[2][10] = {{4, 2, 0, 6, 8, 7, 9, 1, 5, 3}, {4, 8, 1, 5, 0, 2, 3, 6, 9, 7}};
    ag_mark m = ag_mark_now();
    for (int epoch = 0; epoch < 2; epoch++) {
        ag_tensor *x;
        int i = 0;
        while (ag_next(l, &x)) {
            cr_assert(i < 10 && x->shape[0] == 1 && x->data[0] == want[epoch][i],
                      "epoch %d item %d: %g", epoch, i, (double)x->data[0]);
            i++;
            ag_release(m);
        }
        cr_assert_eq(i, 10);
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* The lab: its Data class, dataset[0], dataset[0:3], and its SGD with a DataLoader       */

static ag_tensor *lab_x(void) { return ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1)); }

Test(dataset, the_labs_data_class)
{
    ag_tensor *X = lab_x();
    Data dataset = {AG_DATASET(2, data_len, data_get), X, ag_sub(ag_mul(1, X), 1)};
    cr_assert_eq(ag_dataset_len(&dataset), 60);
    ag_tensor *x, *y;
    cr_assert(ag_dataset_get(&dataset, 0, &x, &y));
    CHECK("x", x, 0, -3.0f);
    CHECK("y", y, 0, -4.0f);
    cr_assert(x->ndim == 1 && x->shape[0] == 1, "dataset[0] is tensor([-3.])");
    cr_assert(ag_dataset_slice(&dataset, 0, 3, &x, &y));
    cr_assert(x->ndim == 2 && x->shape[0] == 3 && x->shape[1] == 1);
    CHECK("x[0:3]", x, 0, -3.0f, -2.9f, -2.8f);
    CHECK("y[0:3]", y, 0, -4.0f, -3.9f, -3.8f);
    test_finish();
}

Test(dataset, slices_equal_pytorchs)
{
    record_errors();
    ag_tensor *X = lab_x(), *Y = ag_sub(ag_mul(1, X), 1);
    Data data = {AG_DATASET(2, data_len, data_get), X, Y};
    ag_dataset *tds = ag_TensorDataset(X, Y);
    void *sets[2] = {&data, tds};
    for (size_t k = 0; k < sizeof data_slice_refs / sizeof *data_slice_refs; k++) {
        const data_slice_ref *c = &data_slice_refs[k];
        for (int s = 0; s < 2; s++) {
            ag_tensor *x, *y;
            cr_assert(ag_dataset_slice(sets[s], c->start, c->end, &x, &y), "[%lld:%lld]: %s",
                      (long long)c->start, (long long)c->end, ag_last_error());
            cr_assert(x->ndim == 2 && x->shape[0] == c->rows && x->shape[1] == 1 && y->ndim == 2 &&
                          y->shape[0] == c->rows && y->shape[1] == 1,
                      "[%lld:%lld] of %s: shape [%lld, %lld], PyTorch [%lld, 1]",
                      (long long)c->start, (long long)c->end, s ? "TensorDataset" : "Data",
                      (long long)x->shape[0], (long long)x->shape[1], (long long)c->rows);
            for (int64_t i = 0; i < c->rows; i++)
                cr_assert(x->data[i] == c->x[i] && y->data[i] == c->y[i],
                          "[%lld:%lld][%lld] = (%.9g, %.9g), PyTorch (%.9g, %.9g)",
                          (long long)c->start, (long long)c->end, (long long)i, (double)x->data[i],
                          (double)y->data[i], c->x[i], c->y[i]);
            /* TensorDataset's slices are views of X, as in PyTorch */
            if (s == 1 && c->rows > 0) cr_assert(x->data >= X->data && x->data < X->data + 60);
        }
    }
    test_finish();
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

Test(loader, the_labs_sgd_with_a_dataloader_equals_pytorchs)
{
    ag_manual_seed(1);
    ag_tensor *X = lab_x();
    ag_tensor *f = ag_sub(ag_mul(1, X), 1);
    ag_tensor *Y = ag_add(f, ag_mul(0.1, ag_randn(ag_size(X))));
    ag_tensor *w = ag_scalar(-15.0, true), *b = ag_scalar(-10.0, true);
    double lr = 0.1;
    Data dataset = {AG_DATASET(2, data_len, data_get), lab_x(), NULL};
    dataset.y = ag_sub(ag_mul(1, dataset.x), 1);
    ag_loader *trainloader = ag_DataLoader(&dataset, .batch_size = 1);
    ag_mark step = ag_mark_now();
    for (int epoch = 0; epoch < 10; epoch++) {
        ag_tensor *Yhat = ag_add(ag_mul(w, X), b);
        double loss_all = ag_item(ag_mean(ag_pow(ag_sub(Yhat, Y), 2)));
        cr_assert(rel(loss_all, data_lab_loss[epoch]) <= 1e-5, "epoch %d: LOSS %.9g, PyTorch %.9g",
                  epoch, loss_all, (double)data_lab_loss[epoch]);
        ag_release(step);
        ag_tensor *x, *y;
        while (ag_next(trainloader, &x, &y)) {
            ag_tensor *yhat = ag_add(ag_mul(w, x), b);
            ag_tensor *loss = ag_mean(ag_pow(ag_sub(yhat, y), 2));
            ag_backward(loss);
            ag_set_data(w, ag_sub(ag_data(w), ag_mul(lr, ag_data(w->grad))));
            ag_set_data(b, ag_sub(ag_data(b), ag_mul(lr, ag_data(b->grad))));
            ag_zero_(ag_data(w->grad));
            ag_zero_(ag_data(b->grad));
            ag_release(step);
        }
    }
    cr_assert(rel(ag_item(w), data_lab_w) <= 1e-5, "w %.9g, PyTorch %.9g", ag_item(w),
              (double)data_lab_w);
    cr_assert(rel(ag_item(b), data_lab_b) <= 1e-5, "b %.9g, PyTorch %.9g", ag_item(b),
              (double)data_lab_b);
    ag_loader_free(trainloader);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* random_split against PyTorch                                                          */

/* The items' values of a subset (field 1 of the arange dataset), checked against want. */
static void check_subset(const char *name, int k, ag_dataset *s, int64_t size, const double *want)
{
    cr_assert_not_null(s, "%s: subset %d is NULL", name, k);
    cr_assert_eq(ag_dataset_len(s), size, "%s: subset %d has %lld items, PyTorch %lld", name, k,
                 (long long)ag_dataset_len(s), (long long)size);
    for (int64_t i = 0; i < size; i++) {
        ag_tensor *x, *y;
        cr_assert(ag_dataset_get(s, i, &x, &y), "%s: %s", name, ag_last_error());
        cr_assert(y->data[0] == want[i] && x->data[0] == want[i],
                  "%s: subset %d item %lld is %g, PyTorch %g", name, k, (long long)i,
                  (double)y->data[0], want[i]);
    }
}

Test(dataset, random_split_equals_pytorchs)
{
    ag_set_warning_handler(NULL, NULL);
    size_t n = sizeof data_split_refs / sizeof *data_split_refs;
    for (size_t k = 0; k < n; k++) {
        const data_split_ref *c = &data_split_refs[k];
        ag_dataset *ds = ag_TensorDataset(column(c->n), ag_arange(0, (double)c->n, 1));
        ag_manual_seed(c->seed);
        ag_dataset *parts[10] = {NULL}, *outer[2] = {NULL};
        cr_assert(c->nlengths <= 10 && c->nouter <= 2);
        if (c->nouter) {
            cr_assert(ag_random_split_at(ds, c->outer, c->nouter,
                                         (ag_dataset * *const[]){&outer[0], &outer[1]}, c->nouter,
                                         __FILE__, __LINE__),
                      "%s: %s", c->name, ag_last_error());
            ds = outer[0];
        }
        ag_dataset **const out[10] = {&parts[0], &parts[1], &parts[2], &parts[3], &parts[4],
                                      &parts[5], &parts[6], &parts[7], &parts[8], &parts[9]};
        cr_assert(
            ag_random_split_at(ds, c->lengths, c->nlengths, out, c->nlengths, __FILE__, __LINE__),
            "%s: %s", c->name, ag_last_error());
        const double *v = c->values;
        for (int i = 0; i < c->nlengths; i++) {
            check_subset(c->name, i, parts[i], c->sizes[i], v);
            v += c->sizes[i];
        }
        ag_tensor *r = ag_rand(AG_SHAPE(1));
        cr_assert(r->data[0] == c->next_rand, "%s: the next rand %.9g, PyTorch %.9g", c->name,
                  (double)r->data[0], (double)c->next_rand);
        ag_shutdown();
        ag_set_warning_handler(NULL, NULL);
    }
    test_finish();
}

static char warned[4][160];
static int nwarned;
static void collect_warning(const char *message, void *userdata)
{
    (void)userdata;
    if (nwarned < 4) snprintf(warned[nwarned], sizeof warned[0], "%s", message);
    nwarned++;
}

Test(dataset, random_split_macro_and_its_warning)
{
    ag_set_warning_handler(collect_warning, NULL);
    ag_dataset *ds = ag_TensorDataset(ag_arange(0, 5, 1));
    ag_dataset *a, *b;
    for (int i = 0; i < 2; i++) { /* one call site: warned once, as Python's filter does */
        cr_assert(ag_random_split(ds, AG_LENGTHS(1.0, 0.0), &a, &b));
        cr_assert(ag_dataset_len(a) == 5 && ag_dataset_len(b) == 0);
    }
    cr_assert_eq(nwarned, 1);
    cr_assert_str_eq(warned[0], "Length of split at index 1 is 0. This might result in an empty "
                                "dataset.");
    /* an array and its count instead of AG_LENGTHS; a subset of a subset */
    double lengths[] = {3, 2};
    ag_dataset *c, *d;
    cr_assert(ag_random_split(a, lengths, 2, &c, &d));
    cr_assert(ag_dataset_len(c) == 3 && ag_dataset_len(d) == 2);
    ag_loader *l = ag_DataLoader(c, 2);
    cr_assert_eq(ag_loader_len(l), 2);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* TensorDataset, get and slice                                                          */

Test(dataset, tensor_dataset_items_are_views_of_rows)
{
    ag_tensor *X = ag_requires_grad_(ag_view(ag_arange(0, 6, 1), AG_SHAPE(3, 2)), true);
    ag_tensor *Y = ag_arange(10, 13, 1);
    ag_dataset *ds = ag_TensorDataset(X, Y);
    cr_assert_eq(ds->fields, 2);
    cr_assert_eq(ag_dataset_len(ds), 3);
    cr_assert_eq(ds->len(ds), 3, "the dataset's own functions work too");
    ag_tensor *x, *y;
    cr_assert(ag_dataset_get(ds, -1, &x, &y));
    cr_assert(x->data == X->data + 4 && x->ndim == 1 && x->shape[0] == 2, "X[-1] is a view");
    cr_assert_str_eq(ag_grad_fn_name(x), "SelectBackward0");
    CHECK("y", y, 0, 12.0f);
    ag_tensor *items[2];
    cr_assert(ds->get(ds, 1, items));
    CHECK("X[1]", items[0], 0, 2.0f, 3.0f);
    cr_assert(ag_dataset_slice(ds, 1, INT64_MAX, &x, &y));
    cr_assert(x->data == X->data + 2 && x->shape[0] == 2 && x->shape[1] == 2);
    cr_assert_str_eq(ag_grad_fn_name(x), "SliceBackward0");
    /* gradients reach X through the loader's batches */
    ag_loader *l = ag_DataLoader(ds, 2);
    cr_assert(ag_next(l, &x, &y));
    ag_backward(ag_sum(ag_mul(x, 3)));
    CHECK("X.grad", X->grad, 0, 3, 3, 3, 3, 0, 0);
    /* one tensor, one field */
    ag_dataset *one = ag_TensorDataset(Y);
    cr_assert(ag_dataset_get(one, 0, &y));
    CHECK("y", y, 0, 10.0f);
    test_finish();
}

Test(dataset, empty_slices_have_the_items_shape)
{
    ag_tensor *X = ag_zeros(AG_SHAPE(4, 2, 3)), *Y = ag_zeros(AG_SHAPE(4));
    ag_dataset *ds = ag_TensorDataset(X, Y);
    Data data = {AG_DATASET(2, data_len, data_get), X, Y};
    ag_dataset *a, *b;
    cr_assert(ag_random_split(ds, AG_LENGTHS(2, 2), &a, &b));
    void *sets[] = {ds, &data, a};
    for (int s = 0; s < 3; s++) {
        ag_tensor *x, *y;
        cr_assert(ag_dataset_slice(sets[s], 3, 1, &x, &y), "%d: %s", s, ag_last_error());
        cr_assert(x->ndim == 3 && x->shape[0] == 0 && x->shape[1] == 2 && x->shape[2] == 3, "%d",
                  s);
        cr_assert(y->ndim == 1 && y->shape[0] == 0, "%d", s);
        /* a subset slices by stacking, as PyTorch indexes with a list */
        cr_assert(ag_dataset_slice(sets[s], -2, INT64_MAX, &x, &y));
        cr_assert(x->ndim == 3 && x->shape[0] == 2 && y->shape[0] == 2);
    }
    test_finish();
}

static int destroyed;
static void data_destroy(ag_dataset *self)
{
    (void)self;
    destroyed++;
}

Test(dataset, freeing_a_dataset_of_the_users_calls_its_destroy)
{
    record_errors();
    ag_tensor *X = column(4);
    Data data = {AG_DATASET(2, data_len, data_get, data_destroy), X, X};
    cr_assert(data.base.destroy == data_destroy);
    ag_loader *l = ag_DataLoader(&data);
    ag_dataset_free(&data);
    cr_assert_eq(destroyed, 1);
    ag_tensor *x, *y;
    cr_assert_not(ag_next(l, &x, &y));
    EXPECT_ERROR("next of a loader over a freed dataset",
                 "next:", "the loader's dataset was freed");
    ag_dataset_free(NULL); /* nothing */
    cr_assert_str_empty(ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Misuse                                                                                */

Test(data_misuse, tensor_dataset_arguments)
{
    record_errors();
    ag_tensor *X = ag_zeros(AG_SHAPE(10, 1)), *Y = ag_zeros(AG_SHAPE(3));
    cr_assert_null(ag_TensorDataset(X, Y));
    EXPECT_ERROR("TensorDataset(X, Y)", "TensorDataset: Size mismatch between tensors",
                 "tensors[0] has shape [10, 1]", "tensors[1] has shape [3]");
    cr_assert_null(ag_TensorDataset(X, ag_scalar(1.0)));
    EXPECT_ERROR("TensorDataset of a 0-d tensor",
                 "Dimension specified as 0 but tensor has no dimensions", "tensors[1] is 0-d");
    cr_assert_null(ag_TensorDataset(X, NULL));
    EXPECT_ERROR("TensorDataset(X, NULL)", "TensorDataset: argument tensors[1] is NULL");
    cr_assert_null(ag_tensor_dataset_new(NULL, 0));
    EXPECT_ERROR("no tensors", "TensorDataset: at least one tensor is needed");
    ag_mark m = ag_mark_now();
    ag_tensor *Z = ag_zeros(AG_SHAPE(10));
    ag_release(m);
    cr_assert_null(ag_TensorDataset(X, Z));
    EXPECT_ERROR("a released tensor", "TensorDataset: argument tensors[1] is a released tensor");
    test_finish();
}

Test(data_misuse, dataloader_options_in_pytorchs_words)
{
    record_errors();
    ag_dataset *ds = ag_TensorDataset(ag_zeros(AG_SHAPE(5, 2)));
    cr_assert_null(ag_DataLoader(ds, .batch_size = 0));
    EXPECT_ERROR("batch_size 0",
                 "DataLoader: batch_size should be a positive integer value, but got batch_size=0");
    cr_assert_null(ag_DataLoader(ds, -3));
    EXPECT_ERROR("batch_size -3", "but got batch_size=-3");
    ag_dataset *empty = ag_TensorDataset(ag_zeros(AG_SHAPE(0, 2)));
    cr_assert_null(ag_DataLoader(empty, .shuffle = true));
    EXPECT_ERROR("shuffle of nothing",
                 "DataLoader: num_samples should be a positive integer value, but got "
                 "num_samples=0");
    /* PyTorch makes the sampler before it checks batch_size */
    cr_assert_null(ag_DataLoader(empty, .batch_size = 0, .shuffle = true));
    EXPECT_ERROR("both", "num_samples=0");
    /* without shuffle an empty dataset is fine: empty epochs */
    ag_loader *l = ag_DataLoader(empty, 4);
    cr_assert_eq(ag_loader_len(l), 0);
    ag_tensor *x;
    cr_assert_not(ag_next(l, &x));
    cr_assert_str_empty(ag_last_error());
    cr_assert_null(ag_DataLoader(NULL));
    EXPECT_ERROR("NULL dataset", "DataLoader: the dataset is NULL");
    /* a failed TensorDataset passes through silently: one mistake, one message */
    cr_assert_null(ag_DataLoader(ag_TensorDataset(ag_scalar(1.0))));
    EXPECT_ERROR("failed dataset", "TensorDataset:");
    test_finish();
}

Test(data_misuse, next_with_the_wrong_number_of_outputs)
{
    record_errors();
    ag_tensor *X = column(4);
    ag_loader *l = ag_DataLoader(ag_TensorDataset(X, X));
    ag_tensor *x, *y, *z;
    cr_assert_not(ag_next(l, &x));
    EXPECT_ERROR("one output",
                 "next: the dataset gives 2 tensors per item, but 1 output was given");
    cr_assert_not(ag_next(l, &x, &y, &z));
    EXPECT_ERROR("three", "but 3 outputs were given");
    cr_assert_not(ag_next(l, &x, NULL));
    EXPECT_ERROR("NULL output", "next: output 1 is NULL");
    ag_tensor *a, *b;
    cr_assert_not(ag_dataset_get(ag_TensorDataset(X), 0, &a, &b));
    EXPECT_ERROR("get", "dataset_get: the dataset gives 1 tensor per item, but 2 outputs were");
    cr_assert_not(ag_dataset_slice(ag_TensorDataset(X, X, X), 0, 1, &a, &b));
    EXPECT_ERROR("slice", "dataset_slice: the dataset gives 3 tensors per item");
    /* the epoch was not touched: the first batch is item 0 */
    cr_assert(ag_next(l, &x, &y));
    cr_assert(x->data[0] == 0);
    test_finish();
}

Test(data_misuse, end_of_epoch_and_error_are_told_apart)
{
    record_errors();
    ag_tensor *X = column(3);
    ag_dataset *ds = ag_TensorDataset(X);
    ag_loader *l = ag_DataLoader(ds, 2);
    ag_tensor *x;
    int batches = 0;
    ag_clear_error();
    while (ag_next(l, &x)) batches++;
    cr_assert_eq(batches, 2);
    cr_assert_str_empty(ag_last_error(), "the end is no error");
    cr_assert_null(x);
    ag_dataset_free(ds);
    cr_assert_not(ag_next(l, &x));
    cr_assert_str_neq(ag_last_error(), "", "an error is one");
    test_finish();
}

Test(data_misuse, freed_loaders_and_datasets_are_reported_not_read)
{
    record_errors();
    ag_tensor *X = column(6);
    ag_dataset *ds = ag_TensorDataset(X, X);
    ag_loader *l = ag_DataLoader(ds, 2);
    ag_loader_free(l);
    ag_tensor *x, *y;
    cr_assert_not(ag_next(l, &x, &y));
    EXPECT_ERROR("next", "next: the loader is not a live DataLoader (freed by ag_loader_free");
    cr_assert_not(ag_iter(l));
    EXPECT_ERROR("iter", "iter: the loader is not a live DataLoader");
    cr_assert_eq(ag_loader_len(l), -1);
    EXPECT_ERROR("len", "loader_len: the loader is not a live DataLoader");
    ag_loader_free(l);
    EXPECT_ERROR("free twice", "loader_free: the loader is not a live DataLoader");
    ag_loader_free(NULL);
    cr_assert_str_empty(ag_last_error());

    ag_dataset *train, *test;
    cr_assert(ag_random_split(ds, AG_LENGTHS(4, 2), &train, &test));
    ag_loader *lt = ag_DataLoader(train, 2);
    ag_dataset_free(ds);
    cr_assert_eq(ag_dataset_len(ds), -1);
    EXPECT_ERROR("len", "dataset_len: the dataset is not a live dataset (freed by ag_dataset_free");
    cr_assert_not(ag_dataset_get(ds, 0, &x, &y));
    EXPECT_ERROR("get", "dataset_get: the dataset is not a live dataset");
    cr_assert_null(ag_DataLoader(ds));
    EXPECT_ERROR("loader", "DataLoader: the dataset is not a live dataset");
    ag_dataset_free(ds);
    EXPECT_ERROR("free twice", "dataset_free: the dataset is not a live dataset");
    /* the subsets over it, and the loaders over those */
    cr_assert_eq(ag_dataset_len(train), -1);
    EXPECT_ERROR("subset", "dataset_len: the dataset is a Subset of a freed dataset");
    cr_assert_not(ag_next(lt, &x, &y));
    EXPECT_ERROR("loader over a subset", "next: the dataset is a Subset of a freed dataset");
    ag_dataset *a, *b;
    cr_assert_not(ag_random_split(test, AG_LENGTHS(1, 1), &a, &b));
    EXPECT_ERROR("split of a subset", "random_split: the dataset is a Subset of a freed dataset");
    cr_assert(a == NULL && b == NULL);
    /* a new dataset may take the freed one's block: the loader still says its was freed */
    ag_dataset *again = ag_TensorDataset(X);
    cr_assert_not(ag_next(lt, &x, &y));
    EXPECT_ERROR("still", "next:");
    ag_dataset_free(again);
    test_finish();
}

static void released_tensor_is_reported(bool checked)
{
    record_errors();
    ag_set_checked(checked);
    ag_mark m = ag_mark_now();
    ag_tensor *X = column(6);
    ag_dataset *ds = ag_TensorDataset(X);
    ag_loader *l = ag_DataLoader(ds, 2);
    ag_release(m); /* X was made after the mark: freed */
    ag_tensor *x;
    for (int k = 0; k < 2; k++) {
        cr_assert_not(ag_next(l, &x));
        EXPECT_ERROR("next", "next: argument dataset.tensors[0] is a released tensor");
        cr_assert_eq(ag_dataset_len(ds), -1);
        EXPECT_ERROR("len", "dataset_len: argument dataset.tensors[0] is a released tensor");
        /* newer tensors take X's memory in fast mode: still reported (X's serial) */
        for (int i = 0; i < 4; i++) column(6);
    }
    /* a dataset of the user's holds plain pointers: reported as tensors are, always in
     * checked mode, in fast mode until newer tensors take the memory (as above) */
    if (checked) {
        Data data = {AG_DATASET(2, data_len, data_get), X, X};
        cr_assert_not(ag_dataset_get(&data, 0, &x, &x));
        EXPECT_ERROR("a user's dataset over released tensors",
                     "dataset_get:", "is a released tensor");
    }
    test_finish();
}

Test(data_misuse, a_released_dataset_tensor_is_reported_in_checked_mode)
{
    released_tensor_is_reported(true);
}

Test(data_misuse, a_released_dataset_tensor_is_reported_in_fast_mode)
{
    released_tensor_is_reported(false);
}

/* A dataset of the user's whose get fails at one index, in several ways. */
typedef struct Flaky {
    ag_dataset base;
    ag_tensor *x;
    int64_t bad;
    int how; /* 0: false with an error of agrad's; 1: false alone; 2: a NULL item;
                3: an item of another shape */
} Flaky;

static int64_t flaky_len(ag_dataset *self) { return ag_len(((Flaky *)self)->x); }

static bool flaky_get(ag_dataset *self, int64_t index, ag_tensor **items)
{
    Flaky *f = (Flaky *)self;
    items[0] = ag_select(f->x, 0, index);
    if (index != f->bad) return true;
    switch (f->how) {
    case 0:
        items[0] = ag_select(f->x, 0, 100);
        return items[0] != NULL;
    case 1:
        return false;
    case 2:
        items[0] = NULL;
        return true;
    default:
        items[0] = ag_zeros(AG_SHAPE(3));
        return true;
    }
}

Test(data_misuse, a_failing_get_is_reported_with_its_index)
{
    record_errors();
    Flaky f = {AG_DATASET(1, flaky_len, flaky_get), column(6), 3, 0};
    ag_loader *l = ag_DataLoader(&f, 2);
    ag_tensor *x;
    cr_assert(ag_next(l, &x));
    cr_assert_not(ag_next(l, &x));
    EXPECT_ERROR("get with an error", "next: the dataset's get failed for index 3",
                 "select: index 100 out of range");
    cr_assert_null(x);
    /* the epoch was abandoned: the next call begins a new one at item 0 */
    f.bad = -1;
    cr_assert(ag_next(l, &x));
    cr_assert(x->data[0] == 0 && x->data[1] == 1);
    f.bad = 4;
    f.how = 1;
    cr_assert(ag_next(l, &x));
    cr_assert_not(ag_next(l, &x));
    EXPECT_ERROR("get false", "next: the dataset's get failed for index 4");
    f.how = 2;
    cr_assert(ag_next(l, &x));
    cr_assert(ag_next(l, &x));
    cr_assert_not(ag_next(l, &x));
    EXPECT_ERROR("NULL item", "next: the dataset's get gave NULL for item 0 at index 4");
    f.how = 3;
    f.bad = 1;
    cr_assert_not(ag_next(l, &x));
    EXPECT_ERROR("shapes",
                 "next: stack expects each tensor to be equal size, but got [1] at entry 0 "
                 "and [3] at entry 1",
                 "indices 0 and 1");
    /* through a Subset: the index of the dataset, and the subset's */
    ag_dataset *a, *b;
    f.bad = -1;
    ag_manual_seed(0);
    cr_assert(ag_random_split(&f, AG_LENGTHS(6, 0), &a, &b));
    f.bad = 2;
    f.how = 1;
    cr_assert_not(ag_dataset_slice(a, 0, 6, &x));
    EXPECT_ERROR("subset", "dataset_slice: the dataset's get failed for index 2 (item");
    test_finish();
}

static int64_t negative_len(ag_dataset *self)
{
    (void)self;
    return -1;
}

Test(data_misuse, datasets_that_are_not_datasets)
{
    record_errors();
    ag_tensor *X = column(4);
    Data nofields = {AG_DATASET(0, data_len, data_get), X, X};
    cr_assert_eq(ag_dataset_len(&nofields), -1);
    EXPECT_ERROR("fields 0", "dataset_len: the dataset has fields=0",
                 "AG_DATASET(fields, len, get)");
    Data noget = {AG_DATASET(2, data_len, NULL), X, X};
    cr_assert_null(ag_DataLoader(&noget));
    EXPECT_ERROR("no get", "DataLoader: the dataset has fields=2, len set and get NULL");
    Data neg = {AG_DATASET(2, negative_len, data_get), X, X};
    cr_assert_eq(ag_dataset_len(&neg), -1);
    EXPECT_ERROR("negative len", "the dataset's len returned -1: __len__() should return >= 0");
    cr_assert_null(ag_DataLoader(X));
    EXPECT_ERROR("a tensor", "DataLoader: the dataset is a tensor, not a dataset",
                 "ag_TensorDataset(X, Y)");
    ag_loader *l = ag_DataLoader(ag_TensorDataset(X));
    cr_assert_null(ag_DataLoader(l));
    EXPECT_ERROR("a loader", "DataLoader: the dataset is a DataLoader, not a dataset");
    ag_dataset_free(X);
    EXPECT_ERROR("free a tensor", "dataset_free: the dataset is a tensor");
    test_finish();
}

Test(data_misuse, indices_out_of_range_and_empty_slices)
{
    record_errors();
    ag_tensor *X = column(4);
    ag_dataset *ds = ag_TensorDataset(X);
    ag_tensor *x;
    cr_assert_not(ag_dataset_get(ds, 4, &x));
    EXPECT_ERROR("4", "dataset_get: index 4 is out of bounds for dimension 0 with size 4");
    cr_assert_not(ag_dataset_get(ds, -5, &x));
    EXPECT_ERROR("-5", "index -5 is out of bounds");
    cr_assert_null(x);
    ag_tensor *items[1];
    cr_assert_not(ds->get(ds, 7, items));
    EXPECT_ERROR("ds->get", "get: index 7 is out of bounds");
    Data empty = {AG_DATASET(2, data_len, data_get), ag_zeros(AG_SHAPE(0, 1)), X};
    ag_tensor *y;
    cr_assert_not(ag_dataset_slice(&empty, 0, 3, &x, &y));
    EXPECT_ERROR("empty", "dataset_slice: an empty slice of an empty dataset");
    test_finish();
}

Test(data_misuse, a_users_dataset_changed_under_its_subsets_and_loaders)
{
    record_errors();
    ag_tensor *X = column(4);
    Data data = {AG_DATASET(2, data_len, data_get), X, X};
    ag_dataset *a, *b;
    cr_assert(ag_random_split(&data, AG_LENGTHS(2, 2), &a, &b));
    ag_loader *l = ag_DataLoader(&data);
    ag_tensor *x, *y;
    cr_assert(ag_next(l, &x, &y));
    /* fields changed since the split */
    data.base.fields = 1;
    cr_assert_eq(ag_dataset_len(a), -1);
    EXPECT_ERROR("fields", "dataset_len: the Subset's dataset has fields=1, 2 when the Subset "
                           "was made");
    data.base.fields = 2;
    /* shorter than the Subset's indices, or than the loader's epoch */
    data.x = column(1);
    cr_assert_not(ag_dataset_slice(a, 0, 2, &x, &y));
    EXPECT_ERROR("a Subset", "dataset_slice: index ",
                 "of the Subset) is out of range for the dataset of length 1 (its length "
                 "changed)");
    cr_assert(x == NULL && y == NULL);
    cr_assert_not(ag_next(l, &x, &y));
    EXPECT_ERROR("a loader",
                 "next: index 1 is out of range for the dataset of length 1 (its length changed)");
    /* the epoch was abandoned: the next one is of the dataset as it is now */
    cr_assert(ag_next(l, &x, &y));
    cr_assert_not(ag_next(l, &x, &y));
    cr_assert_str_empty(ag_last_error());
    test_finish();
}

/* A dataset of the user's whose items have four dimensions already. */
static int64_t deep_len(ag_dataset *self)
{
    (void)self;
    return 3;
}

static bool deep_get(ag_dataset *self, int64_t index, ag_tensor **items)
{
    (void)self;
    (void)index;
    items[0] = ag_zeros(AG_SHAPE(1, 2, 1, 2));
    return items[0] != NULL;
}

Test(data_misuse, items_of_four_dimensions_make_no_batch)
{
    record_errors();
    ag_dataset deep = AG_DATASET(1, deep_len, deep_get);
    ag_tensor *x;
    cr_assert(ag_dataset_get(&deep, 2, &x), "%s", ag_last_error());
    cr_assert_eq(x->ndim, 4);
    cr_assert_not(ag_dataset_slice(&deep, 0, 2, &x));
    EXPECT_ERROR("a slice", "dataset_slice: a batch of item 0 (of shape [1, 2, 1, 2]) would have "
                            "5 dimensions; agrad has at most 4");
    cr_assert_not(ag_dataset_slice(&deep, 2, 1, &x));
    EXPECT_ERROR("an empty slice", "dataset_slice: a slice of item 0 (of shape [1, 2, 1, 2]) "
                                   "would have 5 dimensions; agrad has at most 4");
    ag_loader *l = ag_DataLoader(&deep, 2);
    cr_assert_not(ag_next(l, &x));
    EXPECT_ERROR("a batch", "next: a batch of item 0 (of shape [1, 2, 1, 2]) would have 5 "
                            "dimensions; agrad has at most 4");
    cr_assert_null(x);
    test_finish();
}

Test(data_misuse, random_split_lengths)
{
    record_errors();
    ag_set_warning_handler(NULL, NULL);
    ag_dataset *ds = ag_TensorDataset(column(10));
    ag_dataset *a, *b, *c;
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(3, 3), &a, &b));
    EXPECT_ERROR("sum", "random_split: Sum of input lengths does not equal the length of the "
                        "input dataset!");
    cr_assert(a == NULL && b == NULL);
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(0.5, -0.2, 0.7), &a, &b, &c));
    EXPECT_ERROR("fraction", "random_split: Fraction at index 1 is not between 0 and 1");
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(12, -2), &a, &b));
    EXPECT_ERROR("negative",
                 "random_split: lengths[1] is -2: a length must be a whole number >= 0");
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(2.5, 7.5), &a, &b));
    EXPECT_ERROR("fractional", "lengths[0] is 2.5");
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(5, 5), &a));
    EXPECT_ERROR("count", "random_split: 2 lengths but 1 outputs");
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(NAN, 10), &a, &b));
    EXPECT_ERROR("nan", "Sum of input lengths");
    cr_assert_not(ag_random_split(ds, AG_LENGTHS(5, 5), &a, NULL));
    EXPECT_ERROR("NULL output", "random_split: output 1 is NULL");
    test_finish();
}

/* A dataset whose get misbehaves towards agrad: frees what is being read, iterates its own
 * loader, shuts agrad down. */
typedef struct Rude {
    ag_dataset base;
    ag_tensor *x;
    int what;
    ag_loader *loader;
    const char *seen;
} Rude;

static char rude_error[256];
static int64_t rude_len(ag_dataset *self) { return ag_len(((Rude *)self)->x); }

static bool rude_get(ag_dataset *self, int64_t index, ag_tensor **items)
{
    Rude *r = (Rude *)self;
    ag_clear_error();
    if (r->what == 0) ag_loader_free(r->loader);
    if (r->what == 1) ag_dataset_free(self);
    if (r->what == 2) {
        ag_tensor *x;
        ag_next(r->loader, &x);
    }
    if (r->what == 3) ag_shutdown();
    snprintf(rude_error, sizeof rude_error, "%s", ag_last_error());
    items[0] = ag_select(r->x, 0, index);
    return items[0] != NULL;
}

Test(data_misuse, a_get_that_frees_or_shuts_down_what_is_read_is_refused)
{
    record_errors();
    Rude r = {AG_DATASET(1, rude_len, rude_get), column(10), 0, NULL, NULL};
    r.loader = ag_DataLoader(&r, 2);
    const char *want[] = {"loader_free: called from inside a dataset's get",
                          "dataset_free: called from inside a dataset's get",
                          "next: called from inside the get of the dataset this loader",
                          "ag_shutdown: called from inside"};
    for (r.what = 0; r.what < 4; r.what++) {
        ag_tensor *x;
        cr_assert(ag_next(r.loader, &x), "%d: %s", r.what, ag_last_error());
        cr_assert(strstr(rude_error, want[r.what]), "%d: the get saw \"%s\"", r.what, rude_error);
        cr_assert(x->shape[0] == 2);
        ag_clear_error();
    }
    /* the loader and its tensors are as they were */
    cr_assert_eq(ag_loader_len(r.loader), 5);
    ag_loader_free(r.loader);
    cr_assert_str_empty(ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Memory: the release rule over many epochs, out of memory                              */

static void flat_over_epochs(void *ds, bool shuffle, bool backward)
{
    ag_loader *l = ag_DataLoader(ds, .batch_size = 4, .shuffle = shuffle);
    ag_tensor *w = ag_ones(AG_SHAPE(1), .requires_grad = true);
    ag_mark step = ag_mark_now();
    size_t live = ag_memory_stats().live_tensors, allocs = 0;
    for (int epoch = 0; epoch < 100; epoch++) {
        ag_tensor *x, *y;
        int batches = 0;
        while (ag_next(l, &x, &y)) {
            if (backward) ag_backward(ag_mean(ag_pow(ag_sub(ag_mul(w, x), y), 2)));
            ag_release(step);
            batches++;
            cr_assert_eq(ag_memory_stats().live_tensors, live);
        }
        cr_assert_eq(batches, 15);
        cr_assert_str_empty(ag_last_error());
        if (epoch == 0) allocs = ag_memory_stats().system_allocs;
    }
    cr_assert_eq(ag_memory_stats().system_allocs, allocs,
                 "epochs after the first allocated from the system (%zu, then %zu)", allocs,
                 ag_memory_stats().system_allocs);
    ag_loader_free(l);
}

Test(data_memory, epochs_released_to_a_mark_hold_memory_flat)
{
    record_errors();
    /* fast mode: checked mode keeps released memory from reuse for 256 MiB, and takes new
     * chunks meanwhile (the live tensors stay flat there too) */
    ag_set_checked(false);
    ag_tensor *X = column(60), *Y = ag_sub(X, 1);
    ag_dataset *tds = ag_TensorDataset(X, Y);
    Data data = {AG_DATASET(2, data_len, data_get), X, Y};
    ag_tensor *Xg = ag_requires_grad_(column(60), true);
    ag_dataset *gds = ag_TensorDataset(Xg, Y);
    ag_dataset *sub, *rest;
    cr_assert(ag_random_split(&data, AG_LENGTHS(58, 2), &sub, &rest));
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        flat_over_epochs(tds, shuffle, false);
        flat_over_epochs(&data, shuffle, true);
        flat_over_epochs(gds, shuffle, true);
        flat_over_epochs(sub, shuffle, false);
    }
    test_finish();
}

Test(data_memory, every_allocation_can_fail)
{
    record_errors();
    ag_set_allocator(agt_faulty_realloc, NULL);
    ag_set_warning_handler(NULL, NULL);
    for (long k = 1;; k++) {
        ag_tensor *X = column(10), *Y = ag_arange(0, 10, 1);
        Data data = {AG_DATASET(2, data_len, data_get), X, Y};
        ag_clear_error();
        agt_arm(k);
        ag_dataset *ds = ag_TensorDataset(X, Y), *a = NULL, *b = NULL;
        bool ok = ds && ag_random_split(ds, AG_LENGTHS(0.7, 0.3), &a, &b);
        ag_loader *l = ok ? ag_DataLoader(a, .batch_size = 3, .shuffle = true) : NULL;
        ag_loader *lu = l ? ag_DataLoader(&data, .batch_size = 4, .shuffle = true) : NULL;
        ag_tensor *x, *y;
        int batches = 0;
        while (lu && ag_next(l, &x, &y)) batches++;
        while (lu && ag_next(lu, &x, &y)) batches++;
        ag_tensor *s1 = NULL, *s2 = NULL;
        if (lu) ag_dataset_slice(a, 0, 5, &s1, &s2);
        bool failed = fault.failed;
        agt_arm(0);
        if (!failed) {
            cr_assert_eq(batches, 3 + 3);
            cr_assert_not_null(s1);
            break;
        }
        cr_assert_str_not_empty(ag_last_error(), "allocation %ld failed without an error", k);
        ag_shutdown();
        record_errors();
        ag_set_allocator(agt_faulty_realloc, NULL);
        ag_set_warning_handler(NULL, NULL);
    }
    test_finish();
}
