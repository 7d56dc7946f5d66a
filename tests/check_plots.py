"""Runs a lab program with --plots into a temporary directory and checks the pictures:
each expected NAME.png starts with the PNG signature and holds an IHDR of a sensible size,
each NAME.svg parses as XML with an <svg> root; nothing else is written. Without PLplot
(the second argument "off"), the program must say that plots are off, write nothing and
still succeed. Prints TAP.

    python3 tests/check_plots.py <program> on|off NAME... [-- ARGS...]
"""
import os
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

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
    print("TAP version 13")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "pictures")
        run = subprocess.run([program, "--plots", out] + args, capture_output=True, text=True)
        label = "%s --plots DIR %s" % (os.path.basename(program), " ".join(args))
        if mode == "off" or "plots are off" in run.stderr:
            print("1..1")
            ok = (run.returncode == 0 and "plots are off" in run.stderr and
                  not os.path.exists(out))
            skip = "" if mode == "off" else " # SKIP PLplot's cairo drivers are missing"
            print("%s 1 - %s says plots are off and writes nothing%s" %
                  ("ok" if ok else "not ok", label, skip))
            return 0 if ok or skip else 1
        print("1..%d" % (2 + 2 * len(names)))
        failed = 0
        ok = run.returncode == 0
        print("%s 1 - %s exits 0" % ("ok" if ok else "not ok", label))
        if not ok:
            print("  # exit status %d: %s" % (run.returncode, run.stderr.strip()))
        failed += not ok
        n = 1
        for name in names:
            for ext, problem in (("png", png_problem), ("svg", svg_problem)):
                n += 1
                path = os.path.join(out, name + "." + ext)
                why = problem(path) if os.path.isfile(path) else "missing"
                print("%s %d - %s.%s%s" % ("not ok" if why else "ok", n, name, ext,
                                           " # " + why if why else ""))
                failed += bool(why)
        expected = {name + ext for name in names for ext in (".png", ".svg")}
        extra = sorted(set(os.listdir(out)) - expected) if os.path.isdir(out) else []
        n += 1
        print("%s %d - no other files%s" % ("not ok" if extra else "ok", n,
                                             " # " + ", ".join(extra) if extra else ""))
        failed += bool(extra)
    return 1 if failed else 0


sys.exit(main())
