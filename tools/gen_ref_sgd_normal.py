"""Writes tests/ref/sgd_normal_ref.json: the lab "Intro to pytorch I: Stochastic
gradient" (gradient descent against the normal equation) run by PyTorch for several
settings of examples/sgd_normal_equation's options.

    /usr/bin/python3 tools/gen_ref_sgd_normal.py > tests/ref/sgd_normal_ref.json

Besides what the lab computes (the step at which the loss stopped changing, the losses
until then, the test MSE, the SGD answer, the normal-equation answer, the true weights),
each case holds "after": for k = 0, 1, ... updates, [w0, w1, loss, test MSE] of the model
after k updates, past the lab's stop. The lab stops when two float32 losses are exactly
equal, which depends on the last bit of a sum of thousands of terms: agrad's sums are
correctly rounded, PyTorch's are a float cascade, so the two may stop a few steps apart,
and the test compares the C program's answer with PyTorch's model after as many updates.

The lab draws its true and initial weights with numpy's unseeded generator; the C program
draws them with PyTorch's (tensor.uniform_(-14, 14)), and so does this script, so that a
seed gives the same run in both. Needs Debian's python3-torch (PyTorch 1.13);
tests/check_sgd_normal.py reads only the output.
"""
import json

import torch
import torch.nn as nn

from labs import knobs


def uniform_pair():
    # the lab: torch.tensor([np.random.uniform(-14, 14), np.random.uniform(-14, 14)])
    return torch.empty(2).uniform_(-14, 14)


def lab(seed=0, lr=0.1, iterations=1000, n_data=10000):
    torch.manual_seed(seed)
    X = torch.ones(n_data, 2)
    X[:, 0].uniform_(-1.15, 1.15)
    actual = uniform_pair()
    y = X @ actual + torch.randn(n_data) / 3

    train_size = int(n_data * .75)
    X_train, X_test = X[0:train_size, :], X[train_size:n_data, :]
    y_train, y_test = y[0:train_size], y[train_size:n_data]

    def mean_standard_error(y, y_pred):
        return ((y - y_pred) ** 2).mean()

    LOSS = []
    converged = None

    def gentle_linear_torch(data, target, learning_rate, iterations):
        nonlocal converged
        model = nn.Parameter(uniform_pair())
        for time in range(iterations):
            y_hat = data @ model
            loss = mean_standard_error(target, y_hat)
            LOSS.append(loss.item())
            if time > 0 and last_loss == loss:
                converged = time
                return model
            loss.backward()
            with torch.no_grad():
                model.sub_(learning_rate * model.grad)
                model.grad.zero_()
            last_loss = loss
        return model

    state = torch.get_rng_state()
    sgd = gentle_linear_torch(X_train, y_train, lr, iterations)
    y_hat = X_test @ sgd
    test_mse = float(mean_standard_error(y_hat, y_test))
    theta = (torch.t(X_train) @ X_train).inverse() @ torch.t(X_train) @ y_train

    # The same descent again without the stop, up to a tenth past it (plus 10 steps).
    torch.set_rng_state(state)
    model = nn.Parameter(uniform_pair())
    length = iterations if converged is None else min(iterations, converged + converged // 10 + 10)
    after = []
    for k in range(length + 1):
        with torch.no_grad():
            loss = mean_standard_error(y_train, X_train @ model)
            test = mean_standard_error(X_test @ model, y_test)
        after.append(model.tolist() + [loss.item(), test.item()])
        if k == length:
            break
        loss = mean_standard_error(y_train, X_train @ model)
        loss.backward()
        with torch.no_grad():
            model.sub_(lr * model.grad)
            model.grad.zero_()
    return {"convergence_step": converged, "LOSS": LOSS, "test_mse": test_mse,
            "sgd": sgd.tolist(), "normal_equation": theta.tolist(), "actual": actual.tolist(),
            "after": after}


CASES = [
    [],
    ["--seed", "1"],
    ["--seed", "2", "--lr", "0.05", "--iterations", "300"],
    ["--seed", "3", "--n", "1000"],
    ["--iterations", "40"],
    ["--seed", "4", "--lr", "0.5", "--n", "5000"],
    ["--seed", "5", "--lr", "0.01", "--iterations", "2000", "--n", "2000"],
    ["--n", "4", "--iterations", "10"],
    ["--iterations", "0"],
]

out = []
for args in CASES:
    k = knobs(args)
    run = lab(seed=int(k.get("--seed", 0)), lr=float(k.get("--lr", 0.1)),
              iterations=int(k.get("--iterations", 1000)), n_data=int(k.get("--n", 10000)))
    out.append({"args": args, "expected": run})
# One line per case, one per list of "after": readable, and a tenth of indent=1's size.
print('{"generator": "tools/gen_ref_sgd_normal.py", "torch": "%s", "cases": [' % torch.__version__)
for i, case in enumerate(out):
    after = case["expected"].pop("after")
    text = json.dumps(case)
    print(text[:-2] + ', "after": [\n' + ",\n".join(json.dumps(a) for a in after) + "]}}" +
          ("," if i + 1 < len(out) else ""))
print("]}")
