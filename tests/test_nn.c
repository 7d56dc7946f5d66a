/* nn modules: Linear's initial weights and its values and gradients against PyTorch, reprs,
 * dotted parameter names, custom modules, modes, the lifetime of modules and parameters
 * under the memory rule, and misuse. */
#include <stdlib.h>

#include "agrad_test.h"
#include "ref/nn_ref.h"
#include <agrad_nn.h>

static void check_exact(const char *what, const ag_tensor *t, const float *want, int64_t n)
{
    cr_assert_not_null(t, "%s is NULL (%s)", what, ag_last_error());
    cr_assert_eq(t->numel, n, "%s: %lld elements, expected %lld", what, (long long)t->numel,
                 (long long)n);
    for (int64_t i = 0; i < n; i++)
        cr_assert(t->data[i] == want[i], "%s[%lld] = %.9g, PyTorch %.9g", what, (long long)i,
                  (double)t->data[i], (double)want[i]);
}

static void check_close(const char *what, const ag_tensor *t, const float *want, int64_t n)
{
    cr_assert_not_null(t, "%s is NULL (%s)", what, ag_last_error());
    cr_assert_eq(t->numel, n, "%s: %lld elements, expected %lld", what, (long long)t->numel,
                 (long long)n);
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabsf(t->data[i] - want[i]) <= 1e-6f + 1e-6f * fabsf(want[i]),
                  "%s[%lld] = %.9g, PyTorch %.9g", what, (long long)i, (double)t->data[i],
                  (double)want[i]);
}

static void check_repr(const ag_module *m, const char *want)
{
    char *s = ag_module_repr(m);
    cr_assert_not_null(s, "repr failed: %s", ag_last_error());
    cr_assert_str_eq(s, want, "repr:\n%s\nPyTorch:\n%s", s, want);
    ag_free(s);
}

/* ------------------------------------------------------------------------------------ */
/* Linear against PyTorch                                                                */

Test(nn_linear, initial_weights_equal_pytorchs_for_each_seed_and_shape)
{
    for (size_t k = 0; k < sizeof linear_inits / sizeof *linear_inits; k++) {
        const linear_init_case *c = &linear_inits[k];
        ag_manual_seed(c->seed);
        ag_module *m = ag_linear_new(c->in, c->out, c->bias);
        ag_params p = ag_parameters(m);
        cr_assert_eq(p.n, c->bias ? 2 : 1, "case %zu: %d parameters", k, p.n);
        cr_assert_str_eq(p.names[0], "weight");
        cr_assert_eq(p.tensors[0]->ndim, 2);
        cr_assert(p.tensors[0]->shape[0] == c->out && p.tensors[0]->shape[1] == c->in);
        check_exact("weight", p.tensors[0], c->weight, c->in * c->out);
        if (c->bias) {
            cr_assert_str_eq(p.names[1], "bias");
            check_exact("bias", p.tensors[1], c->bias_values, c->out);
        }
        for (int i = 0; i < p.n; i++) {
            cr_assert(p.tensors[i]->requires_grad && ag_is_leaf(p.tensors[i]));
            cr_assert_null(p.tensors[i]->grad);
        }
        ag_tensor *next = ag_rand(AG_SHAPE(1));
        cr_assert(next->data[0] == c->next,
                  "case %zu: the stream after init gives %.9g, PyTorch "
                  "%.9g",
                  k, (double)next->data[0], (double)c->next);
        ag_module_free(m);
    }
    test_finish();
}

Test(nn_linear, sequential_draws_its_layers_in_order)
{
    ag_manual_seed(0);
    ag_module *mlp = ag_Sequential(ag_Linear(2, 8), ag_Tanh(), ag_Linear(8, 1));
    ag_params p = ag_parameters(mlp);
    cr_assert_eq(p.n, 4);
    const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    const float *want[] = {mlp_0_weight, mlp_0_bias, mlp_2_weight, mlp_2_bias};
    const int64_t sizes[] = {16, 8, 8, 1};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(p.names[i], names[i]);
        check_exact(names[i], p.tensors[i], want[i], sizes[i]);
    }
    cr_assert_eq(ag_parameter_count(mlp), 33);
    ag_module_free(mlp);
    test_finish();
}

Test(nn_linear, values_and_gradients_for_inputs_of_rank_1_to_3)
{
    for (size_t k = 0; k < sizeof linear_fwds / sizeof *linear_fwds; k++) {
        const linear_fwd_case *c = &linear_fwds[k];
        ag_manual_seed(2);
        ag_module *lin = ag_Linear(3, 2);
        ag_shape s = {c->ndim, {c->shape[0], c->shape[1], c->shape[2]}};
        int64_t n = 1;
        for (int d = 0; d < c->ndim; d++) n *= c->shape[d];
        ag_tensor *x = ag_requires_grad_(
            ag_view(ag_sub(ag_mul(ag_arange(0, (double)n, 1), 0.37), 1.1), s), true);
        ag_tensor *y = ag_forward(lin, x);
        cr_assert_eq(y->ndim, c->ndim);
        cr_assert_eq(y->shape[c->ndim - 1], 2);
        ag_tensor *up =
            ag_view(ag_sub(ag_div(ag_arange(0, (double)y->numel, 1), 7), 0.5), ag_size(y));
        ag_backward(ag_sum(ag_mul(y, up)));
        ag_params p = ag_parameters(lin);
        check_close("y", y, c->y, y->numel);
        check_close("weight.grad", p.tensors[0]->grad, c->dweight, 6);
        check_close("bias.grad", p.tensors[1]->grad, c->dbias, 2);
        check_close("x.grad", ag_view(x->grad, AG_SHAPE(-1)), c->dx, n);
        ag_shutdown();
    }
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Custom modules, names, reprs                                                          */

/* The lab's class LinearRegression(nn.Module). */
typedef struct LinearRegression {
    ag_module base;
    ag_module *lin;
} LinearRegression;

static ag_tensor *LinearRegression_forward(ag_module *self, const ag_tensor *x)
{
    LinearRegression *m = (LinearRegression *)self;
    return ag_forward(m->lin, x);
}

static ag_module *LinearRegression_new(int64_t input_dim, int64_t output_dim)
{
    LinearRegression *self = AG_MODULE_NEW(LinearRegression, LinearRegression_forward);
    if (!self) return NULL;
    self->lin = ag_add_module(self, "lin", ag_Linear(input_dim, output_dim));
    return &self->base;
}

Test(nn_module, reprs_equal_pytorchs)
{
    ag_module *a = ag_Linear(1, 1), *b = ag_Linear(3, 2, false);
    ag_module *mlp = ag_Sequential(ag_Linear(2, 8), ag_Tanh(), ag_Linear(8, 1), ag_Sigmoid());
    ag_module *custom = LinearRegression_new(1, 1);
    check_repr(a, repr_linear);
    check_repr(b, repr_linear_no_bias);
    check_repr(mlp, repr_mlp);
    check_repr(custom, repr_custom);
    ag_module_free(a);
    ag_module_free(b);
    ag_module_free(mlp);
    ag_module_free(custom);
    test_finish();
}

/* class Net(nn.Module) of tools/gen_ref_nn.py: children of three kinds, nested. */
typedef struct Net {
    ag_module base;
    ag_module *features, *head, *out;
} Net;

static ag_tensor *Net_forward(ag_module *self, const ag_tensor *x)
{
    Net *m = (Net *)self;
    return ag_forward(m->out, ag_forward(m->head, ag_forward(m->features, x)));
}

static ag_module *Net_new(void)
{
    Net *self = AG_MODULE_NEW(Net, Net_forward);
    self->features = ag_add_module(self, "features",
                                   ag_Sequential(ag_Flatten(1, -1), ag_Linear(4, 3), ag_ReLU()));
    self->head = ag_add_module(self, "head", LinearRegression_new(3, 2));
    self->out = ag_add_module(self, "out", ag_LogSoftmax(1));
    return &self->base;
}

Test(nn_module, activation_and_nested_reprs_equal_pytorchs)
{
    ag_module *acts = ag_Sequential(ag_ReLU(), ag_Sigmoid(), ag_Tanh(), ag_Softmax(1),
                                    ag_LogSoftmax(-1), ag_Flatten(1, -1), ag_Flatten(0, 2));
    check_repr(acts, repr_activations);
    ag_module *net = Net_new();
    check_repr(net, repr_nested);
    ag_params p = ag_parameters(net);
    cr_assert_eq(p.n, 4);
    for (int i = 0; i < 4; i++) cr_assert_str_eq(p.names[i], nested_names[i]);
    /* a forward pass through all of it: (2, 2, 2) -> flatten -> (2, 4) -> ... -> (2, 2) */
    ag_tensor *y = ag_forward(net, ag_randn(AG_SHAPE(2, 2, 2)));
    cr_assert_not_null(y, "%s", ag_last_error());
    cr_assert(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 2);
    cr_assert_str_eq(ag_grad_fn_name(y), "LogSoftmaxBackward0");
    for (int i = 0; i < 2; i++) /* log-probabilities: exp sums to 1 */
        cr_assert_float_eq(expf(y->data[2 * i]) + expf(y->data[2 * i + 1]), 1.0f, 1e-6);
    ag_module_free(acts);
    ag_module_free(net);
    test_finish();
}

Test(nn_module, activation_modules_compute_their_functions)
{
    ag_tensor *x = ag_randn(AG_SHAPE(3, 4));
    struct {
        ag_module *m;
        ag_tensor *want;
    } cases[] = {
        {ag_ReLU(), ag_relu(x)},
        {ag_Sigmoid(), ag_sigmoid(x)},
        {ag_Tanh(), ag_tanh(x)},
        {ag_Softmax(0), ag_softmax(x, 0)},
        {ag_LogSoftmax(1), ag_log_softmax(x, 1)},
        {ag_Flatten(0, -1), ag_flatten(x, 0, -1)},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        ag_tensor *y = ag_forward(cases[k].m, x);
        check_exact(cases[k].m->type, y, cases[k].want->data, cases[k].want->numel);
        cr_assert_eq(y->ndim, cases[k].want->ndim);
        ag_module_free(cases[k].m);
    }
    test_finish();
}

Test(nn_module, a_custom_module_lists_its_childrens_parameters_with_dotted_names)
{
    ag_manual_seed(1);
    ag_module *model = LinearRegression_new(1, 1);
    ag_params p = ag_parameters(model);
    cr_assert_eq(p.n, 2);
    cr_assert_str_eq(p.names[0], "lin.weight");
    cr_assert_str_eq(p.names[1], "lin.bias");
    /* the same initial values as nn.Linear(1, 1) after manual_seed(1) */
    cr_assert_float_eq(p.tensors[0]->data[0], 0.5152632f, 1e-7);
    cr_assert_float_eq(p.tensors[1]->data[0], -0.4413782f, 1e-7);
    cr_assert_eq(ag_child(model, "lin"), ((LinearRegression *)model)->lin);
    cr_assert_null(ag_child(model, "nope"));
    /* a parameter registered by hand comes first (its own), then the children's */
    ag_tensor *scale = ag_add_parameter(model, "scale", ag_full(AG_SHAPE(2), 3.0));
    cr_assert_not_null(scale);
    p = ag_parameters(model);
    cr_assert_eq(p.n, 3);
    cr_assert_str_eq(p.names[0], "scale");
    cr_assert_str_eq(p.names[1], "lin.weight");
    cr_assert(scale->requires_grad && ag_is_leaf(scale) && scale->data[1] == 3.0f);
    /* nested in a Sequential: the names gain its index */
    ag_module *seq = ag_Sequential(ag_ReLU(), model);
    p = ag_parameters(seq);
    cr_assert_eq(p.n, 3);
    cr_assert_str_eq(p.names[0], "1.scale");
    cr_assert_str_eq(p.names[2], "1.lin.bias");
    ag_module_free(seq);
    test_finish();
}

Test(nn_module, forward_runs_the_custom_forward_and_gradients_reach_the_parameters)
{
    ag_manual_seed(1);
    ag_module *model = LinearRegression_new(1, 1);
    ag_tensor *X = ag_tensor_from((const float[]){1, 2, 3, 4}, AG_SHAPE(4, 1));
    ag_tensor *y = ag_forward(model, X);
    /* y = 0.5152632 x - 0.4413782 */
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(y->data[i], 0.5152632f * (float)(i + 1) - 0.4413782f, 1e-6);
    ag_backward(ag_sum(y));
    ag_params p = ag_parameters(model);
    cr_assert_float_eq(p.tensors[0]->grad->data[0], 10.0f, 1e-6); /* sum of x */
    cr_assert_float_eq(p.tensors[1]->grad->data[0], 4.0f, 1e-6);
    ag_module_zero_grad(model);
    cr_assert(p.tensors[0]->grad->data[0] == 0 && p.tensors[1]->grad->data[0] == 0);
    ag_module_free(model);
    test_finish();
}

Test(nn_module, train_and_eval_reach_every_module)
{
    ag_module *inner = ag_Linear(2, 2);
    ag_module *m = ag_Sequential(ag_Sequential(inner, ag_ReLU()), ag_Linear(2, 1));
    cr_assert(m->training && inner->training);
    ag_eval(m);
    cr_assert(!m->training && !inner->training && !ag_child(m, "1")->training);
    ag_train(m, true);
    cr_assert(m->training && inner->training);
    ag_module_free(m);
    test_finish();
}

static int destroyed;
static void count_destroy(ag_module *m)
{
    (void)m;
    destroyed++;
}

Test(nn_module, free_calls_destroy_once_per_module_and_shutdown_frees_what_is_left)
{
    ag_module *a = ag_module_new(sizeof(ag_module), "A", NULL);
    a->destroy = count_destroy;
    ag_module *b = ag_Sequential(a, ag_ReLU());
    ag_module_free(b);
    cr_assert_eq(destroyed, 1);
    ag_module *c = ag_module_new(sizeof(ag_module), "C", NULL);
    c->destroy = count_destroy;
    ag_Linear(4, 4); /* never freed by the user: ag_shutdown frees it */
    ag_shutdown();
    cr_assert_eq(destroyed, 2);
    cr_assert_eq(ag_memory_stats().parameters, 0);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Lifetime under the memory rule                                                        */

Test(nn_lifetime, parameters_survive_the_per_iteration_release_and_the_loop_allocates_nothing)
{
    ag_manual_seed(0);
    ag_tensor *X = ag_view(ag_arange(-2, 2, 0.5), AG_SHAPE(-1, 1));
    ag_tensor *Y = ag_sub(ag_mul(2, X), 1);
    ag_module *model = ag_Linear(1, 1);
    ag_params p = ag_parameters(model);
    ag_mark start = ag_mark_now();
    size_t tensors = ag_memory_stats().live_tensors, allocs = 0;
    for (int epoch = 0; epoch < 200; epoch++) {
        ag_tensor *d = ag_sub(ag_forward(model, X), Y);
        ag_backward(ag_mean(ag_mul(d, d)));
        AG_NO_GRAD
        {
            for (int i = 0; i < p.n; i++) ag_sub_(p.tensors[i], ag_mul(0.1, p.tensors[i]->grad));
        }
        ag_module_zero_grad(model);
        ag_release(start);
        if (epoch == 1) allocs = ag_memory_stats().system_allocs;
    }
    cr_assert_eq(ag_memory_stats().system_allocs, allocs, "the loop allocated after its start");
    cr_assert_eq(ag_memory_stats().live_tensors, tensors);
    cr_assert_eq(ag_memory_stats().parameters, 2);
    cr_assert_float_eq(p.tensors[0]->data[0], 2.0f, 1e-4);
    cr_assert_float_eq(p.tensors[1]->data[0], -1.0f, 1e-4);
    ag_module_free(model);
    cr_assert_eq(ag_memory_stats().parameters, 0);
    test_finish();
}

Test(nn_lifetime, a_module_freed_while_its_graph_lives_keeps_the_used_parameters_until_release)
{
    ag_module *model = ag_Sequential(ag_Linear(3, 2), ag_Linear(2, 1));
    ag_mark before = ag_mark_now();
    ag_tensor *y = ag_forward(ag_child(model, "1"), ag_ones(AG_SHAPE(2)));
    ag_module_free(model);
    /* layer 0 was not used: freed now; layer 1's weight and bias wait for y's graph */
    cr_assert_eq(ag_memory_stats().parameters, 2);
    cr_assert(ag_backward(y), "%s", ag_last_error());
    ag_release(before);
    cr_assert_eq(ag_memory_stats().parameters, 0);
    test_finish();
}

Test(nn_lifetime, a_parameter_read_by_a_backward_but_not_differentiated_stays_too)
{
    /* where's condition is no input of the graph's edges, but its backward reads it */
    ag_module *m = ag_Linear(2, 1);
    ag_tensor *w = ag_parameters(m).tensors[0];
    ag_mark before = ag_mark_now();
    ag_tensor *x = ag_ones(AG_SHAPE(1, 2), .requires_grad = true);
    ag_tensor *y = ag_sum(ag_where(ag_gt(w, 0), x, ag_neg(x)));
    ag_tensor *cond_user = ag_where(w, x, 0.0); /* the parameter itself as the condition */
    ag_module_free(m);
    cr_assert_eq(ag_memory_stats().parameters, 1, "the weight was freed under the graph");
    cr_assert(ag_backward(ag_add(y, ag_sum(cond_user))), "%s", ag_last_error());
    ag_release(before);
    cr_assert_eq(ag_memory_stats().parameters, 0);
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Misuse                                                                                */

Test(nn_misuse, a_freed_module_and_its_parameters_are_reported)
{
    record_errors();
    ag_set_checked(true);
    ag_module *m = ag_Linear(2, 1);
    ag_tensor *w = ag_parameters(m).tensors[0];
    ag_module_free(m);
    cr_assert_null(ag_forward(m, ag_ones(AG_SHAPE(2))));
    EXPECT_ERROR("forward(freed)", "forward: the module is not a live module");
    cr_assert_eq(ag_parameters(m).n, 0);
    EXPECT_ERROR("parameters(freed)", "parameters", "not a live module");
    cr_assert_eq(ag_parameter_count(m), -1);
    EXPECT_ERROR("parameter_count(freed)", "parameter_count", "not a live module");
    /* a module without parameters counts 0, whatever error came before */
    ag_module *relu = ag_ReLU();
    ag_mul(NULL, 2);
    cr_assert_eq(ag_parameter_count(relu), 0);
    ag_clear_error();
    ag_module_free(relu);
    ag_module_free(m);
    EXPECT_ERROR("free twice", "module_free", "not a live module");
    cr_assert_null(ag_mul(w, 2));
    EXPECT_ERROR("mul(freed parameter)", "mul: argument a", "a parameter of a freed module");
    ag_module_free(NULL);
    cr_assert_str_eq(ag_last_error(), "");
    test_finish();
}

Test(nn_misuse, linear_says_which_shapes_do_not_fit)
{
    record_errors();
    ag_module *lin = ag_Linear(3, 1);
    cr_assert_null(ag_forward(lin, ag_ones(AG_SHAPE(4, 2))));
    EXPECT_ERROR("Linear(4x2)", "Linear", "mat1 and mat2 shapes cannot be multiplied (4x2 and 3x1)",
                 "[4, 2]", "in_features=3");
    cr_assert_null(ag_forward(lin, ag_ones(AG_SHAPE(4, 0))));
    EXPECT_ERROR("Linear(4x0)", "(4x0 and 3x1)");
    cr_assert_null(ag_forward(lin, ag_scalar(1.0)));
    EXPECT_ERROR("Linear(0-d)", "Linear", "at least 1D");
    cr_assert_null(ag_forward(lin, NULL));
    EXPECT_ERROR("Linear(NULL)", "Linear: argument input is NULL");
    ag_module *seq = ag_Sequential(ag_ReLU());
    cr_assert_null(ag_forward(seq, NULL));
    EXPECT_ERROR("Sequential(NULL)", "Sequential: argument input is NULL");
    ag_module_free(seq);
    cr_assert_null(ag_Linear(-1, 2));
    EXPECT_ERROR("Linear(-1, 2)", "Linear", "negative dimension", "in_features=-1");
    ag_module_free(lin);
    test_finish();
}

Test(nn_misuse, registering_children_and_parameters_checks_names_and_owners)
{
    record_errors();
    ag_module *m = LinearRegression_new(1, 1);
    cr_assert_null(ag_add_module(m, "lin", ag_Linear(1, 1)));
    EXPECT_ERROR("add_module(lin twice)", "add_module", "attribute 'lin' already exists");
    cr_assert_null(ag_add_parameter(m, "lin", ag_ones(AG_SHAPE(1))));
    EXPECT_ERROR("add_parameter(lin)", "add_parameter", "attribute 'lin' already exists");
    cr_assert_null(ag_add_module(m, "a.b", ag_ReLU()));
    EXPECT_ERROR("add_module(a.b)", "add_module", "without '.'");
    cr_assert_null(ag_add_module(m, "x", NULL));
    EXPECT_ERROR("add_module(NULL)", "add_module: child 'x' is NULL");
    cr_assert_null(ag_add_parameter(m, "p", NULL));
    EXPECT_ERROR("add_parameter(NULL)", "add_parameter: argument value is NULL");
    ag_module *lin = ag_child(m, "lin");
    cr_assert_null(ag_add_module(m, "again", lin));
    EXPECT_ERROR("add_module(owned)", "already belongs to a module");
    ag_module_free(lin);
    EXPECT_ERROR("free(child)", "module_free", "belongs to a LinearRegression");
    cr_assert_null(ag_module_new(4, "Tiny", NULL));
    EXPECT_ERROR("module_new(4)", "module_new", "smaller than an ag_module");
    ag_module *noforward = ag_module_new(sizeof(ag_module), "NoForward", NULL);
    cr_assert_null(ag_forward(noforward, ag_ones(AG_SHAPE(1))));
    EXPECT_ERROR("forward(no forward)", "NoForward has no forward function");
    /* the model is intact after all of it */
    cr_assert_eq(ag_parameters(m).n, 2);
    ag_module_free(m);
    ag_module_free(noforward);
    test_finish();
}

Test(nn_misuse, sequential_with_a_failed_child_frees_the_others)
{
    record_errors();
    ag_module *s = ag_Sequential(ag_Linear(2, 2), ag_Linear(-1, 2), ag_ReLU());
    cr_assert_null(s);
    EXPECT_ERROR("Sequential(failed child)", "Linear", "negative dimension");
    cr_assert_eq(ag_memory_stats().parameters, 0, "the first Linear leaked");
    test_finish();
}

/* ------------------------------------------------------------------------------------ */
/* Out of memory                                                                         */

Test(nn_faults, every_allocation_of_building_a_model_can_fail)
{
    record_errors();
    ag_set_allocator(agt_faulty_realloc, NULL);
    long fail_at;
    for (fail_at = 1;; fail_at++) {
        agt_arm(fail_at);
        ag_module *m = ag_Sequential(LinearRegression_new(2, 3), ag_ReLU(), ag_Linear(3, 1));
        ag_params p = ag_parameters(m);
        char *r = ag_module_repr(m);
        bool failed = !m || !p.n || !r || ag_last_error()[0];
        if (failed) {
            cr_assert(strstr(ag_last_error(), "out of memory"), "fail_at %ld: \"%s\"", fail_at,
                      ag_last_error());
            ag_clear_error();
        }
        ag_free(r);
        ag_module_free(m);
        cr_assert_eq(ag_memory_stats().parameters, 0, "fail_at %ld leaked a parameter", fail_at);
        if (!failed && fault.count < fail_at) break;
    }
    cr_assert_gt(fail_at, 10);
    agt_arm(0);
    test_finish();
}
