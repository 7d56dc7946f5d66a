"""Writes tests/ref/linalg_ref.h: PyTorch's forward values, gradients, grad_fn names and
error messages for matmul, t, transpose and inverse, and the normal equation of linear
regression, theta = (X^T X)^-1 X^T y.

    /usr/bin/python3 tools/gen_ref_linalg.py > tests/ref/linalg_ref.h

Needs Debian's python3-torch (PyTorch 1.13); the tests read only the output.
For each case the loss is sum(out * upstream) with a fixed random upstream.

matmul cases also carry error bounds: the largest element of |a| @ |b| (and of the
gradients of sum((|a| @ |b|) * |upstream|)), computed in double. Any float summation
order, with or without fused multiply-adds, is within terms * FLT_EPSILON / 2 of it, so
agrad and PyTorch are within terms * FLT_EPSILON * bound of each other whatever the
compiler does.

The large cases take their inputs and upstream from gen_values() below, which the test
reproduces, so that the header holds only their results.
"""
import torch

from cref import emit_values

torch.manual_seed(1913)

MATMUL_SHAPES = [
    # vector . vector
    ([3], [3]), ([1], [1]), ([0], [0]),
    # matrix @ vector
    ([2, 3], [3]), ([1, 3], [3]), ([0, 3], [3]), ([2, 0], [0]),
    # vector @ matrix
    ([3], [3, 4]), ([3], [3, 1]), ([3], [3, 0]), ([0], [0, 2]),
    # matrix @ matrix
    ([2, 3], [3, 4]), ([1, 1], [1, 1]), ([4, 1], [1, 5]), ([1, 3], [3, 1]),
    ([2, 0], [0, 3]), ([0, 3], [3, 2]), ([2, 3], [3, 0]),
    # batched: 3-D @ 3-D, with batch dims that broadcast
    ([2, 2, 3], [2, 3, 4]), ([2, 1, 3], [1, 3, 4]), ([2, 3, 4], [1, 4, 2]), ([1, 2, 3], [1, 3, 2]),
    # batched against a matrix or a vector, either side
    ([2, 2, 3], [3, 4]), ([1, 2, 3], [3, 4]), ([2, 3], [2, 3, 4]), ([2, 3], [1, 3, 4]),
    ([3], [2, 3, 4]), ([2, 2, 3], [3]), ([3, 0, 2], [2, 4]),
    # 4-D, and 4-D against 3-D and 2-D
    ([2, 2, 3, 4], [2, 2, 4, 5]), ([2, 1, 3, 4], [3, 4, 5]), ([2, 1, 2, 3], [1, 3, 3, 4]),
    ([2, 3, 4], [2, 1, 4, 5]), ([2, 2, 3, 4], [4, 5]), ([2, 3], [2, 2, 3, 4]),
    ([4], [2, 2, 4, 3]), ([2, 2, 2, 3], [3]), ([2, 2, 0, 3], [2, 1, 3, 2]),
]
# Larger products, with inputs from gen_values (seed, seed + 1; upstream seed + 2).
LARGE_SHAPES = [(11, [64, 128], [128, 32]), (21, [3, 17, 40], [40, 9])]

TRANSPOSE_CASES = [
    ("t", [], 0, 0), ("t", [3], 0, 0), ("t", [2, 3], 0, 1), ("t", [0, 3], 0, 1),
    ("t", [1, 4], 0, 1), ("t", [5, 1], 0, 1),
    ("transpose", [2, 3], 0, 1), ("transpose", [2, 3], -1, -2), ("transpose", [2, 3], 0, 0),
    ("transpose", [2, 3, 4], 0, 2), ("transpose", [2, 3, 4], 1, -1),
    ("transpose", [2, 3, 4, 5], 1, 3), ("transpose", [2, 3, 4, 5], 0, -1),
    ("transpose", [2, 3, 4, 5], 2, 1), ("transpose", [3], 0, -1), ("transpose", [], 0, -1),
    ("transpose", [2, 0, 3], 0, 2),
]

INVERSE_SHAPES = [[1, 1], [2, 2], [3, 3], [5, 5], [2, 3, 3], [2, 2, 2, 2], [0, 0], [2, 0, 0]]

out = []
cases = []


def gen_values(seed, shape):
    """Values in [-1, 1), multiples of 2^-23 (exact in float), from a 32-bit integer hash
    of (seed, index); tests/test_linalg.c has the same function."""
    n = 1
    for d in shape:
        n *= d
    vals = []
    for i in range(n):
        h = (i * 0x9E3779B1 + seed * 0x85EBCA77) & 0xFFFFFFFF
        h ^= h >> 16
        h = (h * 0x7FEB352D) & 0xFFFFFFFF
        h ^= h >> 15
        h = (h * 0x846CA68B) & 0xFFFFFFFF
        h ^= h >> 16
        vals.append((h >> 8) / 8388608.0 - 1.0)
    return torch.tensor(vals, dtype=torch.float32).reshape(shape)


def well_conditioned(shape):
    """Random matrices plus n * I: diagonally dominant enough to invert accurately."""
    n = shape[-1]
    return torch.randn(shape) + n * torch.eye(n) if n else torch.randn(shape)


def grads(a, b, res, up=None):
    if up is None:
        up = torch.randn(res.shape)
    (res * up).sum().backward()
    ga = a.grad if a.grad is not None else torch.zeros(a.shape)
    gb = None
    if b is not None:
        gb = b.grad if b.grad is not None else torch.zeros(b.shape)
    return up, ga, gb


def grad_fn(t):
    return type(t.grad_fn).__name__ if t.grad_fn is not None else ""


def c_shape(shape):
    return "%d, {%s}" % (len(shape), ", ".join(str(d) for d in shape) or "0")


def emit(prefix, name, t):
    """Emits t as an array and returns its C name (NULL for None)."""
    if t is None:
        return "NULL"
    cname = "%s_%s" % (prefix, name)
    emit_values(out, cname, t)
    return cname


def add_case(name, op, a, b, res, up, ga, gb, d0=0, d1=0, bounds=None, rtol=0.0, atol=0.0,
             gen=0):
    k = "c%d" % len(cases)
    given = (("a", a), ("b", b), ("up", up)) if not gen else ()
    arrays = {n: emit(k, n, t) for n, t in given + (("out", res), ("ga", ga), ("gb", gb))}
    bound = [0.0, 0.0, 0.0]
    terms = [0, 0, 0]
    if bounds is not None:
        bound, terms = bounds
    cases.append(
        '    {"%s", "%s", %d, %d, %d, %s, %s, %s, %s, %s, %s, %s, %s, %s, "%s", '
        "{%.9g, %.9g, %.9g}, {%d, %d, %d}, %.3g, %.3g},"
        % (name, op, d0, d1, gen,
           c_shape(list(a.shape)), arrays.get("a", "NULL"),
           c_shape(list(b.shape)) if b is not None else "0, {0}", arrays.get("b", "NULL"),
           c_shape(list(res.shape)), arrays["out"], arrays.get("up", "NULL"), arrays["ga"],
           arrays["gb"], grad_fn(res), bound[0], bound[1], bound[2], terms[0], terms[1],
           terms[2], rtol, atol))


def matmul_bounds(a, b, up):
    """The largest elements of |a| @ |b| and of its gradients under |upstream|, in
    double, with the number of terms in each sum."""
    A = a.detach().abs().double().requires_grad_()
    B = b.detach().abs().double().requires_grad_()
    res = torch.matmul(A, B)
    (res * up.abs().double()).sum().backward()
    n = a.shape[-2] if a.dim() > 1 else 1
    k = a.shape[-1]
    p = b.shape[-1] if b.dim() > 1 else 1
    batch = res.numel() // max(n * p, 1) if res.numel() else 1
    abatch = max(a.numel() // max(n * k, 1), 1) if a.numel() else 1
    bbatch = max(b.numel() // max(k * p, 1), 1) if b.numel() else 1
    if res.numel() == 0:  # the batch count is not recoverable from an empty result
        batch = max(abatch, bbatch)
    def top(t):
        return t.max().item() if t.numel() else 0.0

    return ([top(res), top(A.grad), top(B.grad)],
            [k, p * max(batch // abatch, 1), n * max(batch // bbatch, 1)])


for sa, sb in MATMUL_SHAPES:
    a = torch.randn(sa).requires_grad_()
    b = torch.randn(sb).requires_grad_()
    res = torch.matmul(a, b)
    up, ga, gb = grads(a, b, res)
    add_case("matmul %s @ %s" % (sa, sb), "matmul", a, b, res, up, ga, gb,
             bounds=matmul_bounds(a, b, up))

for seed, sa, sb in LARGE_SHAPES:
    a = gen_values(seed, sa).requires_grad_()
    b = gen_values(seed + 1, sb).requires_grad_()
    res = torch.matmul(a, b)
    up, ga, gb = grads(a, b, res, gen_values(seed + 2, list(res.shape)))
    add_case("matmul %s @ %s" % (sa, sb), "matmul", a, b, res, up, ga, gb,
             bounds=matmul_bounds(a, b, up), gen=seed)

for op, shape, d0, d1 in TRANSPOSE_CASES:
    a = torch.randn(shape).requires_grad_()
    res = a.t() if op == "t" else a.transpose(d0, d1)
    up, ga, _ = grads(a, None, res)
    label = "t %s" % shape if op == "t" else "transpose %s %d %d" % (shape, d0, d1)
    add_case(label, op, a, None, res, up, ga, None, d0, d1)

# The inverse is computed in double by agrad and in float by PyTorch's LU; on these
# matrices (condition numbers below 10) they differ by at most 1.2e-7 (an ulp of the
# largest values), and by 3e-6 relative on small elements.
for shape in INVERSE_SHAPES:
    a = well_conditioned(shape).requires_grad_()
    res = torch.inverse(a)
    up, ga, _ = grads(a, None, res)
    add_case("inverse %s" % shape, "inverse", a, None, res, up, ga, None, rtol=1e-6, atol=2.5e-7)

# The normal equation on the lab's data: X = [1, x] for x in arange(-3, 3, 0.1),
# y = -3 x + 1 + noise; theta = (X^T X)^-1 X^T y, with gradients for X and y.
x = torch.arange(-3, 3, 0.1).view(-1, 1)
X = torch.cat([torch.ones_like(x), x], 1).requires_grad_()
y = (-3 * x + 1 + 0.1 * torch.randn(x.size())).requires_grad_()
theta = torch.inverse(X.t() @ X) @ X.t() @ y
up, gX, gy = grads(X, y, theta)
add_case("normal equation", "normal_eq", X, y, theta, up, gX, gy, rtol=1e-6, atol=1e-7)

# Errors: PyTorch's message for each invalid call (agrad's starts with the op name and
# then these words).
errors = []


def add_error(op, sa, sb=None, d0=0, d1=0, values=None):
    a = torch.tensor(values) if values is not None else torch.zeros(sa)
    try:
        if op == "matmul":
            torch.matmul(a, torch.zeros(sb))
        elif op == "t":
            a.t()
        elif op == "transpose":
            a.transpose(d0, d1)
        else:
            torch.inverse(a)
    except (RuntimeError, IndexError) as e:
        msg = str(e).splitlines()[0]
    else:
        raise SystemExit("no error for %s %s %s" % (op, sa, sb))
    if op == "inverse":
        assert msg.startswith("linalg.inv: ")
        msg = msg[len("linalg.inv: "):]
    k = "e%d" % len(errors)
    vals = emit(k, "a", a) if values is not None else "NULL"
    errors.append('    {"%s", %s, %s, %s, %d, %d, %s},'
                  % (op, c_shape(list(a.shape)), vals,
                     c_shape(sb) if sb is not None else "0, {0}", d0, d1,
                     '"%s"' % msg.replace('"', '\\"')))


for sa, sb in [([3], [4]), ([2, 3], [2]), ([2], [3, 4]), ([2, 3], [4, 5]), ([], [2, 3]),
               ([2, 3], []), ([], []), ([3], []), ([2, 3, 4], [2, 4]), ([2, 3, 4], [3]),
               ([2, 5], [2, 3, 4]), ([5], [2, 3, 4]), ([2, 3, 4], [3, 4, 5]),
               ([2, 3, 4], [2, 5, 6]), ([2, 2, 3, 4], [3, 4, 5]), ([3, 2, 3, 4], [2, 1, 5, 6]),
               ([2, 1, 3, 4], [1, 2, 5, 6]), ([2, 3, 0], [2]), ([2, 0, 3], [2, 4])]:
    add_error("matmul", sa, sb)
add_error("t", [2, 3, 4])
add_error("t", [1, 2, 3, 4])
for shape, d0, d1 in [([2, 3], 2, 0), ([2, 3], 0, -3), ([], 1, 0), ([3], 1, 0),
                      ([2, 3, 4, 5], 0, 4)]:
    add_error("transpose", shape, d0=d0, d1=d1)
for shape in [[2, 3], [3], [], [2, 3, 4]]:
    add_error("inverse", shape)
for m in ([[1., 2, 3], [2, 4, 6], [1, 1, 1]], [[0., 0], [0, 0]], [[1., 2], [2, 4]],
          [[1., 2, 3], [4, 5, 6], [7, 8, 9]], [[[1., 0], [0, 1]], [[1., 2], [2, 4]]],
          [[[[1., 0], [0, 1]], [[1., 0], [0, 1]]], [[[2., 1], [4, 2]], [[1., 0], [0, 1]]]]):
    add_error("inverse", None, values=m)

print("/* Generated by tools/gen_ref_linalg.py with PyTorch %s. Do not edit. */"
      % torch.__version__)
print("#include <math.h>")
print("#include <stddef.h>")
print("#include <stdint.h>")
print("""
typedef struct lin_case {
    const char *name, *op;          /* op: matmul, t, transpose, inverse, normal_eq */
    int d0, d1;                     /* transpose's dims */
    unsigned gen;                   /* not 0: a, b, upstream are gen_values(gen, gen + 1,
                                       gen + 2), not stored */
    int a_ndim; int64_t a_shape[4]; const float *a;
    int b_ndim; int64_t b_shape[4]; const float *b;   /* NULL: one operand */
    int out_ndim; int64_t out_shape[4]; const float *out;
    const float *upstream;          /* loss = sum(out * upstream) */
    const float *ga, *gb;           /* d loss / d a, d loss / d b */
    const char *grad_fn;            /* PyTorch's out.grad_fn */
    /* matmul: out, ga, gb may differ from PyTorch's by terms[i] * FLT_EPSILON * bound[i]
     * (see the generator) */
    double bound[3];
    int terms[3];
    double rtol, atol;              /* otherwise: |got - want| <= atol + rtol * |want| */
} lin_case;

typedef struct lin_error {
    const char *op;
    int a_ndim; int64_t a_shape[4]; const float *a;   /* a NULL: zeros */
    int b_ndim; int64_t b_shape[4];
    int d0, d1;
    const char *message;            /* PyTorch's, without its "linalg.inv: " */
} lin_error;
""")
print("\n".join(out))
print("\nstatic const lin_case lin_cases[] = {")
print("\n".join(cases))
print("};")
print("static const size_t lin_ncases = sizeof lin_cases / sizeof lin_cases[0];")
print("\nstatic const lin_error lin_errors[] = {")
print("\n".join(errors))
print("};")
print("static const size_t lin_nerrors = sizeof lin_errors / sizeof lin_errors[0];")
