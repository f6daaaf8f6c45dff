#!/usr/bin/python3
"""Accuracy of fp32 EMA update forms against a float64 EMA.

Runs STEPS updates of an fp32 EMA over N elements whose parameters follow a
seeded Gaussian trajectory, and reports the error of the final fp32 shadow,
in ulps of the fp32 result (|e32 - e64| / ulp(e32)), against two float64 EMAs:
  ref64      e <- decay*e + (1-decay)*p       with the exact double decay
  ref64(w32) e <- e + w32*(p - e)             with w32 = (float)(1 - decay),
                                              the weight the fp32 forms really use
Forms (all fp32, w = 1 - decay):
  (a) torch lerp_        e.lerp_(p, w)                         [torch CPU kernel]
  (b) torch mul_+add_    e.mul_(decay).add_(p, alpha=w)        [torch CPU kernels]
  (c) two-FMA            fma(w, p, fma(-w, e, e))              [exact emulation]
  (d) lerp, unfused      e + fl(w*fl(p-e)), two roundings      [exact emulation]
  (e) mul+add, 3 round.  fl(fl(e*decay) + fl(w*p))             [exact emulation]
(d) and (e) are what torch computes when it runs its non-FMA kernels
(ATEN_CPU_CAPABILITY=default); (c)-(e) use numpy with the exact fp32 fma of
make_lerp_golden.fma32.
  (f) float64 EMA with the fp32-rounded decay and alpha of (b)/(e), no rounding:
      isolates the effect of fp32(decay) + fp32(1 - decay) != 1.
  (g) ema4j          GpuEma.update on the CPU backend          [Java, with --ema4j]
      the parameters of every step are streamed to dev.ema4j.bench.LerpReplay;
      the script also counts the elements where (g) and (a) differ in bits.

Usage (from the repository root):
    /usr/bin/python3 bench/golden/lerp_accuracy.py [--n 100000] [--steps 2000]
        [--decays 0.9999,0.999] [--traj walk|iid] [--seed 1] [--ema4j]
--ema4j needs the benchmarks built: mvn -B -q -DskipTests package -pl bench -am
"""
import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_lerp_golden import fma32  # noqa: E402

F32 = np.float32


def ulp32(x):
    return np.spacing(np.abs(x.astype(F32))).astype(np.float64)


ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EMA4J_CP = os.path.join(ROOT, "bench", "target", "ema4j-bench-0.1.0-SNAPSHOT.jar") + os.pathsep + \
    os.path.join(ROOT, "bench", "target", "lib", "*")


def run(decay, n, steps, traj, seed, ema4j=False):
    rng = np.random.default_rng(seed)
    w = 1.0 - decay
    w32 = F32(w)
    d32 = F32(decay)
    p = (rng.standard_normal(n) * 0.02).astype(F32)
    r64 = p.astype(np.float64)
    r64w = r64.copy()
    ea = torch.from_numpy(p.copy())
    eb = torch.from_numpy(p.copy())
    ec = p.copy()
    ed = p.copy()
    ee = p.copy()
    ef = p.astype(np.float64)
    base = p.copy()
    java = None
    if ema4j:
        java = subprocess.Popen(["java", "-cp", EMA4J_CP, "dev.ema4j.bench.LerpReplay", str(n), str(steps),
                                 repr(decay)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        java.stdin.write(p.astype("<f4").tobytes())
    for _ in range(steps):
        if traj == "walk":
            p = (p + (rng.standard_normal(n) * 1e-3).astype(F32)).astype(F32)
        else:
            p = (base + (rng.standard_normal(n) * 1e-2).astype(F32)).astype(F32)
        pt = torch.from_numpy(p)
        if java is not None:
            java.stdin.write(p.astype("<f4").tobytes())
        ea.lerp_(pt, w)
        eb.mul_(decay).add_(pt, alpha=w)
        ec = fma32(w32, p, fma32(-w32, ec, ec))
        with np.errstate(all="ignore"):
            ed = (ed + (w32 * (p - ed).astype(F32)).astype(F32)).astype(F32)
            ee = ((ee * d32).astype(F32) + (w32 * p).astype(F32)).astype(F32)
        p64 = p.astype(np.float64)
        r64 = decay * r64 + w * p64
        r64w = r64w + np.float64(w32) * (p64 - r64w)
        ef = np.float64(d32) * ef + np.float64(w32) * p64
    forms = [("(a) torch lerp_", ea.numpy()), ("(b) torch mul_+add_", eb.numpy()),
             ("(c) two-FMA fma(w,p,fma(-w,e,e))", ec), ("(d) lerp unfused (2 roundings)", ed),
             ("(e) mul+add, 3 roundings", ee),
             ("(f) float64 d32*e + w32*p (no rounding)", ef)]
    differ = None
    if java is not None:
        raw, _ = java.communicate()
        if java.returncode != 0 or len(raw) != 4 * n:
            sys.exit("LerpReplay failed (exit %d, %d bytes)" % (java.returncode, len(raw)))
        eg = np.frombuffer(raw, dtype="<f4").astype(F32)
        ta = ea.numpy()
        differ = int(np.count_nonzero((eg.view(np.uint32) != ta.view(np.uint32)) & ~(np.isnan(eg) & np.isnan(ta))))
        forms.append(("(g) ema4j GpuEma (Java CPU backend)", eg))
    out = []
    for name, e in forms:
        u = ulp32(e)  # for (f): ulp of its value rounded to fp32
        err = np.abs(e.astype(np.float64) - r64) / u
        errw = np.abs(e.astype(np.float64) - r64w) / u
        out.append((name, err.mean(), np.percentile(err, 99.9), err.max(), errw.mean(), errw.max()))
    return out, differ


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--decays", default="0.9999,0.999")
    ap.add_argument("--traj", choices=("walk", "iid"), default="walk",
                    help="walk: p_t = p_{t-1} + N(0,1e-3); iid: p_t = p_0 + N(0,1e-2); p_0 ~ N(0,0.02)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ema4j", action="store_true",
                    help="also run ema4j's update in Java (needs the bench jars, see the docstring)")
    a = ap.parse_args()
    print("torch %s, numpy %s, python %s, %s, torch threads %d, ATEN_CPU_CAPABILITY=%s"
          % (torch.__version__, np.__version__, platform.python_version(), platform.machine(),
             torch.get_num_threads(), os.environ.get("ATEN_CPU_CAPABILITY", "(unset)")))
    print("n=%d steps=%d traj=%s seed=%d; error of final fp32 shadow in ulps of the fp32 value"
          % (a.n, a.steps, a.traj, a.seed))
    for decay in [float(x) for x in a.decays.split(",")]:
        t0 = time.time()
        rows, differ = run(decay, a.n, a.steps, a.traj, a.seed, a.ema4j)
        print("\ndecay=%r  (w32=%r)  [%.0f s]" % (decay, float(F32(1.0 - decay)), time.time() - t0))
        if differ is not None:
            print("  ema4j vs torch lerp_: %d of %d final shadow elements differ in bits" % (differ, a.n))
        print("  %-40s %13s %8s %8s %19s %8s" % ("form", "mean vs ref64", "p99.9", "max",
                                                    "mean vs ref64(w32)", "max"))
        for name, m, p999, mx, mw, mxw in rows:
            print("  %-40s %13.3f %8.1f %8.1f %19.3f %8.1f" % (name, m, p999, mx, mw, mxw))


if __name__ == "__main__":
    main()
