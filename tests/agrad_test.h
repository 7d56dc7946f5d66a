/* Shared by the Criterion tests. */
#ifndef AGRAD_TEST_H
#define AGRAD_TEST_H

#include <agrad.h>
#include <criterion/criterion.h>

#if defined(__SANITIZE_ADDRESS__)
#define AGT_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AGT_HAVE_LSAN 1
#endif
#endif

#ifdef AGT_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__)
#define AGT_UNUSED __attribute__((unused))
#else
#define AGT_UNUSED
#endif

#define NVALS(...) (sizeof((float[]){__VA_ARGS__}) / sizeof(float))
/* A 1-D tensor of the listed values. */
#define VEC(rg, ...)                                                                               \
    ag_tensor_from((const float[]){__VA_ARGS__}, AG_SHAPE((int64_t)NVALS(__VA_ARGS__)), rg)

/* Failing calls record their message and return NULL / false / NAN instead of exiting. */
static inline void record_errors(void)
{
    ag_set_error_handler(NULL, NULL);
    ag_clear_error();
}

/* Asserts that t holds the n values of want, each within tol. */
static inline void check_values(const char *what, const ag_tensor *t, const float *want, size_t n,
                                float tol)
{
    cr_assert_not_null(t, "%s is NULL (last error: \"%s\")", what, ag_last_error());
    cr_assert_eq(t->numel, (int64_t)n, "%s has %lld elements, expected %zu", what,
                 (long long)t->numel, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(t->data[i] - want[i]) <= tol, "%s[%zu] = %.9g, expected %.9g (tol %g)",
                  what, i, (double)t->data[i], (double)want[i], (double)tol);
}
#define CHECK(what, t, tol, ...)                                                                   \
    check_values(what, t, (const float[]){__VA_ARGS__}, NVALS(__VA_ARGS__), tol)

/* Asserts that an error was recorded whose message contains every word, then clears it. */
static inline void expect_error_words(const char *call, const char *const *words)
{
    const char *msg = ag_last_error();
    cr_assert(msg[0] != '\0', "%s: expected an error, none was recorded", call);
    for (; *words; words++)
        cr_assert(strstr(msg, *words) != NULL, "%s: the message lacks \"%s\":\n    %s", call,
                  *words, msg);
    ag_clear_error();
}
#define EXPECT_ERROR(call, ...) expect_error_words(call, (const char *const[]){__VA_ARGS__, NULL})

/* Fault injection through agrad's allocation hook: ag_set_allocator(agt_faulty_realloc,
 * NULL), then
 *   agt_arm(n)            refuses the n-th allocation from now (0: none); fault.count counts
 *                         the allocations since, fault.failed says whether one was refused;
 *   fault.limit = bytes   refuses every allocation larger than that (0: no limit);
 *   agt_refuse_after(k)   lets k allocations through, then refuses every one (-1: off). */
typedef struct agt_fault_state {
    long count, fail_at, allowed;
    bool failed;
    size_t limit;
} agt_fault_state;
static agt_fault_state fault AGT_UNUSED = {0, 0, -1, false, 0};

static inline void *agt_faulty_realloc(void *p, size_t size, void *userdata)
{
    (void)userdata;
    if (size == 0) {
        free(p);
        return NULL;
    }
    if (fault.limit && size > fault.limit) return NULL;
    if (fault.allowed >= 0 && fault.allowed-- == 0) {
        fault.allowed = 0;
        return NULL;
    }
    if (fault.fail_at > 0 && ++fault.count == fault.fail_at) {
        fault.failed = true;
        return NULL;
    }
    return realloc(p, size);
}

static inline void agt_arm(long n)
{
    fault.count = 0;
    fault.fail_at = n;
    fault.failed = false;
}

static inline void agt_refuse_after(long k) { fault.allowed = k; }

/* A temporary directory for a test's files: agt_tmpdir_make("csv") makes
 * /tmp/agrad_csv_XXXXXX (in a suite's .init), agt_tmp("a.csv") is a path in it (a static
 * buffer, one of four, so that a few can be held at once), agt_tmpdir_remove() removes it
 * and its files (in .fini). */
static char agt_tmpdir[64] AGT_UNUSED;

static inline void agt_tmpdir_make(const char *prefix)
{
    snprintf(agt_tmpdir, sizeof agt_tmpdir, "/tmp/agrad_%s_XXXXXX", prefix);
    cr_assert_not_null(mkdtemp(agt_tmpdir), "mkdtemp: %s", strerror(errno));
}

static inline void agt_tmpdir_remove(void)
{
    DIR *d = opendir(agt_tmpdir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", agt_tmpdir, e->d_name);
        if (rmdir(p) != 0) unlink(p);
    }
    closedir(d);
    rmdir(agt_tmpdir);
}

static inline const char *agt_tmp(const char *name)
{
    static char bufs[4][512];
    static int k;
    char *p = bufs[k++ % 4];
    snprintf(p, 512, "%s/%s", agt_tmpdir, name);
    return p;
}

/* Ends a test: frees everything agrad holds, then, in a sanitizer build, fails the
 * test if anything leaked. Criterion's workers leave without LeakSanitizer's exit-time
 * check, so the check is made here. */
static inline void test_finish(void)
{
    ag_shutdown();
#ifdef AGT_HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks (above)");
#endif
}

#endif
