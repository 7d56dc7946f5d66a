/* Comparisons and where: masks from a > b and its kin, and torch.where, which takes each
 * element from one of two tensors by a mask.
 *
 * agrad has only float tensors, so a comparison gives PyTorch's bool result as a float
 * mask, 1 where true and 0 where false, and where takes any float condition, nonzero
 * (NaN too) meaning true, as PyTorch's conversion to bool does. */
#include "elementwise.h"

#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Comparisons: y = (a > b) and the others, not recorded: they have no derivative, and   */
/* PyTorch's bool results never require grad. A number is rounded to float first, as     */
/* PyTorch compares a float tensor with a Python number (x > 1e39 is x > inf). NaN       */
/* compares as in IEEE 754: only != holds.                                              */

/* a op s, or s op a when number_left; role names the tensor as the user wrote the call. */
AG__INLINE ag_tensor *compare_number(const char *name, const char *role, const ag_tensor *x,
                                     double s, bool number_left, float (*f)(float, float))
{
    if (!ag__check(x, name, role)) return NULL;
    ag_tensor *y = ag__new_like(name, x);
    if (!y) return NULL;
    float v = (float)s;
    for (int64_t i = 0; i < x->numel; i++)
        y->data[i] = number_left ? f(v, x->data[i]) : f(x->data[i], v);
    ag__derive(y);
    return y;
}

/* a op b for tensors: not recorded, like every comparison. */
static ag_tensor *compared(ag_tensor *y)
{
    if (y) ag__derive(y);
    return y;
}

#define COMPARISON(op, expr)                                                                       \
    static float op##_f(float a, float b) { return (expr) ? 1.0f : 0.0f; }                         \
    ag_tensor *ag_##op##_tt(const ag_tensor *a, const ag_tensor *b)                                \
    {                                                                                              \
        return compared(broadcast_map(#op, a, b, op##_f));                                         \
    }                                                                                              \
    ag_tensor *ag_##op##_ts(const ag_tensor *a, double b)                                          \
    {                                                                                              \
        return compare_number(#op, "a", a, b, false, op##_f);                                      \
    }                                                                                              \
    ag_tensor *ag_##op##_st(double a, const ag_tensor *b)                                          \
    {                                                                                              \
        return compare_number(#op, "b", b, a, true, op##_f);                                       \
    }

COMPARISON(gt, a > b)
COMPARISON(lt, a < b)
COMPARISON(ge, a >= b)
COMPARISON(le, a <= b)
COMPARISON(eq, a == b)
COMPARISON(ne, a != b)

/* ------------------------------------------------------------------------------------ */
/* where: y = a where cond != 0, else b      dy/da = [cond != 0], dy/db = [cond == 0]     */
/* cond, a and b broadcast together. cond takes no gradient (PyTorch's is a bool tensor); */
/* backward reads it, so it is saved (WhereBackward0 saves condition) as an ag__saved in  */
/* ctx: changing it in place before backward is an error, as in PyTorch.                 */

/* Widens the broadcast shape (*n, shape) by t's shape, as PyTorch broadcasts cond, a and
 * b one after the other, each from the right: false after its error, in its words. */
static bool widen(int *n, int64_t shape[AG_MAX_DIMS], const ag_tensor *t,
                  const ag_tensor *const in[3])
{
    int m = t->ndim > *n ? t->ndim : *n;
    /* in place, from the right: size k of the result reads size k - (m - n) <= k */
    for (int k = m - 1; k >= 0; k--) {
        int i = k - (m - *n), j = k - (m - t->ndim);
        int64_t sa = i >= 0 ? shape[i] : 1, sb = j >= 0 ? t->shape[j] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char sc[AG__SHAPE_STR], s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
            ag__error("where: The size of tensor a (%lld) must match the size of tensor b (%lld) "
                      "at non-singleton dimension %d (cond %s, a %s, b %s)",
                      (long long)sa, (long long)sb, k, ag__tensor_str(sc, in[0]),
                      ag__tensor_str(s1, in[1]), ag__tensor_str(s2, in[2]));
            return false;
        }
        shape[k] = sa == 1 ? sb : sa;
    }
    *n = m;
    return true;
}

void ag__where_backward(ag_tensor *y)
{
    const ag__saved *cond = node(y)->ctx;
    const float *c = cond->t->data, *g = node(y)->gbuf;
    int64_t p[AG_MAX_DIMS], sc[AG_MAX_DIMS];
    ag__pad(y->ndim, y->shape, p);
    ag__bstrides(cond->t, sc);
    for (int k = 0; k < 2; k++) {
        if (!ag__wants(y, k)) continue;
        ag_tensor *x = node(y)->src[k];
        bool take = k == 0; /* a takes the gradient where cond holds, b where it does not */
        if (x->numel == y->numel) {
            float *dx = ag__grad_of(x);
            if (!dx) return;
            AG__FOR_BCAST(p, sc, sc, {
                if ((c[ia] != 0) == take) dx[io] += g[io];
                AG__UNUSED(ib);
            });
            continue;
        }
        float *t = ag__scratch_floats(y->numel);
        if (!t) return;
        AG__FOR_BCAST(p, sc, sc, {
            t[io] = (c[ia] != 0) == take ? g[io] : 0.0f;
            AG__UNUSED(ib);
        });
        ag__accum(x, y, t);
    }
}

/* y = b, then a where cond holds, all broadcast to y's shape. */
static void where_into(ag_tensor *y, const ag_tensor *cond, const ag_tensor *a, const ag_tensor *b)
{
    int64_t p[AG_MAX_DIMS], sc[AG_MAX_DIMS], sa[AG_MAX_DIMS], sb[AG_MAX_DIMS];
    ag__pad(y->ndim, y->shape, p);
    ag__bstrides(cond, sc);
    ag__bstrides(a, sa);
    ag__bstrides(b, sb);
    float *o = y->data;
    const float *c = cond->data, *av = a->data, *bv = b->data;
    AG__FOR_BCAST(p, sa, sb, {
        o[io] = bv[ib];
        AG__UNUSED(ia);
    });
    AG__FOR_BCAST(p, sc, sa, if (c[ia] != 0) o[io] = av[ib]);
}
bool ag__where_forward(ag_tensor *y)
{
    where_into(y, ((const ag__saved *)node(y)->ctx)->t, node(y)->src[0], node(y)->src[1]);
    return true;
}

ag_tensor *ag_where_tt(const ag_tensor *cond, const ag_tensor *a, const ag_tensor *b)
{
    if (!ag__check(cond, "where", "cond") || !ag__check(a, "where", "a") ||
        !ag__check(b, "where", "b"))
        return NULL;
    const ag_tensor *in[3] = {cond, a, b};
    int ndim = cond->ndim;
    int64_t shape[AG_MAX_DIMS];
    memcpy(shape, cond->shape, sizeof shape);
    if (!widen(&ndim, shape, a, in) || !widen(&ndim, shape, b, in)) return NULL;
    ag_tensor *y = ag__new("where", ndim, shape, NULL, NULL);
    if (!y) return NULL;
    where_into(y, cond, a, b);

    if (ag__grad_mode() && (a->requires_grad || b->requires_grad)) {
        ag__saved *kept = ag__ctx_alloc(sizeof *kept);
        if (!kept) {
            char s[AG__SHAPE_STR];
            return ag__error("where: out of memory saving the condition (result of shape %s)",
                             ag__tensor_str(s, y));
        }
        /* where's inputs are older than y: cond outlives y, as a and b do */
        *kept = (ag__saved){(ag_tensor *)cond, node(node(cond)->base)->version, "condition"};
        node(y)->ctx = kept;
    }
    return ag__record(y, AG__OP_WHERE, a, b);
}

/* A number on either side becomes a 0-d constant, as PyTorch wraps it, once the tensors
 * given are known to be good. */
static ag_tensor *constant(double s)
{
    ag_tensor *c = ag__new("where", 0, NULL, NULL, NULL);
    if (c) c->data[0] = (float)s;
    return c;
}

ag_tensor *ag_where_ts(const ag_tensor *cond, const ag_tensor *a, double b)
{
    if (!ag__check(cond, "where", "cond") || !ag__check(a, "where", "a")) return NULL;
    ag_tensor *cb = constant(b);
    return cb ? ag_where_tt(cond, a, cb) : NULL;
}

ag_tensor *ag_where_st(const ag_tensor *cond, double a, const ag_tensor *b)
{
    if (!ag__check(cond, "where", "cond") || !ag__check(b, "where", "b")) return NULL;
    ag_tensor *ca = constant(a);
    return ca ? ag_where_tt(cond, ca, b) : NULL;
}

ag_tensor *ag_where_ss(const ag_tensor *cond, double a, double b)
{
    if (!ag__check(cond, "where", "cond")) return NULL;
    ag_tensor *ca = constant(a), *cb = ca ? constant(b) : NULL;
    return cb ? ag_where_tt(cond, ca, cb) : NULL;
}
