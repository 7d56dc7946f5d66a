/* XOR with a small network: nn.Sequential(Linear(2, 4), Tanh(), Linear(4, 1), Sigmoid())
 * and BCELoss on the four points, trained by full-batch gradient descent. The PyTorch
 * program it ports, line for line, is `xor` in tools/nn_examples.py.
 *
 *   xor_mlp [--seed N] [--epochs N] [--lr F] [--json] */
#include "example.h"

/* lambda p: (p > 0.5).float() */
static ag_tensor *predict(const ag_tensor *p) { return ag_gt(p, 0.5); }

int main(int argc, char **argv)
{
    example_options o = {.seed = 0, .epochs = 2000, .lr = 0.5};
    int status = parse_nn_options(argc, argv, &o, "XOR with a two-layer network (agrad nn).");
    if (status >= 0) return status;

    ag_manual_seed(o.seed); /* torch.manual_seed(seed) */
    ag_tensor *X = ag_tensor_from((const float[]){0, 0, 0, 1, 1, 0, 1, 1}, AG_SHAPE(4, 2));
    ag_tensor *y = ag_tensor_from((const float[]){0, 1, 1, 0}, AG_SHAPE(4, 1));
    /* model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid()) */
    ag_module *model = ag_Sequential(ag_Linear(2, 4), ag_Tanh(), ag_Linear(4, 1), ag_Sigmoid());
    ag_criterion loss_fn = ag_BCELoss(); /* loss_fn = nn.BCELoss() */
    if (!o.json) ag_module_print(model); /* print(model) */
    history h = train(model, loss_fn, X, y, predict, (int)o.epochs, o.lr, o.json);

    if (o.json) print_json(&h, model);
    free(h.loss);
    free(h.accuracy);
    ag_module_free(model);
    ag_shutdown();
    return 0;
}
