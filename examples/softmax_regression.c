/* Softmax regression on three blobs of 2-D points: nn.Linear(2, 3) and CrossEntropyLoss on
 * class indices, trained by full-batch gradient descent. The PyTorch program it ports, line
 * for line, is `softmax` in tools/nn_examples.py; both print the same numbers.
 *
 *   softmax_regression [--seed N] [--epochs N] [--lr F] [--json] */
#include "example.h"

int main(int argc, char **argv)
{
    example_options o = {.seed = 0, .epochs = 20, .lr = 0.5};
    int status = parse_options(argc, argv, &o, "Softmax regression on three blobs (agrad nn).");
    if (status >= 0) return status;
    int epochs = (int)o.epochs;

    ag_manual_seed((uint64_t)o.seed); /* torch.manual_seed(seed) */
    ag_tensor *X, *y;                 /* X, y = blobs(40, ...) */
    blobs(40, 3, (const float[][2]){{-2, 0}, {2, 0}, {0, 2}}, &X, &y);
    ag_module *model = ag_Linear(2, 3);           /* model = nn.Linear(2, 3) */
    ag_criterion loss_fn = ag_CrossEntropyLoss(); /* nn.CrossEntropyLoss() */
    ag_params params = ag_parameters(model);

    history h = {calloc((size_t)epochs, sizeof(double)), calloc((size_t)epochs, sizeof(double)), 0};
    ag_mark start = ag_mark_now();
    for (int epoch = 0; epoch < epochs; epoch++) {
        ag_tensor *out = ag_forward(model, X);      /* out = model(X) */
        ag_tensor *loss = ag_loss(loss_fn, out, y); /* loss = loss_fn(out, y.long()) */
        ag_backward(loss);                          /* loss.backward() */
        AG_NO_GRAD
        {                                      /* with torch.no_grad(): */
            for (int i = 0; i < params.n; i++) /*   p -= lr * p.grad */
                ag_sub_(params.tensors[i], ag_mul(o.lr, params.tensors[i]->grad));
        }
        ag_module_zero_grad(model); /* model.zero_grad() */
        /* accuracy = (out.argmax(1) == y).float().mean() */
        ag_tensor *accuracy = ag_mean(ag_eq(ag_argmax_dim(out, 1, false), y));
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
