/* Linear regression 1D, training two parameters: the PyTorch lab, line for line.
 *
 *   linreg_two_params [--seed N] [--lr F] [--w F] [--b F] [--epochs N] [--json]
 *
 * Prints the loss of each iteration and the final w and b; with --json, one JSON
 * object with the lab's own names: LOSS, w, b, X, Y. */
#include <agrad.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_ds.h>

static ag_tensor *w, *b, *X, *Y;
static double lr = 0.1;
static double *LOSS; /* stb_ds array */

/* def forward(x): return w * x + b */
static ag_tensor *forward(ag_tensor *x) { return ag_add(ag_mul(w, x), b); }

/* def criterion(yhat, y): return torch.mean((yhat - y) ** 2) */
static ag_tensor *criterion(ag_tensor *yhat, ag_tensor *y)
{
    return ag_mean(ag_pow(ag_sub(yhat, y), 2));
}

/* def train_model(iter): */
static void train_model(int iter)
{
    ag_mark graph = ag_mark_now(); /* what follows is one iteration's graph */
    for (int epoch = 0; epoch < iter; epoch++) {
        ag_tensor *Yhat = forward(X);         /* Yhat = forward(X) */
        ag_tensor *loss = criterion(Yhat, Y); /* loss = criterion(Yhat, Y) */
        arrput(LOSS, ag_item(loss));          /* LOSS.append(loss.item()) */
        ag_backward(loss);                    /* loss.backward() */
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

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--seed N] [--lr F] [--w F] [--b F] [--epochs N] [--json]\n"
            "defaults: --seed 1 --lr 0.1 --w -15 --b -10 --epochs 15\n",
            prog);
    return 2;
}

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
    double seed = 1, w0 = -15.0, b0 = -10.0, epochs = 15;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        double *target = !strcmp(argv[i], "--seed")     ? &seed
                         : !strcmp(argv[i], "--lr")     ? &lr
                         : !strcmp(argv[i], "--w")      ? &w0
                         : !strcmp(argv[i], "--b")      ? &b0
                         : !strcmp(argv[i], "--epochs") ? &epochs
                                                        : NULL;
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!target || !number_arg(argc, argv, i++, target)) {
            return usage(argv[0]);
        }
    }
    if (seed < 0 || epochs < 0 || epochs > 1e7) return usage(argv[0]);

    /* torch.manual_seed(1) */
    ag_manual_seed((uint64_t)seed);
    /* X = torch.arange(-3, 3, 0.1).view(-1, 1) */
    X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    /* f = 1 * X - 1 */
    ag_tensor *f = ag_sub(ag_mul(1, X), 1);
    /* Y = f + 0.1 * torch.randn(X.size()) */
    Y = ag_add(f, ag_mul(0.1, ag_randn(ag_size(X))));
    /* w = torch.tensor(-15.0, requires_grad = True) */
    w = ag_scalar(w0, true);
    /* b = torch.tensor(-10.0, requires_grad = True) */
    b = ag_scalar(b0, true);

    /* train_model(15) */
    train_model((int)epochs);

    if (json) {
        printf("{\"LOSS\": [");
        for (ptrdiff_t i = 0; i < arrlen(LOSS); i++) printf(i ? ", %.9g" : "%.9g", LOSS[i]);
        printf("], \"w\": %.9g, \"b\": %.9g, ", w->data[0], b->data[0]);
        json_list("X", X->data, X->numel);
        printf(", ");
        json_list("Y", Y->data, Y->numel);
        printf("}\n");
    } else {
        for (ptrdiff_t i = 0; i < arrlen(LOSS); i++)
            printf("iteration %2td: loss = %.6f\n", i + 1, LOSS[i]);
        printf("w = ");
        ag_print(w);
        printf("b = ");
        ag_print(b);
    }
    arrfree(LOSS);
    ag_shutdown();
    return 0;
}
