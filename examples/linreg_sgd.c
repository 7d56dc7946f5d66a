/* Linear regression 1D: Training Two Parameter Stochastic Gradient Descent (DATAIDEA's
 * PyTorch notes by Juma Shafara, after IBM's course), cell by cell: batch gradient descent,
 * stochastic gradient descent sample by sample, SGD through the lab's Data class and a
 * DataLoader, and the practice run through the same loader.
 *
 *   linreg_sgd [--seed N] [--lr F] [--w F] [--b F] [--epochs N] [--batch-size N]
 *              [--shuffle] [--practice-w F] [--practice-b F] [--json] [--plots DIR]
 *
 * Prints what the notebook prints (the dataset's length, its first point and first three
 * points), then the four loss lists, epoch by epoch, and the loader run's w and b; with
 * --json, one JSON object with the lab's names: LOSS_BGD, LOSS_SGD, LOSS_Loader, LOSS, w
 * and b (of the loader run), X, Y. With --plots DIR, draws what the lab draws into DIR
 * (plot.h): the loss surface and its contour, the data space and the parameter path where
 * the lab calls plot_ps, and the loss curves. */
#include "example.h"
#include "plot.h"

#include <agrad_data.h>

#include <stb_ds.h>

static ag_tensor *w, *b, *X, *Y;
static double lr = 0.1;
/* The lab's lists, stb_ds arrays. */
static double *LOSS_BGD, *LOSS_SGD, *LOSS_Loader, *LOSS;
/* The lab's get_surface, made for each run; NULL without --plots (plot.h's calls then do
 * nothing). */
static plot_error_surfaces *get_surface;

/* get_surface.set_para_loss(w.data.tolist(), b.data.tolist(), loss.tolist()) */
static void set_para_loss(const ag_tensor *loss)
{
    if (get_surface) plot_set_para_loss(get_surface, ag_item(w), ag_item(b), ag_item(loss));
}

/* ------------------------------------------------------------------------------------ */
/* Create the Model and Cost Function (Total Loss)                                       */

/* def forward(x): return w * x + b */
static ag_tensor *forward(const ag_tensor *x) { return ag_add(ag_mul(w, x), b); }

/* def criterion(yhat, y): return torch.mean((yhat - y) ** 2) */
static ag_tensor *criterion(const ag_tensor *yhat, const ag_tensor *y)
{
    return ag_mean(ag_pow(ag_sub(yhat, y), 2));
}

/* ------------------------------------------------------------------------------------ */
/* Train the Model: Batch Gradient Descent                                               */

/* def train_model(iter): */
static void train_model(int iter)
{
    ag_mark graph = ag_mark_now(); /* what follows is one iteration's graph */
    for (int epoch = 0; epoch < iter; epoch++) {
        ag_tensor *Yhat = forward(X);         /* Yhat = forward(X) */
        ag_tensor *loss = criterion(Yhat, Y); /* loss = criterion(Yhat, Y) */
        /* Section for plotting: the parameters and the loss before this iteration's update,
         * then the data space and the path so far. */
        set_para_loss(loss);
        plot_ps(get_surface);
        /* LOSS_BGD.append(loss), and later LOSS_BGD_ = [loss.item() for loss in LOSS_BGD]:
         * the lab keeps the tensors (and their graphs); C keeps the number and frees the
         * graph at the end of the iteration. */
        arrput(LOSS_BGD, ag_item(loss));
        ag_backward(loss); /* loss.backward() */
        /* w.data = w.data - lr * w.grad.data
         * b.data = b.data - lr * b.grad.data */
        ag_set_data(w, ag_sub(ag_data(w), ag_mul(lr, ag_data(w->grad))));
        ag_set_data(b, ag_sub(ag_data(b), ag_mul(lr, ag_data(b->grad))));
        /* w.grad.data.zero_()
         * b.grad.data.zero_() */
        ag_zero_(ag_data(w->grad));
        ag_zero_(ag_data(b->grad));
        ag_release(graph);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Train the Model: Stochastic Gradient Descent                                          */

/* def train_model_SGD(iter): */
static void train_model_SGD(int iter)
{
    ag_mark graph = ag_mark_now();
    for (int epoch = 0; epoch < iter; epoch++) {
        /* SGD approximates the true total loss; the lab stores the true one, over all the
         * data, once per epoch and before the epoch's updates:
         *     Yhat = forward(X)
         *     LOSS_SGD.append(criterion(Yhat, Y).tolist()) */
        ag_tensor *Yhat = forward(X);
        arrput(LOSS_SGD, ag_item(criterion(Yhat, Y)));
        ag_release(graph);
        /* for x, y in zip(X, Y): x and y are rows of X and Y, of shape [1] */
        for (int64_t i = 0; i < ag_len(X); i++) {
            ag_tensor *x = ag_select(X, 0, i), *y = ag_select(Y, 0, i);
            ag_tensor *yhat = forward(x);         /* yhat = forward(x) */
            ag_tensor *loss = criterion(yhat, y); /* loss = criterion(yhat, y) */
            set_para_loss(loss);                  /* Section for plotting */
            ag_backward(loss);                    /* loss.backward() */
            /* w.data = w.data - lr * w.grad.data
             * b.data = b.data - lr * b.grad.data */
            ag_set_data(w, ag_sub(ag_data(w), ag_mul(lr, ag_data(w->grad))));
            ag_set_data(b, ag_sub(ag_data(b), ag_mul(lr, ag_data(b->grad))));
            /* w.grad.data.zero_()
             * b.grad.data.zero_() */
            ag_zero_(ag_data(w->grad));
            ag_zero_(ag_data(b->grad));
            ag_release(graph);
        }
        plot_ps(get_surface); /* plot surface and data space after each epoch */
    }
}

/* ------------------------------------------------------------------------------------ */
/* SGD with Dataset DataLoader                                                           */

/* class Data(Dataset): a struct that begins with the dataset part, then the fields the
 * constructor sets. */
typedef struct Data {
    ag_dataset base;
    ag_tensor *x, *y;
    int64_t len;
} Data;

/* def __len__(self): return self.len */
static int64_t Data_len(ag_dataset *self) { return ((Data *)self)->len; }

/* def __getitem__(self, index): return self.x[index], self.y[index] */
static bool Data_getitem(ag_dataset *self, int64_t index, ag_tensor **items)
{
    Data *d = (Data *)self;
    items[0] = ag_select(d->x, 0, index);
    items[1] = ag_select(d->y, 0, index);
    return items[0] && items[1];
}

/* def __init__(self): the noise-free line, exactly as the lab builds it (its Y, with
 * noise, is used only for the total loss). */
static void Data_init(Data *self)
{
    *self = (Data){.base = AG_DATASET(2, Data_len, Data_getitem)};
    /* self.x = torch.arange(-3, 3, 0.1).view(-1, 1) */
    self->x = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    self->y = ag_sub(ag_mul(1, self->x), 1); /* self.y = 1 * self.x - 1 */
    self->len = self->x->shape[0];           /* self.len = self.x.shape[0] */
}

/* def train_model_DataLoader(epochs), with the loader the lab reads as a global, and the
 * list it appends to (LOSS_Loader, or LOSS for the practice). */
static void train_model_DataLoader(ag_loader *trainloader, int epochs, double **losses)
{
    ag_mark graph = ag_mark_now();
    for (int epoch = 0; epoch < epochs; epoch++) {
        /* Yhat = forward(X)
         * LOSS_Loader.append(criterion(Yhat, Y).tolist()) */
        ag_tensor *Yhat = forward(X);
        arrput(*losses, ag_item(criterion(Yhat, Y)));
        ag_release(graph);
        ag_tensor *x, *y;
        while (ag_next(trainloader, &x, &y)) {    /* for x, y in trainloader: */
            ag_tensor *yhat = forward(x);         /* yhat = forward(x) */
            ag_tensor *loss = criterion(yhat, y); /* loss = criterion(yhat, y) */
            set_para_loss(loss);                  /* Section for plotting */
            ag_backward(loss);                    /* loss.backward() */
            /* w.data = w.data - lr * w.grad.data
             * b.data = b.data - lr * b.grad.data */
            ag_set_data(w, ag_sub(ag_data(w), ag_mul(lr, ag_data(w->grad))));
            ag_set_data(b, ag_sub(ag_data(b), ag_mul(lr, ag_data(b->grad))));
            /* w.grad.data.zero_()
             * b.grad.data.zero_() */
            ag_zero_(ag_data(w->grad));
            ag_zero_(ag_data(b->grad));
            ag_release(graph); /* frees the batch and its graph */
        }
        plot_ps(get_surface); /* plot surface and data space after each epoch */
    }
}

/* ------------------------------------------------------------------------------------ */
/* Options and output                                                                    */

typedef struct options {
    uint64_t seed, epochs, batch_size;
    double w, b, practice_w, practice_b;
    bool shuffle, json;
    const char *plots; /* --plots DIR, or NULL */
} options;

static const char usage_text[] =
    "usage: %s [--seed N] [--lr F] [--w F] [--b F] [--epochs N] [--batch-size N] [--shuffle]\n"
    "          [--practice-w F] [--practice-b F] [--json] [--plots DIR]\n"
    "The lab \"Linear regression 1D: Training Two Parameter Stochastic Gradient Descent\":\n"
    "batch gradient descent, SGD sample by sample and SGD through a DataLoader, each from\n"
    "(--w, --b) for --epochs epochs at --lr; then the practice run through the same loader\n"
    "from (--practice-w, --practice-b), 10 epochs at --lr.\n"
    "  --seed N          torch.manual_seed(N) before the data is made (default 1)\n"
    "  --lr F            learning rate, > 0 (default 0.1)\n"
    "  --w F, --b F      the main runs' starting w and b (default -15, -10)\n"
    "  --epochs N        the main runs' epochs, 0..10000000 (default 10)\n"
    "  --batch-size N    the DataLoader's batch_size, >= 1 (default 1)\n"
    "  --shuffle         the DataLoader's shuffle=True (default off)\n"
    "  --practice-w F, --practice-b F   the practice's starting w and b (default -12, -10)\n"
    "  --json            print LOSS_BGD, LOSS_SGD, LOSS_Loader, LOSS, w, b, X, Y as JSON\n"
    "  --plots DIR       draw the lab's pictures into DIR, as PNG and SVG (default: none)\n";

/* Parses the options into o (and lr). Returns -1 to go on, or the exit status: 0 after
 * --help, 2 after a bad option or value (with a message saying which and why). */
static int parse_options(int argc, char **argv, options *o)
{
    const option table[] = {
        {"--seed", OPT_WHOLE, .target = &o->seed, .needs = "a whole number from 0 to 2^64 - 1",
         .hi = UINT64_MAX},
        {"--lr", OPT_NUMBER, .target = &lr, .needs = "a finite number > 0", .positive = true},
        {"--w", OPT_NUMBER, .target = &o->w, .needs = "a finite number"},
        {"--b", OPT_NUMBER, .target = &o->b, .needs = "a finite number"},
        {"--epochs", OPT_WHOLE, .target = &o->epochs, .needs = "a whole number from 0 to 10^7",
         .hi = 10000000},
        {"--batch-size", OPT_WHOLE, .target = &o->batch_size,
         .needs = "a whole number from 1 to 10^9", .lo = 1, .hi = 1000000000},
        {"--shuffle", OPT_FLAG, .target = &o->shuffle},
        {"--practice-w", OPT_NUMBER, .target = &o->practice_w, .needs = "a finite number"},
        {"--practice-b", OPT_NUMBER, .target = &o->practice_b, .needs = "a finite number"},
        {"--json", OPT_FLAG, .target = &o->json},
        {"--plots", OPT_STRING, .target = &o->plots, .needs = "a directory"},
    };
    return parse_args(argc, argv, table, N_OPTIONS(table), usage_text);
}

/* One cell of the loss table: the list's value at epoch i, or blanks past its end. */
static void table_cell(const double *list, ptrdiff_t i)
{
    if (i < arrlen(list))
        printf("  %14.6f", list[i]);
    else
        printf("  %14s", "");
}

/* print(a, x, ...) prints its arguments separated by spaces, x as repr(x) shows it. */
static void print_point(const char *format, const ag_tensor *x, const ag_tensor *y)
{
    char *sx = ag_repr(x), *sy = y ? ag_repr(y) : NULL;
    printf(format, sx, sy);
    ag_free(sx);
    ag_free(sy);
}

/* get_surface = plot_error_surfaces(15, 13, X, Y, 30, go = ...), NULL without --plots:
 * the previous run's get_surface gets its final picture (final_plot: the surface and the
 * contour with the whole path, which the lab's class has and this lab does not call),
 * and is freed. NULL name: only the previous one is finished. */
static void new_surface(const char *dir, const char *name, bool go)
{
    plot_final(get_surface);
    plot_error_surfaces_free(get_surface);
    get_surface =
        name ? plot_error_surfaces_new(dir, name, 15, 13, X->data, Y->data, X->numel, 30, go)
             : NULL;
}

/* The lab's loss plots: plt.plot(LOSS_BGD_, label = "Batch Gradient Descent") ...
 * plt.xlabel('epoch'), plt.ylabel('Cost/ total loss'), plt.legend(); then the three
 * together, and the practice's (its solution's xlabel is 'iteration'). */
static void plot_losses(const char *dir, int epochs)
{
    const plot_series bgd = {"Batch Gradient Descent", LOSS_BGD, epochs},
                      sgd = {"Stochastic Gradient Descent", LOSS_SGD, epochs},
                      loader = {"Stochastic Gradient Descent with DataLoader", LOSS_Loader, epochs},
                      practice = {"Stochastic Gradient Descent", LOSS, (int)arrlen(LOSS)};
    if (epochs > 0) {
        plot_lines(dir, "loss_bgd_sgd", "Batch vs stochastic gradient descent", "epoch",
                   "Cost/ total loss", 2, (plot_series[]){bgd, sgd});
        plot_lines(dir, "loss_bgd_loader", "Batch gradient descent vs SGD with DataLoader", "epoch",
                   "Cost/ total loss", 2, (plot_series[]){bgd, loader});
        plot_lines(dir, "loss_all", "Batch vs stochastic vs DataLoader", "epoch",
                   "Cost/ total loss", 3, (plot_series[]){bgd, sgd, loader});
    }
    plot_lines(dir, "loss_practice", "Practice: SGD with trainloader", "iteration",
               "Cost/ total loss", 1, &practice);
}

int main(int argc, char **argv)
{
    options o = {.seed = 1,
                 .w = -15,
                 .b = -10,
                 .epochs = 10,
                 .batch_size = 1,
                 .practice_w = -12,
                 .practice_b = -10};
    int status = parse_options(argc, argv, &o);
    if (status >= 0) return status;
    if (!plot_setup(argv[0], &o.plots)) return 2;
    int epochs = (int)o.epochs;

    /* Make Some Data */
    /* torch.manual_seed(1) */
    ag_manual_seed(o.seed);
    /* X = torch.arange(-3, 3, 0.1).view(-1, 1) */
    X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    /* f = 1 * X - 1 */
    ag_tensor *f = ag_sub(ag_mul(1, X), 1);
    /* Y = f + 0.1 * torch.randn(X.size()) */
    Y = ag_add(f, ag_mul(0.1, ag_randn(ag_size(X))));

    /* get_surface = plot_error_surfaces(15, 13, X, Y, 30) */
    new_surface(o.plots, "bgd", true);

    /* Train the Model: Batch Gradient Descent */
    w = ag_scalar(o.w, true); /* w = torch.tensor(-15.0, requires_grad = True) */
    b = ag_scalar(o.b, true); /* b = torch.tensor(-10.0, requires_grad = True) */
    train_model(epochs);      /* train_model(10) */

    /* Train the Model: Stochastic Gradient Descent
     * get_surface = plot_error_surfaces(15, 13, X, Y, 30, go = False) */
    new_surface(o.plots, "sgd", false);
    w = ag_scalar(o.w, true);
    b = ag_scalar(o.b, true);
    train_model_SGD(epochs); /* train_model_SGD(10) */

    /* SGD with Dataset DataLoader */
    Data dataset;
    Data_init(&dataset); /* dataset = Data() */
    if (!o.json) {
        printf("The length of dataset:  %lld\n", (long long)ag_dataset_len(&dataset));
        ag_tensor *x, *y;
        ag_dataset_get(&dataset, 0, &x, &y);          /* x, y = dataset[0] */
        print_point("( %s ,  %s )\n", x, y);          /* print("(", x, ", ", y, ")") */
        ag_dataset_slice(&dataset, 0, 3, &x, &y);     /* x, y = dataset[0:3] */
        print_point("The first 3 x:  %s\n", x, NULL); /* print("The first 3 x: ", x) */
        print_point("The first 3 y:  %s\n", y, NULL);
    }
    /* get_surface = plot_error_surfaces(15, 13, X, Y, 30, go = False) */
    new_surface(o.plots, "loader", false);
    /* trainloader = DataLoader(dataset = dataset, batch_size = 1) */
    ag_loader *trainloader =
        ag_DataLoader(&dataset, .batch_size = (int64_t)o.batch_size, .shuffle = o.shuffle);
    w = ag_scalar(o.w, true);
    b = ag_scalar(o.b, true);
    train_model_DataLoader(trainloader, epochs, &LOSS_Loader); /* train_model_DataLoader(10) */
    double w_loader = ag_item(w), b_loader = ag_item(b);

    /* Practice: use SGD with trainloader to train the model and store the total loss in
     * LOSS. The lab's hidden solution stores criterion(Yhat, X), the loss against X, which
     * is a slip: the total loss is against Y, as the practice asks and as here. The
     * solution also goes on drawing on the loader run's get_surface; its pictures here have
     * their own, so that each shows one path. */
    new_surface(o.plots, "practice", false);
    w = ag_scalar(o.practice_w, true); /* w = torch.tensor(-12.0, requires_grad = True) */
    b = ag_scalar(o.practice_b, true); /* b = torch.tensor(-10.0, requires_grad = True) */
    train_model_DataLoader(trainloader, 10, &LOSS); /* my_train_model(10) */

    new_surface(NULL, NULL, false); /* the practice's final picture */
    if (o.plots) plot_losses(o.plots, epochs);

    if (o.json) {
        printf("{");
        json_doubles("LOSS_BGD", LOSS_BGD, arrlen(LOSS_BGD));
        printf(", ");
        json_doubles("LOSS_SGD", LOSS_SGD, arrlen(LOSS_SGD));
        printf(", ");
        json_doubles("LOSS_Loader", LOSS_Loader, arrlen(LOSS_Loader));
        printf(", ");
        json_doubles("LOSS", LOSS, arrlen(LOSS));
        printf(", ");
        json_number("w", w_loader);
        printf(", ");
        json_number("b", b_loader);
        printf(", ");
        json_tensor("X", X);
        printf(", ");
        json_tensor("Y", Y);
        printf("}\n");
    } else {
        printf("\nepoch  %14s  %14s  %14s  %14s\n", "LOSS_BGD", "LOSS_SGD", "LOSS_Loader", "LOSS");
        ptrdiff_t rows = arrlen(LOSS) > epochs ? arrlen(LOSS) : epochs;
        for (ptrdiff_t i = 0; i < rows; i++) {
            printf("%5td", i + 1);
            table_cell(LOSS_BGD, i);
            table_cell(LOSS_SGD, i);
            table_cell(LOSS_Loader, i);
            table_cell(LOSS, i);
            printf("\n");
        }
        printf("DataLoader run: w = %.6f, b = %.6f\n", w_loader, b_loader);
        if (o.plots) printf("pictures: %s/*.png and *.svg\n", o.plots);
    }
    ag_loader_free(trainloader);
    arrfree(LOSS_BGD);
    arrfree(LOSS_SGD);
    arrfree(LOSS_Loader);
    arrfree(LOSS);
    ag_shutdown();
    return plot_failed() ? 1 : 0;
}
