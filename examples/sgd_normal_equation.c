/* The lab "Intro to pytorch I: Stochastic gradient" (a blog post after Dr. Alvarez's ODSC
 * talk) in C: fit y = X @ w on n rows of two features by gradient descent, then check
 * the answer against the normal equation (X^T X)^-1 X^T y.
 *
 *   sgd_normal_equation [--seed N] [--lr F] [--iterations N] [--n N] [--plots DIR] [--json]
 *
 * The lab draws its true and initial weights with numpy's generator, unseeded; here they
 * come from PyTorch's (ag_uniform_, as tensor.uniform_(-14, 14)), so a seed repeats the
 * run. --json prints the step at which the loss stopped changing (null if it never did),
 * the loss of every step, the test MSE and the three answers: {"convergence_step": ...,
 * "LOSS": [...], "test_mse": ..., "sgd": [...], "normal_equation": [...], "actual": [...]}.
 * --plots DIR draws the lab's scatter plots of the training data and of the test set with
 * the SGD answer's predictions, and the losses (see plot.h); the lab's scatter of the
 * predictions every 5 steps is left out. */
#include "example.h"
#include "plot.h"

/* def mean_standard_error(y, y_pred): return ((y - y_pred) ** 2).mean() */
static ag_tensor *mean_standard_error(ag_tensor *y, ag_tensor *y_pred)
{
    return ag_mean(ag_pow(ag_sub(y, y_pred), 2));
}

/* Python's "{:5}".format(v) of a float: its repr (the shortest digits that read back as
 * the same double), right-aligned in 5 columns. */
static void print_py_float(double v)
{
    char digits[40];
    int precision = 1;
    for (; precision < 17; precision++) {
        snprintf(digits, sizeof digits, "%.*e", precision - 1, v);
        if (strtod(digits, NULL) == v) break;
    }
    snprintf(digits, sizeof digits, "%.*e", precision - 1, v);
    long exponent = strtol(strchr(digits, 'e') + 1, NULL, 10);
    const char *tail = "";
    if (exponent >= -4 && exponent < 16) {
        int decimals = precision - 1 - (int)exponent;
        snprintf(digits, sizeof digits, "%.*f", decimals > 0 ? decimals : 0, v);
        if (!strchr(digits, '.')) tail = ".0";
    }
    printf("%*s%s", 5 - (int)strlen(tail), digits, tail);
}

/* The steps' losses, and the step at which the loss stopped changing (0: never). */
typedef struct sgd_trace {
    double *loss;
    int n, converged;
} sgd_trace;

/* def gentle_linear_torch(data, target, learning_rate, iterations): */
static ag_tensor *gentle_linear_torch(ag_tensor *data, ag_tensor *target, double learning_rate,
                                      int iterations, bool quiet, sgd_trace *trace)
{
    /* model = nn.Parameter(torch.tensor([np.random.uniform(-14, 14),
     *                                    np.random.uniform(-14, 14)])) */
    ag_tensor *model = ag_requires_grad_(ag_uniform_(ag_zeros(AG_SHAPE(2)), -14, 14), true);
    float last_loss = 0;
    ag_mark graph = ag_mark_now();
    for (int time = 0; time < iterations; time++) {
        ag_tensor *y_hat = ag_matmul(data, model);            /* y_hat = data @ model */
        ag_tensor *loss = mean_standard_error(target, y_hat); /* loss = mse(target, y_hat) */
        float l = (float)ag_item(loss);
        trace->loss[trace->n++] = l;
        if (time > 0 && last_loss == l) { /* if time > 0 and last_loss == loss: */
            if (!quiet) printf(".convergence of SGD at step %d\n", time);
            trace->converged = time;
            break; /* return(model) */
        }
        if (time > 0 && time % 5 == 0 && !quiet) {
            /* print("step: {:4} MSE: {:5}".format(time, float(last_loss.data - loss.data))):
             * a float32 difference, as between the lab's two tensors */
            printf("step: %4d MSE: ", time);
            print_py_float((float)(last_loss - l));
            printf("\n");
        }
        ag_backward(loss); /* loss.backward() */
        AG_NO_GRAD
        {                                                       /* with torch.no_grad(): */
            ag_sub_(model, ag_mul(learning_rate, model->grad)); /* model.sub_(lr * grad) */
            ag_zero_(model->grad);                              /* model.grad.zero_() */
        }
        last_loss = l; /* last_loss = loss */
        ag_release(graph);
    }
    ag_release(graph);
    return model;
}

static const char usage_text[] =
    "usage: %s [--seed N] [--lr F] [--iterations N] [--n N] [--plots DIR] [--json]\n"
    "Fits y = X @ w (n rows: a uniform feature in [-1.15, 1.15] and a column of ones) by\n"
    "gradient descent on the first 75%% of the rows, then solves the normal equation.\n"
    "defaults (the lab's): --seed 0 --lr 0.1 --iterations 1000 --n 10000\n"
    "--plots DIR writes the pictures there (PNG and SVG); --json prints convergence_step,\n"
    "LOSS, test_mse, sgd, normal_equation and actual.\n";

int main(int argc, char **argv)
{
    uint64_t seed = 0, iterations = 1000, n = 10000;
    double lr = 0.1;
    bool json = false;
    const char *plots = NULL;
    const option options[] = {
        {"--seed", OPT_WHOLE, .target = &seed, .needs = "a whole number from 0 to 2^64 - 1",
         .hi = UINT64_MAX},
        {"--lr", OPT_NUMBER, .target = &lr, .needs = "a finite number > 0", .positive = true},
        {"--iterations", OPT_WHOLE, .target = &iterations, .needs = "a whole number from 0 to 10^7",
         .hi = 10000000},
        {"--n", OPT_WHOLE, .target = &n,
         .needs = "a whole number from 4 to 10^7 (3 rows to train on, 1 to test)", .lo = 4,
         .hi = 10000000},
        {"--json", OPT_FLAG, .target = &json},
        {"--plots", OPT_STRING, .target = &plots, .needs = "a directory"},
    };
    int status = parse_args(argc, argv, options, N_OPTIONS(options), usage_text);
    if (status >= 0) return status;
    if (!plot_setup(argv[0], &plots)) return 2;
    ag_manual_seed(seed);

    /* n_data = 10_000
     * X = torch.ones(n_data, 2)
     * X[:, 0].uniform_(-1.15, 1.15)
     * In agrad X[:, 0] is a copy (its tensors are contiguous), so filling it would leave X
     * as it was. X.t()[0] is the same column, and a row is a view: X is made as its
     * transpose, whose row 0 is filled in place, then transposed. The numbers are the
     * same: PyTorch fills the strided column in index order, as agrad fills the row. */
    int64_t n_data = (int64_t)n;
    ag_tensor *X_t = ag_ones(AG_SHAPE(2, n_data));
    ag_uniform_(ag_select(X_t, 0, 0), -1.15, 1.15);
    ag_tensor *X = ag_t(X_t);
    /* actual = to.tensor([np.random.uniform(-14, 14), np.random.uniform(-14, 14)]) */
    ag_tensor *actual = ag_uniform_(ag_zeros(AG_SHAPE(2)), -14, 14);
    /* y = X @ actual + to.randn(n_data) / 3 */
    ag_tensor *y = ag_add(ag_matmul(X, actual), ag_div(ag_randn(AG_SHAPE(n_data)), 3));

    /* train_size = int(n_data * .75); test_size = n_data - train_size
     * X_train, X_test = X[0 : train_size, :], X[train_size : n_data, :]
     * y_train, y_test = y[0 : train_size], y[train_size : n_data] */
    int64_t train_size = n_data * 3 / 4;
    ag_tensor *X_train = ag_slice(X, 0, 0, train_size),
              *X_test = ag_slice(X, 0, train_size, n_data);
    ag_tensor *y_train = ag_slice(y, 0, 0, train_size),
              *y_test = ag_slice(y, 0, train_size, n_data);

    /* sgd = gentle_linear_torch(X_train, y_train, .1, 1000) */
    sgd_trace trace = {malloc(((size_t)iterations + 1) * sizeof(double)), 0, 0};
    if (!trace.loss) {
        fprintf(stderr, "%s: out of memory for %" PRIu64 " losses\n", argv[0], iterations);
        return 1;
    }
    ag_tensor *sgd = gentle_linear_torch(X_train, y_train, lr, (int)iterations, json, &trace);
    /* y_hat = X_test @ sgd; float(mean_standard_error(y_hat, y_test)) */
    ag_tensor *y_hat = ag_matmul(X_test, sgd);
    double test_mse = ag_item(mean_standard_error(y_hat, y_test));

    /* plt.scatter(X_train[:, 0], y_train, s = .1): X[:, 0] is row 0 of X_t */
    const float *feature = ag_select(X_t, 0, 0)->data;
    plot_scatter(plots, "sgd_train", "Training data", "X_train[:, 0]", "y_train", 1,
                 (plot_points[]){{"y_train", feature, y_train->data, train_size}});
    /* plt.scatter(X_test[:, 0], y_test, s = .1); plt.scatter(X_test[:, 0], y_hat, s = .1) */
    plot_scatter(
        plots, "sgd_test", "Plot on test set", "X_test[:, 0]", "y", 2,
        (plot_points[]){
            {"y_test", feature + train_size, y_test->data, n_data - train_size},
            {"y_hat = X_test @ sgd", feature + train_size, y_hat->data, n_data - train_size}});
    plot_lines(plots, "sgd_loss", "Gradient descent", "step", "MSE on the training set", 1,
               (plot_series[]){{"loss", trace.loss, trace.n}});

    /* theta = (torch.t(X_train) @ X_train).inverse() @ to.t(X_train) @ y_train */
    ag_tensor *theta =
        ag_matmul(ag_matmul(ag_inverse(ag_matmul(ag_t(X_train), X_train)), ag_t(X_train)), y_train);

    if (json) {
        if (trace.converged)
            printf("{\"convergence_step\": %d, ", trace.converged);
        else
            printf("{\"convergence_step\": null, ");
        json_doubles("LOSS", trace.loss, trace.n);
        printf(", ");
        json_number("test_mse", test_mse);
        printf(", ");
        json_tensor("sgd", sgd);
        printf(", ");
        json_tensor("normal_equation", theta);
        printf(", ");
        json_tensor("actual", actual);
        printf("}\n");
    } else {
        printf("float(mean_standard_error(y_hat, y_test)): %.17g\nprint(theta): ", test_mse);
        ag_print(theta);
        printf("print(sgd): Parameter containing:\n"); /* sgd is an nn.Parameter */
        ag_print(sgd);
        printf("actual: ");
        ag_print(actual);
        if (plots) printf("pictures: %s/sgd_*.png (and .svg)\n", plots);
    }
    free(trace.loss);
    ag_shutdown();
    return plot_failed() ? 1 : 0;
}
