"""Writes tests/ref/shape_ref.h: PyTorch's results for the ops of agrad.h's section
"Shapes, selection and comparison": x.unsqueeze(dim), x.squeeze(), x.squeeze(dim),
x.flatten(start, end), torch.where(cond, a, b) with tensors or numbers, the comparisons
(gt, lt, ge, le, eq, ne against a tensor or a number, on either side), x.argmax(),
x.argmin() and their forms over a dimension. Values, gradients and grad_fn names, for
shapes of rank 0 to 4, negative dims, keepdim, broadcasting, ties, NaN and infinities.

    /usr/bin/python3 tools/gen_ref_shape.py > tests/ref/shape_ref.h

Needs Debian's python3-torch (PyTorch 1.13); the tests read only the output.
For each case with inputs that require grad, the loss is sum(out * upstream), with an
upstream of multiples of 1/16, so that every gradient (a copy of the upstream, or a sum
of a few of them) is exact in float and agrad must give it to the bit.
"""
import torch

from cref import c_floats

nan, inf = float("nan"), float("inf")
torch.manual_seed(2024)


def c_double(v):
    """A C literal for the Python number v, as the script wrote it (not rounded)."""
    if v != v:
        return "NAN"
    if v in (inf, -inf):
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(float(v))


def c_shape(shape):
    dims = list(shape)
    return "%d, {%s}" % (len(dims), ", ".join(str(d) for d in dims) or "0")


def upstream(shape):
    return torch.randint(-40, 40, list(shape)).float() / 16


def mask(shape):
    """A float condition: zeros, ones and other nonzero values (NaN among them)."""
    c = torch.randint(0, 2, list(shape)).float()
    flat = c.view(-1)
    if flat.numel() >= 3:
        flat[0] = -2.5
    if flat.numel() >= 5:
        flat[3] = nan
    return c


cases = []


def add(name, op, inputs, out, grads=None, i0=0, i1=0, s0=0.0, s1=0.0, up=None, is_self=False):
    """inputs: the tensors agrad is given, in order; grads: their gradients (None: the
    input takes none); out: PyTorch's result (bool results as 0/1 floats)."""
    ins = []
    for k, t in enumerate(inputs):
        g = grads[k] if grads else None
        ins.append("{%s, %s, %s}" % (c_shape(t.shape), c_floats(t), c_floats(g) if g is not None
                                     else "NULL"))
    while len(ins) < 3:
        ins.append("{0, {0}, NULL, NULL}")
    fn = out.grad_fn.name() if out.grad_fn is not None else ""
    cases.append('    {"%s", "%s", %d, %d, %s, %s, %d, {%s}, {%s, %s, NULL}, %d, %s, "%s", %d},'
                 % (name, op, i0, i1, c_double(s0), c_double(s1), len(inputs), ", ".join(ins),
                    c_shape(out.shape), c_floats(out.float()), int(out.requires_grad),
                    c_floats(up) if up is not None else "NULL", fn, int(is_self)))


def run_view(name, op, x0, f, **kw):
    x = x0.clone().requires_grad_()
    y = f(x)
    is_self = y is x
    up = upstream(y.shape)
    (y * up).sum().backward()
    add(name, op, [x0], y, [x.grad], up=up, is_self=is_self, **kw)


# ---- unsqueeze, squeeze, flatten ----
VIEW_SHAPES = [[], [1], [3], [2, 3], [2, 1, 3], [1, 2, 1, 3], [0, 1, 3], [1, 1]]
for shape in VIEW_SHAPES:
    x = torch.randn(shape)
    if len(shape) < 4:
        for d in range(-len(shape) - 1, len(shape) + 1):
            run_view("unsqueeze %s dim %d" % (shape, d), "unsqueeze", x,
                     lambda t, d=d: t.unsqueeze(d), i0=d)
    run_view("squeeze %s" % shape, "squeeze", x, lambda t: t.squeeze())
    rank = max(len(shape), 1)
    for d in range(-rank, rank):
        run_view("squeeze %s dim %d" % (shape, d), "squeeze_dim", x,
                 lambda t, d=d: t.squeeze(d), i0=d)

FLAT_SHAPES = [[], [4], [2, 3], [2, 3, 4], [2, 1, 3, 2], [0, 3], [3, 0, 2]]
for shape in FLAT_SHAPES:
    x = torch.randn(shape)
    rank = max(len(shape), 1)
    for s in range(-rank, rank):
        for e in range(-rank, rank):
            if (s % rank) > (e % rank):
                continue
            run_view("flatten %s %d..%d" % (shape, s, e), "flatten", x,
                     lambda t, s=s, e=e: t.flatten(s, e), i0=s, i1=e)


# ---- where ----
def run_where(name, cshape, a, b):
    """a, b: a shape (a tensor input) or a number."""
    cond = mask(cshape)
    cb = cond != 0  # agrad's rule: nonzero (NaN too) is true
    ins, leaves, op = [cond], [], "where_"
    nums = []
    for side in (a, b):
        if isinstance(side, list):
            v = torch.randn(side)
            if v.numel() >= 2:
                v.view(-1)[1] = inf if side is a else nan  # masked NaN/inf must not leak
            leaf = v.clone().requires_grad_()
            ins.append(v)
            leaves.append(leaf)
            op += "t"
        else:
            leaves.append(side)
            nums.append(side)
            op += "s"
    y = torch.where(cb, leaves[0], leaves[1])
    tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
    up = None
    if tensors:
        up = upstream(y.shape)
        (y * up).sum().backward()
    grads = [None] + [t.grad for t in tensors]
    add(name, op, ins, y, grads, s0=nums[0] if nums else 0.0,
        s1=nums[1] if len(nums) > 1 else 0.0, up=up)


for cshape, ashape, bshape in (([6], [6], [6]), ([2, 3], [2, 3], [2, 3]), ([], [], []),
                               ([3], [2, 3], [2, 1]), ([2, 1], [3], [2, 3]),
                               ([], [2, 3], [3]), ([2, 3, 4], [4], [3, 1]),
                               ([2, 1, 3, 1], [1, 4, 1, 2], [3, 2]), ([0, 3], [3], [1]),
                               ([5], [], [])):
    run_where("where %s %s %s" % (cshape, ashape, bshape), cshape, ashape, bshape)
for cshape, ashape in (([6], [6]), ([2, 3], [3]), ([3], [2, 3]), ([], [4])):
    run_where("where %s %s 2.5" % (cshape, ashape), cshape, ashape, 2.5)
    run_where("where %s -1 %s" % (cshape, ashape), cshape, -1.0, ashape)
run_where("where [2, 3] 1 0", [2, 3], 1.0, 0.0)
run_where("where [] 0.1 inf", [], 0.1, inf)


# ---- comparisons ----
def cmp_values(shape):
    """Values with repeats, NaN, infinities and signed zeros, so that == and != matter."""
    pool = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, nan, inf, -inf, 0.1, 2.0])
    return pool[torch.randint(0, len(pool), list(shape))]


CMPS = {"gt": torch.gt, "lt": torch.lt, "ge": torch.ge, "le": torch.le, "eq": torch.eq,
        "ne": torch.ne}
for name, f in CMPS.items():
    for ashape, bshape in (([10], [10]), ([3, 4], [4]), ([3, 1], [1, 4]), ([], [2, 3]),
                           ([2, 1, 3, 2], [3, 1]), ([0, 2], [2])):
        a, b = cmp_values(ashape), cmp_values(bshape)
        add("%s %s %s" % (name, ashape, bshape), name + "_tt", [a, b], f(a, b))
    x = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, nan, inf, -inf, 0.1, 2.0, 3e38, 1e-45])
    for s in (0.0, 1.0, 0.1, nan, inf, -inf, 1e39, 1e-46, 0.5):
        # Python numbers, as a script writes them: PyTorch rounds them to float32
        add("%s x %r" % (name, s), name + "_ts", [x], f(x, s), s0=s)
        add("%s %r x" % (name, s), name + "_st", [x], f(torch.tensor(s), x), s0=s)
    add("%s 0-d 0-d" % name, name + "_tt", [torch.tensor(1.0), torch.tensor(1.0)],
        f(torch.tensor(1.0), torch.tensor(1.0)))


# ---- argmax, argmin ----
def tied(shape):
    return torch.randint(0, 3, list(shape)).float()


for name in ("argmax", "argmin"):
    for shape in ([], [1], [5], [2, 3], [2, 3, 4], [2, 1, 3, 2]):
        for make in (torch.randn, tied):
            x = make(shape)
            add("%s %s%s" % (name, shape, " ties" if make is tied else ""), name, [x],
                getattr(x, name)())
            rank = max(len(shape), 1)
            for d in range(-rank, rank):
                for keepdim in (False, True):
                    add("%s %s dim %d%s%s" % (name, shape, d, " keepdim" if keepdim else "",
                                              " ties" if make is tied else ""),
                        name + "_dim", [x], getattr(x, name)(d, keepdim), i0=d, i1=int(keepdim))
    x = torch.tensor([[1.0, nan, 3.0, nan], [nan, 2.0, 0.5, -1.0], [2.0, 1.0, inf, -inf]])
    add("%s nan" % name, name, [x], getattr(x, name)())
    for d in (0, 1, -1):
        add("%s nan dim %d" % (name, d), name + "_dim", [x], getattr(x, name)(d), i0=d)
    x = torch.tensor([-inf, -inf, 2.0, inf, inf])
    add("%s inf" % name, name, [x], getattr(x, name)())
    x = torch.zeros(0, 3)
    add("%s [0, 3] dim 1" % name, name + "_dim", [x], getattr(x, name)(1), i0=1)
    add("%s [0, 3] dim -1 keepdim" % name, name + "_dim", [x], getattr(x, name)(-1, True),
        i0=-1, i1=1)

print("/* Generated by tools/gen_ref_shape.py with PyTorch %s. Do not edit. */"
      % torch.__version__)
print("#include <math.h>")
print("#include <stdbool.h>")
print("#include <stddef.h>")
print("#include <stdint.h>")
print("""
typedef struct shape_ref_tensor {
    int ndim;
    int64_t shape[4];
    const float *values; /* NULL when empty */
    const float *grad;   /* PyTorch's gradient; NULL when the input takes none */
} shape_ref_tensor;

typedef struct shape_case {
    const char *name;
    const char *op; /* unsqueeze, squeeze, squeeze_dim, flatten, where_tt/ts/st/ss,
                       gt_tt/ts/st (and lt, ge, le, eq, ne), argmax, argmin, argmax_dim,
                       argmin_dim */
    int i0, i1;     /* dim (and keepdim); flatten: start_dim, end_dim */
    double s0, s1;  /* the numbers of where_ts/st/ss and of comparisons _ts/_st */
    int n;          /* tensor inputs: where's condition first */
    shape_ref_tensor in[3];
    shape_ref_tensor out; /* bool results as 0/1, indices as floats */
    bool requires_grad;    /* out requires grad (its inputs that may, do) */
    const float *upstream; /* loss = sum(out * upstream); NULL when out is empty or does
                              not require grad */
    const char *grad_fn;   /* "" when the result has none */
    bool is_self;          /* PyTorch returned the input itself */
} shape_case;
""")
print("static const shape_case shape_cases[] = {")
print("\n".join(cases))
print("};")
print("static const size_t shape_ncases = sizeof shape_cases / sizeof shape_cases[0];")
