/* The CSV fuzz target: each input is a few bytes of options (which columns, by name or
 * index or both, the delimiter, a name for the bytes) and then a CSV file, given to
 * ag_read_csv_bytes. A read that fails must say why (agrad's message, naming the call) and
 * make nothing on the tape; one that succeeds gives a (rows, columns) tensor of the
 * columns asked for. The same bytes are then read as a file by ag_read_csv (a file no
 * directory holds), which must give the same values bit for bit, or the same message but
 * for the call's name and the file's. Each input is read a third time with an allocator
 * that refuses after a number of allocations taken from the input, so that every
 * out-of-memory path is crossed: it fails, or gives the same values bit for bit. After
 * ag_shutdown no byte may remain allocated (libcsv's allocations go through agrad's hook).
 * AddressSanitizer and UBSan abort on everything else.
 *
 * Built with libFuzzer by meson -Dfuzz=enabled (CC=clang): build/fuzz/fuzz_csv. With
 * fuzz/replay.c instead it is fuzz_csv_replay, which the test suite runs over
 * fuzz/corpus_csv. */
#include <agrad_data.h>

#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct options {
    ag_csv_columns columns;
    ag_csv_indices indices;
    char delimiter;
    const char *name;
    int n; /* columns asked for; 0: every column */
} options;

static const char *const names[] = {"x", "y", "a", "", "x1", "b c", "\"q\"", "x,y"};
static const int64_t indices[] = {0, 1, 2, 3, -1, 7, 1000000, INT64_MAX};
static const char delimiters[] = {',', ',', ';', '\t', ' ', '|', '"', '\n', '\r', 0, 'x', '1'};

/* The options from the first bytes of the input (consumed). */
static options decode(const uint8_t **data, size_t *size, const char **picked_names,
                      int64_t *picked)
{
    uint8_t b[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4 && *size; i++, (*data)++, (*size)--) b[i] = **data;
    options o = {.delimiter = delimiters[b[1] % sizeof delimiters]};
    int n = 1 + (b[2] & 3);
    for (int i = 0; i < n; i++) {
        picked_names[i] = names[(b[3] >> (2 * i) & 3) + (b[2] >> 2 & 4)];
        picked[i] = indices[(b[3] >> (2 * i) & 3) + (b[2] >> 3 & 4)];
    }
    if (b[0] & 1) o.columns = (ag_csv_columns){picked_names, n};
    if (b[0] & 2) o.indices = (ag_csv_indices){picked, n};
    if (b[0] & 1 || b[0] & 2) o.n = n;
    if (b[0] & 4) o.name = "in.csv";
    return o;
}

/* Reads the input with the options: from memory, or from the file at path (a copy of the
 * input). A failure must say why (agrad's message, naming the call) and make nothing. */
static ag_tensor *read_once(const uint8_t *data, size_t size, options o, const char *path)
{
    size_t before = ag_memory_stats().live_tensors;
    ag_clear_error();
    ag_tensor *t = path ? ag_read_csv(path, .columns = o.columns, .indices = o.indices,
                                      .delimiter = o.delimiter)
                        : ag_read_csv_bytes(data, size, .columns = o.columns, .indices = o.indices,
                                            .delimiter = o.delimiter, .name = o.name);
    size_t after = ag_memory_stats().live_tensors;
    if (!t) {
        const char *op = path ? "read_csv: " : "read_csv_bytes: ";
        if (strncmp(ag_last_error(), op, strlen(op))) fail("a failure without its message");
        if (after != before) fail("a failed read made tensors");
        return NULL;
    }
    if (ag_last_error()[0]) fail("a read succeeded with a message");
    if (after != before + 1) fail("a read made another number of tensors than one");
    if (t->ndim != 2 || t->requires_grad || !ag_is_leaf(t)) fail("the result is not a 2-d leaf");
    if (o.n && t->shape[1] != o.n) fail("the result has other columns than those asked for");
    return t;
}

static bool same_values(const ag_tensor *a, const ag_tensor *b)
{
    return a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1] &&
           !memcmp(a->data, b->data, (size_t)a->numel * sizeof(float));
}

/* The input as a file, read 16 KiB at a time: what reading it from memory gave (t, or the
 * message msg), but for the call's name and what the message calls the input. */
static void same_from_a_file(const uint8_t *data, size_t size, options o, const ag_tensor *t,
                             const char *msg)
{
    char path[32];
    int fd = bytes_as_file(data, size, path);
    if (fd < 0) return;
    ag_tensor *f = read_once(data, size, o, path);
    close(fd);
    if (!t != !f) fail("a file and the same bytes in memory read differently");
    if (t && !same_values(t, f)) fail("a file and the same bytes in memory gave other values");
    if (t) return;
    if (strstr(msg, "built without libcsv")) { /* then each call says so in its own words */
        if (!strstr(ag_last_error(), "built without libcsv"))
            fail("a file and the same bytes in memory say otherwise without libcsv");
        return;
    }
    /* "read_csv_bytes: <memory> line 2..." is "read_csv: '/proc/self/fd/3' line 2..." */
    const char *rest = msg + strlen("read_csv_bytes: ");
    const char *where = o.name ? "'in.csv'" : "<memory>";
    const char *at = strstr(rest, where);
    char want[1200];
    if (at)
        snprintf(want, sizeof want, "read_csv: %.*s'%s'%s", (int)(at - rest), rest, path,
                 at + strlen(where));
    else
        snprintf(want, sizeof want, "read_csv: %s", rest);
    if (strcmp(ag_last_error(), want)) fail("a file and the same bytes in memory say otherwise");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_start("fuzz_csv", 64 << 20, 256 << 20);
    const char *picked_names[4];
    int64_t picked[4];
    options o = decode(&data, &size, picked_names, picked);
    ag_tensor *t = read_once(data, size, o, NULL);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ag_last_error());
    same_from_a_file(data, size, o, t, msg);
    cap.refuse_after = (long)(size % 29);
    ag_tensor *again = read_once(data, size, o, NULL);
    cap.refuse_after = -1;
    if (again && !t) fail("a read failed, and succeeded when memory was short");
    if (t && !again && !strstr(ag_last_error(), "out of memory"))
        fail("a read succeeded, and failed otherwise than out of memory when memory was short");
    if (t && again && !same_values(t, again)) fail("two reads of the same bytes differ");
    fuzz_finish();
    return 0;
}
