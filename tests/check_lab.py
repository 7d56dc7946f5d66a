"""Runs examples/linreg_two_params with each case of tests/ref/lab_ref.json and
compares its --json output with PyTorch's numbers (relative 1e-5), every key of the
reference (LOSS, LOSS2, w, b, X, Y); then checks that --help exits 0 and that each bad
option or value exits 2 with a message. Prints TAP.

    python3 tests/check_lab.py <linreg_two_params binary> <lab_ref.json>
"""
import json
import subprocess
import sys

from refcheck import compare  # tests/refcheck.py



# Bad command lines, each with words its message must hold.
BAD = [
    (["--bogus"], "unknown option"),
    (["--lr"], "--lr needs a finite number > 0"),
    (["--lr", "x"], "--lr needs a finite number > 0, not 'x'"),
    (["--lr", "0"], "--lr needs a finite number > 0, not '0'"),
    (["--practice-lr", "-1"], "--practice-lr needs a finite number > 0, not '-1'"),
    (["--practice-w", "inf"], "--practice-w needs a finite number, not 'inf'"),
    (["--epochs", "1.5"], "--epochs needs a whole number from 0 to 10^7, not '1.5'"),
    (["--epochs", "-1"], "--epochs needs a whole number from 0 to 10^7, not '-1'"),
    (["--seed", "-3"], "--seed needs a whole number from 0 to 2^64 - 1, not '-3'"),
    (["--plots"], "--plots needs a directory"),
]


def check_options(binary, n):
    """TAP lines from n on: --help, then each bad command line. Returns the failures."""
    failed = 0
    run = subprocess.run([binary, "--help"], capture_output=True, text=True)
    ok = run.returncode == 0 and "--practice-lr" in run.stdout
    print("%s %d - --help exits 0 and lists the options" % ("ok" if ok else "not ok", n))
    failed += not ok
    for args, words in BAD:
        n += 1
        run = subprocess.run([binary] + args, capture_output=True, text=True)
        ok = run.returncode == 2 and words in run.stderr and not run.stdout
        print("%s %d - %s exits 2 saying '%s'" % ("ok" if ok else "not ok", n, " ".join(args),
                                                   words))
        if not ok:
            print("  # exit status %d, stderr: %s" % (run.returncode, run.stderr.strip()))
        failed += not ok
    return failed


def main():
    binary, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        cases = json.load(f)["cases"]
    print("TAP version 13")
    print("1..%d" % (len(cases) + 1 + len(BAD)))
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
    failed += check_options(binary, len(cases) + 1)
    return 1 if failed else 0


sys.exit(main())
