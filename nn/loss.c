/* Losses: torch.nn.functional's mse_loss, l1_loss, binary_cross_entropy,
 * binary_cross_entropy_with_logits, nll_loss and cross_entropy, and the criteria
 * (nn.MSELoss() and the like) that call them.
 *
 * Each loss is one recorded op with its forward and backward side by side, in the float
 * operations and order of PyTorch 1.13's kernels (aten/src/ATen/native/Loss.cpp,
 * LossNLL.cpp and their derivatives), except two that PyTorch itself builds from other
 * ops and that agrad builds the same way, so that their grad_fn names are PyTorch's:
 * l1_loss is |input - target| then mean or sum, and cross_entropy is log_softmax then
 * nll_loss. The mean and sum of per-element losses are summed in double, as ag_mean and
 * ag_sum do (within an ulp of PyTorch's float sums); nll_loss adds its terms in PyTorch's
 * own order, exactly.
 *
 * What a backward needs besides input and target is kept in node(out)->ctx (loss_ctx): the
 * reduction, and copies of weight and pos_weight, broadcast to the input's shape (per class
 * for nll_loss), so that a later change to those tensors does not change the gradient of
 * a loss already computed. */
#include "agrad_nn.h"
#include "elementwise.h" /* ag__broadcast_shape */

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Shared                                                                                */

typedef struct loss_ctx {
    ag_reduction reduction;
    int64_t ignore_index; /* nll_loss */
    float total_weight;   /* nll_loss: the weights of the targets counted, added up */
    float *weight;        /* a copy; NULL when not given */
    float *pos_weight;    /* binary_cross_entropy_with_logits; NULL when not given */
} loss_ctx;

/* node(out)->ctx for a loss, with room for nw weights and npw positive weights; NULL after
 * an error naming the loss (out of memory). Made right after out, so that it lives as long
 * as out. */
static loss_ctx *new_ctx(const char *name, const ag_tensor *out, ag_reduction r, int64_t nw,
                         int64_t npw)
{
    loss_ctx *c = ag__ctx_alloc(sizeof *c + (size_t)(nw + npw) * sizeof(float));
    if (!c) {
        char s[AG__SHAPE_STR];
        return ag__error("%s: out of memory keeping what its backward needs (loss of shape %s)",
                         name, ag__tensor_str(s, out));
    }
    float *rest = (float *)(c + 1);
    *c = (loss_ctx){r, -100, 0.0f, nw ? rest : NULL, npw ? rest + nw : NULL};
    node(out)->ctx = c;
    return c;
}

enum { OPT_WEIGHT = 1, OPT_POS_WEIGHT = 2, OPT_IGNORE_INDEX = 4 };

/* Checks a loss's tensors and options: input and target live, the options given among
 * those the loss has (allowed), the reduction one of the three. */
static bool check_args(const char *name, const ag_loss_args *a, unsigned allowed)
{
    if (!ag__check(a->input, name, "input") || !ag__check(a->target, name, "target")) return false;
    const char *extra = a->weight && !(allowed & OPT_WEIGHT)                   ? "weight"
                        : a->pos_weight && !(allowed & OPT_POS_WEIGHT)         ? "pos_weight"
                        : a->ignore_index.set && !(allowed & OPT_IGNORE_INDEX) ? "ignore_index"
                                                                               : NULL;
    if (extra) {
        ag__error("%s: %s() got an unexpected keyword argument '%s'", name, name, extra);
        return false;
    }
    if (a->reduction != AG_MEAN && a->reduction != AG_SUM && a->reduction != AG_NONE) {
        ag__error("%s: %d is not a valid value for reduction (AG_MEAN, AG_SUM or AG_NONE)", name,
                  (int)a->reduction);
        return false;
    }
    if (a->weight && !ag__check(a->weight, name, "weight")) return false;
    if (a->pos_weight && !ag__check(a->pos_weight, name, "pos_weight")) return false;
    return true;
}

/* PyTorch refuses to record an op with an input it has no derivative for that requires
 * grad (a weight); fn is the name PyTorch gives. */
static bool refuse_grad(const char *name, const char *fn, const ag_tensor *t, const char *role)
{
    if (!t || !t->requires_grad || !ag__grad_mode()) return true;
    ag__error("%s: The function '%s' is not differentiable with respect to argument '%s'. This "
              "input cannot have requires_grad True.",
              name, fn, role);
    return false;
}

static bool same_shape(const ag_tensor *a, const ag_tensor *b)
{
    return a->ndim == b->ndim && !memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]);
}

/* "torch.Size([4, 1])", as PyTorch writes a size in its messages. */
enum { SIZE_STR = AG__SHAPE_STR + 16 };
static const char *torch_size(char buf[SIZE_STR], const ag_tensor *t)
{
    char s[AG__SHAPE_STR];
    snprintf(buf, SIZE_STR, "torch.Size(%s)", ag__shape_str(s, t->ndim, t->shape));
    return buf;
}

/* mse_loss and l1_loss compute with target broadcast to input (or the other way), and
 * warn as PyTorch does, once per call site. */
static void warn_if_broadcast(const ag_loss_args *a)
{
    if (same_shape(a->input, a->target)) return;
    char si[SIZE_STR], st[SIZE_STR];
    ag__warn_once(a->private_file, a->private_line,
                  "Using a target size (%s) that is different to the input size (%s). This will "
                  "likely lead to incorrect results due to broadcasting. Please ensure they have "
                  "the same size.",
                  torch_size(st, a->target), torch_size(si, a->input));
}

/* Checks that w broadcasts to x's shape, in PyTorch's words: the two must broadcast (a
 * and b in PyTorch's order: w first when w_first), and to x's shape, not a larger one. */
static bool fits(const char *name, const ag_tensor *x, const ag_tensor *w, bool w_first)
{
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape(name, w_first ? w : x, w_first ? x : w, &ndim, shape)) return false;
    if (ndim == x->ndim && !memcmp(shape, x->shape, (size_t)ndim * sizeof shape[0])) return true;
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    ag__error("%s: output with shape %s doesn't match the broadcast shape %s", name,
              ag__tensor_str(s1, x), ag__shape_str(s2, ndim, shape));
    return false;
}

/* dst (x->numel floats) = w broadcast to x's shape. */
static void broadcast_copy(float *dst, const ag_tensor *w, const ag_tensor *x)
{
    int64_t p[AG_MAX_DIMS], sw[AG_MAX_DIMS];
    ag__pad(x->ndim, x->shape, p);
    ag__bstrides(w, sw);
    AG__FOR_BCAST(p, sw, sw, {
        dst[io] = w->data[ia];
        AG__UNUSED(ib);
    });
}

/* The loss of reduction r over per-element losses of the given shape: that shape (none),
 * or 0-d. */
static ag_tensor *new_loss(const char *name, ag_reduction r, int ndim, const int64_t *shape)
{
    return r == AG_NONE ? ag__new(name, ndim, shape, NULL, NULL)
                        : ag__new(name, 0, NULL, NULL, NULL);
}

/* Per-element losses, stored (none) or added up in double and in lanes, as every sum
 * (mean, sum). */
typedef struct reducer {
    float *out;
    ag_reduction r;
    double acc[AG__LANES];
} reducer;
static inline void put(reducer *rd, int64_t i, float loss)
{
    if (rd->r == AG_NONE)
        rd->out[i] = loss;
    else
        rd->acc[i % AG__LANES] += loss;
}
/* The mean of no elements is nan, as in PyTorch. */
static void finish(reducer *rd, int64_t n)
{
    double total = ag__lanes_total(rd->acc);
    if (rd->r != AG_NONE) rd->out[0] = (float)(rd->r == AG_MEAN ? total / (double)n : total);
}

/* In a backward: d loss / d (element i's loss), and its buffer for input k of y (NULL when
 * k takes no gradient, or out of memory, which *failed then says). */
static inline float upstream(const ag_tensor *y, const loss_ctx *c, int64_t i)
{
    return node(y)->gbuf[c->reduction == AG_NONE ? i : 0];
}
static float *grad_buf(ag_tensor *y, int k, bool *failed)
{
    if (!ag__wants(y, k)) return NULL;
    float *g = ag__grad_of(node(y)->src[k]);
    if (!g) *failed = true;
    return g;
}

/* std::max(a, b), which keeps a when the two do not compare. */
static inline float max_of(float a, float b) { return a < b ? b : a; }

/* ------------------------------------------------------------------------------------ */
/* mse_loss: l = (x - t)^2, x and t broadcast together                                   */
/*                              dl/dx = 2 (x - t) (/ n for the mean)    dl/dt = -dl/dx   */

static void mse_into(ag_tensor *out, const ag_tensor *x, const ag_tensor *t, ag_reduction r)
{
    int ndim = 0;
    int64_t shape[AG_MAX_DIMS] = {0}, p[AG_MAX_DIMS], sx[AG_MAX_DIMS], st[AG_MAX_DIMS];
    ag__broadcast_shape("mse_loss", x, t, &ndim, shape); /* checked when recorded */
    reducer rd = {out->data, r, {0}};
    ag__pad(ndim, shape, p);
    ag__bstrides(x, sx);
    ag__bstrides(t, st);
    AG__FOR_BCAST(p, sx, st, {
        float d = x->data[ia] - t->data[ib];
        put(&rd, io, d * d);
    });
    finish(&rd, p[0] * p[1] * p[2] * p[3]);
}
bool ag__mse_loss_forward(ag_tensor *y)
{
    mse_into(y, node(y)->src[0], node(y)->src[1], ((const loss_ctx *)node(y)->ctx)->reduction);
    return true;
}

ag_tensor *ag_mse_loss_with(ag_loss_args a)
{
    const char *name = "mse_loss";
    if (!check_args(name, &a, 0)) return NULL;
    const ag_tensor *x = a.input, *t = a.target;
    warn_if_broadcast(&a);
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape(name, x, t, &ndim, shape)) return NULL;
    int64_t n = ag__numel(name, ndim, shape);
    if (n < 0) return NULL;
    ag_tensor *out = new_loss(name, a.reduction, ndim, shape);
    if (!out) return NULL;
    if (ag__grad_mode() && (x->requires_grad || t->requires_grad) &&
        !new_ctx(name, out, a.reduction, 0, 0))
        return NULL;
    mse_into(out, x, t, a.reduction);
    return ag__record(out, AG__OP_MSE_LOSS, x, t);
}

void ag__mse_loss_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0], *t = node(y)->src[1];
    const loss_ctx *c = node(y)->ctx;
    /* The broadcast shape (which the forward checked), in a tensor header of its own: the
     * shape ag__accum sums a gradient back from, whatever the reduction. */
    ag_tensor b = {0};
    int64_t shape[AG_MAX_DIMS];
    (void)ag__broadcast_shape("mse_loss", x, t, &b.ndim, shape);
    b.numel = 1;
    for (int k = 0; k < AG_MAX_DIMS; k++) {
        b.shape[k] = k < b.ndim ? shape[k] : 1;
        b.numel *= b.shape[k];
    }
    /* PyTorch's norm: 2 / n for the mean, in double, then used as a float */
    float alpha = c->reduction == AG_MEAN ? (float)(2.0 / (double)b.numel) : 2.0f;
    int64_t p[AG_MAX_DIMS], sx[AG_MAX_DIMS], st[AG_MAX_DIMS];
    ag__pad(b.ndim, b.shape, p);
    ag__bstrides(x, sx);
    ag__bstrides(t, st);
    for (int k = 0; k < 2; k++) {
        if (!ag__wants(y, k)) continue;
        ag_tensor *in = node(y)->src[k];
        /* an input of the broadcast shape takes its gradient directly */
        bool direct = in->numel == b.numel;
        float *g = direct ? ag__grad_of(in) : ag__scratch_floats(b.numel);
        if (!g) return;
        const float *u = x->data, *v = t->data; /* d/dx is alpha (x - t) g, d/dt alpha (t - x) g */
        float sign = k == 0 ? 1.0f : -1.0f;
        AG__FOR_BCAST(p, sx, st, {
            float d = sign * (u[ia] - v[ib]);
            float gd = alpha * d * upstream(y, c, io);
            if (direct)
                g[io] += gd;
            else
                g[io] = gd;
        });
        if (!direct) ag__accum(in, &b, g);
    }
}

/* ------------------------------------------------------------------------------------ */
/* l1_loss: |x - t|, then its mean or sum: sub, abs and mean (or sum), as PyTorch 1.13   */
/* builds it, so that grad_fn is MeanBackward0 (SumBackward0, AbsBackward0).             */

ag_tensor *ag_l1_loss_with(ag_loss_args a)
{
    const char *name = "l1_loss";
    if (!check_args(name, &a, 0)) return NULL;
    warn_if_broadcast(&a);
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    if (!ag__broadcast_shape(name, a.input, a.target, &ndim, shape)) return NULL;
    ag_tensor *d = ag_abs(ag_sub_tt(a.input, a.target));
    if (!d || a.reduction == AG_NONE) return d;
    return a.reduction == AG_SUM ? ag_sum(d) : ag_mean(d);
}

/* ------------------------------------------------------------------------------------ */
/* binary_cross_entropy: l = w ((t - 1) max(log(1 - x), -100) - t max(log x, -100))     */
/*                       dl/dx = w g (x - t) / max((1 - x) x, 1e-12)                     */
/*                       dl/dt = w g (-log(x / (1 - x)))            (/ n for the mean)   */
/* The logs are clamped at -100 so that x = 0 or 1 gives a finite loss (100 per element  */
/* at worst); the gradient's denominator at 1e-12 (PyTorch's EPSILON).                   */

#define BCE_EPSILON 1e-12f

/* Whether every element of x is a probability; else the error, in PyTorch's words. */
static bool probabilities(const char *name, const ag_tensor *x)
{
    for (int64_t i = 0; i < x->numel; i++)
        if (!(x->data[i] >= 0.0f && x->data[i] <= 1.0f)) {
            ag__error("%s: all elements of input should be between 0 and 1 (input[%lld] is %g)",
                      name, (long long)i, (double)x->data[i]);
            return false;
        }
    return true;
}

static void bce_into(ag_tensor *out, const ag_tensor *x, const ag_tensor *t, const float *w,
                     ag_reduction r)
{
    reducer rd = {out->data, r, {0}};
    for (int64_t i = 0; i < x->numel; i++) {
        float xv = x->data[i], tv = t->data[i];
        float l = (tv - 1.0f) * max_of(logf(1.0f - xv), -100.0f) - tv * max_of(logf(xv), -100.0f);
        put(&rd, i, w ? l * w[i] : l);
    }
    finish(&rd, x->numel);
}
bool ag__bce_loss_forward(ag_tensor *y)
{
    const ag_tensor *x = node(y)->src[0];
    const loss_ctx *c = node(y)->ctx;
    if (!probabilities("binary_cross_entropy", x)) return false;
    bce_into(y, x, node(y)->src[1], c->weight, c->reduction);
    return true;
}

ag_tensor *ag_binary_cross_entropy_with(ag_loss_args a)
{
    const char *name = "binary_cross_entropy";
    if (!check_args(name, &a, OPT_WEIGHT)) return NULL;
    const ag_tensor *x = a.input, *t = a.target, *w = a.weight;
    if (!refuse_grad(name, name, w, "weight")) return NULL;
    if (!same_shape(x, t)) {
        char si[SIZE_STR], st[SIZE_STR];
        return ag__error("%s: Using a target size (%s) that is different to the input size (%s) "
                         "is deprecated. Please ensure they have the same size.",
                         name, torch_size(st, t), torch_size(si, x));
    }
    if (w && !fits(name, t, w, false)) return NULL;
    if (!probabilities(name, x)) return NULL;
    ag_tensor *out = new_loss(name, a.reduction, x->ndim, x->shape);
    if (!out) return NULL;
    bool record = ag__grad_mode() && (x->requires_grad || t->requires_grad);
    loss_ctx *c = NULL;
    if ((record || w) && !(c = new_ctx(name, out, a.reduction, w ? x->numel : 0, 0))) return NULL;
    if (w) broadcast_copy(c->weight, w, x);
    bce_into(out, x, t, c ? c->weight : NULL, a.reduction);
    return ag__record(out, AG__OP_BCE_LOSS, x, t);
}

void ag__bce_loss_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0], *t = node(y)->src[1];
    const loss_ctx *c = node(y)->ctx;
    bool failed = false;
    float *dx = grad_buf(y, 0, &failed), *dt = grad_buf(y, 1, &failed);
    if (failed) return;
    const float *w = c->weight;
    bool mean = c->reduction == AG_MEAN;
    float n = (float)x->numel;
    for (int64_t i = 0; i < x->numel; i++) {
        float xv = x->data[i], tv = t->data[i], g = upstream(y, c, i);
        if (dx) {
            float d = g * (xv - tv) / max_of((1.0f - xv) * xv, BCE_EPSILON);
            if (w) d *= w[i];
            dx[i] += mean ? d / n : d;
        }
        if (dt) {
            float d = -logf(xv / (1.0f - xv)) * g;
            if (w) d *= w[i];
            dt[i] += mean ? d / n : d;
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* binary_cross_entropy_with_logits: the same of sigmoid(x), written so that no exp      */
/* overflows (m = max(-x, 0), so that both exps below are at most 1):                   */
/*   l = w ((1 - t) x + m + log(exp(-m) + exp(-x - m)))                                  */
/*   with pos_weight p: l = w ((1 - t) x + (1 + (p - 1) t) (log(exp(-m) + exp(-x - m)) + m)) */
/*   dl/dx = w g (sigmoid(x) - t), with p: w g ((p t + 1 - t) sigmoid(x) - p t)          */
/*   dl/dt = w g (-x), with p: w g (log sigmoid(-x) - p log sigmoid(x))  (/ n for mean) */

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* PyTorch's log_sigmoid: min(x, 0) - log1p(exp(-|x|)), std::min's way (nan stays nan). */
static inline float log_sigmoid(float x) { return (0.0f < x ? 0.0f : x) - log1pf(expf(-fabsf(x))); }

/* c: the weights, or NULL for none. */
static void bce_logits_into(ag_tensor *out, const ag_tensor *x, const ag_tensor *t,
                            const loss_ctx *c, ag_reduction r)
{
    const float *w = c ? c->weight : NULL, *pw = c ? c->pos_weight : NULL;
    reducer rd = {out->data, r, {0}};
    for (int64_t i = 0; i < x->numel; i++) {
        float xv = x->data[i], tv = t->data[i];
        float nx = -xv, m = nx < 0.0f ? 0.0f : nx; /* clamp_min(-x, 0); nan stays nan */
        float lse = logf(expf(-m) + expf(nx - m)), l;
        if (pw) {
            float lw = (pw[i] - 1.0f) * tv + 1.0f;
            l = (1.0f - tv) * xv + lw * (lse + m);
        } else {
            l = ((1.0f - tv) * xv + m) + lse;
        }
        put(&rd, i, w ? l * w[i] : l);
    }
    finish(&rd, x->numel);
}
bool ag__bce_logits_loss_forward(ag_tensor *y)
{
    const loss_ctx *c = node(y)->ctx;
    bce_logits_into(y, node(y)->src[0], node(y)->src[1], c, c->reduction);
    return true;
}

ag_tensor *ag_binary_cross_entropy_with_logits_with(ag_loss_args a)
{
    const char *name = "binary_cross_entropy_with_logits";
    if (!check_args(name, &a, OPT_WEIGHT | OPT_POS_WEIGHT)) return NULL;
    const ag_tensor *x = a.input, *t = a.target, *w = a.weight, *pw = a.pos_weight;
    if (!refuse_grad(name, name, w, "weight") || !refuse_grad(name, name, pw, "pos_weight"))
        return NULL;
    if (!same_shape(x, t)) {
        char si[SIZE_STR], st[SIZE_STR];
        return ag__error("%s: Target size (%s) must be the same as input size (%s)", name,
                         torch_size(st, t), torch_size(si, x));
    }
    if ((pw && !fits(name, t, pw, true)) || (w && !fits(name, x, w, false))) return NULL;
    ag_tensor *out = new_loss(name, a.reduction, x->ndim, x->shape);
    if (!out) return NULL;
    bool record = ag__grad_mode() && (x->requires_grad || t->requires_grad);
    loss_ctx *c = NULL;
    if ((record || w || pw) &&
        !(c = new_ctx(name, out, a.reduction, w ? x->numel : 0, pw ? x->numel : 0)))
        return NULL;
    if (w) broadcast_copy(c->weight, w, x);
    if (pw) broadcast_copy(c->pos_weight, pw, x);
    bce_logits_into(out, x, t, c, a.reduction);
    return ag__record(out, AG__OP_BCE_LOGITS_LOSS, x, t);
}

void ag__bce_logits_loss_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0], *t = node(y)->src[1];
    const loss_ctx *c = node(y)->ctx;
    bool failed = false;
    float *dx = grad_buf(y, 0, &failed), *dt = grad_buf(y, 1, &failed);
    if (failed) return;
    const float *w = c->weight, *pw = c->pos_weight;
    bool mean = c->reduction == AG_MEAN;
    float n = (float)x->numel;
    for (int64_t i = 0; i < x->numel; i++) {
        float xv = x->data[i], tv = t->data[i], g = upstream(y, c, i);
        if (dx) {
            float d;
            if (pw) {
                float pt = pw[i] * tv;
                d = (((pt + 1.0f) - tv) * sigmoid(xv) - pt) * g;
            } else {
                d = (sigmoid(xv) - tv) * g;
            }
            if (w) d *= w[i];
            dx[i] += mean ? d / n : d;
        }
        if (dt) {
            float d = pw ? (log_sigmoid(-xv) - log_sigmoid(xv) * pw[i]) * g : -xv * g;
            if (w) d *= w[i];
            dt[i] += mean ? d / n : d;
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* nll_loss: l_n = -w[t_n] x[n, t_n] for input x of shape (N, C) (or (C) and one target), */
/* 0 where t_n is ignore_index; mean divides the sum by the sum of the w[t_n] counted.    */
/*                        dl/dx[n, t_n] = -w[t_n] (/ that total weight for the mean)     */
/* The targets are class indices held as floats: each must be a whole number, in [0, C)  */
/* unless it is ignore_index. The sum is PyTorch's cascade (nll_sum), exact.             */

static int64_t classes_of(const ag_tensor *x) { return x->shape[x->ndim - 1]; }
static int64_t batch_of(const ag_tensor *x) { return x->ndim == 2 ? x->shape[0] : 1; }

/* Checks the shapes of nll_loss's input, target and weight, in PyTorch's words. */
static bool nll_shapes(const char *name, const ag_tensor *x, const ag_tensor *t, const ag_tensor *w)
{
    char s1[AG__SHAPE_STR];
    if (x->ndim < 1) {
        ag__error("%s: Expected 1 or more dimensions (got %d)", name, x->ndim);
        return false;
    }
    /* PyTorch reads a 0-d target's batch size as 0 */
    int64_t tn = t->ndim ? t->shape[0] : 0;
    if (x->ndim != 1 && x->shape[0] != tn) {
        ag__error("%s: Expected input batch_size (%lld) to match target batch_size (%lld).", name,
                  (long long)x->shape[0], (long long)tn);
        return false;
    }
    if (x->ndim > 2) {
        ag__error("%s: input of shape %s: agrad takes an input of shape (N, C) or (C); PyTorch's "
                  "(N, C, d1, ...) is not supported",
                  name, ag__tensor_str(s1, x));
        return false;
    }
    if (t->ndim > 1) {
        ag__error("%s: 0D or 1D target tensor expected, multi-target not supported (target of "
                  "shape %s)",
                  name, ag__tensor_str(s1, t));
        return false;
    }
    /* (C) takes one target, of shape (); PyTorch accepts a target (C) too and reads only
     * its first element, agrad refuses it */
    if (x->ndim == 1 ? t->ndim != 0 : (t->ndim == 0 || x->shape[0] != t->shape[0])) {
        char s2[AG__SHAPE_STR];
        ag__error("%s: size mismatch (got input: %s, target: %s)", name, ag__tensor_str(s1, x),
                  ag__tensor_str(s2, t));
        return false;
    }
    if (w && (w->ndim != 1 || w->numel != classes_of(x))) {
        ag__error("%s: weight tensor should be defined either for all %lld classes or no classes "
                  "but got weight tensor of shape: %s",
                  name, (long long)classes_of(x), ag__tensor_str(s1, w));
        return false;
    }
    return true;
}

/* Checks every target: a whole number, ignore_index or in [0, C). */
static bool nll_targets(const char *name, const ag_tensor *x, const ag_tensor *t, int64_t ignore)
{
    int64_t nc = classes_of(x);
    for (int64_t i = 0; i < t->numel; i++) {
        float v = t->data[i];
        if (v != truncf(v) || !isfinite(v)) {
            ag__error("%s: target holds class indices, but target[%lld] is %g, not a whole number",
                      name, (long long)i, (double)v);
            return false;
        }
        if (fabsf(v) >= 0x1p63f) { /* no int64_t: out of bounds whatever ignore_index is */
            ag__error("%s: Target %.0f is out of bounds.", name, (double)v);
            return false;
        }
        int64_t k = (int64_t)v;
        if (k != ignore && (k < 0 || k >= nc)) {
            ag__error("%s: Target %lld is out of bounds.", name, (long long)k);
            return false;
        }
    }
    return true;
}

/* -sum_n w[t_n] x[n, t_n] over the targets counted, and the sum of their weights (or their
 * number), added as PyTorch's nll_loss adds them: each term into level 0; after term b,
 * every level j whose bits of b (level_power bits from j * level_power on) are all zero
 * is emptied into level j + 1; at the end the levels are added from 0 up. */
enum { LEVELS = 8 };
static void nll_sum(const ag_tensor *x, const ag_tensor *t, const float *w, int64_t ignore,
                    float *loss, float *total)
{
    int64_t batch = batch_of(x), nc = classes_of(x), ignored = 0;
    int ceil_log2 = batch <= 2 ? 1 : 64 - __builtin_clzll((unsigned long long)(batch - 1));
    int power = ceil_log2 / LEVELS > 4 ? ceil_log2 / LEVELS : 4;
    int64_t level_mask = (INT64_C(1) << power) - 1;
    float ls[LEVELS] = {0}, ws[LEVELS] = {0};
    for (int64_t b = 0; b < batch; b++) {
        int64_t k = (int64_t)t->data[b];
        if (k == ignore) {
            ignored++;
            continue;
        }
        float v = x->data[b * nc + k];
        if (w) {
            ls[0] -= v * w[k];
            ws[0] += w[k];
        } else {
            ls[0] -= v;
        }
        for (int j = 0; j + 1 < LEVELS; j++) {
            if (b & (level_mask << (j * power))) break;
            ls[j + 1] += ls[j];
            ws[j + 1] += ws[j];
            ls[j] = ws[j] = 0;
        }
    }
    float l = 0, tw = 0;
    for (int j = 0; j < LEVELS; j++) {
        l += ls[j];
        tw += ws[j];
    }
    *loss = l;
    *total = w ? tw : (float)(batch - ignored);
}

/* out = nll_loss of x, whose shapes and targets were checked; returns the total weight. */
static float nll_into(ag_tensor *out, const ag_tensor *x, const ag_tensor *t, const float *wc,
                      int64_t ignore, ag_reduction r)
{
    int64_t nc = classes_of(x), batch = batch_of(x);
    float total = 0;
    if (r == AG_NONE && x->ndim == 2) {
        for (int64_t i = 0; i < batch; i++) {
            int64_t k = (int64_t)t->data[i];
            out->data[i] = k == ignore ? 0.0f : -x->data[i * nc + k] * (wc ? wc[k] : 1.0f);
        }
    } else if (t->numel == 0) {
        out->data[0] = r == AG_MEAN ? NAN : 0.0f; /* no targets: PyTorch's total weight is 0 */
    } else {
        float loss;
        nll_sum(x, t, wc, ignore, &loss, &total);
        out->data[0] = r == AG_MEAN ? loss / total : loss; /* all ignored: 0 / 0, nan */
    }
    return total;
}
/* The targets are checked again: they index x. */
bool ag__nll_loss_forward(ag_tensor *y)
{
    const ag_tensor *x = node(y)->src[0], *t = node(y)->src[1];
    loss_ctx *c = node(y)->ctx;
    if (!nll_targets("nll_loss", x, t, c->ignore_index)) return false;
    c->total_weight = nll_into(y, x, t, c->weight, c->ignore_index, c->reduction);
    return true;
}

/* nll_loss of x, whose shapes and targets were checked. */
static ag_tensor *nll(const char *name, const ag_tensor *x, const ag_tensor *t, const ag_tensor *w,
                      int64_t ignore, ag_reduction r)
{
    int64_t nc = classes_of(x), batch = batch_of(x);
    bool per_row = r == AG_NONE && x->ndim == 2;
    ag_tensor *out =
        per_row ? ag__new(name, 1, &batch, NULL, NULL) : ag__new(name, 0, NULL, NULL, NULL);
    if (!out) return NULL;
    bool record = ag__grad_mode() && x->requires_grad;
    loss_ctx *c = NULL;
    if ((record || w) && !(c = new_ctx(name, out, r, w ? nc : 0, 0))) return NULL;
    if (w) memcpy(c->weight, w->data, (size_t)nc * sizeof(float));
    float total = nll_into(out, x, t, c ? c->weight : NULL, ignore, r);
    if (c) {
        c->ignore_index = ignore;
        c->total_weight = total;
    }
    return ag__record(out, AG__OP_NLL_LOSS, x, t);
}

void ag__nll_loss_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0], *t = node(y)->src[1];
    const loss_ctx *c = node(y)->ctx;
    float *dx = ag__grad_of(x);
    if (!dx) return;
    int64_t nc = classes_of(x), batch = batch_of(x);
    const float *w = c->weight, *g = node(y)->gbuf;
    if (c->reduction == AG_NONE && x->ndim == 2) {
        for (int64_t i = 0; i < batch; i++) {
            int64_t k = (int64_t)t->data[i];
            if (k != c->ignore_index) dx[i * nc + k] += -(w ? w[k] : 1.0f) * g[i];
        }
        return;
    }
    float grad = -(c->reduction == AG_MEAN ? g[0] / c->total_weight : g[0]);
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t k = (int64_t)t->data[i];
        if (k != c->ignore_index) dx[i * nc + k] += w ? w[k] * grad : grad;
    }
}

/* The checks nll_loss and cross_entropy share, before anything is made. */
static bool nll_check(const char *name, const ag_loss_args *a, int64_t *ignore)
{
    if (!check_args(name, a, OPT_WEIGHT | OPT_IGNORE_INDEX)) return false;
    *ignore = a->ignore_index.set ? a->ignore_index.value : -100;
    if (!refuse_grad(name, "nll_loss_forward", a->weight, "weight") ||
        !refuse_grad(name, "nll_loss_forward", a->target, "target"))
        return false;
    return true;
}

ag_tensor *ag_nll_loss_with(ag_loss_args a)
{
    const char *name = "nll_loss";
    int64_t ignore;
    if (!nll_check(name, &a, &ignore) || !nll_shapes(name, a.input, a.target, a.weight) ||
        !nll_targets(name, a.input, a.target, ignore))
        return NULL;
    return nll(name, a.input, a.target, a.weight, ignore, a.reduction);
}

/* ------------------------------------------------------------------------------------ */
/* cross_entropy: nll_loss(log_softmax(x, class dimension)), two recorded ops as in      */
/* PyTorch (NllLossBackward0 after LogSoftmaxBackward0). The class dimension is 1, or 0  */
/* for an input of shape (C). Class indices only: PyTorch's class probabilities (a target */
/* of the input's shape) are refused.                                                    */

ag_tensor *ag_cross_entropy_with(ag_loss_args a)
{
    const char *name = "cross_entropy";
    int64_t ignore;
    if (!nll_check(name, &a, &ignore)) return NULL;
    const ag_tensor *x = a.input, *t = a.target;
    if (same_shape(x, t)) {
        char s[AG__SHAPE_STR];
        return ag__error("%s: a target of the input's shape %s holds class probabilities, which "
                         "agrad does not support; give class indices (shape (N) for an input "
                         "(N, C), () for (C))",
                         name, ag__tensor_str(s, x));
    }
    if (!nll_shapes(name, x, t, a.weight) || !nll_targets(name, x, t, ignore)) return NULL;
    ag_tensor *logp = ag_log_softmax(x, x->ndim == 1 ? 0 : 1);
    if (!logp) return NULL;
    return nll(name, logp, t, a.weight, ignore, a.reduction);
}

/* ------------------------------------------------------------------------------------ */
/* Criteria                                                                              */

ag_tensor *ag_loss_at(ag_criterion criterion, const ag_tensor *input, const ag_tensor *target,
                      const char *file, int line)
{
    if (!criterion.fn)
        return ag__error("loss: the criterion has no loss function (make it with ag_MSELoss(), "
                         "ag_CrossEntropyLoss(), ...)");
    ag_loss_args a = criterion.args;
    a.input = input;
    a.target = target;
    a.private_file = file;
    a.private_line = line;
    ag_private_site = (ag_private_site_t){file, line}; /* for anomaly mode and the trace */
    ag_tensor *y = criterion.fn(a);
    ag_private_site.file = NULL;
    return y;
}
