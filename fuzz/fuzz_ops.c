/* The fuzz target: each input is a program of agrad calls, decoded byte by byte. Tensors
 * of random shapes (empty, huge, overflowing, more than four dimensions), every op, both
 * backward forms, retain_graph, no_grad, in-place writes, marks and releases (stale ones
 * too), uses of released tensors, of released gradients and of tensors from before
 * ag_shutdown, NaN and Inf, gradcheck, printing, checked and fast mode, refused
 * allocations, softmax and the losses with options they take and options they do not,
 * optimizers and schedules, datasets and loaders, CSV read from memory and from files, the
 * progress line, names, the backward trace and anomaly mode, replays, the graph's picture and
 * statistics. Every invalid call must end in agrad's error path: never a sanitizer
 * report, a crash, a hang, a NULL without a message, or a leak.
 *
 * Built with libFuzzer by meson -Dfuzz=enabled (CC=clang): build/fuzz/fuzz_ops. With
 * fuzz/replay.c instead of libFuzzer it is fuzz_replay, which the test suite runs over
 * fuzz/corpus and fuzz/regressions.
 *
 * The harness keeps its own model of the tape (which tensors are live) and checks
 * agrad's count against it after every release, so a stale mark that frees live tensors
 * is caught as a difference, not only as a crash. */
#include <agrad.h>
#include <agrad_nn.h>
#include <agrad_optim.h>
#include <agrad_data.h>

#include "fuzz_common.h"

#include <math.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifndef HAVE_ASAN
#define HAVE_ASAN 0
#endif

/* ------------------------------------------------------------------------------------ */
/* The input                                                                             */

static const uint8_t *in;
static size_t in_left;

static unsigned byte(void)
{
    if (!in_left) return 0;
    in_left--;
    return *in++;
}

static double number(void)
{
    static const double table[] = {0.0,      -0.0,      1.0,   -1.0,    2.0,   0.5,
                                   -2.5,     3.0,       1e-3,  1e30,    -1e30, NAN,
                                   INFINITY, -INFINITY, 1e-40, FLT_MAX, -7.25, 100.0};
    unsigned b = byte();
    if (b < 200) return table[b % (sizeof table / sizeof *table)];
    uint32_t bits = byte() | byte() << 8 | byte() << 16 | (uint32_t)byte() << 24;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Small sizes mostly; now and then an empty, huge, overflowing or negative one. */
static int64_t size_of(unsigned b)
{
    static const int64_t table[] = {0,
                                    1,
                                    2,
                                    3,
                                    4,
                                    5,
                                    1,
                                    2,
                                    INT64_C(1) << 20,
                                    INT64_C(1) << 40,
                                    INT64_C(1) << 62,
                                    INT64_C(1) << 31,
                                    -1,
                                    -3,
                                    7,
                                    2};
    return table[b % (sizeof table / sizeof *table)];
}

static ag_shape shape(void)
{
    ag_shape s = {0, {0}};
    unsigned b = byte();
    s.ndim = b < 250 ? (int)(b % 5) : (int)(b % 7) - 1; /* -1, or 5 and 6: refused */
    for (int i = 0; i < s.ndim && i <= AG_MAX_DIMS; i++) s.d[i] = size_of(byte());
    return s;
}

/* ------------------------------------------------------------------------------------ */
/* What the harness knows of the tensors it holds                                        */

enum { NSLOTS = 16, NMARKS = 4 };
typedef enum kind { EMPTY, TENSOR, GRAD, PARAM } kind;
typedef struct slot {
    ag_tensor *t;
    kind kind;
    size_t pos;     /* TENSOR: its place on the tape; GRAD: its owner's; PARAM: none */
    unsigned epoch; /* the session (ag_shutdown count) it was made in */
    bool dead;      /* released (or freed with its owner) */
    bool unsafe;    /* dead, and its memory may have been reused: never passed to agrad */
} slot;

static slot slots[NSLOTS];
/* Replays (replay.c), live or freed: a freed one's pointer is safe to pass (agrad keeps a
 * list of live replays). One whose graph was released in fast mode is not run again: its
 * loss's memory may hold a newer tensor (the model's `unsafe`). */
enum { NREPLAYS = 2 };
static struct {
    ag_replay *r;
    size_t pos; /* its loss's place on the tape */
    unsigned epoch;
    bool unsafe;
} replays[NREPLAYS];
static struct {
    ag_mark m;
    bool made, stale;
} marks[NMARKS];
static size_t tape_len; /* the model's count of live tensors */
/* Modules, live or freed: a freed module's pointer is always safe to pass (agrad keeps a
 * list of live modules and never reads one it does not hold). */
enum { NMODULES = 4 };
static ag_module *modules[NMODULES];
static unsigned epoch;
static int no_grad_depth;

static bool checked(void) { return ag_is_checked(); }

/* Where printing and progress lines go: nowhere, a stream that is no terminal. */
static FILE *dev_null(void)
{
    static FILE *f;
    if (!f) f = fopen("/dev/null", "w");
    return f;
}

/* A tensor argument: a live tensor, or one agrad promises to recognise as released:
 * in checked mode any released one, in fast mode a released gradient (its block is
 * reused only by another gradient) or a tensor from before ag_shutdown. NULL too.
 * arg_slot gives its slot (NULL for a NULL argument). */
static slot *arg_slot(void)
{
    unsigned b = byte();
    slot *s = &slots[b % NSLOTS];
    return b >= 240 || s->kind == EMPTY || s->unsafe ? NULL : s;
}

static ag_tensor *arg(void)
{
    slot *s = arg_slot();
    return s ? s->t : NULL;
}

static slot *live_slot(void)
{
    slot *s = &slots[byte() % NSLOTS];
    return s->kind != EMPTY && !s->dead && s->epoch == epoch ? s : NULL;
}

/* The model's tape after a call that may have made tensors (and freed none): agrad's
 * count. */
static size_t follow_tape(void)
{
    size_t len = ag_memory_stats().live_tensors;
    if (len < tape_len) fail("a call freed tensors");
    return tape_len = len;
}

/* Stores the result r of a call that made tensors into a slot. Every NULL must come
 * with a message (the error was cleared before the call). */
static void keep(ag_tensor *r, size_t pos_from_end)
{
    size_t len = follow_tape();
    if (!r) {
        if (!ag_last_error()[0]) fail("a NULL result without an error");
        return;
    }
    if (len < pos_from_end) fail("a result that is not on the tape");
    (void)ag_size(r);
    if (ag_last_error()[0]) fail("a result that is not a live tensor");
    slot *s = &slots[byte() % NSLOTS];
    *s = (slot){r, TENSOR, len - pos_from_end, epoch, false, false};
}

static void optimizers_released_to(size_t pos);

/* The model's release to position pos. */
static void released_to(size_t pos)
{
    for (int i = 0; i < NSLOTS; i++) {
        slot *s = &slots[i];
        if (s->kind == EMPTY || s->kind == PARAM || s->dead || s->epoch != epoch || s->pos < pos)
            continue;
        s->dead = true;
        /* fast mode reuses released arena memory at once; a gradient block only for
         * another gradient, so a pointer to it stays recognisable */
        if (!checked() && s->kind == TENSOR) s->unsafe = true;
    }
    for (int k = 0; k < NMARKS; k++)
        if (marks[k].made && marks[k].m.private_pos > pos) marks[k].stale = true;
    for (int k = 0; k < NREPLAYS; k++)
        if (replays[k].r && replays[k].epoch == epoch && replays[k].pos >= pos && !checked())
            replays[k].unsafe = true;
    tape_len = pos;
    optimizers_released_to(pos);
}

/* ------------------------------------------------------------------------------------ */
/* Functions for ag_map and ag_gradcheck                                                 */

static float sq(float x) { return x * x; }
static float dsq(float x) { return 2 * x; }

static ag_tensor *fn_cube(ag_tensor *const *x, void *userdata)
{
    (void)userdata;
    return ag_sum(ag_mul(ag_mul(x[0], x[0]), x[0]));
}

static ag_tensor *fn_mix(ag_tensor *const *x, void *userdata)
{
    (void)userdata;
    return ag_add(ag_tanh(ag_mul(x[0], x[1])), ag_exp(ag_div(x[1], 3.0)));
}

static ag_tensor *fn_matmul(ag_tensor *const *x, void *userdata)
{
    (void)userdata;
    return ag_sigmoid(ag_matmul(x[0], x[1]));
}

static ag_tensor *fn_where(ag_tensor *const *x, void *userdata)
{
    (void)userdata;
    ag_tensor *v = ag_squeeze(ag_unsqueeze(x[0], 0));
    return ag_where(ag_gt(x[0], 0.5), ag_mul(v, v), ag_flatten(x[0], 0, -1));
}

static ag_tensor *fn_softmax(ag_tensor *const *x, void *userdata)
{
    (void)userdata;
    return ag_mse_loss(ag_log_softmax(x[0], -1), ag_logsumexp(x[1], 0, true));
}

/* Warnings (mse_loss's broadcast) are counted, not printed. */
static size_t warnings;
static void count_warning(const char *message, void *userdata)
{
    (void)message;
    (void)userdata;
    warnings++;
}

/* ------------------------------------------------------------------------------------ */
/* One call                                                                               */

static ag_tensor *unary(unsigned which, ag_tensor *x)
{
    switch (which % 23) {
    case 0:
        return ag_neg(x);
    case 1:
        return ag_exp(x);
    case 2:
        return ag_log(x);
    case 3:
        return ag_sqrt(x);
    case 4:
        return ag_abs(x);
    case 5:
        return ag_relu(x);
    case 6:
        return ag_sigmoid(x);
    case 7:
        return ag_tanh(x);
    case 8:
        return ag_sum(x);
    case 9:
        return ag_mean(x);
    case 10:
        return ag_detach(x);
    case 11:
        return ag_data(x);
    case 12:
        return ag_t(x);
    case 13:
        return ag_inverse(x);
    case 14:
        return ag_max(x);
    case 15:
        return ag_min(x);
    case 16:
        return ag_map(x, sq, dsq, "SquareBackward");
    case 17:
        return ag_pow(x, number());
    case 18: {
        double lo = number(), hi = number();
        return ag_clamp(x, lo, hi);
    }
    case 19:
        return ag_squeeze(x);
    case 20:
        return ag_argmax(x);
    case 21:
        return ag_argmin(x);
    default:
        return ag_view(x, shape());
    }
}

static ag_tensor *binary(unsigned which, ag_tensor *a, ag_tensor *b)
{
    switch (which % 12) {
    case 0:
        return ag_add(a, b);
    case 1:
        return ag_sub(a, b);
    case 2:
        return ag_mul(a, b);
    case 3:
        return ag_div(a, b);
    case 4:
        return ag_pow(a, b);
    case 5:
        return ag_gt(a, b);
    case 6:
        return ag_lt(a, b);
    case 7:
        return ag_ge(a, b);
    case 8:
        return ag_le(a, b);
    case 9:
        return ag_eq(a, b);
    case 10:
        return ag_ne(a, b);
    default:
        return ag_matmul(a, b);
    }
}

static ag_tensor *with_number(unsigned which, ag_tensor *x, double v)
{
    switch (which % 25) {
    case 0:
        return ag_add(x, v);
    case 1:
        return ag_add(v, x);
    case 2:
        return ag_sub(x, v);
    case 3:
        return ag_sub(v, x);
    case 4:
        return ag_mul(x, v);
    case 5:
        return ag_mul(v, x);
    case 6:
        return ag_div(x, v);
    case 7:
        return ag_div(v, x);
    case 8:
        return ag_pow(x, v);
    case 9:
        return ag_gt(x, v);
    case 10:
        return ag_gt(v, x);
    case 11:
        return ag_lt(x, v);
    case 12:
        return ag_lt(v, x);
    case 13:
        return ag_ge(x, v);
    case 14:
        return ag_ge(v, x);
    case 15:
        return ag_le(x, v);
    case 16:
        return ag_le(v, x);
    case 17:
        return ag_eq(x, v);
    case 18:
        return ag_eq(v, x);
    case 19:
        return ag_ne(x, v);
    case 20:
        return ag_ne(v, x);
    case 21: /* x as the condition and a branch; the number on either side, or both */
        return ag_where(x, x, v);
    case 22:
        return ag_where(x, v, x);
    case 23:
        return ag_where(x, v, number());
    default:
        return ag_pow(v, x);
    }
}

/* softmax, log_softmax, logsumexp over dimension d */
static ag_tensor *softmax_family(unsigned which, ag_tensor *x, int d, bool keepdim)
{
    switch (which % 3) {
    case 0:
        return ag_softmax(x, d);
    case 1:
        return ag_log_softmax(x, d);
    default:
        return ag_logsumexp(x, d, keepdim);
    }
}

/* A loss of x and t with random options: a reduction (now and then an invalid one), a
 * weight, a pos_weight, an ignore_index, each whether the loss takes it or not; called
 * directly or as a criterion, from one of a few call sites (for the warning's set). */
static ag_tensor *loss(unsigned which, ag_tensor *x, ag_tensor *t)
{
    static ag_tensor *(*const fns[])(ag_loss_args) = {ag_mse_loss_with,
                                                      ag_l1_loss_with,
                                                      ag_binary_cross_entropy_with,
                                                      ag_binary_cross_entropy_with_logits_with,
                                                      ag_nll_loss_with,
                                                      ag_cross_entropy_with};
    ag_tensor *(*fn)(ag_loss_args) = fns[which % 6];
    unsigned opts = byte();
    ag_loss_args a = {.input = x, .target = t, .reduction = (ag_reduction)(opts % 4)};
    if (opts & 4) a.weight = arg();
    if (opts & 8) a.pos_weight = arg();
    if (opts & 16) a.ignore_index = AG_INDEX((opts & 32) ? -100 : (int64_t)(byte() % 6) - 1);
    static const char *const files[] = {"fuzz_a.c", "fuzz_b.c"};
    const char *file = files[byte() & 1];
    int line = (int)(byte() % 4);
    if (opts & 64) {
        ag_criterion c = {"FuzzLoss", fn, a};
        return ag_loss_at(c, x, t, file, line);
    }
    a.private_file = file;
    a.private_line = line;
    return fn(a);
}

static ag_tensor *factory(unsigned which)
{
    ag_shape s = shape();
    bool rg = which & 16; /* the factories' optional requires_grad, by name or in order */
    switch (which % 9) {
    case 0:
        return ag_zeros(s, .requires_grad = rg);
    case 1:
        return ag_ones(s, rg);
    case 2:
        return ag_full(s, number(), .requires_grad = rg);
    case 3:
        return ag_randn(s, .requires_grad = rg);
    case 4:
        return ag_rand(s, rg);
    case 5: {
        double a = number(), b = number(), c = number();
        return ag_arange(a, b, c);
    }
    case 6:
        return ag_randperm(size_of(byte()));
    case 7:
        return ag_scalar(number(), byte() & 1);
    default: {
        float v[64];
        for (int i = 0; i < 64; i++) v[i] = (float)number();
        int64_t n = 1;
        for (int i = 0; i < s.ndim && i < AG_MAX_DIMS; i++)
            n *= s.d[i] >= 0 && s.d[i] <= 64 ? s.d[i] : 65;
        if (s.ndim < 0 || s.ndim > AG_MAX_DIMS || n > 64) return ag_tensor_from(NULL, s, false);
        return ag_tensor_from(v, s, byte() & 1);
    }
    }
}

static ag_tensor *inplace(unsigned which, ag_tensor *t, ag_tensor *x)
{
    switch (which % 16) {
    case 0:
        return ag_zero_(t);
    case 1:
        return ag_fill_(t, number());
    case 2:
        return ag_copy_(t, x);
    case 3:
        return which & 16 ? ag_add_scaled_(t, x, number()) : ag_add_(t, x);
    case 4:
        return ag_sub_(t, x);
    case 5:
        return ag_mul_(t, x);
    case 6:
        return ag_div_(t, x);
    case 7:
        return ag_add_(t, number());
    case 8:
        return ag_mul_(t, number());
    case 14:
        return ag_sub_(t, number());
    case 15:
        return ag_div_(t, number());
    case 9:
        return ag_set_data(t, x);
    case 10: {
        double a = number(), b = number();
        return ag_uniform_(t, a, b);
    }
    case 11: {
        double a = number(), b = number();
        return ag_normal_(t, a, b);
    }
    case 12:
        return ag_requires_grad_(t, byte() & 1);
    default:
        return ag_retain_grad(t);
    }
}

/* The model's view of a module freed (with its parameters): parameters kept in slots
 * are dead, and in fast mode their blocks may be reused. */
static void module_freed(void)
{
    for (int i = 0; i < NSLOTS; i++)
        if (slots[i].kind == PARAM && !slots[i].dead) {
            slots[i].dead = true;
            if (!checked()) slots[i].unsafe = true;
        }
}

/* A small layer, or one whose sizes are refused. */
static ag_module *layer(void)
{
    unsigned b = byte();
    int d = (int)(byte() % 9) - 4;
    switch (b % 8) {
    case 0:
        return ag_ReLU();
    case 1:
        return ag_Tanh();
    case 2:
        return ag_Sigmoid();
    case 3:
        return ag_Softmax(d);
    case 4:
        return ag_LogSoftmax(d);
    case 5:
        return ag_Flatten(d, (int)(byte() % 9) - 4);
    default: {
        int64_t in = size_of(byte()), out = size_of(byte());
        return ag_linear_new(in, out, byte() & 1);
    }
    }
}

/* Modules: made, run, listed, printed, put in a Sequential, grown by a child or a
 * parameter, saved and loaded where no file can be, freed (twice too). */
static void module_step(void)
{
    ag_module **m = &modules[byte() % NMODULES];
    switch (byte() % 10) {
    case 8: { /* a parameter or a child of its own, under a name that may be taken */
        static const char *const names[] = {"weight", "bias", "0", "lin", "a.b", ""};
        const char *name = names[byte() % 6];
        if (byte() & 1) {
            ag_tensor *p = ag_add_parameter(*m, name, arg());
            if (!p && !ag_last_error()[0]) fail("add_parameter failed without an error");
        } else {
            ag_module *child = ag_add_module(*m, name, layer()); /* freed if refused */
            if (!child && !ag_last_error()[0]) fail("add_module failed without an error");
            if (child && ag_child(*m, name) != child) fail("ag_child does not find a child");
        }
        break;
    }
    case 9: /* nothing to read or write there: the errors of save and load */
        if ((byte() & 1 ? ag_module_save(*m, "/nonexistent/agrad/m.safetensors")
                        : ag_module_load(*m, "/nonexistent/agrad/m.safetensors")) ||
            !ag_last_error()[0])
            fail("saving or loading where no file can be did not fail with an error");
        break;
    case 0: /* a new module in the slot; the old one (if any) freed first */
        if (*m) ag_module_free(*m), module_freed();
        ag_clear_error();
        *m = layer();
        if (!*m && !ag_last_error()[0]) fail("a layer failed without an error");
        break;
    case 1: { /* a Sequential of new layers, or of this module (it then owns it) */
        ag_module *kids[3] = {layer(), (byte() & 1) ? *m : layer(), layer()};
        ag_module *seq = ag_sequential_new(kids, 1 + (int)(byte() % 3));
        if (kids[1] == *m) *m = NULL; /* taken (or freed on failure) */
        if (!seq && !ag_last_error()[0]) fail("Sequential failed without an error");
        if (!seq) {
            module_freed(); /* on failure the layers given were freed */
            for (int i = 0; i < 3; i++)
                if (kids[i] != *m) ag_module_free(kids[i]); /* not live: an error, no crash */
            break;
        }
        if (*m) ag_module_free(*m), module_freed();
        *m = seq;
        break;
    }
    case 2: /* forward */
        keep(ag_forward(*m, arg()), 1);
        break;
    case 3: { /* a parameter, kept as a tensor */
        ag_params p = ag_parameters(*m);
        if (!p.n) break;
        slot *d = &slots[byte() % NSLOTS];
        *d = (slot){p.tensors[byte() % (unsigned)p.n], PARAM, 0, epoch, false, false};
        break;
    }
    case 4:
        ag_module_zero_grad(*m);
        (void)ag_parameter_count(*m);
        break;
    case 5:
        if (byte() & 1)
            ag_eval(*m);
        else
            ag_train(*m, byte() & 1);
        break;
    case 6: {
        char *r = ag_module_repr(*m);
        if (!r && !ag_last_error()[0]) fail("module repr failed without an error");
        ag_free(r);
        break;
    }
    default: /* freed; the pointer stays in the slot, to be used again */
        ag_module_free(*m);
        module_freed();
        break;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Optimizers, schedules and clipping (agrad_optim.h)                                    */

/* What the harness knows of an optimizer: the tape tensors it holds may be released under
 * it; in checked mode a step then reports them, in fast mode their memory may hold newer
 * tensors (or their data), so it is never stepped again (as a slot's unsafe tensor is never
 * passed). Its parameters from modules and gradients live in the gradient pool, whose
 * blocks hold tensor headers only: always recognisable. A freed optimizer's pointer stays
 * in its slot, to be used again (agrad keeps a list of live ones). */
enum { NOPTS = 3, NSCHEDS = 3 };
typedef struct opt_slot {
    ag_optimizer *o;
    bool live;
    bool has_tape;       /* holds tensors of the tape */
    size_t max_pos;      /* ... the newest at this position */
    bool holds_released; /* one of them was released */
    bool unsafe;         /* ... in fast mode, or fast mode came since */
} opt_slot;
static opt_slot opts[NOPTS];
static ag_scheduler *scheds[NSCHEDS];

static void optimizers_released_to(size_t pos)
{
    for (int k = 0; k < NOPTS; k++) {
        opt_slot *os = &opts[k];
        if (!os->live || !os->has_tape || os->max_pos < pos) continue;
        os->holds_released = true;
        if (!checked()) os->unsafe = true;
    }
}

/* Whether o may be passed to a call that reads its parameters: a freed optimizer may, unless
 * a live one took its address. */
static bool opt_safe(const ag_optimizer *o)
{
    for (int k = 0; k < NOPTS; k++)
        if (opts[k].live && opts[k].o == o) return !opts[k].unsafe;
    return true;
}

/* A list of up to four tensors, as arg() picks them, noting the tape tensors in os. */
static ag_params param_list(ag_tensor *list[4], opt_slot *os)
{
    int n = (int)(byte() % 5);
    for (int i = 0; i < n; i++) {
        slot *s = arg_slot();
        list[i] = s ? s->t : NULL;
        if (s && os && s->kind == TENSOR && !s->dead && s->epoch == epoch) {
            os->has_tape = true;
            if (s->pos > os->max_pos) os->max_pos = s->pos;
        }
    }
    if (n == 0 && (byte() & 1)) return (ag_params){list, NULL, 0};
    return (ag_params){list, NULL, n};
}

/* A list of tensors, or a module's parameters (persistent). */
static ag_params some_params(ag_tensor *list[4], opt_slot *os)
{
    if (byte() & 3) return param_list(list, os);
    return ag_parameters(modules[byte() % NMODULES]);
}

/* Options: each field left unset or set to a fuzzed value (flags -1, 0, 1 or 2). */
static ag_optim_args options(ag_params p)
{
    ag_optim_args a = ag_optim_args_unset();
    a.params = p;
    unsigned set = byte();
    set |= byte() << 8; /* two statements: the order of the reads is fixed */
    if (set & 1) a.lr = number();
    if (set & 2) a.momentum = number();
    if (set & 4) a.dampening = number();
    if (set & 8) a.weight_decay = number();
    if (set & 16) a.nesterov = (int)(byte() % 4) - 1;
    if (set & 32) a.maximize = (int)(byte() % 4) - 1;
    if (set & 64) a.betas[0] = number();
    if (set & 128) a.betas[1] = number();
    if (set & 256) a.eps = number();
    if (set & 512) a.amsgrad = (int)(byte() % 4) - 1;
    if (set & 1024) a.alpha = number();
    if (set & 2048) a.centered = (int)(byte() % 4) - 1;
    return a;
}

/* A call that reports failure must leave a message; none makes a tensor. */
static void after(bool ok, size_t live_before, const char *what)
{
    if (!ok && !ag_last_error()[0]) fail(what);
    if (ag_memory_stats().live_tensors != live_before) fail("an optim call made tensors");
}

/* A new optimizer into os: the old one freed first, then made, then noted. */
static void new_optimizer_begin(opt_slot *os)
{
    if (os->live) ag_optimizer_free(os->o);
    ag_clear_error();
    *os = (opt_slot){0};
}

static void new_optimizer_end(opt_slot *os, size_t live_before)
{
    os->live = os->o != NULL;
    after(os->live, live_before, "an optimizer failed without an error");
}

/* Optimizers over slot tensors and module parameters with fuzzed options (valid or not),
 * steps, zero_grad both ways, groups read and changed, schedules, clipping, frees, and
 * uses of freed optimizers and schedules. */
static void optim_step(void)
{
    opt_slot *os = &opts[byte() % NOPTS];
    ag_scheduler **sc = &scheds[byte() % NSCHEDS];
    ag_tensor *list[4];
    size_t live = ag_memory_stats().live_tensors;
    switch (byte() % 12) {
    case 0: { /* a new optimizer in the slot; the old one freed first */
        new_optimizer_begin(os);
        ag_optim_args a = options(some_params(list, os));
        static ag_optimizer *(*const makers[])(ag_optim_args) = {ag_sgd_with, ag_adam_with,
                                                                 ag_adamw_with, ag_rmsprop_with};
        os->o = makers[byte() % 4](a);
        new_optimizer_end(os, live);
        break;
    }
    case 1: /* the macro forms */
        new_optimizer_begin(os);
        unsigned which = byte();
        ag_params p = some_params(list, os);
        double lr = number();
        switch (which % 4) {
        case 0:
            os->o = ag_SGD(p, lr, .momentum = 0.9, .nesterov = true);
            break;
        case 1:
            os->o = ag_Adam(p, .betas = {0.5, 0.9}, .amsgrad = true);
            break;
        case 2:
            os->o = ag_AdamW(p, .maximize = true);
            break;
        default:
            os->o = ag_RMSprop(p, .centered = true, .momentum = 0.5, .lr = lr);
        }
        new_optimizer_end(os, live);
        break;
    case 2:
    case 3: /* steps */
        if (!opt_safe(os->o)) break;
        for (int n = 1 + (int)(byte() % 3); n > 0; n--)
            after(ag_step(os->o), live, "a step failed without an error");
        break;
    case 4: { /* zero_grad: set_to_none frees gradients that slots may hold */
        if (!opt_safe(os->o)) break;
        bool none = byte() & 1, ok = ag_zero_grad(os->o, none);
        after(ok, live, "zero_grad failed without an error");
        if (ok && none)
            for (int i = 0; i < NSLOTS; i++)
                if (slots[i].kind == GRAD) slots[i].dead = true;
        break;
    }
    case 5: { /* a group more, with fuzzed options */
        opt_slot more = {0};
        ag_optim_args a = options(some_params(list, &more));
        bool ok = ag_add_param_group_with(os->o, a);
        after(ok, live, "add_param_group failed without an error");
        if (ok && os->live && more.has_tape) {
            os->has_tape = true;
            if (more.max_pos > os->max_pos) os->max_pos = more.max_pos;
        }
        break;
    }
    case 6: { /* a group's options read and changed: any value, unchecked, as in PyTorch */
        int n = ag_param_group_count(os->o);
        ag_optim_args *g = ag_param_group(os->o, (int)(byte() % 4) - 1);
        after(n >= 0 && g, live, "param_group failed without an error");
        if (!g) break;
        ag_optim_args a = options(g->params);
        if (!isnan(a.lr)) g->lr = a.lr;
        if (a.nesterov != -1) g->nesterov = a.nesterov;
        if (a.amsgrad != -1) g->amsgrad = a.amsgrad;
        if (a.centered != -1) g->centered = a.centered;
        if (!isnan(a.momentum)) g->momentum = a.momentum;
        g->params.n = 1 << 20; /* read-only: put back by agrad */
        break;
    }
    case 7: /* freed; the pointer stays, to be used again */
        ag_optimizer_free(os->o);
        if (!os->live && !ag_last_error()[0] && os->o) fail("a freed optimizer freed again");
        os->live = false;
        break;
    case 8: { /* a schedule over the slot's optimizer (live or not); the old one freed */
        ag_scheduler_free(*sc);
        ag_clear_error();
        int64_t k = (int64_t)byte() - 100;
        double g = number();
        switch (byte() % 5) {
        case 0:
            *sc = ag_StepLR(os->o, k, .gamma = g);
            break;
        case 1: {
            int64_t at[4] = {k, 0, 0, -k};
            at[1] = byte() % 8;
            at[2] = byte() % 8;
            *sc = ag_MultiStepLR(os->o, (ag_milestones){at, (int)(byte() % 5)}, g);
            break;
        }
        case 2:
            *sc = ag_ExponentialLR(os->o, g);
            break;
        case 3:
            *sc = ag_CosineAnnealingLR(os->o, k, .eta_min = g);
            break;
        default:
            *sc = ag_StepLR(os->o); /* step_size missing */
        }
        after(*sc != NULL, live, "a schedule failed without an error");
        break;
    }
    case 9: /* schedule steps and rates; a freed schedule too */
        for (int n = 1 + (int)(byte() % 4); n > 0; n--) {
            after(ag_step(*sc), live, "a schedule step failed without an error");
            (void)ag_get_last_lr(*sc, (int)(byte() % 4) - 1); /* NAN: an error, or a NaN lr */
        }
        if (byte() % 4 == 0) ag_scheduler_free(*sc); /* the pointer stays */
        break;
    case 10: { /* clip_grad_norm_ over a list or a module's parameters */
        ag_params p = some_params(list, NULL);
        double max_norm = number(), order = number();
        bool strict = byte() & 1;
        (void)ag_clip_grad_norm_(p, max_norm, order, strict);
        after(true, live, "");
        break;
    }
    default: /* clip_grad_value_ */
        after(ag_clip_grad_value_(some_params(list, NULL), number()), live,
              "clip_grad_value_ failed without an error");
    }
}

/* ------------------------------------------------------------------------------------ */
/* Datasets and loaders (agrad_data.h)                                                   */

/* Datasets agrad made (TensorDatasets, Subsets), live or freed: a freed one's pointer is
 * safe to pass until ag_shutdown (agrad keeps its block), so each remembers its session.
 * Loaders, live or freed: always safe (agrad only compares the pointer). */
enum { NDATASETS = 4, NLOADERS = 3 };
static struct {
    ag_dataset *d;
    unsigned epoch;
} datasets[NDATASETS];
static ag_loader *loaders[NLOADERS];

/* A dataset of the harness's own, over two tensors taken from the slots at each step (so
 * that none is a pointer the harness may not pass), whose get fails at one index. */
typedef struct fuzz_data {
    ag_dataset base;
    ag_tensor *x, *y;
    int64_t bad;
} fuzz_data;

static int64_t fuzz_len(ag_dataset *self) { return ag_len(((fuzz_data *)self)->x); }

static bool fuzz_get(ag_dataset *self, int64_t index, ag_tensor **items)
{
    fuzz_data *d = (fuzz_data *)self;
    items[0] = ag_select(d->x, 0, index);
    if (self->fields > 1) items[1] = ag_select(d->y, 0, index);
    return index != d->bad;
}

static fuzz_data user_data;

/* A dataset argument: one of the slots (live, freed or NULL), the harness's own (with
 * fuzzed fields and failing index), or now and then a live tensor given as a dataset (a
 * tensor from before ag_shutdown is memory agrad no longer holds: never a dataset). */
static void *dataset_arg(void)
{
    unsigned b = byte();
    if (b % 8 == 7) {
        slot *s = live_slot();
        return s ? s->t : NULL;
    }
    if (b % 8 >= NDATASETS) {
        user_data.base = (ag_dataset){(int)(byte() % 3), fuzz_len, fuzz_get, NULL};
        user_data.bad = (int64_t)(byte() % 8) - 1;
        return &user_data;
    }
    int k = (int)(b % 8);
    return datasets[k].epoch == epoch ? datasets[k].d : NULL;
}

/* After a call that gives n outputs (next, dataset_get, dataset_slice): when it gave them,
 * each kept, made in order on the tape (out[k] n - k from its end); when not, every output
 * NULL, and the tape followed (the items read before an error stay on it). */
static void keep_outputs(bool ok, ag_tensor **out, int n)
{
    for (int k = 0; ok && k < n; k++) keep(out[k], (size_t)(n - k));
    if (ok) return;
    for (int k = 0; k < n; k++)
        if (out[k]) fail("a call that gave no item or batch left an output");
    follow_tape();
}

/* A dataset agrad made, into slot k of the datasets. */
static void keep_dataset(int k, ag_dataset *d)
{
    datasets[k].d = d;
    datasets[k].epoch = epoch;
}

static void data_step(void)
{
    static const int64_t batch_sizes[] = {1, 2, 3, 4, 0, -1, 64, INT64_C(1) << 40};
    static const int64_t ends[] = {0, 1, 2, 3, 5, -1, -2, INT64_MAX};
    static const double lengths[][3] = {{0.5, 0.5, 0}, {1, 1, 0},  {2, 1, 1},   {0.7, 0.2, 0.1},
                                        {1, 0, 0},     {3, -1, 0}, {NAN, 1, 0}, {0.3, 0.3, 0.4}};
    /* the harness's own dataset reads tensors it may pass now: loaders over it call its
     * len and get in any step */
    user_data.x = arg();
    user_data.y = arg();
    ag_loader **l = &loaders[byte() % NLOADERS];
    ag_tensor *out[3] = {NULL, NULL, NULL};
    int n = 1 + (int)(byte() % 3);
    ag_tensor **const outs[3] = {&out[0], &out[1], &out[2]};
    switch (byte() % 11) {
    case 0: { /* TensorDataset of one to three slot tensors */
        ag_tensor *t[3] = {arg(), arg(), arg()};
        int k = (int)(byte() % NDATASETS);
        ag_dataset *d = ag_tensor_dataset_new((const ag_tensor *const *)t, n);
        if (!d && !ag_last_error()[0]) fail("TensorDataset failed without an error");
        if (d) keep_dataset(k, d);
        break;
    }
    case 1: { /* random_split into two or three, into the slots */
        void *ds = dataset_arg();
        int m = 2 + (int)(byte() % 2);
        ag_dataset *parts[3] = {NULL, NULL, NULL};
        ag_dataset **const pouts[3] = {&parts[0], &parts[1], &parts[2]};
        if (ag_random_split_at(ds, lengths[byte() % 8], m, pouts, m, "fuzz.c", 1)) {
            for (int k = 0; k < m; k++) keep_dataset((int)(byte() % NDATASETS), parts[k]);
        } else if (!ag_last_error()[0]) {
            fail("random_split failed without an error");
        }
        break;
    }
    case 2: { /* a loader with fuzzed options; the old one freed first */
        void *ds = dataset_arg();
        ag_loader_args a = {ds, batch_sizes[byte() % 8], byte() & 1, byte() & 1, byte() & 1};
        ag_loader_free(*l);
        ag_clear_error();
        *l = ag_dataloader_with(a);
        if (!*l && !ag_last_error()[0]) fail("DataLoader failed without an error");
        break;
    }
    case 3:
    case 4: { /* a few batches, with one to three outputs */
        int times = 1 + (int)(byte() % 4);
        for (int i = 0; i < times; i++) {
            ag_clear_error();
            keep_outputs(ag_next_n(*l, outs, n), out, n); /* false: an error, or the end */
        }
        break;
    }
    case 5:
        if (!ag_iter(*l) && !ag_last_error()[0]) fail("iter failed without an error");
        break;
    case 6:
        if (ag_loader_len(*l) < 0 && !ag_last_error()[0]) fail("loader_len failed silently");
        break;
    case 7: { /* len, and one item */
        void *ds = dataset_arg();
        int64_t len = ag_dataset_len(ds);
        if (len < 0 && !ag_last_error()[0]) fail("dataset_len failed without an error");
        ag_clear_error();
        bool ok = ag_dataset_get_n(ds, ends[byte() % 8] - 1, outs, n);
        if (!ok && !ag_last_error()[0]) fail("dataset_get failed without an error");
        keep_outputs(ok, out, n);
        break;
    }
    case 8: { /* a slice; to the end only of small datasets */
        void *ds = dataset_arg();
        int64_t start = ends[byte() % 8], end = ends[byte() % 8];
        int64_t len = ag_dataset_len(ds);
        if (len > 64 && end == INT64_MAX) end = 4;
        ag_clear_error();
        bool ok = ag_dataset_slice_n(ds, start, end, outs, n);
        if (!ok && !ag_last_error()[0]) fail("dataset_slice failed without an error");
        keep_outputs(ok, out, n);
        break;
    }
    case 9: /* freed; the pointer stays, to be used again */
        ag_loader_free(*l);
        break;
    default:
        ag_dataset_free(dataset_arg());
        break;
    }
}

/* ------------------------------------------------------------------------------------ */
/* CSV bytes and the progress line (agrad_data.h)                                        */

/* A progress line on a stream that is no terminal (nothing is drawn): updated, closed, used
 * after closing, or left open for ag_shutdown. */
static void progress_step(unsigned w)
{
    ag_progress *p =
        ag_progress_new(w & 4 ? "epoch 1" : NULL, size_of(byte()) % 50, .stream = dev_null());
    if (!p && !ag_last_error()[0]) fail("progress_new failed without an error");
    for (unsigned k = byte() % 4; k > 0; k--)
        if (!ag_progress_update(p, size_of(byte()) - 1) && !ag_last_error()[0])
            fail("progress_update failed without an error");
    if (w & 16) {
        ag_progress_close(p);
        if (w & 32) { /* closed: an error, never a read of freed memory */
            ag_clear_error();
            if (p && (ag_progress_update(p, 1) || !ag_last_error()[0]))
                fail("a closed progress line was used");
        }
    }
}

/* CSV text built from the input, mostly of tokens a CSV file holds, read into a tensor kept
 * in a slot (by name, by index, every column; now and then a bad option): from memory, or
 * from a file that holds it and that no directory holds (nothing is left behind); or the
 * same options given a missing file or a directory, which are never read; or a progress
 * line (progress_step). */
static void csv_step(void)
{
    unsigned w = byte();
    if (w % 4 == 3) {
        progress_step(w);
        return;
    }
    static const char *const tokens[] = {"x",  "y", ",",   "\n", "\r\n", "1",  "2.5",  "-3e2",
                                         "\"", " ", "nan", "a",  ";",    "\t", "\"\"", "\r"};
    char text[512];
    size_t n = 0;
    unsigned tokens_and_source = byte(); /* the count; the source in the two high bits */
    for (unsigned k = tokens_and_source % 64; k > 0; k--) {
        unsigned b = byte();
        const char *t = b < 240 ? tokens[b % 16] : (char[2]){(char)byte(), 0};
        size_t len = b < 240 ? strlen(t) : 1;
        memcpy(text + n, t, len);
        n += len;
    }
    static const char *const names[] = {"x", "y", "", "a"};
    static const int64_t indices[] = {0, 1, 2, -1};
    const char *picked_names[2] = {names[w >> 2 & 3], names[w >> 4 & 3]};
    int64_t picked[2] = {indices[w >> 2 & 3], indices[w >> 4 & 3]};
    int count = 1 + (w >> 6 & 1);
    ag_csv_columns columns = {0};
    ag_csv_indices ix = {0};
    if (w % 4 == 1) columns = (ag_csv_columns){picked_names, count};
    if (w % 4 == 2 || (w & 128 && w % 4 == 1)) ix = (ag_csv_indices){picked, count};
    unsigned d = byte();
    char delimiter = d % 8 ? ',' : ";\t\" "[byte() % 4];
    switch (tokens_and_source >> 6) {
    case 2: { /* the text in a file */
        char path[32];
        int fd = bytes_as_file(text, n, path);
        if (fd < 0) break;
        keep(ag_read_csv(path, .columns = columns, .indices = ix, .delimiter = delimiter), 1);
        close(fd);
        break;
    }
    case 3: { /* no file to read: its name is not there, or is a directory's */
        const char *path = d & 8 ? "/nonexistent/agrad/data.csv" : "/";
        ag_tensor *t = ag_read_csv(path, .columns = columns, .indices = ix, .delimiter = delimiter);
        if (t || !ag_last_error()[0]) fail("a missing file or a directory read without an error");
        break;
    }
    default:
        keep(ag_read_csv_bytes(text, n, .columns = columns, .indices = ix, .delimiter = delimiter),
             1);
    }
}

/* Keeps the two inputs of a gradcheck small enough (at most 6 elements, rank 2) to finish
 * quickly; larger ones become NULL. */
static void small_inputs(ag_tensor *x[2])
{
    for (int i = 0; i < 2; i++) {
        ag_shape s = x[i] ? ag_size(x[i]) : (ag_shape){0, {0}};
        int64_t n = 1;
        for (int k = 0; k < s.ndim; k++) n *= s.d[k];
        if (n > 6 || s.ndim > 2) x[i] = NULL;
    }
    ag_clear_error();
}

/* The graph of x, seen (graph.c): every call ends in its result or in an error. */
static void graph_read(ag_tensor *x, unsigned w)
{
    bool ok;
    switch (w % 4) {
    case 0:
        ok = ag_graph_dot(x, w & 4 ? dev_null() : NULL);
        break;
    case 1:
        ok = ag_graph_stats_of(x).ok;
        break;
    case 2:
        ok = ag_graph_print_stats(x, w & 4 ? dev_null() : NULL);
        break;
    default:
        if (ag_graph_save(x, w & 4 ? "/nonexistent/agrad/graph.dot" : "graph.jpg"))
            fail("graph_save wrote where it cannot");
        ok = false;
    }
    if (!ok && !ag_last_error()[0]) fail("a graph call failed without an error");
}

/* A replay of the graph of a tensor with up to two inputs (any tensors: most are refused),
 * or a run of one with up to two values, or its free. A run makes and frees no tensor. */
static void replay_step(unsigned w)
{
    int k = (int)(byte() % NREPLAYS);
    if (w & 1) {
        slot *s = arg_slot();
        ag_tensor *ins[2] = {arg(), arg()};
        ag_replay *r = ag_replay_new(s ? s->t : NULL, ins, (int)(byte() % 3));
        if (!r && !ag_last_error()[0]) fail("replay_new failed without an error");
        if (!r) return;
        if (!s || s->kind != TENSOR) fail("a replay of a tensor no op made");
        if (replays[k].r) ag_replay_free(replays[k].r); /* freed before: an error, no more */
        replays[k].r = r;
        replays[k].pos = s->pos;
        replays[k].epoch = epoch;
        replays[k].unsafe = false;
    } else if (w & 2) {
        if (replays[k].unsafe) return;
        ag_tensor *vals[2] = {arg(), arg()};
        size_t before = ag_memory_stats().live_tensors;
        bool ok = ag_replay_run(replays[k].r, byte() & 1 ? vals : NULL, (int)(byte() % 3));
        if (!ok && !ag_last_error()[0]) fail("replay_run failed without an error");
        if (ag_memory_stats().live_tensors != before) fail("replay_run made or freed tensors");
    } else {
        ag_replay_free(replays[k].r); /* the pointer is kept: freed again, it is an error */
    }
}

/* Seeing backward (name.c, trace.c): names given, read and removed, the trace to a stream
 * or off, anomaly mode on or off (then every op's result is checked: an op may now fail
 * with its error, which keep takes as any failure); and replays. */
static void watch_step(void)
{
    static const char *const names[] = {
        "w", "", NULL, "a name longer than sixty-four bytes, which messages cut short with dots",
        "quote\" and\nnewline"};
    unsigned w = byte();
    if (w >= 224) { /* the top eighth of the byte: replays */
        replay_step(w);
        return;
    }
    ag_tensor *x = arg();
    switch (w % 4) {
    case 0: {
        ag_tensor *r = ag_set_name(x, names[(w / 4) % 5]);
        if (r && r != x) fail("set_name returned another tensor");
        if (!r && !ag_last_error()[0]) fail("set_name failed without an error");
        break;
    }
    case 1: {
        const char *name = ag_name(x);
        if (name && !*name) fail("an empty name");
        break;
    }
    case 2:
        ag_set_trace(w & 4 ? dev_null() : NULL);
        break;
    default:
        ag_set_detect_anomaly(w & 4);
    }
}

static void step(void)
{
    unsigned op = byte();
    ag_clear_error();
    switch (op % 30) {
    case 0:
    case 1:
        keep(factory(byte()), 1);
        break;
    case 2:
    case 3: {
        unsigned w = byte();
        ag_tensor *a = arg(), *b = arg();
        keep(binary(w, a, b), 1);
        break;
    }
    case 4: {
        unsigned w = byte();
        ag_tensor *x = arg();
        keep(with_number(w, x, number()), 1);
        break;
    }
    case 5:
    case 6: {
        unsigned w = byte();
        ag_tensor *x = arg();
        keep(unary(w, x), 1);
        break;
    }
    case 7: { /* reductions and index ops over a dimension */
        unsigned w = byte();
        ag_tensor *x = arg();
        int d = (int)(byte() % 11) - 5, d1 = (int)(byte() % 11) - 5;
        bool keepdim = byte() & 1;
        ag_tensor *idx = NULL;
        switch (w % 13) {
        case 0:
            keep(ag_sum_dim(x, d, keepdim), 1);
            break;
        case 1:
            keep(ag_mean_dim(x, d, keepdim), 1);
            break;
        case 2: {
            ag_tensor *y = ag_max_dim(x, d, keepdim, &idx);
            keep(y, idx ? 2 : 1);
            break;
        }
        case 3:
            keep(ag_min_dim(x, d, keepdim, NULL), 1);
            break;
        case 4:
            keep(ag_transpose(x, d, d1), 1);
            break;
        case 5:
            keep(ag_select(x, d, size_of(byte()) - 2), 1);
            break;
        case 6:
            keep(ag_slice(x, d, size_of(byte()) - 2, size_of(byte())), 1);
            break;
        case 7:
            keep(ag_unsqueeze(x, d), 1);
            break;
        case 8:
            keep(ag_squeeze_dim(x, d), 1);
            break;
        case 9: {
            /* with nothing to merge, flatten returns x itself, as PyTorch does: no new
             * tensor, and x keeps its place in the model */
            ag_tensor *f = ag_flatten(x, d, d1);
            if (f && f == x) {
                if (ag_memory_stats().live_tensors != tape_len) fail("flatten of x made tensors");
                break;
            }
            keep(f, 1);
            break;
        }
        case 10:
            keep(ag_argmax_dim(x, d, keepdim), 1);
            break;
        case 11:
            keep(ag_argmin_dim(x, d, keepdim), 1);
            break;
        default:
            keep(ag_reshape(x, shape()), 1);
            break;
        }
        if (idx) keep(idx, 1);
        break;
    }
    case 8: { /* cat / stack of up to 4 */
        ag_tensor *xs[4];
        int n = (int)(byte() % 5);
        for (int i = 0; i < n; i++) xs[i] = arg();
        int d = (int)(byte() % 9) - 4;
        keep((byte() & 1) ? ag_cat(xs, n, d) : ag_stack(xs, n, d), 1);
        break;
    }
    case 9:
    case 10: { /* backward */
        ag_tensor *y = arg(), *g = (byte() & 1) ? arg() : NULL;
        bool retain = byte() & 1,
             ok = g || (byte() & 1) ? ag_backward_with(y, g, retain) : ag_backward(y);
        if (!ok && !ag_last_error()[0]) fail("backward failed without an error");
        break;
    }
    case 11:
    case 12: { /* in place */
        unsigned w = byte();
        ag_tensor *t = arg(), *x = arg();
        size_t before = ag_memory_stats().live_tensors;
        ag_tensor *r = inplace(w, t, x);
        if (!r && !ag_last_error()[0]) fail("an in-place call failed without an error");
        if (r && r != t) fail("an in-place call returned another tensor");
        if (ag_memory_stats().live_tensors != before) fail("an in-place call made tensors");
        break;
    }
    case 13: /* no_grad */
        if ((byte() & 1) && no_grad_depth < 8) {
            ag_no_grad_begin();
            no_grad_depth++;
        } else {
            ag_no_grad_end(); /* an unmatched end is an error, not a crash */
            if (no_grad_depth > 0) no_grad_depth--;
        }
        break;
    case 14: { /* a mark */
        int k = (int)(byte() % NMARKS);
        marks[k].m = ag_mark_now();
        marks[k].made = true;
        marks[k].stale = false;
        break;
    }
    case 15: { /* release: to a mark, stale or not, or to a made-up one */
        int k = (int)(byte() % NMARKS);
        if (!marks[k].made) break;
        ag_release(marks[k].m);
        if (!marks[k].stale && marks[k].m.private_pos < tape_len)
            released_to(marks[k].m.private_pos);
        if (ag_memory_stats().live_tensors != tape_len) fail("release freed what the model keeps");
        break;
    }
    case 16: { /* a gradient, kept as a tensor of its own */
        slot *s = live_slot();
        if (!s || !s->t->grad) break;
        slot *d = &slots[byte() % NSLOTS];
        *d = (slot){s->t->grad, GRAD, s->pos, epoch, false, false};
        break;
    }
    case 17: { /* reading */
        ag_tensor *x = arg();
        switch (byte() % 8) {
        case 0:
            (void)ag_item(x);
            break;
        case 1:
            (void)ag_get(x, shape());
            break;
        case 2:
            (void)ag_len(x);
            break;
        case 3:
            (void)ag_size(x);
            break;
        case 4:
            (void)ag_is_leaf(x);
            break;
        case 5:
            (void)ag_grad_fn_name(x);
            break;
        case 6: {
            /* printing goes nowhere; a NULL stream is an error too */
            ag_fprint(byte() & 1 ? dev_null() : NULL, x);
            break;
        }
        default: {
            /* repr, or (the byte's high half) the graph: DOT text, statistics, a save that
             * must fail (no such folder, no known format: nothing is written) */
            unsigned w = byte();
            if (w >= 128) {
                graph_read(x, w);
                break;
            }
            char *s = ag_repr(x);
            if (!s && !ag_last_error()[0]) fail("repr failed without an error");
            ag_free(s);
        }
        }
        break;
    }
    case 18: { /* gradcheck, on inputs small enough to finish quickly */
        ag_tensor *x[2] = {arg(), arg()};
        small_inputs(x);
        ag_fn fns[4] = {fn_cube, fn_mix, fn_matmul, fn_where};
        ag_gradcheck_opts o = {byte() & 1 ? number() : 0, 0, byte() & 1 ? number() : 0};
        ag_gradcheck_result r;
        (void)ag_gradcheck(fns[byte() % 4], x, 1 + (int)(byte() & 1), NULL, &o, &r);
        follow_tape(); /* gradcheck releases what it made */
        break;
    }
    case 19: /* checked or fast mode */
        if (ag_set_checked(byte() & 1) && !checked()) {
            for (int i = 0; i < NSLOTS; i++) /* what was released may now be reused */
                if (slots[i].dead && slots[i].kind == TENSOR) slots[i].unsafe = true;
            for (int k = 0; k < NOPTS; k++)
                if (opts[k].holds_released) opts[k].unsafe = true;
        }
        break;
    case 20: /* shut down: every tensor held is now from before */
        if (byte() % 4) break;
        ag_shutdown();
        ag_set_error_handler(NULL, NULL);
        ag_set_warning_handler(count_warning, NULL);
        /* agrad gave its memory back: a pointer from before stays recognisable while the
         * system does not hand that memory out again, which AddressSanitizer's quarantine
         * ensures and a plain malloc does not */
        for (int i = 0; i < NSLOTS; i++) {
            slots[i].dead = true;
            if (!HAVE_ASAN) slots[i].unsafe = true;
        }
        for (int k = 0; k < NMARKS; k++) marks[k].stale = true;
        for (int k = 0; k < NOPTS; k++) opts[k].live = false; /* freed, pointers kept */
        tape_len = 0;
        no_grad_depth = 0;
        epoch++;
        break;
    case 21:
        ag_manual_seed(byte());
        break;
    case 22: { /* where of three tensors: cond, a, b */
        ag_tensor *c = arg(), *a = arg(), *b = arg();
        keep(ag_where(c, a, b), 1);
        break;
    }
    case 23:
    case 24:
        module_step();
        break;
    case 25: { /* a loss, the softmax family, or a gradcheck through both */
        unsigned w = byte();
        if (w % 8 < 6) {
            ag_tensor *x = arg(), *t = arg();
            keep(loss(w / 8, x, t), 1);
        } else if (w % 8 == 6) {
            ag_tensor *x = arg();
            int d = (int)(byte() % 11) - 5;
            bool keepdim = byte() & 1;
            keep(softmax_family(w / 8, x, d, keepdim), 1);
        } else {
            ag_tensor *x[2] = {arg(), arg()};
            small_inputs(x);
            ag_gradcheck_result r;
            (void)ag_gradcheck(fn_softmax, x, 2, NULL, NULL, &r);
            follow_tape(); /* gradcheck releases what it made */
        }
        break;
    }
    case 26:
        watch_step();
        break;
    case 27:
        optim_step();
        break;
    case 28:
        data_step();
        break;
    case 29:
        csv_step();
        break;
    default: { /* chains that make graphs worth a backward */
        ag_tensor *a = arg(), *b = arg();
        keep(ag_mean(ag_pow(ag_sub(ag_add(ag_mul(a, b), b), a), 2)), 1);
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in = data;
    in_left = size;
    memset(slots, 0, sizeof slots);
    memset(marks, 0, sizeof marks);
    memset(modules, 0, sizeof modules);
    memset(opts, 0, sizeof opts);
    memset(scheds, 0, sizeof scheds);
    memset(datasets, 0, sizeof datasets);
    memset(loaders, 0, sizeof loaders);
    memset(replays, 0, sizeof replays);
    tape_len = 0;
    no_grad_depth = 0;
    fuzz_start("fuzz_ops", 8 << 20, 48 << 20); /* huge tensors are refused, not made */
    ag_set_checked(data && size && data[0] & 1);
    ag_set_warning_handler(count_warning, NULL);
    for (int n = 0; in_left > 0 && n < 400; n++) {
        step();
        if (ag_is_grad_enabled() != (no_grad_depth == 0)) fail("the no_grad depth drifted");
    }
    fuzz_finish();
    return 0;
}
