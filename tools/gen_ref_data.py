#!/usr/bin/python3
"""Writes tests/ref/data_ref.h: what torch.utils.data gives for datasets and loaders.

Run with Debian's python3 (it imports python3-torch) from anywhere:

    /usr/bin/python3 tools/gen_ref_data.py

The header is committed so that the C tests never need PyTorch. It holds

- loader cases: a DataLoader over TensorDataset(arange(n).view(-1, 1), arange(n)), whose
  values are the items' indices, driven by a small program after manual_seed(seed):
      E  a whole epoch, `for x, y in loader`: each batch's size and indices, then 0
      I  it = iter(loader): nothing recorded (it draws from the generator)
      N  next(it): the batch's size and indices, or 0 at the end
      R  torch.rand(1): its value, which shows the generator's state
  and len(loader);
- random_split cases: the subsets' items (indices into the dataset), then torch.rand(1);
  with outer lengths, the dataset split first and its first subset split again;
- slices of the lab's dataset (x = arange(-3, 3, 0.1).view(-1, 1), y = 1 * x - 1);
- the lab "SGD with Dataset DataLoader": train_model_DataLoader(10)'s LOSS_Loader and the
  final w and b.
"""
import math
import os
import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset, random_split

from cref import c_float
from labs import Data

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref",
                   "data_ref.h")


def arange_dataset(n):
    return TensorDataset(torch.arange(float(n)).view(-1, 1), torch.arange(float(n)))


def batch_trace(batch):
    x, y = batch
    idx = [int(v) for v in y.tolist()]
    assert [int(v) for v in x.view(-1).tolist()] == idx
    return [len(idx)] + idx


def run_program(loader, program):
    trace, it = [], None
    for op in program:
        if op == "E":
            for batch in loader:
                trace += batch_trace(batch)
            trace.append(0)
        elif op == "I":
            it = iter(loader)
        elif op == "N":
            try:
                trace += batch_trace(next(it))
            except StopIteration:
                trace.append(0)
        elif op == "R":
            trace.append(torch.rand(1).item())
        else:
            raise ValueError(op)
    return trace


def loader_cases():
    cases = []
    for n in (10, 60, 7):
        for bs in (1, 3, 4, 5, 60, 64):
            for shuffle in (False, True):
                for drop_last in (False, True):
                    seeds = (0, 1, 42) if shuffle else (1,)
                    for seed in seeds:
                        cases.append(("n%d_b%d%s%s_s%d" % (n, bs, "_shuffle" if shuffle else "",
                                                          "_drop" if drop_last else "", seed),
                                      seed, n, bs, shuffle, drop_last, "EEER"))
    # An empty dataset: empty epochs, each still drawing its iterator's base seed.
    cases.append(("empty", 3, 0, 2, False, False, "EEER"))
    cases.append(("empty_drop", 3, 0, 2, False, True, "EREER"))
    # randperm(1000) crosses the generator's twist (624 draws).
    cases.append(("n1000_b64_shuffle", 5, 1000, 64, True, False, "EER"))
    cases.append(("n1000_b64_shuffle_drop", 2**32 + 5, 1000, 64, True, True, "EER"))
    # iter() draws one value, the first next() the second: a draw between them changes
    # the order; an epoch abandoned by iter(), and an iterator never started.
    cases.append(("iter_rand_next", 1, 10, 3, True, False, "IRNNNNNR"))
    cases.append(("iter_abandoned", 1, 10, 3, True, False, "INNIRNNNNNER"))
    cases.append(("iter_twice", 7, 10, 4, True, True, "IIRNNNER"))
    cases.append(("iter_no_shuffle", 7, 10, 4, False, False, "IRNIRNNNNR"))
    cases.append(("rand_between_epochs", 0, 7, 2, True, False, "ERERER"))
    out = []
    for name, seed, n, bs, shuffle, drop_last, program in cases:
        torch.manual_seed(seed)
        loader = DataLoader(arange_dataset(n), batch_size=bs, shuffle=shuffle,
                            drop_last=drop_last)
        out.append((name, seed, n, bs, shuffle, drop_last, program, len(loader),
                    run_program(loader, program)))
    return out


def split_cases():
    cases = [
        ("ints_3_7", 42, 10, [3, 7], None),
        ("ints_5_5", 0, 10, [5, 5], None),
        ("ints_2_3_5", 1, 10, [2, 3, 5], None),
        ("ints_80_20", 1, 100, [80, 20], None),
        ("fractions_3", 42, 30, [0.3, 0.3, 0.4], None),
        ("fractions_remainder", 1, 7, [0.5, 0.5], None),
        ("fractions_remainder_3", 3, 11, [0.2, 0.3, 0.5], None),
        ("fractions_tenths", 5, 10, [0.1] * 10, None),
        ("fractions_80_20", 1, 60, [0.8, 0.2], None),
        ("fraction_one_zero", 2, 5, [1.0, 0.0], None),
        ("ones_are_fractions", 2, 5, [1, 0], None),
        ("empty_dataset", 4, 0, [0, 0], None),
        ("nested", 9, 20, [0.5, 0.5], [12, 8]),
        ("nested_ints", 11, 30, [4, 6], [10, 20]),
    ]
    out = []
    for name, seed, n, lengths, outer in cases:
        torch.manual_seed(seed)
        ds = arange_dataset(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if outer:
                ds = random_split(ds, outer)[0]
            parts = random_split(ds, lengths)
        sizes = [len(p) for p in parts]
        values = [int(p[i][1]) for p in parts for i in range(len(p))]
        out.append((name, seed, n, lengths, outer, sizes, values, torch.rand(1).item()))
    return out


SLICES = [(0, 3), (-3, 2**63 - 1), (5, 2), (2, 100), (-100, 2), (57, -1), (0, 2**63 - 1),
          (60, 70)]


def slice_cases():
    data = Data()
    out = []
    for start, end in SLICES:
        x, y = data[start:end]
        out.append((start, end, list(x.shape), x.view(-1).tolist(), y.view(-1).tolist()))
    return out


def lab_sgd_loader():
    """The lab's train_model_DataLoader(10), as the notebook runs it."""
    torch.manual_seed(1)
    X = torch.arange(-3, 3, 0.1).view(-1, 1)
    f = 1 * X - 1
    Y = f + 0.1 * torch.randn(X.size())
    w = torch.tensor(-15.0, requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    lr = 0.1

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    dataset = Data()
    trainloader = DataLoader(dataset=dataset, batch_size=1)
    loss_loader = []
    for epoch in range(10):
        Yhat = forward(X)
        loss_loader.append(criterion(Yhat, Y).tolist())
        for x, y in trainloader:
            yhat = forward(x)
            loss = criterion(yhat, y)
            loss.backward()
            w.data = w.data - lr * w.grad.data
            b.data = b.data - lr * b.grad.data
            w.grad.data.zero_()
            b.grad.data.zero_()
    return loss_loader, w.item(), b.item()


def c_doubles(vals, exact_float32=True):
    """A C compound literal of doubles: indices as integers, values as float32 literals
    (what PyTorch's float tensors hold), or with exact_float32 false as doubles."""
    if not vals:
        return "NULL"
    items = []
    for v in vals:
        if isinstance(v, int):
            items.append(str(v))
        else:
            items.append(c_float(v) if exact_float32 else repr(float(v)))
    return "(const double[]){" + ", ".join(items) + "}"


def wrap(line, indent="     "):
    """Splits a long line at commas, so that the header stays readable."""
    if len(line) <= 96:
        return [line]
    lines, cur = [], ""
    for part in line.split(", "):
        piece = part if not cur else ", " + part
        if len(cur) + len(piece) > 96:
            lines.append(cur + ",")
            cur = indent + part
        else:
            cur += piece
    lines.append(cur)
    return lines


def main():
    o = []
    o.append("/* Generated by `/usr/bin/python3 tools/gen_ref_data.py` with PyTorch %s:"
             % torch.__version__)
    o.append(" * do not edit. DataLoader batches, random_split subsets, slices of the lab's "
             "dataset and")
    o.append(" * the lab's SGD with a DataLoader, as PyTorch gives them. */")
    o.append("#ifndef DATA_REF_H")
    o.append("#define DATA_REF_H")
    o.append("")
    o.append("#include <stdbool.h>")
    o.append("#include <stddef.h>")
    o.append("#include <stdint.h>")
    o.append("")
    o.append("/* A DataLoader(TensorDataset(arange(n).view(-1, 1), arange(n)), batch_size, "
             "shuffle,")
    o.append(" * drop_last) driven by program after manual_seed(seed): E a whole epoch (each "
             "batch's")
    o.append(" * size and indices, then 0), I iter(), N next() (a batch, or 0 at the end), R "
             "torch.rand(1)")
    o.append(" * (its value). */")
    o.append("typedef struct data_loader_ref {")
    o.append("    const char *name;")
    o.append("    uint64_t seed;")
    o.append("    int64_t n, batch_size;")
    o.append("    bool shuffle, drop_last;")
    o.append("    const char *program;")
    o.append("    int64_t len; /* len(loader) */")
    o.append("    int ntrace;")
    o.append("    const double *trace;")
    o.append("} data_loader_ref;")
    o.append("")
    o.append("static const data_loader_ref data_loader_refs[] = {")
    for name, seed, n, bs, shuffle, drop_last, program, ln, trace in loader_cases():
        line = ('    {"%s", UINT64_C(%d), %d, %d, %s, %s, "%s", %d, %d, %s},'
                % (name, seed, n, bs, "true" if shuffle else "false",
                   "true" if drop_last else "false", program, ln, len(trace),
                   c_doubles(trace)))
        o += wrap(line)
    o.append("};")
    o.append("")
    o.append("/* random_split(TensorDataset(arange(n).view(-1, 1), arange(n)), lengths) after")
    o.append(" * manual_seed(seed) (with outer lengths: the dataset split by them first, and "
             "its first")
    o.append(" * subset split by lengths): the subsets' sizes, their items' values one subset "
             "after")
    o.append(" * the other, and torch.rand(1) after. */")
    o.append("typedef struct data_split_ref {")
    o.append("    const char *name;")
    o.append("    uint64_t seed;")
    o.append("    int64_t n;")
    o.append("    int nlengths;")
    o.append("    const double *lengths;")
    o.append("    int nouter;")
    o.append("    const double *outer;")
    o.append("    const int64_t *sizes;")
    o.append("    const double *values;")
    o.append("    float next_rand;")
    o.append("} data_split_ref;")
    o.append("")
    o.append("static const data_split_ref data_split_refs[] = {")
    for name, seed, n, lengths, outer, sizes, values, nxt in split_cases():
        line = ('    {"%s", UINT64_C(%d), %d, %d, %s, %d, %s, (const int64_t[]){%s}, %s, %s},'
                % (name, seed, n, len(lengths), c_doubles([float(v) for v in lengths], False),
                   len(outer) if outer else 0,
                   c_doubles([float(v) for v in outer], False) if outer else "NULL",
                   ", ".join(str(s) for s in sizes), c_doubles(values), c_float(nxt)))
        o += wrap(line)
    o.append("};")
    o.append("")
    o.append("/* x, y = Data()[start:end] for the lab's dataset class: x's shape (y's is the "
             "same)")
    o.append(" * and both tensors' values. */")
    o.append("typedef struct data_slice_ref {")
    o.append("    int64_t start, end;")
    o.append("    int64_t rows;")
    o.append("    const double *x, *y;")
    o.append("} data_slice_ref;")
    o.append("")
    o.append("static const data_slice_ref data_slice_refs[] = {")
    for start, end, shape, x, y in slice_cases():
        assert shape[1:] == [1]
        line = ("    {INT64_C(%d), INT64_C(%d), %d, %s, %s},"
                % (start, end, shape[0], c_doubles(x), c_doubles(y)))
        o += wrap(line)
    o.append("};")
    o.append("")
    loss, w, b = lab_sgd_loader()
    o.append("/* The lab's train_model_DataLoader(10): LOSS_Loader, then w and b. */")
    o += wrap("static const float data_lab_loss[] = {%s};"
              % ", ".join(c_float(v) for v in loss))
    o.append("static const float data_lab_w = %s, data_lab_b = %s;" % (c_float(w), c_float(b)))
    o.append("")
    o.append("#endif")
    with open(OUT, "w") as fh:
        fh.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
