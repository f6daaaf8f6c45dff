"""Merges the Java GPU benchmark (JMH JSON) and the PyTorch baseline (torch_ema.py JSON) into a Markdown table."""
import json
import sys

jmh_path, torch_path = sys.argv[1], sys.argv[2]
BYTES = {"copy": 8, "ema": 12, "emaGuarded": 12, "fusedK3": 28, "bf16": 10}


def resnet50_params():
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from torch_ema import SHAPES
    return {name: sum(sizes) for name, sizes in SHAPES.items()}


n = resnet50_params()
ours = {}
for r in json.load(open(jmh_path)):
    op = r["benchmark"].rsplit(".", 1)[1]
    shape = r["params"]["shape"]
    ms = r["primaryMetric"]["score"]
    ours[(shape, op)] = BYTES[op] * n[shape] / (ms * 1e6)
torch_info = json.load(open(torch_path))
theirs = {(r["shape"], r["op"]): r["gbps"] for r in torch_info["rows"]}

print(f"PyTorch {torch_info['torch']} on {torch_info['device']}; GB/s with nominal bytes "
      "(12/param for one fp32 EMA, 28 for three, 10 for bf16 params, 8 for a copy)\n")
print("| shape | op | ema4j GB/s | PyTorch GB/s | ema4j / PyTorch | ema4j / ema4j's copy |")
print("|---|---|---:|---:|---:|---:|")
for shape in ["flat25M", "resnet50", "flat1G"]:
    for op in ["copy", "ema", "emaGuarded", "fusedK3", "bf16"]:
        a = ours.get((shape, op))
        b = theirs.get((shape, "ema" if op == "emaGuarded" else op))
        copy = ours.get((shape, "copy"))
        if a is None:
            continue
        ratio = f"{a / b:.2f}" if b else ""
        vs_copy = f"{a / copy:.3f}" if copy else ""
        print(f"| {shape} | {op} | {a:.0f} | {b:.0f} | {ratio} | {vs_copy} |" if b else
              f"| {shape} | {op} | {a:.0f} | | | {vs_copy} |")
