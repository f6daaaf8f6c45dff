"""Loads a state dict exported by ema4j (dev.ema4j.bench.StateDictInterop) into the equivalent PyTorch module.

usage: python3 bench/interop/check_state_dict.py DIR smallcnn|resnet

Builds SmallCnn(8) or ResNet-8 (width 4) in PyTorch with the module names ema4j gives its layers, loads
DIR/<model>.safetensors with strict=True (no missing or unexpected key, every shape equal), runs the model in eval mode
on the inputs of DIR/<model>-expected.safetensors and compares its class probabilities with ema4j's; then the same
with the BF16 export. Reads the files with safetensors.torch.load_file when the safetensors package is installed, else
with the small reader below (the format: 8-byte little-endian header size, a JSON header, raw little-endian data).
Exits 1 on any mismatch.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_models import ResNet, SmallCnn  # noqa: E402


def load_file(path):
    try:
        from safetensors.torch import load_file as st_load
    except ImportError:
        pass
    else:
        return st_load(path)
    dtypes = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        buf = bytearray(data[begin:end])
        out[name] = torch.frombuffer(buf, dtype=dtypes[t["dtype"]]).reshape(t["shape"]) if end > begin \
            else torch.empty(t["shape"], dtype=dtypes[t["dtype"]])
    return out




def check(model, state_path, expected, tolerance):
    state = load_file(state_path)
    result = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(expected["x"]), dim=1)
    diff = (probs - expected["probs"]).abs().max().item()
    ok = diff <= tolerance
    print(f"{'PASS' if ok else 'FAIL'}: {state_path}: {len(state)} tensors loaded with strict=True; "
          f"max |p_torch - p_ema4j| = {diff:.3g} over {probs.numel()} probabilities (tolerance {tolerance:g})")
    return ok


def main():
    directory, name = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = SmallCnn(8, 10) if name == "smallcnn" else ResNet(8, 4, 10)
    expected = load_file(f"{directory}/{name}-expected.safetensors")
    ok = check(model, f"{directory}/{name}.safetensors", expected, 1e-5)
    ok = check(model, f"{directory}/{name}-bf16.safetensors", expected, 0.01) and ok
    print(f"torch {torch.__version__}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
