/* The progress line: on a pseudo-terminal of a given width, with the clock injected, the
 * bytes written equal those tqdm writes for the same loop (tests/ref/progress_ref.h, from
 * tools/gen_ref_progress.py); nothing goes to a pipe or a file; stderr is the default
 * stream; NULL, closed and freed lines, a negative count or total, out of memory; the
 * DataLoader's line per epoch. */
#include <agrad_data.h>

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "agrad_test.h"

#include "ref/progress_ref.h"

static double now;
static double fake_clock(void) { return now; }

/* A pseudo-terminal ncols wide (0: the width unknown), raw (bytes pass unchanged): the
 * stream to write to, and *master to read what was written. */
static FILE *terminal(int ncols, int *master)
{
    int m, s;
    struct winsize ws = {.ws_row = 24, .ws_col = (unsigned short)ncols};
    cr_assert_eq(openpty(&m, &s, NULL, NULL, &ws), 0, "openpty: %s", strerror(errno));
    struct termios t;
    cr_assert_eq(tcgetattr(s, &t), 0);
    cfmakeraw(&t);
    cr_assert_eq(tcsetattr(s, TCSANOW, &t), 0);
    cr_assert_eq(fcntl(m, F_SETFL, O_NONBLOCK), 0);
    *master = m;
    FILE *f = fdopen(s, "w");
    cr_assert_not_null(f);
    return f;
}

/* What was written to the terminal so far (at most 64 KiB), in a static buffer. */
static const char *written(int master)
{
    static char buf[65536];
    size_t n = 0;
    for (ssize_t got; n < sizeof buf - 1 && (got = read(master, buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)got;
    buf[n] = '\0';
    return buf;
}

/* s with \r and \n made visible, for messages (static buffer). */
static const char *visible(const char *s)
{
    static char buf[4 * 65536];
    char *o = buf;
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n')
            o += sprintf(o, *s == '\r' ? "\\r" : "\\n");
        else
            *o++ = *s;
    }
    *o = '\0';
    return buf;
}

/* Points stderr (descriptor 2) at fd; returns what it was, for stderr_back. */
static int stderr_to(int fd)
{
    int saved = dup(2);
    cr_assert(saved >= 0 && dup2(fd, 2) == 2, "cannot point stderr elsewhere: %s", strerror(errno));
    return saved;
}

static void stderr_back(int saved)
{
    dup2(saved, 2);
    close(saved);
}

static void setup(void)
{
    record_errors();
    unsetenv("LANG");
    unsetenv("LC_CTYPE");
}

TestSuite(progress, .init = setup);

Test(progress, a_terminal_gets_what_tqdm_writes)
{
    size_t n = sizeof progress_cases / sizeof *progress_cases;
    for (size_t i = 0; i < n; i++) {
        const progress_case *c = &progress_cases[i];
        setenv("LC_ALL", c->utf8 ? "C.UTF-8" : "C", 1);
        int master;
        FILE *f = terminal(c->ncols, &master);
        ag_progress *p = NULL;
        for (int k = 0; k < c->nsteps; k++) {
            now = c->steps[k].t;
            if (c->steps[k].what == 'n') {
                p = ag_progress_new(c->desc, c->total, .stream = f, .private_clock = fake_clock);
                cr_assert_not_null(p, "%s: %s", c->name, ag_last_error());
            } else if (c->steps[k].what == 'u') {
                cr_assert(ag_progress_update(p, c->steps[k].k), "%s", ag_last_error());
            } else {
                ag_progress_close(p);
            }
        }
        const char *got = written(master);
        char want[4 * 65536];
        strcpy(want, visible(c->expected));
        cr_assert_str_eq(got, c->expected, "%s:\n    got      %s\n    expected %s", c->name,
                         visible(got), want);
        cr_assert_str_eq(ag_last_error(), "");
        fclose(f);
        close(master);
    }
    test_finish();
}

Test(progress, nothing_goes_to_a_pipe_or_a_file)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    FILE *w = fdopen(fds[1], "w");
    FILE *file = tmpfile();
    cr_assert(w && file);
    FILE *streams[] = {w, file};
    for (int i = 0; i < 2; i++) {
        ag_progress *p = ag_progress_new("epoch 1", 5, .stream = streams[i]);
        cr_assert_not_null(p, "%s", ag_last_error());
        for (int k = 0; k < 5; k++) cr_assert(ag_progress_update(p, 1));
        ag_progress_close(p);
        fflush(streams[i]);
    }
    fclose(w);
    char buf[16];
    cr_assert_eq(read(fds[0], buf, sizeof buf), 0, "something was written to a pipe");
    close(fds[0]);
    cr_assert_eq(ftell(file), 0, "something was written to a file");
    fclose(file);
    cr_assert_str_eq(ag_last_error(), "");
    test_finish();
}

Test(progress, stderr_is_the_default_stream)
{
    setenv("LC_ALL", "C", 1);
    int master;
    FILE *f = terminal(50, &master);
    int saved = stderr_to(fileno(f));
    now = 3;
    ag_progress *p = ag_progress_new("load", .private_clock = fake_clock);
    now = 5;
    ag_progress_update(p, 4);
    ag_progress_close(p);
    stderr_back(saved);
    const char *got = written(master);
    cr_assert_str_eq(got,
                     "\rload: 0it [00:00, ?it/s]\rload: 4it [00:02,  2.00it/s]\rload: 4it "
                     "[00:02,  2.00it/s]\n",
                     "%s", visible(got));
    fclose(f);
    close(master);
    test_finish();
}

Test(progress, null_closed_and_bad_arguments)
{
    ag_progress_close(NULL);
    cr_assert(ag_progress_update(NULL, 3), "NULL does nothing");
    cr_assert_str_eq(ag_last_error(), "");
    cr_assert_null(ag_progress_new("x", -2));
    EXPECT_ERROR("negative total", "progress_new: total must be >= 0 (0: unknown), got -2");
    ag_progress *p = ag_progress_new("x", 3);
    cr_assert_not_null(p);
    cr_assert(!ag_progress_update(p, -1));
    EXPECT_ERROR("negative n", "progress_update: n must be >= 0, got -1");
    cr_assert(ag_progress_update(p, INT64_MAX) && ag_progress_update(p, INT64_MAX),
              "the count saturates");
    ag_progress_close(p);
    /* p is freed: agrad compares the pointer with the open lines, never reads it */
    cr_assert(!ag_progress_update(p, 1));
    EXPECT_ERROR("closed", "progress_update: the progress line is not open (closed by "
                           "ag_progress_close or ag_shutdown)");
    ag_progress_close(p);
    EXPECT_ERROR("closed twice", "progress_close: the progress line is not open");
    test_finish();
}

Test(progress, shutdown_frees_the_lines_left_open)
{
    ag_progress *a = ag_progress_new("a", 2), *b = ag_progress_new(NULL);
    cr_assert(a && b);
    cr_assert(ag_progress_update(b, 1));
    ag_shutdown();
    record_errors();
    cr_assert(!ag_progress_update(a, 1));
    EXPECT_ERROR("after shutdown", "progress_update: the progress line is not open");
    test_finish(); /* LeakSanitizer: nothing left */
}

Test(progress, out_of_memory)
{
    for (long k = 0; k < 3; k++) {
        agt_refuse_after(k);
        ag_set_allocator(agt_faulty_realloc, NULL);
        ag_progress *p = ag_progress_new("epoch", 10);
        ag_set_allocator(NULL, NULL);
        agt_refuse_after(-1);
        if (k < 2) {
            cr_assert_null(p, "allocation %ld refused, and a line was made", k);
            EXPECT_ERROR("out of memory", "progress_new: out of memory");
        } else {
            cr_assert_not_null(p, "%s", ag_last_error());
            ag_progress_close(p);
        }
    }
    test_finish();
}

/* DataLoader(.progress = true): a line per epoch on stderr when it is a terminal, numbered,
 * counting batches up to len(loader), ended when the epoch ends; nothing when it is not one. */
Test(progress, a_loader_draws_a_line_per_epoch)
{
    setenv("LC_ALL", "C", 1);
    int master;
    FILE *f = terminal(60, &master);
    int saved = stderr_to(fileno(f));
    ag_tensor *X = ag_arange(0, 7, 1);
    ag_dataset *ds = ag_TensorDataset(X);
    ag_loader *loader = ag_DataLoader(ds, .batch_size = 3, .progress = true);
    int batches = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        ag_tensor *x;
        ag_mark m = ag_mark_now();
        while (ag_next(loader, &x)) {
            batches++;
            ag_release(m);
        }
    }
    stderr_back(saved);
    cr_assert_str_empty(ag_last_error(), "%s", ag_last_error());
    cr_assert_eq(batches, 6, "%d batches", batches);
    const char *got = written(master);
    const char *want[] = {"\repoch 1:   0%|", "| 0/3 [",          "\repoch 1: 100%|",
                          "| 3/3 [",          "\repoch 2:   0%|", "\repoch 2: 100%|"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert_not_null(strstr(got, want[i]), "no \"%s\" in %s", visible(want[i]), visible(got));
    /* each epoch's line is ended: two newlines, the last byte one of them */
    int newlines = 0;
    for (const char *c = got; *c; c++) newlines += *c == '\n';
    cr_assert_eq(newlines, 2, "%d newlines in %s", newlines, visible(got));
    cr_assert_eq(got[strlen(got) - 1], '\n', "%s", visible(got));
    fclose(f);
    close(master);

    /* stderr a pipe: the same loop writes nothing there */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    saved = stderr_to(fds[1]);
    ag_tensor *x;
    while (ag_next(loader, &x)) batches++;
    stderr_back(saved);
    close(fds[1]);
    cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    char buf[64];
    cr_assert_leq(read(fds[0], buf, sizeof buf), 0, "the loader wrote to a pipe");
    close(fds[0]);
    cr_assert_eq(batches, 9);
    ag_loader_free(loader);
    ag_dataset_free(ds);
    test_finish();
}
