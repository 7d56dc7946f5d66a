"""C literals for the reference headers the gen_ref_*.py scripts write."""
import math
import struct


def c_float(v):
    """A C literal for the float32 v, exact (%.9g round-trips any float32)."""
    if math.isnan(v):
        # -nan keeps its sign bit, which C's printf shows and Python's format does not.
        return "-NAN" if struct.pack(">f", v)[0] & 0x80 else "NAN"
    if math.isinf(v):
        return "-INFINITY" if v < 0 else "INFINITY"
    if v == 0:
        return "-0.0f" if math.copysign(1.0, v) < 0 else "0.0f"
    s = "%.9g" % v
    assert struct.unpack("f", struct.pack("f", float(s)))[0] == v
    if not any(c in s for c in ".en"):
        s += ".0"
    return s + "f"


def c_floats(t):
    """A C compound literal holding t's values, or NULL for an empty t."""
    vals = t.detach().reshape(-1).tolist()
    if not vals:
        return "NULL"
    return "(const float[]){" + ", ".join(c_float(float(v)) for v in vals) + "}"


def emit_values(out, name, t):
    """Appends to out the lines of `static const float name[] = {...};` holding t."""
    vals = t.detach().reshape(-1).tolist()
    out.append("static const float %s[] = {" % name)
    line = "   "
    for v in vals or [0.0]:  # C has no empty arrays: one unused value
        item = " " + c_float(v) + ","
        if len(line) + len(item) > 96:
            out.append(line)
            line = "   "
        line += item
    out.append(line)
    out.append("};")
