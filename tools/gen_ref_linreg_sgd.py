"""Writes tests/ref/linreg_sgd_ref.json: the lab "Linear regression 1D: Training Two
Parameter Stochastic Gradient Descent" (DATAIDEA's notes, seeds 000 and 001) run by
PyTorch for several settings of examples/linreg_sgd's options.

    /usr/bin/python3 tools/gen_ref_linreg_sgd.py > tests/ref/linreg_sgd_ref.json

Needs Debian's python3-torch (PyTorch 1.13); tests/check_linreg_sgd.py reads only the
output. The lab's cells run in the lab's order, with its plotting left out (it draws no
random numbers). The practice records the total loss against Y, as the practice's text
asks (the lab's hidden solution compares with X).
"""
import json

import torch
from torch.utils.data import DataLoader

from labs import Data, criterion, knobs, lab_data, step


def lab(seed=1, lr=0.1, w0=-15.0, b0=-10.0, epochs=10, batch_size=1, shuffle=False,
        practice_w=-12.0, practice_b=-10.0):
    X, Y = lab_data(seed)

    def forward(x):
        return w * x + b

    # Batch gradient descent
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    LOSS_BGD = []
    for epoch in range(epochs):
        Yhat = forward(X)
        loss = criterion(Yhat, Y)
        LOSS_BGD.append(loss)
        loss.backward()
        step(w, b, lr)
    LOSS_BGD_ = [loss.item() for loss in LOSS_BGD]

    def train_model_SGD(epochs, samples, LOSS):
        """train_model_SGD (samples: zip(X, Y)) and train_model_DataLoader (samples: the
        loader): the total loss against Y before each epoch, a step for each sample."""
        for epoch in range(epochs):
            Yhat = forward(X)
            LOSS.append(criterion(Yhat, Y).tolist())
            for x, y in samples:
                yhat = forward(x)
                loss = criterion(yhat, y)
                loss.backward()
                step(w, b, lr)

    # Stochastic gradient descent, sample by sample
    LOSS_SGD = []
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    train_model_SGD(epochs, list(zip(X, Y)), LOSS_SGD)

    # SGD with the Data class and a DataLoader
    dataset = Data()
    trainloader = DataLoader(dataset=dataset, batch_size=batch_size, shuffle=shuffle)
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    LOSS_Loader = []
    train_model_SGD(epochs, trainloader, LOSS_Loader)
    w_loader, b_loader = w.item(), b.item()

    # The practice: the same loader, 10 iterations
    LOSS = []
    w = torch.tensor(practice_w, requires_grad=True)
    b = torch.tensor(practice_b, requires_grad=True)
    train_model_SGD(10, trainloader, LOSS)

    return {"LOSS_BGD": LOSS_BGD_, "LOSS_SGD": LOSS_SGD, "LOSS_Loader": LOSS_Loader,
            "LOSS": LOSS, "w": w_loader, "b": b_loader,
            "X": X.view(-1).tolist(), "Y": Y.view(-1).tolist()}


CASES = [
    [],
    ["--seed", "3"],
    ["--seed", "0", "--lr", "0.05"],
    ["--lr", "0.01"],
    ["--shuffle"],
    ["--shuffle", "--batch-size", "5"],
    ["--shuffle", "--batch-size", "7"],
    ["--seed", "7", "--shuffle", "--batch-size", "7", "--lr", "0.05"],
    ["--batch-size", "7"],
    ["--batch-size", "60"],
    ["--w", "5", "--b", "2", "--epochs", "20"],
    ["--w", "0", "--b", "0", "--epochs", "3", "--lr", "0.02"],
    ["--practice-w", "3", "--practice-b", "-4"],
    ["--practice-w", "-20", "--practice-b", "8", "--shuffle", "--batch-size", "5"],
    ["--epochs", "1"],
    ["--epochs", "0"],
]

out = []
for args in CASES:
    k = knobs(args, flags={"--shuffle"})
    run = lab(seed=int(k.get("--seed", 1)), lr=float(k.get("--lr", 0.1)),
              w0=float(k.get("--w", -15.0)), b0=float(k.get("--b", -10.0)),
              epochs=int(k.get("--epochs", 10)), batch_size=int(k.get("--batch-size", 1)),
              shuffle=k.get("--shuffle", False),
              practice_w=float(k.get("--practice-w", -12.0)),
              practice_b=float(k.get("--practice-b", -10.0)))
    out.append({"args": args, "expected": run})
print(json.dumps({"generator": "tools/gen_ref_linreg_sgd.py", "torch": torch.__version__,
                  "cases": out}, indent=1))
