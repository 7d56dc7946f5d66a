"""Runs examples/linreg_two_params with each case of tests/ref/lab_ref.json and
compares its --json output with PyTorch's numbers (relative 1e-5), every key of the
reference (LOSS, LOSS2, w, b, X, Y); then checks that --help exits 0 and that each bad
option or value exits 2 with a message. Prints TAP.

    python3 tests/check_lab.py <linreg_two_params binary> <lab_ref.json>
"""
import json
import sys

from refcheck import Tap, check_help, check_refusals, compare_keys, run_json  # tests/refcheck.py

# Bad command lines, each with words its message must hold.
BAD = [
    (["--bogus"], "unknown option '--bogus'"),
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


def main():
    binary, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        cases = json.load(f)["cases"]
    tap = Tap()
    for case in cases:
        args = case["args"] + ["--json"]
        problems = []
        got = run_json(binary, args, problems)
        if got is not None:
            compare_keys(got, case["expected"], problems)
        tap.result("linreg_two_params " + " ".join(args), problems)
    check_help(tap, binary, ["usage:", "--practice-lr"])
    check_refusals(tap, binary, BAD)
    return tap.finish()


sys.exit(main())
