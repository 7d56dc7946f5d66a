"""Runs the nn examples (logistic_regression, softmax_regression, xor_mlp) with each case
of tests/ref/nn_examples_ref.json and compares their --json output with what the same
programs gave in PyTorch (tools/nn_examples.py): losses and parameters to 1e-5 relative,
accuracies exactly. Also checks --help (status 0) and a bad option (status 2). Prints TAP.

    python3 tests/check_examples.py <ref.json> logistic=<bin> softmax=<bin> xor=<bin>
"""
import json
import struct
import subprocess
import sys

RTOL, ATOL = 1e-5, 1e-6


def close(got, want):
    return abs(got - want) <= RTOL * abs(want) + ATOL


def f32(v):
    """v rounded to float32: the programs print %.9g of a float, Python the exact value."""
    return struct.unpack("f", struct.pack("f", v))[0]


def compare(name, got, want, exact, problems):
    if len(got) != len(want):
        problems.append("%s has %d values, PyTorch %d" % (name, len(got), len(want)))
        return
    for i, (g, w) in enumerate(zip(got, want)):
        if (f32(g) != f32(w)) if exact else not close(g, w):
            problems.append("%s[%d] = %.9g, PyTorch %.9g" % (name, i, g, w))


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    binaries = dict(arg.split("=", 1) for arg in sys.argv[2:])
    print("TAP version 13")
    print("1..%d" % (len(cases) + 2 * len(binaries)))
    n = failed = 0
    for case in cases:
        n += 1
        args = ["--seed", str(case["seed"]), "--epochs", str(case["epochs"]),
                "--lr", repr(case["lr"]), "--json"]
        name = case["program"] + " " + " ".join(args)
        run = subprocess.run([binaries[case["program"]]] + args, capture_output=True, text=True)
        problems = []
        if run.returncode != 0:
            problems.append("exit status %d: %s" % (run.returncode, run.stderr.strip()))
        else:
            got = json.loads(run.stdout)
            compare("loss", got["loss"], case["loss"], False, problems)
            compare("accuracy", got["accuracy"], case["accuracy"], True, problems)
            for key, want in case["parameters"].items():
                compare(key, got["parameters"].get(key, []), want, False, problems)
        failed += bool(problems)
        print(("not ok %d - %s" if problems else "ok %d - %s") % (n, name))
        for p in problems[:10]:
            print("# " + p)
    for program, binary in sorted(binaries.items()):
        for args, status in ((["--help"], 0), (["--epochs", "many"], 2)):
            n += 1
            run = subprocess.run([binary] + args, capture_output=True, text=True)
            ok = run.returncode == status and (run.stdout if status == 0 else run.stderr)
            failed += not ok
            print("%s %d - %s %s exits with %d" % ("ok" if ok else "not ok", n, program,
                                                   " ".join(args), status))
    return 1 if failed else 0


sys.exit(main())
