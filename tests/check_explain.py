"""examples/explain_backward: its gradient checks say ok for several values of w and b (the
formula done here in double, apart from the program's), its trace has the five nodes of the
lab's graph in the order the pass takes them, --out writes graph.dot (and the pictures when
agrad renders: the program says which), and bad options exit 2.

    check_explain.py BINARY
"""
import os
import re
import sys
import tempfile

from refcheck import Tap, check_help, check_refusals, run

X, Y = [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]
NODES = ["MeanBackward0 -> loss", "PowBackward0 -> sq", "SubBackward0 -> err",
         "AddBackward0 -> yhat", "MulBackward0 -> wx"]


def by_hand(w, b):
    r = [w * x + b - y for x, y in zip(X, Y)]
    return (sum(2 * ri * xi for ri, xi in zip(r, X)) / 3, sum(2 * ri for ri in r) / 3)


def main():
    binary = sys.argv[1]
    tap = Tap()
    for w, b in [(-15, -10), (0.5, -1), (0, 0), (3.25, 1e3)]:
        result = run(binary, ["--w", str(w), "--b", str(b)])
        problems = []
        if result.returncode != 0:
            problems.append("exit status %d: %s" % (result.returncode, result.stderr.strip()))
        out = result.stdout
        for what, want in zip(["dloss/dw", "dloss/db"], by_hand(w, b)):
            m = re.search(r"^(\S+) +%s +autograd (\S+) +by hand (\S+)$" % what, out, re.M)
            if not m:
                problems.append("no line for %s" % what)
                continue
            got = float(m.group(2))
            if m.group(1) != "ok":
                problems.append("%s says %s" % (what, m.group(1)))
            if abs(got - want) > 1e-5 * max(1.0, abs(want)):
                problems.append("%s = %r, by hand %r" % (what, got, want))
        at = [out.find(n) for n in NODES]
        if -1 in at or at != sorted(at):
            problems.append("the trace lacks the five nodes in order: %r" % at)
        tap.result("w = %g, b = %g: both gradients ok, the trace's five nodes" % (w, b), problems)

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "made", "here")
        os.makedirs(os.path.dirname(out_dir))
        result = run(binary, ["--out", out_dir])
        problems = [] if result.returncode == 0 else ["exit status %d: %s" % (
            result.returncode, result.stderr.strip())]
        files = ["graph.dot"]
        if "built without Graphviz" not in result.stdout:
            files += ["graph.svg", "graph.png"]
        for f in files:
            path = os.path.join(out_dir, f)
            if not os.path.exists(path) or os.path.getsize(path) == 0:
                problems.append("no %s" % f)
        dot = open(os.path.join(out_dir, "graph.dot")).read() if not problems else ""
        for word in ["digraph", "MulBackward0", "loss", "grad -21.33"]:
            if word not in dot:
                problems.append("graph.dot lacks %r" % word)
        tap.result("--out writes " + ", ".join(files), problems)

    check_help(tap, binary, ["--w", "--b", "--out"])
    check_refusals(tap, binary, [(["--w", "x"], "--w needs a finite number, not 'x'"),
                                 (["--out"], "--out needs a directory"),
                                 (["--frobnicate"], "unknown option '--frobnicate'")])
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
