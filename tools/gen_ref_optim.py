"""Writes tests/ref/optim_ref.h: 20-step trajectories of torch.optim's SGD, Adam, AdamW and
RMSprop (each option alone and combined, parameter groups, clip_grad_norm_ and
clip_grad_value_ inside the loop, a parameter that never gets a gradient, zero_grad with
set_to_none both ways) on a small regression, and the learning rates of StepLR,
MultiStepLR, ExponentialLR and CosineAnnealingLR epoch by epoch.

    /usr/bin/python3 tools/gen_ref_optim.py > tests/ref/optim_ref.h

Needs Debian's python3-torch (PyTorch 1.13); the tests read only the output. Each case is
written twice from one description: as the PyTorch call run here and as the agrad call the
test runs (a C function per case), so that the two cannot drift apart.

The regression: yhat = X @ W.t() + b, loss = mse_loss(yhat, Y), plus 0.5 * sum(c * c) on
even steps for the cases that use c (a parameter whose gradient comes and goes); otherwise c
is listed but never used, so its grad stays None and every step skips it. Each step is
zero_grad, backward, clipping if any, step; W, b and c are recorded after it.
"""
import math

import torch
import torch.nn.functional as F

from cref import c_float

X = [[0.5, -1.2, 2.0], [1.5, 0.3, -0.7], [-0.8, 2.2, 0.1], [0.0, -0.4, 1.3], [2.1, 1.0, -1.5]]
Y = [[1.0, -0.5], [0.2, 0.8], [-1.3, 2.0], [0.7, 0.1], [1.9, -1.1]]
W0 = [[0.3, -0.2, 0.1], [-0.4, 0.25, 0.05]]
B0 = [0.1, -0.3]
C0 = [0.8, -0.6]
STEPS = 20

CLASSES = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW,
           "RMSprop": torch.optim.RMSprop}
KINDS = {"SGD": 0, "Adam": 1, "AdamW": 2, "RMSprop": 3}


def c_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "{" + ", ".join(c_value(x) for x in v) + "}"
    return repr(float(v))


def c_options(opts):
    return "".join(", .%s = %s" % (k, c_value(v)) for k, v in opts.items())


def c_list(names):
    return "AG_PARAMS(" + ", ".join(names) + ")"


# (name, optimizer, options, extra groups [(params, options)], clip, set_to_none, uses c)
# params of the first group: W, b, c unless the case has groups.
# clip: None, ("norm", max_norm, norm_type) or ("value", clip_value)
CASES = [
    ("sgd", "SGD", dict(lr=0.1), [], None, False, False),
    ("sgd_momentum", "SGD", dict(lr=0.05, momentum=0.9), [], None, False, False),
    ("sgd_dampening", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3), [], None, False, False),
    ("sgd_nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), [], None, False, False),
    ("sgd_weight_decay", "SGD", dict(lr=0.1, weight_decay=0.05), [], None, False, False),
    ("sgd_maximize", "SGD", dict(lr=0.01, maximize=True), [], None, False, False),
    ("sgd_combined", "SGD",
     dict(lr=0.03, momentum=0.8, dampening=0.1, weight_decay=0.02, maximize=True), [], None,
     False, False),
    ("sgd_nesterov_decay", "SGD", dict(lr=0.04, momentum=0.7, nesterov=True, weight_decay=0.1),
     [], None, False, True),
    ("sgd_momentum_set_to_none", "SGD", dict(lr=0.05, momentum=0.9), [], None, True, True),
    ("sgd_momentum_zeroed", "SGD", dict(lr=0.05, momentum=0.9), [], None, False, True),
    ("adam", "Adam", dict(lr=0.05), [], None, False, False),
    ("adam_betas_eps", "Adam", dict(lr=0.05, betas=(0.0, 0.99), eps=1e-6), [], None, False, False),
    ("adam_amsgrad", "Adam", dict(lr=0.05, amsgrad=True), [], None, False, False),
    ("adam_weight_decay", "Adam", dict(lr=0.05, weight_decay=0.1), [], None, False, False),
    ("adam_maximize", "Adam", dict(lr=0.01, maximize=True), [], None, False, False),
    ("adam_combined", "Adam",
     dict(lr=0.02, betas=(0.8, 0.95), amsgrad=True, weight_decay=0.05, maximize=True), [], None,
     False, True),
    ("adam_set_to_none", "Adam", dict(lr=0.05), [], None, True, True),
    ("adam_zeroed", "Adam", dict(lr=0.05), [], None, False, True),
    ("adamw", "AdamW", dict(lr=0.05), [], None, False, False),
    ("adamw_amsgrad", "AdamW", dict(lr=0.05, amsgrad=True), [], None, False, False),
    ("adamw_maximize_decay", "AdamW", dict(lr=0.01, maximize=True, weight_decay=0.1), [], None,
     False, False),
    ("adamw_combined", "AdamW",
     dict(lr=0.03, betas=(0.5, 0.9), eps=1e-4, amsgrad=True, weight_decay=0.2, maximize=True),
     [], None, False, True),
    ("rmsprop", "RMSprop", dict(), [], None, False, False),
    ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True), [], None, False, False),
    ("rmsprop_momentum", "RMSprop", dict(lr=0.01, momentum=0.9), [], None, False, False),
    ("rmsprop_weight_decay", "RMSprop", dict(lr=0.02, weight_decay=0.1), [], None, False, False),
    ("rmsprop_combined", "RMSprop",
     dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.05), [],
     None, False, True),
    ("rmsprop_maximize", "RMSprop", dict(lr=0.005, maximize=True, momentum=0.3), [], None, False,
     False),
    ("sgd_groups", "SGD", dict(lr=0.1, momentum=0.9),
     [(["b"], dict(lr=0.01, momentum=0.0)), (["c"], dict(weight_decay=0.5, nesterov=True))],
     None, False, True),
    ("adam_groups", "Adam", dict(lr=0.05),
     [(["b"], dict(lr=0.2, betas=(0.5, 0.6), amsgrad=True)), (["c"], dict(maximize=True))],
     None, False, True),
    ("rmsprop_groups", "RMSprop", dict(lr=0.01),
     [(["b"], dict(centered=True, momentum=0.5))], None, False, False),
    ("sgd_clip_norm_2", "SGD", dict(lr=0.1, momentum=0.5), [], ("norm", 0.5, 2.0), False, True),
    ("sgd_clip_norm_inf", "SGD", dict(lr=0.1), [], ("norm", 0.3, math.inf), False, True),
    ("adam_clip_norm_1", "Adam", dict(lr=0.05), [], ("norm", 0.8, 1.0), False, True),
    ("sgd_clip_norm_3", "SGD", dict(lr=0.1), [], ("norm", 0.4, 3.0), True, True),
    ("sgd_clip_norm_half", "SGD", dict(lr=0.1), [], ("norm", 2.0, 0.5), False, False),
    ("sgd_clip_value", "SGD", dict(lr=0.1, momentum=0.5), [], ("value", 0.1), False, True),
    ("rmsprop_clip_value", "RMSprop", dict(lr=0.01), [], ("value", 0.05), False, False),
]


def f32(values):
    """The float32 values of a (nested) list, as C literals."""
    return ", ".join(c_float(v) for v in torch.tensor(values).reshape(-1).tolist())


def run(case):
    name, cls, opts, groups, clip, set_to_none, uses_c = case
    X_ = torch.tensor(X)
    Y_ = torch.tensor(Y)
    t = {"W": torch.tensor(W0, requires_grad=True), "b": torch.tensor(B0, requires_grad=True),
         "c": torch.tensor(C0, requires_grad=True)}
    grouped = [n for g, _ in groups for n in g]
    first = [n for n in ("W", "b", "c") if n not in grouped]
    opt = CLASSES[cls]([t[n] for n in first], **opts)
    for names, gopts in groups:
        opt.add_param_group(dict(params=[t[n] for n in names], **gopts))
    traj, grads = [], []
    for step in range(STEPS):
        opt.zero_grad(set_to_none=set_to_none)
        loss = F.mse_loss(X_ @ t["W"].t() + t["b"], Y_)
        if uses_c and step % 2 == 0:
            loss = loss + (t["c"] * t["c"]).sum() * 0.5
        loss.backward()
        for n in ("W", "b", "c"):
            g = t[n].grad
            grads.extend([math.nan] * t[n].numel() if g is None else g.reshape(-1).tolist())
        params = [t["W"], t["b"], t["c"]]
        if clip and clip[0] == "norm":
            torch.nn.utils.clip_grad_norm_(params, clip[1], clip[2])
        elif clip:
            torch.nn.utils.clip_grad_value_(params, clip[1])
        opt.step()
        for n in ("W", "b", "c"):
            traj.extend(t[n].detach().reshape(-1).tolist())
    return first, traj, grads


out = ["/* Generated by tools/gen_ref_optim.py from PyTorch %s. Do not edit. */" % torch.__version__,
       "#include <math.h>", "#include <stdbool.h>", "#include <stdint.h>", "",
       "static const float optim_X[] = {%s};" % f32(X),
       "static const float optim_Y[] = {%s};" % f32(Y),
       "static const float optim_W0[] = {%s};" % f32(W0),
       "static const float optim_B0[] = {%s};" % f32(B0),
       "static const float optim_C0[] = {%s};" % f32(C0),
       "enum { OPTIM_STEPS = %d, OPTIM_VALUES = 10 }; /* W (6), b (2), c (2) */" % STEPS, ""]

table = []
for case in CASES:
    name, cls, opts, groups, clip, set_to_none, uses_c = case
    first, traj, grads = run(case)
    out.append("static ag_optimizer *make_%s(ag_tensor *W, ag_tensor *b, ag_tensor *c)" % name)
    out.append("{")
    out.append("    (void)W, (void)b, (void)c;")
    out.append("    ag_optimizer *o = ag_%s(%s%s);" % (cls, c_list(first), c_options(opts)))
    for names, gopts in groups:
        out.append("    if (o && !ag_add_param_group(o, %s%s)) return NULL;" % (
            c_list(names), c_options(gopts)))
    out.append("    return o;")
    out.append("}")
    out.append("static const float traj_%s[] = {" % name)
    for s in range(STEPS):
        out.append("    " + ", ".join(c_float(v) for v in traj[s * 10:(s + 1) * 10]) + ",")
    out.append("};")
    out.append("static const float grads_%s[] = {" % name)
    for s in range(STEPS):
        out.append("    " + ", ".join(c_float(v) for v in grads[s * 10:(s + 1) * 10]) + ",")
    out.append("};")
    if clip is None:
        c_clip = "0, 0, 0"
    elif clip[0] == "norm":
        c_clip = "1, %r, %s" % (clip[1], "INFINITY" if clip[2] == math.inf else repr(clip[2]))
    else:
        c_clip = "2, %r, 0" % clip[1]
    table.append('    {"%s", %d, make_%s, %s, %s, %s, traj_%s, grads_%s},' % (
        name, KINDS[cls], name, c_clip, c_value(set_to_none), c_value(uses_c), name, name))

out.append("")
out.append("typedef struct optim_case {")
out.append("    const char *name;")
out.append("    int kind; /* 0 SGD, 1 Adam, 2 AdamW, 3 RMSprop */")
out.append("    ag_optimizer *(*make)(ag_tensor *W, ag_tensor *b, ag_tensor *c);")
out.append("    int clip; /* 0 none, 1 clip_grad_norm_(max, norm_type), 2 clip_grad_value_(max) */")
out.append("    double clip_max, norm_type;")
out.append("    bool set_to_none, uses_c;")
out.append("    const float *traj; /* OPTIM_STEPS rows of W, b, c after each step */")
out.append("    const float *grads; /* ... and their gradients before it (NAN where None) */")
out.append("} optim_case;")
out.append("static const optim_case optim_cases[] = {")
out.extend(table)
out.append("};")
out.append("")

# ---------------------------------------------------------------------------------------
# clip_grad_norm_ alone: the total norm it returns and the gradients after it, for several
# orders, over the same gradients: a few small ones (one parameter without a gradient), and
# nine of sizes around the kernels' blocks of eight.

CLIP_SIZES = [[3, 2, 4], [1, 3, 8, 9, 16, 17, 2, 5, 11]]
torch.manual_seed(5)
CLIP_GRADS = [[torch.tensor([1.0, -2.0, 0.0]), torch.tensor([3.0, 0.5]), None],
              [torch.randn(n) * 3 for n in CLIP_SIZES[1]]]
CLIP_ORDERS = [2.0, math.inf, -math.inf, 0.0, 1.0, 3.0, -1.0, 0.5, -2.5]
clip_table = []
for set_index, grads in enumerate(CLIP_GRADS):
    flat = [v for g in grads if g is not None for v in g.tolist()]
    out.append("static const float clip_grads_%d[] = {%s};" % (
        set_index, ", ".join(c_float(v) for v in flat)))
    for order in CLIP_ORDERS:
        for max_norm in (1.0, 100.0):
            params = []
            for g in grads:
                p = torch.zeros(CLIP_SIZES[set_index][len(params)], requires_grad=True)
                p.grad = None if g is None else g.clone()
                params.append(p)
            total = torch.nn.utils.clip_grad_norm_(params, max_norm, order).item()
            after = [v for p in params if p.grad is not None for v in p.grad.tolist()]
            clip_table.append("    {%d, %s, %r, %s, (const float[]){%s}}," % (
                set_index, "INFINITY" if order == math.inf else
                "-INFINITY" if order == -math.inf else repr(order), max_norm, c_float(total),
                ", ".join(c_float(v) for v in after)))
out.append("typedef struct clip_case {")
out.append("    int set; /* the gradients: clip_grads_<set>, of the sizes clip_sizes[set] */")
out.append("    double norm_type, max_norm;")
out.append("    float total;        /* what clip_grad_norm_ returned */")
out.append("    const float *after; /* the gradients after it */")
out.append("} clip_case;")
out.append("static const int clip_sizes[2][9] = {{%s}, {%s}};" % (
    ", ".join(str(n) for n in CLIP_SIZES[0]), ", ".join(str(n) for n in CLIP_SIZES[1])))
out.append("static const int clip_counts[2] = {%d, %d};" % tuple(len(x) for x in CLIP_SIZES))
out.append("static const clip_case clip_cases[] = {")
out.extend(clip_table)
out.append("};")
out.append("")

# ---------------------------------------------------------------------------------------
# Schedules: SGD over two groups (lr 0.1 and 0.05; no gradients, so the steps change
# nothing but the step count); each epoch optimizer.step() then scheduler.step().

SCHEDULES = {"StepLR": torch.optim.lr_scheduler.StepLR,
             "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR,
             "ExponentialLR": torch.optim.lr_scheduler.ExponentialLR,
             "CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR}

# (name, [(class, positional, options)], epochs, set_lr (epoch, group, lr) or None,
#  add_group (epoch, lr) or None)
SCHEDULE_CASES = [
    ("step_3_half", [("StepLR", [3], dict(gamma=0.5))], 30, None, None),
    ("step_1_default", [("StepLR", [1], {})], 12, None, None),
    ("step_7", [("StepLR", [7], dict(gamma=0.9))], 50, None, None),
    ("multistep_repeated", [("MultiStepLR", [[5, 12, 12, 20]], dict(gamma=0.3))], 30, None,
     None),
    ("multistep_unsorted", [("MultiStepLR", [[20, 5]], {})], 25, None, None),
    ("multistep_zero", [("MultiStepLR", [[0, 3]], dict(gamma=0.5))], 6, None, None),
    ("exponential", [("ExponentialLR", [0.9], {})], 40, None, None),
    ("exponential_up", [("ExponentialLR", [1.05], {})], 30, None, None),
    ("cosine_10", [("CosineAnnealingLR", [10], dict(eta_min=0.001))], 50, None, None),
    ("cosine_7", [("CosineAnnealingLR", [7], {})], 35, None, None),
    ("cosine_1", [("CosineAnnealingLR", [1], dict(eta_min=0.01))], 8, None, None),
    ("chained", [("MultiStepLR", [[4, 9]], dict(gamma=0.5)), ("ExponentialLR", [0.95], {})], 15,
     None, None),
    ("step_lr_set_by_hand", [("StepLR", [4], dict(gamma=0.5))], 20, (6, 0, 0.5), None),
    ("cosine_lr_set_by_hand", [("CosineAnnealingLR", [8], {})], 24, (5, 1, 0.2), None),
    ("cosine_group_added", [("CosineAnnealingLR", [10], dict(eta_min=0.002))], 25, None,
     (4, 0.2)),
    ("step_group_added", [("StepLR", [3], dict(gamma=0.5))], 12, None, (2, 0.3)),
]
MAXG = 3


def c_double(v):
    if math.isnan(v):
        return "NAN"
    return float(v).hex()


def c_positional(kind, arg):
    if kind == "MultiStepLR":
        return "AG_MILESTONES(%s)" % ", ".join(str(m) for m in arg)
    return repr(arg)


sched_table = []
for name, scheds, epochs, set_lr, add_group in SCHEDULE_CASES:
    p0 = torch.zeros(1, requires_grad=True)
    p1 = torch.zeros(1, requires_grad=True)
    p2 = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p0], lr=0.1)
    opt.add_param_group({"params": [p1], "lr": 0.05})
    made = [SCHEDULES[k](opt, *pos, **kw) for k, pos, kw in scheds]
    rows = []

    def record():
        lrs = [g["lr"] for g in opt.param_groups]
        last = made[0].get_last_lr()
        rows.append([lrs[i] if i < len(lrs) else math.nan for i in range(MAXG)] +
                    [last[i] if i < len(last) else math.nan for i in range(MAXG)])

    record()
    for epoch in range(epochs):
        if set_lr and set_lr[0] == epoch:
            opt.param_groups[set_lr[1]]["lr"] = set_lr[2]
        if add_group and add_group[0] == epoch:
            opt.add_param_group({"params": [p2], "lr": add_group[1]})
        opt.step()
        for s in made:
            s.step()
        record()
    out.append("static ag_scheduler *sched_%s(ag_optimizer *o, int k)" % name)
    out.append("{")
    for k, (cls, pos, kw) in enumerate(scheds):
        out.append("    if (k == %d) return ag_%s(o, %s%s);" % (
            k, cls, ", ".join(c_positional(cls, a) for a in pos), c_options(kw)))
    out.append("    return NULL;")
    out.append("}")
    out.append("static const double lrs_%s[][%d] = {" % (name, 2 * MAXG))
    for r in rows:
        out.append("    {" + ", ".join(c_double(v) for v in r) + "},")
    out.append("};")
    sl = set_lr or (-1, 0, 0.0)
    ag = add_group or (-1, 0.0)
    sched_table.append('    {"%s", sched_%s, %d, %d, {%d, %d, %r}, {%d, %r}, &lrs_%s[0][0]},' % (
        name, name, len(scheds), epochs, sl[0], sl[1], sl[2], ag[0], ag[1], name))

out.append("")
out.append("enum { SCHED_GROUPS = %d };" % MAXG)
out.append("typedef struct sched_case {")
out.append("    const char *name;")
out.append("    ag_scheduler *(*make)(ag_optimizer *o, int k); /* the k-th schedule */")
out.append("    int nsched, epochs;")
out.append("    struct { int epoch, group; double lr; } set_lr;  /* epoch -1: none */")
out.append("    struct { int epoch; double lr; } add_group;      /* epoch -1: none */")
out.append("    /* epochs + 1 rows: each group's lr, then the first schedule's get_last_lr(),")
out.append("     * SCHED_GROUPS each (NAN where there is no such group) */")
out.append("    const double *lrs;")
out.append("} sched_case;")
out.append("static const sched_case sched_cases[] = {")
out.extend(sched_table)
out.append("};")

print("\n".join(out))
