/* Linear regression 1D, training two parameters: the PyTorch lab, line for line, with its
 * practice run and its pictures.
 *
 *   linreg_two_params [--seed N] [--lr F] [--w F] [--b F] [--epochs N]
 *                     [--practice-lr F] [--practice-w F] [--practice-b F]
 *                     [--plots DIR] [--json] [--help]
 *
 * Prints the loss of each iteration of both runs and the final w and b; with --json, one
 * JSON object with the lab's own names: LOSS, LOSS2, w, b, X, Y. With --plots DIR, writes
 * the lab's pictures there as PNG and SVG (see plot.h). */
#include <agrad.h>

#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_ds.h>

static ag_tensor *w, *b, *X, *Y;

/* def forward(x): return w * x + b */
static ag_tensor *forward(ag_tensor *x) { return ag_add(ag_mul(w, x), b); }

/* def criterion(yhat, y): return torch.mean((yhat - y) ** 2) */
static ag_tensor *criterion(ag_tensor *yhat, ag_tensor *y)
{
    return ag_mean(ag_pow(ag_sub(yhat, y), 2));
}

/* def train_model(iter): the lab's globals lr, LOSS and get_surface are arguments here, so
 * that the practice run (lr = 0.2, LOSS2) uses the same function. LOSS is an stb_ds array. */
static void train_model(int iter, double lr, double **LOSS, plot_error_surfaces *get_surface)
{
    ag_mark graph = ag_mark_now(); /* what follows is one iteration's graph */
    for (int epoch = 0; epoch < iter; epoch++) {
        ag_tensor *Yhat = forward(X);         /* Yhat = forward(X) */
        ag_tensor *loss = criterion(Yhat, Y); /* loss = criterion(Yhat, Y) */
        /* get_surface.set_para_loss(w.data.tolist(), b.data.tolist(), loss.tolist()) */
        plot_set_para_loss(get_surface, ag_item(w), ag_item(b), ag_item(loss));
        if (epoch % 3 == 0) plot_ps(get_surface); /* get_surface.plot_ps() */
        arrput(*LOSS, ag_item(loss));             /* LOSS.append(loss.item()) */
        ag_backward(loss);                        /* loss.backward() */
        /* w.data = w.data - lr * w.grad.data */
        ag_set_data(w, ag_sub(ag_data(w), ag_mul(lr, ag_data(w->grad))));
        ag_set_data(b, ag_sub(ag_data(b), ag_mul(lr, ag_data(b->grad))));
        ag_zero_(ag_data(w->grad)); /* w.grad.data.zero_() */
        ag_zero_(ag_data(b->grad));
        ag_release(graph); /* free this iteration's graph; X, Y, w, b stay */
    }
}

static void json_list(const char *name, const float *v, int64_t n)
{
    printf("\"%s\": [", name);
    for (int64_t i = 0; i < n; i++) printf(i ? ", %.9g" : "%.9g", v[i]);
    printf("]");
}

static void json_losses(const char *name, const double *v)
{
    printf("\"%s\": [", name);
    for (ptrdiff_t i = 0; i < arrlen(v); i++) printf(i ? ", %.9g" : "%.9g", v[i]);
    printf("]");
}

static const char usage_text[] =
    "usage: %s [--seed N] [--lr F] [--w F] [--b F] [--epochs N]\n"
    "       [--practice-lr F] [--practice-w F] [--practice-b F] [--plots DIR] [--json]\n"
    "Trains w and b of yhat = w x + b by gradient descent on the lab's 60 noisy points, then\n"
    "the practice run from its own start and learning rate for as many iterations.\n"
    "defaults (the lab's): --seed 1 --lr 0.1 --w -15 --b -10 --epochs 15\n"
    "                      --practice-lr 0.2 --practice-w -15 --practice-b -10\n"
    "--plots DIR writes the pictures there (PNG and SVG); --json prints LOSS, LOSS2, w, b,\n"
    "X, Y as JSON.\n";

/* Parses argv[i + 1] as a number; false if missing or not a number. */
static bool number_arg(int argc, char **argv, int i, double *out)
{
    if (i + 1 >= argc) return false;
    char *end;
    errno = 0;
    *out = strtod(argv[i + 1], &end);
    return errno == 0 && end != argv[i + 1] && *end == '\0';
}

int main(int argc, char **argv)
{
    double seed = 1, lr = 0.1, w0 = -15.0, b0 = -10.0, epochs = 15;
    double lr2 = 0.2, w2 = -15.0, b2 = -10.0; /* the practice's */
    const char *plots = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        double *target = !strcmp(argv[i], "--seed")          ? &seed
                         : !strcmp(argv[i], "--lr")          ? &lr
                         : !strcmp(argv[i], "--w")           ? &w0
                         : !strcmp(argv[i], "--b")           ? &b0
                         : !strcmp(argv[i], "--epochs")      ? &epochs
                         : !strcmp(argv[i], "--practice-lr") ? &lr2
                         : !strcmp(argv[i], "--practice-w")  ? &w2
                         : !strcmp(argv[i], "--practice-b")  ? &b2
                                                             : NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf(usage_text, argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--plots")) {
            if (++i >= argc || !*argv[i]) {
                fprintf(stderr, "%s: --plots needs a directory\n", argv[0]);
                return 2;
            }
            plots = argv[i];
        } else if (!target) {
            fprintf(stderr, "%s: unknown option '%s' (try --help)\n", argv[0], argv[i]);
            return 2;
        } else if (!number_arg(argc, argv, i++, target)) {
            fprintf(stderr, "%s: %s needs a number\n", argv[0], argv[i - 1]);
            return 2;
        }
    }
    if (seed < 0 || seed > 0x1p63 || seed != floor(seed)) {
        fprintf(stderr, "%s: --seed must be a whole number >= 0, not %g\n", argv[0], seed);
        return 2;
    }
    if (epochs < 0 || epochs > 1e7 || epochs != floor(epochs)) {
        fprintf(stderr, "%s: --epochs must be a whole number in 0..10^7, not %g\n", argv[0],
                epochs);
        return 2;
    }
    if (!(lr > 0) || !(lr2 > 0) || !isfinite(lr) || !isfinite(lr2)) {
        fprintf(stderr, "%s: --lr and --practice-lr must be finite numbers > 0\n", argv[0]);
        return 2;
    }
    if (!isfinite(w0) || !isfinite(b0) || !isfinite(w2) || !isfinite(b2)) {
        fprintf(stderr, "%s: --w, --b, --practice-w and --practice-b must be finite\n", argv[0]);
        return 2;
    }
    if (!plot_setup(argv[0], &plots)) return 2;

    /* torch.manual_seed(1) */
    ag_manual_seed((uint64_t)seed);
    /* X = torch.arange(-3, 3, 0.1).view(-1, 1) */
    X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    /* f = 1 * X - 1 */
    ag_tensor *f = ag_sub(ag_mul(1, X), 1);
    /* Y = f + 0.1 * torch.randn(X.size()) */
    Y = ag_add(f, ag_mul(0.1, ag_randn(ag_size(X))));
    /* get_surface = plot_error_surfaces(15, 15, X, Y, 30) */
    plot_error_surfaces *get_surface =
        plot_error_surfaces_new(plots, "two_params", 15, 15, X->data, Y->data, X->numel, 30, true);
    /* w = torch.tensor(-15.0, requires_grad = True) */
    w = ag_scalar(w0, true);
    /* b = torch.tensor(-10.0, requires_grad = True) */
    b = ag_scalar(b0, true);

    /* lr = 0.1; LOSS = []; train_model(15) */
    double *LOSS = NULL;
    train_model((int)epochs, lr, &LOSS, get_surface);
    double w_final = ag_item(w), b_final = ag_item(b);
    /* get_surface.final_plot() */
    plot_final(get_surface);
    if (!json) {
        for (ptrdiff_t i = 0; i < arrlen(LOSS); i++)
            printf("iteration %2td: loss = %.6f\n", i + 1, LOSS[i]);
        printf("w = ");
        ag_print(w);
        printf("b = ");
        ag_print(b);
    }

    /* Practice: w = torch.tensor(-15.0, ...); b = torch.tensor(-10.0, ...); lr = 0.2;
     * LOSS2 = []; the same training for 15 iterations, its path drawn on its own surface
     * (the lab leaves this to the student: its solution is hidden) */
    w = ag_scalar(w2, true);
    b = ag_scalar(b2, true);
    plot_error_surfaces *practice = plot_error_surfaces_new(plots, "two_params_practice", 15, 15,
                                                            X->data, Y->data, X->numel, 30, false);
    double *LOSS2 = NULL;
    train_model((int)epochs, lr2, &LOSS2, practice);
    plot_final(practice);

    /* plt.plot(LOSS, label = "LOSS"); plt.plot(LOSS2, label = "LOSS2") */
    char title[96];
    snprintf(title, sizeof title, "LOSS (lr %g) and LOSS2 (lr %g)", lr, lr2);
    plot_lines(
        plots, "two_params_loss", title, "Epoch/Iterations", "Cost", 2,
        (plot_series[]){{"LOSS", LOSS, (int)arrlen(LOSS)}, {"LOSS2", LOSS2, (int)arrlen(LOSS2)}});

    if (json) {
        printf("{");
        json_losses("LOSS", LOSS);
        printf(", ");
        json_losses("LOSS2", LOSS2);
        printf(", \"w\": %.9g, \"b\": %.9g, ", w_final, b_final);
        json_list("X", X->data, X->numel);
        printf(", ");
        json_list("Y", Y->data, Y->numel);
        printf("}\n");
    } else {
        printf("practice (lr %g, w %g, b %g):\n", lr2, w2, b2);
        for (ptrdiff_t i = 0; i < arrlen(LOSS2); i++)
            printf("iteration %2td: loss = %.6f\n", i + 1, LOSS2[i]);
        printf("w = ");
        ag_print(w);
        printf("b = ");
        ag_print(b);
        if (plots) printf("pictures: %s/two_params_*.png (and .svg)\n", plots);
    }
    plot_error_surfaces_free(get_surface);
    plot_error_surfaces_free(practice);
    arrfree(LOSS);
    arrfree(LOSS2);
    ag_shutdown();
    return plot_failed() ? 1 : 0;
}
