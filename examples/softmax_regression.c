/* Softmax regression on three blobs of 2-D points: nn.Linear(2, 3) and CrossEntropyLoss on
 * class indices, trained by full-batch gradient descent. The PyTorch program it ports, line
 * for line, is `softmax` in tools/nn_examples.py; both print the same numbers.
 *
 *   softmax_regression [--seed N] [--epochs N] [--lr F] [--json] */
#include "example.h"

/* lambda z: z.argmax(1).float() */
static ag_tensor *predict(const ag_tensor *z) { return ag_argmax_dim(z, 1, false); }

int main(int argc, char **argv)
{
    example_options o = {.seed = 0, .epochs = 20, .lr = 0.5};
    int status = parse_nn_options(argc, argv, &o, "Softmax regression on three blobs (agrad nn).");
    if (status >= 0) return status;

    ag_manual_seed(o.seed); /* torch.manual_seed(seed) */
    ag_tensor *X, *y;       /* X, y = blobs(40, ...) */
    blobs(40, 3, (const float[][2]){{-2, 0}, {2, 0}, {0, 2}}, &X, &y);
    ag_module *model = ag_Linear(2, 3);           /* model = nn.Linear(2, 3) */
    ag_criterion loss_fn = ag_CrossEntropyLoss(); /* loss_fn = nn.CrossEntropyLoss() */
    /* class indices are floats holding integers in agrad (y.long() in PyTorch) */
    history h = train(model, loss_fn, X, y, predict, (int)o.epochs, o.lr, o.json);

    if (o.json) print_json(&h, model);
    free(h.loss);
    free(h.accuracy);
    ag_module_free(model);
    ag_shutdown();
    return 0;
}
