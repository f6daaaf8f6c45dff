"""Reads the EMA state file written by dev.ema4j.bench.StateFileInterop with Python's safetensors and checks it."""
import sys

import torch
from safetensors import safe_open

path = sys.argv[1]
with safe_open(path, framework="pt") as f:
    meta = f.metadata()
    assert meta["format"] == "ema4j.ema-state", meta
    assert meta["steps"] == "1" and meta["updates"] == "1", meta
    assert meta["shadows"] == "2" and meta["format_version"] == "2", meta
    assert [meta[f"shadow.{k}.schedule"] for k in range(2)] == ["constant", "constant"], meta
    assert [float(meta[f"shadow.{k}.decay"]) for k in range(2)] == [0.5, 0.9], meta
    assert sorted(f.keys()) == ["ema.0.b", "ema.0.w", "ema.1.b", "ema.1.w"], list(f.keys())
    for k, decay in enumerate([0.5, 0.9]):
        w = f.get_tensor(f"ema.{k}.w")
        b = f.get_tensor(f"ema.{k}.b")
        assert w.dtype == torch.float32 and w.shape == (1000,), (w.dtype, w.shape)
        x = torch.arange(1000, dtype=torch.float32)
        expected = x + (1 - decay) * (2 * x - x)
        assert torch.allclose(w, expected, rtol=1e-6, atol=0), (w[:5], expected[:5])
        assert torch.allclose(b, -torch.arange(7, dtype=torch.float32) * (2 - decay), rtol=1e-6), b
print(f"PASS: Python safetensors read {path}: metadata {sorted(meta)}, 4 fp32 tensors with the expected values")
