/* Saving and loading weights in the safetensors format, the one PyTorch users share
 * weights in (safetensors.torch.save_file / load_file):
 *
 *     8 bytes     N, the header's length, unsigned little-endian
 *     N bytes     a JSON object: name -> {"dtype": "F32", "shape": [2, 3],
 *                 "data_offsets": [begin, end]}, and an optional "__metadata__" object of
 *                 strings; it begins with '{' and may be padded at its end with spaces
 *     the rest    the tensors' bytes, little-endian, row-major; data_offsets count from
 *                 the byte after the header
 *
 * The rules the reference implementation (huggingface/safetensors) keeps, and agrad with
 * it: N at most 100,000,000; the header UTF-8; names unique; each entry's bytes exactly
 * shape's product times its dtype's size; the entries, taken by offset, covering the data
 * from its first byte to the file's last, without gap or overlap. The writer sorts the
 * names and pads the header with spaces to a multiple of 8 bytes, so that the data is
 * aligned; agrad writes, for the same tensors, the bytes save_file writes.
 *
 * Loading is all or nothing: the whole file is read and checked, and every name and
 * shape matched with the tensors given, before the first value is copied. cJSON (an
 * optional dependency) parses and prints the header; its allocations go through agrad's
 * allocation hook while an agrad call uses it. */
#include "internal.h"

#include "agrad_nn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#ifdef AG_HAVE_CJSON
#include <cjson/cJSON.h>
#include <unistd.h>
#endif

/* The reference implementation's limit on the header: a larger one is refused unread. */
#define MAX_HEADER 100000000u

#ifdef AG_HAVE_CJSON

/* ------------------------------------------------------------------------------------ */
/* cJSON through agrad's allocation hook                                                 */
/*                                                                                       */
/* cJSON's hooks are global: they are set when an agrad call begins to use cJSON and put */
/* back to cJSON's defaults (malloc and free) before it returns. A program that gives    */
/* cJSON hooks of its own must set them again after calling these functions.            */

static bool json_oom; /* an allocation for cJSON failed since json_begin */

static void *json_malloc(size_t size)
{
    void *p = ag__malloc(size);
    if (!p) json_oom = true;
    return p;
}

static void json_free(void *p) { ag__free(p); }

static void json_begin(void)
{
    cJSON_Hooks hooks = {json_malloc, json_free};
    cJSON_InitHooks(&hooks);
    json_oom = false;
}

static void json_end(void) { cJSON_InitHooks(NULL); }

/* ------------------------------------------------------------------------------------ */
/* Little-endian bytes                                                                   */

static uint64_t get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static float get_f32le(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void put_f32le(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(u >> (8 * i));
}

/* ------------------------------------------------------------------------------------ */
/* Arguments                                                                             */

/* The length of the valid UTF-8 prefix of s[0..n). */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (n - i <= k) return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += k + 1;
    }
    return n;
}

static const char *const *sort_names; /* for by_name: qsort takes no context */

static int by_name(const void *a, const void *b)
{
    return strcmp(sort_names[*(const int *)a], sort_names[*(const int *)b]);
}

/* idx[0..n-1] ordered by names[idx[k]] (byte order, as the reference writer sorts). */
static void sort_by_name(int *idx, int n, const char *const *names)
{
    for (int i = 0; i < n; i++) idx[i] = i;
    sort_names = names;
    if (n > 1) qsort(idx, (size_t)n, sizeof *idx, by_name);
    sort_names = NULL;
}

/* Checks the arguments every function takes: n >= 0, the arrays present, each name a
 * string other than "__metadata__" (UTF-8 when writing), each tensor live, no name twice.
 * On success *sorted (when not NULL) receives the n indices ordered by name, for the
 * caller to free with ag__free. False after an error naming op. */
static bool check_args(const char *op, const char *const *names, ag_tensor *const *tensors, int n,
                       int **sorted, bool writing)
{
    if (sorted) *sorted = NULL;
    if (n < 0) return ag__error("%s: n is %d; expected a number of tensors >= 0", op, n), false;
    if (n > 0 && !names) return ag__error("%s: argument names is NULL", op), false;
    if (n > 0 && !tensors) return ag__error("%s: argument tensors is NULL", op), false;
    for (int i = 0; i < n; i++) {
        if (!names[i]) return ag__error("%s: argument names[%d] is NULL", op, i), false;
        if (!strcmp(names[i], "__metadata__"))
            return ag__error("%s: names[%d] is \"__metadata__\", which safetensors keeps for "
                             "the file's metadata: name the tensor otherwise",
                             op, i),
                   false;
        if (!ag__check_at(tensors[i], op, "tensors", i)) return false;
        size_t len = writing ? strlen(names[i]) : 0;
        size_t good = writing ? utf8_valid((const unsigned char *)names[i], len) : 0;
        if (good < len)
            return ag__error("%s: names[%d] is not valid UTF-8 (at byte %zu), which a "
                             "safetensors header must be",
                             op, i, good),
                   false;
    }
    int *idx = ag__malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (!idx) return ag__error("%s: out of memory sorting %d names", op, n), false;
    sort_by_name(idx, n, names);
    for (int k = 1; k < n; k++)
        if (!strcmp(names[idx[k - 1]], names[idx[k]])) {
            int a = idx[k - 1] < idx[k] ? idx[k - 1] : idx[k], b = idx[k - 1] ^ idx[k] ^ a;
            ag__free(idx);
            return ag__error("%s: names[%d] and names[%d] are both \"%s\": each tensor needs a "
                             "name of its own",
                             op, a, b, names[a]),
                   false;
        }
    if (sorted)
        *sorted = idx;
    else
        ag__free(idx);
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                              */

/* A message built in pieces; what does not fit is cut, never overflowed. */
typedef struct msgbuf {
    char s[1024];
    size_t len;
} msgbuf;

static void add(msgbuf *m, const char *fmt, ...) AG__PRINTF(2, 3);
static void add(msgbuf *m, const char *fmt, ...)
{
    if (m->len >= sizeof m->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(m->s + m->len, sizeof m->s - m->len, fmt, ap);
    va_end(ap);
    if (k > 0) m->len += (size_t)k;
    if (m->len > sizeof m->s - 1) m->len = sizeof m->s - 1;
}

/* torch.Size([2, 3]) of a shape given as sizes, or as a JSON array of them. */
static void add_size(msgbuf *m, int ndim, const int64_t *shape)
{
    add(m, "torch.Size([");
    for (int i = 0; i < ndim; i++) add(m, i ? ", %lld" : "%lld", (long long)shape[i]);
    add(m, "])");
}

static void add_json_size(msgbuf *m, const cJSON *shape)
{
    add(m, "torch.Size([");
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++)
        add(m, i ? ", %.0f" : "%.0f", d->valuedouble);
    add(m, "])");
}

/* ------------------------------------------------------------------------------------ */
/* Saving                                                                                */

/* The header (without its length), padded with spaces to a multiple of 8 bytes, in
 * *header (freed with ag__free) and its length in *len; the data's length in *data_len.
 * False after an error naming op. order: the indices sorted by name. */
static bool make_header(const char *op, const char *const *names, ag_tensor *const *tensors,
                        const int *order, int n, char **header, size_t *len, uint64_t *data_len)
{
    json_begin();
    cJSON *root = cJSON_CreateObject();
    uint64_t offset = 0;
    bool ok = root != NULL;
    for (int k = 0; ok && k < n; k++) {
        const ag_tensor *t = tensors[order[k]];
        char shape[AG_MAX_DIMS * 22 + 3], offsets[2 * 22 + 3];
        size_t at = 0;
        shape[at++] = '[';
        for (int i = 0; i < t->ndim; i++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, i ? ",%lld" : "%lld",
                                   (long long)t->shape[i]);
        snprintf(shape + at, sizeof shape - at, "]");
        uint64_t bytes = (uint64_t)t->numel * sizeof(float);
        snprintf(offsets, sizeof offsets, "[%" PRIu64 ",%" PRIu64 "]", offset, offset + bytes);
        offset += bytes; /* numel <= INT64_MAX / 4, and n tensors of that exist in memory */
        cJSON *entry = cJSON_CreateObject();
        ok = entry && cJSON_AddItemToObject(root, names[order[k]], entry);
        if (!ok) {
            cJSON_Delete(entry);
            break;
        }
        ok = cJSON_AddStringToObject(entry, "dtype", "F32") &&
             cJSON_AddRawToObject(entry, "shape", shape) &&
             cJSON_AddRawToObject(entry, "data_offsets", offsets);
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    size_t tlen = text ? strlen(text) : 0, padded = (tlen + 7) / 8 * 8;
    char *out = text ? ag__malloc(padded ? padded : 1) : NULL;
    if (out) {
        /* Not a C string: the header is its bytes, then spaces, then the data. */
        memset(out, ' ', padded);
        memcpy(out, text, tlen); /* NOLINT(bugprone-not-null-terminated-result) */
    }
    ag__free(text);
    json_end();
    if (!out) return ag__error("%s: out of memory writing the header of %d tensors", op, n), false;
    *header = out;
    *len = padded;
    *data_len = offset;
    return true;
}

/* Writes t's values as little-endian float32 at p. */
static void put_values(unsigned char *p, const ag_tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++) put_f32le(p + 4 * i, t->data[i]);
}

/* The whole file in memory (*size bytes, from the hook); NULL after an error naming op. */
static void *serialize(const char *op, const char *const *names, ag_tensor *const *tensors, int n,
                       size_t *size)
{
    *size = 0;
    int *order;
    if (!check_args(op, names, tensors, n, &order, true)) return NULL;
    char *header;
    size_t hlen;
    uint64_t dlen;
    if (!make_header(op, names, tensors, order, n, &header, &hlen, &dlen)) {
        ag__free(order);
        return NULL;
    }
    unsigned char *out = NULL;
    if (dlen <= SIZE_MAX - 8 - hlen) out = ag__malloc(8 + hlen + (size_t)dlen);
    if (!out) {
        ag__free(header);
        ag__free(order);
        return ag__error("%s: out of memory for a file of %" PRIu64 " bytes", op,
                         (uint64_t)8 + hlen + dlen);
    }
    put_u64le(out, hlen);
    memcpy(out + 8, header, hlen);
    unsigned char *p = out + 8 + hlen;
    for (int k = 0; k < n; k++) {
        put_values(p, tensors[order[k]]);
        p += (size_t)tensors[order[k]]->numel * 4;
    }
    ag__free(header);
    ag__free(order);
    *size = 8 + hlen + (size_t)dlen;
    return out;
}

void *ag_safetensors_save_bytes(const char *const *names, ag_tensor *const *tensors, int n,
                                size_t *size)
{
    const char *op = "safetensors_save_bytes";
    if (!size) return ag__error("%s: argument size is NULL", op);
    return serialize(op, names, tensors, n, size);
}

/* fwrite of n bytes; false (errno set) when it fails. */
static bool write_all(FILE *f, const void *p, size_t n)
{
    errno = 0;
    if (fwrite(p, 1, n, f) == n) return true;
    if (!errno) errno = EIO;
    return false;
}

bool ag_safetensors_save(const char *path, const char *const *names, ag_tensor *const *tensors,
                         int n)
{
    const char *op = "safetensors_save";
    if (!path) return ag__error("%s: argument path is NULL", op), false;
    size_t size;
    unsigned char *bytes = serialize(op, names, tensors, n, &size);
    if (!bytes) return false;
    /* Written to path.tmp, then renamed over path: path is either the old file or the new
     * one, never half of one. */
    size_t plen = strlen(path);
    char *tmp = ag__malloc(plen + 5);
    if (!tmp) {
        ag__free(bytes);
        return ag__error("%s: out of memory writing '%s'", op, path), false;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    const char *step = "creating";
    int err = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) err = errno;
    if (f) {
        bool ok = write_all(f, bytes, size);
        errno = 0;
        if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) ok = false;
        if (!ok) err = errno ? errno : EIO, step = "writing";
        if (fclose(f) != 0 && ok) err = errno ? errno : EIO, step = "writing", ok = false;
        if (ok && rename(tmp, path) != 0) err = errno, step = "renaming";
        if (err) (void)remove(tmp); /* nothing more to do if it fails */
    }
    ag__free(bytes);
    if (err) {
        /* tmp is kept for the message, freed before the handler runs. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: cannot write '%s' (%s '%s'%s): %s", op, path, step, tmp,
                 !strcmp(step, "renaming") ? " over it" : "", strerror(err));
        ag__free(tmp);
        return ag__error("%s", msg), false;
    }
    ag__free(tmp);
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Loading                                                                               */

/* The dtypes of the format, with their sizes in bytes. */
static const struct {
    const char *name;
    int size;
} dtypes[] = {
    {"F32", 4},     {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1},
    {"F8_E4M3", 1}, {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4},     {"U32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},
};
enum { DTYPE_F32 = 0, NDTYPES = sizeof dtypes / sizeof dtypes[0] };

/* One tensor of the file, as its header describes it. */
typedef struct entry {
    const char *name;    /* in the cJSON tree */
    const cJSON *shape;  /* the array of sizes */
    int ndim, dtype;     /* dtype: index in dtypes */
    uint64_t begin, end; /* data_offsets */
    int dest;            /* the tensor given under the same name, or -1 */
} entry;

/* Integers in JSON are read as doubles: exact up to 2^53, which bounds every size and
 * offset agrad accepts. */
#define MAX_INT 9007199254740992.0

/* A non-negative integer within MAX_INT. */
static bool json_count(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= MAX_INT) || d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
}

/* What the value is, for messages: "a string", "-1", "1.5". */
static void add_json_kind(msgbuf *m, const cJSON *v)
{
    if (!v)
        add(m, "nothing");
    else if (cJSON_IsNumber(v))
        add(m, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v))
        add(m, "a string");
    else if (cJSON_IsArray(v))
        add(m, "an array");
    else if (cJSON_IsObject(v))
        add(m, "an object");
    else if (cJSON_IsBool(v))
        add(m, "a boolean");
    else
        add(m, "null");
}

/* Checks one entry of the header and fills e; false with the reason in m. */
static bool read_entry(const cJSON *item, entry *e, uint64_t data_size, msgbuf *m)
{
    e->name = item->string;
    e->dest = -1;
    if (!cJSON_IsObject(item)) {
        add(m, "the entry of \"%s\" is ", e->name);
        add_json_kind(m, item);
        add(m, ", not an object {\"dtype\", \"shape\", \"data_offsets\"}");
        return false;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype)) {
        add(m, "\"%s\" has %s dtype", e->name, dtype ? "a bad" : "no");
        if (dtype) {
            add(m, " (");
            add_json_kind(m, dtype);
            add(m, ", not a string)");
        }
        return false;
    }
    e->dtype = -1;
    for (int i = 0; i < NDTYPES; i++)
        if (!strcmp(dtype->valuestring, dtypes[i].name)) e->dtype = i;
    if (e->dtype < 0) {
        add(m,
            "\"%s\" has the unknown dtype \"%s\" (safetensors has F32, F64, F16, BF16, I64, "
            "I32, I16, I8, U8, BOOL, ...)",
            e->name, dtype->valuestring);
        return false;
    }
    if (!cJSON_IsArray(shape)) {
        add(m, "\"%s\" has %s shape", e->name, shape ? "a bad" : "no");
        if (shape) {
            add(m, " (");
            add_json_kind(m, shape);
            add(m, ", not an array)");
        }
        return false;
    }
    e->shape = shape;
    e->ndim = 0;
    uint64_t numel = 1;
    bool overflow = false;
    for (const cJSON *d = shape->child; d; d = d->next, e->ndim++) {
        uint64_t size;
        if (!json_count(d, &size)) {
            add(m, "\"%s\" has a bad shape: size %d is ", e->name, e->ndim);
            add_json_kind(m, d);
            add(m, ", not an integer >= 0");
            return false;
        }
        if (size == 0) continue;
        if (numel > UINT64_MAX / size)
            overflow = true;
        else
            numel *= size;
    }
    /* An empty tensor holds no bytes, whatever its other sizes. */
    bool empty = false;
    for (const cJSON *d = shape->child; d; d = d->next) empty |= d->valuedouble == 0;
    if (overflow || numel > UINT64_MAX / (uint64_t)dtypes[e->dtype].size) {
        add(m, "\"%s\" has a shape whose number of bytes overflows: ", e->name);
        add_json_size(m, shape);
        return false;
    }
    uint64_t bytes = empty ? 0 : numel * (uint64_t)dtypes[e->dtype].size;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_count(offsets->child, &e->begin) || !json_count(offsets->child->next, &e->end)) {
        add(m, "\"%s\" has %s data_offsets", e->name, offsets ? "bad" : "no");
        if (offsets) add(m, " (expected [begin, end], two integers >= 0)");
        return false;
    }
    if (e->begin > e->end) {
        add(m, "\"%s\" has data_offsets [%llu, %llu] that end before they begin", e->name,
            (unsigned long long)e->begin, (unsigned long long)e->end);
        return false;
    }
    if (e->end > data_size) {
        add(m,
            "\"%s\" has data_offsets [%llu, %llu] out of range: the file holds %llu bytes "
            "of data after its header",
            e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
            (unsigned long long)data_size);
        return false;
    }
    if (e->end - e->begin != bytes) {
        add(m, "\"%s\" has data_offsets [%llu, %llu], %llu bytes, but its shape ", e->name,
            (unsigned long long)e->begin, (unsigned long long)e->end,
            (unsigned long long)(e->end - e->begin));
        add_json_size(m, shape);
        add(m, " of %s needs %llu", dtypes[e->dtype].name, (unsigned long long)bytes);
        return false;
    }
    return true;
}

static int by_entry_name(const void *a, const void *b)
{
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

static int by_offsets(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* What the loader has found, freed by load_end. */
typedef struct loader {
    cJSON *root;
    entry *entries;            /* in the header's order */
    entry **by_name, **by_off; /* the same, sorted */
    int n_entries;
    int *dest_order; /* the tensors given, by name */
} loader;

static void load_end(loader *L)
{
    cJSON_Delete(L->root);
    ag__free(L->entries);
    ag__free(L->dest_order);
    json_end();
}

/* Checks the file's structure. False with the reason in m (after "op: where: "). */
static bool parse_file(loader *L, const unsigned char *bytes, size_t size, msgbuf *m)
{
    if (size < 8) {
        add(m,
            "the file is %zu bytes, too short for the 8 bytes of the header's length "
            "(truncated, or not a safetensors file)",
            size);
        return false;
    }
    uint64_t n = get_u64le(bytes);
    if (n > MAX_HEADER) {
        add(m,
            "the header's length is %llu bytes, larger than the 100000000 safetensors "
            "allows (not a safetensors file?)",
            (unsigned long long)n);
        return false;
    }
    if (n > size - 8) {
        add(m,
            "the header's length is %llu bytes, beyond the end of the file (%zu bytes after "
            "the length): truncated",
            (unsigned long long)n, size - 8);
        return false;
    }
    const char *h = (const char *)bytes + 8;
    if (n == 0 || h[0] != '{') {
        add(m, "the header does not begin with '{' (not a safetensors file?)");
        return false;
    }
    size_t good = utf8_valid((const unsigned char *)h, (size_t)n);
    if (good < n) {
        add(m, "the header is not valid UTF-8 (byte %zu of the header)", good);
        return false;
    }
    const char *end = NULL;
    L->root = cJSON_ParseWithLengthOpts(h, (size_t)n, &end, false);
    if (!L->root) {
        if (json_oom) {
            add(m, "out of memory parsing a header of %llu bytes", (unsigned long long)n);
            return false;
        }
        const char *at = cJSON_GetErrorPtr();
        size_t pos = at && at >= h && at <= h + n ? (size_t)(at - h) : (size_t)n;
        add(m, "the header is not valid JSON (at byte %zu of %llu)", pos, (unsigned long long)n);
        return false;
    }
    for (const char *p = end; p < h + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            add(m,
                "the header has more after its JSON object (at byte %zu of %llu); only "
                "spaces may pad it",
                (size_t)(p - h), (unsigned long long)n);
            return false;
        }
    if (!cJSON_IsObject(L->root)) {
        add(m, "the header is not a JSON object");
        return false;
    }
    uint64_t data_size = size - 8 - n;
    int count = cJSON_GetArraySize(L->root);
    L->entries =
        ag__malloc((size_t)(count > 0 ? count : 1) * (sizeof(entry) + 2 * sizeof(entry *)));
    if (!L->entries) {
        add(m, "out of memory reading a header of %d entries", count);
        return false;
    }
    L->by_name = (entry **)(L->entries + count);
    L->by_off = L->by_name + count;
    bool metadata = false;
    for (const cJSON *item = L->root->child; item; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) {
            if (metadata) {
                add(m, "the header has \"__metadata__\" twice");
                return false;
            }
            metadata = true;
            bool strings = cJSON_IsObject(item);
            for (const cJSON *v = item->child; strings && v; v = v->next)
                strings = cJSON_IsString(v);
            if (!strings) {
                add(m, "\"__metadata__\" is not an object of strings");
                return false;
            }
            continue;
        }
        entry *e = &L->entries[L->n_entries];
        if (!read_entry(item, e, data_size, m)) return false;
        L->by_name[L->n_entries] = L->by_off[L->n_entries] = e;
        L->n_entries++;
    }
    int ne = L->n_entries;
    qsort(L->by_name, (size_t)ne, sizeof(entry *), by_entry_name);
    for (int k = 1; k < ne; k++)
        if (!strcmp(L->by_name[k - 1]->name, L->by_name[k]->name)) {
            add(m, "the header names \"%s\" twice", L->by_name[k]->name);
            return false;
        }
    qsort(L->by_off, (size_t)ne, sizeof(entry *), by_offsets);
    uint64_t at = 0;
    for (int k = 0; k < ne; k++) {
        const entry *e = L->by_off[k];
        if (e->begin < at) {
            const entry *prev = L->by_off[k - 1];
            add(m, "the data of \"%s\" [%llu, %llu] overlaps that of \"%s\" [%llu, %llu]", e->name,
                (unsigned long long)e->begin, (unsigned long long)e->end, prev->name,
                (unsigned long long)prev->begin, (unsigned long long)prev->end);
            return false;
        }
        if (e->begin > at) {
            add(m,
                "no tensor holds the data bytes [%llu, %llu) (before \"%s\"); the data must "
                "be contiguous",
                (unsigned long long)at, (unsigned long long)e->begin, e->name);
            return false;
        }
        at = e->end;
    }
    if (at != data_size) {
        add(m, "no tensor holds the last %llu bytes of the file (data bytes [%llu, %llu))",
            (unsigned long long)(data_size - at), (unsigned long long)at,
            (unsigned long long)data_size);
        return false;
    }
    return true;
}

/* Matches the file's entries with the tensors given, as load_state_dict does; false with
 * PyTorch's words in m. */
static bool match(loader *L, const char *const *names, ag_tensor *const *tensors, int n, msgbuf *m)
{
    int ne = L->n_entries, i = 0, k = 0;
    while (i < n && k < ne) {
        int c = strcmp(names[L->dest_order[i]], L->by_name[k]->name);
        if (c == 0) L->by_name[k]->dest = L->dest_order[i];
        if (c <= 0) i++;
        if (c >= 0) k++;
    }
    /* of[i]: the file's entry for tensors[i], or NULL. */
    entry **of = ag__malloc((size_t)(n > 0 ? n : 1) * sizeof *of);
    if (!of) {
        add(m, "out of memory matching %d names", n);
        return false;
    }
    for (i = 0; i < n; i++) of[i] = NULL;
    for (k = 0; k < ne; k++)
        if (L->entries[k].dest >= 0) of[L->entries[k].dest] = &L->entries[k];
    size_t start = m->len;
    int count = 0;
    for (i = 0; i < n; i++)
        if (!of[i])
            add(m, count++ ? ", \"%s\"" : "\n\tMissing key(s) in state_dict: \"%s\"", names[i]);
    if (count) add(m, ". ");
    count = 0;
    for (k = 0; k < ne; k++)
        if (L->entries[k].dest < 0)
            add(m, count++ ? ", \"%s\"" : "\n\tUnexpected key(s) in state_dict: \"%s\"",
                L->entries[k].name);
    if (count) add(m, ". ");
    /* Size and dtype mismatches in the order of the tensors given, as PyTorch reports
     * them in the model's order. */
    for (i = 0; i < n; i++) {
        const entry *e = of[i];
        if (!e) continue;
        const ag_tensor *t = tensors[i];
        bool same = e->ndim == t->ndim;
        int d = 0;
        for (const cJSON *s = e->shape->child; same && s; s = s->next, d++)
            same = s->valuedouble == (double)t->shape[d];
        if (!same) {
            add(m, "\n\tsize mismatch for %s: copying a param with shape ", e->name);
            add_json_size(m, e->shape);
            add(m, " from checkpoint, the shape in current model is ");
            add_size(m, t->ndim, t->shape);
            add(m, ".");
        } else if (e->dtype != DTYPE_F32) {
            add(m,
                "\n\tdtype mismatch for %s: the checkpoint holds %s, agrad loads only F32 "
                "(torch.float32): save {k: v.float() for k, v in state_dict.items()}",
                e->name, dtypes[e->dtype].name);
        }
    }
    ag__free(of);
    if (m->len == start) return true;
    /* PyTorch's opening line, before the reasons. */
    char reasons[sizeof m->s];
    memcpy(reasons, m->s + start, m->len - start);
    reasons[m->len - start] = '\0';
    m->len = start;
    m->s[start] = '\0';
    add(m, "Error(s) in loading state_dict:%s", reasons);
    return false;
}

/* load and load_bytes: bytes[0..size) is the whole file; where names it in messages. */
static bool load(const char *op, const char *where, const unsigned char *bytes, size_t size,
                 const char *const *names, ag_tensor *const *tensors, int n)
{
    loader L = {0};
    msgbuf m = {{0}, 0};
    add(&m, "%s: %s: ", op, where);
    if (!check_args(op, names, tensors, n, &L.dest_order, false)) return false;
    json_begin();
    bool ok = parse_file(&L, bytes, size, &m) && match(&L, names, tensors, n, &m);
    if (ok) {
        const unsigned char *data = bytes + 8 + get_u64le(bytes);
        for (int k = 0; k < L.n_entries; k++) {
            const entry *e = &L.entries[k];
            ag_tensor *t = tensors[e->dest];
            for (int64_t j = 0; j < t->numel; j++) t->data[j] = get_f32le(data + e->begin + 4 * j);
            /* As ag_set_data: load_state_dict copies under no_grad, so leaves that require
             * grad take the values; the version moves, so a graph that saved the old
             * values refuses to backward. */
            ag__bump_version(t);
        }
    }
    load_end(&L);
    if (!ok) ag__error("%s", m.s);
    return ok;
}

bool ag_safetensors_load_bytes(const void *bytes, size_t size, const char *const *names,
                               ag_tensor *const *tensors, int n)
{
    if (!bytes && size) return ag__error("safetensors_load_bytes: argument bytes is NULL"), false;
    char where[64];
    snprintf(where, sizeof where, "the %zu bytes given", size);
    return load("safetensors_load_bytes", where, bytes ? bytes : "", size, names, tensors, n);
}

bool ag_safetensors_load(const char *path, const char *const *names, ag_tensor *const *tensors,
                         int n)
{
    const char *op = "safetensors_load";
    if (!path) return ag__error("%s: argument path is NULL", op), false;
    if (!check_args(op, names, tensors, n, NULL, false)) return false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        return ag__error("%s: cannot read '%s': %s", op, path, strerror(err)), false;
    }
    /* The whole file, read until its end, so that nothing is copied before all of it has
     * been checked. */
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int err = 0;
    for (;;) {
        if (len == cap) {
            unsigned char *grown = ag__grow(buf, &cap, len + 65536, 1);
            if (!grown) {
                err = ENOMEM;
                break;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) err = errno ? errno : EIO;
            break;
        }
    }
    (void)fclose(f); /* read only: nothing was lost if it fails */
    if (err) {
        ag__free(buf);
        if (err == ENOMEM)
            return ag__error("%s: out of memory reading '%s' (%zu bytes read so far)", op, path,
                             len),
                   false;
        return ag__error("%s: cannot read '%s': %s", op, path, strerror(err)), false;
    }
    /* The path, quoted, as where; cut if it is very long. */
    char where[512];
    snprintf(where, sizeof where, "'%s'", path);
    bool ok = load(op, where, buf ? buf : (const unsigned char *)"", len, names, tensors, n);
    ag__free(buf);
    return ok;
}

#else /* no cJSON: the functions exist and say why they cannot work */

static bool no_cjson(const char *op, const char *verb, const char *path)
{
    if (path)
        ag__error("%s: agrad was built without cJSON (install libcjson-dev and rebuild): cannot "
                  "%s '%s'",
                  op, verb, path);
    else
        ag__error("%s: agrad was built without cJSON (install libcjson-dev and rebuild): it "
                  "cannot %s safetensors",
                  op, verb);
    return false;
}

bool ag_safetensors_save(const char *path, const char *const *names, ag_tensor *const *tensors,
                         int n)
{
    AG__UNUSED(names), AG__UNUSED(tensors), AG__UNUSED(n);
    return no_cjson("safetensors_save", "write", path ? path : "(NULL)");
}

void *ag_safetensors_save_bytes(const char *const *names, ag_tensor *const *tensors, int n,
                                size_t *size)
{
    AG__UNUSED(names), AG__UNUSED(tensors), AG__UNUSED(n);
    if (size) *size = 0;
    no_cjson("safetensors_save_bytes", "write", NULL);
    return NULL;
}

bool ag_safetensors_load(const char *path, const char *const *names, ag_tensor *const *tensors,
                         int n)
{
    AG__UNUSED(names), AG__UNUSED(tensors), AG__UNUSED(n);
    return no_cjson("safetensors_load", "read", path ? path : "(NULL)");
}

bool ag_safetensors_load_bytes(const void *bytes, size_t size, const char *const *names,
                               ag_tensor *const *tensors, int n)
{
    AG__UNUSED(bytes), AG__UNUSED(size), AG__UNUSED(names), AG__UNUSED(tensors), AG__UNUSED(n);
    return no_cjson("safetensors_load_bytes", "read", NULL);
}

#endif /* AG_HAVE_CJSON */
