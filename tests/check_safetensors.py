"""Checks the safetensors files agrad writes, with the standard library only.

As a test (meson runs it, TAP output):

    python3 tests/check_safetensors.py <write_safetensors binary> <tests/ref directory>

runs write_safetensors for the models of tests/ref/safetensors_ref.json (PyTorch's
torch.nn.Linear(3, 2) and Sequential(Linear(2, 4), Tanh(), Linear(4, 1)) after
torch.manual_seed(0)) and checks each file it writes: the header's length and its padding
with spaces to a multiple of 8 bytes, a JSON object with no name twice, the names sorted,
each entry's dtype, shape and data_offsets (contiguous, from 0 to the end of the file),
every value equal to PyTorch's as float32, and the whole file equal, byte for byte, to
tests/ref/<model>.safetensors, which tools/gen_ref_safetensors.py wrote as
safetensors.torch.save_file does.

By hand, to load a file agrad wrote into PyTorch (needs torch, not the safetensors
package; with safetensors installed, safetensors.torch.load_file(path) does the same):

    /usr/bin/python3 tests/check_safetensors.py --torch FILE.safetensors [linear|mlp]

prints each tensor, read with torch.frombuffer; with a model's name it also loads them
into that model with load_state_dict and prints its output for the reference input.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile


def read_safetensors(data):
    """(header entries in file order, data bytes); raises ValueError naming the problem."""
    if len(data) < 8:
        raise ValueError("file of %d bytes, shorter than the header's length" % len(data))
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("header length %d beyond the end of the file" % n)
    raw = data[8:8 + n]
    if n % 8:
        raise ValueError("header length %d is not a multiple of 8" % n)
    text = raw.decode("utf-8")
    if not text.startswith("{"):
        raise ValueError("header does not begin with '{'")
    stripped = text.rstrip(" ")
    if len(text) - len(stripped) >= 8:
        raise ValueError("header padded with %d spaces, more than 7" % (len(text) - len(stripped)))

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("a name twice in %s" % keys)
        return pairs

    entries = json.loads(stripped, object_pairs_hook=no_duplicates)
    return entries, data[8 + n:]


def check_file(data, expected, reference):
    """Problems found in data (a file agrad wrote) against the expected state_dict."""
    problems = []
    try:
        entries, payload = read_safetensors(data)
    except ValueError as e:
        return [str(e)]
    names = [k for k, _ in entries if k != "__metadata__"]
    if names != sorted(names):
        problems.append("names not sorted: %s" % names)
    if sorted(names) != sorted(expected):
        problems.append("names %s, expected %s" % (names, sorted(expected)))
    at = 0
    for name, info in entries:
        if name == "__metadata__" or name not in expected:
            continue
        want = expected[name]
        if not isinstance(info, list):
            problems.append("%s: entry is not an object" % name)
            continue
        info = dict(info)
        if list(info) != ["dtype", "shape", "data_offsets"]:
            problems.append("%s: fields %s, expected dtype, shape, data_offsets" % (name, list(info)))
        if info.get("dtype") != "F32":
            problems.append("%s: dtype %r, expected F32" % (name, info.get("dtype")))
        if info.get("shape") != want["shape"]:
            problems.append("%s: shape %s, expected %s" % (name, info.get("shape"), want["shape"]))
        begin, end = info.get("data_offsets", [None, None])
        count = len(want["values"])
        if begin != at or end != at + 4 * count:
            problems.append("%s: data_offsets [%s, %s], expected [%d, %d]"
                            % (name, begin, end, at, at + 4 * count))
            continue
        at = end
        got = struct.unpack("<%df" % count, payload[begin:end])
        for i, (g, w) in enumerate(zip(got, want["values"])):
            if struct.pack("<f", g) != struct.pack("<f", w):
                problems.append("%s[%d] = %.9g, PyTorch %.9g" % (name, i, g, w))
    if at != len(payload):
        problems.append("%d data bytes, the tensors cover %d" % (len(payload), at))
    if not problems and data != reference:
        problems.append("the file differs from the reference writer's bytes")
    return problems


def run_tests(binary, ref_dir):
    with open(os.path.join(ref_dir, "safetensors_ref.json")) as f:
        models = json.load(f)["models"]
    print("TAP version 13")
    print("1..%d" % len(models))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, (model, expected) in enumerate(sorted(models.items()), 1):
            out = os.path.join(tmp, model + ".safetensors")
            run = subprocess.run([binary, model, out], capture_output=True, text=True)
            if run.returncode != 0:
                problems = ["write_safetensors exited with %d: %s"
                            % (run.returncode, run.stderr.strip())]
            else:
                with open(out, "rb") as f:
                    data = f.read()
                with open(os.path.join(ref_dir, model + ".safetensors"), "rb") as f:
                    reference = f.read()
                problems = check_file(data, expected, reference)
                if os.path.exists(out + ".tmp"):
                    problems.append("the temporary file %s.tmp was left behind" % out)
            name = "ag_safetensors_save of %s matches safetensors.torch.save_file" % model
            if problems:
                failed += 1
                print("not ok %d - %s" % (k, name))
                for p in problems[:10]:
                    print("  # " + p)
            else:
                print("ok %d - %s" % (k, name))
    return 1 if failed else 0


def load_into_torch(path, model_name):
    import torch

    with open(path, "rb") as f:
        data = f.read()
    entries, payload = read_safetensors(data)
    state = {}
    for name, info in entries:
        if name == "__metadata__":
            continue
        info = dict(info)
        assert info["dtype"] == "F32", "%s: dtype %s" % (name, info["dtype"])
        begin, end = info["data_offsets"]
        chunk = bytearray(payload[begin:end])
        t = torch.frombuffer(chunk, dtype=torch.float32) if chunk else torch.zeros(0)
        state[name] = t.reshape(info["shape"]).clone()
        print("%s: %s" % (name, state[name]))
    if model_name:
        torch.manual_seed(0)
        if model_name == "linear":
            model = torch.nn.Linear(3, 2)
            x = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
        else:
            model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(),
                                        torch.nn.Linear(4, 1))
            x = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
        model.load_state_dict(state)
        with torch.no_grad():
            print("%s(x) = %s" % (model_name, model(x)))
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--torch":
        return load_into_torch(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    return run_tests(sys.argv[1], sys.argv[2])


sys.exit(main())
