"""Runs examples/sgd_normal_equation with each case of tests/ref/sgd_normal_ref.json and
compares its --json output with PyTorch's numbers (relative 1e-5). Prints TAP.

    python3 tests/check_sgd_normal.py <sgd_normal_equation binary> <sgd_normal_ref.json>

The true weights and the normal equation's answer are compared as they are. The lab stops
when two float32 losses are exactly equal; agrad's sums are correctly rounded and
PyTorch's are not, so the programs may stop a few steps apart (the step must be within
5%, or 3 steps, of PyTorch's). Every loss the C program printed is compared with
PyTorch's loss after as many updates, and its answer and test MSE with PyTorch's model
after as many updates as the C program made. Then --help exits 0 and each bad command
line exits 2 with a message.
"""
import json
import subprocess
import sys

from refcheck import compare  # tests/refcheck.py


BAD = [
    (["--bogus"], "unknown option"),
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
    args = case["args"] + ["--json"]
    run = subprocess.run([binary] + args, capture_output=True, text=True)
    if run.returncode != 0:
        return ["exit status %d: %s" % (run.returncode, run.stderr.strip())], ""
    got, want = json.loads(run.stdout), case["expected"]
    problems = []
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
    print("TAP version 13")
    print("1..%d" % (len(cases) + 1 + len(BAD)))
    failed, n = 0, 0
    for case in cases:
        n += 1
        problems, note = check_case(binary, case)
        name = "sgd_normal_equation " + " ".join(case["args"] + ["--json"])
        if note:
            name += " (%s)" % note
        print("%s %d - %s" % ("not ok" if problems else "ok", n, name))
        for p in problems[:10]:
            print("  # " + p)
        failed += bool(problems)
    n += 1
    run = subprocess.run([binary, "--help"], capture_output=True, text=True)
    ok = run.returncode == 0 and "--iterations" in run.stdout
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
    return 1 if failed else 0


sys.exit(main())
