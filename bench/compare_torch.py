"""agrad-bench's workloads in PyTorch (Debian's python3-torch, one thread), in the same run,
beside agrad's and the hand-written figures, with the ratios.

    /usr/bin/python3 bench/compare_torch.py build/bench/agrad-bench [--rounds N]

A round runs agrad-bench, then PyTorch's workloads, and takes each ratio from the two
figures of that round. With several rounds (5 unless told) it prints each figure's median
over the rounds and the lowest and highest, ratios included: on a shared machine one round's
figures move by as much as 2x, and the spread says how far to trust a ratio.

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


# agrad's other figures for the same workload: replayed, and the SGD step as the smallest
# replay program runs it (no agrad in it: beside the hand-written step only, not PyTorch)
ALSO = {"sgd_step_ns": ["sgd_step_replay_ns", "sgd_step_floor_ns"],
            "bgd_1e6_ms": ["bgd_1e6_replay_ms"]}
NOT_AGRAD = {"sgd_step_floor_ns"}


def num(v):
    """four significant digits, without an exponent below 10^7"""
    return "%.0f" % v if 1e4 <= v < 1e7 else "%.4g" % v


def ratio(v):
    return "%.1f" % v


def spread(values, fmt=num):
    """the median over the rounds (lowest-highest), or the one value of one round"""
    m = fmt(statistics.median(values))
    return m if len(values) == 1 else "%s (%s-%s)" % (m, fmt(min(values)), fmt(max(values)))


def main():
    args = sys.argv[1:]
    rounds = 5
    if len(args) == 3 and args[1] == "--rounds" and args[2].isdigit() and int(args[2]) > 0:
        rounds = int(args[2])
    elif len(args) != 1:
        print(__doc__)
        return 2
    try:
        import torch
    except ImportError:
        print("compare_torch: no PyTorch here (apt-get install python3-torch, run with "
              "/usr/bin/python3): nothing to compare with")
        return 0
    torch.set_num_threads(1)
    ours, hand, theirs = {}, {}, {}  # figure -> one value per round
    for r in range(rounds):
        agrad = json.loads(subprocess.run([args[0], "--json"], capture_output=True, text=True,
                                          check=True).stdout)
        for key, setup, run, steps, scale in workloads(torch):
            t = timed(setup, run, steps) * scale
            # PyTorch has no CPU replay: its eager step beside our replayed one
            for k in [key] + ALSO.get(key, []):
                ours.setdefault(k, []).append(agrad[k])
                if k not in NOT_AGRAD:
                    theirs.setdefault(k, []).append(t)
                h = agrad.get(k.replace("_replay", "").replace("_floor", "")
                              .replace("_ns", "_handwritten_ns")
                              .replace("_ms", "_handwritten_ms"))
                if h:
                    hand.setdefault(k, []).append(h)
        print("round %d of %d done" % (r + 1, rounds), file=sys.stderr)
    print("%-20s %-24s %-22s %-18s %-26s %s" % ("figure", "agrad", "hand C", "agrad/hand C",
                                                  "PyTorch", "PyTorch/agrad"))
    for k in ours:
        over_hand = [o / h for o, h in zip(ours[k], hand[k])] if k in hand else []
        vs_torch = ["", ""]
        if k in theirs:
            ratios = [t / o for t, o in zip(theirs[k], ours[k])]
            vs_torch = [spread(theirs[k]), spread(ratios, ratio) + " x"]
        print("%-20s %-24s %-22s %-18s %-26s %s" % (
            k, spread(ours[k]), spread(hand[k]) if k in hand else "",
            spread(over_hand, ratio) + " x" if over_hand else "", *vs_torch))
    print("node_bytes: agrad %d B per recorded scalar node; allocs_per_step %g"
          % (agrad["node_bytes"], agrad["allocs_per_step"]))
    print("PyTorch %s, %d thread; %d round%s, each ratio from one round's two figures"
          % (torch.__version__, torch.get_num_threads(), rounds, "" if rounds == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
