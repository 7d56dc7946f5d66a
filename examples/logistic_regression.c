/* Logistic regression on two blobs of 2-D points: nn.Linear(2, 1) and BCEWithLogitsLoss,
 * trained by full-batch gradient descent. The PyTorch program it ports, line for line, is
 * `logistic` in tools/nn_examples.py; both print the same numbers for the same seed.
 *
 *   logistic_regression [--seed N] [--epochs N] [--lr F] [--json] */
#include "example.h"

/* lambda z: (z > 0).float() */
static ag_tensor *predict(const ag_tensor *z) { return ag_gt(z, 0); }

int main(int argc, char **argv)
{
    example_options o = {.seed = 0, .epochs = 20, .lr = 0.5};
    int status = parse_nn_options(argc, argv, &o, "Logistic regression on two blobs (agrad nn).");
    if (status >= 0) return status;

    ag_manual_seed(o.seed); /* torch.manual_seed(seed) */
    ag_tensor *X, *y;       /* X, y = blobs(50, ...) */
    blobs(50, 2, (const float[][2]){{-1, -1}, {1, 1}}, &X, &y);
    ag_module *model = ag_Linear(2, 1);              /* model = nn.Linear(2, 1) */
    ag_criterion loss_fn = ag_BCEWithLogitsLoss();   /* loss_fn = nn.BCEWithLogitsLoss() */
    ag_tensor *target = ag_view(y, AG_SHAPE(-1, 1)); /* y.view(-1, 1) */
    history h = train(model, loss_fn, X, target, predict, (int)o.epochs, o.lr, o.json);

    if (o.json) print_json(&h, model);
    free(h.loss);
    free(h.accuracy);
    ag_module_free(model);
    ag_shutdown();
    return 0;
}
