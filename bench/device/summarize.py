"""Merges the Java GPU EMA benchmark with the PyTorch baseline (torch_ema.py JSON) into a Markdown table.

The Java figures are DeviceQuickBench's JSON (bench/device/run.sh) or JMH's JSON of `BenchMain gpu`; the PyTorch
file may be absent. The speed ratio is PyTorch's time over ema4j's for the same shape and the same work (> 1: ema4j
faster): ema and emaGuarded against _foreach_lerp_, fusedK3 and threeSingles against three _foreach_lerp_ calls, bf16
against the lerp of widened bf16 parameters, copy against _foreach_copy_.

usage: python3 summarize.py ema4j.json [torch.json] [--line]
  --line  print one line of speed ratios instead of the table (nothing without PyTorch figures)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shapes import SHAPES  # noqa: E402

BYTES = {"copy": 8, "ema": 12, "emaGuarded": 12, "fusedK3": 28, "threeSingles": 36, "bf16": 10}
TORCH_OP = {"copy": "copy", "ema": "ema", "emaGuarded": "ema", "fusedK3": "fusedK3", "threeSingles": "fusedK3",
            "bf16": "bf16"}
OPS = ["copy", "ema", "emaGuarded", "fusedK3", "threeSingles", "bf16"]


def load_ours(path):
    """{(shape, op): (ms, GB/s)} and the shapes in order."""
    data = json.load(open(path))
    ours, shapes = {}, []
    if isinstance(data, list):  # JMH
        for r in data:
            op = r["benchmark"].rsplit(".", 1)[1]
            shape = r["params"]["shape"]
            ms = r["primaryMetric"]["score"]
            ours[(shape, op)] = (ms, BYTES[op] * sum(SHAPES[shape]) / (ms * 1e6))
    else:  # DeviceQuickBench
        for r in data["rows"]:
            ours[(r["shape"], r["op"])] = (r["ms"], r["gbps"])
    for shape, _ in ours:
        if shape not in shapes:
            shapes.append(shape)
    return ours, shapes


def main(argv):
    line = "--line" in argv
    paths = [a for a in argv if a != "--line"]
    ours, shapes = load_ours(paths[0])
    torch_info = None
    if len(paths) > 1 and os.path.exists(paths[1]):
        torch_info = json.load(open(paths[1]))
    theirs = {(r["shape"], r["op"]): (r["ms"], r["gbps"]) for r in torch_info["rows"]} if torch_info else {}

    if line:
        parts = []
        for shape in shapes:
            ratios = []
            for op in ["ema", "fusedK3", "bf16"]:
                a, b = ours.get((shape, op)), theirs.get((shape, TORCH_OP[op]))
                if a and b:
                    ratios.append(f"{op} {b[0] / a[0]:.2f}")
            if ratios:
                parts.append(f"{shape} " + ", ".join(ratios))
        if parts:
            print("speed vs PyTorch " + torch_info["torch"] + " (PyTorch ms / ema4j ms): " + "; ".join(parts))
        return

    if torch_info:
        print(f"PyTorch {torch_info['torch']} on {torch_info['device']}; GB/s with nominal bytes (12 per parameter for"
              " one fp32 shadow, 28 for three in one pass, 36 for three single updates, 10 for bf16 parameters, 8 for"
              " a copy); speed ratio = PyTorch ms / ema4j ms (> 1: ema4j faster)\n")
    else:
        print("no PyTorch figures; GB/s with nominal bytes (12 per parameter for one fp32 shadow, 28 for three in one"
              " pass, 36 for three single updates, 10 for bf16 parameters, 8 for a copy)\n")
    print("| shape | op | ema4j ms | ema4j GB/s | PyTorch op | PyTorch ms | speed ratio | ema4j / ema4j's copy |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for shape in shapes:
        copy = ours.get((shape, "copy"))
        for op in OPS:
            a = ours.get((shape, op))
            if a is None:
                continue
            b = theirs.get((shape, TORCH_OP[op]))
            vs_copy = f"{a[1] / copy[1]:.3f}" if copy and op != "copy" else ""
            torch_cols = f"{TORCH_OP[op]} | {b[0]:.4f} | {b[0] / a[0]:.2f}" if b else " | | "
            print(f"| {shape} | {op} | {a[0]:.4f} | {a[1]:.0f} | {torch_cols} | {vs_copy} |")


if __name__ == "__main__":
    main(sys.argv[1:])
