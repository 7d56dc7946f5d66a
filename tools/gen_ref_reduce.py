"""Writes tests/ref/reduce_ref.h: PyTorch's values, indices and gradients for the
reductions x.sum(dim, keepdim), x.mean(dim, keepdim), x.max(), x.min(),
x.max(dim, keepdim) and x.min(dim, keepdim), on every dimension of ranks 0 to 4, with
size-1 and empty dimensions, ties, NaN and infinities.

    /usr/bin/python3 tools/gen_ref_reduce.py > tests/ref/reduce_ref.h

Needs Debian's python3-torch (PyTorch 1.13); the tests read only the output.
For each case the loss is sum(out * upstream) with a fixed random upstream.
"""
import torch

from cref import c_float

nan, inf = float("nan"), float("inf")


def c_floats(t):
    vals = t.detach().reshape(-1).tolist()
    if not vals:
        return "NULL"
    return "(const float[]){" + ", ".join(c_float(float(v)) for v in vals) + "}"


def c_shape(t):
    dims = list(t.shape)
    return "%d, {%s}" % (len(dims), ", ".join(str(d) for d in dims) or "0")


def signed(shape):
    return torch.randn(shape)


def tied(shape):
    """Small integers: most slices hold ties."""
    return torch.randint(0, 3, shape).float()


def separated(shape):
    """Distinct values at least 0.8 apart, so that max/min have no near-ties and finite
    differences of step up to 0.3 stay on one side of every kink."""
    n = 1
    for d in shape:
        n *= d
    return ((torch.randperm(n).float() - n / 2) + torch.rand(n) * 0.2).reshape(shape)


def apply(op, x, dim, keepdim):
    if op == "sum_dim":
        return x.sum(dim, keepdim), None
    if op == "mean_dim":
        return x.mean(dim, keepdim), None
    if op == "max":
        return x.max(), None
    if op == "min":
        return x.min(), None
    if op == "max_dim":
        return x.max(dim, keepdim)
    if op == "min_dim":
        return x.min(dim, keepdim)
    raise ValueError(op)


cases = []


def add_case(op, values, dim=0, keepdim=False, smooth=True, label=""):
    """smooth: the op is differentiable at values (no ties, NaN or inf), so the test
    runs gradcheck on the case."""
    x = values.clone().requires_grad_()
    out, idx = apply(op, x, dim, keepdim)
    up = torch.randn(out.shape)
    (out * up).sum().backward()
    gx = x.grad if x.grad is not None else torch.zeros(x.shape)
    name = "%s %s" % (op, list(x.shape))
    if op.endswith("_dim"):
        name += " dim %d%s" % (dim, " keepdim" if keepdim else "")
    if label:
        name += " " + label
    cases.append(
        '    {"%s", "%s", %d, %d, %d, %s, %s, %s, %s, %s, %s, %s, "%s"},'
        % (name, op, dim, int(keepdim), int(smooth), c_shape(x), c_floats(x), c_shape(out),
           c_floats(out), c_floats(idx.float()) if idx is not None else "NULL", c_floats(up),
           c_floats(gx), out.grad_fn.name())
    )


torch.manual_seed(1913)

DIM_SHAPES = [[5], [2, 3], [2, 3, 4], [2, 1, 3, 2], [1], [3, 1]]
for op in ("sum_dim", "mean_dim", "max_dim", "min_dim"):
    make = signed if op in ("sum_dim", "mean_dim") else separated
    # 0-d tensors take dim 0 and -1, as if they had one dimension
    for dim in (0, -1):
        for keepdim in (False, True):
            add_case(op, make([]), dim, keepdim)
    for shape in DIM_SHAPES:
        for dim in list(range(len(shape))) + [-1]:
            for keepdim in (False, True):
                add_case(op, make(shape), dim, keepdim)
    add_case(op, make([2, 3]), -2, False)

    if op in ("max_dim", "min_dim"):
        for shape, dim in (([6], 0), ([2, 3], 0), ([2, 3], 1), ([3, 4], -1), ([2, 3, 4], 1),
                           ([2, 1, 3, 2], 2)):
            add_case(op, tied(shape), dim, False, smooth=False, label="ties")
        add_case(op, torch.ones(2, 3), 1, True, smooth=False, label="all equal")
        x = torch.tensor([[1.0, nan, 3.0, nan], [nan, 2.0, 0.5, -1.0], [2.0, 1.0, inf, -inf]])
        add_case(op, x, 1, False, smooth=False, label="nan")
        add_case(op, x, 0, False, smooth=False, label="nan")
        add_case(op, torch.tensor([-inf, -inf, 2.0, inf, inf]), 0, False, smooth=False,
                 label="inf")
        # an empty tensor whose reduced dimension is not empty
        add_case(op, torch.zeros(0, 3), 1, False, smooth=False)
        add_case(op, torch.zeros(0, 3), -1, True, smooth=False)
    else:
        # empty tensors: an empty reduced dimension gives 0 (sum) or nan (mean)
        for shape, dim in (([0, 3], 0), ([0, 3], 1), ([3, 0], 0), ([3, 0], 1), ([0], 0),
                           ([2, 0, 3], 1)):
            for keepdim in (False, True):
                add_case(op, torch.zeros(shape), dim, keepdim, smooth=False)
        add_case(op, torch.tensor([[1.0, nan, 3.0], [inf, 2.0, -inf]]), 1, False,
                 smooth=False, label="nan inf")

for op in ("max", "min"):
    for shape in ([], [1], [5], [2, 3], [2, 3, 4], [2, 1, 3, 2]):
        add_case(op, separated(shape))
    for shape in ([6], [2, 3], [2, 3, 4]):
        add_case(op, tied(shape), smooth=False, label="ties")
    add_case(op, torch.full([2, 3], -1.5), smooth=False, label="all equal")
    add_case(op, torch.tensor([1.0, nan, 3.0, nan, -2.0]), smooth=False, label="nan")
    add_case(op, torch.tensor([[inf, -inf, 1.0], [inf, -inf, 0.0]]), smooth=False,
             label="inf")

print("/* Generated by tools/gen_ref_reduce.py with PyTorch %s. Do not edit. */"
      % torch.__version__)
print("#include <math.h>")
print("#include <stdbool.h>")
print("#include <stddef.h>")
print("#include <stdint.h>")
print("""
typedef struct ref_case {
    const char *name, *op; /* op: sum_dim, mean_dim, max, min, max_dim, min_dim */
    int dim;
    bool keepdim;
    bool smooth;           /* differentiable there (no ties, NaN, inf): gradcheck applies */
    int x_ndim; int64_t x_shape[4]; const float *x;
    int out_ndim; int64_t out_shape[4]; const float *out;
    const float *indices;  /* max_dim, min_dim: the positions PyTorch chose, as floats */
    const float *upstream; /* loss = sum(out * upstream) */
    const float *gx;       /* d loss / d x */
    const char *grad_fn;
} ref_case;
""")
print("static const ref_case ref_cases[] = {")
print("\n".join(cases))
print("};")
print("static const size_t ref_ncases = sizeof ref_cases / sizeof ref_cases[0];")
