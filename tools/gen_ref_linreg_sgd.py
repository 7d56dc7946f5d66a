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
from torch.utils.data import DataLoader, Dataset


def lab(seed=1, lr=0.1, w0=-15.0, b0=-10.0, epochs=10, batch_size=1, shuffle=False,
        practice_w=-12.0, practice_b=-10.0):
    torch.manual_seed(seed)
    X = torch.arange(-3, 3, 0.1).view(-1, 1)
    f = 1 * X - 1
    Y = f + 0.1 * torch.randn(X.size())

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    # Batch gradient descent
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    LOSS_BGD = []
    for epoch in range(epochs):
        Yhat = forward(X)
        loss = criterion(Yhat, Y)
        LOSS_BGD.append(loss)
        loss.backward()
        w.data = w.data - lr * w.grad.data
        b.data = b.data - lr * b.grad.data
        w.grad.data.zero_()
        b.grad.data.zero_()
    LOSS_BGD_ = [loss.item() for loss in LOSS_BGD]

    # Stochastic gradient descent, sample by sample
    LOSS_SGD = []
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    for epoch in range(epochs):
        Yhat = forward(X)
        LOSS_SGD.append(criterion(Yhat, Y).tolist())
        for x, y in zip(X, Y):
            yhat = forward(x)
            loss = criterion(yhat, y)
            loss.backward()
            w.data = w.data - lr * w.grad.data
            b.data = b.data - lr * b.grad.data
            w.grad.data.zero_()
            b.grad.data.zero_()

    # SGD with the Data class and a DataLoader
    class Data(Dataset):
        def __init__(self):
            self.x = torch.arange(-3, 3, 0.1).view(-1, 1)
            self.y = 1 * self.x - 1
            self.len = self.x.shape[0]

        def __getitem__(self, index):
            return self.x[index], self.y[index]

        def __len__(self):
            return self.len

    dataset = Data()
    trainloader = DataLoader(dataset=dataset, batch_size=batch_size, shuffle=shuffle)
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    LOSS_Loader = []
    for epoch in range(epochs):
        Yhat = forward(X)
        LOSS_Loader.append(criterion(Yhat, Y).tolist())
        for x, y in trainloader:
            yhat = forward(x)
            loss = criterion(yhat, y)
            loss.backward()
            w.data = w.data - lr * w.grad.data
            b.data = b.data - lr * b.grad.data
            w.grad.data.zero_()
            b.grad.data.zero_()
    w_loader, b_loader = w.item(), b.item()

    # The practice: the same loader, 10 iterations
    LOSS = []
    w = torch.tensor(practice_w, requires_grad=True)
    b = torch.tensor(practice_b, requires_grad=True)
    for epoch in range(10):
        Yhat = forward(X)
        LOSS.append(criterion(Yhat, Y).tolist())
        for x, y in trainloader:
            yhat = forward(x)
            loss = criterion(yhat, y)
            loss.backward()
            w.data = w.data - lr * w.grad.data
            b.data = b.data - lr * b.grad.data
            w.grad.data.zero_()
            b.grad.data.zero_()

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

FLAGS = {"--shuffle"}

out = []
for args in CASES:
    knobs, i = {}, 0
    while i < len(args):
        if args[i] in FLAGS:
            knobs[args[i]] = True
            i += 1
        else:
            knobs[args[i]] = args[i + 1]
            i += 2
    run = lab(seed=int(knobs.get("--seed", 1)), lr=float(knobs.get("--lr", 0.1)),
              w0=float(knobs.get("--w", -15.0)), b0=float(knobs.get("--b", -10.0)),
              epochs=int(knobs.get("--epochs", 10)),
              batch_size=int(knobs.get("--batch-size", 1)),
              shuffle=knobs.get("--shuffle", False),
              practice_w=float(knobs.get("--practice-w", -12.0)),
              practice_b=float(knobs.get("--practice-b", -10.0)))
    out.append({"args": args, "expected": run})
print(json.dumps({"generator": "tools/gen_ref_linreg_sgd.py", "torch": torch.__version__,
                  "cases": out}, indent=1))
