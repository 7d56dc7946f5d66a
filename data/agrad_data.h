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
/*                                                                                       */
/* A dataset argument (void *ds) is a dataset agrad made or a struct of yours beginning  */
/* with an ag_dataset. Calls that give an item's tensors take one output per field      */
/* (&x, &y); on error every output is NULL and the message names the call and the cause: */
/* a NULL or freed dataset, released tensors, your get failing (with the index).         */

typedef struct ag_dataset ag_dataset;

/* len(dataset) and dataset[index]. agrad calls get only with 0 <= index < len; it fills
 * items[0..fields-1] (new tensors, or views such as ag_select(X, 0, index)) and returns
 * true, or false after an error. get and len must return (not longjmp), and may not free
 * the loader or dataset being read or call ag_shutdown (refused). */
struct ag_dataset {
    int fields;                                                      /* tensors per item */
    int64_t (*len)(ag_dataset *self);                                /* its length, >= 0 */
    bool (*get)(ag_dataset *self, int64_t index, ag_tensor **items); /* one item */
    void (*destroy)(ag_dataset *self); /* called by ag_dataset_free; may be NULL */
};

/* AG_DATASET(fields, len, get) or AG_DATASET(fields, len, get, destroy): the ag_dataset
 * part of a dataset of yours, as in {AG_DATASET(2, data_len, data_get), X, Y}. */
/* clang-format off */
#define AG_DATASET(n_fields, ...) {.fields = (n_fields), .len = __VA_ARGS__}
/* clang-format on */

/* TensorDataset(X, Y, ...): item i is (X[i], Y[i], ...), views of the rows. A new dataset,
 * the caller's (ag_dataset_free); it keeps the tensors' pointers: keep them live. NULL
 * after an error: "Size mismatch between tensors" (with the shapes), a 0-d or released one. */
AG_API ag_dataset *ag_tensor_dataset_new(const ag_tensor *const *tensors, int n);
#define ag_TensorDataset(...)                                                                      \
    ag_tensor_dataset_new((const ag_tensor *const[]){__VA_ARGS__},                                 \
                          (int)(sizeof((const ag_tensor *[]){__VA_ARGS__}) / sizeof(ag_tensor *)))

/* len(dataset); -1 after an error (also a len of yours that returns a negative number). */
AG_API int64_t ag_dataset_len(void *ds);

/* x, y = dataset[index] into *x, *y (a negative index counts from the end): new tensors on
 * the tape (a TensorDataset's are views of its rows). False after an error: an index out
 * of range ("index 4 is out of bounds for dimension 0 with size 4"), another count of
 * outputs than the fields. */
AG_API bool ag_dataset_get_n(void *ds, int64_t index, ag_tensor **const *out, int n);
/* clang-format off */
#define ag_dataset_get(ds, index, ...)                                                             \
    ag_dataset_get_n(ds, index, (ag_tensor **const[]){__VA_ARGS__},                                \
                     (int)(sizeof((ag_tensor **[]){__VA_ARGS__}) / sizeof(ag_tensor **)))
/* clang-format on */

/* x, y = dataset[start:end], Python's slice rules (INT64_MAX as end: to the end): each
 * field the items stacked (a TensorDataset's: views of its tensors, as in PyTorch); empty,
 * [0, item's shape]. False after an error (an empty slice of an empty dataset of yours). */
AG_API bool ag_dataset_slice_n(void *ds, int64_t start, int64_t end, ag_tensor **const *out, int n);
/* clang-format off */
#define ag_dataset_slice(ds, start, end, ...)                                                      \
    ag_dataset_slice_n(ds, start, end, (ag_tensor **const[]){__VA_ARGS__},                         \
                       (int)(sizeof((ag_tensor **[]){__VA_ARGS__}) / sizeof(ag_tensor **)))
/* clang-format on */

/* Frees a dataset agrad made; of yours, calls its destroy (if any): free it once. NULL does
 * nothing; a freed one is an error, never read. Loaders and Subsets over ds report it
 * from then on ("the loader's dataset was freed", "a Subset of a freed dataset"). */
AG_API void ag_dataset_free(void *ds);

/* torch.utils.data.random_split(ds, lengths) with PyTorch 1.13's order (one randperm of the
 * global generator): whole lengths summing to len(ds), or fractions summing to 1.
 *     ag_dataset *train, *test;
 *     ag_random_split(ds, AG_LENGTHS(0.8, 0.2), &train, &test);   (or lengths, count, ...)
 * New Subsets, the caller's (ag_dataset_free). False after an error, in PyTorch's words
 * ("Sum of input lengths does not equal the length of the input dataset!"), or a negative
 * or fractional length, which PyTorch accepts. A split of length 0 warns, as in PyTorch. */
AG_API bool ag_random_split_at(void *ds, const double *lengths, int n_lengths,
                               ag_dataset **const *out, int n_out, const char *file, int line);
/* clang-format off */
#define AG_LENGTHS(...)                                                                            \
    ((const double[]){__VA_ARGS__}), (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double))
#define ag_random_split(...) AG_PRIVATE_RANDOM_SPLIT(__VA_ARGS__)
#define AG_PRIVATE_RANDOM_SPLIT(ds, lengths, n_lengths, ...)                                       \
    ag_random_split_at(ds, lengths, n_lengths, (ag_dataset **const[]){__VA_ARGS__},                \
                       (int)(sizeof((ag_dataset **[]){__VA_ARGS__}) / sizeof(ag_dataset **)),      \
                       __FILE__, __LINE__)
/* clang-format on */

/* ------------------------------------------------------------------------------------ */
/* The DataLoader                                                                        */
/*                                                                                       */
/* A loader follows Python's single-process DataLoader: each iter() draws an int64 from  */
/* the global generator, and with shuffle an epoch's first next() draws a second, which  */
/* seeds a fresh generator whose randperm is the epoch's order; so ag_manual_seed(s)      */
/* gives PyTorch's batches epoch after epoch, and the stream goes on as PyTorch's does.   */

typedef struct ag_loader ag_loader;

typedef struct ag_loader_args {
    void *dataset;      /* a dataset agrad made, or a struct of yours beginning with one */
    int64_t batch_size; /* items per batch; default 1 */
    bool shuffle;       /* a new order each epoch; default false */
    bool drop_last;     /* drop the last batch when it is smaller; default false */
    bool progress;      /* a progress line for each epoch; default false (not drawn yet) */
} ag_loader_args;

/* DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False), options by name or in
 * order: a new loader, the caller's (ag_loader_free); the dataset must outlive it. NULL
 * after an error, in PyTorch's words ("batch_size should be a positive integer value..."). */
AG_API ag_loader *ag_dataloader_with(ag_loader_args args);
#define ag_DataLoader(...)                                                                         \
    AG_PRIVATE_CALL(ag_dataloader_with, ag_loader_args, (.batch_size = 1), .dataset = __VA_ARGS__)

/* for x, y in loader: the next batch into *x, *y, each field its items stacked along a new
 * first dimension: new tensors on the tape. False at the end of the epoch (the next call
 * begins a new one) and after an error (set; the epoch abandoned): clear the error before
 * the loop and read ag_last_error() after it to tell the two apart. */
AG_API bool ag_next_n(ag_loader *loader, ag_tensor **const *out, int n);
/* clang-format off */
#define ag_next(loader, ...)                                                                       \
    ag_next_n(loader, (ag_tensor **const[]){__VA_ARGS__},                                          \
              (int)(sizeof((ag_tensor **[]){__VA_ARGS__}) / sizeof(ag_tensor **)))
/* clang-format on */

/* iter(loader): abandons the epoch in progress and draws what Python's iter() draws; the
 * next ag_next begins the epoch. False after an error (a freed loader or dataset). */
AG_API bool ag_iter(ag_loader *loader);

/* len(loader): batches per epoch; -1 after an error (a freed loader or dataset). */
AG_API int64_t ag_loader_len(const ag_loader *loader);

/* Frees a loader (not its dataset). NULL does nothing; a freed one is an error, never read. */
AG_API void ag_loader_free(ag_loader *loader);

#ifdef __cplusplus
}
#endif

#endif /* AGRAD_DATA_H */
