/* Warnings: PyTorch's UserWarnings (an MSE loss whose target broadcasts), shown once per
 * call site and message, as Python's default warning filter shows them. Above memory.c:
 * the sites seen are kept in memory from the allocation hook, which ag_shutdown frees. */
#include "internal.h"

#include <string.h>

static void default_handler(const char *message, void *userdata)
{
    AG__UNUSED(userdata);
    fprintf(stderr, "agrad: UserWarning: %s\n", message);
}

/* A site and message already shown: file, then a NUL, then the message, in one block. */
typedef struct seen {
    int line;
    char *text;
} seen;

static struct {
    ag_warning_fn fn;
    void *userdata;
    seen *seen;
    size_t n, cap;
} warn = {default_handler, NULL, NULL, 0, 0};

ag_warning_fn ag_set_warning_handler(ag_warning_fn fn, void *userdata)
{
    ag_warning_fn previous = warn.fn;
    warn.fn = fn;
    warn.userdata = userdata;
    return previous;
}

static bool was_seen(const char *file, int line, const char *message)
{
    for (size_t i = 0; i < warn.n; i++) {
        const char *text = warn.seen[i].text;
        if (warn.seen[i].line == line && !strcmp(text, file) &&
            !strcmp(text + strlen(text) + 1, message))
            return true;
    }
    return false;
}

/* Notes the site and message as seen; false when out of memory (the warning is shown
 * all the same, and may be shown again). */
static bool remember(const char *file, int line, const char *message)
{
    size_t lf = strlen(file), lm = strlen(message);
    seen *grown = ag__grow(warn.seen, &warn.cap, warn.n + 1, sizeof *warn.seen);
    if (!grown) return false;
    warn.seen = grown;
    char *text = ag__malloc(lf + lm + 2);
    if (!text) return false;
    memcpy(text, file, lf + 1);
    memcpy(text + lf + 1, message, lm + 1);
    warn.seen[warn.n++] = (seen){line, text};
    return true;
}

void ag__warn_once(const char *file, int line, const char *fmt, ...)
{
    if (!warn.fn) return;
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (!file) file = "";
    if (was_seen(file, line, message)) return;
    (void)remember(file, line, message);
    warn.fn(message, warn.userdata);
}

void ag__warning_reset(void)
{
    for (size_t i = 0; i < warn.n; i++) ag__free(warn.seen[i].text);
    ag__free(warn.seen);
    warn.seen = NULL;
    warn.n = warn.cap = 0;
    warn.fn = default_handler;
    warn.userdata = NULL;
}
