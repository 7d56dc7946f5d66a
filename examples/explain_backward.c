/* How backward() works, on one small graph: a lesson to hand out.
 *
 * The two-parameter lab fits a line yhat = w * x + b to points (x, y) by the mean squared
 * error. For three points this program builds
 *
 *     loss = mean((w * x + b - y)^2)
 *
 * naming every tensor, prints the backward pass as agrad runs it (ag_set_trace: each node,
 * the gradient arriving, the local rule, what each input receives), writes the graph as a
 * picture (--out DIR: graph.dot, and graph.svg and graph.png when agrad renders with
 * Graphviz), and checks each gradient against the formula derived by hand:
 *
 *     r_i = w x_i + b - y_i              (the residuals)
 *     loss = (1/n) sum_i r_i^2
 *     d loss / d w = (2/n) sum_i r_i x_i
 *     d loss / d b = (2/n) sum_i r_i
 *
 * printing "ok" or "MISMATCH" for each. Exit status: 0 when both agree, 1 when one does
 * not, 2 for a bad option.
 *
 *     ./build/examples/explain_backward --out pictures
 */
#include "example.h"

#include <sys/stat.h>

static const char usage_text[] =
    "usage: %s [--w F] [--b F] [--out DIR]\n"
    "  builds loss = mean((w*x + b - y)^2) for x = [-1, 0, 1], y = [-2, -1, 0],\n"
    "  prints its backward pass, checks the gradients against the hand-derived ones\n"
    "  --w F, --b F   the parameters' values (default -15 and -10, the lab's start)\n"
    "  --out DIR      write the graph there: graph.dot, and graph.svg and graph.png when\n"
    "                 agrad renders with Graphviz (DIR is made if missing)\n";

enum { N = 3 };
static const float xs[N] = {-1, 0, 1}, ys[N] = {-2, -1, 0}; /* y = x - 1, the lab's line */

/* Prints one gradient's check: "ok" when agrad's and the formula's agree to float
 * rounding. */
static bool check(const char *what, double autograd, double by_hand)
{
    bool ok = fabs(autograd - by_hand) <= 1e-5 * fmax(1.0, fabs(by_hand));
    printf("%-9s %-14s autograd %-12.7g by hand %.7g\n", ok ? "ok" : "MISMATCH", what, autograd,
           by_hand);
    return ok;
}

/* Writes the graph of loss into dir: graph.dot, then the pictures if agrad can render. */
static bool write_graph(const ag_tensor *loss, const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "explain_backward: cannot make %s: %s\n", dir, strerror(errno));
        return false;
    }
    const char *files[] = {"graph.dot", "graph.svg", "graph.png"};
    int n = ag_graph_rendering() ? 3 : 1;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!ag_graph_save(loss, path)) return false;
        printf("wrote %s\n", path);
    }
    if (n == 1) printf("(agrad was built without Graphviz: render graph.dot with `dot -Tpng`)\n");
    return true;
}

int main(int argc, char **argv)
{
    double w0 = -15, b0 = -10;
    const char *out = NULL;
    const option options[] = {
        {"--w", OPT_NUMBER, .target = &w0, .needs = "a finite number"},
        {"--b", OPT_NUMBER, .target = &b0, .needs = "a finite number"},
        {"--out", OPT_STRING, .target = &out, .needs = "a directory"},
    };
    int status = parse_args(argc, argv, options, N_OPTIONS(options), usage_text);
    if (status >= 0) return status;

    /* The data and the parameters. Names show in the trace, the picture and messages. */
    ag_tensor *x = ag_set_name(ag_tensor_from(xs, AG_SHAPE(N)), "x");
    ag_tensor *y = ag_set_name(ag_tensor_from(ys, AG_SHAPE(N)), "y");
    ag_tensor *w = ag_set_name(ag_scalar(w0, true), "w");
    ag_tensor *b = ag_set_name(ag_scalar(b0, true), "b");

    /* Forward: five ops, each recorded as a node of the graph. The trace, on from here, also
     * notes the line that recorded each node. */
    ag_set_trace(stdout);
    ag_tensor *wx = ag_set_name(ag_mul(w, x), "wx");      /* MulBackward0 */
    ag_tensor *yhat = ag_set_name(ag_add(wx, b), "yhat"); /* AddBackward0 */
    ag_tensor *err = ag_set_name(ag_sub(yhat, y), "err"); /* SubBackward0 */
    ag_tensor *sq = ag_set_name(ag_pow(err, 2), "sq");    /* PowBackward0 */
    ag_tensor *loss = ag_set_name(ag_mean(sq), "loss");   /* MeanBackward0 */

    /* Backward, printed as it runs: the newest node first, each one's gradient complete
     * when its turn comes. */
    printf("loss = mean((w*x + b - y)^2) = %.7g for w = %g, b = %g\n\n", ag_item(loss), w0, b0);
    ag_backward(loss);
    ag_set_trace(NULL);

    /* The same gradients by hand. */
    double dw = 0, db = 0;
    for (int i = 0; i < N; i++) {
        double r = w0 * xs[i] + b0 - ys[i];
        dw += 2.0 / N * r * xs[i];
        db += 2.0 / N * r;
    }
    printf("\n");
    bool ok = check("dloss/dw", ag_item(w->grad), dw);
    ok = check("dloss/db", ag_item(b->grad), db) && ok;

    if (out && !write_graph(loss, out)) ok = false;
    ag_shutdown();
    return ok ? 0 : 1;
}
