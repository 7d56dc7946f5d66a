/* Reading a data set from a CSV file (agrad_data.h says what is read and how it fails).
 *
 * libcsv splits the bytes into fields and rows and calls on_field and on_row; this file
 * keeps the header, turns the chosen fields into floats and counts lines. libcsv reports
 * no positions, so the bytes are fed one line at a time (a piece ends after each \r or
 * \n): a callback then knows the line of the byte that ended its field, and a field that
 * began on an earlier line (quoted, with line breaks in it) holds those breaks, which
 * are subtracted. The values go into a growing buffer, copied into the tensor at the end,
 * so that nothing is made on the tape when reading fails. libcsv's buffer grows through
 * agrad's allocation hook (set per parser: nothing global to put back). */
#include "internal.h"

#include "agrad_data.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef AG_HAVE_CSV
#include <csv.h>

/* The bytes fread takes at a time from a file. */
#define CHUNK 16384

/* Messages; texts quoted in them are cut after TEXT bytes, which QUOTED bytes hold. */
enum { MSG = 1024, TEXT = 48, QUOTED = 4 * TEXT + 16, COLUMN = QUOTED + 80 };

/* ------------------------------------------------------------------------------------ */
/* Text in messages                                                                      */

/* s[0..len) between double quotes for a message, escaped as a C string: quotes and
 * backslashes, \n, \r and \t, other control bytes as \xNN; cut after TEXT bytes (and the
 * rest of a UTF-8 character, at most 3 bytes) with "...". */
static const char *quoted(char buf[QUOTED], const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *o = buf;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= TEXT && ((c & 0xc0) != 0x80 || i >= TEXT + 3)) {
            memcpy(o, "\"...", 4);
            o += 4;
            *o = '\0';
            return buf;
        }
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            *o++ = '\\';
            *o++ = (char)(c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\', *o++ = 'x', *o++ = hex[c >> 4], *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* Numbers                                                                               */

static bool space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static bool digit(char c) { return c >= '0' && c <= '9'; }

/* Whether s[0..len) (with s[len] == '\0') is a number as Python's float() reads it, without
 * the underscores float() allows between digits; *v is then float32(float(s)). strtod
 * reads the number in the C locale (read_all sets it), so that "1.5" is 1.5 whatever the
 * program's locale. */
static bool number(const char *s, size_t len, float *v)
{
    size_t i = 0, end = len;
    while (i < end && space(s[i])) i++;
    while (end > i && space(s[end - 1])) end--;
    size_t j = i, digits = 0;
    bool negative = false;
    if (j < end && (s[j] == '+' || s[j] == '-')) negative = s[j++] == '-';
    for (; j < end && digit(s[j]); j++) digits++;
    if (j < end && s[j] == '.')
        for (j++; j < end && digit(s[j]); j++) digits++;
    if (!digits) {
        static const char *const words[] = {"inf", "infinity", "nan"};
        for (int w = 0; w < 3; w++)
            if (end - j == strlen(words[w]) && !strncasecmp(s + j, words[w], end - j)) {
                float f = w < 2 ? INFINITY : NAN;
                *v = negative ? -f : f;
                return true;
            }
        return false;
    }
    if (j < end && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < end && (s[j] == '+' || s[j] == '-')) j++;
        size_t exp_digits = 0;
        for (; j < end && digit(s[j]); j++) exp_digits++;
        if (!exp_digits) return false;
    }
    if (j != end) return false;
    char *stop;
    double d = strtod(s + i, &stop); /* overflow gives inf, underflow 0, as float() */
    if (stop != s + end) return false;
    *v = (float)d;
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* libcsv's allocations through agrad's hook                                             */

static bool parser_oom;            /* an allocation for libcsv was refused since read_all began */
static struct csv_parser *growing; /* the parser read_all uses */

/* libcsv grows its buffer for a field by a fixed block (128 bytes): setting the block to
 * the size reached doubles it instead, so that a long field costs O(its length). */
static void *parser_realloc(void *p, size_t size)
{
    void *q = ag__realloc(p, size);
    if (!q) parser_oom = true; /* libcsv may retry smaller: this read fails all the same */
    if (q && growing) csv_set_blk_size(growing, size);
    return q;
}

/* ------------------------------------------------------------------------------------ */
/* The reader                                                                            */

typedef struct reader {
    const char *op, *where; /* "read_csv", "'data.csv'" */
    ag_csv_columns columns;
    ag_csv_indices indices;
    struct csv_parser *parser;
    int64_t line;       /* the line of the bytes being fed, from 1 */
    bool after_cr;      /* the last byte fed was \r (a \n next ends no other line) */
    bool in_quote;      /* a quoted field is open, since quote_line */
    int64_t quote_line; /* where the open quoted field began */
    int64_t row_line;   /* where the current row began */
    int64_t field;      /* fields of the current row so far */
    /* the header: names, each followed by '\0', at name_at[k] in names */
    bool have_header;
    char *names;
    size_t names_len, names_cap;
    size_t *name_at, name_at_cap;
    int64_t ncols;
    /* the header's column k goes to column out_of[k] of the result (-1: not read) */
    int64_t *out_of;
    int64_t m;
    float *vals;
    size_t vals_cap;
    int64_t rows;
    /* the first field of the row that is not a number, reported if the row is whole */
    bool pending;
    char pending_msg[MSG];
    bool failed; /* msg holds the error, or oom */
    bool oom;
    char msg[MSG];
} reader;

static bool fail(reader *r, const char *fmt, ...) AG__PRINTF(2, 3);
static bool fail(reader *r, const char *fmt, ...)
{
    if (r->failed) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->failed = true;
    return false;
}

static bool out_of_memory(reader *r)
{
    if (!r->failed) r->failed = r->oom = true;
    return false;
}

/* The number of line breaks in s[0..len): \n, \r\n or \r. */
static int64_t breaks(const char *s, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))) n++;
    return n;
}

/* "column 2 (\"y\")" for the header's column k (0-based), or "column 2" beyond it. */
static const char *column_name(const reader *r, char buf[COLUMN], int64_t k)
{
    int n = snprintf(buf, 64, "column %lld", (long long)k + 1);
    if (r->have_header && k < r->ncols) {
        char q[QUOTED];
        size_t at = r->name_at[k];
        snprintf(buf + n, COLUMN - (size_t)n, " (%s)",
                 quoted(q, r->names + at, r->name_at[k + 1] - at - 1));
    }
    return buf;
}

static bool add_name(reader *r, const char *s, size_t len)
{
    char *names = ag__grow(r->names, &r->names_cap, r->names_len + len + 1, 1);
    if (!names) return false;
    r->names = names;
    size_t *at = ag__grow(r->name_at, &r->name_at_cap, (size_t)r->ncols + 2, sizeof *at);
    if (!at) return false;
    r->name_at = at;
    memcpy(r->names + r->names_len, s, len);
    r->names[r->names_len + len] = '\0';
    r->name_at[r->ncols++] = r->names_len;
    r->names_len += len + 1;
    r->name_at[r->ncols] = r->names_len;
    return true;
}

/* The header's list of names for a message: "x", "y", ... (cut after about 200 bytes). */
static const char *header_list(const reader *r, char buf[512])
{
    size_t n = 0;
    buf[0] = '\0';
    for (int64_t k = 0; k < r->ncols; k++) {
        char q[QUOTED];
        size_t at = r->name_at[k];
        quoted(q, r->names + at, r->name_at[k + 1] - at - 1);
        if (n > 200) {
            snprintf(buf + n, 512 - n, ", ... (%lld columns)", (long long)r->ncols);
            break;
        }
        n += (size_t)snprintf(buf + n, 512 - n, "%s%s", k ? ", " : "", q);
    }
    return buf;
}

/* At the header's end: which column of the header each chosen column is. */
static bool choose(reader *r)
{
    r->out_of = ag__malloc((size_t)r->ncols * sizeof *r->out_of);
    if (!r->out_of) return out_of_memory(r);
    for (int64_t k = 0; k < r->ncols; k++) r->out_of[k] = r->columns.names || r->indices.i ? -1 : k;
    r->m = r->ncols;
    if (r->columns.names) {
        r->m = r->columns.n;
        for (int i = 0; i < r->columns.n; i++) {
            const char *want = r->columns.names[i];
            size_t len = strlen(want);
            int64_t found = -1, again = -1;
            for (int64_t k = 0; k < r->ncols && again < 0; k++) {
                size_t at = r->name_at[k];
                if (r->name_at[k + 1] - at - 1 == len && !memcmp(r->names + at, want, len)) {
                    if (found < 0)
                        found = k;
                    else
                        again = k;
                }
            }
            char q[QUOTED];
            if (found < 0) {
                char list[512];
                return fail(r,
                            "%s: %s: columns[%d] %s is not a column of the header (line %lld: %s)",
                            r->op, r->where, i, quoted(q, want, len), (long long)r->row_line,
                            header_list(r, list));
            }
            if (again >= 0)
                return fail(r,
                            "%s: %s: columns[%d] %s names two columns of the header (line %lld: "
                            "columns %lld and %lld); choose by index",
                            r->op, r->where, i, quoted(q, want, len), (long long)r->row_line,
                            (long long)found + 1, (long long)again + 1);
            if (r->out_of[found] >= 0)
                return fail(r, "%s: columns[%lld] and columns[%d] are both %s", r->op,
                            (long long)r->out_of[found], i, quoted(q, want, len));
            r->out_of[found] = i;
        }
    } else if (r->indices.i) {
        r->m = r->indices.n;
        for (int i = 0; i < r->indices.n; i++) {
            int64_t k = r->indices.i[i];
            if (k < 0 || k >= r->ncols)
                return fail(r,
                            "%s: %s: indices[%d] is %lld, out of range for the header's %lld "
                            "columns (line %lld; indices 0 to %lld)",
                            r->op, r->where, i, (long long)k, (long long)r->ncols,
                            (long long)r->row_line, (long long)r->ncols - 1);
            if (r->out_of[k] >= 0)
                return fail(r, "%s: indices[%lld] and indices[%d] are both %lld", r->op,
                            (long long)r->out_of[k], i, (long long)k);
            r->out_of[k] = i;
        }
    }
    return true;
}

/* libcsv's end of a field: s[0..len), with s[len] == '\0' (CSV_APPEND_NULL). */
static void on_field(void *s, size_t len, void *data)
{
    reader *r = data;
    if (r->failed) return;
    r->in_quote = false;
    int64_t k = r->field++;
    int64_t line = r->line - breaks(s, len); /* where the field began */
    if (k == 0) r->row_line = line;
    if (!r->have_header) {
        if (!add_name(r, s, len)) out_of_memory(r);
        return;
    }
    if (k == 0) {
        float *vals =
            ag__grow(r->vals, &r->vals_cap, (size_t)(r->rows + 1) * (size_t)r->m, sizeof *vals);
        if (!vals) {
            out_of_memory(r);
            return;
        }
        r->vals = vals;
    }
    if (k >= r->ncols || r->out_of[k] < 0) return;
    float v;
    if (number(s, len, &v)) {
        r->vals[r->rows * r->m + r->out_of[k]] = v;
        return;
    }
    if (r->pending) return;
    r->pending = true;
    char col[COLUMN];
    size_t i = 0;
    while (i < len && space(((const char *)s)[i])) i++;
    if (i == len)
        snprintf(r->pending_msg, sizeof r->pending_msg,
                 "%s: %s line %lld, %s: the field is empty, not a number", r->op, r->where,
                 (long long)line, column_name(r, col, k));
    else {
        char q[QUOTED];
        snprintf(r->pending_msg, sizeof r->pending_msg, "%s: %s line %lld, %s: %s is not a number",
                 r->op, r->where, (long long)line, column_name(r, col, k), quoted(q, s, len));
    }
}

/* libcsv's end of a row (c: the byte that ended it, -1 at the end of the bytes). */
static void on_row(int c, void *data)
{
    AG__UNUSED(c);
    reader *r = data;
    if (r->failed) return;
    r->in_quote = false;
    int64_t fields = r->field;
    r->field = 0;
    if (!r->have_header) {
        r->have_header = true;
        (void)choose(r);
    } else if (fields != r->ncols) {
        fail(r, "%s: %s line %lld: the row has %lld field%s, the header has %lld", r->op, r->where,
             (long long)r->row_line, (long long)fields, fields == 1 ? "" : "s",
             (long long)r->ncols);
    } else if (r->pending) {
        fail(r, "%s", r->pending_msg);
    } else {
        r->rows++;
    }
}

/* Feeds s[0..n) to libcsv, a line at a time. False once reading has failed. */
static bool feed(reader *r, const char *s, size_t n)
{
    while (n && !r->failed) {
        size_t k = 0;
        while (k < n && s[k] != '\n' && s[k] != '\r') k++;
        size_t piece = k < n ? k + 1 : n;
        size_t done = csv_parse(r->parser, s, piece, on_field, on_row, r);
        if (r->failed) break;
        if (done < piece || parser_oom) {
            char col[COLUMN], q[QUOTED];
            column_name(r, col, r->field);
            if (done == piece || csv_error(r->parser) != CSV_EPARSE)
                out_of_memory(r);
            else if (!r->parser->quoted)
                fail(r,
                     "%s: %s line %lld, %s: a quote inside an unquoted field (a field with "
                     "quotes is quoted whole, and a quote in it written \"\")",
                     r->op, r->where, (long long)r->line, col);
            else
                fail(r,
                     "%s: %s line %lld, %s: %s after a closing quote (after a quoted field "
                     "comes a delimiter or the line's end; a quote in it is written \"\")",
                     r->op, r->where, (long long)r->line, col, quoted(q, s + done, 1));
            break;
        }
        if (r->parser->quoted && !r->in_quote) r->in_quote = true, r->quote_line = r->line;
        if (k < n) {
            if (s[k] == '\r' || !(k == 0 && r->after_cr)) r->line++;
            r->after_cr = s[k] == '\r';
        } else {
            r->after_cr = false;
        }
        s += piece;
        n -= piece;
    }
    return !r->failed;
}

/* The end of the bytes: the last row, and the checks that need all of them. */
static void finish(reader *r)
{
    if (r->failed) return;
    if (csv_fini(r->parser, on_field, on_row, r) != 0) {
        char col[COLUMN];
        fail(r,
             "%s: %s line %lld, %s: the quoted field that begins there is not closed by the "
             "end of the file",
             r->op, r->where, (long long)r->quote_line, column_name(r, col, r->field));
    } else if (!r->have_header) {
        fail(r, "%s: %s has no header line (it is empty or blank)", r->op, r->where);
    }
}

/* Where the bytes come from: memory, or a file (closed here). */
typedef struct source {
    const char *bytes;
    size_t size;
    FILE *f;
} source;

/* Reads src (options checked already) into a new tensor, or reports. */
static ag_tensor *read_all(const char *op, const char *where, source src, ag_csv_columns columns,
                           ag_csv_indices indices, char delimiter)
{
    reader r = {.op = op, .where = where, .columns = columns, .indices = indices, .line = 1};
    struct csv_parser parser;
    (void)csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL); /* fails on NULL */
    csv_set_realloc_func(&parser, parser_realloc);
    csv_set_free_func(&parser, ag__free);
    csv_set_delim(&parser, (unsigned char)(delimiter ? delimiter : ','));
    r.parser = growing = &parser;
    parser_oom = false;
    /* strtod in the C locale, whatever setlocale chose; for this thread, until the end */
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    locale_t previous = c_locale ? uselocale(c_locale) : (locale_t)0;

    static const char bom[] = "\xef\xbb\xbf"; /* UTF-8's byte order mark, skipped */
    int err = 0;
    if (src.f) {
        char buf[CHUNK];
        for (bool first = true;; first = false) {
            errno = 0;
            size_t got = fread(buf, 1, sizeof buf, src.f);
            size_t skip = first && got >= 3 && !memcmp(buf, bom, 3) ? 3 : 0;
            if (got && !feed(&r, buf + skip, got - skip)) break;
            if (got < sizeof buf) {
                if (ferror(src.f)) err = errno ? errno : EIO;
                break;
            }
        }
        (void)fclose(src.f); /* read only: nothing was lost if it fails */
        if (!err) finish(&r);
    } else {
        size_t skip = src.size >= 3 && !memcmp(src.bytes, bom, 3) ? 3 : 0;
        if (feed(&r, src.bytes + skip, src.size - skip)) finish(&r);
    }
    csv_free(&parser);
    growing = NULL;
    if (c_locale) {
        uselocale(previous);
        freelocale(c_locale);
    }

    ag_tensor *t = NULL;
    if (!err && !r.failed) {
        int64_t shape[2] = {r.rows, r.m};
        t = ag__alloc_tensor(op, 2, shape, r.rows * r.m, NULL, NULL);
        if (t && t->numel) memcpy(t->data, r.vals, (size_t)t->numel * sizeof(float));
    }
    ag__free(r.names);
    ag__free(r.name_at);
    ag__free(r.out_of);
    ag__free(r.vals);
    if (t) return t;
    if (err) return ag__error("%s: cannot read %s: %s", op, where, strerror(err));
    if (r.oom)
        return ag__error("%s: out of memory reading %s (at line %lld)", op, where,
                         (long long)r.line);
    if (r.failed) return ag__error("%s", r.msg);
    return NULL; /* out of memory: ag__alloc_tensor said so */
}

/* The checks of the options, before anything is read. */
static bool check_options(const char *op, ag_csv_columns columns, ag_csv_indices indices,
                          char delimiter)
{
    if (columns.names && indices.i)
        return ag__error("%s: give columns or indices, not both", op), false;
    if ((columns.names && columns.n <= 0) || (!columns.names && columns.n))
        return ag__error("%s: columns has %d names and names %s; give at least one name, or "
                         "no columns for every column",
                         op, columns.n, columns.names ? "given" : "NULL"),
               false;
    if ((indices.i && indices.n <= 0) || (!indices.i && indices.n))
        return ag__error("%s: indices has %d indices and i %s; give at least one index, or no "
                         "indices for every column",
                         op, indices.n, indices.i ? "given" : "NULL"),
               false;
    for (int i = 0; columns.names && i < columns.n; i++)
        if (!columns.names[i]) return ag__error("%s: columns[%d] is NULL", op, i), false;
    if (delimiter == '"' || delimiter == '\r' || delimiter == '\n') {
        char q[QUOTED], d[1] = {delimiter};
        return ag__error("%s: the delimiter cannot be %s (the quote, or a line end)", op,
                         quoted(q, d, 1)),
               false;
    }
    return true;
}

ag_tensor *ag_read_csv_with(ag_read_csv_args a)
{
    const char *op = "read_csv";
    if (!a.path) return ag__error("%s: argument path is NULL", op);
    if (!check_options(op, a.columns, a.indices, a.delimiter)) return NULL;
    char where[512];
    snprintf(where, sizeof where, "'%s'", a.path);
    FILE *f = fopen(a.path, "rb");
    if (!f) {
        int err = errno;
        return ag__error("%s: cannot read %s: %s", op, where, strerror(err));
    }
    return read_all(op, where, (source){NULL, 0, f}, a.columns, a.indices, a.delimiter);
}

ag_tensor *ag_read_csv_bytes_with(ag_read_csv_bytes_args a)
{
    const char *op = "read_csv_bytes";
    if (!a.bytes && a.size) return ag__error("%s: argument bytes is NULL", op);
    if (!check_options(op, a.columns, a.indices, a.delimiter)) return NULL;
    char where[512] = "<memory>";
    if (a.name) snprintf(where, sizeof where, "'%s'", a.name);
    return read_all(op, where, (source){a.bytes ? a.bytes : "", a.size, NULL}, a.columns, a.indices,
                    a.delimiter);
}

#else /* no libcsv: the functions exist and say why they cannot work */

ag_tensor *ag_read_csv_with(ag_read_csv_args a)
{
    return ag__error("read_csv: agrad was built without libcsv (install libcsv-dev and rebuild): "
                     "cannot read '%s'",
                     a.path ? a.path : "(NULL)");
}

ag_tensor *ag_read_csv_bytes_with(ag_read_csv_bytes_args a)
{
    AG__UNUSED(a);
    return ag__error("read_csv_bytes: agrad was built without libcsv (install libcsv-dev and "
                     "rebuild): it cannot read CSV");
}

#endif /* AG_HAVE_CSV */
