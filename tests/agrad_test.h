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
