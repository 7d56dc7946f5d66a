"""Writes the safetensors reference files: the state_dicts of two PyTorch models after
torch.manual_seed(0),

    linear = torch.nn.Linear(3, 2)                          keys weight, bias
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
                                                            keys 0.weight, 0.bias, 2.weight, 2.bias

into tests/ref/linear.safetensors and tests/ref/mlp.safetensors, their values and
shapes into tests/ref/safetensors_ref.h (for tests/test_safetensors.c) and
tests/ref/safetensors_ref.json (for tests/check_safetensors.py), and each model's output
for a fixed input, so that a test can check the loaded weights compute what PyTorch
computes.

    /usr/bin/python3 tools/gen_ref_safetensors.py      (from the repository's root)

Needs Debian's python3-torch (PyTorch 1.13), not the safetensors package: the files are
written by write_safetensors below, with json and struct only, byte for byte as
safetensors.torch.save_file writes them (names sorted, compact JSON, the header padded
with spaces to a multiple of 8 bytes, float32 little-endian data in the names' order).
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cref import emit_values  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
REF = os.path.join(ROOT, "tests", "ref")


def safetensors_bytes(state_dict):
    """The bytes of a safetensors file holding the float32 tensors of state_dict."""
    names = sorted(state_dict)  # save_file sorts by dtype (all F32 here), then by name
    header, data, offset = {}, b"", 0
    for name in names:
        t = state_dict[name].detach().contiguous()
        assert t.dtype == torch.float32
        raw = struct.pack("<%df" % t.numel(), *t.reshape(-1).tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def c_ident(name):
    return name.replace(".", "_")


def main():
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 2)
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    x_linear = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
    x_mlp = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
    models = [("linear", linear, x_linear), ("mlp", mlp, x_mlp)]

    h = ["/* Made by tools/gen_ref_safetensors.py with PyTorch %s: the state_dicts written"
         % torch.__version__,
         " * to tests/ref/linear.safetensors and tests/ref/mlp.safetensors, in the models'",
         " * order (names, shapes, values), and each model's output for a fixed input. */",
         "#ifndef SAFETENSORS_REF_H", "#define SAFETENSORS_REF_H", "",
         "typedef struct ref_param {", "    const char *name;", "    int ndim;",
         "    int64_t shape[4];", "    int64_t numel;", "    const float *values;",
         "} ref_param;", ""]
    js = {"torch": torch.__version__, "models": {}}
    for model_name, model, x in models:
        sd = model.state_dict()
        path = os.path.join(REF, model_name + ".safetensors")
        with open(path, "wb") as f:
            f.write(safetensors_bytes(sd))
        entries = []
        for name, t in sd.items():
            ident = "%s_%s" % (model_name, c_ident(name))
            vals = t.reshape(-1).tolist()
            emit_values(h, ident, t)
            entries.append('    {"%s", %d, {%s}, %d, %s},' % (
                name, t.dim(), ", ".join(str(d) for d in t.shape) or "0", t.numel(), ident))
            js["models"].setdefault(model_name, {})[name] = {
                "shape": list(t.shape), "values": vals}
        h.append("static const ref_param %s_params[] = {" % model_name)
        h.extend(entries)
        h.append("};")
        h.append("enum { %s_nparams = %d };" % (model_name, len(entries)))
        with torch.no_grad():
            y = model(x)
        emit_values(h, model_name + "_x", x)
        h.append("static const int64_t %s_x_shape[2] = {%d, %d};" % ((model_name,) + tuple(x.shape)))
        emit_values(h, model_name + "_y", y)
        h.append("")
    h.append("#endif")
    with open(os.path.join(REF, "safetensors_ref.h"), "w") as f:
        f.write("\n".join(h) + "\n")
    with open(os.path.join(REF, "safetensors_ref.json"), "w") as f:
        json.dump(js, f, indent=1)
        f.write("\n")


main()
