"""Runs a lab program with --plots into a temporary directory and checks the pictures:
each expected NAME.png starts with the PNG signature and holds an IHDR of a sensible size,
each NAME.svg parses as XML with an <svg> root; nothing else is written. Without PLplot
(the second argument "off"), the program must say that plots are off, write nothing and
still succeed. With PLplot, --plots naming a file that is not a directory exits 2.
Prints TAP.

    python3 tests/check_plots.py <program> on|off NAME... [-- ARGS...]
"""
import os
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET

from refcheck import Tap, run  # tests/refcheck.py

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if not head.startswith(PNG_SIGNATURE):
        return "no PNG signature"
    if head[12:16] != b"IHDR":
        return "no IHDR chunk first"
    width, height = struct.unpack(">II", head[16:24])
    if not (200 <= width <= 4000 and 200 <= height <= 4000):
        return "a picture of %d x %d" % (width, height)
    return None


def svg_problem(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return "not XML: %s" % e
    if not root.tag.endswith("svg"):
        return "root element <%s>, not <svg>" % root.tag
    if len(list(root.iter())) < 10:
        return "an almost empty drawing"
    return None


def main():
    program, mode = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    args = rest[rest.index("--") + 1:] if "--" in rest else []
    names = rest[:rest.index("--")] if "--" in rest else rest
    tap = Tap()
    label = "%s --plots DIR %s" % (os.path.basename(program), " ".join(args))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "pictures")
        result = run(program, ["--plots", out] + args)
        if mode == "off" or "plots are off" in result.stderr:
            ok = (result.returncode == 0 and "plots are off" in result.stderr and
                  not os.path.exists(out))
            tap.result("%s says plots are off and writes nothing" % label,
                       [] if ok else ["exit status %d: %s" % (result.returncode,
                                                             result.stderr.strip())],
                       skip=None if mode == "off" else "PLplot's cairo drivers are missing")
            return tap.finish()
        tap.result("%s exits 0" % label, [] if result.returncode == 0 else
                   ["exit status %d: %s" % (result.returncode, result.stderr.strip())])
        for name in names:
            for ext, problem in (("png", png_problem), ("svg", svg_problem)):
                path = os.path.join(out, name + "." + ext)
                why = problem(path) if os.path.isfile(path) else "missing"
                tap.result("%s.%s" % (name, ext), [why] if why else [])
        expected = {name + ext for name in names for ext in (".png", ".svg")}
        extra = sorted(set(os.listdir(out)) - expected) if os.path.isdir(out) else []
        tap.result("no other files", [", ".join(extra)] if extra else [])
        # --plots naming a file: the program says so before it runs, exit status 2
        a_file = os.path.join(tmp, "a_file")
        open(a_file, "w").close()
        result = run(program, ["--plots", a_file] + args)
        tap.result("%s --plots FILE exits 2 saying it is not a directory" % label.split()[0],
                   [] if result.returncode == 2 and "is not a directory" in result.stderr and
                   not result.stdout else ["exit status %d: %s" % (result.returncode,
                                                                   result.stderr.strip())])
    return tap.finish()


sys.exit(main())
