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
#include "example.h"
#include "plot.h"

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

/* A run's lines: the loss of each iteration, then the w and b it ended with. */
static void print_run(const double *LOSS)
{
    for (ptrdiff_t i = 0; i < arrlen(LOSS); i++)
        printf("iteration %2td: loss = %.6f\n", i + 1, LOSS[i]);
    printf("w = ");
    ag_print(w);
    printf("b = ");
    ag_print(b);
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

int main(int argc, char **argv)
{
    uint64_t seed = 1, epochs = 15;
    double lr = 0.1, w0 = -15.0, b0 = -10.0;
    double lr2 = 0.2, w2 = -15.0, b2 = -10.0; /* the practice's */
    const char *plots = NULL;
    bool json = false;
    const option options[] = {
        {"--seed", OPT_WHOLE, .target = &seed, .needs = "a whole number from 0 to 2^64 - 1",
         .hi = UINT64_MAX},
        {"--lr", OPT_NUMBER, .target = &lr, .needs = "a finite number > 0", .positive = true},
        {"--w", OPT_NUMBER, .target = &w0, .needs = "a finite number"},
        {"--b", OPT_NUMBER, .target = &b0, .needs = "a finite number"},
        {"--epochs", OPT_WHOLE, .target = &epochs, .needs = "a whole number from 0 to 10^7",
         .hi = 10000000},
        {"--practice-lr", OPT_NUMBER, .target = &lr2, .needs = "a finite number > 0",
         .positive = true},
        {"--practice-w", OPT_NUMBER, .target = &w2, .needs = "a finite number"},
        {"--practice-b", OPT_NUMBER, .target = &b2, .needs = "a finite number"},
        {"--plots", OPT_STRING, .target = &plots, .needs = "a directory"},
        {"--json", OPT_FLAG, .target = &json},
    };
    int status = parse_args(argc, argv, options, N_OPTIONS(options), usage_text);
    if (status >= 0) return status;
    if (!plot_setup(argv[0], &plots)) return 2;

    /* torch.manual_seed(1) */
    ag_manual_seed(seed);
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
    if (!json) print_run(LOSS);

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
        json_doubles("LOSS", LOSS, arrlen(LOSS));
        printf(", ");
        json_doubles("LOSS2", LOSS2, arrlen(LOSS2));
        printf(", ");
        json_number("w", w_final);
        printf(", ");
        json_number("b", b_final);
        printf(", ");
        json_tensor("X", X);
        printf(", ");
        json_tensor("Y", Y);
        printf("}\n");
    } else {
        printf("practice (lr %g, w %g, b %g):\n", lr2, w2, b2);
        print_run(LOSS2);
        if (plots) printf("pictures: %s/two_params_*.png (and .svg)\n", plots);
    }
    plot_error_surfaces_free(get_surface);
    plot_error_surfaces_free(practice);
    arrfree(LOSS);
    arrfree(LOSS2);
    ag_shutdown();
    return plot_failed() ? 1 : 0;
}
