"""PyTorch baselines for the GPU EMA benchmark, on the same shapes as GpuEmaBenchmark.

For each shape (flat25M: one tensor of 2.5e7 fp32; resnet50: torchvision ResNet-50's 161 parameter tensors;
flat1G: one tensor of 1e9) it times, with CUDA events, the mean of 10 back-to-back operations after 3 warm-ups,
best of 5 repeats:
  copy     dst.copy_(src) over the parameters (8 bytes per parameter)
  ema      torch._foreach_lerp_(emas, params, 1 - decay)            (12 bytes per parameter)
  fusedK3  three _foreach_lerp_ calls, one per decay: PyTorch has no fused multi-decay update (28 bytes nominal)
  bf16     bf16 parameters into fp32 EMAs: _foreach_lerp_(emas, [p.float() ...]) (10 bytes nominal)
GB/s uses the same nominal bytes as the Java benchmark. Writes JSON to --out.
"""
import argparse
import json

import torch

from torch_timing import timed


def resnet50_sizes():
    sizes = []

    def conv(out, inp, k):
        sizes.extend([out * inp * k * k, out, out])

    conv(64, 3, 7)
    inp = 64
    for stage, blocks in enumerate([3, 4, 6, 3]):
        planes = 64 << stage
        for b in range(blocks):
            conv(planes, inp, 1)
            conv(planes, planes, 3)
            conv(planes * 4, planes, 1)
            if b == 0:
                conv(planes * 4, inp, 1)
            inp = planes * 4
    sizes.extend([1000 * 2048, 1000])
    return sizes


SHAPES = {"flat25M": [25_000_000], "resnet50": resnet50_sizes(), "flat1G": [1_000_000_000]}
BYTES = {"copy": 8, "ema": 12, "fusedK3": 28, "bf16": 10}


def run_shape(name, sizes):
    n = sum(sizes)
    params = [torch.randn(s, device="cuda") for s in sizes]
    emas = [p.clone() for p in params]
    copies = [torch.empty_like(p) for p in params]
    results = {}
    results["copy"] = timed(lambda: torch._foreach_copy_(copies, params))
    results["ema"] = timed(lambda: torch._foreach_lerp_(emas, params, 1 - 0.999))
    emas2 = [p.clone() for p in params]
    emas3 = [p.clone() for p in params]

    def fused():
        torch._foreach_lerp_(emas, params, 1 - 0.99)
        torch._foreach_lerp_(emas2, params, 1 - 0.999)
        torch._foreach_lerp_(emas3, params, 1 - 0.9999)

    results["fusedK3"] = timed(fused)
    del emas2, emas3, copies
    bf16 = [p.to(torch.bfloat16) for p in params]
    del params
    results["bf16"] = timed(lambda: torch._foreach_lerp_(emas, [p.float() for p in bf16], 1 - 0.999))
    out = []
    for op, ms in results.items():
        out.append({"shape": name, "op": op, "ms": ms, "gbps": BYTES[op] * n / (ms * 1e6)})
    del emas, bf16
    torch.cuda.empty_cache()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--shapes", default="flat25M,resnet50,flat1G")
    args = parser.parse_args()
    rows = []
    for name in args.shapes.split(","):
        rows.extend(run_shape(name, SHAPES[name]))
        print(json.dumps(rows[-4:]), flush=True)
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "rows": rows}
    with open(args.out, "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
