/* Shapes, selection and comparison (unsqueeze, squeeze, flatten, where, the comparisons,
 * argmax and argmin) against PyTorch 1.13 (tests/ref/shape_ref.h, made by
 * tools/gen_ref_shape.py): values, grad_fn names and gradients to the bit; their backward
 * against ag_gradcheck; storage sharing, what is saved and what is never recorded; their
 * error messages. */
#include <stdlib.h>
#include <string.h>

#include "agrad_test.h"
#include "ref/shape_ref.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

/* A leaf holding r's values (finite ones only when finite: for gradcheck). */
static ag_tensor *leaf(const shape_ref_tensor *r, bool requires_grad, bool finite)
{
    ag_tensor *t = ag_zeros(shape_of(r->ndim, r->shape));
    cr_assert_not_null(t, "making an input failed: %s", ag_last_error());
    for (int64_t i = 0; r->values && i < t->numel; i++)
        t->data[i] = finite && !isfinite(r->values[i]) ? 0.75f : r->values[i];
    ag_requires_grad_(t, requires_grad);
    return t;
}

typedef struct comparison {
    const char *name;
    ag_tensor *(*tt)(const ag_tensor *, const ag_tensor *);
    ag_tensor *(*ts)(const ag_tensor *, double);
    ag_tensor *(*st)(double, const ag_tensor *);
} comparison;

static const comparison comparisons[] = {
    {"gt", ag_gt_tt, ag_gt_ts, ag_gt_st}, {"lt", ag_lt_tt, ag_lt_ts, ag_lt_st},
    {"ge", ag_ge_tt, ag_ge_ts, ag_ge_st}, {"le", ag_le_tt, ag_le_ts, ag_le_st},
    {"eq", ag_eq_tt, ag_eq_ts, ag_eq_st}, {"ne", ag_ne_tt, ag_ne_ts, ag_ne_st},
};

/* The op of case c on the tensors in (where's condition first). */
static ag_tensor *apply(const shape_case *c, ag_tensor *const *in)
{
    const char *op = c->op;
    if (!strcmp(op, "unsqueeze")) return ag_unsqueeze(in[0], c->i0);
    if (!strcmp(op, "squeeze")) return ag_squeeze(in[0]);
    if (!strcmp(op, "squeeze_dim")) return ag_squeeze_dim(in[0], c->i0);
    if (!strcmp(op, "flatten")) return ag_flatten(in[0], c->i0, c->i1);
    if (!strcmp(op, "where_tt")) return ag_where(in[0], in[1], in[2]);
    if (!strcmp(op, "where_ts")) return ag_where(in[0], in[1], c->s0);
    if (!strcmp(op, "where_st")) return ag_where(in[0], c->s0, in[1]);
    if (!strcmp(op, "where_ss")) return ag_where(in[0], c->s0, c->s1);
    if (!strcmp(op, "argmax")) return ag_argmax(in[0]);
    if (!strcmp(op, "argmin")) return ag_argmin(in[0]);
    if (!strcmp(op, "argmax_dim")) return ag_argmax_dim(in[0], c->i0, c->i1);
    if (!strcmp(op, "argmin_dim")) return ag_argmin_dim(in[0], c->i0, c->i1);
    for (size_t k = 0; k < sizeof comparisons / sizeof *comparisons; k++) {
        const comparison *f = &comparisons[k];
        if (strncmp(op, f->name, 2) || op[2] != '_') continue;
        if (!strcmp(op + 3, "tt")) return f->tt(in[0], in[1]);
        if (!strcmp(op + 3, "ts")) return f->ts(in[0], c->s0);
        return f->st(c->s0, in[0]);
    }
    cr_assert_fail("unknown op %s in case %s", op, c->name);
    return NULL;
}

static bool is_view_op(const char *op)
{
    return !strcmp(op, "unsqueeze") || !strncmp(op, "squeeze", 7) || !strcmp(op, "flatten");
}

/* got equals want to the bit, NaN equal to NaN (whatever its sign). */
static void check_exact(const shape_case *c, const char *what, const float *got, const float *want,
                        int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(isnan(want[i]) ? isnan(got[i]) : got[i] == want[i],
                  "%s: %s[%lld] = %.9g, PyTorch %.9g", c->name, what, (long long)i, (double)got[i],
                  (double)want[i]);
}

/* ------------------------------------------------------------------------------------ */
/* Against PyTorch                                                                       */

Test(shape, values_and_gradients_match_pytorch)
{
    int views = 0, recorded = 0;
    for (size_t k = 0; k < shape_ncases; k++) {
        const shape_case *c = &shape_cases[k];
        ag_mark m = ag_mark_now();
        /* every input requires grad: what PyTorch gives no gradient (where's condition, the
         * inputs of comparisons and argmax) must get none here either */
        ag_tensor *in[3] = {NULL, NULL, NULL};
        for (int i = 0; i < c->n; i++) in[i] = leaf(&c->in[i], true, false);
        ag_tensor *y = apply(c, in);
        cr_assert_not_null(y, "%s: %s", c->name, ag_last_error());
        cr_assert_eq(y->ndim, c->out.ndim, "%s: rank %d, PyTorch %d", c->name, y->ndim,
                     c->out.ndim);
        for (int i = 0; i < y->ndim; i++)
            cr_assert_eq(y->shape[i], c->out.shape[i], "%s: size %d is %lld, PyTorch %lld", c->name,
                         i, (long long)y->shape[i], (long long)c->out.shape[i]);
        if (y->numel) check_exact(c, "out", y->data, c->out.values, y->numel);

        const char *fn = ag_grad_fn_name(y);
        cr_assert_str_eq(fn ? fn : "", c->grad_fn, "%s: grad_fn %s, PyTorch %s", c->name,
                         fn ? fn : "(none)", c->grad_fn);
        cr_assert_eq(y == in[0], c->is_self, "%s: returned its input %d, PyTorch %d", c->name,
                     y == in[0], c->is_self);
        if (is_view_op(c->op)) {
            cr_assert_eq(y->data, in[0]->data, "%s: not a view of its input", c->name);
            views++;
        }
        cr_assert_eq(y->requires_grad, c->requires_grad, "%s: requires_grad %d, PyTorch %d",
                     c->name, y->requires_grad, c->requires_grad);
        if (!c->requires_grad) {
            cr_assert(ag_is_leaf(y), "%s: recorded (%s)", c->name, ag_grad_fn_name(y));
            ag_release(m);
            continue;
        }
        recorded++;
        ag_tensor *up = ag_tensor_from(c->upstream ? c->upstream : (const float[]){0}, ag_size(y));
        cr_assert(ag_backward(ag_sum(ag_mul(y, up))), "%s: backward: %s", c->name, ag_last_error());
        for (int i = 0; i < c->n; i++) {
            if (!in[i]->numel) continue;
            if (!c->in[i].grad) {
                cr_assert_null(in[i]->grad, "%s: input %d got a gradient", c->name, i);
                continue;
            }
            cr_assert_not_null(in[i]->grad, "%s: input %d got no gradient", c->name, i);
            check_exact(c, "grad", in[i]->grad->data, c->in[i].grad, in[i]->numel);
        }
        ag_release(m);
    }
    cr_log_info("%zu cases, %d views, %d recorded", shape_ncases, views, recorded);
    cr_assert_gt(views, 150, "only %d view cases", views);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Against finite differences                                                            */

/* The case's op with a non-linear consumer, so that a misplaced gradient shows. The
 * condition of where is fixed (userdata's case), the differentiated inputs follow. */
typedef struct gc_case {
    const shape_case *c;
    ag_tensor *cond;
} gc_case;

static ag_tensor *case_fn(ag_tensor *const *inputs, void *userdata)
{
    const gc_case *g = userdata;
    ag_tensor *in[3] = {g->cond ? g->cond : inputs[0], NULL, NULL};
    if (g->cond)
        for (int i = 1; i < g->c->n; i++) in[i] = inputs[i - 1];
    ag_tensor *y = apply(g->c, in);
    return ag_mul(y, y);
}

Test(shape, gradcheck_views_and_where)
{
    int checked = 0;
    for (size_t k = 0; k < shape_ncases; k++) {
        const shape_case *c = &shape_cases[k];
        bool where = !strncmp(c->op, "where", 5);
        if (!c->requires_grad || !(where || is_view_op(c->op))) continue;
        ag_mark m = ag_mark_now();
        gc_case g = {c, where ? leaf(&c->in[0], false, false) : NULL};
        ag_tensor *xs[2];
        int n = 0;
        for (int i = where ? 1 : 0; i < c->n; i++) xs[n++] = leaf(&c->in[i], true, true);
        ag_gradcheck_result r;
        cr_assert(ag_gradcheck(case_fn, xs, n, &g, NULL, &r), "%s: %s", c->name,
                  r.report[0] ? r.report : ag_last_error());
        checked++;
        ag_release(m);
    }
    cr_assert_gt(checked, 150, "only %d cases were gradchecked", checked);
    test_finish();
}

/* A small classifier's loss through every recorded op of this file. */
static ag_tensor *composed(ag_tensor *const *in, void *userdata)
{
    (void)userdata;
    ag_tensor *h = ag_flatten(ag_unsqueeze(in[0], 1), 1, 2);             /* [2, 3] */
    ag_tensor *r = ag_where(ag_gt(h, 0), h, ag_mul(h, 0.1));             /* leaky relu */
    ag_tensor *w = ag_squeeze(ag_unsqueeze(ag_unsqueeze(in[1], 0), -1)); /* [3] */
    ag_tensor *s = ag_squeeze_dim(ag_sum_dim(ag_mul(r, w), 1, true), 1); /* [2] */
    return ag_sum(ag_where(ag_lt(s, 100), ag_mul(s, s), 0.0));
}

Test(shape, gradcheck_composed)
{
    ag_tensor *x[2] = {
        ag_tensor_from((const float[]){0.3f, -1.2f, 2.1f, 1.7f, -0.4f, 0.9f}, AG_SHAPE(2, 3), true),
        ag_tensor_from((const float[]){0.5f, -0.7f, 1.3f}, AG_SHAPE(3), true)};
    ag_gradcheck_result r;
    cr_assert(ag_gradcheck(composed, x, 2, NULL, NULL, &r), "%s (last error: %s)", r.report,
              ag_last_error());
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Views, storage and versions                                                           */

Test(shape, views_share_storage_and_version)
{
    record_errors();
    ag_tensor *x = ag_tensor_from((const float[]){1, 2, 3, 4, 5, 6}, AG_SHAPE(2, 3), true);
    ag_tensor *u = ag_unsqueeze(x, 0), *s = ag_squeeze(u), *f = ag_flatten(x, 0, -1);
    ag_tensor *d = ag_squeeze_dim(u, 0);
    cr_assert(u && s && f && d, "%s", ag_last_error());
    cr_assert(u->data == x->data && s->data == x->data && f->data == x->data && d->data == x->data,
              "views do not share x's storage");
    /* a write through x shows in every view */
    AG_NO_GRAD { ag_fill_(x, 7.0); }
    cr_assert(u->data[5] == 7.0f && f->data[0] == 7.0f, "a write to x did not reach the views");

    /* the version counter is the storage's: a graph that saved a view refuses to run
     * backward after x was changed, and one that saved x after a view was changed */
    ag_tensor *w = ag_tensor_from((const float[]){1, 2, 3}, AG_SHAPE(3), true);
    ag_tensor *wv = ag_unsqueeze(ag_data(w), 1); /* [3, 1], not recorded: writable */
    ag_tensor *y = ag_sum(ag_mul(w, w));         /* saves w */
    ag_mul_(wv, 2.0);
    cr_assert_not(ag_backward(y), "backward after writing w through a view succeeded");
    EXPECT_ERROR("backward", "modified by an inplace operation",
                 "[FloatTensor [3]] is at version 1");

    ag_tensor *v = ag_tensor_from((const float[]){1, 2}, AG_SHAPE(2), true);
    ag_tensor *vf = ag_flatten(ag_unsqueeze(v, 0), 0, 1); /* [2], recorded */
    ag_tensor *z = ag_sum(ag_mul(vf, vf));                /* saves the view */
    AG_NO_GRAD { ag_add_(v, 1.0); }
    cr_assert_not(ag_backward(z), "backward after writing the viewed tensor succeeded");
    EXPECT_ERROR("backward", "modified by an inplace operation", "expected version 0");
    test_finish();
}

Test(shape, flatten_returns_its_input_when_nothing_merges)
{
    ag_tensor *x = ag_randn(AG_SHAPE(2, 3), .requires_grad = true);
    ag_tensor *v = ag_randn(AG_SHAPE(4));
    size_t before = ag_memory_stats().live_tensors;
    cr_assert_eq(ag_flatten(x, 1, 1), x, "flatten(1, 1) is not x");
    cr_assert_eq(ag_flatten(x, -2, 0), x, "flatten(-2, 0) is not x");
    cr_assert_eq(ag_flatten(v, 0, -1), v, "flatten of a 1-D tensor is not the tensor");
    cr_assert_eq(ag_memory_stats().live_tensors, before, "flatten made a tensor");
    /* a 0-d tensor becomes [1], a view */
    ag_tensor *s = ag_scalar(2.5, true), *fs = ag_flatten(s, 0, -1);
    cr_assert(fs && fs != s && fs->ndim == 1 && fs->shape[0] == 1 && fs->data == s->data,
              "flatten of a 0-d tensor: %s", ag_last_error());
    cr_assert_str_eq(ag_grad_fn_name(fs), "ReshapeAliasBackward0", "grad_fn %s",
                     ag_grad_fn_name(fs));
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* where: what it saves                                                                  */

Test(shape, where_saves_its_condition)
{
    record_errors();
    ag_tensor *a = ag_tensor_from((const float[]){1, 2, 3}, AG_SHAPE(3), true);
    ag_tensor *cond = ag_tensor_from((const float[]){1, 0, 1}, AG_SHAPE(3));

    /* a second backward is PyTorch's error; with retain_graph, gradients accumulate */
    ag_tensor *y = ag_sum(ag_where(cond, a, 0.0));
    cr_assert(ag_backward_with(y, NULL, true), "first backward: %s", ag_last_error());
    cr_assert(ag_backward(y), "retained backward: %s", ag_last_error());
    CHECK("a.grad", a->grad, 0, 2, 0, 2);
    cr_assert_not(ag_backward(y), "a third backward succeeded");
    EXPECT_ERROR("backward", "Trying to backward through the graph a second time",
                 "WhereBackward0");

    /* the condition changed in place before backward: refused, naming it */
    ag_tensor *z = ag_sum(ag_where(cond, a, ag_mul(a, 2.0)));
    ag_fill_(cond, 0.0);
    cr_assert_not(ag_backward(z), "backward after changing the condition succeeded");
    EXPECT_ERROR("backward", "modified by an inplace operation", "[FloatTensor [3]]",
                 "is at version 1; expected version 0", "condition of WhereBackward0");
    CHECK("a.grad unchanged", a->grad, 0, 2, 0, 2);

    /* a condition that requires grad gets none; no input requiring grad: nothing saved */
    ag_tensor *c2 = ag_tensor_from((const float[]){0, 1, 0}, AG_SHAPE(3), true);
    ag_tensor *b = ag_tensor_from((const float[]){4, 5, 6}, AG_SHAPE(3));
    cr_assert(ag_backward(ag_sum(ag_where(c2, a, b))), "%s", ag_last_error());
    cr_assert_null(c2->grad, "the condition got a gradient");
    CHECK("a.grad", a->grad, 0, 2, 1, 2);
    ag_tensor *n = ag_where(c2, b, 1.0);
    cr_assert(n && !n->requires_grad && ag_is_leaf(n), "where of constants was recorded");
    test_finish();
}

Test(shape, where_hides_the_branch_not_taken_forward_not_backward)
{
    /* torch.where(x > 0, x.log(), 0) at x = 0: the -inf of log(0) is not taken, so y is
     * 0 there; backward, where gives log a 0 there, and log's 0 / x is 0 / 0 = nan, as in
     * PyTorch (the well-known trap of where) */
    ag_tensor *x = ag_tensor_from((const float[]){0, 1, 4}, AG_SHAPE(3), true);
    ag_tensor *y = ag_where(ag_gt(x, 0), ag_log(x), 0.0);
    CHECK("y", y, 1e-6f, 0, 0, 1.38629436f);
    cr_assert(ag_backward(ag_sum(y)), "%s", ag_last_error());
    /* PyTorch 1.13: x.grad = [nan, 1, 0.25] */
    cr_assert(isnan(x->grad->data[0]) && x->grad->data[1] == 1.0f && x->grad->data[2] == 0.25f,
              "x.grad = %g %g %g, PyTorch nan 1 0.25", (double)x->grad->data[0],
              (double)x->grad->data[1], (double)x->grad->data[2]);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Comparisons and argmax                                                                */

Test(shape, comparisons_and_argmax_are_never_recorded)
{
    ag_tensor *a = ag_tensor_from((const float[]){1, NAN, 3}, AG_SHAPE(3), true);
    ag_tensor *r[] = {ag_gt(a, 1.0), ag_lt(1, a), ag_ge(a, a),  ag_le(a, 2.0f),
                      ag_eq(a, a),   ag_ne(a, a), ag_argmax(a), ag_argmin_dim(a, 0, true)};
    CHECK("a > 1", r[0], 0, 0, 0, 1);
    CHECK("1 < a", r[1], 0, 0, 0, 1);
    CHECK("a >= a", r[2], 0, 1, 0, 1);
    CHECK("a <= 2", r[3], 0, 1, 0, 0);
    CHECK("a == a", r[4], 0, 1, 0, 1);
    CHECK("a != a", r[5], 0, 0, 1, 0);
    CHECK("argmax (the NaN)", r[6], 0, 1);
    CHECK("argmin (the NaN)", r[7], 0, 1);
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        cr_assert(!r[i]->requires_grad && ag_is_leaf(r[i]),
                  "result %zu requires grad (%d) or was recorded (%s)", i, r[i]->requires_grad,
                  ag_grad_fn_name(r[i]));
    test_finish();
}

Test(shape, accuracy_of_a_classifier)
{
    /* (logits.argmax(1) == labels).float().mean(): rows 0 and 2 right, row 1 tied (the
     * first wins, as in PyTorch), row 3 wrong */
    ag_tensor *logits = ag_tensor_from(
        (const float[]){0.1f, 2.0f, -1.0f, 0.5f, 0.5f, 0.2f, -3.0f, -2.0f, -1.0f, 1.0f, 0.0f, 2.0f},
        AG_SHAPE(4, 3), true);
    ag_tensor *labels = VEC(false, 1, 0, 2, 0);
    ag_tensor *acc = ag_mean(ag_eq(ag_argmax_dim(logits, 1, false), labels));
    cr_assert_not_null(acc, "%s", ag_last_error());
    cr_assert_eq(ag_item(acc), 0.75, "accuracy %g, expected 0.75", ag_item(acc));
    cr_assert(!acc->requires_grad, "the accuracy requires grad");
    test_finish();
}

Test(shape, argmax_dim_gives_max_dims_indices)
{
    ag_tensor *x = ag_zeros(AG_SHAPE(3, 4, 5));
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)((i * 7) % 5); /* ties */
    x->data[17] = NAN;
    for (int d = -3; d < 3; d++) {
        ag_tensor *idx, *idn;
        ag_max_dim(x, d, d & 1, &idx);
        ag_min_dim(x, d, d & 1, &idn);
        ag_tensor *am = ag_argmax_dim(x, d, d & 1), *an = ag_argmin_dim(x, d, d & 1);
        cr_assert(am && an && am->numel == idx->numel && am->ndim == idx->ndim, "dim %d: %s", d,
                  ag_last_error());
        cr_assert(!memcmp(am->data, idx->data, (size_t)am->numel * sizeof(float)) &&
                      !memcmp(an->data, idn->data, (size_t)an->numel * sizeof(float)),
                  "dim %d: argmax/argmin differ from max_dim/min_dim's indices", d);
    }
    test_finish();
}

Test(shape, empty_tensors_with_huge_sizes_cost_nothing, .timeout = 10)
{
    record_errors();
    const int64_t T40 = INT64_C(1) << 40, T20 = INT64_C(1) << 20;
    ag_tensor *x = ag_zeros(AG_SHAPE(T40, 1, T20, 0), .requires_grad = true);
    ag_tensor *c = ag_zeros(AG_SHAPE(T20, 1));
    ag_tensor *r[] = {
        ag_squeeze(x),
        ag_squeeze_dim(x, 1),
        ag_flatten(x, 0, 2),
        ag_unsqueeze(ag_squeeze(x), 0),
        ag_where(c, x, 1.0),
        ag_where(x, c, x),
        ag_gt(x, c),
        ag_eq(x, 0),
        ag_argmax_dim(x, 2, true),
        ag_argmin_dim(x, 1, false),
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        cr_assert_not_null(r[i], "op %zu: %s", i, ag_last_error());
        cr_assert_eq(r[i]->numel, 0, "op %zu made %lld elements", i, (long long)r[i]->numel);
        if (r[i]->requires_grad)
            cr_assert(ag_backward_with(r[i], ag_zeros(ag_size(r[i])), true), "backward %zu: %s", i,
                      ag_last_error());
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                                */

Test(shape, dimension_out_of_range)
{
    record_errors();
    ag_tensor *x = ag_zeros(AG_SHAPE(2, 3)), *s = ag_scalar(1);
    cr_assert_null(ag_unsqueeze(x, 3), "unsqueeze(x, 3) succeeded");
    EXPECT_ERROR("unsqueeze(x, 3)",
                 "unsqueeze: Dimension out of range (expected to be in range of [-3, 2], but got "
                 "3) for a tensor of shape [2, 3]");
    cr_assert_null(ag_unsqueeze(x, -4), "unsqueeze(x, -4) succeeded");
    EXPECT_ERROR("unsqueeze(x, -4)", "unsqueeze: Dimension out of range", "[-3, 2]", "got -4");
    cr_assert_null(ag_unsqueeze(s, 1), "unsqueeze(scalar, 1) succeeded");
    EXPECT_ERROR("unsqueeze(s, 1)", "unsqueeze: Dimension out of range", "[-1, 0]", "shape []");
    cr_assert_null(ag_squeeze_dim(x, 2), "squeeze(x, 2) succeeded");
    EXPECT_ERROR("squeeze(x, 2)", "squeeze: Dimension out of range", "[-2, 1]", "got 2", "[2, 3]");
    cr_assert_null(ag_squeeze_dim(s, -2), "squeeze(scalar, -2) succeeded");
    EXPECT_ERROR("squeeze(s, -2)", "squeeze: Dimension out of range", "[-1, 0]", "got -2");
    cr_assert_null(ag_flatten(x, 0, 2), "flatten(x, 0, 2) succeeded");
    EXPECT_ERROR("flatten(x, 0, 2)", "flatten: Dimension out of range", "[-2, 1]", "got 2");
    cr_assert_null(ag_flatten(s, 1, 0), "flatten(scalar, 1, 0) succeeded");
    EXPECT_ERROR("flatten(s, 1, 0)", "flatten: Dimension out of range", "[-1, 0]", "got 1");
    cr_assert_null(ag_argmax_dim(x, -3, false), "argmax(x, -3) succeeded");
    EXPECT_ERROR("argmax(x, -3)", "argmax: Dimension out of range", "[-2, 1]", "got -3");
    cr_assert_null(ag_argmin_dim(s, 1, true), "argmin(scalar, 1) succeeded");
    EXPECT_ERROR("argmin(s, 1)", "argmin: Dimension out of range", "[-1, 0]", "got 1");
    test_finish();
}

Test(shape, unsqueeze_of_a_4d_tensor_is_an_error)
{
    record_errors();
    ag_tensor *x = ag_zeros(AG_SHAPE(2, 3, 4, 5), .requires_grad = true);
    cr_assert_null(ag_unsqueeze(x, 0), "unsqueeze of a 4-D tensor succeeded");
    EXPECT_ERROR("unsqueeze(x, 0)",
                 "unsqueeze: the result would have 5 dimensions; agrad has at most 4 (self of "
                 "shape [2, 3, 4, 5])");
    /* the range is checked first, as PyTorch does */
    cr_assert_null(ag_unsqueeze(x, 5), "unsqueeze(x, 5) succeeded");
    EXPECT_ERROR("unsqueeze(x, 5)", "Dimension out of range", "[-5, 4]", "got 5");
    cr_assert_null(ag_unsqueeze(ag_unsqueeze(ag_zeros(AG_SHAPE(1, 2, 3)), -1), 2),
                   "unsqueeze twice of a 3-D tensor succeeded");
    EXPECT_ERROR("unsqueeze", "at most 4", "[1, 2, 3, 1]");
    test_finish();
}

Test(shape, flatten_with_start_after_end_is_an_error)
{
    record_errors();
    ag_tensor *x = ag_zeros(AG_SHAPE(2, 3, 4));
    cr_assert_null(ag_flatten(x, 2, 1), "flatten(x, 2, 1) succeeded");
    EXPECT_ERROR("flatten(x, 2, 1)",
                 "flatten: flatten() has invalid args: start_dim cannot come after end_dim "
                 "(start_dim 2, end_dim 1, self of shape [2, 3, 4])");
    cr_assert_null(ag_flatten(x, -1, 0), "flatten(x, -1, 0) succeeded");
    EXPECT_ERROR("flatten(x, -1, 0)", "start_dim cannot come after end_dim", "start_dim -1");
    test_finish();
}

Test(shape, where_with_shapes_that_do_not_broadcast)
{
    record_errors();
    ag_tensor *c3 = ag_ones(AG_SHAPE(3)), *c4 = ag_ones(AG_SHAPE(4)), *a = ag_ones(AG_SHAPE(2, 3));
    cr_assert_null(ag_where(c4, a, 0.0), "where([4], [2, 3], 0) succeeded");
    EXPECT_ERROR("where(c4, a, 0)",
                 "where: The size of tensor a (4) must match the size of tensor b (3) at "
                 "non-singleton dimension 1 (cond [4], a [2, 3], b [])");
    cr_assert_null(ag_where(c3, a, ag_ones(AG_SHAPE(3, 1))), "where([3], [2, 3], [3, 1])");
    EXPECT_ERROR("where(c3, a, [3, 1])",
                 "where: The size of tensor a (2) must match the size of tensor b (3) at "
                 "non-singleton dimension 0 (cond [3], a [2, 3], b [3, 1])");
    cr_assert_null(ag_where(c3, 1.0, c4), "where([3], 1, [4]) succeeded");
    EXPECT_ERROR("where(c3, 1, c4)", "tensor a (3)", "tensor b (4)", "cond [3], a [], b [4]");
    test_finish();
}

Test(shape, comparison_with_shapes_that_do_not_broadcast)
{
    record_errors();
    ag_tensor *a = ag_ones(AG_SHAPE(2, 3)), *b = ag_ones(AG_SHAPE(3, 2));
    ag_tensor *(*const fns[])(const ag_tensor *, const ag_tensor *) = {
        ag_gt_tt, ag_lt_tt, ag_ge_tt, ag_le_tt, ag_eq_tt, ag_ne_tt};
    const char *names[] = {"gt: ", "lt: ", "ge: ", "le: ", "eq: ", "ne: "};
    for (int k = 0; k < 6; k++) {
        cr_assert_null(fns[k](a, b), "%s[2, 3] against [3, 2] succeeded", names[k]);
        EXPECT_ERROR(names[k], names[k],
                     "The size of tensor a (3) must match the size of tensor b (2) at "
                     "non-singleton dimension 1 (shapes [2, 3] and [3, 2])");
    }
    test_finish();
}

Test(shape, argmax_of_an_empty_tensor_is_an_error)
{
    record_errors();
    cr_assert_null(ag_argmax(ag_zeros(AG_SHAPE(0, 3))), "argmax of [0, 3] succeeded");
    EXPECT_ERROR("argmax([0, 3])", "argmax: Expected reduction dim to be specified for "
                                   "input.numel() == 0 (shape [0, 3]).");
    cr_assert_null(ag_argmin(ag_zeros(AG_SHAPE(0))), "argmin of [0] succeeded");
    EXPECT_ERROR("argmin([0])", "argmin: Expected reduction dim to be specified", "[0]");
    cr_assert_null(ag_argmax_dim(ag_zeros(AG_SHAPE(3, 0)), 1, false), "argmax([3, 0], 1)");
    EXPECT_ERROR("argmax([3, 0], 1)",
                 "argmax: Expected reduction dim 1 to have non-zero size (shape [3, 0]).");
    cr_assert_null(ag_argmin_dim(ag_zeros(AG_SHAPE(0, 3)), -2, true), "argmin([0, 3], -2)");
    EXPECT_ERROR("argmin([0, 3], -2)", "argmin: Expected reduction dim 0 to have non-zero size");
    test_finish();
}

/* call must fail with exactly message. */
#define EXPECT_NULL(call, message)                                                                 \
    do {                                                                                           \
        cr_assert_null(call, "%s succeeded", #call);                                               \
        cr_assert_str_eq(ag_last_error(), message, "%s: message %s", #call, ag_last_error());      \
        ag_clear_error();                                                                          \
    } while (0)

Test(shape, null_and_released_arguments)
{
    record_errors();
    ag_tensor *x = ag_ones(AG_SHAPE(2));
    EXPECT_NULL(ag_unsqueeze(NULL, 0), "unsqueeze: argument self is NULL");
    EXPECT_NULL(ag_squeeze(NULL), "squeeze: argument self is NULL");
    EXPECT_NULL(ag_squeeze_dim(NULL, 0), "squeeze: argument self is NULL");
    EXPECT_NULL(ag_flatten(NULL, 0, -1), "flatten: argument self is NULL");
    EXPECT_NULL(ag_where(NULL, x, x), "where: argument cond is NULL");
    EXPECT_NULL(ag_where(x, NULL, 1.0), "where: argument a is NULL");
    EXPECT_NULL(ag_where(x, 1.0, NULL), "where: argument b is NULL");
    EXPECT_NULL(ag_where(x, x, NULL), "where: argument b is NULL");
    EXPECT_NULL(ag_where(NULL, 1.0, 0.0), "where: argument cond is NULL");
    EXPECT_NULL(ag_gt(NULL, x), "gt: argument a is NULL");
    EXPECT_NULL(ag_lt(x, NULL), "lt: argument b is NULL");
    EXPECT_NULL(ag_ge(1, NULL), "ge: argument b is NULL");
    EXPECT_NULL(ag_le(NULL, 1), "le: argument a is NULL");
    EXPECT_NULL(ag_eq(NULL, NULL), "eq: argument a is NULL");
    EXPECT_NULL(ag_ne(x, NULL), "ne: argument b is NULL");
    EXPECT_NULL(ag_argmax(NULL), "argmax: argument self is NULL");
    EXPECT_NULL(ag_argmin(NULL), "argmin: argument self is NULL");
    EXPECT_NULL(ag_argmax_dim(NULL, 0, true), "argmax: argument self is NULL");
    EXPECT_NULL(ag_argmin_dim(NULL, 0, false), "argmin: argument self is NULL");
    /* the NULL of a failed op passes through the rest silently: one message */
    EXPECT_NULL(ag_squeeze(ag_where(ag_gt(ag_unsqueeze(NULL, 0), 0), x, 0.0)),
                "unsqueeze: argument self is NULL");

    /* a released tensor is reported, naming the op and the argument */
    ag_mark m = ag_mark_now();
    ag_tensor *dead = ag_ones(AG_SHAPE(2));
    ag_release(m);
    cr_assert_null(ag_where(x, x, dead), "where with a released b succeeded");
    EXPECT_ERROR("where(x, x, released)", "where: argument b is a released tensor");
    cr_assert_null(ag_eq(dead, 0), "eq of a released tensor succeeded");
    EXPECT_ERROR("eq(released, 0)", "eq: argument a is a released tensor");
    cr_assert_null(ag_flatten(dead, 0, 0), "flatten of a released tensor succeeded");
    EXPECT_ERROR("flatten(released)", "flatten: argument self is a released tensor");
    cr_assert_null(ag_argmax(dead), "argmax of a released tensor succeeded");
    EXPECT_ERROR("argmax(released)", "argmax: argument self is a released tensor");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Out of memory                                                                         */

/* A step through every op of this file, with a backward, from a fresh start. */
static bool step(double *loss_out, float grad_out[6])
{
    ag_tensor *x =
        ag_tensor_from((const float[]){0.3f, -1.2f, 2.1f, 1.7f, -0.4f, 0.9f}, AG_SHAPE(2, 3), true);
    ag_tensor *h = ag_flatten(ag_unsqueeze(x, 1), 1, 2);
    ag_tensor *r = ag_where(ag_gt(h, 0), h, ag_mul(h, 0.1));
    ag_tensor *s = ag_squeeze_dim(ag_sum_dim(r, 1, true), 1);
    ag_tensor *top = ag_argmax_dim(ag_squeeze(ag_unsqueeze(r, 0)), 1, false);
    ag_tensor *loss = ag_sum(ag_mul(ag_add(s, ag_ne(top, 0)), s));
    if (!loss || !ag_backward(loss)) return false;
    *loss_out = ag_item(loss);
    memcpy(grad_out, x->grad->data, sizeof(float[6]));
    return true;
}

Test(shape, out_of_memory_anywhere_is_an_error)
{
    record_errors();
    double want_loss;
    float want_grad[6];
    cr_assert(step(&want_loss, want_grad), "the step without faults: %s", ag_last_error());
    ag_shutdown();
    int failures = 0;
    for (long n = 1; n < 200; n++) {
        ag_set_allocator(agt_faulty_realloc, NULL);
        record_errors();
        agt_arm(n);
        double loss;
        float grad[6];
        bool ok = step(&loss, grad);
        fault.fail_at = 0;
        if (ok) {
            cr_assert(loss == want_loss && !memcmp(grad, want_grad, sizeof grad),
                      "allocation %ld refused: the step succeeded with other numbers", n);
        } else {
            failures++;
            cr_assert(strstr(ag_last_error(), "out of memory"),
                      "allocation %ld refused: the message is not out of memory: %s", n,
                      ag_last_error());
        }
        ag_shutdown();
        ag_set_allocator(NULL, NULL);
        if (ok && fault.count < n) break; /* every allocation of the step has been refused */
    }
    cr_log_info("%d refused allocations, each an error", failures);
    cr_assert_gt(failures, 3, "only %d allocations could be refused", failures);
    test_finish();
}
