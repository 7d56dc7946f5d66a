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
    bool progress;      /* a progress line on stderr for each epoch ("epoch 3"), drawn only
                           when stderr is a terminal; default false */
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

/* ==================================================================================== */
/* CSV files and the progress line (data/csv.c, data/progress.c)                         */

/* ------------------------------------------------------------------------------------ */
/* Reading a data set from a CSV file: pandas.read_csv(path)[["x", "y"]].values as a     */
/* float32 tensor.                                                                       */
/*                                                                                       */
/*     ag_tensor *X = ag_read_csv("train.csv", .columns = AG_COLUMNS("x1", "x2"));       */
/*     ag_tensor *Y = ag_read_csv("train.csv", .columns = AG_COLUMNS("y"));              */
/*     ag_tensor *Z = ag_read_csv("train.csv", .indices = AG_INDICES(0, 2), .delimiter = ';'); */
/*                                                                                       */
/* The first row is the header: it names the columns, and every other row must have as  */
/* many fields. Without .columns or .indices every column is read, in the header's       */
/* order; with them, the columns asked for, in the order asked. Features and targets are */
/* two calls, as above (each reads the file).                                            */
/*                                                                                       */
/* A field is a number as Python's float() reads it: decimal, with an optional sign,     */
/* point and exponent, spaces around it allowed, and inf, infinity and nan in any case;  */
/* not hexadecimal, not with float()'s underscores, never empty. Its value is            */
/* float32(float(field)), as torch.tensor(pandas.read_csv(path).values).float() gives    */
/* (1e39 is inf, as there), whatever the program's locale. Fields may be quoted ("1.5"),  */
/* and a quoted header name may hold the delimiter, quotes written "" and line breaks.    */
/* Lines end in \n, \r\n or \r; blank lines (nothing, or spaces and tabs) are skipped    */
/* wherever they are; a UTF-8 byte order mark at the start is skipped; the last line     */
/* needs no line end. Lines are counted as a text editor counts them: a quoted field     */
/* over two lines moves the next row to the line after, and a message gives the line    */
/* where the row or field begins. Parsed by libcsv (the csv feature option; libcsv-dev),  */
/* strictly: a quote inside an unquoted field, or after a closing quote anything but a   */
/* delimiter or a line end, is an error. */

/* Columns by name: AG_COLUMNS("x", "y"), or (ag_csv_columns){names, n} for an array. */
typedef struct ag_csv_columns {
    const char *const *names;
    int n;
} ag_csv_columns;
#define AG_COLUMNS(...)                                                                            \
    ((ag_csv_columns){(const char *const[]){__VA_ARGS__},                                          \
                      (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))})

/* Columns by 0-based index: AG_INDICES(0, 2), or (ag_csv_indices){indices, n}. */
typedef struct ag_csv_indices {
    const int64_t *i;
    int n;
} ag_csv_indices;
#define AG_INDICES(...)                                                                            \
    ((ag_csv_indices){(const int64_t[]){__VA_ARGS__},                                              \
                      (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))})

typedef struct ag_read_csv_args {
    const char *path;
    ag_csv_columns columns; /* by name; or */
    ag_csv_indices indices; /* by index; neither: every column; both: an error */
    char delimiter;         /* ',' (also when 0); not '"', '\r' or '\n' */
} ag_read_csv_args;

/* The rows of the file at path (header excluded) as a new (rows, columns) float tensor on
 * the tape, a leaf; a file with a header and no rows gives (0, columns). NULL after an
 * error naming the file, and the line and column (by number and header name) where there
 * is one: a file that cannot be read (the system's reason), no header, a row with another
 * number of fields than the header, a field that is not a number, a column not in the
 * header or named twice there, an index out of range, a column asked for twice, bad
 * quoting, out of memory; or agrad built without libcsv. Nothing is made on error. */
AG_API ag_tensor *ag_read_csv_with(ag_read_csv_args args);
#define ag_read_csv(...)                                                                           \
    AG_PRIVATE_CALL(ag_read_csv_with, ag_read_csv_args, (.delimiter = ','), .path = __VA_ARGS__)

typedef struct ag_read_csv_bytes_args {
    const void *bytes;
    size_t size;
    ag_csv_columns columns;
    ag_csv_indices indices;
    char delimiter;
    const char *name; /* what messages call the bytes: 'name'; NULL: <memory> */
} ag_read_csv_bytes_args;

/* ag_read_csv of size bytes in memory (a file read already, a string); the same result and
 * errors, which name the bytes "<memory>" or 'name'. bytes may be NULL when size is 0. */
AG_API ag_tensor *ag_read_csv_bytes_with(ag_read_csv_bytes_args args);
#define ag_read_csv_bytes(...)                                                                     \
    AG_PRIVATE_CALL(ag_read_csv_bytes_with, ag_read_csv_bytes_args, (.delimiter = ','),            \
                    .bytes = __VA_ARGS__)

/* ------------------------------------------------------------------------------------ */
/* The progress line of a long loop, as tqdm draws it:                                   */
/*                                                                                       */
/*     epoch 3:  40%|####      | 4/10 [00:02<00:03,  2.00it/s]                            */
/*                                                                                       */
/*     ag_progress *bar = ag_progress_new("epoch 3", n_batches);                         */
/*     for (...) { ...; ag_progress_update(bar, 1); }                                     */
/*     ag_progress_close(bar);                                                           */
/*                                                                                       */
/* It is drawn on the stream (stderr by default) only when the stream is a terminal, and */
/* redrawn in place (a carriage return) at most 10 times a second: the description, the  */
/* count and total, with a known total the percentage and a bar as wide as the terminal */
/* allows, then the time elapsed, the time left and the rate (it/s, or s/it below one    */
/* iteration a second), the average since the start (tqdm's smoothing=0). The bar is of  */
/* Unicode blocks when the locale's environment (LC_ALL, LC_CTYPE, LANG) names UTF-8, of */
/* tqdm's ASCII characters otherwise. Elsewhere (a file, a pipe) nothing is written.     */

typedef struct ag_progress ag_progress;

typedef struct ag_progress_args {
    const char *desc; /* shown first, followed by ": "; NULL or "": nothing */
    int64_t total;    /* the count expected; 0: unknown (no percentage, bar or time left) */
    FILE *stream;     /* NULL: stderr */
    /* for tests: the time in seconds (any origin), instead of CLOCK_MONOTONIC's */
    double (*private_clock)(void);
} ag_progress_args;

/* A new progress line at count 0, drawn at once; free it with ag_progress_close. NULL after
 * an error: a negative total, out of memory. */
AG_API ag_progress *ag_progress_new_with(ag_progress_args args);
#define ag_progress_new(...)                                                                       \
    AG_PRIVATE_CALL(ag_progress_new_with, ag_progress_args, (.total = 0), .desc = __VA_ARGS__)

/* Adds n (>= 0) to the count and redraws if the last drawing is 0.1 s old. A NULL p does
 * nothing; a negative n, or a p closed already, is an error (false). */
AG_API bool ag_progress_update(ag_progress *p, int64_t n);

/* Draws the final line, ends it with a newline and frees p. NULL does nothing; a p closed
 * already is an error. ag_shutdown frees the lines left open, drawing nothing. */
AG_API void ag_progress_close(ag_progress *p);

#ifdef __cplusplus
}
#endif

#endif /* AGRAD_DATA_H */
