/* The labs' pictures (plot.h) over PLplot's cairo drivers.
 *
 * Each picture is one drawing function, run twice by render(): once into pngcairo, once
 * into svgcairo. PLplot ends the program on a fatal error, so render() first makes sure
 * that the drivers are there and that the file can be written. A failure is said on
 * stderr where it happens and remembered for plot_failed(). */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef AGRAD_HAVE_PLPLOT
#define AGRAD_HAVE_PLPLOT 0
#endif

#if AGRAD_HAVE_PLPLOT
#include <plplot.h>
#endif

struct plot_error_surfaces {
    const char *dir;
    char *name;
    double w_range, b_range;
    int n_samples;
    float *x, *y;
    int64_t n;
    double *gw, *gb; /* the grid: n_samples values of w, of b */
    double **Z;      /* Z[i][j]: the loss at (gw[i], gb[j]), as PLplot wants it */
    double zmin, zmax;
    double *W, *B, *LOSS; /* the path: n_path points, room for cap */
    int n_path, cap;
    bool path_full; /* a point was dropped (said once) */
};

static bool failed; /* a picture could not be written */

bool plot_failed(void) { return failed; }

/* -1, remembered for plot_failed(); the caller has said why on stderr. */
static int failure(void)
{
    failed = true;
    return -1;
}

/* The lab's go = True: the surface and the contour map, each its own picture. */
static void draw_go(const plot_error_surfaces *s);

/* The loss the labs' criterion gives: torch.mean((w * x + b - y) ** 2). */
static double loss_at(const plot_error_surfaces *s, double w, double b)
{
    double sum = 0;
    for (int64_t k = 0; k < s->n; k++) {
        double e = w * s->x[k] + b - s->y[k];
        sum += e * e;
    }
    return sum / (double)s->n;
}

plot_error_surfaces *plot_error_surfaces_new(const char *dir, const char *name, double w_range,
                                             double b_range, const float *x, const float *y,
                                             int64_t n, int n_samples, bool go)
{
    if (!dir) return NULL; /* no pictures: nothing to compute or keep */
    if (n < 1 || n_samples < 2 || n_samples > 10000 || !(w_range > 0) || !(b_range > 0) ||
        !isfinite(w_range) || !isfinite(b_range) || !x || !y || !name) {
        fprintf(stderr,
                "plot_error_surfaces: needs points (n = %lld >= 1), n_samples in 2..10000 "
                "(got %d) and ranges > 0 (got %g, %g)\n",
                (long long)n, n_samples, w_range, b_range);
        failure();
        return NULL;
    }
    plot_error_surfaces *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    size_t ns = (size_t)n_samples;
    s->name = malloc(strlen(name) + 1);
    s->x = malloc((size_t)n * sizeof(float));
    s->y = malloc((size_t)n * sizeof(float));
    s->gw = malloc(ns * sizeof(double));
    s->gb = malloc(ns * sizeof(double));
    s->Z = calloc(ns, sizeof(double *));
    if (!s->name || !s->x || !s->y || !s->gw || !s->gb || !s->Z) goto oom;
    for (size_t i = 0; i < ns; i++)
        if (!(s->Z[i] = malloc(ns * sizeof(double)))) goto oom;
    s->dir = dir;
    memcpy(s->name, name, strlen(name) + 1);
    memcpy(s->x, x, (size_t)n * sizeof(float));
    memcpy(s->y, y, (size_t)n * sizeof(float));
    s->n = n;
    s->w_range = w_range;
    s->b_range = b_range;
    s->n_samples = n_samples;
    /* W = np.linspace(-w_range, w_range, n_samples), B likewise */
    for (size_t i = 0; i < ns; i++) {
        s->gw[i] = -w_range + 2 * w_range * (double)i / (double)(ns - 1);
        s->gb[i] = -b_range + 2 * b_range * (double)i / (double)(ns - 1);
    }
    s->zmin = INFINITY;
    s->zmax = -INFINITY;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < ns; j++) {
            double z = s->Z[i][j] = loss_at(s, s->gw[i], s->gb[j]);
            if (z < s->zmin) s->zmin = z;
            if (z > s->zmax) s->zmax = z;
        }
    if (!isfinite(s->zmin) || !isfinite(s->zmax)) {
        fprintf(stderr, "plot_error_surfaces: the data give a loss that is not finite\n");
        plot_error_surfaces_free(s);
        failure();
        return NULL;
    }
    if (go) draw_go(s);
    return s;
oom:
    fprintf(stderr, "plot_error_surfaces: out of memory for a %d x %d grid over %lld points\n",
            n_samples, n_samples, (long long)n);
    plot_error_surfaces_free(s);
    failure();
    return NULL;
}

int plot_set_para_loss(plot_error_surfaces *s, double w, double b, double loss)
{
    if (!s) return 0;
    if (s->n_path == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double *W = NULL, *B = NULL, *L = NULL;
        if (s->cap <= (1 << 28)) {
            if ((W = realloc(s->W, (size_t)cap * sizeof(double)))) s->W = W;
            if ((B = realloc(s->B, (size_t)cap * sizeof(double)))) s->B = B;
            if ((L = realloc(s->LOSS, (size_t)cap * sizeof(double)))) s->LOSS = L;
        }
        if (!W || !B || !L) {
            if (!s->path_full)
                fprintf(stderr,
                        "plot_error_surfaces: out of memory for the path of %s past %d "
                        "points: the others are left out\n",
                        s->name, s->n_path);
            s->path_full = true;
            return failure();
        }
        s->cap = cap;
    }
    s->W[s->n_path] = w;
    s->B[s->n_path] = b;
    s->LOSS[s->n_path] = loss;
    s->n_path++;
    return 0;
}

void plot_error_surfaces_free(plot_error_surfaces *s)
{
    if (!s) return;
    if (s->Z)
        for (int i = 0; i < s->n_samples; i++) free(s->Z[i]);
    free(s->Z);
    free(s->gw);
    free(s->gb);
    free(s->name);
    free(s->x);
    free(s->y);
    free(s->W);
    free(s->B);
    free(s->LOSS);
    free(s);
}

#if AGRAD_HAVE_PLPLOT

/* cmap0: the background, the ink, then matplotlib's first colours (tab10). */
enum { WHITE, BLACK, GREY, LIGHT, C0, C1, C2, C3, C4, C5, N_COLORS };
static const PLINT red[N_COLORS] = {255, 0, 110, 225, 31, 255, 44, 214, 148, 140};
static const PLINT green[N_COLORS] = {255, 0, 110, 225, 119, 127, 160, 39, 103, 86};
static const PLINT blue[N_COLORS] = {255, 0, 110, 225, 180, 14, 44, 40, 189, 75};
#define N_SERIES_COLORS 6
#define PATH_COLOR      C3 /* the labs' red 'x' */

static int drivers_found = -1; /* -1: not looked yet */

bool plot_available(void)
{
    if (drivers_found < 0) {
        /* pngcairo and svgcairo come with plplot-driver-cairo, not with libplplot-dev */
        int n = 128;
        PLCHAR_VECTOR menu[128], names[128];
        PLCHAR_VECTOR *pm = menu, *pn = names;
        plgFileDevs(&pm, &pn, &n);
        int found = 0;
        for (int i = 0; i < n; i++)
            found += !strcmp(names[i], "pngcairo") + !strcmp(names[i], "svgcairo");
        drivers_found = found == 2;
    }
    return drivers_found;
}

bool plot_setup(const char *prog, const char **dir)
{
    if (!*dir) return true; /* PLplot is not even started when no pictures are asked for */
    if (!plot_available()) {
        fprintf(stderr,
                "%s: plots are off (PLplot has no pngcairo and svgcairo drivers: install "
                "plplot-driver-cairo); --plots %s ignored\n",
                prog, *dir);
        *dir = NULL;
        return true;
    }
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

typedef void (*drawing)(const void *what);

/* Runs draw(what) into DIR/NAMEsuffix.png, then DIR/NAMEsuffix.svg, on a page of width x
 * height. */
static int render(const char *dir, const char *name, const char *suffix, int width, int height,
                  drawing draw, const void *what)
{
    static const char *const devices[] = {"pngcairo", "svgcairo"}, *const exts[] = {"png", "svg"};
    if (!dir || !plot_available()) return 0;
    for (int f = 0; f < 2; f++) {
        size_t size = strlen(dir) + strlen(name) + strlen(suffix) + 6;
        char *file = malloc(size);
        if (!file) {
            fprintf(stderr, "plot: out of memory for the picture %s%s\n", name, suffix);
            return failure();
        }
        snprintf(file, size, "%s/%s%s.%s", dir, name, suffix, exts[f]);
        FILE *probe = fopen(file, "wb");
        if (!probe || fclose(probe) != 0) {
            fprintf(stderr, "plot: cannot write %s: %s\n", file, strerror(errno));
            free(file);
            return failure();
        }
        plsdev(devices[f]);
        plsfnam(file);
        plspage(0, 0, width, height, 0, 0);
        plscmap0(red, green, blue, N_COLORS);
        /* cmap1: viridis, matplotlib's default colour map, for the surface and contours */
        static const PLFLT at[] = {0, 0.25, 0.5, 0.75, 1};
        static const PLFLT r1[] = {0.267, 0.231, 0.129, 0.369, 0.993};
        static const PLFLT g1[] = {0.005, 0.322, 0.569, 0.788, 0.906};
        static const PLFLT b1[] = {0.329, 0.546, 0.553, 0.384, 0.144};
        plscmap1l(1, 5, at, r1, g1, b1, NULL);
        plinit();
        plfontld(1);
        draw(what);
        plend();
        free(file);
    }
    return 0;
}

/* The current character scale (plschr's second argument). */
static PLFLT char_scale(void)
{
    PLFLT def, height; /* in mm */
    plgchr(&def, &height);
    return height / def;
}

/* lo..hi widened by 5% each side (matplotlib's margins), or by 1 if they are equal. */
static void margins(double *lo, double *hi)
{
    double pad = *hi > *lo ? 0.05 * (*hi - *lo) : 1;
    *lo -= pad;
    *hi += pad;
}

/* Axes over the current viewport: light grid, then the box, ticks and numbers in ink. */
static void axes(double x0, double x1, double y0, double y1, const char *xlabel, const char *ylabel,
                 const char *title)
{
    plwind(x0, x1, y0, y1);
    plsyax(6, 0);
    plcol0(LIGHT);
    plwidth(0.5);
    plbox("g", 0, 0, "g", 0, 0);
    plcol0(BLACK);
    plwidth(1);
    plbox("bcinst", 0, 0, "bcinstv", 0, 0);
    plmtex("b", 3.2, 0.5, 0.5, xlabel);
    plmtex("l", 4.4, 0.5, 0.5, ylabel);
    plmtex("t", 1.6, 0.5, 0.5, title);
}

/* One entry of a legend: a line of its colour (dot 0) or a dot of that scale. */
typedef struct legend_entry {
    const char *label;
    PLINT color;
    PLFLT dot;
} legend_entry;

/* A boxed legend of the first n entries (at most N_SERIES_COLORS) inside the axes, at the
 * top on the side given (PL_POSITION_LEFT or PL_POSITION_RIGHT), its samples plot_width
 * wide. */
static void legend(int n, const legend_entry *e, PLINT side, PLFLT plot_width)
{
    PLINT opts[N_SERIES_COLORS], colors[N_SERIES_COLORS], text_colors[N_SERIES_COLORS];
    PLINT styles[N_SERIES_COLORS], numbers[N_SERIES_COLORS];
    PLFLT widths[N_SERIES_COLORS], scales[N_SERIES_COLORS];
    PLCHAR_VECTOR labels[N_SERIES_COLORS], symbols[N_SERIES_COLORS];
    if (n > N_SERIES_COLORS) n = N_SERIES_COLORS;
    if (n < 1) return;
    for (int i = 0; i < n; i++) {
        opts[i] = e[i].dot > 0 ? PL_LEGEND_SYMBOL : PL_LEGEND_LINE;
        colors[i] = e[i].color;
        text_colors[i] = BLACK;
        styles[i] = 1;
        widths[i] = 2;
        numbers[i] = 1;
        scales[i] = e[i].dot;
        labels[i] = e[i].label ? e[i].label : "";
        symbols[i] = "•";
    }
    PLFLT width, height;
    pllegend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_TOP | side | PL_POSITION_INSIDE, 0.02, 0.02, plot_width, WHITE, LIGHT, 1,
             0, 0, n, opts, 0.8, 0.9 * char_scale(), 2.0, 0, text_colors, labels, NULL, NULL, NULL,
             NULL, colors, styles, widths, colors, scales, numbers, symbols);
}

/* What plot_lines (n series) and plot_scatter (n sets of points) draw. */
typedef struct chart_args {
    const char *title, *xlabel, *ylabel;
    int n;
    const plot_series *series;
    const plot_points *sets;
} chart_args;

/* A chart's page and axes: x0..x1 by y0..y1 (0..1 where no value was finite), widened by
 * the margins. */
static void chart_axes(const chart_args *a, double x0, double x1, double y0, double y1)
{
    if (!(x0 <= x1)) x0 = 0, x1 = 1;
    if (!(y0 <= y1)) y0 = 0, y1 = 1;
    margins(&x0, &x1);
    margins(&y0, &y1);
    plschr(0, 1.1);
    pladv(0);
    plvpor(0.11, 0.96, 0.11, 0.92);
    axes(x0, x1, y0, y1, a->xlabel, a->ylabel, a->title);
}

static void draw_lines(const void *what)
{
    const chart_args *a = what;
    double x1 = 1, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < a->n; i++) {
        const plot_series *s = &a->series[i];
        if (s->n - 1 > x1) x1 = s->n - 1;
        for (int k = 0; k < s->n; k++)
            if (isfinite(s->values[k])) {
                if (s->values[k] < y0) y0 = s->values[k];
                if (s->values[k] > y1) y1 = s->values[k];
            }
    }
    chart_axes(a, 0, x1, y0, y1);
    legend_entry entries[N_SERIES_COLORS];
    for (int i = 0; i < a->n; i++) {
        const plot_series *s = &a->series[i];
        PLINT color = C0 + i % N_SERIES_COLORS;
        plcol0(color);
        plwidth(2);
        /* a run of finite values is one line; a single point is drawn as a dot */
        for (int k = 0; k < s->n;) {
            int start = k;
            while (k < s->n && isfinite(s->values[k])) k++;
            for (int j = start; j < k; j++) {
                PLFLT xs[2] = {j, j + 1}, ys[2] = {s->values[j], 0};
                if (j + 1 < k) {
                    ys[1] = s->values[j + 1];
                    plline(2, xs, ys);
                } else if (j == start) {
                    plstring(1, xs, ys, "•");
                }
            }
            while (k < s->n && !isfinite(s->values[k])) k++;
        }
        if (i < N_SERIES_COLORS) entries[i] = (legend_entry){s->label, color, 0};
    }
    plwidth(1);
    legend(a->n, entries, PL_POSITION_RIGHT, 0.08);
}

static void draw_scatter(const void *what)
{
    const chart_args *a = what;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < a->n; i++)
        for (int64_t k = 0; k < a->sets[i].n; k++) {
            double x = a->sets[i].x[k], y = a->sets[i].y[k];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    chart_axes(a, x0, x1, y0, y1);
    legend_entry entries[N_SERIES_COLORS];
    for (int i = 0; i < a->n; i++) {
        const plot_points *p = &a->sets[i];
        PLINT color = C0 + i % N_SERIES_COLORS;
        plcol0(color);
        plschr(0, 0.5); /* the lab's s = .1: small dots */
        for (int64_t k = 0; k < p->n; k++) {
            PLFLT x = p->x[k], y = p->y[k];
            if (isfinite(x) && isfinite(y)) plstring(1, &x, &y, "•");
        }
        plschr(0, 1.1);
        if (i < N_SERIES_COLORS) entries[i] = (legend_entry){p->label, color, 1.2};
    }
    legend(a->n, entries, PL_POSITION_LEFT, 0.05);
}

/* plot_lines and plot_scatter (fn, whose count argument is count_name): checks the
 * arguments, then draws. */
static int chart(const char *dir, const char *name, const char *fn, const char *count_name,
                 chart_args a, drawing draw)
{
    if (a.n < 0 || (a.n > 0 && !a.series && !a.sets) || !name) {
        fprintf(stderr, "%s: needs a name and %s >= 0 (got %d)\n", fn, count_name, a.n);
        return failure();
    }
    a.title = a.title ? a.title : "";
    a.xlabel = a.xlabel ? a.xlabel : "";
    a.ylabel = a.ylabel ? a.ylabel : "";
    return render(dir, name, "", 800, 540, draw, &a);
}

int plot_lines(const char *dir, const char *name, const char *title, const char *xlabel,
               const char *ylabel, int n_series, const plot_series *series)
{
    return chart(dir, name, "plot_lines", "n_series",
                 (chart_args){title, xlabel, ylabel, n_series, series, NULL}, draw_lines);
}

int plot_scatter(const char *dir, const char *name, const char *title, const char *xlabel,
                 const char *ylabel, int n_sets, const plot_points *sets)
{
    return chart(dir, name, "plot_scatter", "n_sets",
                 (chart_args){title, xlabel, ylabel, n_sets, NULL, sets}, draw_scatter);
}

/* The contour levels: matplotlib's contour spaces them evenly in loss, which leaves the
 * bowl's floor, where the path ends, inside one ring; here they are spaced evenly in
 * sqrt(loss - min), so that the rings of this quadratic bowl are evenly spaced. */
#define N_LEVELS 14

static void contour_panel(const plot_error_surfaces *s, const char *title, bool path)
{
    double wr = s->w_range, br = s->b_range;
    axes(-wr, wr, -br, br, "w", "b", title);
    PLcGrid grid = {s->gw, s->gb, NULL, s->n_samples, s->n_samples, 0};
    plwidth(1.5);
    for (int k = 1; k <= N_LEVELS; k++) {
        double t = (double)k / (N_LEVELS + 1);
        PLFLT level = s->zmin + (s->zmax - s->zmin) * t * t;
        plcol1(t);
        plcont((PLFLT_MATRIX)s->Z, s->n_samples, s->n_samples, 1, s->n_samples, 1, s->n_samples,
               &level, 1, pltr1, &grid);
    }
    plwidth(1);
    if (path && s->n_path > 0) {
        plcol0(PATH_COLOR);
        plline(s->n_path, s->W, s->B);
        PLFLT scale = char_scale();
        plschr(0, 1.4 * scale);
        plstring(s->n_path, s->W, s->B, "×");
        plschr(0, scale);
        plcol0(BLACK);
    }
}

static void surface_box(const plot_error_surfaces *s, double zmax, const char *title)
{
    plvpor(0.0, 1.0, 0.0, 0.9);
    plwind(-1.0, 1.0, -0.7, 1.25);
    plszax(6, 0); /* 1000, not 1.0 with (x10^3) */
    plcol0(BLACK);
    /* matplotlib's default view of a 3-D axes: elevation 30, azimuth -60 */
    plw3d(1.0, 1.0, 1.0, -s->w_range, s->w_range, -s->b_range, s->b_range, 0, zmax, 30, -60 + 90);
    plbox3("bnstu", "w", 0, 0, "bnstu", "b", 0, 0, "bdnstu", "cost", 0, 0);
    plmtex("t", 1.6, 0.5, 0.5, title);
}

static void draw_surface(const void *what)
{
    const plot_error_surfaces *s = what;
    plschr(0, 1.0);
    pladv(0);
    surface_box(s, s->zmax, "Cost/Total Loss Surface");
    plsurf3d(s->gw, s->gb, (PLFLT_MATRIX)s->Z, s->n_samples, s->n_samples, MAG_COLOR, NULL, 0);
}

static void draw_contour(const void *what)
{
    const plot_error_surfaces *s = what;
    plschr(0, 1.0);
    pladv(0);
    plvpor(0.12, 0.95, 0.11, 0.92);
    contour_panel(s, "Cost/Total Loss Surface Contour", false);
}

static void draw_go(const plot_error_surfaces *s)
{
    render(s->dir, s->name, "_surface", 750, 500, draw_surface, s);
    render(s->dir, s->name, "_contour", 640, 480, draw_contour, s);
}

static void draw_ps(const void *what)
{
    const plot_error_surfaces *s = what;
    char title[96];
    plssub(2, 1);

    /* plt.subplot(121): the points and the line of the last (w, b) */
    pladv(1);
    plschr(0, 0.85);
    plvpor(0.12, 0.96, 0.13, 0.91);
    double x0 = INFINITY, x1 = -INFINITY, y0 = -10, y1 = 15; /* plt.ylim((-10, 15)) */
    for (int64_t k = 0; k < s->n; k++) {
        if (s->x[k] < x0) x0 = s->x[k];
        if (s->x[k] > x1) x1 = s->x[k];
        if (s->y[k] < y0) y0 = s->y[k];
        if (s->y[k] > y1) y1 = s->y[k];
    }
    margins(&x0, &x1);
    snprintf(title, sizeof title, "Data Space Iteration: %d", s->n_path);
    axes(x0, x1, y0, y1, "x", "y", title);
    plcol0(C3);
    for (int64_t k = 0; k < s->n; k++) {
        PLFLT px = s->x[k], py = s->y[k];
        plstring(1, &px, &py, "•");
    }
    int entries = 1;
    if (s->n_path > 0) {
        double w = s->W[s->n_path - 1], b = s->B[s->n_path - 1];
        PLFLT lx[2] = {x0, x1}, ly[2] = {w * x0 + b, w * x1 + b};
        plcol0(C0);
        plwidth(2);
        plline(2, lx, ly);
        plwidth(1);
        entries = 2;
    }
    legend(entries, (legend_entry[]){{"training points", C3, 1}, {"estimated line", C0, 0}},
           PL_POSITION_LEFT, 0.08);

    /* plt.subplot(122): the contour map with the path so far */
    pladv(2);
    plschr(0, 0.85);
    plvpor(0.12, 0.96, 0.13, 0.91);
    snprintf(title, sizeof title, "Total Loss Surface Contour Iteration %d", s->n_path);
    contour_panel(s, title, true);
}

int plot_ps(plot_error_surfaces *s)
{
    if (!s) return 0;
    char suffix[32];
    snprintf(suffix, sizeof suffix, "_ps_%03d", s->n_path);
    return render(s->dir, s->name, suffix, 1200, 480, draw_ps, s);
}

static void draw_final(const void *what)
{
    const plot_error_surfaces *s = what;
    plssub(2, 1);

    /* ax.plot_wireframe(w, b, Z); ax.scatter(W, B, LOSS, c='r', marker='x') */
    pladv(1);
    plschr(0, 0.85);
    double zmax = s->zmax;
    for (int i = 0; i < s->n_path; i++)
        if (isfinite(s->LOSS[i]) && s->LOSS[i] > zmax && fabs(s->W[i]) <= s->w_range &&
            fabs(s->B[i]) <= s->b_range)
            zmax = s->LOSS[i];
    surface_box(s, zmax, "Cost/Total Loss Surface with the path");
    plcol0(C0);
    plwidth(0.7);
    plmesh(s->gw, s->gb, (PLFLT_MATRIX)s->Z, s->n_samples, s->n_samples, DRAW_LINEXY);
    /* markers only, as the lab's scatter: the points outside the box are left out (PLplot
     * would draw them past its edges) */
    plcol0(PATH_COLOR);
    plschr(0, 1.1);
    for (int i = 0; i < s->n_path; i++)
        if (fabs(s->W[i]) <= s->w_range && fabs(s->B[i]) <= s->b_range && s->LOSS[i] >= 0 &&
            s->LOSS[i] <= zmax)
            plstring3(1, &s->W[i], &s->B[i], &s->LOSS[i], "×");
    plschr(0, 0.85);

    /* plt.contour(w, b, Z); plt.scatter(W, B, c='r', marker='x') */
    pladv(2);
    plschr(0, 0.85);
    plvpor(0.12, 0.96, 0.13, 0.91);
    contour_panel(s, "Total Loss Surface Contour with the path", true);
}

int plot_final(plot_error_surfaces *s)
{
    if (!s) return 0;
    return render(s->dir, s->name, "_final", 1200, 500, draw_final, s);
}

#else /* without PLplot: nothing is drawn */

bool plot_available(void) { return false; }

bool plot_setup(const char *prog, const char **dir)
{
    fprintf(stderr, "%s: plots are off (built without PLplot)%s%s%s\n", prog,
            *dir ? "; --plots " : "", *dir ? *dir : "", *dir ? " ignored" : "");
    *dir = NULL;
    return true;
}

int plot_lines(const char *dir, const char *name, const char *title, const char *xlabel,
               const char *ylabel, int n_series, const plot_series *series)
{
    (void)dir, (void)name, (void)title, (void)xlabel, (void)ylabel, (void)n_series, (void)series;
    return 0;
}

int plot_scatter(const char *dir, const char *name, const char *title, const char *xlabel,
                 const char *ylabel, int n_sets, const plot_points *sets)
{
    (void)dir, (void)name, (void)title, (void)xlabel, (void)ylabel, (void)n_sets, (void)sets;
    return 0;
}

static void draw_go(const plot_error_surfaces *s) { (void)s; }

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

#endif
