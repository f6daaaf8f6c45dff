"""PyTorch baselines for the GPU EMA benchmarks (DeviceQuickBench ema, GpuEmaBenchmark), on the same shapes
(shapes.py: flat25M, one tensor of 2.5e7 fp32; resnet50, torchvision ResNet-50's 161 parameter tensors; flat1G, one
tensor of 1e9).

For each shape it times, with CUDA events, the mean of --reps back-to-back operations after --warmup, best of
--repeats (default 10, 3, 5):
  copy     torch._foreach_copy_(dst, params) over the parameters (8 bytes per parameter)
  ema      torch._foreach_lerp_(emas, params, 1 - decay)            (12 bytes per parameter)
  fusedK3  three _foreach_lerp_ calls, one per decay: PyTorch has no fused multi-decay update (28 bytes nominal)
  bf16     bf16 parameters into fp32 EMAs: _foreach_lerp_(emas, [p.float() ...]) (10 bytes nominal)
GB/s uses the same nominal bytes as the Java benchmarks. Writes JSON (one line) to --out.

usage: python3 torch_ema.py --out torch.json [--shapes flat25M,resnet50,flat1G] [--warmup 3] [--reps 10]
       [--repeats 5] [--device cuda]
"""
import argparse
import json

import torch

from shapes import SHAPES
from torch_timing import timed

BYTES = {"copy": 8, "ema": 12, "fusedK3": 28, "bf16": 10}


def run_shape(name, sizes, device, timing):
    n = sum(sizes)
    params = [torch.randn(s, device=device) for s in sizes]
    emas = [p.clone() for p in params]
    copies = [torch.empty_like(p) for p in params]
    results = {}
    results["copy"] = timed(lambda: torch._foreach_copy_(copies, params), **timing)
    results["ema"] = timed(lambda: torch._foreach_lerp_(emas, params, 1 - 0.999), **timing)
    del copies
    emas2 = [p.clone() for p in params]
    emas3 = [p.clone() for p in params]

    def fused():
        torch._foreach_lerp_(emas, params, 1 - 0.99)
        torch._foreach_lerp_(emas2, params, 1 - 0.999)
        torch._foreach_lerp_(emas3, params, 1 - 0.9999)

    results["fusedK3"] = timed(fused, **timing)
    del emas2, emas3
    bf16 = [p.to(torch.bfloat16) for p in params]
    del params
    results["bf16"] = timed(lambda: torch._foreach_lerp_(emas, [p.float() for p in bf16], 1 - 0.999), **timing)
    out = []
    for op, ms in results.items():
        out.append({"shape": name, "op": op, "ms": ms, "params": n, "gbps": BYTES[op] * n / (ms * 1e6)})
    del emas, bf16
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--shapes", default="flat25M,resnet50,flat1G")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    timing = {"warmup": args.warmup, "reps": args.reps, "repeats": args.repeats, "device": args.device}
    rows = []
    for name in args.shapes.split(","):
        rows.extend(run_shape(name, SHAPES[name], args.device, timing))
        print(json.dumps(rows[-4:]), flush=True)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else args.device
    info = {"torch": torch.__version__, "device": device, "rows": rows,
            "method": f"best of {args.repeats} runs of {args.reps} operations after {args.warmup} warm-ups"}
    with open(args.out, "w") as f:
        json.dump(info, f)
        f.write("\n")


if __name__ == "__main__":
    main()
