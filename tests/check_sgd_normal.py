"""Runs examples/sgd_normal_equation with each case of tests/ref/sgd_normal_ref.json and
compares its --json output with PyTorch's numbers (relative 1e-5). Prints TAP.

    python3 tests/check_sgd_normal.py <sgd_normal_equation binary> <sgd_normal_ref.json>

The true weights and the normal equation's answer are compared as they are. The lab stops
when two float32 losses are exactly equal; agrad's sums are added in double and rounded
once, PyTorch's in float, so the programs may stop a few steps apart (the step must be
within 5%, or 3 steps, of PyTorch's). Every loss the C program printed is compared with
PyTorch's loss after as many updates, and its answer and test MSE with PyTorch's model
after as many updates as the C program made. Then --help exits 0 and each bad command
line exits 2 with a message.
"""
import json
import sys

from refcheck import Tap, check_help, check_refusals, compare, run_json  # tests/refcheck.py

BAD = [
    (["--bogus"], "unknown option '--bogus'"),
    (["--lr"], "--lr needs a finite number > 0"),
    (["--lr", "0"], "--lr needs a finite number > 0, not '0'"),
    (["--lr", "nan"], "--lr needs a finite number > 0, not 'nan'"),
    (["--seed", "1.5"], "--seed needs a whole number from 0 to 2^64 - 1, not '1.5'"),
    (["--iterations", "-1"], "--iterations needs a whole number from 0 to 10^7, not '-1'"),
    (["--n", "3"], "--n needs a whole number from 4 to 10^7 (3 rows to train on, 1 to test), "
     "not '3'"),
    (["--n", "1e8"], "--n needs a whole number from 4 to 10^7 (3 rows to train on, 1 to test), "
     "not '1e8'"),
    (["--plots"], "--plots needs a directory"),
]


def check_case(binary, case):
    problems = []
    got = run_json(binary, case["args"] + ["--json"], problems)
    if got is None:
        return problems, ""
    want = case["expected"]
    for key in ["actual", "normal_equation"]:
        compare(key, got[key], want[key], problems)
    step, ref_step = got["convergence_step"], want["convergence_step"]
    note = "stopped at step %s, PyTorch at %s" % (step, ref_step)
    if (step is None) != (ref_step is None):
        problems.append(note)
    elif step is not None and abs(step - ref_step) > max(3, 0.05 * ref_step):
        problems.append(note + ": more than 5% apart")
    after = want["after"]
    updates = step if step is not None else len(got["LOSS"])
    if updates >= len(after) or len(got["LOSS"]) > len(after):
        problems.append("%d updates, PyTorch's reference holds %d" % (updates, len(after) - 1))
        return problems, note
    compare("LOSS", got["LOSS"], [a[2] for a in after[:len(got["LOSS"])]], problems)
    compare("sgd", got["sgd"], after[updates][:2], problems)
    compare("test_mse", got["test_mse"], after[updates][3], problems)
    return problems, note


def main():
    binary, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        cases = json.load(f)["cases"]
    tap = Tap()
    for case in cases:
        problems, note = check_case(binary, case)
        name = "sgd_normal_equation " + " ".join(case["args"] + ["--json"])
        tap.result(name + (" (%s)" % note if note else ""), problems)
    check_help(tap, binary, ["usage:", "--iterations"])
    check_refusals(tap, binary, BAD)
    return tap.finish()


sys.exit(main())
