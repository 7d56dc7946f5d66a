/* Modules: parameters and children by name, the dotted list of parameters, repr, and the
 * modules agrad provides (Linear, Sequential, activations).
 *
 * A module is memory from the allocation hook, registered in a list of live modules so
 * that a freed or foreign pointer is reported rather than read. Its parameters are
 * persistent tensors (memory.c): leaves outside the tape that no ag_release touches. The
 * module tree is walked recursively: its depth is the nesting the user wrote. */
#include "agrad_nn.h"
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct named_child {
    char *name;
    ag_module *m;
} named_child;

typedef struct named_param {
    char *name;
    ag_tensor *t;
} named_param;

struct ag_module_state {
    ag_module *parent;
    named_child *children;
    size_t nchildren, cap_children;
    named_param *params;
    size_t nparams, cap_params;
    /* ag_parameters' answer, rebuilt when stale: every parameter below, dotted names */
    ag_tensor **all;
    char **all_names;
    size_t nall, cap_all, cap_names;
    bool stale;
};

/* ------------------------------------------------------------------------------------ */
/* The live modules                                                                      */

static ag__live live;

static bool is_live(const ag_module *m) { return ag__live_has(&live, m); }

/* Checks a module argument of op: true when m is a live module. */
static bool check_module(const ag_module *m, const char *op)
{
    return ag__live_check(&live, m, op, "module", "ag_module_free");
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = ag__malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

ag_module *ag_module_new(size_t size, const char *type, ag_forward_fn forward)
{
    if (size < sizeof(ag_module))
        return ag__error("module_new: size %zu is smaller than an ag_module (%zu bytes)", size,
                         sizeof(ag_module));
    if (!type) return ag__error("module_new: type is NULL");
    ag_module *m = ag__malloc(size);
    struct ag_module_state *st = ag__malloc(sizeof *st);
    if (!m || !st || !ag__live_add(&live, m)) {
        ag__free(m);
        ag__free(st);
        return ag__error("module_new: out of memory making a %s", type);
    }
    memset(m, 0, size);
    *st = (struct ag_module_state){.stale = true};
    *m = (ag_module){.type = type, .forward = forward, .training = true, .state = st};
    return m;
}

/* ------------------------------------------------------------------------------------ */
/* Freeing                                                                               */

/* Frees the names of the dotted list and empties it. */
static void forget_list(struct ag_module_state *st)
{
    for (size_t i = 0; i < st->nall; i++) ag__free(st->all_names[i]);
    st->nall = 0;
}

/* Frees m and everything below it, without checks. */
static void destroy(ag_module *m)
{
    struct ag_module_state *st = m->state;
    if (m->destroy) m->destroy(m);
    for (size_t i = 0; i < st->nchildren; i++) {
        destroy(st->children[i].m);
        ag__free(st->children[i].name);
    }
    for (size_t i = 0; i < st->nparams; i++) {
        ag__free_persistent(st->params[i].t);
        ag__free(st->params[i].name);
    }
    forget_list(st);
    ag__free(st->children);
    ag__free(st->params);
    ag__free(st->all);
    ag__free(st->all_names);
    ag__free(st);
    ag__live_remove(&live, m);
    ag__free(m);
}

void ag_module_free(ag_module *m)
{
    if (!m) return;
    if (!check_module(m, "module_free")) return;
    if (ag__deferring()) {
        ag__error("module_free: " AG__INSIDE);
        return;
    }
    if (m->state->parent) {
        ag__error("module_free: this %s belongs to a %s, which frees it; free that one", m->type,
                  m->state->parent->type);
        return;
    }
    destroy(m);
}

void ag__modules_reset(void)
{
    /* Roots first; each frees its children. Parameters go with the memory. */
    while (live.n) {
        ag_module *root = live.p[live.n - 1];
        while (root->state->parent) root = root->state->parent;
        destroy(root);
    }
    ag__live_clear(&live);
}

/* ------------------------------------------------------------------------------------ */
/* Registering children and parameters                                                   */

/* Whether name can be registered on m (not NULL, not empty, no dot, not used yet). */
static bool name_free(const ag_module *m, const char *name, const char *op)
{
    if (!name || !*name || strchr(name, '.'))
        return ag__error("%s: the name must be a non-empty string without '.' (got \"%s\")", op,
                         name ? name : "NULL") != NULL;
    const struct ag_module_state *st = m->state;
    for (size_t i = 0; i < st->nchildren; i++)
        if (!strcmp(st->children[i].name, name))
            return ag__error("%s: attribute '%s' already exists in %s", op, name, m->type) != NULL;
    for (size_t i = 0; i < st->nparams; i++)
        if (!strcmp(st->params[i].name, name))
            return ag__error("%s: attribute '%s' already exists in %s", op, name, m->type) != NULL;
    return true;
}

/* m and every module above it list their parameters again on the next ag_parameters. */
static void mark_stale(ag_module *m)
{
    for (; m; m = m->state->parent) m->state->stale = true;
}

ag_module *ag_add_module(void *self, const char *name, ag_module *child)
{
    ag_module *m = self;
    if (!check_module(m, "add_module")) {
        if (is_live(child) && !child->state->parent) destroy(child);
        return NULL;
    }
    if (!child) {
        if (!ag_last_error()[0]) ag__error("add_module: child '%s' is NULL", name ? name : "");
        return NULL;
    }
    if (!check_module(child, "add_module")) return NULL;
    if (child->state->parent || child == m) {
        ag__error("add_module: '%s' already belongs to a module", name ? name : "");
        return NULL;
    }
    struct ag_module_state *st = m->state;
    named_child *grown = NULL;
    char *copy = NULL;
    if (name_free(m, name, "add_module")) {
        grown = ag__grow(st->children, &st->cap_children, st->nchildren + 1, sizeof *grown);
        if (grown) st->children = grown;
        copy = copy_string(name);
        if (!grown || !copy)
            ag__error("add_module: out of memory adding '%s' to %s", name, m->type);
    }
    if (!grown || !copy) {
        ag__free(copy);
        destroy(child);
        return NULL;
    }
    st->children[st->nchildren++] = (named_child){copy, child};
    child->state->parent = m;
    mark_stale(m);
    return child;
}

/* A new parameter of shape for module m, zeros, not yet requiring grad (so that an
 * initialiser may write it), registered under name. NULL after an error. */
static ag_tensor *new_parameter(ag_module *m, const char *name, int ndim, const int64_t *shape,
                                const char *op)
{
    if (!name_free(m, name, op)) return NULL;
    int64_t numel = ag__numel(op, ndim, shape);
    if (numel < 0) return NULL;
    struct ag_module_state *st = m->state;
    named_param *grown = ag__grow(st->params, &st->cap_params, st->nparams + 1, sizeof *grown);
    if (grown) st->params = grown;
    char *copy = copy_string(name);
    ag_tensor *t = ag__alloc_persistent(ndim, shape, numel);
    if (!grown || !copy || !t) {
        ag__free(copy);
        if (t) ag__free_persistent(t);
        char s[AG__SHAPE_STR];
        return ag__error("%s: out of memory making parameter '%s' of shape %s", op, name,
                         ag__shape_str(s, ndim, shape));
    }
    st->params[st->nparams++] = (named_param){copy, t};
    mark_stale(m);
    return t;
}

ag_tensor *ag_add_parameter(void *self, const char *name, const ag_tensor *value)
{
    ag_module *m = self;
    if (!check_module(m, "add_parameter") || !ag__check(value, "add_parameter", "value"))
        return NULL;
    ag_tensor *t = new_parameter(m, name, value->ndim, value->shape, "add_parameter");
    if (!t) return NULL;
    memcpy(t->data, value->data, (size_t)t->numel * sizeof(float));
    t->requires_grad = true;
    return t;
}

ag_module *ag_child(ag_module *m, const char *name)
{
    if (!is_live(m) || !name) return NULL;
    for (size_t i = 0; i < m->state->nchildren; i++)
        if (!strcmp(m->state->children[i].name, name)) return m->state->children[i].m;
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Parameters, modes                                                                     */

/* a + b + c in new memory from the hook, or NULL. */
static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = ag__malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* Appends the parameters of m, named prefix + name, to root's list. False when out of
 * memory. */
static bool collect(struct ag_module_state *root, const ag_module *m, const char *prefix)
{
    const struct ag_module_state *st = m->state;
    for (size_t i = 0; i < st->nparams; i++) {
        ag_tensor **all = ag__grow(root->all, &root->cap_all, root->nall + 1, sizeof *all);
        if (all) root->all = all;
        char **names = ag__grow(root->all_names, &root->cap_names, root->nall + 1, sizeof *names);
        if (names) root->all_names = names;
        char *name = all && names ? join(prefix, st->params[i].name, "") : NULL;
        if (!name) return false;
        root->all[root->nall] = st->params[i].t;
        root->all_names[root->nall++] = name;
    }
    for (size_t i = 0; i < st->nchildren; i++) {
        char *sub = join(prefix, st->children[i].name, ".");
        bool ok = sub && collect(root, st->children[i].m, sub);
        ag__free(sub);
        if (!ok) return false;
    }
    return true;
}

/* m's parameters with their dotted names, listed again when a module or parameter was
 * added below m since the last time; false after an error naming op. */
static bool list_parameters(ag_module *m, const char *op, ag_params *out)
{
    *out = (ag_params){0};
    if (!check_module(m, op)) return false;
    struct ag_module_state *st = m->state;
    if (st->stale) {
        forget_list(st);
        if (!collect(st, m, "")) {
            forget_list(st);
            return ag__error("%s: out of memory listing the parameters of %s", op, m->type) != NULL;
        }
        st->stale = false;
    }
    if (st->nall > INT32_MAX)
        return ag__error("%s: %s has more than 2^31 parameters", op, m->type) != NULL;
    *out = (ag_params){st->all, (const char *const *)st->all_names, (int)st->nall};
    return true;
}

ag_params ag_parameters(ag_module *m)
{
    ag_params p;
    list_parameters(m, "parameters", &p);
    return p;
}

int64_t ag_parameter_count(ag_module *m)
{
    ag_params p;
    if (!list_parameters(m, "parameter_count", &p)) return -1;
    int64_t n = 0;
    for (int i = 0; i < p.n; i++) n += p.tensors[i]->numel;
    return n;
}

void ag_module_zero_grad(ag_module *m)
{
    ag_params p;
    list_parameters(m, "module_zero_grad", &p);
    for (int i = 0; i < p.n; i++)
        if (p.tensors[i]->grad) ag_zero_(p.tensors[i]->grad);
}

static void set_training(ag_module *m, bool mode)
{
    m->training = mode;
    for (size_t i = 0; i < m->state->nchildren; i++) set_training(m->state->children[i].m, mode);
}

void ag_train(ag_module *m, bool mode)
{
    if (check_module(m, "train")) set_training(m, mode);
}

void ag_eval(ag_module *m)
{
    if (check_module(m, "eval")) set_training(m, false);
}

ag_tensor *ag_forward(ag_module *m, const ag_tensor *x)
{
    if (!check_module(m, "forward")) return NULL;
    if (!m->forward) return ag__error("forward: %s has no forward function", m->type);
    /* A module's forward written by the user notes its own ops' sites and forgets them:
     * what the rest of a Sequential records is at the user's call again. */
    ag_private_site_t site = ag_private_site;
    ag_tensor *y = m->forward(m, x);
    ag_private_site = site;
    return y;
}

bool ag_module_save(ag_module *m, const char *path)
{
    ag_params p;
    return list_parameters(m, "module_save", &p) &&
           ag_safetensors_save(path, p.names, p.tensors, p.n);
}

bool ag_module_load(ag_module *m, const char *path)
{
    ag_params p;
    return list_parameters(m, "module_load", &p) &&
           ag_safetensors_load(path, p.names, p.tensors, p.n);
}

/* ------------------------------------------------------------------------------------ */
/* repr                                                                                  */

static void repr(ag__text *t, const ag_module *m, int indent)
{
    char extra[512] = "";
    if (m->extra_repr) m->extra_repr(m, extra, sizeof extra);
    const struct ag_module_state *st = m->state;
    ag__put(t, "%s(", m->type);
    if (!st->nchildren) {
        ag__put(t, "%s)", extra);
        return;
    }
    if (extra[0]) ag__put(t, "\n%*s%s", indent + 2, "", extra);
    for (size_t i = 0; i < st->nchildren; i++) {
        ag__put(t, "\n%*s(%s): ", indent + 2, "", st->children[i].name);
        repr(t, st->children[i].m, indent + 2);
    }
    ag__put(t, "\n%*s)", indent, "");
}

char *ag_module_repr(const ag_module *m)
{
    if (!check_module(m, "module_repr")) return NULL;
    ag__text t = {0};
    repr(&t, m, 0);
    if (t.failed) {
        ag__free(t.s);
        return ag__error("module_repr: out of memory writing the repr of %s", m->type);
    }
    return t.s;
}

void ag_module_print(const ag_module *m)
{
    char *s = ag_module_repr(m);
    if (!s) return;
    puts(s);
    ag__free(s);
}

/* ------------------------------------------------------------------------------------ */
/* Linear                                                                                */

typedef struct linear {
    ag_module base;
    int64_t in, out;
    ag_tensor *weight, *bias;
} linear;

static int linear_extra_repr(const ag_module *self, char *buf, size_t size)
{
    const linear *l = (const linear *)self;
    return snprintf(buf, size, "in_features=%lld, out_features=%lld, bias=%s", (long long)l->in,
                    (long long)l->out, l->bias ? "True" : "False");
}

/* y = x W^T + b over the last dimension of x. */
static ag_tensor *linear_forward(ag_module *self, const ag_tensor *x)
{
    linear *l = (linear *)self;
    if (!ag__check(x, "Linear", "input")) return NULL;
    if (x->ndim == 0)
        return ag__error("Linear: both arguments to linear need to be at least 1D, but they are "
                         "0D and 2D");
    int64_t rows = 1, features = x->shape[x->ndim - 1];
    for (int d = 0; d < x->ndim - 1; d++) rows *= x->shape[d];
    if (features != l->in) {
        char s[AG__SHAPE_STR];
        return ag__error("Linear: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and "
                         "%lldx%lld): an input of shape %s for in_features=%lld",
                         (long long)rows, (long long)features, (long long)l->in, (long long)l->out,
                         ag__shape_str(s, x->ndim, x->shape), (long long)l->in);
    }
    ag_tensor *y = ag_matmul(x, ag_t(l->weight));
    if (l->bias) y = ag_add_tt(y, l->bias);
    return y;
}

/* nn.init.uniform_ in place on a parameter that does not require grad yet. */
static void init_uniform(ag_tensor *p, double bound)
{
    AG_NO_GRAD { ag_uniform_(p, -bound, bound); }
}

ag_module *ag_linear_new(int64_t in_features, int64_t out_features, bool bias)
{
    if (in_features < 0 || out_features < 0)
        return ag__error("Linear: Trying to create tensor with negative dimension: "
                         "in_features=%lld, out_features=%lld",
                         (long long)in_features, (long long)out_features);
    linear *l = AG_MODULE_NEW(linear, linear_forward);
    if (!l) return NULL;
    l->base.type = "Linear";
    l->base.extra_repr = linear_extra_repr;
    l->in = in_features;
    l->out = out_features;
    l->weight =
        new_parameter(&l->base, "weight", 2, (int64_t[]){out_features, in_features}, "Linear");
    l->bias = bias ? new_parameter(&l->base, "bias", 1, (int64_t[]){out_features}, "Linear") : NULL;
    if (!l->weight || (bias && !l->bias)) {
        destroy(&l->base);
        return NULL;
    }
    /* reset_parameters(): kaiming_uniform_(weight, a=sqrt(5)) is U(-b, b) with b = sqrt(3) *
     * gain / sqrt(fan_in), gain = sqrt(2 / (1 + 5)), computed in double as PyTorch does;
     * then the bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), 0 when fan_in is 0. */
    if (in_features > 0)
        init_uniform(l->weight, sqrt(3.0) * (sqrt(2.0 / 6.0) / sqrt((double)in_features)));
    if (l->bias) init_uniform(l->bias, in_features > 0 ? 1 / sqrt((double)in_features) : 0);
    l->weight->requires_grad = true;
    if (l->bias) l->bias->requires_grad = true;
    return &l->base;
}

/* ------------------------------------------------------------------------------------ */
/* Sequential                                                                             */

static ag_tensor *sequential_forward(ag_module *self, const ag_tensor *x)
{
    const struct ag_module_state *st = self->state;
    if (!ag__check(x, "Sequential", "input")) return NULL;
    ag_tensor *y = (ag_tensor *)x; /* an empty Sequential returns its input, as PyTorch's */
    for (size_t i = 0; i < st->nchildren && y; i++) {
        ag_module *child = st->children[i].m;
        if (!child->forward) return ag__error("forward: %s has no forward function", child->type);
        y = child->forward(child, y);
    }
    return y;
}

ag_module *ag_sequential_new(ag_module *const *children, int n)
{
    bool ok = children && n >= 0;
    for (int i = 0; ok && i < n; i++) ok = is_live(children[i]) && !children[i]->state->parent;
    ag_module *m = ok ? ag_module_new(sizeof(ag_module), "Sequential", sequential_forward) : NULL;
    for (int i = 0; m && i < n; i++) {
        char name[24];
        snprintf(name, sizeof name, "%d", i);
        if (!ag_add_module(m, name, children[i])) {
            for (int j = i + 1; j < n; j++) destroy(children[j]);
            destroy(m);
            return NULL;
        }
    }
    if (m) return m;
    /* Free the children that came, so that ag_Sequential(ag_Linear(...), ...) never leaks;
     * say which one failed. */
    int bad = -1;
    for (int i = 0; children && i < n; i++) {
        if (is_live(children[i]) && !children[i]->state->parent)
            destroy(children[i]);
        else if (bad < 0)
            bad = i;
    }
    if (!children || n < 0) return ag__error("Sequential: children is NULL or n < 0 (n = %d)", n);
    if (bad >= 0 && !ag_last_error()[0])
        return ag__error("Sequential: child %d is NULL, not a live module, or already belongs "
                         "to a module",
                         bad);
    return ag_last_error()[0] ? NULL : ag__error("Sequential: out of memory");
}

/* ------------------------------------------------------------------------------------ */
/* Activations                                                                           */

/* An activation module: an op applied to the whole input, with up to two dims. */
typedef struct activation {
    ag_module base;
    int dim, end_dim;
} activation;

static ag_tensor *relu_forward(ag_module *self, const ag_tensor *x)
{
    AG__UNUSED(self);
    return ag_relu(x);
}
static ag_tensor *sigmoid_forward(ag_module *self, const ag_tensor *x)
{
    AG__UNUSED(self);
    return ag_sigmoid(x);
}
static ag_tensor *tanh_forward(ag_module *self, const ag_tensor *x)
{
    AG__UNUSED(self);
    return ag_tanh(x);
}

static ag_module *new_activation(const char *type, ag_forward_fn forward, ag_extra_repr_fn repr,
                                 int dim, int end_dim)
{
    activation *a = (activation *)ag_module_new(sizeof(activation), type, forward);
    if (!a) return NULL;
    a->base.extra_repr = repr;
    a->dim = dim;
    a->end_dim = end_dim;
    return &a->base;
}

ag_module *ag_ReLU(void) { return new_activation("ReLU", relu_forward, NULL, 0, 0); }
ag_module *ag_Sigmoid(void) { return new_activation("Sigmoid", sigmoid_forward, NULL, 0, 0); }
ag_module *ag_Tanh(void) { return new_activation("Tanh", tanh_forward, NULL, 0, 0); }

static ag_tensor *softmax_forward(ag_module *self, const ag_tensor *x)
{
    return ag_softmax(x, ((activation *)self)->dim);
}
static ag_tensor *log_softmax_forward(ag_module *self, const ag_tensor *x)
{
    return ag_log_softmax(x, ((activation *)self)->dim);
}
static ag_tensor *flatten_forward(ag_module *self, const ag_tensor *x)
{
    const activation *a = (const activation *)self;
    return ag_flatten(x, a->dim, a->end_dim);
}

static int dim_repr(const ag_module *self, char *buf, size_t size)
{
    return snprintf(buf, size, "dim=%d", ((const activation *)self)->dim);
}
static int flatten_repr(const ag_module *self, char *buf, size_t size)
{
    const activation *a = (const activation *)self;
    return snprintf(buf, size, "start_dim=%d, end_dim=%d", a->dim, a->end_dim);
}

ag_module *ag_Softmax(int dim)
{
    return new_activation("Softmax", softmax_forward, dim_repr, dim, 0);
}
ag_module *ag_LogSoftmax(int dim)
{
    return new_activation("LogSoftmax", log_softmax_forward, dim_repr, dim, 0);
}
ag_module *ag_Flatten(int start_dim, int end_dim)
{
    return new_activation("Flatten", flatten_forward, flatten_repr, start_dim, end_dim);
}

/* ------------------------------------------------------------------------------------ */
/* A parameter's name, for the graph picture, the trace and messages                     */

/* The name m has in its parent's children. */
static const char *child_name(const ag_module *m)
{
    const struct ag_module_state *up = m->state->parent->state;
    for (size_t i = 0; i < up->nchildren; i++)
        if (up->children[i].m == m) return up->children[i].name;
    return "?"; /* not reached: a child is always in its parent's list */
}

/* Copies n bytes of s to buf[at...], the ones that fit before buf[size - 1]. */
static void put_at(char *buf, size_t size, size_t at, const char *s, size_t n)
{
    for (size_t i = 0; i < n && at + i + 1 < size; i++) buf[at + i] = s[i];
}

size_t ag__parameter_name(const ag_tensor *t, char *buf, size_t size)
{
    for (size_t k = 0; k < live.n; k++) {
        const ag_module *m = live.p[k];
        for (size_t i = 0; i < m->state->nparams; i++) {
            if (m->state->params[i].t != t) continue;
            /* "child.grandchild.name" from the root down: its length first, then its
             * pieces written from the end */
            const char *name = m->state->params[i].name;
            size_t len = strlen(name);
            for (const ag_module *c = m; c->state->parent; c = c->state->parent)
                len += strlen(child_name(c)) + 1;
            size_t at = len - strlen(name);
            put_at(buf, size, at, name, strlen(name));
            for (const ag_module *c = m; c->state->parent; c = c->state->parent) {
                const char *piece = child_name(c);
                put_at(buf, size, --at, ".", 1);
                at -= strlen(piece);
                put_at(buf, size, at, piece, strlen(piece));
            }
            if (size) buf[len < size ? len : size - 1] = '\0';
            return len;
        }
    }
    return 0;
}
