"""Merges the Java GPU training benchmarks (JMH JSON of BenchMain gpu-train) and the PyTorch eager baselines
(torch_train.py JSON) into a Markdown table: time per operation and the speed ratio ema4j / PyTorch."""
import json
import sys

jmh_path, torch_path = sys.argv[1], sys.argv[2]
ours = {}
for r in json.load(open(jmh_path)):
    op = r["benchmark"].rsplit(".", 1)[1]
    key = op if op != "trainStep" else f"trainStep {r['params']['model']}"
    ours[key] = r["primaryMetric"]["score"]
torch_info = json.load(open(torch_path))
theirs = {}
for r in torch_info["rows"]:
    key = r["op"] if r["op"] != "trainStep" else f"trainStep {r['model']}"
    theirs[key] = r["ms"]

print(f"PyTorch {torch_info['torch']} eager on {torch_info['device']} (TF32 off); ms per operation, "
      "speed ratio = PyTorch ms / ema4j ms (> 1: ema4j faster)\n")
print("| operation | ema4j ms | PyTorch ms | PyTorch variant | speed ratio |")
print("|---|---:|---:|---|---:|")
for key in ["copy", "sgd", "sgdEma1", "sgdEma3", "convForward", "convBackward", "trainStep smallCnn16",
            "trainStep resnet20"]:
    a = ours.get(key)
    if a is None:
        continue
    for variant in ["", " (fused=True)"]:
        b = theirs.get(key + variant)
        if b is None:
            continue
        print(f"| {key} | {a:.4f} | {b:.4f} | {variant.strip() or 'default'} | {b / a:.2f} |")
