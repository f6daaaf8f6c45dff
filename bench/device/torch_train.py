"""PyTorch eager baselines for the GPU training benchmarks (GpuOpsBenchmark, GpuTrainBenchmark), same shapes:

  copy      dst.copy_(src), 2.5e7 fp32                                        (8 bytes per parameter)
  sgd       torch.optim.SGD(momentum 0.9, nesterov, weight decay 5e-4), 2.5e7 (20 bytes nominal), foreach and fused
  sgdEma1   the SGD step, then torch._foreach_lerp_ into one EMA            (28 bytes nominal)
  sgdEma3   the SGD step, then three EMAs                                     (44 bytes nominal)
  convForward / convBackward   3x3 conv, input (128, 32, 28, 28) -> 32 channels, padding 1, fp32 (TF32 off: ema4j
            computes in fp32; cuDNN picks its algorithm by its heuristics, cudnn.benchmark off as by default)
  trainStep SmallCnn(16) and ResNet-20 (width 16) at batch 128 on 1x28x28 inputs: forward, cross-entropy,
            loss.item(), backward, SGD step, EMA update (_foreach_lerp_), as in ema4j's models
Timing: CUDA events, mean of 10 back-to-back operations after warm-up, best of 5 (train steps: 50 steps, best of 3,
after 10); --quick: 5 operations after 2, best of 3 (train steps: 10, best of 2, after 3). Writes JSON (one line) to
--out.

usage: python3 torch_train.py --out torch-train.json [--quick] [--models smallCnn16,resnet20] [--n 25000000]
       [--batch 128] [--conv-batch 128] [--device cuda]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

from torch_timing import timed

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_models import ResNet, SmallCnn  # noqa: E402

N = 25_000_000
BYTES = {"copy": 8, "sgd": 20, "sgdEma1": 28, "sgdEma3": 44}


def optimizer_rows(n, device, timing):
    rows = []
    p = torch.randn(n, device=device, requires_grad=True)
    p.grad = torch.randn(n, device=device)
    copy = torch.empty_like(p)
    rows.append({"op": "copy", "ms": timed(lambda: copy.copy_(p.detach()), **timing)})
    emas = [p.detach().clone() for _ in range(3)]
    for impl in ["foreach", "fused"]:
        try:
            opt = torch.optim.SGD([p], lr=1e-6, momentum=0.9, nesterov=True, weight_decay=5e-4,
                                  **{impl: True})
        except (TypeError, RuntimeError) as e:
            print(f"SGD {impl}: {e}")
            continue
        suffix = "" if impl == "foreach" else " (fused=True)"
        rows.append({"op": "sgd" + suffix, "ms": timed(opt.step, **timing)})

        def sgd_ema(k):
            def step():
                opt.step()
                for e in emas[:k]:
                    torch._foreach_lerp_([e], [p.detach()], 1 - 0.999)
            return step

        rows.append({"op": "sgdEma1" + suffix, "ms": timed(sgd_ema(1), **timing)})
        rows.append({"op": "sgdEma3" + suffix, "ms": timed(sgd_ema(3), **timing)})
    for r in rows:
        r["gbps"] = BYTES[r["op"].split(" ")[0]] * n / (r["ms"] * 1e6)
    return rows


def conv_rows(batch, device, timing):
    x = torch.randn(batch, 32, 28, 28, device=device, requires_grad=True)
    w = torch.randn(32, 32, 3, 3, device=device, requires_grad=True)
    flops = 2.0 * x.numel() * 32 * 9
    rows = [{"op": "convForward", "ms": timed(lambda: F.conv2d(x, w, padding=1), **timing)}]
    y = F.conv2d(x, w, padding=1)
    dy = torch.randn_like(y)

    def backward():
        torch.autograd.grad(y, (x, w), dy, retain_graph=True)

    rows.append({"op": "convBackward", "ms": timed(backward, **timing)})
    rows[0]["gflops"] = flops / (rows[0]["ms"] * 1e6)
    rows[1]["gflops"] = 2 * flops / (rows[1]["ms"] * 1e6)
    return rows


def train_rows(models, batch, device, steps, warmup, repeats):
    rows = []
    for name in models:
        model = {"smallCnn16": lambda: SmallCnn(16, 10), "resnet20": lambda: ResNet(20, 16, 10)}[name]()
        model = model.to(device)
        params = list(model.parameters())
        emas = [p.detach().clone() for p in params]
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        xs = [torch.randn(batch, 1, 28, 28, device=device) for _ in range(8)]
        ys = [torch.randint(0, 10, (batch,), device=device) for _ in range(8)]
        state = {"i": 0}

        def step():
            i = state["i"] % 8
            state["i"] += 1
            loss = F.cross_entropy(model(xs[i]), ys[i])
            loss.item()
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            with torch.no_grad():
                torch._foreach_lerp_(emas, [p.detach() for p in params], 1 - 0.999)

        ms = timed(step, reps=steps, warmup=warmup, repeats=repeats, device=device)
        rows.append({"op": "trainStep", "model": name, "ms": ms, "images_per_s": batch / ms * 1000})
        del model, opt, emas
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", default="smallCnn16,resnet20")
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--conv-batch", type=int, default=128)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    if args.quick:
        timing = {"reps": 5, "warmup": 2, "repeats": 3, "device": args.device}
        steps = {"steps": 10, "warmup": 3, "repeats": 2}
    else:
        timing = {"reps": 10, "warmup": 3, "repeats": 5, "device": args.device}
        steps = {"steps": 50, "warmup": 10, "repeats": 3}
    models = [m for m in args.models.split(",") if m]
    rows = (optimizer_rows(args.n, args.device, timing) + conv_rows(args.conv_batch, args.device, timing)
            + train_rows(models, args.batch, args.device, **steps))
    for r in rows:
        print(json.dumps(r), flush=True)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else args.device
    info = {"torch": torch.__version__, "device": device, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(info, f)
        f.write("\n")


if __name__ == "__main__":
    main()
