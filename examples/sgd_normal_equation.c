/* The lab "Intro to pytorch I: Stochastic gradient" (a blog post after Dr. Alvarez's ODSC
 * talk) in C: fit y = X @ w on 10,000 rows of two features by gradient descent, then check
 * the answer against the normal equation (X^T X)^-1 X^T y.
 *
 *   sgd_normal_equation [--seed N] [--lr F] [--iterations N]
 *
 * The lab draws its true and initial weights with numpy's generator; here they come
 * from PyTorch's (ag_uniform_), so the run repeats for a seed. */
#include <agrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* def mean_standard_error(y, y_pred): return ((y - y_pred) ** 2).mean() */
static ag_tensor *mean_standard_error(ag_tensor *y, ag_tensor *y_pred)
{
    return ag_mean(ag_pow(ag_sub(y, y_pred), 2));
}

/* def gentle_linear_torch(data, target, learning_rate, iterations): */
static ag_tensor *gentle_linear_torch(ag_tensor *data, ag_tensor *target, double learning_rate,
                                      int iterations)
{
    /* model = nn.Parameter(torch.tensor([uniform(-14, 14), uniform(-14, 14)])) */
    ag_tensor *model = ag_requires_grad_(ag_uniform_(ag_zeros(AG_SHAPE(2)), -14, 14), true);
    double last_loss = 0;
    ag_mark graph = ag_mark_now();
    for (int time = 0; time < iterations; time++) {
        ag_tensor *y_hat = ag_matmul(data, model);            /* y_hat = data @ model */
        ag_tensor *loss = mean_standard_error(target, y_hat); /* loss = mse(target, y_hat) */
        double l = ag_item(loss);
        if (time > 0 && last_loss == l) { /* if last_loss == loss: */
            printf(".convergence of SGD at step %d\n", time);
            break;
        }
        if (time > 0 && time % 5 == 0) /* print every 5 steps */
            printf("step: %4d MSE: %g\n", time, last_loss - l);
        ag_backward(loss); /* loss.backward() */
        AG_NO_GRAD
        {                                                       /* with torch.no_grad(): */
            ag_sub_(model, ag_mul(learning_rate, model->grad)); /* model.sub_(lr * grad) */
            ag_zero_(model->grad);                              /* model.grad.zero_() */
        }
        last_loss = l;
        ag_release(graph);
    }
    ag_release(graph);
    return model;
}

int main(int argc, char **argv)
{
    long seed = 0, iterations = 1000;
    double lr = 0.1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seed"))
            seed = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--lr"))
            lr = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--iterations"))
            iterations = atol(argv[i + 1]);
        else
            break;
    }
    if (argc % 2 == 0 || seed < 0 || iterations < 0 || !(lr > 0)) {
        fprintf(stderr, "usage: %s [--seed N] [--lr F] [--iterations N]\n", argv[0]);
        return 2;
    }
    ag_manual_seed((uint64_t)seed);

    /* n_data = 10_000; X = torch.ones(n_data, 2); X[:, 0].uniform_(-1.15, 1.15)
     * (agrad's X[:, 0] is a copy, not a view, so the column is made and stacked) */
    int64_t n_data = 10000;
    ag_tensor *columns[2] = {ag_uniform_(ag_zeros(AG_SHAPE(n_data)), -1.15, 1.15),
                             ag_ones(AG_SHAPE(n_data))};
    ag_tensor *X = ag_stack(columns, 2, 1);
    /* actual = tensor([uniform(-14, 14), uniform(-14, 14)]) */
    ag_tensor *actual = ag_uniform_(ag_zeros(AG_SHAPE(2)), -14, 14);
    /* y = X @ actual + torch.randn(n_data) / 3 */
    ag_tensor *y = ag_add(ag_matmul(X, actual), ag_div(ag_randn(AG_SHAPE(n_data)), 3));

    /* train_size = int(n_data * .75); X_train, X_test = X[0:train_size, :], X[train_size:, :] */
    int64_t train_size = n_data * 3 / 4;
    ag_tensor *X_train = ag_slice(X, 0, 0, train_size),
              *X_test = ag_slice(X, 0, train_size, n_data);
    ag_tensor *y_train = ag_slice(y, 0, 0, train_size),
              *y_test = ag_slice(y, 0, train_size, n_data);

    /* sgd = gentle_linear_torch(X_train, y_train, .1, 1000) */
    ag_tensor *sgd = gentle_linear_torch(X_train, y_train, lr, (int)iterations);
    /* float(mean_standard_error(X_test @ sgd, y_test)) */
    printf("test MSE: %.6f\n", ag_item(mean_standard_error(ag_matmul(X_test, sgd), y_test)));

    /* theta = (torch.t(X_train) @ X_train).inverse() @ torch.t(X_train) @ y_train */
    ag_tensor *theta =
        ag_matmul(ag_matmul(ag_inverse(ag_matmul(ag_t(X_train), X_train)), ag_t(X_train)), y_train);
    printf("actual: ");
    ag_print(actual);
    printf("normal equation: ");
    ag_print(theta);
    printf("SGD: ");
    ag_print(sgd);
    ag_shutdown();
    return 0;
}
