"""The nn examples in PyTorch: the programs examples/logistic_regression.c,
examples/softmax_regression.c and examples/xor_mlp.c are ports of, line for line.

    /usr/bin/python3 tools/nn_examples.py logistic --seed 0 --epochs 20 --lr 0.5
    /usr/bin/python3 tools/nn_examples.py ref > tests/ref/nn_examples_ref.json

Each prints the loss and accuracy of every epoch (with --json: {"loss": [...],
"accuracy": [...]} and the final parameters). `ref` runs each for several settings and
writes what tests/check_examples.py compares the C programs with. Needs Debian's
python3-torch (PyTorch 1.13); the tests read only the committed output.
"""
import argparse
import json
import sys

import torch
import torch.nn as nn


def blobs(n, centers):
    """n points around each center, std 0.7, labelled by center: X (k n, 2), y (k n)."""
    X = torch.cat([torch.randn(n, 2) * 0.7 + torch.tensor(c) for c in centers])
    y = torch.cat([torch.full((n,), float(k)) for k in range(len(centers))])
    return X, y


def train(model, loss_fn, X, target, predict, epochs, lr, every, loss_target=None):
    """Full-batch gradient descent; loss_target is target as the loss wants it (class
    indices are int64 in PyTorch, floats holding integers in agrad)."""
    loss_target = target if loss_target is None else loss_target
    losses, accuracies = [], []
    for epoch in range(epochs):
        out = model(X)
        loss = loss_fn(out, loss_target)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        model.zero_grad()
        accuracy = (predict(out) == target).float().mean()
        losses.append(loss.item())
        accuracies.append(accuracy.item())
        if every and (epoch % every == 0 or epoch == epochs - 1):
            print(f"epoch {epoch + 1}: loss = {loss.item():.6f}, accuracy = {accuracy.item():.3f}")
    return losses, accuracies


def logistic(seed, epochs, lr, every):
    torch.manual_seed(seed)
    X, y = blobs(50, [(-1.0, -1.0), (1.0, 1.0)])
    model = nn.Linear(2, 1)
    loss_fn = nn.BCEWithLogitsLoss()
    return model, train(model, loss_fn, X, y.view(-1, 1), lambda z: (z > 0).float(), epochs, lr,
                        every)


def softmax(seed, epochs, lr, every):
    torch.manual_seed(seed)
    X, y = blobs(40, [(-2.0, 0.0), (2.0, 0.0), (0.0, 2.0)])
    model = nn.Linear(2, 3)
    loss_fn = nn.CrossEntropyLoss()
    return model, train(model, loss_fn, X, y, lambda z: z.argmax(1).float(), epochs, lr, every,
                        y.long())


def xor(seed, epochs, lr, every):
    torch.manual_seed(seed)
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid())
    loss_fn = nn.BCELoss()
    if every:
        print(model)
    return model, train(model, loss_fn, X, y, lambda p: (p > 0.5).float(), epochs, lr, every)


PROGRAMS = {"logistic": (logistic, 20, 0.5), "softmax": (softmax, 20, 0.5),
            "xor": (xor, 2000, 0.5)}


def run(name, seed, epochs, lr, every=0):
    fn = PROGRAMS[name][0]
    model, (losses, accuracies) = fn(seed, epochs, lr, every)
    params = {k: v.reshape(-1).tolist() for k, v in model.state_dict().items()}
    return {"loss": losses, "accuracy": accuracies, "parameters": params}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "ref":
        cases = []
        for name, settings in [("logistic", [(0, 20, 0.5), (1, 30, 0.1), (7, 15, 1.0)]),
                               ("softmax", [(0, 20, 0.5), (3, 25, 0.2), (11, 10, 1.0)]),
                               ("xor", [(0, 2000, 0.5), (2, 1500, 1.0)])]:
            for seed, epochs, lr in settings:
                cases.append({"program": name, "seed": seed, "epochs": epochs, "lr": lr,
                              **run(name, seed, epochs, lr)})
        json.dump({"torch": torch.__version__, "cases": cases}, sys.stdout, indent=1)
        print()
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("program", choices=sorted(PROGRAMS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    _, epochs, lr = PROGRAMS[a.program]
    epochs = a.epochs if a.epochs is not None else epochs
    lr = a.lr if a.lr is not None else lr
    every = 0 if a.json else max(1, epochs // 10)
    r = run(a.program, a.seed, epochs, lr, every)
    if a.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
