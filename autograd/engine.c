/* The autograd engine: recording, no_grad, and the backward pass over the tape. */
#include "internal.h"

#include <string.h>

#include <stb_ds.h>

static struct {
    int no_grad_depth;
    ag_tensor **visited; /* stb_ds array: tensors given a gradient in this pass */
    size_t pending;      /* visited tensors the walk has not reached yet */
} eng;

const ag__op ag__ops[AG__OP_COUNT] = {
    [AG__OP_LEAF] = {NULL, {0, 0}, NULL},
#define AG__OP(id, grad_fn, backward, needs0, needs1)                                              \
    [AG__OP_##id] = {grad_fn, {needs0, needs1}, backward},
#include "optable.h"
#undef AG__OP
};

bool ag__grad_mode(void) { return eng.no_grad_depth == 0; }

void ag__engine_reset(void)
{
    arrfree(eng.visited);
    memset(&eng, 0, sizeof eng);
}

void ag_no_grad_begin(void) { eng.no_grad_depth++; }

void ag_no_grad_end(void)
{
    if (eng.no_grad_depth == 0) {
        ag__error("no_grad_end: no no_grad scope is open");
        return;
    }
    eng.no_grad_depth--;
}

bool ag_is_grad_enabled(void) { return eng.no_grad_depth == 0; }

void ag__record(ag_tensor *out, int op, ag_tensor *a, ag_tensor *b)
{
    if (eng.no_grad_depth || !(a->requires_grad || (b && b->requires_grad))) return;
    out->requires_grad = true;
    out->ag__.op = (uint16_t)op;
    out->ag__.src[0] = a;
    out->ag__.src[1] = b;
    out->ag__.src_version[0] = a->ag__.base->ag__.version;
    out->ag__.src_version[1] = b ? b->ag__.base->ag__.version : 0;
    const uint16_t *needs = ag__ops[op].needs;
    uint16_t saved =
        (uint16_t)((a->requires_grad ? needs[0] : 0) | (b && b->requires_grad ? needs[1] : 0));
    out->ag__.flags |= saved;
}

bool ag__record_n(ag_tensor *out, int op, ag_tensor *const *inputs, int n)
{
    bool any = false;
    for (int i = 0; i < n; i++) any = any || inputs[i]->requires_grad;
    if (eng.no_grad_depth || !any) return true;
    ag_tensor **kept = ag__ctx_alloc((size_t)n * sizeof *kept);
    if (!kept) return false;
    for (int i = 0; i < n; i++) kept[i] = inputs[i];
    out->requires_grad = true;
    out->ag__.op = (uint16_t)op;
    out->ag__.ctx = kept;
    out->ag__.iarg[1] = n;
    return true;
}

bool ag__inplace_begin(ag_tensor *t, const char *op)
{
    if (t->requires_grad && eng.no_grad_depth == 0) {
        if (t->ag__.op == 0)
            ag__error("%s: a leaf Variable that requires grad is being used in an in-place "
                      "operation.",
                      op);
        else
            ag__error("%s: agrad does not record in-place operations on a tensor that "
                      "requires grad (made by %s); use the out-of-place form",
                      op, ag__ops[t->ag__.op].grad_fn);
        return false;
    }
    t->ag__.base->ag__.version++;
    return true;
}

ag_tensor *ag_retain_grad(ag_tensor *t)
{
    if (!ag__check(t, "retain_grad", "self")) return NULL;
    if (!t->requires_grad)
        return ag__error("retain_grad: can't retain_grad on Tensor that has "
                         "requires_grad=False"),
               NULL;
    if (t->ag__.op) t->ag__.flags |= AG__F_RETAIN_GRAD;
    return t;
}

/* ------------------------------------------------------------------------------------ */
/* Backward                                                                              */

float *ag__grad_of(ag_tensor *x)
{
    if (!x->requires_grad) return NULL;
    if (!(x->ag__.flags & AG__F_PENDING)) {
        float *buf = ag__scratch(x->numel);
        if (!buf) return NULL;
        memset(buf, 0, (size_t)x->numel * sizeof(float));
        x->ag__.gbuf = buf;
        x->ag__.flags |= AG__F_PENDING;
        arrput(eng.visited, x);
        eng.pending++;
    }
    return x->ag__.gbuf;
}

void ag__accum(ag_tensor *x, const ag_tensor *out, const float *g)
{
    float *dst = g ? ag__grad_of(x) : NULL;
    if (!dst) return;
    if (x->numel == out->numel) { /* same shape, or a view: no reduction */
        for (int64_t i = 0; i < x->numel; i++) dst[i] += g[i];
        return;
    }
    /* sum_to_size: every element of g lands on the element of x it was broadcast from. */
    int64_t p[AG_MAX_DIMS], sx[AG_MAX_DIMS];
    ag__pad(out->ndim, out->shape, p);
    ag__bstrides(x, sx);
    AG__FOR_BCAST(p, sx, sx, {
        dst[ia] += g[io];
        AG__UNUSED(ib);
    });
}

static bool seed_check(const ag_tensor *t, const ag_tensor *gradient)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    if (!t->requires_grad) {
        ag__error("backward: element 0 of tensors does not require grad and does not have "
                  "a grad_fn (shape %s)",
                  ag__shape_str(s1, t->ndim, t->shape));
        return false;
    }
    if (!gradient && t->numel != 1) {
        ag__error("backward: grad can be implicitly created only for scalar outputs (shape %s)",
                  ag__shape_str(s1, t->ndim, t->shape));
        return false;
    }
    if (gradient &&
        (gradient->ndim != t->ndim || memcmp(gradient->shape, t->shape, sizeof t->shape))) {
        ag__error("backward: Mismatch in shape: grad_output[0] has a shape of %s and "
                  "output[0] has a shape of %s.",
                  ag__shape_str(s1, gradient->ndim, gradient->shape),
                  ag__shape_str(s2, t->ndim, t->shape));
        return false;
    }
    return true;
}

/* Checks that node's backward can run: what it saved still exists and was not modified
 * in place since it was recorded. */
static bool node_check(const ag_tensor *n)
{
    const char *name = ag__ops[n->ag__.op].grad_fn;
    uint16_t saved =
        n->ag__.flags & (AG__F_SAVED_A | AG__F_SAVED_B | AG__F_SAVED_OUT | AG__F_SAVED_CTX);
    if (!saved) return true;
    if (n->ag__.flags & AG__F_FREED) {
        ag__error("backward: Trying to backward through the graph a second time (or directly "
                  "access saved tensors after they have already been freed), at %s. Saved "
                  "intermediate values of the graph are freed when you call .backward(). "
                  "Specify retain_graph=True if you need to backward through the graph a "
                  "second time.",
                  name);
        return false;
    }
    const ag_tensor *t[3] = {n->ag__.src[0], n->ag__.src[1], n};
    const uint32_t expected[3] = {n->ag__.src_version[0], n->ag__.src_version[1], 0};
    const char *role[3] = {"input 0", "input 1", "result"};
    for (int i = 0; i < 3; i++) {
        if (!(saved & (AG__F_SAVED_A << i))) continue;
        uint32_t version = t[i]->ag__.base->ag__.version;
        if (version != expected[i]) {
            char buf[AG__SHAPE_STR];
            ag__error("backward: one of the variables needed for gradient computation has "
                      "been modified by an inplace operation: [FloatTensor %s] is at version "
                      "%u; expected version %u instead (%s of %s).",
                      ag__shape_str(buf, t[i]->ndim, t[i]->shape), version, expected[i], role[i],
                      name);
            return false;
        }
    }
    return true;
}

/* Adds the gradient that reached a leaf (or a retain_grad node) into its ->grad. */
static bool commit(ag_tensor *t)
{
    if (!t->grad) {
        t->grad = ag__new_grad(t);
        if (!t->grad) return false;
    }
    for (int64_t i = 0; i < t->numel; i++) t->grad->data[i] += t->ag__.gbuf[i];
    return true;
}

bool ag_backward_with(ag_tensor *t, ag_tensor *gradient, bool retain_graph)
{
    if (!ag__check(t, "backward", "self")) return false;
    if (gradient && !ag__check(gradient, "backward", "gradient")) return false;
    if (!seed_check(t, gradient)) return false;

    float *seed = ag__grad_of(t); /* d t / d t: 1, or the gradient given */
    for (int64_t i = 0; seed && i < t->numel; i++) seed[i] = gradient ? gradient->data[i] : 1.0f;

    /* Creation order is a topological order, so walking the tape backwards from t
     * reaches every node after all its consumers: each gradient is complete when its
     * node is reached. The walk stops once no reached node is left waiting. */
    bool ok = !ag__scratch_failed();
    for (size_t i = t->ag__.id + 1; ok && eng.pending > 0 && i-- > 0;) {
        ag_tensor *n = ag__tape_at(i);
        if (!(n->ag__.flags & AG__F_PENDING)) continue;
        eng.pending--;
        if (n->ag__.op == 0) continue;
        ok = node_check(n);
        if (ok) ag__ops[n->ag__.op].backward(n);
        ok = ok && !ag__scratch_failed();
    }

    /* Gradients reach ->grad only when the whole pass succeeded. */
    for (size_t i = 0; ok && i < arrlenu(eng.visited); i++) {
        ag_tensor *n = eng.visited[i];
        if (n->ag__.op == 0 || (n->ag__.flags & AG__F_RETAIN_GRAD)) ok = commit(n);
    }
    for (size_t i = 0; i < arrlenu(eng.visited); i++) {
        ag_tensor *n = eng.visited[i];
        n->ag__.flags &= (uint16_t)~AG__F_PENDING;
        n->ag__.gbuf = NULL;
        if (ok && !retain_graph && n->ag__.op) n->ag__.flags |= AG__F_FREED;
    }
    arrdeln(eng.visited, 0, arrlen(eng.visited));
    eng.pending = 0;
    ag__scratch_reset();
    return ok;
}

bool ag_backward(ag_tensor *t) { return ag_backward_with(t, NULL, false); }
