"""The bench_sgd step in PyTorch, for comparison (needs Debian's python3-torch).

    /usr/bin/python3 bench/torch_sgd_step.py [steps]
"""
import sys
import time

import torch

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
lr = 0.01
torch.manual_seed(1)
X = torch.arange(-3, 3, 0.1).view(-1, 1)
Y = 1 * X - 1 + 0.1 * torch.randn(X.size())
w = torch.tensor(-15.0, requires_grad=True)
b = torch.tensor(-10.0, requires_grad=True)
n = X.shape[0]

t0 = None
for s in range(steps):
    if s == 1000:
        t0 = time.perf_counter()
    x, y = X[s % n], Y[s % n]
    loss = torch.mean((w * x + b - y) ** 2)
    loss.backward()
    with torch.no_grad():
        w.sub_(lr * w.grad)
        b.sub_(lr * b.grad)
    w.grad.zero_()
    b.grad.zero_()
ns = (time.perf_counter() - t0) / (steps - 1000) * 1e9
print(f"PyTorch {torch.__version__}: {ns:.0f} ns/step (w = {w.item():.6f}, b = {b.item():.6f})")
