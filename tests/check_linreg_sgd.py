"""Runs examples/linreg_sgd with each case of tests/ref/linreg_sgd_ref.json and compares
its --json output with PyTorch's numbers: the four loss lists and the loader run's w and b
to 1e-5 relative, X as float32 values exactly, Y to 1e-6 (agrad's randn agrees with
PyTorch's vectorised one to about 1e-6, not bit for bit: autograd/random.c). Then the
notebook's printed lines, a diverging run's --json (NaN where PyTorch's json has it),
--help (status 0) and bad options (status 2, with a message). Prints TAP, and the largest
relative difference of each list as a comment.

    python3 tests/check_linreg_sgd.py <linreg_sgd binary> <linreg_sgd_ref.json>
"""
import json
import math
import sys

from refcheck import Tap, check_help, check_refusals, compare, run, run_json

LISTS = ("LOSS_BGD", "LOSS_SGD", "LOSS_Loader", "LOSS")
# Each key's tolerance (compare's arguments); the others' are relative 1e-5.
TOLERANCE = {"X": {"exact": True}, "Y": {"rtol": 1e-6, "floor": 0.0, "atol": 1e-7}}

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
    (["--unknown"], "unknown option '--unknown'"),
    (["--epochs", "many"], "--epochs needs a whole number from 0 to 10^7, not 'many'"),
    (["--epochs", "1.5"], "--epochs needs a whole number from 0 to 10^7, not '1.5'"),
    (["--epochs", "-1"], "--epochs needs a whole number from 0 to 10^7, not '-1'"),
    (["--seed", "-3"], "--seed needs a whole number from 0 to 2^64 - 1, not '-3'"),
    (["--lr", "0"], "--lr needs a finite number > 0, not '0'"),
    (["--lr", "nan"], "--lr needs a finite number > 0, not 'nan'"),
    (["--w", "inf"], "--w needs a finite number, not 'inf'"),
    (["--batch-size", "0"], "--batch-size needs a whole number from 1 to 10^9, not '0'"),
    (["--batch-size", "2.5"], "--batch-size needs a whole number from 1 to 10^9, not '2.5'"),
    (["--practice-b"], "--practice-b needs a finite number"),
    (["--plots"], "--plots needs a directory"),
]


def main():
    binary, ref_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        cases = json.load(f)["cases"]
    tap = Tap()
    worst = {key: 0.0 for key in LISTS + ("w", "b", "Y")}
    for case in cases:
        args = case["args"] + ["--json"]
        problems = []
        got = run_json(binary, args, problems)
        for key, want in case["expected"].items() if got is not None else ():
            if key not in got:
                problems.append("no key %s in the output" % key)
                continue
            r = compare(key, got[key], want, problems, **TOLERANCE.get(key, {"floor": 1e-30}))
            if key in worst:
                worst[key] = max(worst[key], r)
        tap.result("linreg_sgd " + " ".join(args), problems)

    result = run(binary, [])
    tap.result("linreg_sgd prints the notebook's lines for the dataset",
               [] if result.returncode == 0 and result.stdout.startswith(NOTEBOOK)
               else ["exit status %d, got:" % result.returncode] + result.stdout.splitlines()[:8])
    problems = []
    got = run_json(binary, ["--lr", "50", "--epochs", "3", "--json"], problems)
    if got is not None and not any(math.isnan(v) or math.isinf(v) for v in got["LOSS_SGD"]):
        problems.append("LOSS_SGD %s: no NaN or Infinity at lr 50" % got["LOSS_SGD"])
    tap.result("linreg_sgd --lr 50 --epochs 3 --json prints JSON where the run diverges",
               problems)
    check_help(tap, binary, ["usage:", "--batch-size"])
    check_refusals(tap, binary, BAD)
    for key, v in worst.items():
        tap.comment("largest relative difference from PyTorch in %s: %.3g" % (key, v))
    return tap.finish()


sys.exit(main())
