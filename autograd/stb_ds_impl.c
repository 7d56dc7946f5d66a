/* agrad's own copy of stb_ds, with its allocator routed through ag__realloc so that an
 * allocation failure is reported instead of dereferencing NULL. Built with hidden
 * visibility: its symbols do not clash with a program that links Debian's libstb. */
#include "internal.h"

#include <stdlib.h>

static void *ag__stbds_realloc(void *p, size_t size)
{
    void *q = ag__realloc(p, size);
    if (!q && size) abort(); /* stb_ds cannot fail gracefully; ag__error has spoken */
    return q;
}

#define STBDS_REALLOC(ctx, p, size) ag__stbds_realloc(p, size)
#define STBDS_FREE(ctx, p)          free(p)
#define STB_DS_IMPLEMENTATION
#include <stb_ds.h>
