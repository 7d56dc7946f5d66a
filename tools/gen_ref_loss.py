"""Writes tests/ref/loss_ref.h: PyTorch's values and gradients (to input, and to target
where PyTorch gives one) for F.mse_loss, l1_loss, binary_cross_entropy,
binary_cross_entropy_with_logits, nll_loss and cross_entropy, each with every reduction,
with and without weight, pos_weight (per class and broadcast), ignore_index (default, set,
and every target ignored), with and without a batch dimension, at extreme inputs (BCE at
p = 0 and 1 exactly, logits of +-100), and mse/l1 with shapes that broadcast (PyTorch's
warning text is recorded with each).

    /usr/bin/python3 tools/gen_ref_loss.py > tests/ref/loss_ref.h

Needs Debian's python3-torch (PyTorch 1.13); the tests read only the output.
For each case the loss is sum(out * upstream) with a fixed random upstream.
"""
import warnings

import torch
import torch.nn.functional as F

from cref import c_float


def c_floats(t):
    if t is None:
        return "NULL"
    vals = t.detach().reshape(-1).tolist()
    if not vals:
        return "NULL"
    return "(const float[]){" + ", ".join(c_float(float(v)) for v in vals) + "}"


def c_shape(t):
    if t is None:
        return "0, {0}"
    dims = list(t.shape)
    return "%d, {%s}" % (len(dims), ", ".join(str(d) for d in dims) or "0")


def c_str(s):
    return "NULL" if s is None else '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


REDUCTIONS = ("mean", "sum", "none")
cases = []


def add_case(loss, x, t, reduction, weight=None, pos_weight=None, ignore_index=None,
             target_grad=False, smooth=True, label=""):
    """smooth: the loss is differentiable near x (and t), with room for gradcheck's steps."""
    x = x.clone().requires_grad_()
    integer_target = loss in ("nll_loss", "cross_entropy")
    tt = t.clone().long() if integer_target else t.clone().requires_grad_(target_grad)
    kw = {"reduction": reduction}
    if weight is not None:
        kw["weight"] = weight
    if pos_weight is not None:
        kw["pos_weight"] = pos_weight
    if ignore_index is not None:
        kw["ignore_index"] = ignore_index
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = getattr(F, loss)(x, tt, **kw)
    warning = str(caught[0].message) if caught else None
    smooth = smooth and bool(torch.isfinite(out).all())  # not the mean of no targets (nan)
    up = torch.randn(out.shape)
    (out * up).sum().backward()
    gx = x.grad if x.grad is not None else torch.zeros(x.shape)
    gt = None
    if target_grad:
        gt = tt.grad if tt.grad is not None else torch.zeros(t.shape)
    name = "%s %s %s/%s" % (loss, reduction, list(x.shape), list(t.shape))
    if weight is not None:
        name += " weight %s" % list(weight.shape)
    if pos_weight is not None:
        name += " pos_weight %s" % list(pos_weight.shape)
    if ignore_index is not None:
        name += " ignore_index %d" % ignore_index
    if target_grad:
        name += " target grad"
    if label:
        name += " " + label
    cases.append(
        '    {"%s", "%s", %d, %s, %s, %s, %s, %s, %s, %s, %s, %d, %d, %d, %d, %s, %s, %s, %s, %s, '
        '"%s", %s},'
        % (name, loss, REDUCTIONS.index(reduction), c_shape(x), c_floats(x), c_shape(t),
           c_floats(t), c_shape(weight), c_floats(weight), c_shape(pos_weight),
           c_floats(pos_weight), int(ignore_index is not None),
           ignore_index if ignore_index is not None else 0, int(target_grad), int(smooth),
           c_shape(out), c_floats(out), c_floats(up), c_floats(gx), c_floats(gt),
           out.grad_fn.name(), c_str(warning)))


def probs(*shape):
    """Probabilities away from 0 and 1, with room for gradcheck's steps."""
    return torch.rand(shape) * 0.8 + 0.1


def classes(n, c):
    return torch.randint(0, c, (n,)).float()


torch.manual_seed(1303)

for r in REDUCTIONS:
    # mse and l1: same shapes, 0-d, and shapes that broadcast (PyTorch warns)
    for loss in ("mse_loss", "l1_loss"):
        for xs, ts in (([5], [5]), ([3, 4], [3, 4]), ([], []), ([2, 3, 2], [2, 3, 2]),
                       ([4, 1], [4]), ([4], [4, 1]), ([3], [1]), ([2, 3], []), ([0], [0])):
            for tg in (False, True):
                x, t = torch.randn(xs), torch.randn(ts)
                # l1 has a kink at x = t, which gradcheck's steps must not cross
                kink = loss == "l1_loss" and (x - t).numel() and (x - t).abs().min() < 0.1
                add_case(loss, x, t, r, target_grad=tg, smooth=not kink)

    # binary cross entropy: weights per element, broadcast, scalar
    for xs in ([6], [2, 3], []):
        for tg in (False, True):
            add_case("binary_cross_entropy", probs(*xs), torch.rand(xs), r, target_grad=tg)
    for ws in ([2, 3], [3], [], [2, 1]):
        add_case("binary_cross_entropy", probs(2, 3), torch.rand(2, 3), r,
                 weight=torch.rand(ws) * 2, target_grad=True)
    # p = 0 and 1 exactly: the logs clamp at -100, the gradient's denominator at 1e-12
    add_case("binary_cross_entropy", torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30]),
             torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0]), r, smooth=False, label="p 0 and 1")
    add_case("binary_cross_entropy", torch.tensor([0.0, 1.0, 0.25]),
             torch.tensor([0.5, 0.5, 0.0]), r, weight=torch.tensor([2.0, 3.0, 0.5]),
             smooth=False, label="p 0 and 1")
    add_case("binary_cross_entropy", torch.zeros(0), torch.zeros(0), r, smooth=False)

    # binary cross entropy with logits: weight, pos_weight per class / element / broadcast
    L = "binary_cross_entropy_with_logits"
    for xs in ([6], [4, 3], []):
        for tg in (False, True):
            add_case(L, torch.randn(xs) * 2, torch.rand(xs), r, target_grad=tg)
    for pws in ([3], [4, 3], [], [4, 1]):
        add_case(L, torch.randn(4, 3) * 2, torch.rand(4, 3), r, pos_weight=torch.rand(pws) * 3,
                 target_grad=True)
    for ws in ([3], [4, 3], [4, 1]):
        add_case(L, torch.randn(4, 3) * 2, torch.rand(4, 3), r, weight=torch.rand(ws) * 2,
                 pos_weight=torch.rand(3) * 3, target_grad=True)
        add_case(L, torch.randn(4, 3) * 2, torch.rand(4, 3), r, weight=torch.rand(ws) * 2)
    # logits of +-100: no overflow, losses of 0 and 100
    add_case(L, torch.tensor([100.0, -100.0, 100.0, -100.0, 30.0, -30.0]),
             torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 0.5]), r, target_grad=True, smooth=False,
             label="logits 100")
    add_case(L, torch.tensor([100.0, -100.0, 100.0, -100.0]), torch.tensor([0.0, 1.0, 1.0, 0.0]),
             r, pos_weight=torch.tensor([2.0, 0.5, 3.0, 1.0]), target_grad=True, smooth=False,
             label="logits 100")
    add_case(L, torch.zeros(0), torch.zeros(0), r, smooth=False)

    # nll_loss and cross_entropy: (N, C) and (C), weights, ignore_index
    for loss in ("nll_loss", "cross_entropy"):
        make = (lambda *s: torch.log_softmax(torch.randn(s), -1)) if loss == "nll_loss" else (
            lambda *s: torch.randn(s) * 2)
        add_case(loss, make(4, 3), classes(4, 3), r)
        add_case(loss, make(5), torch.tensor(2.0), r)
        add_case(loss, make(5), torch.tensor(2.0), r, weight=torch.rand(5) + 0.5)
        add_case(loss, make(6, 4), classes(6, 4), r, weight=torch.rand(4) + 0.5)
        t = classes(6, 4)
        t[1] = t[4] = -100
        add_case(loss, make(6, 4), t, r, label="default ignore_index")
        add_case(loss, make(6, 4), t, r, weight=torch.rand(4) + 0.5, label="default ignore_index")
        add_case(loss, make(6, 4), torch.tensor([0.0, 1.0, 1.0, 3.0, 1.0, 2.0]), r,
                 ignore_index=1, weight=torch.rand(4) + 0.5)
        add_case(loss, make(6, 4), torch.tensor([0.0, 1.0, 7.0, 3.0, 7.0, 2.0]), r,
                 ignore_index=7, label="ignore_index out of range")
        add_case(loss, make(3, 4), torch.full((3,), -100.0), r, label="all ignored")
        add_case(loss, make(5), torch.tensor(-100.0), r, label="ignored")
        add_case(loss, make(3, 4), torch.tensor([1.0, 1.0, 0.0]), r,
                 weight=torch.tensor([0.0, 0.0, 1.0, 2.0]), label="total weight 0")
        # the cascade sum's levels turn over at 16 terms
        add_case(loss, make(40, 3), classes(40, 3), r, weight=torch.rand(3) + 0.5)
        add_case(loss, torch.zeros(0, 3), torch.zeros(0), r, smooth=False)
    add_case("cross_entropy", torch.tensor([[1000.0, 999.0, -1000.0], [0.0, -1000.0, 1000.0]]),
             torch.tensor([0.0, 1.0]), r, smooth=False, label="large")

print("/* Generated by tools/gen_ref_loss.py with PyTorch %s. Do not edit. */" % torch.__version__)
print("#include <math.h>")
print("#include <stdbool.h>")
print("#include <stddef.h>")
print("#include <stdint.h>")
print("""
typedef struct loss_case {
    const char *name, *loss; /* mse_loss, l1_loss, binary_cross_entropy, ... */
    int reduction;           /* 0 mean, 1 sum, 2 none */
    int x_ndim; int64_t x_shape[4]; const float *x;
    int t_ndim; int64_t t_shape[4]; const float *t;
    int w_ndim; int64_t w_shape[4]; const float *w;    /* weight, or NULL */
    int pw_ndim; int64_t pw_shape[4]; const float *pw; /* pos_weight, or NULL */
    bool has_ignore; int64_t ignore_index;
    bool target_grad;        /* target requires grad; gt is its gradient */
    bool smooth;             /* gradcheck applies */
    int out_ndim; int64_t out_shape[4]; const float *out;
    const float *upstream;   /* loss = sum(out * upstream) */
    const float *gx;         /* d loss / d input */
    const float *gt;         /* d loss / d target, or NULL */
    const char *grad_fn;
    const char *warning;     /* PyTorch's UserWarning, or NULL */
} loss_case;
""")
print("static const loss_case loss_cases[] = {")
print("\n".join(cases))
print("};")
print("static const size_t loss_ncases = sizeof loss_cases / sizeof loss_cases[0];")
