"""What the lab checks share: comparing a program's --json numbers with PyTorch's."""

RTOL = 1e-5


def close(got, want, rtol=RTOL):
    """got within rtol of want, relative (to 1e-6 at least, for values near zero)."""
    return abs(got - want) <= rtol * max(abs(want), 1e-6)


def compare(name, got, want, problems, rtol=RTOL):
    """Appends to problems each value of got (a number or a list) not close to want's."""
    if isinstance(want, list):
        if len(got) != len(want):
            problems.append("%s has %d values, PyTorch %d" % (name, len(got), len(want)))
            return
        for i, (g, w) in enumerate(zip(got, want)):
            if not close(g, w, rtol):
                problems.append("%s[%d] = %.9g, PyTorch %.9g" % (name, i, g, w))
    elif not close(got, want, rtol):
        problems.append("%s = %.9g, PyTorch %.9g" % (name, got, want))
