"""ema4j against PyTorch on the CPU, side by side in one run: every measurement is a fresh process of ema4j's side
(dev.ema4j.bench.CpuSide) or PyTorch's (bench/torch_cpu.py) with the same work, shapes and threads; the variants of a
case run interleaved, in an order that rotates every round, and each figure is the median over the rounds of each
process's median. Prints a Markdown table (ms, and speed ratios: > 1 means ema4j is faster) and writes it with every
figure to --out (JSON).

  train  SmallCnn(16) and ResNet-20 training steps at batch 128 with three EMAs
  ema    one EMA update (decay 0.999) over 64 Mi fp32 parameters, flat and as ResNet-50's 161 tensors: ema4j with
         its default non-finite guard and without; PyTorch _foreach, per tensor, and the in-place add e += p (the
         same 12 bytes per parameter: the memory's floor)

usage: bench/vs_torch.py train|ema --cp CLASSPATH [--rounds 3] [--threads 2] [--out FILE] [--quick]
(bench/run-cpu.sh train|ema --vs-torch builds the class path and calls this.)
"""
import argparse
import json
import platform
import statistics
import subprocess
import sys
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's python3-torch


def cases(what, quick):
    """(case, [(variant, side, arguments)])"""
    if what == "train":
        steps = ["--warmup", "3", "--steps", "8"] if quick else ["--warmup", "5", "--steps", "15"]
        return [(m, [("ema4j", "java", ["train", "--model", m] + steps),
                     ("PyTorch", "torch", ["train", "--model", m] + steps)])
                for m in ["smallCnn16", "resnet20"]]
    n = str(1 << 22) if quick else str(1 << 26)
    steps = ["--warmup", "3", "--steps", "9" if quick else "15", "--n", n]
    return [(layout, [("ema4j guard on", "java", ["ema", "--layout", layout, "--guard", "on"] + steps),
                      ("ema4j guard off", "java", ["ema", "--layout", layout, "--guard", "off"] + steps),
                      ("PyTorch _foreach", "torch", ["ema", "--layout", layout, "--variant", "foreach"] + steps),
                      ("PyTorch per tensor", "torch", ["ema", "--layout", layout, "--variant", "per-tensor"] + steps),
                      ("PyTorch e += p", "torch", ["ema", "--layout", layout, "--variant", "add"] + steps)])
            for layout in ["flat", "resnet50"]]


def run(side, arguments, cp, threads):
    if side == "java":
        cmd = ["java", "-Xmx4g", "-cp", cp, "dev.ema4j.bench.CpuSide"] + arguments + ["--threads", str(threads)]
    else:
        cmd = [PYTHON, os.path.join(HERE, "torch_cpu.py")] + arguments + ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vs_torch.py: {' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["train", "ema"])
    parser.add_argument("--cp", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps: checks the pipeline")
    args = parser.parse_args()

    figures = {}  # (case, variant) -> [median ms of each round]
    torch_version = None
    for r in range(args.rounds):
        for case, variants in cases(args.what, args.quick):
            k = r % len(variants)
            for variant, side, arguments in variants[k:] + variants[:k]:
                result = run(side, arguments, args.cp, args.threads)
                torch_version = result.get("torch", torch_version)
                figures.setdefault((case, variant), []).append(result["ms"])
                print(f"round {r + 1}: {case} {variant}: {result['ms']:.3f} ms", file=sys.stderr)

    med = {key: statistics.median(v) for key, v in figures.items()}
    lines = [f"ema4j vs PyTorch {torch_version} on {platform.processor() or platform.machine()}, {args.threads} threads"
             f" each; median of {args.rounds} interleaved rounds (each a process's median)", ""]
    if args.what == "train":
        lines += ["| model | ema4j ms | PyTorch ms | ema4j images/s | PyTorch images/s | speed vs PyTorch |",
                  "|---|---:|---:|---:|---:|---:|"]
        for case, _ in cases(args.what, args.quick):
            a, b = med[(case, "ema4j")], med[(case, "PyTorch")]
            lines.append(f"| {case} | {a:.2f} | {b:.2f} | {128e3 / a:.0f} | {128e3 / b:.0f} | {b / a:.2f} |")
    else:
        lines += ["| layout | guard on | guard off | PyTorch _foreach | PyTorch per tensor | PyTorch e += p |"
                  " guard on vs best PyTorch EMA | guard on vs e += p | guard off vs e += p | guard on vs off |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for case, _ in cases(args.what, args.quick):
            on, off = med[(case, "ema4j guard on")], med[(case, "ema4j guard off")]
            best = min(med[(case, "PyTorch _foreach")], med[(case, "PyTorch per tensor")])
            add = med[(case, "PyTorch e += p")]
            lines.append(f"| {case} | {on:.2f} | {off:.2f} | {med[(case, 'PyTorch _foreach')]:.2f} | "
                         f"{med[(case, 'PyTorch per tensor')]:.2f} | {add:.2f} | {best / on:.2f} | {add / on:.2f} | "
                         f"{add / off:.2f} | {off / on:.2f} |")
        lines += ["", "ms per update; ratios are speed ratios (> 1: the first is faster)."]
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"table": table, "figures": {f"{c} | {v}": ms for (c, v), ms in figures.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
