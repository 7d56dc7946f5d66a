/* What the example and lab programs share: their command line (one option table each,
 * read by parse_args, exit status 2 with a message on a bad option or value) and their
 * --json output. Then what the nn examples share, as tools/nn_examples.py shares it: their
 * options, the 2-D blobs they learn from, the training loop, and their output (one line
 * per printed epoch, or JSON for tests/check_examples.py). */
#ifndef AGRAD_EXAMPLE_H
#define AGRAD_EXAMPLE_H

#include <agrad_nn.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Options                                                                               */

/* What an option takes after it, and where it puts it. */
typedef enum option_kind {
    OPT_FLAG,   /* nothing: sets a bool to true */
    OPT_NUMBER, /* a finite number (> 0 with .positive): a double */
    OPT_WHOLE,  /* a whole number from .lo to .hi, in decimal digits: a uint64_t */
    OPT_STRING, /* a string that is not empty: a const char * */
    OPT_CHOICE, /* one of .choices (a NULL-terminated list): its index, an int */
} option_kind;

/* One line of a program's option table: the option, what it takes, where its value goes,
 * and what the value must be, in the words that refuse a bad one ("NAME needs NEEDS, not
 * 'VALUE'"). Written with the name and kind first, the rest by name:
 *     {"--lr", OPT_NUMBER, .target = &lr, .needs = "a finite number > 0", .positive = true} */
typedef struct option {
    const char *name; /* "--lr" */
    option_kind kind;
    void *target;
    const char *needs;          /* "a finite number > 0"; unused by OPT_FLAG */
    bool positive;              /* OPT_NUMBER: > 0 */
    uint64_t lo, hi;            /* OPT_WHOLE */
    const char *const *choices; /* OPT_CHOICE */
} option;

#define N_OPTIONS(table) ((int)(sizeof(table) / sizeof((table)[0])))

/* Stores s in o's target if it is a value o takes; false (the target unchanged) if not. */
static inline bool option_value(const option *o, const char *s)
{
    char *end;
    errno = 0;
    switch (o->kind) {
    case OPT_NUMBER: {
        double v = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(v) || (o->positive && !(v > 0))) return false;
        *(double *)o->target = v;
        return true;
    }
    case OPT_WHOLE: {
        if (*s < '0' || *s > '9') return false; /* strtoull would take "-1" and " 1" */
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v < o->lo || v > o->hi) return false;
        *(uint64_t *)o->target = v;
        return true;
    }
    case OPT_CHOICE:
        for (int k = 0; o->choices[k]; k++)
            if (!strcmp(s, o->choices[k])) {
                *(int *)o->target = k;
                return true;
            }
        return false;
    default: /* OPT_STRING */
        if (!*s) return false;
        *(const char **)o->target = s;
        return true;
    }
}

/* Reads argv by the n options of table over the defaults already in their targets;
 * --help and -h print usage, a printf format given the program's name. Returns -1 to go
 * on, or the exit status: 0 after --help, 2 after an unknown option or a missing or bad
 * value, said on stderr ("prog: --lr needs a finite number > 0, not 'x' (try --help)"). */
static inline int parse_args(int argc, char **argv, const option *table, int n, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf(usage, argv[0]);
            return 0;
        }
        const option *o = table;
        while (o < table + n && strcmp(a, o->name)) o++;
        if (o == table + n) {
            fprintf(stderr, "%s: unknown option '%s' (try --help)\n", argv[0], a);
            return 2;
        }
        if (o->kind == OPT_FLAG) {
            *(bool *)o->target = true;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs %s (try --help)\n", argv[0], a, o->needs);
            return 2;
        } else if (!option_value(o, argv[++i])) {
            fprintf(stderr, "%s: %s needs %s, not '%s' (try --help)\n", argv[0], a, o->needs,
                    argv[i]);
            return 2;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------ */
/* JSON output, as Python's json module reads it                                         */

/* A number: %.9g (enough for every float), NaN and Infinity where a run diverged. */
static inline void json_value(double v)
{
    if (isnan(v))
        printf("NaN");
    else if (isinf(v))
        printf(v > 0 ? "Infinity" : "-Infinity");
    else
        printf("%.9g", v);
}

/* "name": v */
static inline void json_number(const char *name, double v)
{
    printf("\"%s\": ", name);
    json_value(v);
}

/* "name": [v[0], ..., v[n - 1]] */
static inline void json_doubles(const char *name, const double *v, int64_t n)
{
    printf("\"%s\": [", name);
    for (int64_t i = 0; i < n; i++) {
        if (i) printf(", ");
        json_value(v[i]);
    }
    printf("]");
}

/* "name": [t's values, flat] */
static inline void json_tensor(const char *name, const ag_tensor *t)
{
    printf("\"%s\": [", name);
    for (int64_t i = 0; i < t->numel; i++) {
        if (i) printf(", ");
        json_value(t->data[i]);
    }
    printf("]");
}

/* ------------------------------------------------------------------------------------ */
/* The nn examples                                                                       */

typedef struct example_options {
    uint64_t seed, epochs;
    double lr;
    bool json;
} example_options;

/* Parses --seed N --epochs N --lr F --json --help over the defaults in o. Returns -1 to go
 * on, or the exit status: 0 after --help, 2 after a bad option or value (with a message). */
static inline int parse_nn_options(int argc, char **argv, example_options *o, const char *about)
{
    const option table[] = {
        {"--seed", OPT_WHOLE, .target = &o->seed, .needs = "a whole number from 0 to 2^64 - 1",
         .hi = UINT64_MAX},
        {"--epochs", OPT_WHOLE, .target = &o->epochs, .needs = "a whole number from 1 to 10^7",
         .lo = 1, .hi = 10000000},
        {"--lr", OPT_NUMBER, .target = &o->lr, .needs = "a finite number > 0", .positive = true},
        {"--json", OPT_FLAG, .target = &o->json},
    };
    char usage[512];
    snprintf(usage, sizeof usage,
             "%s\nusage: %%s [--seed N] [--epochs N] [--lr F] [--json]\n"
             "defaults: --seed %" PRIu64 " --epochs %" PRIu64 " --lr %g\n",
             about, o->seed, o->epochs, o->lr);
    return parse_args(argc, argv, table, N_OPTIONS(table), usage);
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
    printf("{");
    json_doubles("loss", h->loss, h->n);
    printf(", ");
    json_doubles("accuracy", h->accuracy, h->n);
    printf(", \"parameters\": {");
    ag_params p = ag_parameters(model);
    for (int i = 0; i < p.n; i++) {
        if (i) printf(", ");
        json_tensor(p.names[i], p.tensors[i]);
    }
    printf("}}\n");
}

#endif
