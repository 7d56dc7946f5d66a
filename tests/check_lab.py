"""Runs examples/linreg_two_params with each case of tests/ref/lab_ref.json and
compares its --json output with PyTorch's numbers (relative 1e-5). Prints TAP.

    python3 tests/check_lab.py <linreg_two_params binary> <lab_ref.json>
"""
import json
import subprocess
import sys

RTOL = 1e-5


def close(got, want):
    return abs(got - want) <= RTOL * max(abs(want), 1e-6)


def compare(name, got, want, problems):
    if isinstance(want, list):
        if len(got) != len(want):
            problems.append("%s has %d values, PyTorch %d" % (name, len(got), len(want)))
            return
        for i, (g, w) in enumerate(zip(got, want)):
            if not close(g, w):
                problems.append("%s[%d] = %.9g, PyTorch %.9g" % (name, i, g, w))
    elif not close(got, want):
        problems.append("%s = %.9g, PyTorch %.9g" % (name, got, want))


def main():
    binary, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        cases = json.load(f)["cases"]
    print("TAP version 13")
    print("1..%d" % len(cases))
    failed = 0
    for n, case in enumerate(cases, 1):
        args = case["args"] + ["--json"]
        name = "linreg_two_params " + " ".join(args)
        run = subprocess.run([binary] + args, capture_output=True, text=True)
        problems = []
        if run.returncode != 0:
            problems.append("exit status %d: %s" % (run.returncode, run.stderr.strip()))
        else:
            got = json.loads(run.stdout)
            for key, want in case["expected"].items():
                if key not in got:
                    problems.append("no key %s in the output" % key)
                else:
                    compare(key, got[key], want, problems)
        if problems:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for p in problems[:10]:
                print("  # " + p)
        else:
            print("ok %d - %s" % (n, name))
    return 1 if failed else 0


sys.exit(main())
