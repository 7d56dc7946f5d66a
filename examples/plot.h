/* The labs' pictures, drawn by PLplot's cairo drivers: every picture is written twice,
 * DIR/NAME.png and DIR/NAME.svg. Built without PLplot (-Dplplot=disabled, or
 * libplplot-dev missing), the calls draw nothing and plot_setup says that plots are off.
 *
 * A program takes --plots DIR (NULL when not given: nothing is written), then:
 *
 *     if (!plot_setup(argv[0], &dir)) return 1;       // dir becomes NULL if plots are off
 *     plot_error_surfaces *get_surface =               // get_surface =
 *         plot_error_surfaces_new(dir, "lab", 15, 15,  //   plot_error_surfaces(15, 15,
 *                                 X->data, Y->data, 60, 30, true); //  X, Y, 30)
 *     for (...) {
 *         plot_set_para_loss(get_surface, w, b, loss); // get_surface.set_para_loss(w, b, loss)
 *         if (epoch % 3 == 0) plot_ps(get_surface);    // get_surface.plot_ps()
 *     }
 *     plot_final(get_surface);                         // get_surface.final_plot()
 *     plot_lines(dir, "loss", "Cost", "Epoch/Iterations", "Cost", 2,
 *                (plot_series[]){{"LOSS", LOSS, 15}, {"LOSS2", LOSS2, 15}});
 *     plot_error_surfaces_free(get_surface);
 *
 * Every call returns 0, or -1 after saying on stderr which file could not be written;
 * with dir NULL they draw nothing and return 0. plot_failed() tells at the end whether
 * any picture failed: the programs then exit with status 1. */
#ifndef AGRAD_PLOT_H
#define AGRAD_PLOT_H

#include <stdbool.h>
#include <stdint.h>

/* True when the programs were built with PLplot and its cairo drivers are installed. */
bool plot_available(void);

/* True once a picture could not be written, or memory ran out for one (said on stderr). */
bool plot_failed(void);

/* Call once before drawing, with *dir the --plots argument or NULL. Without PLplot, says
 * on stderr in one line that plots are off (and that --plots DIR is ignored), sets *dir to
 * NULL and returns true. With PLplot, makes the directory *dir if it is missing; returns
 * false after saying why on stderr if it cannot. */
bool plot_setup(const char *prog, const char **dir);

/* One line of a line chart: values[i] drawn at x = i (as matplotlib's plt.plot(values)). */
typedef struct plot_series {
    const char *label; /* its entry in the legend */
    const double *values;
    int n;
} plot_series;

/* Writes DIR/NAME.png and .svg: the n_series lines over one pair of axes, with the title,
 * the axis labels and a legend of the series' labels (the labs' LOSS vs LOSS2 plots). */
int plot_lines(const char *dir, const char *name, const char *title, const char *xlabel,
               const char *ylabel, int n_series, const plot_series *series);

/* One set of points of a scatter plot: (x[i], y[i]) for i < n. */
typedef struct plot_points {
    const char *label; /* its entry in the legend */
    const float *x, *y;
    int64_t n;
} plot_points;

/* Writes DIR/NAME.png and .svg: each set of points as small dots of its own colour over one
 * pair of axes, with the title, the axis labels and a legend (the labs' plt.scatter). */
int plot_scatter(const char *dir, const char *name, const char *title, const char *xlabel,
                 const char *ylabel, int n_sets, const plot_points *sets);

/* The labs' plot_error_surfaces: the data (x, y: n points) and the loss (mean squared
 * error of w x + b against y) over an n_samples x n_samples grid of w in [-w_range,
 * w_range] and b in [-b_range, b_range]; it keeps the parameter path that
 * plot_set_para_loss records. With go (the lab's go = True), writes at once
 * DIR/NAME_surface (the loss as a 3-D surface) and DIR/NAME_contour (as a contour map).
 * Copies x and y. Returns NULL when dir is NULL (no pictures: nothing is computed or
 * kept, and the calls below do nothing with NULL), or if memory runs out or an argument is
 * out of range (n < 1, n_samples < 2, a range <= 0), after saying so on stderr. Free with
 * plot_error_surfaces_free. */
typedef struct plot_error_surfaces plot_error_surfaces;
plot_error_surfaces *plot_error_surfaces_new(const char *dir, const char *name, double w_range,
                                             double b_range, const float *x, const float *y,
                                             int64_t n, int n_samples, bool go);

/* get_surface.set_para_loss(w, b, loss): appends one point of the path (the parameters
 * of an iteration and its loss). Returns -1 if memory runs out (the point is dropped). */
int plot_set_para_loss(plot_error_surfaces *s, double w, double b, double loss);

/* get_surface.plot_ps(): writes DIR/NAME_ps_K, K the number of points recorded so far:
 * left, the data space (the points and the line of the last recorded w, b); right, the
 * contour map with the path so far. */
int plot_ps(plot_error_surfaces *s);

/* get_surface.final_plot(): writes DIR/NAME_final: the surface with the whole path on it
 * (the recorded losses) and the contour map with the path. */
int plot_final(plot_error_surfaces *s);

/* Frees s and what it holds; NULL is ignored. */
void plot_error_surfaces_free(plot_error_surfaces *s);

#endif
