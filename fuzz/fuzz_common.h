/* What the fuzz targets share: a capped allocator, the way they begin and stop an input,
 * and files that no directory holds. Each target includes it once; fuzz/replay.c replays
 * their inputs without libFuzzer. */
#ifndef AGRAD_FUZZ_COMMON_H
#define AGRAD_FUZZ_COMMON_H

#include <agrad.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The allocation hook of a fuzz run: requests over cap_one bytes, or that would hold more
 * than cap_all in all, are refused (agrad's out-of-memory path, instead of exhausting the
 * machine); when refuse_after >= 0, that many allocations succeed and every later one
 * fails; outstanding counts the bytes held, so that a leak shows after ag_shutdown. */
static struct {
    size_t cap_one, cap_all, outstanding;
    long refuse_after;
} cap = {0, 0, 0, -1};

static void *capped_realloc(void *p, size_t size, void *userdata)
{
    (void)userdata;
    size_t old = p ? malloc_usable_size(p) : 0;
    if (size == 0) {
        cap.outstanding -= old;
        free(p);
        return NULL;
    }
    if (cap.refuse_after == 0) return NULL;
    if (cap.refuse_after > 0) cap.refuse_after--;
    if (size > cap.cap_one || cap.outstanding - old + size > cap.cap_all) return NULL;
    void *q = realloc(p, size);
    if (!q) return NULL;
    cap.outstanding = cap.outstanding - old + malloc_usable_size(q);
    return q;
}

/* The target's name, for its messages. */
static const char *fuzz_name;

/* Stops the run: under libFuzzer (and in the replay) an abort is a finding. */
static void fail(const char *what)
{
    fprintf(stderr, "%s: %s (last error: %s)\n", fuzz_name, what, ag_last_error());
    abort();
}

/* Begins an input of the target name: requests over cap_one bytes, or past cap_all in all,
 * refused; errors recorded, not fatal. */
static void fuzz_start(const char *name, size_t cap_one, size_t cap_all)
{
    fuzz_name = name;
    cap.cap_one = cap_one;
    cap.cap_all = cap_all;
    ag_set_allocator(capped_realloc, NULL);
    ag_set_error_handler(NULL, NULL);
}

/* Ends an input: frees all agrad holds and checks that no byte is left. */
static void fuzz_finish(void)
{
    ag_shutdown();
    if (cap.outstanding != 0) {
        fprintf(stderr, "%s: %zu bytes still allocated after ag_shutdown\n", fuzz_name,
                cap.outstanding);
        abort();
    }
    ag_set_allocator(NULL, NULL);
}

/* A file holding size bytes that no directory holds (memfd_create), so that nothing is left
 * behind: its path (/proc/self/fd/N) into path and its descriptor, which the caller closes;
 * -1 when the system gives none. */
static inline int bytes_as_file(const void *bytes, size_t size, char path[32])
{
    int fd = (int)syscall(SYS_memfd_create, "agrad-fuzz", 0);
    if (fd < 0) return -1;
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, (const char *)bytes + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
