"""Runs the nn examples (logistic_regression, softmax_regression, xor_mlp) with each case
of tests/ref/nn_examples_ref.json and compares their --json output with what the same
programs gave in PyTorch (tools/nn_examples.py): losses and parameters to 1e-5 relative,
accuracies exactly. Also checks --help (status 0) and bad options (status 2, with a
message). Prints TAP.

    python3 tests/check_examples.py <ref.json> logistic=<bin> softmax=<bin> xor=<bin>
"""
import json
import sys

from refcheck import Tap, check_help, check_refusals, compare, run_json  # tests/refcheck.py

# losses and parameters: relative 1e-5, and 1e-6 absolute near zero
TOLERANCE = {"floor": 0.0, "atol": 1e-6}

BAD = [
    (["--bogus"], "unknown option '--bogus'"),
    (["--epochs", "many"], "--epochs needs a whole number from 1 to 10^7, not 'many'"),
    (["--epochs", "0"], "--epochs needs a whole number from 1 to 10^7, not '0'"),
    (["--seed", "-1"], "--seed needs a whole number from 0 to 2^64 - 1, not '-1'"),
    (["--lr", "0"], "--lr needs a finite number > 0, not '0'"),
    (["--lr", "inf"], "--lr needs a finite number > 0, not 'inf'"),
]


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    binaries = dict(arg.split("=", 1) for arg in sys.argv[2:])
    tap = Tap()
    for case in cases:
        args = ["--seed", str(case["seed"]), "--epochs", str(case["epochs"]),
                "--lr", repr(case["lr"]), "--json"]
        problems = []
        got = run_json(binaries[case["program"]], args, problems)
        if got is not None:
            compare("loss", got["loss"], case["loss"], problems, **TOLERANCE)
            compare("accuracy", got["accuracy"], case["accuracy"], problems, exact=True)
            for key, want in case["parameters"].items():
                compare(key, got["parameters"].get(key, []), want, problems, **TOLERANCE)
        tap.result(case["program"] + " " + " ".join(args), problems)
    for program, binary in sorted(binaries.items()):
        check_help(tap, binary, ["usage:", "--epochs"])
        check_refusals(tap, binary, BAD)
    return tap.finish()


sys.exit(main())
