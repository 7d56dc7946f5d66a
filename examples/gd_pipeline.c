/* Gradient Descent and Training Pipeline for a quick example about linear regression: the
 * notebook's four cells, in order, each learning f = 2 * x from four points.
 *
 *   In [1]  the gradient written by hand, in numpy: here plain C arrays and loops;
 *   In [2]  autograd computes the gradient, the update is written by hand;
 *   In [3]  nn.MSELoss and torch.optim.SGD, only the prediction by hand;
 *   In [4]  nn.Linear (or the notebook's own LinearRegression module) does it all.
 *
 *   gd_pipeline [--lr F] [--epochs N] [--seed N] [--custom] [--optimizer NAME ...] [--json]
 *
 * By default it prints the notebook's lines. Cell 4's nn.Linear is drawn after
 * ag_manual_seed(--seed) (the notebook does not seed it, so its numbers are those of
 * PyTorch for that seed). --json prints {"cells": [{"w": [...], "loss": [...], "before": f5,
 * "after": f5}, ...]}, w and the loss of every epoch. tools/gen_ref_gd_pipeline.py runs the
 * same cells in numpy and PyTorch; tests/check_gd_pipeline.py compares. */
#include "example.h"

#include <agrad_optim.h>

#include <stdarg.h>

#include <stb_ds.h>

/* ------------------------------------------------------------------------------------ */
/* Options                                                                               */

static const char usage_text[] =
    "usage: %s [options]\n"
    "The notebook \"Gradient Descent and Training Pipeline\": its four cells, in order.\n"
    "  --lr F            every cell's learning rate (the notebook's: 0.01, 0.01, 0.01, 0.1)\n"
    "  --epochs N        every cell's n_iters, 0..1000000 (the notebook's: 20, 100, 100, 100)\n"
    "  --seed N          torch.manual_seed before cell 4's nn.Linear (default 0)\n"
    "  --custom          cell 4 uses the notebook's LinearRegression module (the same numbers)\n"
    "  --optimizer NAME  cells 3 and 4: sgd (default), adam, adamw or rmsprop, with\n"
    "    --momentum F --dampening F --nesterov --weight-decay F --maximize --beta1 F\n"
    "    --beta2 F --eps F --amsgrad --alpha F --centered   (PyTorch's defaults; an option\n"
    "    the optimizer does not have is refused in PyTorch's words)\n"
    "  --json            {\"cells\": [{\"w\": [...], \"loss\": [...], \"before\": f5, \"after\": "
    "f5}, ...]}\n"
    "  --help            this text\n";

enum { SGD, ADAM, ADAMW, RMSPROP };
static const char *const optimizer_names[] = {"sgd", "adam", "adamw", "rmsprop", NULL};

typedef struct options {
    double lr;         /* NAN: each cell's own */
    uint64_t epochs;   /* UINT64_MAX: each cell's own */
    uint64_t seed;     /* for cell 4 */
    bool custom, json; /* cell 4's model; the output */
    int optimizer;     /* SGD, ADAM, ADAMW or RMSPROP */
    ag_optim_args opt; /* the optimizer's options given, the others unset */
} options;

/* The optimizer with o's options over params, at learning rate lr: what
 * torch.optim.SGD(params, lr=learning_rate) is in the notebook. NULL on error (agrad's
 * message, in PyTorch's words). */
static ag_optimizer *make_optimizer(const options *o, ag_params params, double lr)
{
    ag_optim_args args = o->opt;
    args.params = params;
    args.lr = lr;
    switch (o->optimizer) {
    case ADAM:
        return ag_adam_with(args);
    case ADAMW:
        return ag_adamw_with(args);
    case RMSPROP:
        return ag_rmsprop_with(args);
    default:
        return ag_sgd_with(args);
    }
}

/* Reads argv into o. Returns -1 to go on, or the exit status: 0 after --help, 2 after a bad
 * option or value (with a message). */
static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.lr = NAN, .epochs = UINT64_MAX, .seed = 0, .opt = ag_optim_args_unset()};
    bool nesterov = false, maximize = false, amsgrad = false, centered = false;
    const option table[] = {
        {"--lr", OPT_NUMBER, .target = &o->lr, .needs = "a finite number"},
        {"--epochs", OPT_WHOLE, .target = &o->epochs, .needs = "a whole number from 0 to 1000000",
         .hi = 1000000},
        {"--seed", OPT_WHOLE, .target = &o->seed, .needs = "a whole number from 0 to 2^64 - 1",
         .hi = UINT64_MAX},
        {"--custom", OPT_FLAG, .target = &o->custom},
        {"--optimizer", OPT_CHOICE, .target = &o->optimizer, .needs = "sgd, adam, adamw or rmsprop",
         .choices = optimizer_names},
        {"--momentum", OPT_NUMBER, .target = &o->opt.momentum, .needs = "a finite number"},
        {"--dampening", OPT_NUMBER, .target = &o->opt.dampening, .needs = "a finite number"},
        {"--nesterov", OPT_FLAG, .target = &nesterov},
        {"--weight-decay", OPT_NUMBER, .target = &o->opt.weight_decay, .needs = "a finite number"},
        {"--maximize", OPT_FLAG, .target = &maximize},
        {"--beta1", OPT_NUMBER, .target = &o->opt.betas[0], .needs = "a finite number"},
        {"--beta2", OPT_NUMBER, .target = &o->opt.betas[1], .needs = "a finite number"},
        {"--eps", OPT_NUMBER, .target = &o->opt.eps, .needs = "a finite number"},
        {"--amsgrad", OPT_FLAG, .target = &amsgrad},
        {"--alpha", OPT_NUMBER, .target = &o->opt.alpha, .needs = "a finite number"},
        {"--centered", OPT_FLAG, .target = &centered},
        {"--json", OPT_FLAG, .target = &o->json},
    };
    int status = parse_args(argc, argv, table, N_OPTIONS(table), usage_text);
    if (status >= 0) return status;
    /* a flag given is true, one left out stays unset (the optimizer's default) */
    if (nesterov) o->opt.nesterov = 1;
    if (maximize) o->opt.maximize = 1;
    if (amsgrad) o->opt.amsgrad = 1;
    if (centered) o->opt.centered = 1;

    /* betas=(beta1, beta2): one given, the other takes PyTorch's default. Both are unset
     * NaNs of agrad's own until given. */
    bool beta1 = !isnan(o->opt.betas[0]), beta2 = !isnan(o->opt.betas[1]);
    if (beta1 != beta2) {
        if (!beta1) o->opt.betas[0] = 0.9;
        if (!beta2) o->opt.betas[1] = 0.999;
    }

    /* The optimizer's own checks, before any cell runs: an option it does not have
     * ("SGD.__init__() got an unexpected keyword argument 'betas'") or a value out of range
     * ("Invalid learning rate: -0.1"), in PyTorch's words, for each learning rate it will get. */
    ag_error_fn previous = ag_set_error_handler(NULL, NULL);
    ag_mark before = ag_mark_now();
    ag_tensor *probe = ag_scalar(0.0, true);
    const double rates[] = {isnan(o->lr) ? 0.01 : o->lr, isnan(o->lr) ? 0.1 : o->lr};
    bool ok = true;
    for (int k = 0; k < 2 && ok; k++) {
        ag_optimizer *opt = make_optimizer(o, AG_PARAMS(probe), rates[k]);
        ok = opt != NULL;
        ag_optimizer_free(opt);
    }
    ag_release(before);
    ag_set_error_handler(previous, NULL);
    if (!ok) {
        fprintf(stderr, "%s: %s (try --help)\n", argv[0], ag_last_error());
        ag_clear_error();
        return 2;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------ */
/* What each cell records, and its lines                                                 */

/* w and the loss after every epoch (stb_ds arrays), f(5) before and after training. */
typedef struct record {
    double *w, *loss;
    double before, after;
} record;

static bool quiet; /* --json: the cells print nothing */

/* print(f"..."): a cell's line, unless --json. */
static void say(const char *fmt, ...)
{
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* The end of an epoch: w and the loss l kept in r, and the cell's line when it prints this
 * epoch, print(f"epoch {epoch+1}: w = {w:.3f}, loss = {l:.8f}") followed by tail (cell 4's
 * line ends in ", "). */
static void end_epoch(record *r, int epoch, bool printed, double w, double l, const char *tail)
{
    arrput(r->w, w);
    arrput(r->loss, l);
    if (printed) say("epoch %d: w = %.3f, loss = %.8f%s\n", epoch + 1, w, l, tail);
}

/* The learning rate and n_iters of a cell: the notebook's, unless given. */
static double rate(const options *o, double notebook) { return isnan(o->lr) ? notebook : o->lr; }
static int iterations(const options *o, int notebook)
{
    return o->epochs == UINT64_MAX ? notebook : (int)o->epochs;
}

/* ------------------------------------------------------------------------------------ */
/* In [1]: doing everything manually. numpy's float32 arrays are C float arrays, its
 * element-wise operations loops, its sums (np.dot, .mean()) float sums in index order, as
 * numpy computes them for four elements.
 *
 * w is a float too: the notebook was printed by NumPy 2, whose promotion rules (NEP 50)
 * keep `w -= learning_rate * dw` in float32 (a Python float meeting a float32 becomes a
 * float32). NumPy 1 makes w a float64 from the first update and prints other last digits:
 * epoch 2's loss is 4.79999924 there where the notebook has 4.80000067, epoch 6's
 * 0.00314570 for 0.00314574. With float w, C prints the notebook's lines exactly. */

#define N 4                                /* len(X) */
static float w_np;                         /* w = 0.0 */
static const float X_np[N] = {1, 2, 3, 4}; /* X = np.array([1, 2, 3, 4], dtype=np.float32) */
static const float Y_np[N] = {2, 4, 6, 8}; /* Y = np.array([2, 4, 6, 8], dtype=np.float32) */

/* def forward(x): return w * x */
static void forward_np(const float *x, float *y_pred)
{
    for (int i = 0; i < N; i++) y_pred[i] = w_np * x[i];
}

/* def loss(y, y_pred): return ((y_pred - y) ** 2).mean() */
static float loss_np(const float *y, const float *y_pred)
{
    float sum = 0;
    for (int i = 0; i < N; i++) {
        float d = y_pred[i] - y[i];
        sum += d * d;
    }
    return sum / N;
}

/* # MSE = 1/N * (w*x - y) ** 2
 * # gradient: dj/dw = 1/n * 2 * (w*x-y) * x = mean * 2 * (y_pred-y) * x
 * def gradient(x, y, y_pred): return np.dot(2 * x, y_pred - y).mean()
 * np.dot already sums, and .mean() of its one number is that number: the notebook's
 * gradient is N times the comment's (so its lr 0.01 moves w as fast as 0.04 would). */
static float gradient_np(const float *x, const float *y, const float *y_pred)
{
    float dot = 0;
    for (int i = 0; i < N; i++) dot += (2 * x[i]) * (y_pred[i] - y[i]);
    return dot;
}

static void cell1(const options *o, record *r)
{
    w_np = 0.0f;
    r->before = w_np * 5.0f;
    say("Prediction before training: f(5) = %.3f\n", r->before);

    /* training */
    const float learning_rate = (float)rate(o, 0.01); /* a float32 where it meets dw */
    const int n_iters = iterations(o, 20);

    for (int epoch = 0; epoch < n_iters; epoch++) {
        float y_pred[N];
        forward_np(X_np, y_pred);                   /* y_pred = forward(X) */
        float l = loss_np(Y_np, y_pred);            /* l = loss(Y, y_pred) */
        float dw = gradient_np(X_np, Y_np, y_pred); /* dw = gradient(X, Y, y_pred) */
        w_np -= learning_rate * dw;                 /* w -= learning_rate * dw */
        /* if epoch % 1 == 0: print(f"epoch {epoch+1}: w = {w:.3f}, loss = {l:.8f}") */
        end_epoch(r, epoch, epoch % 1 == 0, w_np, l, "");
    }
    r->after = w_np * 5.0f;
    say("Prediction after training: f(5) = %.3f\n", r->after);
}

/* ------------------------------------------------------------------------------------ */
/* In [2]: autograd computes the gradient, the rest by hand. In [3] uses the same w and
 * forward. */

static ag_tensor *w; /* w = torch.tensor(0.0, requires_grad=True, dtype=torch.float32) */

/* def forward(x): return w * x */
static ag_tensor *forward(const ag_tensor *x) { return ag_mul(w, x); }
static double forward5(void) { return ag_item(ag_mul(w, 5)); } /* forward(5) */

/* def loss(y, y_pred): return ((y_pred - y) ** 2).mean() */
static ag_tensor *loss(const ag_tensor *y, const ag_tensor *y_pred)
{
    return ag_mean(ag_pow(ag_sub(y_pred, y), 2));
}

static void cell2(const options *o, record *r)
{
    ag_mark cell = ag_mark_now(); /* X, Y and w live until the end of the cell */
    /* X = torch.tensor([1, 2, 3, 4], dtype=torch.float32) */
    ag_tensor *X = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(4));
    /* Y = torch.tensor([2, 4, 6, 8], dtype=torch.float32) */
    ag_tensor *Y = ag_tensor_from((const float[]){2, 4, 6, 8}, AG_SHAPE(4));
    w = ag_scalar(0.0, .requires_grad = true);

    r->before = forward5();
    say("Prediction before training: f(5) = %.3f\n", r->before);

    /* training */
    const double learning_rate = rate(o, 0.01);
    const int n_iters = iterations(o, 100);

    ag_mark start = ag_mark_now(); /* what an epoch makes is released at its end */
    for (int epoch = 0; epoch < n_iters; epoch++) {
        ag_tensor *y_pred = forward(X); /* y_pred = forward(X) */
        ag_tensor *l = loss(Y, y_pred); /* l = loss(Y, y_pred) */
        ag_backward(l);                 /* l.backward() */
        AG_NO_GRAD                      /* with torch.no_grad(): */
        {
            ag_sub_(w, ag_mul(learning_rate, w->grad)); /* w -= learning_rate * w.grad */
        }
        ag_zero_(w->grad); /* w.grad.zero_() */

        /* if epoch % 10 == 0: print(f"epoch {epoch+1}: w = {w:.3f}, loss = {l:.8f}") */
        end_epoch(r, epoch, epoch % 10 == 0, w->data[0], ag_item(l), "");
        ag_release(start);
    }
    r->after = forward5();
    say("Prediction after training: f(5) = %.3f\n", r->after);
    ag_release(cell);
}

/* ------------------------------------------------------------------------------------ */
/* In [3]: only the prediction by hand; nn.MSELoss and the optimizer from agrad. */

static void cell3(const options *o, record *r)
{
    ag_mark cell = ag_mark_now();
    ag_tensor *X = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(4));
    ag_tensor *Y = ag_tensor_from((const float[]){2, 4, 6, 8}, AG_SHAPE(4));
    w = ag_scalar(0.0, .requires_grad = true);

    r->before = forward5();
    say("Prediction before training: f(5) = %.3f\n", r->before);

    /* training */
    const double learning_rate = rate(o, 0.01);
    const int n_iters = iterations(o, 100);

    ag_criterion loss = ag_MSELoss(); /* loss = nn.MSELoss() */
    /* optimizer = torch.optim.SGD([w], lr=learning_rate), or --optimizer's */
    ag_optimizer *optimizer = make_optimizer(o, AG_PARAMS(w), learning_rate);

    ag_mark start = ag_mark_now();
    for (int epoch = 0; epoch < n_iters; epoch++) {
        ag_tensor *y_pred = forward(X); /* y_pred = forward(X) */
        /* l = loss(Y, y_pred): the notebook gives Y as the input and y_pred as the target.
         * The squares are the same, and MSELoss gives its target a gradient as PyTorch's
         * does, so w learns all the same. */
        ag_tensor *l = ag_loss(loss, Y, y_pred);
        ag_backward(l);          /* l.backward() */
        ag_step(optimizer);      /* optimizer.step() */
        ag_zero_grad(optimizer); /* optimizer.zero_grad() */

        /* if epoch % 10 == 0: print(f"epoch {epoch+1}: w = {w:.3f}, loss = {l:.8f}") */
        end_epoch(r, epoch, epoch % 10 == 0, w->data[0], ag_item(l), "");
        ag_release(start);
    }
    r->after = forward5();
    say("Prediction after training: f(5) = %.3f\n", r->after);
    ag_optimizer_free(optimizer);
    ag_release(cell);
}

/* ------------------------------------------------------------------------------------ */
/* In [4]: everything from the library: the model, the loss, the optimizer. */

/* how to define/create your own model:
 * class LinearRegression(nn.Module):
 *     def __init__(self, input_dim, output_dim):
 *         super(LinearRegression, self).__init__()
 *         self.lin = nn.Linear(input_dim, output_dim)
 *     def forward(self, x):
 *         return self.lin(x)
 * The notebook defines it and goes on with nn.Linear; --custom uses it, which gives the same
 * numbers: its one Linear draws its weight and bias from the generator as nn.Linear does. */
typedef struct LinearRegression {
    ag_module base; /* first: the nn.Module part */
    ag_module *lin;
} LinearRegression;

static ag_tensor *LinearRegression_forward(ag_module *self, const ag_tensor *x)
{
    LinearRegression *m = (LinearRegression *)self;
    return ag_forward(m->lin, x); /* return self.lin(x) */
}

static ag_module *LinearRegression_new(int64_t input_dim, int64_t output_dim)
{
    LinearRegression *self = AG_MODULE_NEW(LinearRegression, LinearRegression_forward);
    self->lin = ag_add_module(self, "lin", ag_Linear(input_dim, output_dim));
    return &self->base;
}

static void cell4(const options *o, record *r)
{
    ag_mark cell = ag_mark_now();
    /* X = torch.tensor([[1], [2], [3], [4]], dtype=torch.float32) */
    ag_tensor *X = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(4, 1));
    /* Y = torch.tensor([[2], [4], [6], [8]], dtype=torch.float32) */
    ag_tensor *Y = ag_tensor_from((const float[]){2, 4, 6, 8}, AG_SHAPE(4, 1));
    /* X_test = torch.tensor([5], dtype=torch.float32) */
    ag_tensor *X_test = ag_tensor_from((const float[]){5}, AG_SHAPE(1));
    int64_t n_features = X->shape[1]; /* n_samples, n_features = X.shape */

    int64_t input_size = n_features;
    int64_t output_size = n_features;

    /* The notebook draws nn.Linear from an unseeded generator: here
     * torch.manual_seed(--seed), 0 unless given. */
    ag_manual_seed(o->seed);
    /* model = nn.Linear(input_size, output_size), or LinearRegression(...) with --custom */
    ag_module *model = o->custom ? LinearRegression_new(input_size, output_size)
                                 : ag_Linear(input_size, output_size);

    r->before = ag_item(ag_forward(model, X_test));
    say("Prediction before training: f(5) = %.3f\n", r->before);

    /* training */
    const double learning_rate = rate(o, 0.1);
    const int n_iters = iterations(o, 100);

    ag_criterion loss = ag_MSELoss(); /* loss = nn.MSELoss() */
    /* optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate), or --optimizer's */
    ag_optimizer *optimizer = make_optimizer(o, ag_parameters(model), learning_rate);

    ag_mark start = ag_mark_now();
    for (int epoch = 0; epoch < n_iters; epoch++) {
        ag_tensor *y_pred = ag_forward(model, X); /* y_pred = model(X) */
        ag_tensor *l = ag_loss(loss, Y, y_pred);  /* l = loss(Y, y_pred) */
        ag_backward(l);                           /* l.backward() */
        ag_step(optimizer);                       /* optimizer.step() */
        ag_zero_grad(optimizer);                  /* optimizer.zero_grad() */

        ag_tensor *w = ag_parameters(model).tensors[0]; /* [w, b] = model.parameters() */
        double w00 = ag_get(w, AG_SHAPE(0, 0));         /* w[0][0].item() */
        /* if epoch % 10 == 0: print(f"epoch {epoch+1}: w = {w[0][0].item():.3f}, loss = {l:.8f}, ")
         */
        end_epoch(r, epoch, epoch % 10 == 0, w00, ag_item(l), ", ");
        ag_release(start);
    }
    r->after = ag_item(ag_forward(model, X_test));
    say("Prediction after training: f(5) = %.3f\n", r->after);
    ag_optimizer_free(optimizer);
    ag_module_free(model);
    ag_release(cell);
}

/* ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    options o;
    int status = parse_options(argc, argv, &o);
    if (status >= 0) {
        ag_shutdown();
        return status;
    }
    quiet = o.json;

    void (*const cells[4])(const options *, record *) = {cell1, cell2, cell3, cell4};
    record records[4] = {0};
    for (int c = 0; c < 4; c++) {
        if (c > 0) say("\n");
        cells[c](&o, &records[c]);
    }

    if (o.json) {
        printf("{\"cells\": [");
        for (int c = 0; c < 4; c++) {
            printf(c ? ", {" : "{");
            json_doubles("w", records[c].w, arrlen(records[c].w));
            printf(", ");
            json_doubles("loss", records[c].loss, arrlen(records[c].loss));
            printf(", ");
            json_number("before", records[c].before);
            printf(", ");
            json_number("after", records[c].after);
            printf("}");
        }
        printf("]}\n");
    }
    for (int c = 0; c < 4; c++) {
        arrfree(records[c].w);
        arrfree(records[c].loss);
    }
    ag_shutdown();
    return 0;
}
