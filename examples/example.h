/* What the nn examples share, as tools/nn_examples.py shares it: their options, the 2-D
 * blobs they learn from, the training loop, and their output (one line per printed epoch,
 * or JSON for tests/check_examples.py). */
#ifndef AGRAD_EXAMPLE_H
#define AGRAD_EXAMPLE_H

#include <agrad_nn.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct example_options {
    double seed, epochs, lr;
    bool json;
} example_options;

/* Parses --seed N --epochs N --lr F --json --help over the defaults in o. Returns -1 to go
 * on, or the exit status: 0 after --help, 2 after a bad option or value (with a message). */
static inline int parse_options(int argc, char **argv, example_options *o, const char *about)
{
    for (int i = 1; i < argc; i++) {
        double *target = !strcmp(argv[i], "--seed")     ? &o->seed
                         : !strcmp(argv[i], "--epochs") ? &o->epochs
                         : !strcmp(argv[i], "--lr")     ? &o->lr
                                                        : NULL;
        if (!strcmp(argv[i], "--json")) {
            o->json = true;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s\nusage: %s [--seed N] [--epochs N] [--lr F] [--json]\n"
                   "defaults: --seed %g --epochs %g --lr %g\n",
                   about, argv[0], o->seed, o->epochs, o->lr);
            return 0;
        }
        if (!target) {
            fprintf(stderr, "%s: unknown option '%s' (try --help)\n", argv[0], argv[i]);
            return 2;
        }
        char *end = NULL;
        errno = 0;
        if (i + 1 < argc) *target = strtod(argv[i + 1], &end);
        if (i + 1 >= argc || errno || end == argv[i + 1] || *end) {
            fprintf(stderr, "%s: %s needs a number\n", argv[0], argv[i]);
            return 2;
        }
        i++;
    }
    if (o->seed < 0 || o->seed != (double)(uint64_t)o->seed || o->epochs < 1 || o->epochs > 1e7 ||
        o->epochs != (int)o->epochs || !(o->lr > 0)) {
        fprintf(stderr,
                "%s: --seed must be a whole number >= 0, --epochs one in 1..10^7, --lr "
                "a number > 0\n",
                argv[0]);
        return 2;
    }
    return -1;
}

/* n points around each of the k centers (standard deviation 0.7), in order, and their
 * labels 0..k-1: X of shape (k n, 2), y of shape (k n). Python:
 *     X = torch.cat([torch.randn(n, 2) * 0.7 + torch.tensor(c) for c in centers])
 *     y = torch.cat([torch.full((n,), float(k)) for k in range(len(centers))]) */
static inline void blobs(int64_t n, int k, const float centers[][2], ag_tensor **X, ag_tensor **y)
{
    ag_tensor *xs[8], *ys[8];
    for (int c = 0; c < k && c < 8; c++) {
        xs[c] =
            ag_add(ag_mul(ag_randn(AG_SHAPE(n, 2)), 0.7), ag_tensor_from(centers[c], AG_SHAPE(2)));
        ys[c] = ag_full(AG_SHAPE(n), c);
    }
    *X = ag_cat(xs, k, 0);
    *y = ag_cat(ys, k, 0);
}

/* The epochs' losses and accuracies. */
typedef struct history {
    double *loss, *accuracy;
    int n;
} history;

/* def train(model, loss_fn, X, target, predict, epochs, lr, every): full-batch gradient
 * descent, as in tools/nn_examples.py. predict(out) gives the predicted labels, compared
 * with target for the accuracy. Prints ten epochs spread evenly unless quiet. Returns the
 * history (free its arrays), or one with n < epochs if memory ran out. */
static inline history train(ag_module *model, ag_criterion loss_fn, ag_tensor *X, ag_tensor *target,
                            ag_tensor *(*predict)(const ag_tensor *out), int epochs, double lr,
                            bool quiet)
{
    history h = {calloc((size_t)epochs, sizeof(double)), calloc((size_t)epochs, sizeof(double)), 0};
    if (!h.loss || !h.accuracy) return h;
    ag_params params = ag_parameters(model);
    int every = epochs / 10 > 1 ? epochs / 10 : 1;
    ag_mark start = ag_mark_now(); /* what an epoch makes is released at its end */
    for (int epoch = 0; epoch < epochs; epoch++) {
        ag_tensor *out = ag_forward(model, X);           /* out = model(X) */
        ag_tensor *loss = ag_loss(loss_fn, out, target); /* loss = loss_fn(out, target) */
        ag_backward(loss);                               /* loss.backward() */
        AG_NO_GRAD
        {                                      /* with torch.no_grad(): */
            for (int i = 0; i < params.n; i++) /*   for p in model.parameters(): */
                ag_sub_(params.tensors[i],
                        ag_mul(lr, params.tensors[i]->grad)); /* p -= lr * p.grad */
        }
        ag_module_zero_grad(model); /* model.zero_grad() */
        /* accuracy = (predict(out) == target).float().mean() */
        ag_tensor *accuracy = ag_mean(ag_eq(predict(out), target));
        h.loss[epoch] = ag_item(loss);
        h.accuracy[epoch] = ag_item(accuracy);
        h.n = epoch + 1;
        if (!quiet && (epoch % every == 0 || epoch == epochs - 1))
            printf("epoch %d: loss = %.6f, accuracy = %.3f\n", epoch + 1, h.loss[epoch],
                   h.accuracy[epoch]);
        ag_release(start);
    }
    return h;
}

/* {"loss": [...], "accuracy": [...], "parameters": {"weight": [...], ...}} */
static inline void print_json(const history *h, ag_module *model)
{
    printf("{\"loss\": [");
    for (int i = 0; i < h->n; i++) printf(i ? ", %.9g" : "%.9g", h->loss[i]);
    printf("], \"accuracy\": [");
    for (int i = 0; i < h->n; i++) printf(i ? ", %.9g" : "%.9g", h->accuracy[i]);
    printf("], \"parameters\": {");
    ag_params p = ag_parameters(model);
    for (int i = 0; i < p.n; i++) {
        printf(i ? ", \"%s\": [" : "\"%s\": [", p.names[i]);
        for (int64_t j = 0; j < p.tensors[i]->numel; j++)
            printf(j ? ", %.9g" : "%.9g", p.tensors[i]->data[j]);
        printf("]");
    }
    printf("}}\n");
}

#endif
