/*
 * agrad data: datasets and the DataLoader, as torch.utils.data has them.
 *
 * The lab's dataset class and its training loop:
 *
 *     class Data(Dataset):
 *         def __init__(self):
 *             self.x = torch.arange(-3, 3, 0.1).view(-1, 1)
 *             self.y = 1 * self.x - 1
 *             self.len = self.x.shape[0]
 *         def __getitem__(self, index):
 *             return self.x[index], self.y[index]
 *         def __len__(self):
 *             return self.len
 *
 *     dataset = Data()
 *     trainloader = DataLoader(dataset=dataset, batch_size=1)
 *     for epoch in range(epochs):
 *         for x, y in trainloader:
 *             ...
 *
 * in C: a struct that begins with an ag_dataset, its two functions, and a loop that
 * releases each step's graph to a mark made before the loop:
 *
 *     typedef struct Data {
 *         ag_dataset base;            // first: the dataset part
 *         ag_tensor *x, *y;
 *     } Data;
 *
 *     static int64_t data_len(ag_dataset *self) { return ag_len(((Data *)self)->x); }
 *     static bool data_get(ag_dataset *self, int64_t index, ag_tensor **items)
 *     {
 *         Data *d = (Data *)self;
 *         items[0] = ag_select(d->x, 0, index);                  // self.x[index]
 *         items[1] = ag_select(d->y, 0, index);                  // self.y[index]
 *         return items[0] && items[1];
 *     }
 *
 *     ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
 *     Data dataset = {AG_DATASET(2, data_len, data_get), X, ag_sub(ag_mul(1, X), 1)};
 *     ag_loader *trainloader = ag_DataLoader(&dataset, .batch_size = 1);
 *     ag_mark step = ag_mark_now();              // after the data and the parameters
 *     for (int epoch = 0; epoch < epochs; epoch++) {
 *         ag_tensor *x, *y;
 *         while (ag_next(trainloader, &x, &y)) { // for x, y in trainloader:
 *             ...                                // forward, backward, update
 *             ag_release(step);                  // frees this batch and its graph
 *         }
 *     }
 *     ag_loader_free(trainloader);
 *
 * ag_TensorDataset(X, Y) is the same dataset made by agrad. Batches are new tensors on
 * the tape, so the release at the end of each step frees them with the step's graph, and
 * an epoch allocates nothing from the system after the first (the loader's own state,
 * the epoch's order, lives outside the tape and is reused).
 *
 * With shuffle, each epoch draws from the global generator as PyTorch's single-process
 * DataLoader does, so that ag_manual_seed(s) gives PyTorch's order epoch after epoch.
 */
#ifndef AGRAD_DATA_H
#define AGRAD_DATA_H

#include "agrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Datasets                                                                              */

typedef struct ag_dataset ag_dataset;

/* A map-style dataset: len(dataset) and dataset[index]. A dataset of your own is a struct
 * whose first member is an ag_dataset, filled by AG_DATASET. agrad calls get only with
 * 0 <= index < len; get fills items[0..fields-1] with the item's tensors (new tensors,
 * or views such as ag_select(X, 0, index)) and returns true, or returns false after an
 * error (agrad then reports the index, and your error if it is pending). */
struct ag_dataset {
    int fields;                                                      /* tensors per item */
    int64_t (*len)(ag_dataset *self);                                /* its length, >= 0 */
    bool (*get)(ag_dataset *self, int64_t index, ag_tensor **items); /* one item */
    void (*destroy)(ag_dataset *self); /* called by ag_dataset_free; may be NULL */
};

/* AG_DATASET(fields, len, get) or AG_DATASET(fields, len, get, destroy): the ag_dataset
 * part of a dataset of your own, as in {AG_DATASET(2, data_len, data_get), X, Y}. */
#define AG_DATASET(n_fields, ...)                                                                  \
    {                                                                                              \
        .fields = (n_fields), .len = __VA_ARGS__                                                   \
    }

/* TensorDataset(X, Y, ...): the dataset whose item i is (X[i], Y[i], ...), views of rows
 * that share the tensors' storage. The tensors must share their first dimension and stay
 * live (made before your loop's mark); agrad keeps the pointers, not copies. A new dataset
 * owned by the caller (ag_dataset_free, or ag_shutdown); NULL after an error: a 0-d
 * tensor, first dimensions that differ ("Size mismatch between tensors", with the shapes),
 * a NULL or released tensor, out of memory. */
AG_API ag_dataset *ag_tensor_dataset_new(const ag_tensor *const *tensors, int n);
#define ag_TensorDataset(...)                                                                      \
    ag_tensor_dataset_new((const ag_tensor *const[]){__VA_ARGS__},                                 \
                          (int)(sizeof((const ag_tensor *[]){__VA_ARGS__}) / sizeof(ag_tensor *)))

/* len(dataset): its number of items; -1 after an error (a NULL or freed dataset, one whose
 * tensors were released, a len that returns a negative number). ds is a dataset agrad
 * made or a struct of yours beginning with an ag_dataset. */
AG_API int64_t ag_dataset_len(void *ds);

/* x, y = dataset[index]: stores the item's tensors in *x, *y (as many as the dataset's
 * fields: an error otherwise); a negative index counts from the end. True on success;
 * false after an error (index out of range, a freed dataset, get failing), with every
 * output NULL. For a TensorDataset the items are views of the rows (SelectBackward0). */
AG_API bool ag_dataset_get_n(void *ds, int64_t index, ag_tensor **const *out, int n);
#define ag_dataset_get(ds, index, ...)                                                             \
    ag_dataset_get_n(ds, index, (ag_tensor * *const[]){__VA_ARGS__},                               \
                     (int)(sizeof((ag_tensor **[]){__VA_ARGS__}) / sizeof(ag_tensor **)))

/* x, y = dataset[start:end], with Python's slice rules (negative counts from the end, out
 * of range is clipped; INT64_MAX as end: to the end). Each field is the items stacked
 * along a new first dimension, as the DataLoader's batches are; for a TensorDataset the
 * slices are views of the tensors, as in PyTorch. An empty slice gives tensors of shape
 * [0, item's shape]; of an empty dataset of your own it is an error (the item's shape is
 * unknown). False after an error, with every output NULL. */
AG_API bool ag_dataset_slice_n(void *ds, int64_t start, int64_t end, ag_tensor **const *out, int n);
#define ag_dataset_slice(ds, start, end, ...)                                                      \
    ag_dataset_slice_n(ds, start, end, (ag_tensor * *const[]){__VA_ARGS__},                        \
                       (int)(sizeof((ag_tensor **[]){__VA_ARGS__}) / sizeof(ag_tensor **)))

/* Frees a dataset agrad made (ag_TensorDataset, ag_random_split); for a dataset of
 * yours, calls its destroy if it has one. Loaders and subsets over ds report it from then
 * on ("a Subset of a freed dataset"). NULL does nothing; a freed dataset is an error, never
 * read (agrad cannot tell a dataset of yours freed already: free it once). */
AG_API void ag_dataset_free(void *ds);

/* torch.utils.data.random_split(dataset, lengths): ds split into len(lengths) new Subsets
 * of those lengths, from one randperm(len) of the global generator, as PyTorch 1.13
 * does. Lengths are whole numbers summing to len(ds), or fractions summing to 1 (each
 * floor(len * fraction), the remainder handed out one by one from the first; a split of
 * length 0 warns as PyTorch does). Written with AG_LENGTHS:
 *     ag_dataset *train, *test;
 *     ag_random_split(ds, AG_LENGTHS(0.8, 0.2), &train, &test);
 * (or an array of doubles and its count instead of AG_LENGTHS). The subsets are the
 * caller's (ag_dataset_free); a subset of a subset indexes the first one's dataset. False
 * after an error, every output NULL: lengths in PyTorch's words ("Sum of input lengths
 * does not equal the length of the input dataset!", "Fraction at index 1 is not between 0
 * and 1"), a negative or fractional length (PyTorch accepts some), outputs not one per
 * length, a freed dataset, out of memory. */
AG_API bool ag_random_split_at(void *ds, const double *lengths, int n_lengths,
                               ag_dataset **const *out, int n_out, const char *file, int line);
#define AG_LENGTHS(...)                                                                            \
    ((const double[]){__VA_ARGS__}), (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double))
#define ag_random_split(...) AG_PRIVATE_RANDOM_SPLIT(__VA_ARGS__)
#define AG_PRIVATE_RANDOM_SPLIT(ds, lengths, n_lengths, ...)                                       \
    ag_random_split_at(ds, lengths, n_lengths, (ag_dataset * *const[]){__VA_ARGS__},               \
                       (int)(sizeof((ag_dataset **[]){__VA_ARGS__}) / sizeof(ag_dataset **)),      \
                       __FILE__, __LINE__)

/* ------------------------------------------------------------------------------------ */
/* The DataLoader                                                                        */

typedef struct ag_loader ag_loader;

typedef struct ag_loader_args {
    void *dataset;      /* a dataset agrad made, or a struct of yours beginning with one */
    int64_t batch_size; /* items per batch; default 1 */
    bool shuffle;       /* a new order each epoch; default false */
    bool drop_last;     /* drop the last batch when it is smaller; default false */
    bool progress;      /* a progress line for each epoch; default false (not drawn yet) */
} ag_loader_args;

/* DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False): a new loader, the
 * caller's (ag_loader_free, or ag_shutdown); options by name or in order, as in
 * ag_DataLoader(&data, .batch_size = 4, .shuffle = true). It keeps a pointer to the
 * dataset, which must outlive it. NULL after an error, in PyTorch's words: "batch_size
 * should be a positive integer value, but got batch_size=0", with shuffle of an empty
 * dataset "num_samples should be a positive integer value, but got num_samples=0"; a
 * NULL or freed dataset, out of memory. */
AG_API ag_loader *ag_dataloader_with(ag_loader_args args);
#define ag_DataLoader(...)                                                                         \
    AG_PRIVATE_CALL(ag_dataloader_with, ag_loader_args, (.batch_size = 1), .dataset = __VA_ARGS__)

/* for x, y in loader: stores the next batch in *x, *y (as many as the dataset's fields:
 * an error otherwise) and returns true: each field is the batch's items stacked along a
 * new first dimension (default_collate), a new tensor on the tape that your release
 * frees. At the end of the epoch it returns false with every output NULL, and the next
 * call begins a new epoch, as a new `for` over the loader does (with shuffle, a new order
 * from the global generator). False after an error too (a freed loader or dataset,
 * released tensors, get failing, items of different shapes), the error set and the epoch
 * abandoned: clear the error before the loop (ag_clear_error) and look at
 * ag_last_error() after it to tell an error from the end. */
AG_API bool ag_next_n(ag_loader *loader, ag_tensor **const *out, int n);
#define ag_next(loader, ...)                                                                       \
    ag_next_n(loader, (ag_tensor * *const[]){__VA_ARGS__},                                         \
              (int)(sizeof((ag_tensor **[]){__VA_ARGS__}) / sizeof(ag_tensor **)))

/* iter(loader): abandons the epoch in progress; the next ag_next begins a new one. Draws
 * what Python's iter() draws from the global generator (one int64), so that a stream
 * that interleaves iter, other draws and next matches PyTorch's. False after an error (a
 * freed loader or dataset). */
AG_API bool ag_iter(ag_loader *loader);

/* len(loader): batches per epoch, len(dataset) / batch_size rounded up (down with
 * drop_last). -1 after an error (a freed loader or dataset). */
AG_API int64_t ag_loader_len(const ag_loader *loader);

/* Frees a loader (not its dataset). NULL does nothing; a freed loader is an error, never
 * read. */
AG_API void ag_loader_free(ag_loader *loader);

#ifdef __cplusplus
}
#endif

#endif /* AGRAD_DATA_H */
