"""PyTorch's side of bench/vs_torch.py on the CPU (ema4j's is dev.ema4j.bench.CpuSide): the same work, shapes and
threads; one measurement, printed as one JSON line {"ms": median, ...}.

  train --model smallCnn16|resnet20   a training step at batch --batch (128) on 1x28x28 inputs: forward,
        cross-entropy, loss.item(), backward, SGD (Nesterov, momentum 0.9, weight decay 5e-4, foreach), and three EMAs
        of the parameters (0.99, 0.999, 0.9999) updated with torch._foreach_mul_ and _foreach_add_ (PyTorch 1.13 has no
        _foreach_lerp_); median over --steps steps after --warmup
  ema --layout flat|resnet50 --variant foreach|per-tensor|add
        foreach: e = e*d + p*(1-d) with _foreach_mul_/_foreach_add_; per-tensor: e.mul_(d).add_(p, alpha=1-d);
        add: e += p (_foreach_add_), the same 12 bytes per parameter as an EMA update, the memory's floor;
        over one tensor of --n fp32 values (64 Mi) or ResNet-50's 161 tensors scaled to --n in all; median of --steps
  profile --model smallCnn16|resnet20   where the time of train's step goes: torch.profiler over --steps steps after
        --warmup, printed as a Markdown table of the operators' self CPU time per step (not JSON)

usage: /usr/bin/python3 bench/torch_cpu.py train|ema|profile [options] [--threads T (default 2)]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ResNet, SmallCnn  # noqa: E402

# ResNet-50's parameter tensors in torchvision's order (sizes), as ema4j's bench ResNet50.tensorSizes().
def resnet50_sizes():
    sizes = [64 * 3 * 7 * 7, 64, 64]

    def bottleneck(inp, width, stride_down):
        out = width * 4
        s = [width * inp, width, width, width * width * 9, width, width, out * width, out, out]
        if stride_down:
            s += [out * inp, out, out]
        return s

    inp = 64
    for width, blocks in [(64, 3), (128, 4), (256, 6), (512, 3)]:
        for b in range(blocks):
            sizes += bottleneck(inp, width, b == 0)
            inp = width * 4
    sizes += [1000 * 2048, 1000]
    return sizes


def timed(op, warmup, steps):
    for _ in range(warmup):
        op()
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        op()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def training_step(args):
    """The step that train times: a closure over the model, its optimizer, three EMAs and four synthetic batches."""
    model = SmallCnn(16, 10) if args.model == "smallCnn16" else ResNet(20, 16, 10)
    params = [p for p in model.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True, foreach=True)
    decays = [0.99, 0.999, 0.9999]
    emas = [[p.detach().clone() for p in params] for _ in decays]
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(args.batch, 1, 28, 28, generator=g), torch.randint(0, 10, (args.batch,), generator=g))
               for _ in range(4)]
    step = [0]

    def one():
        x, y = batches[step[0] % len(batches)]
        step[0] += 1
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.item()
        loss.backward()
        opt.step()
        with torch.no_grad():
            live = [p.detach() for p in params]
            for e, d in zip(emas, decays):
                torch._foreach_mul_(e, d)
                torch._foreach_add_(e, live, alpha=1 - d)

    model.train()
    return one


def train(args):
    return timed(training_step(args), args.warmup, args.steps), f"train {args.model} batch {args.batch}, 3 EMAs"


def profile(args):
    step = training_step(args)
    for _ in range(args.warmup):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            step()
    rows = prof.key_averages(group_by_input_shape=True)
    total = sum(r.self_cpu_time_total for r in rows)
    print(f"PyTorch {torch.__version__}, {args.model}, batch {args.batch}, {args.threads} threads: "
          f"{total / 1e3 / args.steps:.1f} ms of operator self time per step ({args.steps} steps)")
    print()
    print("| operator (input shapes) | ms/step | share |")
    print("|---|---:|---:|")
    for r in sorted(rows, key=lambda r: -r.self_cpu_time_total)[:args.top]:
        if r.self_cpu_time_total < 0.001 * total:
            break
        shapes = " ".join("x".join(map(str, s)) for s in r.input_shapes if s) if r.input_shapes else ""
        print(f"| {r.key} {shapes} | {r.self_cpu_time_total / 1e3 / args.steps:.2f} | "
              f"{100 * r.self_cpu_time_total / total:.1f}% |")


def ema(args):
    if args.layout == "flat":
        sizes = [args.n]
    else:
        r50 = resnet50_sizes()
        total = sum(r50)
        sizes = [max(1, s * args.n // total) for s in r50]
    g = torch.Generator().manual_seed(2)
    p = [torch.randn(s, generator=g) for s in sizes]
    e = [t.clone() for t in p]
    d = 0.999
    if args.variant == "foreach":
        def op():
            torch._foreach_mul_(e, d)
            torch._foreach_add_(e, p, alpha=1 - d)
    elif args.variant == "per-tensor":
        def op():
            for a, b in zip(e, p):
                a.mul_(d).add_(b, alpha=1 - d)
    else:
        def op():
            torch._foreach_add_(e, p)
    with torch.no_grad():
        ms = timed(op, args.warmup, args.steps)
    return ms, f"ema {args.layout} {sum(sizes)} fp32, {args.variant}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["train", "ema", "profile"])
    parser.add_argument("--model", default="smallCnn16", choices=["smallCnn16", "resnet20"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--layout", default="flat", choices=["flat", "resnet50"])
    parser.add_argument("--variant", default="foreach", choices=["foreach", "per-tensor", "add"])
    parser.add_argument("--n", type=int, default=1 << 26)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--top", type=int, default=30, help="profile: most rows printed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "profile":
        profile(args)
        return
    ms, what = train(args) if args.what == "train" else ema(args)
    print(json.dumps({"what": what, "threads": args.threads, "torch": torch.__version__,
                      "ms": statistics.median(ms), "all": ms}))


if __name__ == "__main__":
    main()
