#!/usr/bin/python3
"""Writes tests/ref/print_ref.h: tensors and the repr() PyTorch 1.13 gives them.

Run with Debian's python3 (it imports python3-torch) from the repository root:

    /usr/bin/python3 tools/gen_ref_print.py

The header is committed so that the C tests never need PyTorch. Every value is
written as a C float literal that reads back to the same float32 bits, so agrad
prints exactly the numbers PyTorch printed.
"""
import math
import os
import sys

import torch

from cref import c_float, emit_values

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref",
                   "print_ref.h")




def c_string(s):
    """s as a C string literal, one source line per printed line."""
    lines = s.split("\n")
    out = []
    for i, line in enumerate(lines):
        esc = line.replace("\\", "\\\\").replace('"', '\\"')
        out.append('"' + esc + ("\\n" if i < len(lines) - 1 else "") + '"')
    return "\n        ".join(out)


def randn(*shape, seed):
    torch.manual_seed(seed)
    return torch.randn(*shape)


LAB_X = torch.arange(-3, 3, 0.1).view(-1, 1)  # the lab's X

# (name, tensor). The tensor's requires_grad flag is part of the case.
CASES = [
    # 0-d
    ("scalar_3_5", torch.tensor(3.5)),
    ("scalar_w_requires_grad", torch.tensor(-15.0, requires_grad=True)),
    ("scalar_zero", torch.tensor(0.0)),
    ("scalar_neg_zero", torch.tensor(-0.0)),
    ("scalar_1e_5", torch.tensor(1e-5)),
    ("scalar_123456789", torch.tensor(123456789.0)),
    ("scalar_nan", torch.tensor(float("nan"))),
    ("scalar_neg_inf", torch.tensor(float("-inf"))),
    ("scalar_int_100", torch.tensor(100.0)),
    # 1-d
    ("arange_lab", torch.arange(-3, 3, 0.1)),
    ("integers", torch.tensor([1.0, -2.0, 3.0, 40.0])),
    ("integers_sci", torch.tensor([1.0, 2.0, 100000.0])),
    ("integers_big", torch.tensor([3.0, 123456789.0])),
    ("mixed_magnitudes_sci", torch.tensor([1e-3, 2.5, 1234.5678])),
    ("large_floats_sci", torch.tensor([1.5e8, 2.25])),
    ("float_mode_widths", torch.tensor([999.5, -1.25, 0.0])),
    ("tiny", torch.tensor([1e-5, 2.5e-7, -3e-6])),
    ("tiny_and_one", torch.tensor([5e-5, 1.0])),
    ("nan_inf", torch.tensor([1.5, float("nan"), float("inf"), float("-inf"), -2.25])),
    ("nan_inf_integers", torch.tensor([1.0, float("nan"), float("inf"), -3.0])),
    ("nan_inf_only", torch.tensor([float("nan"), float("inf"), float("-inf")])),
    ("negative_nan", torch.tensor([-float("nan"), 0.5])),
    ("zeros", torch.zeros(5)),
    ("neg_zero_integers", torch.tensor([-0.0, 0.0, 1.0])),
    ("neg_zero_floats", torch.tensor([-0.0, 0.5])),
    ("neg_zero_sci", torch.tensor([-0.0, 1e-6])),
    ("rounding_ties_fixed", torch.tensor([0.03125, 0.09375, 1.03125, 2.00005])),
    ("rounding_ties_sci", torch.tensor([12345.5, 12344.5, 1.03125])),
    ("randn_30_wraps", randn(30, seed=0)),
    ("long_floats_wrap", torch.arange(0, 40) * 1.5),
    ("integers_200", torch.arange(200).float()),
    ("summarized_1001", torch.arange(1001).float()),
    ("summarized_randn_2000", randn(2000, seed=1)),
    ("summarized_float_mode", torch.arange(1200).float() / 7.0),
    ("empty_1d", torch.tensor([])),
    # 2-d
    ("lab_X_60x1", LAB_X.clone()),
    ("randn_3x4", randn(3, 4, seed=2)),
    ("summarized_2000x3", randn(2000, 3, seed=3)),
    ("summarized_3x400", randn(3, 400, seed=4)),
    ("summarized_7x200", randn(7, 200, seed=5)),
    ("empty_0x3", torch.zeros(0, 3)),
    ("empty_3x0_requires_grad", torch.zeros(3, 0, requires_grad=True)),
    # 3-d and 4-d
    ("randn_2x3x4", randn(2, 3, 4, seed=6)),
    ("randn_2x2x2x3", randn(2, 2, 2, 3, seed=7)),
    ("summarized_10x10x11", randn(10, 10, 11, seed=8)),
    ("summarized_8x8x4x5", randn(8, 8, 4, 5, seed=9)),
    ("empty_2x0x3", torch.zeros(2, 0, 3)),
    ("integers_2x2x3", torch.arange(12).float().view(2, 2, 3) - 5),
    # suffixes
    ("lab_X_requires_grad", LAB_X.clone().requires_grad_()),
    ("randn_2x30_requires_grad", randn(2, 30, seed=10).requires_grad_()),
    ("randn_9_requires_grad", randn(9, seed=11).requires_grad_()),
    ("randn_10_requires_grad", randn(10, seed=11).requires_grad_()),
    # last_line_len + len(suffix) + 2 > 80 decides: each pair sits on either side
    ("halves_6_requires_grad", torch.full((6,), 0.5, requires_grad=True)),
    ("halves_7_requires_grad", torch.full((7,), 0.5, requires_grad=True)),
    # PyTorch counts the last line two characters longer than it is: a line of 58
    # takes ", requires_grad=True)" (79 wide), a line of 59 does not (80 would fit).
    ("last_line_58_requires_grad", torch.full((1, 7), 1000.0, requires_grad=True)),
    ("last_line_59_requires_grad", torch.ones(13, requires_grad=True)),
    ("second_line_58_requires_grad", torch.full((2, 7), 1000.0, requires_grad=True)),
    ("second_line_55_requires_grad", torch.ones(30, requires_grad=True)),
    ("second_line_59_requires_grad", torch.ones(31, requires_grad=True)),
    ("randn_13_requires_grad", randn(13, seed=15).requires_grad_()),
    ("randn_14_requires_grad", randn(14, seed=15).requires_grad_()),
]

# Tensors with a grad_fn, built in C by applying op to leaves:
# (name, op, a, b or None, scalar operand or None). The result's repr is the reference.
W = torch.tensor(-15.0, requires_grad=True)
B = torch.tensor(-10.0, requires_grad=True)
WX = (W * LAB_X).detach().requires_grad_()
OP_CASES = [
    ("lab_w_mul_X", "mul", W, LAB_X, None),
    ("lab_wX_add_b", "add", WX, B, None),
    ("lab_yhat_sub_1", "sub_s", WX, None, 1.0),
    ("div_scalar", "div_s", randn(2, 30, seed=12).requires_grad_(), None, 3.0),
    ("pow_scalar", "pow_s", randn(3, 4, seed=13).requires_grad_(), None, 2.0),
    ("neg", "neg", torch.tensor([1.0, -2.0, 3.5], requires_grad=True), None, None),
    ("sum", "sum", torch.tensor([1.0, 2.0, 3.5, 4.0], requires_grad=True), None, None),
    ("mean", "mean", torch.tensor([1.0, 2.0, 3.5, 4.0], requires_grad=True), None, None),
    ("last_line_54_grad_fn", "mul", torch.full((1, 5), -1.5, requires_grad=True),
     torch.tensor(1.0), None),
    ("last_line_55_grad_fn", "mul", torch.ones(12, requires_grad=True), torch.tensor(1.0),
     None),
    ("mul_13", "mul", randn(13, seed=16).requires_grad_(), torch.tensor(1.0), None),
    ("mul_14", "mul", randn(14, seed=16).requires_grad_(), torch.tensor(1.0), None),
    ("mul_2x30", "mul", randn(2, 30, seed=14).requires_grad_(), torch.tensor(2.0), None),
]


def apply(op, a, b, s):
    if op == "mul":
        return a * b
    if op == "add":
        return a + b
    if op == "sub_s":
        return a - s
    if op == "div_s":
        return a / s
    if op == "pow_s":
        return a ** s
    if op == "neg":
        return -a
    if op == "sum":
        return a.sum()
    if op == "mean":
        return a.mean()
    raise ValueError(op)




def tensor_init(name, t):
    shape = list(t.shape) + [0] * (4 - t.dim())
    return "{%d, {%s}, %d, %s, %s}" % (t.dim(), ", ".join(str(d) for d in shape),
                                       t.numel(), name,
                                       "true" if t.requires_grad else "false")


def main():
    out = [
        "/* Generated by tools/gen_ref_print.py with PyTorch %s: do not edit. */"
        % torch.__version__,
        "#ifndef PRINT_REF_H",
        "#define PRINT_REF_H",
        "",
        "/* Summarized 4-d reprs pass the 4095 characters C99 promises for a literal; gcc",
        " * and clang take them. */",
        "#if defined(__GNUC__)",
        "#pragma GCC diagnostic ignored \"-Woverlength-strings\"",
        "#endif",
        "",
        "#include <math.h>",
        "#include <stdbool.h>",
        "#include <stdint.h>",
        "",
        "typedef struct print_ref_tensor {",
        "    int ndim;",
        "    int64_t shape[4];",
        "    int64_t numel;",
        "    const float *values; /* numel floats, row-major (one unused value if none) */",
        "    bool requires_grad;",
        "} print_ref_tensor;",
        "",
        "/* A leaf tensor and PyTorch's repr of it. */",
        "typedef struct print_ref {",
        "    const char *name;",
        "    print_ref_tensor t;",
        "    const char *repr;",
        "} print_ref;",
        "",
        "/* op applied to leaves a (and b, or the number s), and PyTorch's repr of the",
        " * result, whose grad_fn is named grad_fn. */",
        "typedef struct print_op_ref {",
        "    const char *name;",
        "    const char *op; /* mul, add (a, b); sub_s, div_s, pow_s (a, s); neg, sum, mean */",
        "    print_ref_tensor a, b;",
        "    double s;",
        "    const char *grad_fn;",
        "    const char *repr;",
        "} print_op_ref;",
        "",
    ]
    for i, (name, t) in enumerate(CASES):
        emit_values(out, "print_ref_v%d" % i, t)
    for i, (name, op, a, b, s) in enumerate(OP_CASES):
        emit_values(out, "print_ref_a%d" % i, a)
        if b is not None:
            emit_values(out, "print_ref_b%d" % i, b)
    out.append("")
    out.append("static const print_ref print_refs[] = {")
    for i, (name, t) in enumerate(CASES):
        out.append('    {"%s", %s,' % (name, tensor_init("print_ref_v%d" % i, t)))
        out.append("        %s}," % c_string(repr(t)))
    out.append("};")
    out.append("")
    out.append("static const print_op_ref print_op_refs[] = {")
    for i, (name, op, a, b, s) in enumerate(OP_CASES):
        r = apply(op, a, b, s)
        assert r.grad_fn is not None
        binit = tensor_init("print_ref_b%d" % i, b) if b is not None else "{0}"
        out.append('    {"%s", "%s", %s,' % (name, op, tensor_init("print_ref_a%d" % i, a)))
        out.append("        %s, %r," % (binit, float(s or 0.0)))
        out.append('        "%s",' % type(r.grad_fn).__name__)
        out.append("        %s}," % c_string(repr(r)))
    out.append("};")
    out.append("")
    out.append("#endif /* PRINT_REF_H */")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s: %d cases, %d op cases" % (os.path.normpath(OUT), len(CASES),
                                               len(OP_CASES)), file=sys.stderr)


if __name__ == "__main__":
    main()
