/* XOR with a small network: nn.Sequential(Linear(2, 4), Tanh(), Linear(4, 1), Sigmoid())
 * and BCELoss on the four points, trained by full-batch gradient descent. The PyTorch
 * program it ports, line for line, is `xor` in tools/nn_examples.py.
 *
 *   xor_mlp [--seed N] [--epochs N] [--lr F] [--json] */
#include "example.h"

int main(int argc, char **argv)
{
    example_options o = {.seed = 0, .epochs = 2000, .lr = 0.5};
    int status = parse_options(argc, argv, &o, "XOR with a two-layer network (agrad nn).");
    if (status >= 0) return status;
    int epochs = (int)o.epochs;

    ag_manual_seed((uint64_t)o.seed); /* torch.manual_seed(seed) */
    ag_tensor *X = ag_tensor_from((const float[]){0, 0, 0, 1, 1, 0, 1, 1}, AG_SHAPE(4, 2));
    ag_tensor *y = ag_tensor_from((const float[]){0, 1, 1, 0}, AG_SHAPE(4, 1));
    /* model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid()) */
    ag_module *model = ag_Sequential(ag_Linear(2, 4), ag_Tanh(), ag_Linear(4, 1), ag_Sigmoid());
    ag_criterion loss_fn = ag_BCELoss(); /* loss_fn = nn.BCELoss() */
    ag_params params = ag_parameters(model);
    if (!o.json) ag_module_print(model); /* print(model) */

    history h = {calloc((size_t)epochs, sizeof(double)), calloc((size_t)epochs, sizeof(double)), 0};
    ag_mark start = ag_mark_now();
    for (int epoch = 0; epoch < epochs; epoch++) {
        ag_tensor *out = ag_forward(model, X);      /* out = model(X) */
        ag_tensor *loss = ag_loss(loss_fn, out, y); /* loss = loss_fn(out, y) */
        ag_backward(loss);                          /* loss.backward() */
        AG_NO_GRAD
        {                                      /* with torch.no_grad(): */
            for (int i = 0; i < params.n; i++) /*   p -= lr * p.grad */
                ag_sub_(params.tensors[i], ag_mul(o.lr, params.tensors[i]->grad));
        }
        ag_module_zero_grad(model); /* model.zero_grad() */
        /* accuracy = ((out > 0.5).float() == y).float().mean() */
        ag_tensor *accuracy = ag_mean(ag_eq(ag_gt(out, 0.5), y));
        record(&h, epoch, epochs, ag_item(loss), ag_item(accuracy), o.json);
        ag_release(start);
    }
    if (o.json) print_json(&h, model);
    free(h.loss);
    free(h.accuracy);
    ag_module_free(model);
    ag_shutdown();
    return 0;
}
