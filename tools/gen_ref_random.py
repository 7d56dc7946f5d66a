#!/usr/bin/python3
"""Writes tests/ref/random_ref.h: PyTorch's random streams for given seeds and calls.

Run with Debian's python3 (it imports python3-torch) from anywhere:

    /usr/bin/python3 tools/gen_ref_random.py

The header is committed so that the C tests never need PyTorch. Each case is a
sequence of calls (manual_seed, randn, rand, normal_, uniform_, randperm) replayed by
tests/test_random.c, which compares every value the calls return. Values are written
as C float literals that read back to the same float32 bits.

Seeds are given as PyTorch takes them; only their low 32 bits reach the generator,
which the cases for seeds 5 and 2**32 + 5 show (their values are the same).
"""
import math
import os

import torch

from cref import c_float, emit_values

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref",
                   "random_ref.h")

MAX_STEPS = 8

# A step is one of
#   ("seed", s)                 torch.manual_seed(s)
#   ("randn", shape)            torch.randn(shape)
#   ("rand", shape)             torch.rand(shape)
#   ("normal", n, mean, std)    torch.empty(n).normal_(mean, std)
#   ("uniform", n, from, to)    torch.empty(n).uniform_(from, to)
#   ("randperm", n)             torch.randperm(n), compared as floats
# A case is (name, steps); a case without a "seed" step first starts from the default
# seed (see DEFAULT_CASE).

SEEDS = [0, 1, 5, 42, 2**32 + 5, 2**64 - 1]


def seed_name(s):
    return {2**32 + 5: "2p32_5", 2**64 - 1: "2p64_m1"}.get(s, str(s))


CASES = [
    # The lab: X = arange(-3, 3, 0.1).view(-1, 1); Y = ... + 0.1 * randn(X.size()).
    ("lab_randn_60x1", [("seed", 1), ("randn", (60, 1))]),
    ("randn_60", [("seed", 1), ("randn", (60,))]),
    ("randn_5", [("seed", 1), ("randn", (5,))]),
    # The second call takes the sine half cached by the first, drawing nothing.
    ("randn_1_twice", [("seed", 1), ("randn", (1,)), ("randn", (1,))]),
    ("rand_3", [("seed", 1), ("rand", (3,))]),
    ("randn_3x7", [("seed", 1), ("randn", (3, 7))]),
    # Crosses the twist after 624 draws.
    ("rand_700", [("seed", 1), ("rand", (700,))]),
    ("randn_1000", [("seed", 1), ("randn", (1000,))]),
    ("normal_20", [("seed", 1), ("normal", 20, 2.0, 3.0)]),
    ("normal_7", [("seed", 1), ("normal", 7, 2.0, 3.0)]),
    ("normal_std_0", [("seed", 1), ("normal", 17, -1.5, 0.0), ("normal", 3, 0.25, 0.0)]),
    ("uniform_10", [("seed", 1), ("uniform", 10, -1.15, 1.15)]),
    ("uniform_from_eq_to", [("seed", 1), ("uniform", 4, 0.5, 0.5), ("rand", (2,))]),
    # nn.Linear(3, 2)'s bounds: weight then bias, each +-1/sqrt(3).
    ("uniform_linear_3_2", [("seed", 1), ("uniform", 6, -1 / math.sqrt(3), 1 / math.sqrt(3)),
                            ("uniform", 2, -1 / math.sqrt(3), 1 / math.sqrt(3))]),
    ("randperm_10", [("seed", 1), ("randperm", 10)]),
    ("randperm_1", [("seed", 1), ("randperm", 1), ("rand", (2,))]),
    ("randperm_100", [("seed", 1), ("randperm", 100)]),
    # One stream through every kind of call.
    ("stream_continuity", [("seed", 1), ("randn", (5,)), ("rand", (3,)), ("randn", (17,)),
                           ("randn", (1,)), ("randperm", 10), ("rand", (40,))]),
    # The cached sample survives the 16-element path and normal_, and is a standard
    # sample: normal_(mean, std) applies its own mean and std to it.
    ("cache_across_calls", [("seed", 1), ("randn", (1,)), ("randn", (16,)), ("randn", (1,)),
                            ("normal", 7, 2.0, 3.0), ("randn", (1,)),
                            ("normal", 1, -5.0, 0.5)]),
    ("cache_cleared_by_seed", [("seed", 1), ("randn", (1,)), ("seed", 1), ("randn", (1,)),
                               ("randn", (1,))]),
    # Empty tensors draw nothing.
    ("empty_draws_nothing", [("seed", 1), ("randn", (0,)), ("rand", (0, 3)), ("randperm", 0),
                             ("normal", 0, 0.0, 1.0), ("rand", (3,))]),
]
for s in SEEDS:
    CASES.append(("seed_%s_rand_randn" % seed_name(s), [("seed", s), ("rand", (5,)),
                                                        ("randn", (5,)), ("randperm", 8)]))
    CASES.append(("seed_%s_mix" % seed_name(s), [("seed", s), ("randn", (3,)),
                                                 ("randn", (20,)), ("rand", (2,))]))
    for n in (16, 17, 31, 33, 100):
        CASES.append(("seed_%s_randn_%d" % (seed_name(s), n), [("seed", s), ("randn", (n,))]))

# Before any manual_seed. PyTorch seeds its global generator from /dev/urandom at
# startup (so a fresh Python process has no fixed stream); 67280421310721 is the seed of
# a new torch.Generator(), which agrad takes as its global default for reproducibility.
# This case is generated from that seed, without a "seed" step, so the C test checks
# that agrad starts there by itself.
DEFAULT_SEED = 67280421310721
DEFAULT_CASE = ("default_seed", [("rand", (5,)), ("randn", (3,)), ("randn", (20,))])


def run(step):
    kind = step[0]
    if kind == "seed":
        torch.manual_seed(step[1])
        return None
    if kind == "randn":
        return torch.randn(step[1])
    if kind == "rand":
        return torch.rand(step[1])
    if kind == "normal":
        return torch.empty(step[1]).normal_(step[2], step[3])
    if kind == "uniform":
        return torch.empty(step[1]).uniform_(step[2], step[3])
    if kind == "randperm":
        return torch.randperm(step[1]).float()
    raise ValueError(kind)




def c_double(v):
    return repr(float(v))  # repr round-trips a double




def step_init(step, values):
    kind = step[0]
    if kind == "seed":
        return "{RR_SEED, 0, {0}, 0, 0, UINT64_C(%d), NULL}" % (step[1] % 2**64)
    if kind in ("randn", "rand"):
        shape = list(step[1]) + [0] * (2 - len(step[1]))
        return "{RR_%s, %d, {%s}, 0, 0, 0, %s}" % (kind.upper(), len(step[1]),
                                                   ", ".join(map(str, shape)), values)
    if kind in ("normal", "uniform"):
        return "{RR_%s, 1, {%d}, %s, %s, 0, %s}" % (kind.upper(), step[1], c_double(step[2]),
                                                    c_double(step[3]), values)
    return "{RR_RANDPERM, 1, {%d}, 0, 0, 0, %s}" % (step[1], values)


def main():
    assert torch.Generator().initial_seed() == DEFAULT_SEED
    torch.manual_seed(DEFAULT_SEED)
    results = []
    for name, steps in [DEFAULT_CASE] + CASES:
        assert len(steps) <= MAX_STEPS
        results.append((name, steps, [run(s) for s in steps]))

    out = [
        "/* Generated by `/usr/bin/python3 tools/gen_ref_random.py` with PyTorch %s:"
        % torch.__version__,
        " * do not edit. Sequences of random calls and the values PyTorch returned. */",
        "#ifndef RANDOM_REF_H",
        "#define RANDOM_REF_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "typedef enum random_ref_op {",
        "    RR_SEED,     /* torch.manual_seed(seed) */",
        "    RR_RANDN,    /* torch.randn(shape) */",
        "    RR_RAND,     /* torch.rand(shape) */",
        "    RR_NORMAL,   /* torch.empty(shape).normal_(a, b) */",
        "    RR_UNIFORM,  /* torch.empty(shape).uniform_(a, b) */",
        "    RR_RANDPERM, /* torch.randperm(shape[0]).float() */",
        "} random_ref_op;",
        "",
        "typedef struct random_ref_step {",
        "    random_ref_op op;",
        "    int ndim;",
        "    int64_t shape[2];",
        "    double a, b;         /* mean and std, or from and to */",
        "    uint64_t seed;       /* RR_SEED */",
        "    const float *values; /* the result, row-major; NULL for RR_SEED */",
        "} random_ref_step;",
        "",
        "typedef struct random_ref {",
        "    const char *name;",
        "    int nsteps;",
        "    random_ref_step steps[%d];" % MAX_STEPS,
        "} random_ref;",
        "",
    ]
    for c, (name, steps, values) in enumerate(results):
        for i, v in enumerate(values):
            if v is not None:
                emit_values(out, "random_ref_%d_%d" % (c, i), v)
    out.append("")
    out.append("static const random_ref random_refs[] = {")
    for c, (name, steps, values) in enumerate(results):
        out.append('    {"%s", %d, {' % (name, len(steps)))
        for i, (s, v) in enumerate(zip(steps, values)):
            arr = "random_ref_%d_%d" % (c, i) if v is not None else "NULL"
            out.append("        %s," % step_init(s, arr))
        out.append("    }},")
    out.append("};")
    out.append("")
    out.append("#endif /* RANDOM_REF_H */")
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
