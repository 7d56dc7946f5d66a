"""What the checks of the example and lab programs share (tests/check_*.py, tests/tour.py):
running a program, TAP output, comparing its --json numbers with PyTorch's, and the checks
of --help and of refused command lines."""
import json
import math
import struct
import subprocess

RTOL = 1e-5


def f32(v):
    """v rounded to float32: the programs print %.9g of a float, Python the exact value."""
    return struct.unpack("f", struct.pack("f", v))[0] if math.isfinite(v) else v


def relative(got, want, floor=1e-30):
    """|got - want| relative to want (to floor at least, for values near zero)."""
    return abs(got - want) / max(abs(want), floor, 1e-30)


def close(got, want, rtol=RTOL, floor=1e-6, atol=0.0):
    """|got - want| <= rtol * max(|want|, floor) + atol; never for a NaN."""
    return abs(got - want) <= rtol * max(abs(want), floor) + atol


def compare(name, got, want, problems, rtol=RTOL, floor=1e-6, atol=0.0, exact=False,
            float32=False):
    """Appends to problems each value of got (a number or a list) that is not close to
    want's (exact: the same float32; float32: both rounded to float32 first, as the program
    computed them). Returns the largest relative difference."""
    scalar = not isinstance(want, list)
    if scalar:
        got, want = [got], [want]
    if len(got) != len(want):
        problems.append("%s has %d values, PyTorch %d" % (name, len(got), len(want)))
        return math.inf
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        if float32:
            g, w = f32(g), f32(w)
        ok = f32(g) == f32(w) if exact else close(g, w, rtol, floor, atol)
        if not ok:
            problems.append("%s = %.9g, PyTorch %.9g" % (name if scalar else "%s[%d]" % (name, i),
                                                         g, w))
        worst = max(worst, relative(g, w, floor))
    return worst


def run(binary, args):
    return subprocess.run([binary] + args, capture_output=True, text=True)


def run_json(binary, args, problems):
    """Runs binary with args and returns what it printed, read as JSON; None after adding
    to problems if it failed or printed something else."""
    result = run(binary, args)
    if result.returncode != 0:
        problems.append("exit status %d: %s" % (result.returncode, result.stderr.strip()))
        return None
    try:
        return json.loads(result.stdout)
    except ValueError as e:
        problems.append("not JSON (%s): %s" % (e, result.stdout[:200]))
        return None


def compare_keys(got, expected, problems, **tolerance):
    """compare() for every key of expected (PyTorch's), each one got must have."""
    for key, want in expected.items():
        if key not in got:
            problems.append("no key %s in the output" % key)
        else:
            compare(key, got[key], want, problems, **tolerance)


class Tap:
    """TAP results, printed with their plan by finish()."""

    def __init__(self):
        self.n = self.failed = 0
        self.lines = []

    def result(self, name, problems=(), skip=None):
        """ok when there are no problems (the first ten follow as comments); a skipped
        test does not fail."""
        self.n += 1
        problems = list(problems)
        self.failed += bool(problems) and not skip
        self.lines.append("%s %d - %s%s" % ("not ok" if problems else "ok", self.n, name,
                                            " # SKIP " + skip if skip else ""))
        self.lines.extend("  # " + p for p in problems[:10])

    def comment(self, text):
        self.lines.append("# " + text)

    def finish(self):
        """Prints the results; returns the exit status."""
        print("TAP version 13")
        print("1..%d" % self.n)
        print("\n".join(self.lines))
        return 1 if self.failed else 0


def check_help(tap, binary, words):
    """--help exits 0, prints each of words on stdout and nothing on stderr."""
    result = run(binary, ["--help"])
    problems = ["exit status %d" % result.returncode] if result.returncode != 0 else []
    problems += ["%r not in --help" % w for w in words if w not in result.stdout]
    if result.stderr:
        problems.append("stderr: %s" % result.stderr.strip())
    tap.result("%s --help exits 0 and lists %s" % (binary.split("/")[-1], ", ".join(words)),
               problems)


def check_refusals(tap, binary, cases):
    """Each (args, words) of cases: exit status 2, words on stderr, nothing on stdout."""
    for args, words in cases:
        result = run(binary, args)
        problems = []
        if result.returncode != 2:
            problems.append("exit status %d, not 2" % result.returncode)
        if words not in result.stderr:
            problems.append("%r not in stderr: %r" % (words, result.stderr.strip()))
        if result.stdout:
            problems.append("printed %r before failing" % result.stdout[:80])
        tap.result("%s %s exits 2 saying %r" % (binary.split("/")[-1], " ".join(args), words),
                   problems)
