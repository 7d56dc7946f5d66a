/* Reading data sets from CSV files: the values of small files (written by each test into a
 * directory of its own), columns by name and by index, quoting, line ends, spaces, blank
 * lines; every field Python's float() reads gives PyTorch's float32 for it
 * (tests/ref/csv_ref.h, from tools/gen_ref_csv.py), every other is refused; each error's
 * whole message, with the file, the line and the column; out of memory anywhere; a
 * 100,000-row file. Built with AGT_HAVE_CSV=0 (agrad without libcsv), the suite checks the
 * error that says so. */
#include <agrad_data.h>

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agrad_test.h"

#include "ref/csv_ref.h"

#ifndef AGT_HAVE_CSV
#error "meson passes AGT_HAVE_CSV (0 or 1)"
#endif

/* ------------------------------------------------------------------------------------ */
/* Temporary files: one directory per test, removed at its end                           */

static void setup(void)
{
    record_errors();
    agt_tmpdir_make("csv");
}

static void teardown(void) { agt_tmpdir_remove(); }

/* Writes n bytes to agt_tmpdir/name and returns its path. */
AGT_UNUSED static const char *write_n(const char *name, const char *text, size_t n)
{
    const char *path = agt_tmp(name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(text, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    return path;
}
AGT_UNUSED static const char *write_file(const char *name, const char *text)
{
    return write_n(name, text, strlen(text));
}

/* Asserts that the read t failed with exactly the message want (printf's format and its
 * arguments: a path), then clears it. */
static void expect_refused(const char *call, const ag_tensor *t, const char *want, ...)
    __attribute__((format(printf, 3, 4)));
static void expect_refused(const char *call, const ag_tensor *t, const char *want, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, want);
    vsnprintf(msg, sizeof msg, want, ap);
    va_end(ap);
    cr_assert_null(t, "%s: read, where the error \"%s\" was expected", call, msg);
    cr_assert_str_eq(ag_last_error(), msg, "%s:\n    got      %s\n    expected %s", call,
                     ag_last_error(), msg);
    ag_clear_error();
}

/* expect_refused for the text (a string) read with the default options. */
AGT_UNUSED static void expect_text_refused(const char *call, const char *text, const char *want)
{
    expect_refused(call, ag_read_csv_bytes(text, strlen(text)), "%s", want);
}

AGT_UNUSED static void check_shape(const char *what, const ag_tensor *t, int64_t rows, int64_t cols)
{
    cr_assert_not_null(t, "%s is NULL: %s", what, ag_last_error());
    cr_assert(t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols,
              "%s has shape [%lld, %lld] (ndim %d), expected [%lld, %lld]", what,
              (long long)t->shape[0], (long long)t->shape[1], t->ndim, (long long)rows,
              (long long)cols);
}

TestSuite(csv, .init = setup, .fini = teardown);

#if AGT_HAVE_CSV

/* ------------------------------------------------------------------------------------ */
/* Values                                                                                */

Test(csv, values_of_every_column_in_the_headers_order)
{
    const char *path = write_file("a.csv", "x,y,z\n1,2,3\n-4.5,5e2,0.25\n");
    ag_tensor *t = ag_read_csv(path);
    check_shape("t", t, 2, 3);
    CHECK("t", t, 0, 1, 2, 3, -4.5f, 500, 0.25f);
    cr_assert(!t->requires_grad && ag_is_leaf(t) && !t->grad, "not a plain leaf");
    cr_assert_str_eq(ag_last_error(), "");
    test_finish();
}

Test(csv, columns_by_name_and_by_index_in_the_order_asked)
{
    const char *path = write_file("a.csv", "x1,x2,y\n1,2,3\n4,5,6\n7,8,9\n");
    ag_tensor *X = ag_read_csv(path, .columns = AG_COLUMNS("x1", "x2"));
    ag_tensor *Y = ag_read_csv(path, .columns = AG_COLUMNS("y"));
    check_shape("X", X, 3, 2);
    CHECK("X", X, 0, 1, 2, 4, 5, 7, 8);
    check_shape("Y", Y, 3, 1);
    CHECK("Y", Y, 0, 3, 6, 9);
    ag_tensor *YX = ag_read_csv(path, .columns = AG_COLUMNS("y", "x1"));
    CHECK("YX", YX, 0, 3, 1, 6, 4, 9, 7);
    ag_tensor *I = ag_read_csv(path, .indices = AG_INDICES(2, 0));
    check_shape("I", I, 3, 2);
    CHECK("I", I, 0, 3, 1, 6, 4, 9, 7);
    /* the plain function, and arrays of the caller's */
    const char *names[] = {"x2"};
    const int64_t idx[] = {1};
    ag_tensor *A = ag_read_csv_with((ag_read_csv_args){path, {names, 1}, {NULL, 0}, 0});
    ag_tensor *B = ag_read_csv_with((ag_read_csv_args){path, {NULL, 0}, {idx, 1}, ','});
    CHECK("A", A, 0, 2, 5, 8);
    CHECK("B", B, 0, 2, 5, 8);
    test_finish();
}

Test(csv, the_result_is_on_the_tape)
{
    const char *path = write_file("a.csv", "x\n1\n2\n");
    ag_mark m = ag_mark_now();
    size_t before = ag_memory_stats().live_tensors;
    ag_tensor *t = ag_read_csv(path);
    cr_assert_eq(ag_memory_stats().live_tensors, before + 1);
    cr_assert_not_null(ag_mul(t, 2));
    ag_release(m);
    cr_assert_eq(ag_memory_stats().live_tensors, before);
    (void)ag_len(t);
    EXPECT_ERROR("len of a released result", "released");
    test_finish();
}

Test(csv, quoted_fields_and_header_names)
{
    const char *path = write_file("q.csv", "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\", plain \n"
                                           "\"1.5\", \" 2 \" ,\"3\",4\n"
                                           "5,6,\"7e1\",\"-8\"\n");
    ag_tensor *t = ag_read_csv(path);
    check_shape("t", t, 2, 4);
    CHECK("t", t, 0, 1.5f, 2, 3, 4, 5, 6, 70, -8);
    ag_tensor *u =
        ag_read_csv(path, .columns = AG_COLUMNS("plain", "a,b", "say \"hi\"", "two\nlines"));
    CHECK("u", u, 0, 4, 1.5f, 2, 3, -8, 5, 6, 70);
    test_finish();
}

Test(csv, line_ends_crlf_cr_and_none_at_the_end)
{
    const char *texts[] = {"x,y\r\n1,2\r\n3,4\r\n", "x,y\r1,2\r3,4\r", "x,y\n1,2\n3,4",
                           "x,y\r\n1,2\r\n3,4", "x,y\n1,2\r\n3,4\r"};
    for (int i = 0; i < 5; i++) {
        ag_tensor *t = ag_read_csv_bytes(texts[i], strlen(texts[i]));
        check_shape(texts[i], t, 2, 2);
        CHECK(texts[i], t, 0, 1, 2, 3, 4);
    }
    /* the lines counted as an editor counts them, whatever the line ends */
    const char *bad[] = {"x\r\n1\r\n\r\nq\r\n", "x\r1\r\rq\r", "x\n1\n\nq"};
    for (int i = 0; i < 3; i++) {
        expect_text_refused(bad[i], bad[i],
                            "read_csv_bytes: <memory> line 4, column 1 (\"x\"): \"q\" is not "
                            "a number");
    }
    test_finish();
}

Test(csv, spaces_tabs_and_other_delimiters)
{
    const char *t1 = "  x ,\ty\t\n 1 ,  2\t\n\t3\t, 4 \n";
    ag_tensor *a = ag_read_csv_bytes(t1, strlen(t1), .columns = AG_COLUMNS("x", "y"));
    CHECK("spaces", a, 0, 1, 2, 3, 4);
    const char *t2 = "x\ty\n1\t2\n3\t4\n";
    ag_tensor *b = ag_read_csv_bytes(t2, strlen(t2), .delimiter = '\t');
    check_shape("tabs", b, 2, 2);
    CHECK("tabs", b, 0, 1, 2, 3, 4);
    const char *t3 = "x;y\n1,5;2\n";
    ag_tensor *c = ag_read_csv_bytes(t3, strlen(t3), .delimiter = ';', .columns = AG_COLUMNS("y"));
    CHECK("semicolons", c, 0, 2);
    expect_refused("1,5", ag_read_csv_bytes(t3, strlen(t3), .delimiter = ';'),
                   "read_csv_bytes: <memory> line 2, column 1 (\"x\"): \"1,5\" is not a number");
    test_finish();
}

Test(csv, blank_lines_are_skipped_wherever_they_are)
{
    const char *text = "\n\n  \nx,y\n\n1,2\n \t \n\n3,4\n\n\n";
    ag_tensor *t = ag_read_csv_bytes(text, strlen(text));
    check_shape("t", t, 2, 2);
    CHECK("t", t, 0, 1, 2, 3, 4);
    expect_text_refused("blank lines", "\n\nx,y\n\n1,2\n\n\n3\n",
                        "read_csv_bytes: <memory> line 8: the row has 1 field, the "
                        "header has 2");
    test_finish();
}

Test(csv, a_quoted_field_over_lines_moves_the_lines_after_it)
{
    expect_text_refused("lines", "x,\"long\nname\"\n1,\"2\r\n\"\n3,q\n",
                        "read_csv_bytes: <memory> line 5, column 2 (\"long\\nname\"): \"q\" "
                        "is not a number");
    expect_text_refused("a field over two lines is named by its first",
                        "x,y\n1,\"not\na number\"\n",
                        "read_csv_bytes: <memory> line 2, column 2 (\"y\"): \"not\\na number\" is "
                        "not a number");
    test_finish();
}

Test(csv, a_utf8_byte_order_mark_is_skipped)
{
    const char *path = write_file("bom.csv", "\xef\xbb\xbfx,y\n1,2\n");
    CHECK("file", ag_read_csv(path, .columns = AG_COLUMNS("x")), 0, 1);
    const char *text = "\xef\xbb\xbf"
                       "x\n3\n";
    CHECK("bytes", ag_read_csv_bytes(text, strlen(text), .columns = AG_COLUMNS("x")), 0, 3);
    test_finish();
}

Test(csv, a_header_without_rows_is_zero_rows)
{
    const char *path = write_file("h.csv", "x,y,z\n");
    check_shape("every column", ag_read_csv(path), 0, 3);
    check_shape("one", ag_read_csv(path, .indices = AG_INDICES(1)), 0, 1);
    check_shape("no line end", ag_read_csv_bytes("x,y", 3), 0, 2);
    test_finish();
}

/* A file of one column holding field alone, quoted (so that it reaches the number parser
 * whole: spaces, line ends, the delimiter), in buf; returns its length. */
static size_t one_field(char *buf, const char *field, int len)
{
    char *o = buf + sprintf(buf, "x\n\"");
    for (int i = 0; i < len; i++) {
        if (field[i] == '"') *o++ = '"';
        *o++ = field[i];
    }
    o += sprintf(o, "\"\n");
    return (size_t)(o - buf);
}

Test(csv, numbers_as_python_float_reads_them)
{
    char buf[256];
    size_t n = sizeof csv_accepted / sizeof *csv_accepted;
    for (size_t i = 0; i < n; i++) {
        const csv_number *c = &csv_accepted[i];
        size_t len = one_field(buf, c->field, c->len);
        ag_tensor *t = ag_read_csv_bytes(buf, len);
        cr_assert_not_null(t, "field \"%s\": %s", c->field, ag_last_error());
        uint32_t bits;
        memcpy(&bits, t->data, 4);
        cr_assert_eq(bits, c->bits, "field \"%s\": bits 0x%08x (%.9g), PyTorch's 0x%08x", c->field,
                     bits, (double)t->data[0], c->bits);
    }
    /* unquoted too (libcsv trims spaces and tabs); a locale with a decimal comma changes
     * nothing */
    const char *text = "x, y\n 1.5 , -2e3\n";
    ag_tensor *a = ag_read_csv_bytes(text, strlen(text));
    CHECK("unquoted", a, 0, 1.5f, -2000);
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
        ag_tensor *b = ag_read_csv_bytes(text, strlen(text));
        CHECK("in a locale with a decimal comma", b, 0, 1.5f, -2000);
    }
    setlocale(LC_NUMERIC, "C");
    test_finish();
}

Test(csv, what_python_float_refuses_is_not_a_number)
{
    char buf[256];
    size_t n = sizeof csv_rejected / sizeof *csv_rejected;
    for (size_t i = 0; i < n; i++) {
        const csv_number *c = &csv_rejected[i];
        size_t len = one_field(buf, c->field, c->len);
        ag_tensor *t = ag_read_csv_bytes(buf, len);
        cr_assert_null(t, "field \"%s\" was read", c->field);
        cr_assert(strstr(ag_last_error(), "read_csv_bytes: <memory> line 2, column 1 (\"x\"): "),
                  "%s", ag_last_error());
        cr_assert(strstr(ag_last_error(), "\" is not a number"), "%s", ag_last_error());
        ag_clear_error();
    }
    expect_refused("a backslash", ag_read_csv_bytes("x\n\"1\\x\"\n", 8),
                   "read_csv_bytes: <memory> line 2, column 1 (\"x\"): \"1\\\\x\" is not a number");
    expect_refused("a NUL byte", ag_read_csv_bytes("x\n\"1\0\"\n", 7),
                   "read_csv_bytes: <memory> line 2, column 1 (\"x\"): \"1\\x00\" is not a number");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

Test(csv, files_that_cannot_be_read)
{
    expect_refused("missing", ag_read_csv(agt_tmp("missing.csv")),
                   "read_csv: cannot read '%s': No such file or directory", agt_tmp("missing.csv"));
    expect_refused("a directory", ag_read_csv(agt_tmpdir),
                   "read_csv: cannot read '%s': Is a directory", agt_tmpdir);
    const char *e = write_file("empty.csv", "");
    expect_refused("empty", ag_read_csv(e),
                   "read_csv: '%s' has no header line (it is empty or blank)", e);
    const char *b = write_file("blank.csv", "\n  \r\n\t\n");
    expect_refused("blank", ag_read_csv(b),
                   "read_csv: '%s' has no header line (it is empty or blank)", b);
    expect_refused("no bytes", ag_read_csv_bytes(NULL, 0, .name = "train.csv"),
                   "read_csv_bytes: 'train.csv' has no header line (it is empty or blank)");
    test_finish();
}

Test(csv, ragged_rows_name_the_line_and_both_counts)
{
    const char *path = write_file("r.csv", "x,y\n1,2\n3,4,5\n");
    expect_refused("more", ag_read_csv(path),
                   "read_csv: '%s' line 3: the row has 3 fields, the header has 2", path);
    const char *t = "x,y,z\n1,2,3\n\n4,5\n";
    expect_refused("fewer", ag_read_csv_bytes(t, strlen(t), .name = "d.csv"),
                   "read_csv_bytes: 'd.csv' line 4: the row has 2 fields, the header has "
                   "3");
    expect_text_refused("a trailing delimiter is an empty field", "x,y\n1,2,\n",
                        "read_csv_bytes: <memory> line 2: the row has 3 fields, the header has 2");
    /* a ragged row is reported before a bad field in it */
    expect_text_refused("ragged first", "x,y\n1,q,3\n",
                        "read_csv_bytes: <memory> line 2: the row has 3 fields, the "
                        "header has 2");
    test_finish();
}

Test(csv, fields_that_are_not_numbers_name_the_line_and_the_column)
{
    const char *path = write_file("n.csv", "x,y\n1,2\n3,4\n5,abc\n");
    expect_refused("abc", ag_read_csv(path),
                   "read_csv: '%s' line 4, column 2 (\"y\"): \"abc\" is not a number", path);
    /* a column not read is not parsed */
    CHECK("x only", ag_read_csv(path, .columns = AG_COLUMNS("x")), 0, 1, 3, 5);
    expect_text_refused("empty", "x,y\n1, \n",
                        "read_csv_bytes: <memory> line 2, column 2 (\"y\"): the field is "
                        "empty, not a number");
    expect_text_refused("spaces only", "x\n\"  \"\n",
                        "read_csv_bytes: <memory> line 2, column 1 (\"x\"): the field "
                        "is empty, not a number");
    char long_field[200] = "x\n";
    memset(long_field + 2, 'a', 100);
    strcpy(long_field + 102, "\n");
    expect_refused("cut", ag_read_csv_bytes(long_field, strlen(long_field)),
                   "read_csv_bytes: <memory> line 2, column 1 (\"x\"): "
                   "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"... is not a number");
    /* cut inside a UTF-8 character only to finish it; bytes that never finish one (the
     * fuzz target's find) are cut 3 bytes later */
    memset(long_field + 2, 'a', 47);
    strcpy(long_field + 49, "\xc3\xa9\xc3\xa9 and more\n");
    expect_refused("utf-8", ag_read_csv_bytes(long_field, strlen(long_field)),
                   "read_csv_bytes: <memory> line 2, column 1 (\"x\"): "
                   "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"... is not "
                   "a number");
    memset(long_field + 2, 0x99, 150);
    strcpy(long_field + 152, "\n");
    char cut[200] = "read_csv_bytes: <memory> line 2, column 1 (\"x\"): \"";
    memset(cut + strlen(cut), 0x99, 51);
    strcat(cut, "\"... is not a number");
    expect_refused("continuation bytes", ag_read_csv_bytes(long_field, strlen(long_field)), "%s",
                   cut);
    test_finish();
}

Test(csv, columns_that_the_header_does_not_have)
{
    const char *path = write_file("c.csv", "x,y,x\n1,2,3\n");
    expect_refused("unknown", ag_read_csv(path, .columns = AG_COLUMNS("y", "z")),
                   "read_csv: '%s': columns[1] \"z\" is not a column of the header (line 1: \"x\", "
                   "\"y\", \"x\")",
                   path);
    expect_refused(
        "twice in the header", ag_read_csv(path, .columns = AG_COLUMNS("x")),
        "read_csv: '%s': columns[0] \"x\" names two columns of the header (line 1: columns 1 "
        "and 3); choose by index",
        path);
    CHECK("by index", ag_read_csv(path, .indices = AG_INDICES(2)), 0, 3);
    expect_refused(
        "index out of range", ag_read_csv(path, .indices = AG_INDICES(0, 3)),
        "read_csv: '%s': indices[1] is 3, out of range for the header's 3 columns (line 1; "
        "indices 0 to 2)",
        path);
    expect_refused(
        "negative index", ag_read_csv(path, .indices = AG_INDICES(-1)),
        "read_csv: '%s': indices[0] is -1, out of range for the header's 3 columns (line 1; "
        "indices 0 to 2)",
        path);
    /* the header's line is where it is, after blank lines */
    const char *t = "\n\nx,y\n1,2\n";
    expect_refused("header line", ag_read_csv_bytes(t, strlen(t), .columns = AG_COLUMNS("w")),
                   "read_csv_bytes: <memory>: columns[0] \"w\" is not a column of "
                   "the header (line 3: \"x\", \"y\")");
    test_finish();
}

Test(csv, bad_options)
{
    const char *t = "x,y\n1,2\n";
    size_t n = strlen(t);
    expect_refused("names twice", ag_read_csv_bytes(t, n, .columns = AG_COLUMNS("x", "y", "x")),
                   "read_csv_bytes: columns[0] and columns[2] are both \"x\"");
    expect_refused("indices twice", ag_read_csv_bytes(t, n, .indices = AG_INDICES(1, 1)),
                   "read_csv_bytes: indices[0] and indices[1] are both 1");
    expect_refused("both",
                   ag_read_csv_bytes(t, n, .columns = AG_COLUMNS("x"), .indices = AG_INDICES(0)),
                   "read_csv_bytes: give columns or indices, not both");
    expect_refused("no names", ag_read_csv_bytes(t, n, .columns = {(const char *const[]){"x"}, 0}),
                   "read_csv_bytes: columns has 0 names and names given; give at "
                   "least one name, or no columns for every column");
    expect_refused("NULL indices", ag_read_csv_bytes(t, n, .indices = {NULL, 2}),
                   "read_csv_bytes: indices has 2 indices and i NULL; give at "
                   "least one index, or no indices for every column");
    expect_refused("a NULL name", ag_read_csv_bytes(t, n, .columns = AG_COLUMNS("x", NULL)),
                   "read_csv_bytes: columns[1] is NULL");
    expect_refused("quote", ag_read_csv_bytes(t, n, .delimiter = '"'),
                   "read_csv_bytes: the delimiter cannot be \"\\\"\" (the quote, or a "
                   "line end)");
    expect_refused("newline", ag_read_csv_bytes(t, n, .delimiter = '\n'),
                   "read_csv_bytes: the delimiter cannot be \"\\n\" (the quote, or a "
                   "line end)");
    expect_refused("NULL path", ag_read_csv(NULL), "read_csv: argument path is NULL");
    expect_refused("NULL bytes", ag_read_csv_bytes(NULL, 3),
                   "read_csv_bytes: argument bytes is NULL");
    test_finish();
}

Test(csv, quoting_errors_name_the_line_and_the_column)
{
    const char *a = "x,y\n1,2\n3,4\"\n";
    expect_refused("a quote inside", ag_read_csv_bytes(a, strlen(a)),
                   "read_csv_bytes: <memory> line 3, column 2 (\"y\"): a quote inside an unquoted "
                   "field (a field with quotes is quoted whole, and a quote in it written \"\")");
    expect_text_refused(
        "after a closing quote", "x,y\n\"1\"2,3\n",
        "read_csv_bytes: <memory> line 2, column 1 (\"x\"): \"2\" after a closing quote "
        "(after a quoted field comes a delimiter or the line's end; a quote in it is "
        "written \"\")");
    const char *c = "x,y\n1,2\n3,\"4\n\n5,6\n";
    expect_refused("not closed", ag_read_csv_bytes(c, strlen(c), .name = "u.csv"),
                   "read_csv_bytes: 'u.csv' line 3, column 2 (\"y\"): the quoted "
                   "field that begins there is not closed by the end of the file");
    expect_text_refused("not closed in the header", "x,\"y\n",
                        "read_csv_bytes: <memory> line 1, column 2: the quoted field that begins "
                        "there is not closed by the end of the file");
    expect_text_refused(
        "a quote after spaces", "x,y\n1,\"2\" \"\n",
        "read_csv_bytes: <memory> line 2, column 2 (\"y\"): \"\\\"\" after a closing "
        "quote (after a quoted field comes a delimiter or the line's end; a quote in "
        "it is written \"\")");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Out of memory, large files                                                            */

Test(csv, out_of_memory_anywhere_is_agrads_error_and_makes_nothing)
{
    /* a long field and many rows, so that libcsv's buffer and the values grow */
    char *text = malloc(200000);
    size_t n = (size_t)sprintf(text, "x,\"%0200d\"\n", 7);
    for (int i = 0; i < 3000; i++) n += (size_t)sprintf(text + n, "%d,%d\n", i, -i);
    const char *path = write_file("big.csv", text);
    for (int form = 0; form < 2; form++) {
        bool ok = false;
        int failures = 0;
        for (long k = 0; !ok && k < 1000; k++) {
            size_t before = ag_memory_stats().live_tensors;
            agt_refuse_after(k);
            ag_set_allocator(agt_faulty_realloc, NULL);
            ag_tensor *t = form ? ag_read_csv(path) : ag_read_csv_bytes(text, n);
            ag_set_allocator(NULL, NULL);
            agt_refuse_after(-1);
            ok = t != NULL;
            if (!ok) {
                failures++;
                EXPECT_ERROR("out of memory",
                             form ? "read_csv: " : "read_csv_bytes: ", "out of memory");
                cr_assert_eq(ag_memory_stats().live_tensors, before, "a failed read made tensors");
            } else {
                check_shape("t", t, 3000, 2);
                cr_assert(t->data[2 * 2999] == 2999 && t->data[2 * 2999 + 1] == -2999);
            }
        }
        cr_assert(ok && failures > 3, "never succeeded, or never failed (%d failures)", failures);
    }
    /* one refusal alone, which libcsv would get round by asking for less: an error too */
    bool ok = false;
    for (long k = 1; !ok && k < 1000; k++) {
        agt_arm(k);
        ag_set_allocator(agt_faulty_realloc, NULL);
        ag_tensor *t = ag_read_csv_bytes(text, n);
        ag_set_allocator(NULL, NULL);
        ok = !fault.failed;
        if (fault.failed) {
            cr_assert_null(t, "allocation %ld was refused, and the read succeeded", k);
            EXPECT_ERROR("one refusal", "out of memory");
        }
    }
    agt_arm(0);
    cr_assert(ok);
    free(text);
    test_finish();
}

Test(csv, a_file_of_100000_rows)
{
    enum { ROWS = 100000 };
    char *text = malloc((size_t)ROWS * 48 + 64);
    size_t n = (size_t)sprintf(text, "i,half,neg\r\n");
    for (int i = 0; i < ROWS; i++)
        n += (size_t)sprintf(text + n, "%d,%.1f,\"%d\"\r\n", i, i * 0.5, -i);
    const char *path = write_n("big.csv", text, n);
    ag_tensor *t = ag_read_csv(path);
    check_shape("t", t, ROWS, 3);
    for (int i = 0; i < ROWS; i++)
        cr_assert(t->data[3 * i] == (float)i && t->data[3 * i + 1] == (float)(i * 0.5) &&
                      t->data[3 * i + 2] == (float)-i,
                  "row %d: %g %g %g", i, (double)t->data[3 * i], (double)t->data[3 * i + 1],
                  (double)t->data[3 * i + 2]);
    ag_tensor *u = ag_read_csv_bytes(text, n, .columns = AG_COLUMNS("neg"));
    check_shape("u", u, ROWS, 1);
    cr_assert(u->data[ROWS - 1] == -(float)(ROWS - 1));
    /* a bad field far down: the line is still exact */
    n += (size_t)sprintf(text + n, "1,2,x\r\n");
    path = write_n("bad.csv", text, n);
    expect_refused("far down", ag_read_csv(path),
                   "read_csv: '%s' line %d, column 3 (\"neg\"): \"x\" is not a number", path,
                   ROWS + 2);
    free(text);
    test_finish();
}

/* The file is read 16 KiB at a time: a \r\n split between two reads is one line end. */
Test(csv, a_line_end_split_between_two_reads)
{
    char *text = malloc(40000);
    for (size_t at = 16380; at <= 16388; at++) {
        /* rows "1", then a row "  2" whose \r\n is at bytes at - 1 and at */
        size_t n = (size_t)sprintf(text, "x\r\n");
        while (n < at - 4) n += (size_t)sprintf(text + n, "1\r\n");
        while (n < at - 2) text[n++] = ' ';
        text[n++] = '2';
        n += (size_t)sprintf(text + n, "\r\nq\r\n");
        cr_assert(text[at - 1] == '\r' && text[at] == '\n');
        long long line = 0;
        for (size_t i = 0; i < n; i++) line += text[i] == '\n'; /* q's line: the last */
        const char *path = write_n("split.csv", text, n);
        expect_refused("split", ag_read_csv(path),
                       "read_csv: '%s' line %lld, column 1 (\"x\"): \"q\" is not a number", path,
                       line);
        text[n - 3] = '3'; /* and without the bad row, every value */
        path = write_n("split.csv", text, n);
        ag_tensor *t = ag_read_csv(path);
        check_shape("t", t, (int64_t)line - 1, 1);
        cr_assert(t->data[line - 3] == 2 && t->data[line - 2] == 3);
    }
    free(text);
    test_finish();
}

#else /* agrad without libcsv */

Test(csv, built_without_libcsv_says_so)
{
    expect_refused("file", ag_read_csv("data.csv"),
                   "read_csv: agrad was built without libcsv (install libcsv-dev and "
                   "rebuild): cannot read 'data.csv'");
    expect_refused("bytes", ag_read_csv_bytes("x\n1\n", 4),
                   "read_csv_bytes: agrad was built without libcsv (install libcsv-dev "
                   "and rebuild): it cannot read CSV");
    check_shape("nothing else changes", ag_zeros(AG_SHAPE(1, 2)), 1, 2);
    test_finish();
}

#endif
