"""Merges the Java GPU training benchmarks with the PyTorch eager baselines (torch_train.py JSON) into a Markdown
table: time per operation and the speed ratio PyTorch ms / ema4j ms (> 1: ema4j faster).

The Java figures are DeviceQuickBench's JSON (bench/device/run.sh) or JMH's JSON of `BenchMain gpu-train`; the
PyTorch file may be absent.

usage: python3 summarize_train.py ema4j.json [torch-train.json] [--line]
  --line  print one line of speed ratios instead of the table (nothing without PyTorch figures)
"""
import json
import os
import sys

KEYS = ["copy", "sgd", "sgdEma1", "sgdEma3", "convForward", "convBackward", "trainStep smallCnn16",
        "trainStep resnet20", "trainStepNoGraphs smallCnn16", "trainStepNoGraphs resnet20"]


def key(op, model):
    """trainStep: with the passes replayed as CUDA graphs; trainStepNoGraphs: without (both against PyTorch's
    trainStep)."""
    return f"{op} {model}" if op.startswith("trainStep") else op


def baseline(k):
    return k.replace("trainStepNoGraphs", "trainStep")


def load_ours(path):
    data = json.load(open(path))
    if isinstance(data, list):  # JMH
        return {key(r["benchmark"].rsplit(".", 1)[1], r["params"].get("model") if r.get("params") else None):
                r["primaryMetric"]["score"] for r in data}
    return {key(r["op"], r.get("model")): r["ms"] for r in data["rows"]}  # DeviceQuickBench


def main(argv):
    line = "--line" in argv
    paths = [a for a in argv if a != "--line"]
    ours = load_ours(paths[0])
    torch_info = None
    if len(paths) > 1 and os.path.exists(paths[1]):
        torch_info = json.load(open(paths[1]))
    theirs = {key(r["op"], r.get("model")): r["ms"] for r in torch_info["rows"]} if torch_info else {}

    if line:
        parts = []
        for k in KEYS:
            a = ours.get(k)
            b = [theirs[baseline(k) + v] for v in ["", " (fused=True)"] if baseline(k) + v in theirs]
            if a and b and k != "copy":
                parts.append(f"{k.replace('trainStep ', '').replace('trainStepNoGraphs ', 'no graphs ')} "
                             f"{min(b) / a:.2f}")
        if parts:
            print("speed vs PyTorch " + torch_info["torch"] + " eager, best variant (PyTorch ms / ema4j ms): "
                  + ", ".join(parts))
        return

    if torch_info:
        print(f"PyTorch {torch_info['torch']} eager on {torch_info['device']} (TF32 off); ms per operation, "
              "speed ratio = PyTorch ms / ema4j ms (> 1: ema4j faster)\n")
    else:
        print("no PyTorch figures\n")
    print("| operation | ema4j ms | PyTorch ms | PyTorch variant | speed ratio |")
    print("|---|---:|---:|---|---:|")
    for k in KEYS:
        a = ours.get(k)
        if a is None:
            continue
        shown = False
        for variant in ["", " (fused=True)"]:
            b = theirs.get(baseline(k) + variant)
            if b is None:
                continue
            shown = True
            print(f"| {k} | {a:.4f} | {b:.4f} | {variant.strip() or 'default'} | {b / a:.2f} |")
        if not shown:
            print(f"| {k} | {a:.4f} | | | |")


if __name__ == "__main__":
    main(sys.argv[1:])
