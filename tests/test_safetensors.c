/* Saving and loading weights in the safetensors format: PyTorch's files
 * (tests/ref/linear.safetensors and mlp.safetensors, written by
 * tools/gen_ref_safetensors.py) load with exactly PyTorch's values; a save loads back bit
 * for bit; the bytes written are those of the reference implementation's own test
 * vectors; every malformed file, every name or shape that does not match, every bad
 * argument is an error naming the file and the reason, and leaves every tensor as it
 * was. Built with AGT_HAVE_CJSON=0 (agrad without cJSON), the suite checks the error that
 * says so. */
#include <agrad_nn.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agrad_test.h"

#include "ref/safetensors_ref.h"

#ifndef AGT_HAVE_CJSON
#error "meson passes AGT_HAVE_CJSON (0 or 1)"
#endif

#ifndef REF_DIR
#define REF_DIR "tests/ref"
#endif

/* ------------------------------------------------------------------------------------ */
/* Temporary files: one directory per test, removed at its end                           */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void setup(void)
{
    record_errors();
    agt_tmpdir_make("safetensors");
}

static void teardown(void) { agt_tmpdir_remove(); }

TestSuite(safetensors, .init = setup, .fini = teardown);

/* The destinations most tests load into: weight [2, 3] and bias [2], leaves that require
 * grad, holding 1..6 and 7, 8. */
typedef struct dests {
    const char *names[2];
    ag_tensor *tensors[2];
} dests;

static dests linear_dests(void)
{
    dests d = {{"weight", "bias"}, {NULL, NULL}};
    d.tensors[0] = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), true);
    d.tensors[1] = ag_tensor_from((const float[]){7, 8}, AG_SHAPE(2), true);
    return d;
}

static void expect_unchanged(const dests *d, const char *what)
{
    static const float w[] = {1, 2, 3, 4, 5, 6}, b[] = {7, 8};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(d->tensors[0]->data[i], w[i], "%s: weight[%d] changed to %g", what, i,
                     (double)d->tensors[0]->data[i]);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(d->tensors[1]->data[i], b[i], "%s: bias[%d] changed to %g", what, i,
                     (double)d->tensors[1]->data[i]);
}

#if AGT_HAVE_CJSON

static void write_bytes(const char *path, const void *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(bytes, 1, size, f), size, "cannot write %s", path);
    fclose(f);
}

/* The whole file at path, malloc'd; *size its length. */
static unsigned char *read_bytes(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, got;
    do {
        buf = realloc(buf, len + 4096);
        cr_assert_not_null(buf);
        got = fread(buf + len, 1, 4096, f);
        len += got;
    } while (got > 0);
    fclose(f);
    *size = len;
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* Files made by hand                                                                    */

/* A safetensors file: the 8-byte length, header (padded with spaces to pad bytes if
 * pad > its length) and dlen bytes of data (NULL: bytes 0x11). malloc'd. */
static unsigned char *file_of(const char *header, size_t pad, const void *data, size_t dlen,
                              size_t *size)
{
    size_t hlen = strlen(header), n = pad > hlen ? pad : hlen;
    unsigned char *f = malloc(8 + n + dlen + 1);
    cr_assert_not_null(f);
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(f + 8, header, hlen);
    memset(f + 8 + hlen, ' ', n - hlen);
    if (data)
        memcpy(f + 8 + n, data, dlen);
    else
        memset(f + 8 + n, 0x11, dlen);
    *size = 8 + n + dlen;
    return f;
}

/* The header of a valid file for linear_dests' names, and its 32 bytes of data. */
#define GOOD_HEADER                                                                                \
    "{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"                          \
    "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]}}"

/* Loading bytes[0..size) into linear_dests fails, from memory and from a file, with a
 * message holding every word (and the file's path, or "bytes given"), and no tensor
 * changes. */
static void load_fails(const char *what, const void *bytes, size_t size, const char *const *words)
{
    dests d = linear_dests();
    cr_assert(!ag_safetensors_load_bytes(bytes, size, d.names, d.tensors, 2),
              "%s: load_bytes succeeded", what);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ag_last_error());
    cr_assert(strstr(msg, "safetensors_load_bytes: the ") && strstr(msg, " bytes given: "),
              "%s: the message does not name the bytes: %s", what, msg);
    expect_error_words(what, words);
    expect_unchanged(&d, what);

    const char *path = agt_tmp("bad.safetensors");
    write_bytes(path, bytes, size);
    cr_assert(!ag_safetensors_load(path, d.names, d.tensors, 2), "%s: load succeeded", what);
    snprintf(msg, sizeof msg, "%s", ag_last_error());
    cr_assert(strstr(msg, "safetensors_load: '") && strstr(msg, path),
              "%s: the message does not name the file %s: %s", what, path, msg);
    expect_error_words(what, words);
    expect_unchanged(&d, what);
}
#define LOAD_FAILS(what, bytes, size, ...)                                                         \
    load_fails(what, bytes, size, (const char *const[]){__VA_ARGS__, NULL})

/* A header with the data its offsets need (zeros), loaded into linear_dests, fails. */
static void header_fails(const char *what, const char *header, size_t dlen,
                         const char *const *words)
{
    size_t size;
    unsigned char *f = file_of(header, 0, NULL, dlen, &size);
    load_fails(what, f, size, words);
    free(f);
}
#define HEADER_FAILS(header, dlen, ...)                                                            \
    header_fails(header, header, dlen, (const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------------------------------ */
/* PyTorch's files                                                                       */

/* Zeros of each reference parameter's shape (requiring grad, as parameters do). */
static void zeros_like_params(const ref_param *p, int n, const char **names, ag_tensor **t)
{
    for (int i = 0; i < n; i++) {
        ag_shape s = {p[i].ndim, {0}};
        for (int k = 0; k < p[i].ndim; k++) s.d[k] = p[i].shape[k];
        names[i] = p[i].name;
        t[i] = ag_zeros(s, .requires_grad = true);
    }
}

static void expect_params(const ref_param *p, int n, ag_tensor *const *t)
{
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < p[i].numel; k++)
            cr_assert(t[i]->data[k] == p[i].values[k], "%s[%lld] = %.9g, PyTorch %.9g", p[i].name,
                      (long long)k, (double)t[i]->data[k], (double)p[i].values[k]);
}

Test(safetensors, pytorch_linear_loads_with_its_values)
{
    const char *names[2];
    ag_tensor *t[2];
    zeros_like_params(linear_params, linear_nparams, names, t);
    cr_assert(ag_safetensors_load(REF_DIR "/linear.safetensors", names, t, 2), "%s",
              ag_last_error());
    expect_params(linear_params, linear_nparams, t);
    cr_assert(t[0]->requires_grad && ag_is_leaf(t[0]), "weight is still a leaf that requires grad");

    /* The weights compute what PyTorch's model computes: y = x W^T + b. */
    ag_tensor *x = ag_tensor_from(linear_x, AG_SHAPE(linear_x_shape[0], linear_x_shape[1]));
    ag_tensor *y = ag_add(ag_matmul(x, ag_t(t[0])), t[1]);
    check_values("linear(x)", y, linear_y, sizeof linear_y / sizeof *linear_y, 1e-6f);
    test_finish();
}

Test(safetensors, pytorch_mlp_loads_with_its_values)
{
    const char *names[4];
    ag_tensor *t[4];
    zeros_like_params(mlp_params, mlp_nparams, names, t);
    size_t size;
    unsigned char *bytes = read_bytes(REF_DIR "/mlp.safetensors", &size);
    cr_assert(ag_safetensors_load_bytes(bytes, size, names, t, 4), "%s", ag_last_error());
    free(bytes);
    expect_params(mlp_params, mlp_nparams, t);

    ag_tensor *x = ag_tensor_from(mlp_x, AG_SHAPE(mlp_x_shape[0], mlp_x_shape[1]));
    ag_tensor *h = ag_tanh(ag_add(ag_matmul(x, ag_t(t[0])), t[1]));
    ag_tensor *y = ag_add(ag_matmul(h, ag_t(t[2])), t[3]);
    check_values("mlp(x)", y, mlp_y, sizeof mlp_y / sizeof *mlp_y, 1e-6f);
    test_finish();
}

Test(safetensors, a_module_loads_pytorchs_state_dict_and_saves_it_back)
{
    ag_manual_seed(5);
    ag_module *mlp = ag_Sequential(ag_Linear(2, 4), ag_Tanh(), ag_Linear(4, 1));
    cr_assert(ag_module_load(mlp, REF_DIR "/mlp.safetensors"), "%s", ag_last_error());
    ag_params p = ag_parameters(mlp);
    expect_params(mlp_params, mlp_nparams, p.tensors);
    ag_tensor *x = ag_tensor_from(mlp_x, AG_SHAPE(mlp_x_shape[0], mlp_x_shape[1]));
    check_values("mlp(x)", ag_forward(mlp, x), mlp_y, sizeof mlp_y / sizeof *mlp_y, 1e-6f);

    /* saved by agrad: the same bytes as PyTorch's writer gave */
    char dir[] = "/tmp/agrad-module-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/mlp.safetensors", dir);
    cr_assert(ag_module_save(mlp, path), "%s", ag_last_error());
    size_t a, b;
    unsigned char *mine = read_bytes(path, &a),
                  *theirs = read_bytes(REF_DIR "/mlp.safetensors", &b);
    cr_assert(a == b && !memcmp(mine, theirs, a), "the saved file differs from PyTorch's");
    free(mine);
    free(theirs);

    /* into a model of another shape: PyTorch's words, nothing changed */
    record_errors();
    ag_module *lin = ag_Linear(3, 2);
    float w0 = ag_parameters(lin).tensors[0]->data[0];
    cr_assert(!ag_module_load(lin, path));
    EXPECT_ERROR("load mlp into Linear", "Missing key(s) in state_dict", "\"weight\"",
                 "Unexpected key(s)", "\"0.weight\"");
    cr_assert_eq(ag_parameters(lin).tensors[0]->data[0], w0);
    remove(path);
    rmdir(dir);
    ag_module_free(lin);
    ag_module_free(mlp);
    test_finish();
}

Test(safetensors, names_may_come_in_any_order)
{
    /* The file holds 0.bias, 0.weight, 2.bias, 2.weight; ask in another order. */
    const char *names[4];
    ag_tensor *t[4];
    zeros_like_params(mlp_params, mlp_nparams, names, t);
    const char *rnames[4] = {names[3], names[1], names[0], names[2]};
    ag_tensor *rt[4] = {t[3], t[1], t[0], t[2]};
    cr_assert(ag_safetensors_load(REF_DIR "/mlp.safetensors", rnames, rt, 4), "%s",
              ag_last_error());
    expect_params(mlp_params, mlp_nparams, t);
    test_finish();
}

Test(safetensors, load_moves_the_version_as_set_data_does)
{
    /* A graph that saved w refuses to backward after w is loaded, as after w.data = ... */
    dests d = linear_dests();
    ag_tensor *loss = ag_sum(ag_mul(d.tensors[0], d.tensors[0]));
    size_t size;
    unsigned char *f = file_of(GOOD_HEADER, 0, NULL, 32, &size);
    cr_assert(ag_safetensors_load_bytes(f, size, d.names, d.tensors, 2), "%s", ag_last_error());
    free(f);
    cr_assert(!ag_backward(loss), "backward used the overwritten weight");
    EXPECT_ERROR("backward after load", "modified by an inplace operation");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Saving                                                                                */

/* The reference implementation's own test vectors (safetensors/src/tensor.rs,
 * test_serialization, test_serialization_forced_alignement, test_empty). */
Test(safetensors, save_writes_the_reference_implementations_bytes)
{
    static const unsigned char attn_0[] = {
        64, 0,  0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,
        34, 58, 123, 34,  100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,
        44, 34, 115, 104, 97,  112, 101, 34,  58,  91,  49,  44,  50,  44,  51,  93,
        44, 34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,  58,
        91, 48, 44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
        0,  0,  0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
    static const unsigned char attn0[] = {
        72,  0,   0,   0,   0,   0,   0,   0,   123, 34, 97, 116, 116, 110, 48,  34,  58,  123,
        34,  100, 116, 121, 112, 101, 34,  58,  34,  70, 51, 50,  34,  44,  34,  115, 104, 97,
        112, 101, 34,  58,  91,  49,  44,  49,  44,  50, 44, 51,  93,  44,  34,  100, 97,  116,
        97,  95,  111, 102, 102, 115, 101, 116, 115, 34, 58, 91,  48,  44,  50,  52,  93,  125,
        125, 32,  32,  32,  32,  32,  32,  32,  0,   0,  0,  0,   0,   0,   128, 63,  0,   0,
        0,   64,  0,   0,   64,  64,  0,   0,   128, 64, 0,  0,   160, 64};
    static const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
    const float v[] = {0, 1, 2, 3, 4, 5};
    struct {
        const char *name;
        ag_shape shape;
        const unsigned char *want;
        size_t size;
    } cases[] = {
        {"attn.0", AG_SHAPE(1, 2, 3), attn_0, sizeof attn_0},
        {"attn0", AG_SHAPE(1, 1, 2, 3), attn0, sizeof attn0},
    };
    for (size_t c = 0; c < 2; c++) {
        ag_tensor *t = ag_tensor_from(v, cases[c].shape);
        size_t size;
        unsigned char *got = ag_safetensors_save_bytes(&cases[c].name, &t, 1, &size);
        cr_assert_not_null(got, "%s", ag_last_error());
        cr_assert_eq(size, cases[c].size, "%s: %zu bytes, the reference %zu", cases[c].name, size,
                     cases[c].size);
        cr_assert(!memcmp(got, cases[c].want, size), "%s: bytes differ from the reference",
                  cases[c].name);
        /* And the file is the same bytes. */
        cr_assert(ag_safetensors_save(agt_tmp("a.safetensors"), &cases[c].name, &t, 1), "%s",
                  ag_last_error());
        size_t fsize;
        unsigned char *file = read_bytes(agt_tmp("a.safetensors"), &fsize);
        cr_assert(fsize == size && !memcmp(file, got, size),
                  "%s: the file differs from the "
                  "bytes",
                  cases[c].name);
        free(file);
        ag_free(got);
    }
    size_t size;
    unsigned char *got = ag_safetensors_save_bytes(NULL, NULL, 0, &size);
    cr_assert(got && size == sizeof empty && !memcmp(got, empty, size),
              "no tensors: not the reference's empty file");
    ag_free(got);
    test_finish();
}

Test(safetensors, save_writes_what_pytorchs_writer_writes)
{
    /* tests/ref/mlp.safetensors was written as save_file writes: names sorted, the
     * header padded. The names are given here in the model's order. */
    const char *names[4];
    ag_tensor *t[4];
    for (int i = 0; i < mlp_nparams; i++) {
        ag_shape s = {mlp_params[i].ndim, {0}};
        for (int k = 0; k < s.ndim; k++) s.d[k] = mlp_params[i].shape[k];
        names[i] = mlp_params[i].name;
        t[i] = ag_tensor_from(mlp_params[i].values, s, true);
    }
    cr_assert(ag_safetensors_save(agt_tmp("mlp.safetensors"), names, t, 4), "%s", ag_last_error());
    size_t a, b;
    unsigned char *got = read_bytes(agt_tmp("mlp.safetensors"), &a);
    unsigned char *want = read_bytes(REF_DIR "/mlp.safetensors", &b);
    cr_assert(a == b && !memcmp(got, want, a),
              "the file differs from PyTorch's (%zu and %zu bytes)", a, b);
    cr_assert(!exists(agt_tmp("mlp.safetensors.tmp")), "the temporary file was left behind");
    free(got);
    free(want);
    test_finish();
}

Test(safetensors, round_trip_keeps_every_bit)
{
    const char *names[] = {"w", "scalar", "empty", "four.d", "specials", "we\"ird\\ name\n\t\x01"};
    float sp[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 1e-45f, 3.4028235e38f, 0.1f};
    ag_tensor *src[6] = {
        ag_randn(AG_SHAPE(3, 5), .requires_grad = true),
        ag_scalar(-2.5),
        ag_zeros(AG_SHAPE(0, 3)),
        ag_rand(AG_SHAPE(2, 1, 3, 2)),
        ag_tensor_from(sp, AG_SHAPE(8)),
        ag_randn(AG_SHAPE(1)),
    };
    ag_tensor *dst[6] = {
        ag_zeros(AG_SHAPE(3, 5), .requires_grad = true),
        ag_scalar(0.0, true),
        ag_zeros(AG_SHAPE(0, 3)),
        ag_zeros(AG_SHAPE(2, 1, 3, 2)),
        ag_zeros(AG_SHAPE(8)),
        ag_zeros(AG_SHAPE(1)),
    };
    const char *path = agt_tmp("round.safetensors");
    cr_assert(ag_safetensors_save(path, names, src, 6), "%s", ag_last_error());
    cr_assert(ag_safetensors_load(path, names, dst, 6), "%s", ag_last_error());
    for (int i = 0; i < 6; i++)
        cr_assert(!memcmp(src[i]->data, dst[i]->data, (size_t)src[i]->numel * sizeof(float)),
                  "%s differs after the round trip", names[i]);

    /* The same through memory, and save overwrites an existing file. */
    ag_fill_(dst[3], 0);
    size_t size;
    void *bytes = ag_safetensors_save_bytes(names, src, 6, &size);
    cr_assert_not_null(bytes, "%s", ag_last_error());
    cr_assert(ag_safetensors_load_bytes(bytes, size, names, dst, 6), "%s", ag_last_error());
    cr_assert(!memcmp(src[3]->data, dst[3]->data, 12 * sizeof(float)), "four.d after load_bytes");
    ag_free(bytes);
    cr_assert(ag_safetensors_save(path, names + 1, src + 1, 1), "%s", ag_last_error());
    cr_assert(ag_safetensors_load(path, names + 1, dst + 1, 1), "%s", ag_last_error());
    test_finish();
}

Test(safetensors, header_padding_and_metadata_are_accepted)
{
    /* Spaces, tabs and newlines after the object, the metadata save_file(..., metadata=)
     * writes, entries in any order, and fields the format does not know, all ignored. */
    const char *header =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"weight\":{\"shape\":[2,3],\"dtype\":\"F32\",\"data_offsets\":[8,32],\"x\":1},"
        "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} \t\r\n";
    float data[8] = {-7, -8, -1, -2, -3, -4, -5, -6};
    size_t size;
    unsigned char *f = file_of(header, 160, data, sizeof data, &size);
    dests d = linear_dests();
    cr_assert(ag_safetensors_load_bytes(f, size, d.names, d.tensors, 2), "%s", ag_last_error());
    CHECK("weight", d.tensors[0], 0, -1, -2, -3, -4, -5, -6);
    CHECK("bias", d.tensors[1], 0, -7, -8);
    free(f);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Files that are not safetensors                                                        */

Test(safetensors, missing_file_names_the_path_and_the_reason)
{
    dests d = linear_dests();
    const char *path = agt_tmp("nothing-here.safetensors");
    cr_assert(!ag_safetensors_load(path, d.names, d.tensors, 2));
    EXPECT_ERROR("missing file", "safetensors_load: cannot read", path,
                 "No such file or directory");
    cr_assert(!ag_safetensors_load(agt_tmpdir, d.names, d.tensors, 2));
    EXPECT_ERROR("a directory", "safetensors_load: cannot read", agt_tmpdir, "Is a directory");
    expect_unchanged(&d, "missing file");
    test_finish();
}

Test(safetensors, truncated_files)
{
    size_t size;
    unsigned char *f = file_of(GOOD_HEADER, 0, NULL, 32, &size);
    LOAD_FAILS("empty file", f, 0, "the file is 0 bytes, too short", "truncated");
    LOAD_FAILS("5 bytes", f, 5, "the file is 5 bytes, too short");
    LOAD_FAILS("cut in the header", f, 40,
               "header's length is 118 bytes, beyond the end of the file",
               "(32 bytes after the length): truncated");
    LOAD_FAILS("cut in the data", f, size - 4, "\"weight\" has data_offsets [8, 32] out of range",
               "28 bytes of data");
    free(f);
    test_finish();
}

Test(safetensors, oversized_header_length)
{
    unsigned char f[64] = {0};
    f[7] = 0x80; /* 2^63 */
    LOAD_FAILS("2^63", f, sizeof f, "header's length is 9223372036854775808 bytes",
               "larger than the 100000000 safetensors allows");
    memset(f, 0, 8);
    f[0] = 0x01, f[1] = 0xe1, f[2] = 0xf5, f[3] = 0x05; /* 100000001 */
    LOAD_FAILS("100000001", f, sizeof f, "100000001 bytes, larger than the 100000000");
    test_finish();
}

Test(safetensors, header_that_is_not_a_json_object)
{
    HEADER_FAILS("[1, 2]", 0, "the header does not begin with '{'");
    HEADER_FAILS(" {}", 0, "the header does not begin with '{'");
    HEADER_FAILS("{\"weight\": }", 0, "the header is not valid JSON (at byte");
    HEADER_FAILS("{\"weight\": {\"dtype\": \"F32\"", 0, "the header is not valid JSON");
    HEADER_FAILS("{} {}", 0, "the header has more after its JSON object (at byte 3 of 5)");
    HEADER_FAILS("{}x", 0, "more after its JSON object");
    HEADER_FAILS("{\"w\xff\": 1}", 0, "the header is not valid UTF-8 (byte 3 of the header)");
    HEADER_FAILS("{\"\xc0\xaf\": 1}", 0, "not valid UTF-8");     /* overlong '/' */
    HEADER_FAILS("{\"\xed\xa0\x80\": 1}", 0, "not valid UTF-8"); /* a surrogate */
    size_t size;
    unsigned char *f = file_of("{}", 0, NULL, 0, &size);
    f[0] = 0;
    LOAD_FAILS("empty header", f, size, "does not begin with '{'");
    free(f);
    test_finish();
}

Test(safetensors, bad_entries)
{
    HEADER_FAILS("{\"weight\": 3}", 0, "the entry of \"weight\" is 3, not an object");
    HEADER_FAILS("{\"weight\": [1]}", 0, "the entry of \"weight\" is an array, not an object");
    HEADER_FAILS("{\"weight\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "\"weight\" has no dtype");
    HEADER_FAILS("{\"weight\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "\"weight\" has a bad dtype (4, not a string)");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "\"weight\" has the unknown dtype \"F33\"");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8,
                 "\"weight\" has no shape");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
                 "\"weight\" has a bad shape (2, not an array)");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8,
                 "\"weight\" has no data_offsets");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}}}", 8,
                 "\"weight\" has bad data_offsets (expected [begin, end]");
    test_finish();
}

Test(safetensors, bad_shapes)
{
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,8]}}", 8,
                 "\"weight\" has a bad shape: size 1 is -3, not an integer >= 0");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8,
                 "size 0 is 1.5, not an integer >= 0");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                 "size 0 is a string, not an integer");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
                 "size 0 is 1.0000000000000001e+300, not an integer");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                 "\"data_offsets\":[0,8]}}",
                 8, "\"weight\" has a shape whose number of bytes overflows",
                 "torch.Size([4294967296, 4294967296])");
    test_finish();
}

Test(safetensors, bad_data_offsets)
{
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 16,
                 "\"weight\" has bad data_offsets (expected [begin, end], two integers >= 0)");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
                 "\"weight\" has bad data_offsets");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                 "\"weight\" has data_offsets [8, 0] that end before they begin");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8,
                 "\"weight\" has data_offsets [0, 800] out of range: the file holds 8 bytes");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
                 "\"weight\" has data_offsets [0, 20], 20 bytes, but its shape torch.Size([2, 3]) "
                 "of F32 needs 24");
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
                 "torch.Size([2, 3]) of F64 needs 48");
    test_finish();
}

Test(safetensors, overlapping_gapped_or_short_data)
{
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]}}",
                 28, "the data of \"weight\" [4, 28] overlaps that of \"bias\" [0, 8]");
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                 24, "overlaps");
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[12,36]}}",
                 36, "no tensor holds the data bytes [8, 12) (before \"weight\")", "contiguous");
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[12,36]}}",
                 36, "no tensor holds the data bytes [0, 4)");
    HEADER_FAILS(GOOD_HEADER, 40, "no tensor holds the last 8 bytes of the file",
                 "data bytes [32, 40)");
    test_finish();
}

Test(safetensors, duplicate_names_and_bad_metadata)
{
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                 16, "the header names \"bias\" twice");
    HEADER_FAILS("{\"__metadata__\":{\"format\":1}}", 0,
                 "\"__metadata__\" is not an object of strings");
    HEADER_FAILS("{\"__metadata__\":\"pt\"}", 0, "\"__metadata__\" is not an object of strings");
    HEADER_FAILS("{\"__metadata__\":{},\"__metadata__\":{}}", 0,
                 "the header has \"__metadata__\" twice");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Files that do not match the tensors                                                   */

Test(safetensors, missing_and_unexpected_keys_in_pytorchs_words)
{
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"foo\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                 "\"bar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[12,16]}}",
                 16,
                 "Error(s) in loading state_dict:", "Missing key(s) in state_dict: \"weight\". ",
                 "Unexpected key(s) in state_dict: \"foo\", \"bar\". ");
    HEADER_FAILS("{}", 0, "Missing key(s) in state_dict: \"weight\", \"bias\". ");
    test_finish();
}

Test(safetensors, size_mismatch_in_pytorchs_words)
{
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[8,32]}}",
                 32,
                 "size mismatch for weight: copying a param with shape torch.Size([3, 2]) from "
                 "checkpoint, the shape in current model is torch.Size([2, 3]).");
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[4,28]}}",
                 28, "size mismatch for weight: copying a param with shape torch.Size([1, 2, 3])",
                 "size mismatch for bias: copying a param with shape torch.Size([]) from "
                 "checkpoint, the shape in current model is torch.Size([2]).");
    test_finish();
}

Test(safetensors, dtype_other_than_f32_is_named)
{
    HEADER_FAILS("{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"weight\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[8,56]}}",
                 56, "dtype mismatch for weight: the checkpoint holds F64, agrad loads only F32");
    HEADER_FAILS("{\"bias\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                 "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]}}",
                 28, "dtype mismatch for bias: the checkpoint holds BF16");
    test_finish();
}

Test(safetensors, many_problems_are_listed_together)
{
    /* Missing, unexpected and size mismatch in one message, as PyTorch lists them. */
    HEADER_FAILS("{\"weight\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},"
                 "\"extra\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,24]}}",
                 24, "Missing key(s) in state_dict: \"bias\". ",
                 "Unexpected key(s) in state_dict: \"extra\". ",
                 "size mismatch for weight: copying a param with shape torch.Size([6])");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Bad arguments and failing writes                                                      */

Test(safetensors, bad_arguments)
{
    dests d = linear_dests();
    size_t size;
    cr_assert(!ag_safetensors_save(NULL, d.names, d.tensors, 2));
    EXPECT_ERROR("save NULL path", "safetensors_save: argument path is NULL");
    cr_assert(!ag_safetensors_load(NULL, d.names, d.tensors, 2));
    EXPECT_ERROR("load NULL path", "safetensors_load: argument path is NULL");
    cr_assert(!ag_safetensors_load_bytes(NULL, 8, d.names, d.tensors, 2));
    EXPECT_ERROR("load NULL bytes", "safetensors_load_bytes: argument bytes is NULL");
    cr_assert_null(ag_safetensors_save_bytes(d.names, d.tensors, 2, NULL));
    EXPECT_ERROR("save_bytes NULL size", "safetensors_save_bytes: argument size is NULL");
    cr_assert_null(ag_safetensors_save_bytes(d.names, d.tensors, -1, &size));
    EXPECT_ERROR("n < 0", "safetensors_save_bytes: n is -1");
    cr_assert_null(ag_safetensors_save_bytes(NULL, d.tensors, 2, &size));
    EXPECT_ERROR("NULL names", "argument names is NULL");
    cr_assert_null(ag_safetensors_save_bytes(d.names, NULL, 2, &size));
    EXPECT_ERROR("NULL tensors", "argument tensors is NULL");

    const char *twice[] = {"bias", "bias"};
    cr_assert(!ag_safetensors_save(agt_tmp("x.safetensors"), twice, d.tensors, 2));
    EXPECT_ERROR("a name twice", "safetensors_save: names[0] and names[1] are both \"bias\"");
    cr_assert(!exists(agt_tmp("x.safetensors")), "a file was written after an error");
    cr_assert(!ag_safetensors_load(REF_DIR "/linear.safetensors", twice, d.tensors, 2));
    EXPECT_ERROR("a name twice", "safetensors_load: names[0] and names[1] are both \"bias\"");
    const char *meta[] = {"weight", "__metadata__"};
    cr_assert_null(ag_safetensors_save_bytes(meta, d.tensors, 2, &size));
    EXPECT_ERROR("__metadata__", "names[1] is \"__metadata__\", which safetensors keeps");
    const char *latin1[] = {"weight", "b\xe9"};
    cr_assert(!ag_safetensors_save(agt_tmp("x.safetensors"), latin1, d.tensors, 2));
    EXPECT_ERROR("not UTF-8", "safetensors_save: names[1] is not valid UTF-8 (at byte 1)");
    const char *null_name[] = {"weight", NULL};
    cr_assert(!ag_safetensors_load(REF_DIR "/linear.safetensors", null_name, d.tensors, 2));
    EXPECT_ERROR("NULL name", "safetensors_load: argument names[1] is NULL");

    ag_mark m = ag_mark_now();
    ag_tensor *gone[2] = {d.tensors[0], ag_zeros(AG_SHAPE(2))};
    ag_release(m);
    cr_assert(!ag_safetensors_load(REF_DIR "/linear.safetensors", d.names, gone, 2));
    EXPECT_ERROR("released", "safetensors_load: argument tensors[1] is a released tensor");
    ag_tensor *null_t[2] = {d.tensors[0], NULL};
    cr_assert_null(ag_safetensors_save_bytes(d.names, null_t, 2, &size));
    EXPECT_ERROR("NULL tensor", "safetensors_save_bytes: argument tensors[1] is NULL");
    expect_unchanged(&d, "bad arguments");
    test_finish();
}

Test(safetensors, unwritable_path_names_the_path_and_the_reason)
{
    dests d = linear_dests();
    const char *path = agt_tmp("no-such-dir/model.safetensors");
    cr_assert(!ag_safetensors_save(path, d.names, d.tensors, 2));
    EXPECT_ERROR("no directory", "safetensors_save: cannot write", path,
                 "No such file or directory");
    /* A directory where the file should go: renaming over it fails, and the temporary
     * file is removed. */
    const char *dir = agt_tmp("taken");
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert(!ag_safetensors_save(dir, d.names, d.tensors, 2));
    EXPECT_ERROR("a directory", "safetensors_save: cannot write", dir, "(renaming",
                 ".tmp' over it)", "Is a directory");
    cr_assert(!exists(agt_tmp("taken.tmp")), "the temporary file was left behind");
    test_finish();
}

Test(safetensors, out_of_memory_anywhere_changes_nothing)
{
    dests d = linear_dests();
    const char *path = agt_tmp("good.safetensors");
    size_t size;
    unsigned char *f = file_of(GOOD_HEADER, 0, NULL, 32, &size);
    write_bytes(path, f, size);
    bool ok = false;
    int failures = 0;
    for (long k = 0; !ok && k < 1000; k++) {
        agt_refuse_after(k);
        ag_set_allocator(agt_faulty_realloc, NULL);
        ok = ag_safetensors_load(path, d.names, d.tensors, 2);
        ag_set_allocator(NULL, NULL);
        if (!ok) {
            failures++;
            EXPECT_ERROR("out of memory", "safetensors_load", "out of memory");
            expect_unchanged(&d, "out of memory");
        }
    }
    cr_assert(ok && failures > 3, "load never succeeded, or never failed (%d failures)", failures);
    float v;
    memcpy(&v, (const uint32_t[]){0x11111111u}, sizeof v); /* file_of's data */
    CHECK("weight", d.tensors[0], 0, v, v, v, v, v, v);

    ok = false;
    failures = 0;
    for (long k = 0; !ok && k < 1000; k++) {
        agt_refuse_after(k);
        ag_set_allocator(agt_faulty_realloc, NULL);
        ok = ag_safetensors_save(agt_tmp("saved.safetensors"), d.names, d.tensors, 2);
        void *bytes = ag_safetensors_save_bytes(d.names, d.tensors, 2, &size);
        ag_set_allocator(NULL, NULL);
        if (!ok) {
            failures++;
            cr_assert(strstr(ag_last_error(), "out of memory"), "%s", ag_last_error());
            cr_assert(!exists(agt_tmp("saved.safetensors")), "a file was written after an error");
        }
        ag_free(bytes);
        ag_clear_error();
    }
    cr_assert(ok && failures > 3, "save never succeeded, or never failed (%d failures)", failures);
    agt_refuse_after(-1);
    free(f);
    test_finish();
}

#else /* agrad built without cJSON */

Test(safetensors, without_cjson_every_call_says_so)
{
    dests d = linear_dests();
    const char *path = agt_tmp("model.safetensors");
    cr_assert(!ag_safetensors_save(path, d.names, d.tensors, 2));
    EXPECT_ERROR("save",
                 "safetensors_save: agrad was built without cJSON (install libcjson-dev "
                 "and rebuild)",
                 path);
    cr_assert(!exists(path), "a file was written");
    size_t size = 1;
    cr_assert_null(ag_safetensors_save_bytes(d.names, d.tensors, 2, &size));
    cr_assert_eq(size, 0);
    EXPECT_ERROR("save_bytes", "safetensors_save_bytes: agrad was built without cJSON");
    cr_assert(!ag_safetensors_load(REF_DIR "/linear.safetensors", d.names, d.tensors, 2));
    EXPECT_ERROR("load",
                 "safetensors_load: agrad was built without cJSON (install libcjson-dev "
                 "and rebuild)",
                 "linear.safetensors");
    cr_assert(!ag_safetensors_load_bytes("", 0, d.names, d.tensors, 2));
    EXPECT_ERROR("load_bytes", "safetensors_load_bytes: agrad was built without cJSON");
    expect_unchanged(&d, "without cJSON");
    test_finish();
}

#endif
