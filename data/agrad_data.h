/* agrad data: to be written (issue 9). */
#ifndef AGRAD_DATA_H
#define AGRAD_DATA_H

#include "agrad.h"

/* ==================================================================================== */
/* CSV files and the progress line (data/csv.c, data/progress.c)                         */

#ifdef __cplusplus
extern "C" {
#endif

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
