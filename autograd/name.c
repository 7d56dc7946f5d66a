/* Names: what a tensor is called wherever agrad shows it (the graph picture, the backward
 * trace, error messages, printing).
 *
 * A name lives beside the tensor, not in it: a table of (tensor, serial, name) kept in
 * serial order, so a lookup is a binary search and a tensor that was released (its memory
 * now another tensor's, of another serial) is never found again. ag_release drops the
 * entries of tensors it freed. A module's parameter needs no entry: its dotted name
 * ("lin.weight") is worked out from the module tree when asked (nn/module.c). */
#include "internal.h"

#include <string.h>

typedef struct named {
    uint64_t serial; /* first: the table is searched by it */
    const ag_tensor *t;
    char *name;
} named;

static struct {
    named *v;
    size_t n, cap;
    char *derived; /* the last parameter name ag_name worked out */
    size_t derived_cap;
} names;

/* The index of the first entry whose serial is >= serial. */
static size_t lower_bound(uint64_t serial)
{
    return ag__serial_bound(names.v, names.n, sizeof *names.v, serial);
}

static named *find(const ag_tensor *t)
{
    if (!names.n) return NULL;
    size_t i = lower_bound(node(t)->serial);
    return i < names.n && names.v[i].serial == node(t)->serial && names.v[i].t == t ? &names.v[i]
                                                                                    : NULL;
}

ag_tensor *ag_set_name(ag_tensor *t, const char *name)
{
    if (!ag__check(t, "set_name", "self")) return NULL;
    named *e = find(t);
    if (!name || !*name) { /* no name: forget it */
        if (e) {
            ag__free(e->name);
            memmove(e, e + 1, (size_t)(names.v + names.n - (e + 1)) * sizeof *e);
            names.n--;
        }
        return t;
    }
    size_t len = strlen(name) + 1;
    char *copy = ag__malloc(len);
    if (!copy) return ag__error("set_name: out of memory copying a name of %zu bytes", len);
    memcpy(copy, name, len);
    if (e) {
        ag__free(e->name);
        e->name = copy;
        return t;
    }
    named *grown = ag__grow(names.v, &names.cap, names.n + 1, sizeof *grown);
    if (!grown) {
        ag__free(copy);
        return ag__error("set_name: out of memory naming a tensor '%s'", name);
    }
    names.v = grown;
    size_t i = lower_bound(node(t)->serial); /* usually the end: the newest tensor */
    memmove(names.v + i + 1, names.v + i, (names.n - i) * sizeof *names.v);
    names.v[i] = (named){node(t)->serial, t, copy};
    names.n++;
    return t;
}

const char *ag__name_of(const ag_tensor *t, char *buf, size_t size)
{
    const named *e = find(t);
    if (e) return e->name;
    return ag__parameter_name(t, buf, size) ? buf : NULL;
}

const char *ag_name(const ag_tensor *t)
{
    if (!ag__check(t, "name", "self")) return NULL;
    const named *e = find(t);
    if (e) return e->name;
    /* a parameter's dotted name, as long as the module tree makes it */
    size_t need = ag__parameter_name(t, NULL, 0);
    if (!need) return NULL;
    char *buf = ag__grow(names.derived, &names.derived_cap, need + 1, 1);
    if (!buf) return ag__error("name: out of memory writing a parameter's name");
    names.derived = buf;
    ag__parameter_name(t, buf, names.derived_cap);
    return buf;
}

const char *ag__tensor_str(char buf[AG__SHAPE_STR], const ag_tensor *t)
{
    ag__shape_str(buf, t->ndim, t->shape);
    char nbuf[AG__NAME_SHOWN + 1];
    const char *name = ag__name_of(t, nbuf, sizeof nbuf);
    if (!name) return buf;
    size_t used = strlen(buf), len = strlen(name);
    if (len > AG__NAME_SHOWN - 3) /* long names are cut, with "..." saying so */
        snprintf(buf + used, AG__SHAPE_STR - used, " (%.*s...)", AG__NAME_SHOWN - 3, name);
    else
        snprintf(buf + used, AG__SHAPE_STR - used, " (%s)", name);
    return buf;
}

void ag__names_prune(void)
{
    size_t kept = 0;
    for (size_t i = 0; i < names.n; i++) {
        named e = names.v[i];
        if (ag__liveness_of(e.t) == AG__LIVE && node(e.t)->serial == e.serial)
            names.v[kept++] = e;
        else
            ag__free(e.name);
    }
    names.n = kept;
}

void ag__names_reset(void)
{
    for (size_t i = 0; i < names.n; i++) ag__free(names.v[i].name);
    ag__free(names.v);
    ag__free(names.derived);
    memset(&names, 0, sizeof names);
}
