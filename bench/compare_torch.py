"""agrad-bench's workloads in PyTorch (Debian's python3-torch, one thread), in the same run,
beside agrad's and the hand-written figures, with the ratios.

    /usr/bin/python3 bench/compare_torch.py build/bench/agrad-bench

Without PyTorch it says so and exits 0 (nothing to compare with).
"""
import json
import statistics
import subprocess
import sys
import time

REPS = 7


def timed(setup, run, steps):
    """The median over REPS repetitions of steps steps, after one to warm up, in s/step."""
    state = setup()
    run(state, steps)
    t = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        run(state, steps)
        t.append((time.perf_counter() - t0) / steps)
    return statistics.median(t)


def workloads(torch):
    def update(w, b, lr):
        """w.add_(w.grad, alpha=-lr), b likewise, under no_grad; then zero the grads."""
        with torch.no_grad():
            w.add_(w.grad, alpha=-lr)
            b.add_(b.grad, alpha=-lr)
        w.grad.zero_()
        b.grad.zero_()

    def sgd_setup():
        torch.manual_seed(1)
        X = torch.arange(-3, 3, 0.1).view(-1, 1)
        Y = 1 * X - 1 + 0.1 * torch.randn(X.size())
        return {"X": X, "Y": Y, "w": torch.tensor(-15.0, requires_grad=True),
                "b": torch.tensor(-10.0, requires_grad=True), "i": 0}

    def sgd_run(s, steps):
        X, Y, w, b = s["X"], s["Y"], s["w"], s["b"]
        n = X.shape[0]
        for _ in range(steps):
            i = s["i"]
            torch.mean((w * X[i] + b - Y[i]) ** 2).backward()
            update(w, b, 0.01)
            s["i"] = (i + 1) % n

    def node_setup():
        return torch.tensor(0.5, requires_grad=True)

    def node_run(x, steps):  # steps: nodes, in chains of 1000 links (2000 nodes)
        for _ in range(0, steps, 2000):
            y = x
            for _ in range(1000):
                y = y * 0.999 + 0.001
            y.backward()
            x.grad.zero_()

    def bgd_setup():
        torch.manual_seed(1)
        X = torch.rand(1000000)
        Y = 2 * X + 0.1 * torch.randn(1000000)
        return X, Y, torch.tensor(0.0, requires_grad=True), torch.tensor(0.0, requires_grad=True)

    def bgd_run(s, steps):
        X, Y, w, b = s
        for _ in range(steps):
            torch.mean((w * X + b - Y) ** 2).backward()
            update(w, b, 0.1)

    def mm_setup():
        torch.manual_seed(1)
        return (torch.randn(256, 256, requires_grad=True),
                torch.randn(256, 256, requires_grad=True))

    def mm_run(s, steps):
        A, B = s
        for _ in range(steps):
            (A @ B).sum().backward()
            A.grad.zero_()
            B.grad.zero_()

    def mlp_setup():
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        X = torch.randn(64, 784)
        T = torch.tensor([i % 10 for i in range(64)])
        return model, opt, X, T

    def mlp_run(s, steps):
        model, opt, X, T = s
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(model(X), T)
            loss.backward()
            opt.step()
            opt.zero_grad()

    return [("sgd_step_ns", sgd_setup, sgd_run, 2000, 1e9),
            ("node_ns", node_setup, node_run, 20000, 1e9),
            ("bgd_1e6_ms", bgd_setup, bgd_run, 2, 1e3),
            ("matmul_256_ms", mm_setup, mm_run, 4, 1e3),
            ("mlp_784_128_10_ms", mlp_setup, mlp_run, 10, 1e3)]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    try:
        import torch
    except ImportError:
        print("compare_torch: no PyTorch here (apt-get install python3-torch, run with "
              "/usr/bin/python3): nothing to compare with")
        return 0
    torch.set_num_threads(1)
    agrad = json.loads(subprocess.run([sys.argv[1], "--json"], capture_output=True, text=True,
                                      check=True).stdout)
    print("%-20s %12s %12s %12s %10s" % ("figure", "agrad", "hand C", "PyTorch", "PyTorch/agrad"))
    rows = []
    for key, setup, run, steps, scale in workloads(torch):
        theirs = timed(setup, run, steps) * scale
        rows.append((key, agrad[key], theirs))
        if key == "sgd_step_ns":  # PyTorch has no CPU replay: its eager step beside ours
            rows.append(("sgd_step_replay_ns", agrad["sgd_step_replay_ns"], theirs))
    for key, ours, theirs in rows:
        hand = agrad.get(key.replace("_replay", "").replace("_ns", "_handwritten_ns")
                         .replace("_ms", "_handwritten_ms"))
        print("%-20s %12.4g %12s %12.4g %10.1f x" % (key, ours, "%.4g" % hand if hand else "",
                                                    theirs, theirs / ours))
    print("node_bytes: agrad %d B per recorded scalar node; allocs_per_step %g"
          % (agrad["node_bytes"], agrad["allocs_per_step"]))
    print("PyTorch %s, %d thread" % (torch.__version__, torch.get_num_threads()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
