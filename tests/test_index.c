/* Rows, slices, cat and stack: values and gradients against PyTorch
 * (tests/ref/index_ref.h from tools/gen_ref_index.py), storage sharing, gradcheck,
 * errors. */
#include <math.h>
#include <string.h>

#include "agrad_test.h"
#include "ref/index_ref.h"

static ag_shape shape_of(int ndim, const int64_t *d)
{
    ag_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = d[i];
    return s;
}

static ag_tensor *apply(const index_case *c, ag_tensor **xs)
{
    if (!strcmp(c->op, "select")) return ag_select(xs[0], c->dim, c->a);
    if (!strcmp(c->op, "slice")) return ag_slice(xs[0], c->dim, c->a, c->b);
    if (!strcmp(c->op, "cat")) return ag_cat(xs, c->n, c->dim);
    return ag_stack(xs, c->n, c->dim);
}

Test(index, values_and_gradients_match_pytorch)
{
    for (size_t k = 0; k < index_ncases; k++) {
        const index_case *c = &index_cases[k];
        ag_tensor *xs[3];
        for (int i = 0; i < c->n; i++)
            xs[i] = ag_tensor_from(c->in[i].values, shape_of(c->in[i].ndim, c->in[i].shape), true);
        ag_tensor *y = apply(c, xs);
        cr_assert_not_null(y, "%s: %s", c->name, ag_last_error());
        cr_assert_eq(y->ndim, c->out_ndim, "%s: rank %d, PyTorch %d", c->name, y->ndim,
                     c->out_ndim);
        for (int i = 0; i < y->ndim; i++)
            cr_assert_eq(y->shape[i], c->out_shape[i], "%s: size %d is %lld, PyTorch %lld", c->name,
                         i, (long long)y->shape[i], (long long)c->out_shape[i]);
        for (int64_t i = 0; i < y->numel; i++)
            cr_assert_eq(y->data[i], c->out[i], "%s: out[%lld] = %g, PyTorch %g", c->name,
                         (long long)i, (double)y->data[i], (double)c->out[i]);
        ag_tensor *up = ag_tensor_from(c->upstream, ag_size(y), false);
        cr_assert(ag_backward(ag_sum(ag_mul(y, up))), "%s: %s", c->name, ag_last_error());
        for (int i = 0; i < c->n; i++)
            for (int64_t j = 0; j < xs[i]->numel; j++)
                cr_assert_eq(xs[i]->grad->data[j], c->in[i].grad[j],
                             "%s: grad of input %d [%lld] = %g, PyTorch %g", c->name, i,
                             (long long)j, (double)xs[i]->grad->data[j], (double)c->in[i].grad[j]);
    }
    test_finish();
}

static ag_tensor *case_fn(ag_tensor *const *inputs, void *userdata)
{
    const index_case *c = userdata;
    ag_tensor *xs[3] = {inputs[0], c->n > 1 ? inputs[1] : NULL, c->n > 2 ? inputs[2] : NULL};
    /* A non-linear consumer, so that misplaced gradients change the result. */
    ag_tensor *y = apply(c, xs);
    return ag_mul(y, y);
}

Test(index, gradcheck_every_case)
{
    for (size_t k = 0; k < index_ncases; k++) {
        const index_case *c = &index_cases[k];
        ag_tensor *xs[3];
        for (int i = 0; i < c->n; i++)
            xs[i] = ag_tensor_from(c->in[i].values, shape_of(c->in[i].ndim, c->in[i].shape), true);
        ag_gradcheck_result r;
        cr_assert(ag_gradcheck(case_fn, xs, c->n, (void *)c, NULL, &r), "%s: %s", c->name,
                  r.report[0] ? r.report : ag_last_error());
    }
    test_finish();
}

Test(index, rows_and_row_slices_are_views)
{
    ag_tensor *X = ag_view(ag_arange(0, 12, 1), AG_SHAPE(4, 3));
    ag_tensor *row = ag_select(X, 0, 2), *rows = ag_slice(X, 0, 1, 3);
    cr_assert_eq(row->data, X->data + 6, "X[2] shares X's storage");
    cr_assert_eq(rows->data, X->data + 3, "X[1:3] shares X's storage");
    ag_fill_(row, -1);
    cr_assert_eq(X->data[7], -1.0f, "a write through X[2] reaches X: %g", (double)X->data[7]);
    cr_assert_eq(rows->data[4], -1.0f, "and the overlapping X[1:3]: %g", (double)rows->data[4]);
    /* Along dim 1 agrad copies (contiguous tensors): writes do not reach X. */
    ag_tensor *col = ag_select(X, 1, 0);
    cr_assert_eq(col->ndim, 1, "X[:, 0] has rank %d", col->ndim);
    cr_assert(col->data < X->data || col->data >= X->data + X->numel, "X[:, 0] is a copy");
    cr_assert_eq(col->data[3], 9.0f, "X[3, 0] = %g", (double)col->data[3]);
    test_finish();
}

Test(index, a_view_of_a_leaf_that_requires_grad_is_recorded)
{
    ag_tensor *w = ag_tensor_from((float[]){1, 2, 3, 4}, AG_SHAPE(2, 2), true);
    ag_tensor *r = ag_select(w, 0, 1);
    cr_assert(r->requires_grad && !ag_is_leaf(r), "w[1] is recorded");
    cr_assert_str_eq(ag_grad_fn_name(r), "SelectBackward0", "grad_fn %s", ag_grad_fn_name(r));
    cr_assert_str_eq(ag_grad_fn_name(ag_slice(w, 0, 0, 1)), "SliceBackward0", "slice grad_fn");
    ag_tensor *ws[2] = {w, w};
    cr_assert_str_eq(ag_grad_fn_name(ag_cat(ws, 2, 0)), "CatBackward0", "cat grad_fn");
    cr_assert_str_eq(ag_grad_fn_name(ag_stack(ws, 2, 0)), "StackBackward0", "stack grad_fn");
    /* The same tensor twice in a cat receives both gradients. */
    ag_backward(ag_sum(ag_cat(ws, 2, 1)));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(w->grad->data[i], 2.0f, "w.grad[%d] = %g", i, (double)w->grad->data[i]);
    test_finish();
}

/* The labs' `for x, y in zip(X, Y)`: one SGD step per row, as in the lab "Training Two Parameter
 * Stochastic Gradient Descent". */
Test(index, iterating_over_rows_trains_like_the_sgd_lab)
{
    ag_manual_seed(1);
    ag_tensor *X = ag_view(ag_arange(-3, 3, 0.1), AG_SHAPE(-1, 1));
    ag_tensor *Y = ag_add(ag_sub(ag_mul(1, X), 1), ag_mul(0.1, ag_randn(ag_size(X))));
    ag_tensor *w = ag_scalar(-15.0, true), *b = ag_scalar(-10.0, true);
    ag_mark graph = ag_mark_now();
    for (int64_t i = 0; i < ag_len(X); i++) {
        ag_tensor *x = ag_select(X, 0, i), *y = ag_select(Y, 0, i);
        cr_assert_eq(x->ndim, 1, "a row of X [60, 1] has shape [1]");
        ag_tensor *loss = ag_mean(ag_pow(ag_sub(ag_add(ag_mul(w, x), b), y), 2));
        ag_backward(loss);
        ag_set_data(w, ag_sub(ag_data(w), ag_mul(0.1, w->grad)));
        ag_set_data(b, ag_sub(ag_data(b), ag_mul(0.1, b->grad)));
        ag_zero_(w->grad);
        ag_zero_(b->grad);
        ag_release(graph);
    }
    /* PyTorch, the same epoch (tools/gen_ref_index.py). */
    cr_assert_float_eq(w->data[0], SGD_EPOCH_W, 1e-5 * fabs(SGD_EPOCH_W), "w = %.7f, PyTorch %.7f",
                       (double)w->data[0], SGD_EPOCH_W);
    cr_assert_float_eq(b->data[0], SGD_EPOCH_B, 1e-5 * fabs(SGD_EPOCH_B), "b = %.7f, PyTorch %.7f",
                       (double)b->data[0], SGD_EPOCH_B);
    test_finish();
}

static void expect(const char *call, const char *words)
{
    cr_assert(strstr(ag_last_error(), words), "%s: message lacks \"%s\": %s", call, words,
              ag_last_error());
    ag_clear_error();
}

Test(index, errors_name_the_op_and_shapes)
{
    ag_set_error_handler(NULL, NULL);
    ag_tensor *x = ag_zeros(AG_SHAPE(3, 2)), *s = ag_scalar(1, false);
    cr_assert_null(ag_select(x, 0, 3), "select out of range");
    expect("select", "select: index 3 out of range for tensor of size [3, 2] at dimension 0");
    cr_assert_null(ag_select(x, 2, 0), "select dim 2");
    expect("select", "Dimension out of range (expected to be in range of [-2, 1], but got 2)");
    cr_assert_null(ag_select(s, 0, 0), "select of a scalar");
    expect("select", "select() cannot be applied to a 0-dim tensor");
    cr_assert_null(ag_slice(x, -3, 0, 1), "slice dim -3");
    expect("slice", "slice: Dimension out of range");
    ag_tensor *bad[2] = {x, ag_zeros(AG_SHAPE(3, 4))};
    cr_assert_null(ag_cat(bad, 2, 0), "cat of [3, 2] and [3, 4] along 0");
    expect("cat", "Sizes of tensors must match except in dimension 0");
    cr_assert_not_null(ag_cat(bad, 2, 1), "along dim 1 they fit: %s", ag_last_error());
    cr_assert_null(ag_stack(bad, 2, 0), "stack of different shapes");
    expect("stack", "stack expects each tensor to be equal size, but got [3, 2] at entry 0 and "
                    "[3, 4] at entry 1");
    cr_assert_null(ag_cat(bad, 0, 0), "cat of nothing");
    expect("cat", "expected a non-empty list of Tensors");
    ag_tensor *big[1] = {ag_zeros(AG_SHAPE(1, 1, 1, 1))};
    cr_assert_null(ag_stack(big, 1, 0), "stack to rank 5");
    expect("stack", "at most 4");
    ag_tensor *scalars[1] = {s};
    cr_assert_null(ag_cat(scalars, 1, 0), "cat of a 0-d tensor");
    expect("cat", "zero-dimensional tensor (at position 0) cannot be concatenated");
    cr_assert_eq(ag_len(s), -1, "len of a 0-d tensor");
    expect("len", "len() of a 0-d tensor");
    test_finish();
}
