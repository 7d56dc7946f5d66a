/* Errors: the handler, the last message, deferral, and the words of the argument checks.
 * The bottom layer: it calls nothing else of agrad. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void default_handler(const char *message, void *userdata)
{
    AG__UNUSED(userdata);
    fprintf(stderr, "agrad: %s\n", message);
    exit(EXIT_FAILURE);
}

static struct {
    ag_error_fn fn;
    void *userdata;
    char message[1024];
    int defer;     /* open deferral scopes */
    bool deferred; /* an error waits for the outermost scope to end */
} err = {default_handler, NULL, "", 0, false};

ag_error_fn ag_set_error_handler(ag_error_fn fn, void *userdata)
{
    ag_error_fn previous = err.fn;
    err.fn = fn;
    err.userdata = userdata;
    return previous;
}

const char *ag_last_error(void) { return err.message; }
void ag_clear_error(void) { err.message[0] = '\0'; }

void *ag__error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    if (err.defer)
        err.deferred = true;
    else if (err.fn)
        err.fn(err.message, err.userdata);
    return NULL;
}

void ag__defer_begin(void) { err.defer++; }

void ag__defer_end(void)
{
    if (--err.defer > 0 || !err.deferred) return;
    err.deferred = false;
    if (err.fn) err.fn(err.message, err.userdata);
}

bool ag__deferring(void) { return err.defer > 0; }

/* The argument's name, "self" or "tensors[3]". */
static const char *role_name(char buf[48], const char *role, int k)
{
    if (k < 0) return role;
    snprintf(buf, 48, "%s[%d]", role, k);
    return buf;
}

bool ag__check_failed(ag__liveness why, const char *op, const char *role, int k)
{
    char name[48];
    role = role_name(name, role, k);
    switch (why) {
    case AG__LIVE:
        return true;
    case AG__NULL:
        /* A NULL that comes out of a failed op was reported there already. */
        if (!err.message[0]) ag__error("%s: argument %s is NULL", op, role);
        return false;
    case AG__RELEASED:
        ag__error("%s: argument %s is a released tensor (freed by ag_release)", op, role);
        return false;
    case AG__RELEASED_GRAD:
        ag__error("%s: argument %s is the ->grad of a released tensor (freed with it by "
                  "ag_release), or a parameter of a freed module",
                  op, role);
        return false;
    case AG__NOT_HELD:
        break;
    }
    ag__error("%s: argument %s is not a tensor agrad holds (freed by ag_shutdown, or not "
              "made by agrad)",
              op, role);
    return false;
}

void ag__error_reset(void)
{
    err.fn = default_handler;
    err.userdata = NULL;
    err.message[0] = '\0';
    err.deferred = false;
}

const char *ag__shape_str(char buf[AG__SHAPE_STR], int ndim, const int64_t *shape)
{
    /* Up to AG_MAX_DIMS + 1 sizes (an AG_SHAPE's spare one), each at most 20 characters
     * and a separator: the buffer holds them all. */
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < ndim && i <= AG_MAX_DIMS; i++)
        n += (size_t)snprintf(buf + n, AG__SHAPE_STR - n, i ? ", %lld" : "%lld",
                              (long long)shape[i]);
    snprintf(buf + n, AG__SHAPE_STR - n, "]");
    return buf;
}

const char *ag__pyfloat(char buf[AG__PYFLOAT], double x)
{
    if (isnan(x)) return "nan";
    if (isinf(x)) return x < 0 ? "-inf" : "inf";
    if (x == 0) return signbit(x) ? "-0.0" : "0.0";
    /* The shortest decimal that reads back as x, as repr finds it: its digits and the
     * exponent of the first one. */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    char digits[24];
    int nd = 0;
    const char *s = e + (e[0] == '-');
    for (; *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    int exp10 = (int)strtol(s + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    /* Then repr's layout: scientific below 1e-4 and from 1e16 on, else positional with at
     * least one digit after the point. */
    char fixed[64];
    if (exp10 < -4 || exp10 >= 16) { /* 1e-05, 1.5e+16 */
        snprintf(fixed, sizeof fixed, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
                 exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (exp10 < 0) { /* 0.001 */
        snprintf(fixed, sizeof fixed, "0.%.*s%s", -exp10 - 1, "0000", digits);
    } else { /* 123.5, 100.0 */
        char whole[20];
        for (int i = 0; i <= exp10; i++) whole[i] = (char)(i < nd ? digits[i] : '0');
        whole[exp10 + 1] = '\0';
        snprintf(fixed, sizeof fixed, "%s.%s", whole, nd > exp10 + 1 ? digits + exp10 + 1 : "0");
    }
    snprintf(buf, AG__PYFLOAT, "%s%s", x < 0 ? "-" : "", fixed);
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* Text in memory                                                                        */

void ag__put_n(ag__text *t, const char *s, size_t n)
{
    if (t->failed) return;
    char *grown = ag__grow(t->s, &t->cap, t->len + n + 1, 1);
    if (!grown) {
        t->failed = true;
        return;
    }
    t->s = grown;
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void ag__put(ag__text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        ag__put_n(t, small, (size_t)n);
        return;
    }
    char *grown = t->failed ? NULL : ag__grow(t->s, &t->cap, t->len + (size_t)n + 1, 1);
    if (!grown) {
        t->failed = true;
        return;
    }
    t->s = grown;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}
