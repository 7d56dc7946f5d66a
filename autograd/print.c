/* repr() of a tensor, character for character as PyTorch 1.13 prints a float32 CPU
 * tensor with the default print options (torch/_tensor_str.py). Users compare agrad's
 * output with the lab notebooks' output, so every quirk is kept, including the ones
 * that look accidental; each is marked where it is reproduced. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* torch.set_printoptions(profile="default"); precision 4 is spelled in the formats. */
enum {
    AG__PRINT_THRESHOLD = 1000, /* more elements than this: summarize */
    AG__PRINT_EDGEITEMS = 3,    /* items kept at each end of a summarized dimension */
    AG__PRINT_LINEWIDTH = 80,
    AG__PRINT_INDENT = 7, /* strlen("tensor(") */
    /* Values the formatter looks at: at most 6 per dimension when summarized, else at
     * most the threshold. */
    AG__PRINT_MAX_SHOWN = 6 * 6 * 6 * 6,
};

static void sb_str(ag__text *b, const char *s) { ag__put_n(b, s, strlen(s)); }

static void sb_spaces(ag__text *b, int n)
{
    for (; n > 0; n--) ag__put_n(b, " ", 1);
}

/* PyTorch's _Formatter: one number style for the whole tensor, chosen from its
 * nonzero finite values, and one width that every element is right-aligned to. */
typedef struct fmt {
    bool int_mode; /* all are integers: "3." rather than "3.0000" */
    bool sci_mode; /* "3.0000e+00" */
    int width;
} fmt;

/* Writes v as Python formats the float32 widened to a double ("{:.4f}", "{:.4e}",
 * "{:.0f}"); glibc's printf rounds these exactly as Python does (to nearest, ties to
 * even, on the exact binary value). Returns the length. */
static int fmt_value(char out[64], const fmt *f, float v)
{
    double d = v;
    if (isnan(d)) return snprintf(out, 64, "nan"); /* printf may say "-nan", Python never */
    if (f->sci_mode) return snprintf(out, 64, "%.4e", d);
    /* int_mode marks the value as floating with a dot, except inf and nan */
    if (f->int_mode) return snprintf(out, 64, isinf(d) ? "%.0f" : "%.0f.", d);
    return snprintf(out, 64, "%.4f", d);
}

static fmt fmt_build(const float *v, int64_t n)
{
    fmt f = {true, false, 1};
    double lo = INFINITY, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || v[i] == 0) continue;
        lo = fmin(lo, fabs((double)v[i]));
        hi = fmax(hi, fabs((double)v[i]));
        if (v[i] != ceilf(v[i])) f.int_mode = false;
    }
    if (hi == 0) return f; /* only zeros, nan and inf: "0.", "nan", width 1 */
    /* The ratio is taken in double, as PyTorch converts min and max before dividing. */
    f.sci_mode = hi / lo > 1000.0 || hi > 1.0e8 || (!f.int_mode && lo < 1.0e-4);
    char buf[64];
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || v[i] == 0) continue;
        int len = fmt_value(buf, &f, v[i]);
        if (len > f.width) f.width = len;
    }
    return f;
}

/* Summarization keeps the first and last AG__PRINT_EDGEITEMS indices of a dimension
 * longer than twice that, and "..." stands for the rest. */
static int64_t shown_count(int64_t size, bool summarize)
{
    const int64_t both_ends = 2 * (int64_t)AG__PRINT_EDGEITEMS;
    return summarize && size > both_ends ? both_ends : size;
}

/* The index of the k-th shown item of a dimension. */
static int64_t shown_index(int64_t size, bool summarize, int64_t k)
{
    bool cut = shown_count(size, summarize) < size;
    return cut && k >= AG__PRINT_EDGEITEMS ? size - 2 * (int64_t)AG__PRINT_EDGEITEMS + k : k;
}

typedef struct printer {
    ag__text *out;
    const ag_tensor *t;
    int64_t stride[AG_MAX_DIMS];
    bool summarize;
    fmt f;
} printer;

static void put_value(printer *p, float v)
{
    char buf[64];
    int len = fmt_value(buf, &p->f, v);
    sb_spaces(p->out, p->f.width - len);
    ag__put_n(p->out, buf, (size_t)len);
}

/* The slice of p->t at offset that spans dimensions dim.., indent columns in: PyTorch's
 * _tensor_str_with_formatter and _vector_str. */
static void put_slice(printer *p, int dim, int64_t offset, int indent)
{
    const ag_tensor *t = p->t;
    int64_t size = t->shape[dim], shown = shown_count(size, p->summarize);
    bool cut = shown < size;
    /* Items are the shown entries plus one "..." in the middle when cut. */
    int64_t items = shown + cut;
    sb_str(p->out, "[");
    if (dim == t->ndim - 1) {
        /* Line breaks are counted in items of width + ", ", whatever their real length
         * (the " ..." item is shorter). */
        int per_line = (AG__PRINT_LINEWIDTH - indent) / (p->f.width + 2);
        if (per_line < 1) per_line = 1;
        for (int64_t i = 0, k = 0; i < items; i++) {
            if (i > 0 && i % per_line == 0) {
                sb_str(p->out, ",\n");
                sb_spaces(p->out, indent + 1);
            } else if (i > 0) {
                sb_str(p->out, ", ");
            }
            if (cut && i == AG__PRINT_EDGEITEMS) {
                sb_str(p->out, " ...");
                continue;
            }
            put_value(p, t->data[offset + shown_index(size, p->summarize, k++) * p->stride[dim]]);
        }
    } else {
        for (int64_t i = 0, k = 0; i < items; i++) {
            if (i > 0) {
                /* Slices of rank r are r newlines apart: rows touch, matrices have a
                 * blank line between them, 3-d blocks two. */
                sb_str(p->out, ",");
                for (int r = dim + 1; r < t->ndim; r++) sb_str(p->out, "\n");
                sb_spaces(p->out, indent + 1);
            }
            if (cut && i == AG__PRINT_EDGEITEMS) {
                sb_str(p->out, "...");
                continue;
            }
            int64_t j = shown_index(size, p->summarize, k++);
            put_slice(p, dim + 1, offset + j * p->stride[dim], indent + 1);
        }
    }
    sb_str(p->out, "]");
}

/* The body of a non-empty tensor, from "[" (or the scalar) to the matching "]". */
static void put_tensor(ag__text *out, const ag_tensor *t)
{
    printer p = {out, t, {0}, t->numel > AG__PRINT_THRESHOLD, {true, false, 1}};
    int64_t stride = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        p.stride[d] = stride;
        stride *= t->shape[d];
    }
    /* The formatter sees only what is shown (get_summarized_data): an outlier hidden
     * by "..." does not widen the columns. Enumerate the shown index tuples. */
    float shown[AG__PRINT_MAX_SHOWN];
    int64_t n = 0, idx[AG_MAX_DIMS] = {0};
    for (;;) {
        int64_t offset = 0;
        for (int d = 0; d < t->ndim; d++)
            offset += shown_index(t->shape[d], p.summarize, idx[d]) * p.stride[d];
        shown[n++] = t->data[offset];
        int d = t->ndim - 1;
        while (d >= 0 && ++idx[d] == shown_count(t->shape[d], p.summarize)) idx[d--] = 0;
        if (d < 0) break;
    }
    p.f = fmt_build(shown, n);
    if (t->ndim == 0)
        put_value(&p, t->data[0]);
    else
        put_slice(&p, 0, 0, AG__PRINT_INDENT);
}

/* PyTorch's _add_suffixes: ", suffix" on the last line, or on a new line indented
 * under "tensor(" when the line would pass the line width. */
static void put_suffix(ag__text *out, const char *suffix)
{
    if (out->failed) return;
    /* PyTorch measures the last line as len - rfind("\n") + 1 (rfind is -1 when there
     * is no newline): two more than its length. Kept, since it decides where the
     * suffix goes. */
    size_t nl = out->len;
    while (nl > 0 && out->s[nl - 1] != '\n') nl--;
    size_t last_line = out->len - nl + 2;
    if (last_line + strlen(suffix) + 2 > AG__PRINT_LINEWIDTH) {
        sb_str(out, ",\n");
        sb_spaces(out, AG__PRINT_INDENT);
    } else {
        sb_str(out, ", ");
    }
    sb_str(out, suffix);
}

static char *repr(const ag_tensor *t, const char *op)
{
    if (!ag__check(t, op, "self")) return NULL;
    ag__text out = {0};
    sb_str(&out, "tensor(");
    if (t->numel > 0) {
        put_tensor(&out, t);
    } else {
        sb_str(&out, "[]");
        /* NumPy's convention: the shape is shown unless it is (0,). A rank-0 tensor
         * has one element, so the tuple here has at least two sizes. */
        if (t->ndim != 1) {
            char size[128];
            int n = snprintf(size, sizeof size, "size=(");
            for (int d = 0; d < t->ndim; d++)
                n += snprintf(size + n, sizeof size - (size_t)n, d ? ", %lld" : "%lld",
                              (long long)t->shape[d]);
            snprintf(size + n, sizeof size - (size_t)n, ")");
            put_suffix(&out, size);
        }
    }
    /* A non-leaf shows how it was made; a leaf shows only that it requires grad. */
    const char *grad_fn = ag_is_leaf(t) ? NULL : ag_grad_fn_name(t);
    if (grad_fn) {
        char suffix[128];
        snprintf(suffix, sizeof suffix, "grad_fn=<%s>", grad_fn);
        put_suffix(&out, suffix);
    } else if (t->requires_grad) {
        put_suffix(&out, "requires_grad=True");
    }
    /* agrad's own keyword, for a tensor that has a name (ag_set_name): name='w' */
    char nbuf[AG__NAME_SHOWN + 1];
    const char *name = ag__name_of(t, nbuf, sizeof nbuf);
    if (name) {
        ag__text kw = {0};
        sb_str(&kw, "name='");
        sb_str(&kw, name);
        sb_str(&kw, "'");
        out.failed = out.failed || kw.failed;
        if (!kw.failed) put_suffix(&out, kw.s);
        ag__free(kw.s);
    }
    sb_str(&out, ")");
    if (out.failed) {
        ag__free(out.s);
        char sh[AG__SHAPE_STR];
        ag__error("%s: out of memory writing a tensor of shape %s", op,
                  ag__shape_str(sh, t->ndim, t->shape));
        return NULL;
    }
    return out.s;
}

char *ag_repr(const ag_tensor *t) { return repr(t, "repr"); }

void ag_print(const ag_tensor *t) { ag_fprint(stdout, t); }

void ag_fprint(FILE *stream, const ag_tensor *t)
{
    if (!stream) {
        ag__error("print: argument stream is NULL");
        return;
    }
    char *s = repr(t, "print");
    if (!s) return;
    fputs(s, stream);
    fputc('\n', stream);
    ag__free(s);
}
