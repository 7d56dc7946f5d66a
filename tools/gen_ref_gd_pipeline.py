"""Writes tests/ref/gd_pipeline_ref.json: the notebook "Gradient Descent and Training
Pipeline" (seed 004), its four cells run by numpy and PyTorch for several settings of
examples/gd_pipeline's options.

    /usr/bin/python3 tools/gen_ref_gd_pipeline.py > tests/ref/gd_pipeline_ref.json

Each case holds the program's arguments and, for each cell, w and the loss after every
epoch, f(5) before and after training, and the lines the cell prints. Needs numpy and
Debian's python3-torch (PyTorch 1.13); tests/check_gd_pipeline.py reads only the output.

Cell 1 is the notebook's numpy code with the float32 casts written out. The notebook was
printed by NumPy 2, whose promotion rules (NEP 50) keep `w` a float32 once it is updated
by a float32 gradient: `learning_rate * dw` and `w - ...` stay float32. NumPy 1 (Debian
12 has 1.24) turns them into float64 and prints other last digits (epoch 2: loss =
4.79999924 where the notebook has 4.80000067; epoch 6: 0.00314570 for 0.00314574). With
the casts, this script prints the notebook's lines under either NumPy, and so does C.
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn

from labs import knobs

f32 = np.float32


class Record:
    """What a cell records (w and the loss after every epoch, f(5) before and after
    training) and the lines it prints."""

    def __init__(self, before):
        self.out = {"w": [], "loss": [], "before": before,
                    "text": [f"Prediction before training: f(5) = {before:.3f}"]}

    def epoch(self, epoch, w, l, printed, tail=""):
        """print(f"epoch {epoch+1}: w = {w:.3f}, loss = {l:.8f}") when printed; cell 4's
        line ends in ", "."""
        self.out["w"].append(w)
        self.out["loss"].append(l)
        if printed:
            self.out["text"].append(f"epoch {epoch+1}: w = {w:.3f}, loss = {l:.8f}{tail}")

    def after(self, after):
        self.out["text"].append(f"Prediction after training: f(5) = {after:.3f}")
        self.out["after"] = after
        return self.out


def cell1(learning_rate=0.01, n_iters=20, **_):
    """In [1]: doing everything manually."""
    X = np.array([1, 2, 3, 4], dtype=np.float32)
    Y = np.array([2, 4, 6, 8], dtype=np.float32)
    w = 0.0

    def forward(x):
        return w * x

    def loss(y, y_pred):
        return ((y_pred - y) ** 2).mean()

    def gradient(x, y, y_pred):
        return np.dot(2 * x, y_pred - y).mean()

    r = Record(float(forward(5)))
    for epoch in range(n_iters):
        y_pred = forward(X)
        l = loss(Y, y_pred)
        dw = gradient(X, Y, y_pred)
        w = f32(w - f32(f32(learning_rate) * dw))  # NumPy 2: w -= learning_rate * dw
        r.epoch(epoch, float(w), float(l), epoch % 1 == 0)
    return r.after(float(forward(5)))


def cell2(learning_rate=0.01, n_iters=100, **_):
    """In [2]: autograd computes the gradient, the rest by hand."""
    X = torch.tensor([1, 2, 3, 4], dtype=torch.float32)
    Y = torch.tensor([2, 4, 6, 8], dtype=torch.float32)
    w = torch.tensor(0.0, requires_grad=True, dtype=torch.float32)

    def forward(x):
        return w * x

    def loss(y, y_pred):
        return ((y_pred - y) ** 2).mean()

    r = Record(forward(5).item())
    for epoch in range(n_iters):
        y_pred = forward(X)
        l = loss(Y, y_pred)
        l.backward()
        with torch.no_grad():
            w -= learning_rate * w.grad
        w.grad.zero_()
        r.epoch(epoch, w.item(), l.item(), epoch % 10 == 0)
    return r.after(forward(5).item())


OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
              "rmsprop": torch.optim.RMSprop}


def make_optimizer(params, lr, optimizer="sgd", **options):
    """torch.optim.SGD(params, lr=learning_rate), or the optimizer and options asked for."""
    return OPTIMIZERS[optimizer](params, lr=lr, **options)


def cell3(learning_rate=0.01, n_iters=100, optimizer="sgd", options=None, **_):
    """In [3]: MSELoss and an optimizer from PyTorch, the prediction by hand."""
    X = torch.tensor([1, 2, 3, 4], dtype=torch.float32)
    Y = torch.tensor([2, 4, 6, 8], dtype=torch.float32)
    w = torch.tensor(0.0, requires_grad=True, dtype=torch.float32)

    def forward(x):
        return w * x

    r = Record(forward(5).item())
    loss = nn.MSELoss()
    opt = make_optimizer([w], learning_rate, optimizer, **(options or {}))
    for epoch in range(n_iters):
        y_pred = forward(X)
        l = loss(Y, y_pred)
        l.backward()
        opt.step()
        opt.zero_grad()
        r.epoch(epoch, w.item(), l.item(), epoch % 10 == 0)
    return r.after(forward(5).item())


class LinearRegression(nn.Module):
    def __init__(self, input_dim, output_dim):
        super(LinearRegression, self).__init__()
        self.lin = nn.Linear(input_dim, output_dim)

    def forward(self, x):
        return self.lin(x)


def cell4(learning_rate=0.1, n_iters=100, optimizer="sgd", options=None, seed=0, custom=False,
          **_):
    """In [4]: nn.Linear (or the lab's LinearRegression), MSELoss and an optimizer."""
    X = torch.tensor([[1], [2], [3], [4]], dtype=torch.float32)
    Y = torch.tensor([[2], [4], [6], [8]], dtype=torch.float32)
    X_test = torch.tensor([5], dtype=torch.float32)
    n_samples, n_features = X.shape
    input_size = n_features
    output_size = n_features
    torch.manual_seed(seed)  # the notebook does not seed: gd_pipeline --seed, default 0
    model = (LinearRegression if custom else nn.Linear)(input_size, output_size)

    r = Record(model(X_test).item())
    loss = nn.MSELoss()
    opt = make_optimizer(model.parameters(), learning_rate, optimizer, **(options or {}))
    for epoch in range(n_iters):
        y_pred = model(X)
        l = loss(Y, y_pred)
        l.backward()
        opt.step()
        opt.zero_grad()
        [w, b] = model.parameters()
        r.epoch(epoch, w[0][0].item(), l.item(), epoch % 10 == 0, ", ")
    return r.after(model(X_test).item())


CASES = [
    [],
    ["--lr", "0.02", "--epochs", "30"],
    ["--epochs", "1"],
    ["--epochs", "0"],
    ["--lr", "0"],
    ["--seed", "1"],
    ["--seed", "42", "--epochs", "50"],
    ["--seed", "12345", "--lr", "0.05"],
    ["--seed", "3", "--custom"],
    ["--optimizer", "sgd", "--momentum", "0.9"],
    ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.003", "--epochs", "60"],
    ["--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--lr", "0.01"],
    ["--momentum", "0.5", "--dampening", "0.3", "--weight-decay", "0.1"],
    ["--maximize", "--lr", "0.001", "--epochs", "10"],
    ["--optimizer", "adam"],
    ["--optimizer", "adam", "--beta1", "0.5", "--beta2", "0.9", "--eps", "1e-6", "--amsgrad"],
    ["--optimizer", "adam", "--weight-decay", "0.1", "--lr", "0.05", "--seed", "7"],
    ["--optimizer", "adam", "--maximize", "--epochs", "20"],
    ["--optimizer", "adamw"],
    ["--optimizer", "adamw", "--weight-decay", "0.1", "--amsgrad", "--beta2", "0.99"],
    ["--optimizer", "adamw", "--weight-decay", "0", "--beta1", "0", "--lr", "0.03"],
    ["--optimizer", "rmsprop"],
    ["--optimizer", "rmsprop", "--lr", "0.01", "--epochs", "50"],
    ["--optimizer", "rmsprop", "--alpha", "0.9", "--centered", "--momentum", "0.5"],
    ["--optimizer", "rmsprop", "--weight-decay", "0.01", "--eps", "1e-5", "--lr", "0.003"],
    ["--optimizer", "rmsprop", "--maximize", "--epochs", "15", "--seed", "2"],
]

# Runs that swing around the minimum, where the loss passes close to zero: there it is
# ill-conditioned (loss ~ (w - 2)^2, so a relative change e in w - 2 is 2e in the loss), and
# the last-bit differences of agrad's sums (correctly rounded, where PyTorch adds four floats
# in order) grow, with momentum 0.9 or RMSprop's normalised steps, to more than 1e-5 of some
# losses while w stays within 3e-6 of PyTorch's. tests/check_gd_pipeline.py checks their w
# and f(5), and reports the losses' largest error.
SENSITIVE = [
    ["--optimizer", "sgd", "--momentum", "0.9"],
    ["--optimizer", "rmsprop"],
    ["--optimizer", "rmsprop", "--lr", "0.01", "--epochs", "50"],
]

# The program's options and flags: their Python keywords.
OPTIONS = {"--momentum": "momentum", "--dampening": "dampening", "--weight-decay": "weight_decay",
           "--eps": "eps", "--alpha": "alpha"}
FLAGS = {"--nesterov": "nesterov", "--maximize": "maximize", "--amsgrad": "amsgrad",
         "--centered": "centered"}


def settings(args):
    """The keyword arguments of the cells for the program's arguments."""
    k = knobs(args, flags=set(FLAGS) | {"--custom"},
              known=set(OPTIONS) | {"--beta1", "--beta2", "--optimizer", "--lr", "--epochs",
                                    "--seed"})
    s = {"optimizer": k.get("--optimizer", "sgd"), "custom": "--custom" in k,
         "options": {FLAGS[f]: True for f in FLAGS if f in k}}
    s["options"].update({OPTIONS[o]: float(k[o]) for o in OPTIONS if o in k})
    if "--beta1" in k or "--beta2" in k:
        s["options"]["betas"] = (float(k.get("--beta1", 0.9)), float(k.get("--beta2", 0.999)))
    for option, key, kind in (("--lr", "learning_rate", float), ("--epochs", "n_iters", int),
                              ("--seed", "seed", int)):
        if option in k:
            s[key] = kind(k[option])
    return s


def main():
    out = []
    for args in CASES:
        s = settings(args)
        cells = [cell(**s) for cell in (cell1, cell2, cell3, cell4)]
        case = {"args": args, "cells": [{k: c[k] for k in ("w", "loss", "before", "after")}
                                        for c in cells]}
        if args in SENSITIVE:
            case["losses_unchecked"] = True
        if not args:
            case["text"] = [c["text"] for c in cells]
        out.append(case)
    json.dump({"generator": "tools/gen_ref_gd_pipeline.py", "torch": torch.__version__,
               "numpy": np.__version__, "cases": out}, sys.stdout, indent=1)
    print()


main()
