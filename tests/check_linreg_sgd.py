"""Runs examples/linreg_sgd with each case of tests/ref/linreg_sgd_ref.json and compares
its --json output with PyTorch's numbers: the four loss lists and the loader run's w and b
to 1e-5 relative, X as float32 values exactly, Y to 1e-6 (agrad's randn agrees with
PyTorch's vectorised one to about 1e-6, not bit for bit: autograd/random.c). Then the notebook's printed lines,
--help (status 0) and bad options (status 2, with a message). Prints TAP, and the largest
relative difference of each list as a comment.

    python3 tests/check_linreg_sgd.py <linreg_sgd binary> <linreg_sgd_ref.json>
"""
import json
import struct
import subprocess
import sys

RTOL = 1e-5
Y_RTOL, Y_ATOL = 1e-6, 1e-7
LISTS = ("LOSS_BGD", "LOSS_SGD", "LOSS_Loader", "LOSS")

# What the notebook prints for its dataset cells, before the losses.
NOTEBOOK = """The length of dataset:  60
( tensor([-3.]) ,  tensor([-4.]) )
The first 3 x:  tensor([[-3.0000],
        [-2.9000],
        [-2.8000]])
The first 3 y:  tensor([[-4.0000],
        [-3.9000],
        [-3.8000]])
"""

BAD = [
    ["--unknown"],
    ["--epochs", "many"],
    ["--epochs", "1.5"],
    ["--epochs", "-1"],
    ["--seed", "-3"],
    ["--lr", "0"],
    ["--lr", "nan"],
    ["--w", "inf"],
    ["--batch-size", "0"],
    ["--batch-size", "2.5"],
    ["--practice-b"],
]


def f32(v):
    """v rounded to float32: the program prints %.9g of a float, Python the exact value."""
    return struct.unpack("f", struct.pack("f", v))[0]


def rel(got, want):
    return abs(got - want) / max(abs(want), 1e-30)


def main():
    binary, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        cases = json.load(f)["cases"]
    print("TAP version 13")
    print("1..%d" % (len(cases) + 2 + len(BAD)))
    n = failed = 0
    worst = {key: 0.0 for key in LISTS + ("w", "b", "Y")}

    def report(ok, name, problems=()):
        nonlocal n, failed
        n += 1
        failed += not ok
        print("%s %d - %s" % ("ok" if ok else "not ok", n, name))
        for p in list(problems)[:10]:
            print("  # " + p)

    for case in cases:
        args = case["args"] + ["--json"]
        run = subprocess.run([binary] + args, capture_output=True, text=True)
        problems = []
        if run.returncode != 0:
            problems.append("exit status %d: %s" % (run.returncode, run.stderr.strip()))
        else:
            got = json.loads(run.stdout)
            for key, want in case["expected"].items():
                if key not in got:
                    problems.append("no key %s in the output" % key)
                    continue
                g = got[key] if isinstance(want, list) else [got[key]]
                wl = want if isinstance(want, list) else [want]
                if len(g) != len(wl):
                    problems.append("%s has %d values, PyTorch %d" % (key, len(g), len(wl)))
                    continue
                for i, (a, e) in enumerate(zip(g, wl)):
                    if key == "X":
                        bad = f32(a) != f32(e)
                    elif key == "Y":
                        worst[key] = max(worst[key], rel(a, e))
                        bad = abs(a - e) > Y_RTOL * abs(e) + Y_ATOL
                    else:
                        worst[key] = max(worst[key], rel(a, e))
                        bad = rel(a, e) > RTOL
                    if bad:
                        problems.append("%s[%d] = %.9g, PyTorch %.9g" % (key, i, a, e))
        report(not problems, "linreg_sgd " + " ".join(args), problems)

    run = subprocess.run([binary], capture_output=True, text=True)
    report(run.returncode == 0 and run.stdout.startswith(NOTEBOOK),
           "linreg_sgd prints the notebook's lines for the dataset",
           [] if run.stdout.startswith(NOTEBOOK) else ["got:"] + run.stdout.splitlines()[:8])
    run = subprocess.run([binary, "--help"], capture_output=True, text=True)
    report(run.returncode == 0 and "usage:" in run.stdout, "linreg_sgd --help exits with 0")
    for args in BAD:
        run = subprocess.run([binary] + args, capture_output=True, text=True)
        ok = run.returncode == 2 and args[0] in run.stderr and not run.stdout
        report(ok, "linreg_sgd %s exits with 2 and says why" % " ".join(args),
               [] if ok else ["status %d, stderr: %s" % (run.returncode, run.stderr.strip())])
    for key, v in worst.items():
        print("# largest relative difference from PyTorch in %s: %.3g" % (key, v))
    return 1 if failed else 0


sys.exit(main())
