"""Writes tests/ref/lab_ref.json: the lab "Linear regression 1D, training two
parameters" (DATAIDEA's notes) run by PyTorch for several settings of its knobs: the
main run (LOSS, w, b) and the practice run (LOSS2: its own lr, w and b, as many
iterations, on the same data).

    /usr/bin/python3 tools/gen_ref_lab.py > tests/ref/lab_ref.json

Needs Debian's python3-torch (PyTorch 1.13); tests/check_lab.py reads only the output.
"""
import json

import torch

from labs import criterion, knobs, lab_data, step


def lab(seed=1, lr=0.1, w0=-15.0, b0=-10.0, epochs=15, lr2=0.2, w2=-15.0, b2=-10.0):
    X, Y = lab_data(seed)

    def forward(x):
        return w * x + b

    def train_model(iter, lr, LOSS):
        for epoch in range(iter):
            Yhat = forward(X)
            loss = criterion(Yhat, Y)
            LOSS.append(loss.item())
            loss.backward()
            step(w, b, lr)

    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    LOSS = []
    train_model(epochs, lr, LOSS)
    result = {"LOSS": LOSS, "w": w.item(), "b": b.item(),
              "X": X.view(-1).tolist(), "Y": Y.view(-1).tolist()}

    # Practice: w = torch.tensor(-15.0, ...); b = torch.tensor(-10.0, ...); lr = 0.2
    w = torch.tensor(w2, requires_grad=True)
    b = torch.tensor(b2, requires_grad=True)
    LOSS2 = []
    train_model(epochs, lr2, LOSS2)
    result["LOSS2"] = LOSS2
    return result


CASES = [
    [],
    ["--lr", "0.2"],
    ["--seed", "3", "--w", "5", "--b", "2", "--epochs", "20", "--lr", "0.05"],
    ["--seed", "0", "--epochs", "1"],
    ["--epochs", "0"],
    ["--practice-lr", "0.05"],
    ["--practice-w", "3", "--practice-b", "-2", "--practice-lr", "0.3"],
    ["--seed", "7", "--epochs", "30", "--lr", "0.02", "--practice-lr", "0.25",
     "--practice-w", "-12", "--practice-b", "10"],
]

out = []
for args in CASES:
    k = knobs(args)
    run = lab(seed=int(k.get("--seed", 1)), lr=float(k.get("--lr", 0.1)),
              w0=float(k.get("--w", -15.0)), b0=float(k.get("--b", -10.0)),
              epochs=int(k.get("--epochs", 15)),
              lr2=float(k.get("--practice-lr", 0.2)),
              w2=float(k.get("--practice-w", -15.0)),
              b2=float(k.get("--practice-b", -10.0)))
    out.append({"args": args, "expected": run})
print(json.dumps({"generator": "tools/gen_ref_lab.py", "torch": torch.__version__,
                  "cases": out}, indent=1))
