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
import struct
import sys

import torch
from torch import nn


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




class SmallCnn(nn.Module):
    """ema4j's Models.smallCnn(w, classes): conv3x3 (no bias) + BN + ReLU blocks, max pools, GAP, linear."""

    def __init__(self, w, classes):
        super().__init__()
        chans = [(1, w), (w, w), (w, 2 * w), (2 * w, 2 * w)]
        for i, (cin, cout) in enumerate(chans, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout))
        self.fc = nn.Linear(2 * w, classes)

    def forward(self, x):
        r = torch.relu
        x = r(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(r(self.bn2(self.conv2(x))), 2)
        x = r(self.bn3(self.conv3(x)))
        x = nn.functional.max_pool2d(r(self.bn4(self.conv4(x))), 2)
        return self.fc(x.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """ema4j's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut.0 conv1x1, shortcut.1 BN."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """ema4j's Models.resnet(depth, w, classes) for 1-channel inputs."""

    def __init__(self, depth, w, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(1, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        cin = w
        for stage in range(3):
            cout = w << stage
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if b == 0 and stage > 0 else 1))
                cin = cout
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))


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
