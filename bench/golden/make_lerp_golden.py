#!/usr/bin/python3
"""Generate golden EMA trajectories computed by PyTorch's CPU ``Tensor.lerp_``.

The golden files pin down, bit for bit, what PyTorch 1.13 (Debian's
``python3-torch``, CPU) computes for the EMA update

    e.lerp_(p.float(), 1.0 - decay)        # e: fp32 shadow, p: fp32/bf16/fp16

For float32 tensors and a Python-float weight, torch converts the weight once
to float32, ``w = (float)(1.0 - decay)`` (round to nearest even), and then, per
element, on an x86-64 CPU with AVX2+FMA (the kernel torch dispatches to there):

    d = p - e                                  (rounded to fp32)
    w <  0.5:  e' = fma(w, d, e)               (one rounding)
    w >= 0.5:  e' = fma(-(1 - w), d, p)        (1 - w rounded to fp32; one rounding)

The script checks every value torch produces against an independent exact
model of that formula (numpy, float64 TwoSum + round-to-odd; see ``fma32``)
and refuses to write anything if they differ (for example with
ATEN_CPU_CAPABILITY=default, where torch does not fuse and rounds twice).

Output: one little-endian binary file per (param dtype, decay) case plus
``lerp_edge_pairs.bin`` and ``SHA256SUMS``; the format is documented in
bench/golden/README.md. Rerunning gives identical bytes: all inputs come from a
fixed SplitMix64 stream computed in pure Python (no numpy/torch RNG).

Usage (from the repository root):
    /usr/bin/python3 bench/golden/make_lerp_golden.py            # (re)write files
    /usr/bin/python3 bench/golden/make_lerp_golden.py --check    # compare, write nothing
"""
import argparse
import hashlib
import math
import os
import struct
import sys

import numpy as np
import torch

F32 = np.float32
MAGIC_CASE = b"EMA4JLRP"
MAGIC_EDGE = b"EMA4JLEP"
VERSION = 1
N_LANES = 67          # 4*16 + 3: exercises vector bodies and scalar tails
STEPS = 128
DECAYS = (0.3, 0.5, 0.9, 0.999, 0.9999)
DTYPES = (  # name, code, torch dtype, bytes per element
    ("fp32", 0, torch.float32, 4),
    ("bf16", 1, torch.bfloat16, 2),
    ("fp16", 2, torch.float16, 2),
)
FLT_MAX = 3.4028234663852886e38
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(
    HERE, "..", "..", "src", "core", "src", "test", "resources", "dev", "ema4j", "golden"))


# ----------------------------------------------------------------------------
# Exact reference arithmetic (independent of torch)
# ----------------------------------------------------------------------------
def fma32(a, b, c):
    """Correctly rounded fp32 fma(a, b, c) for fp32 arrays, emulated in float64.

    a*b is exact in float64 (24+24 bits). The float64 sum is made exact with
    TwoSum and turned into round-to-odd (53 >= 2*24+2 bits), after which the
    final float64 -> float32 conversion (round-nearest-even, gradual underflow,
    overflow to inf) is a single correct rounding. Signed zeros and inf/NaN
    follow from IEEE float64 arithmetic.
    """
    a = np.asarray(a, F32)
    b = np.asarray(b, F32)
    c = np.asarray(c, F32)
    shape = np.broadcast(a, b, c).shape
    A = a.astype(np.float64)
    B = b.astype(np.float64)
    C = c.astype(np.float64)
    with np.errstate(all="ignore"):
        prod = A * B
        s = prod + C
        bb = s - prod
        err = (prod - (s - bb)) + (C - bb)
        s = np.array(np.broadcast_to(s, shape), dtype=np.float64)
        err = np.broadcast_to(err, shape)
        bits = s.view(np.int64)
        adj = np.isfinite(s) & (err != 0) & ((bits & 1) == 0)
        up = (err > 0) == (s > 0)
        bits[adj & up] += 1
        bits[adj & ~up] -= 1
        return s.astype(F32)


def lerp_ref(e, p, w32):
    """The torch 1.13 CPU (AVX2/FMA dispatch) fp32 lerp with fp32 scalar weight."""
    e = np.asarray(e, F32)
    p = np.asarray(p, F32)
    w32 = F32(w32)
    with np.errstate(all="ignore"):
        d = (p - e).astype(F32)
        if w32 < F32(0.5):
            return fma32(w32, d, e)
        return fma32(-(F32(1) - w32), d, p)


def same_bits_or_both_nan(x, y):
    x = np.asarray(x, F32)
    y = np.asarray(y, F32)
    return ((x.view(np.uint32) == y.view(np.uint32)) | (np.isnan(x) & np.isnan(y))).all()


def weight32(decay):
    return F32(1.0 - decay)  # RNE double -> float, as torch's Scalar.to<float>()


# ----------------------------------------------------------------------------
# Deterministic input stream (pure Python, platform independent)
# ----------------------------------------------------------------------------
class SplitMix64:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def u01(self):  # [0, 1), exact double
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def below(self, n):
        return self.next() % n

    def sign(self):
        return -1.0 if self.next() & 1 else 1.0

    def pow10(self, k):  # exact integer power, one correctly rounded division: no libm pow
        return float(10 ** k) if k >= 0 else 1.0 / float(10 ** (-k))

    def gauss(self):  # Irwin-Hall(4), unit variance; only + - * so bit-reproducible
        return (self.u01() + self.u01() + self.u01() + self.u01() - 2.0) * 1.7320508075688772


def dtype_limits(name):
    """(largest finite, min subnormal as float, number of subnormal mantissa values,
    exponent range for 'wide' lanes, huge magnitude used for big lanes)"""
    if name == "fp32":
        return FLT_MAX, 2.0 ** -149, (1 << 23) - 1, (-120, 120), 3e38
    if name == "bf16":
        return 3.3895313892515355e38, 2.0 ** -133, 127, (-120, 120), 3e38
    return 65504.0, 2.0 ** -24, 1023, (-14, 15), 6.0e4


def lane_class(i):
    if i < 36:
        return "ordinary"
    if i < 44:
        return "subnormal"
    if i < 48:
        return "zero"
    if i < 54:
        return "huge"
    if i < 56:
        return "overflow"
    if i < 60:
        return "jump"
    return "wide"


def make_inputs(dname, seed):
    """Returns (init shadow as python floats [n], params as python floats [steps][n]).

    Param values are python floats; they are rounded to the param dtype by torch
    (RNE) afterwards, so only their bit patterns after that rounding matter."""
    rng = SplitMix64(seed)
    fmax, sub_min, sub_count, (emin, emax), huge = dtype_limits(dname)
    n = N_LANES
    init = [0.0] * n
    cur = [0.0] * n          # current param value (random walks)
    scale = [1.0] * n
    for i in range(n):
        c = lane_class(i)
        if c == "ordinary":
            scale[i] = rng.pow10(i % 9 - 4)                     # 1e-4 .. 1e4
            cur[i] = scale[i] * rng.gauss()
            init[i] = cur[i] + 0.05 * scale[i] * rng.gauss()
        elif c == "subnormal":
            init[i] = rng.sign() * math.ldexp(1 + rng.below((1 << 23) - 1), -149)  # fp32 subnormal
        elif c == "zero":
            init[i] = (0.0, -0.0, -0.0, 0.0)[i - 44]
        elif c == "huge":
            s = 1.0 if i % 2 == 0 else -1.0
            init[i] = s * 3e38 * (1.0 - 0.01 * rng.u01())
            cur[i] = s
        elif c == "overflow":
            s = 1.0 if i % 2 == 0 else -1.0
            init[i] = -s * 3e38
            cur[i] = s
        elif c == "jump":
            init[i] = rng.gauss()
        else:  # wide
            scale[i] = math.ldexp(1.0, emin + rng.below(emax - emin + 1))
            cur[i] = rng.sign() * scale[i] * (1.0 + 0.5 * rng.u01())
            init[i] = cur[i] * (1.0 + 0.01 * rng.gauss())
    params = []
    for t in range(STEPS):
        row = [0.0] * n
        for i in range(n):
            c = lane_class(i)
            if c == "ordinary":
                cur[i] += 0.01 * scale[i] * rng.gauss()
                row[i] = cur[i]
            elif c == "subnormal":
                row[i] = rng.sign() * (1 + rng.below(sub_count)) * sub_min
            elif c == "zero":
                k = i - 44
                if k == 0:
                    row[i] = -0.0 if t % 2 == 0 else 0.0
                elif k == 1:
                    row[i] = -0.0
                elif k == 2:
                    row[i] = 0.0
                else:
                    row[i] = (0.0, -0.0, sub_min, -sub_min)[rng.below(4)]
            elif c == "huge":
                r = rng.below(8)
                row[i] = cur[i] * (fmax if r == 0 else huge * (1.0 - 0.1 * rng.u01()))
            elif c == "overflow":
                row[i] = cur[i] * (fmax if t % 3 == 0 else huge)
            elif c == "jump":
                r = rng.below(4)
                if r == 0:
                    row[i] = rng.sign() * (1.0 + 9.0 * rng.u01()) * rng.pow10(rng.below(6) - 3)
                elif r == 1:
                    row[i] = rng.sign() * (1 + rng.below(sub_count)) * sub_min
                elif r == 2:
                    row[i] = rng.sign() * 0.0
                else:
                    row[i] = rng.gauss()
            else:  # wide
                cur[i] *= 1.0 + 0.001 * rng.gauss()
                row[i] = cur[i]
        params.append(row)
    return init, params


# ----------------------------------------------------------------------------
# Case generation
# ----------------------------------------------------------------------------
def bits_u32(t):
    return t.contiguous().view(torch.int32).numpy().view(np.uint32).astype("<u4")


def bits_u16(t):
    return t.contiguous().view(torch.int16).numpy().view(np.uint16).astype("<u2")


def make_case(dname, dcode, tdtype, pbytes, decay):
    seed = 0x454D41344A000000 + dcode      # same trajectory for every decay of a dtype
    init, params = make_inputs(dname, seed)
    w = 1.0 - decay                          # the python float torch receives
    w32 = weight32(decay)
    e = torch.tensor(init, dtype=torch.float32)
    out = bytearray()
    out += MAGIC_CASE
    out += struct.pack("<IIdIIII", VERSION, dcode, decay, int(np.array(w32).view(np.uint32)),
                       N_LANES, STEPS, pbytes)
    out += bits_u32(e).tobytes()
    for t in range(STEPS):
        # python float -> fp32 (RNE) -> param dtype (RNE): the stored bits are what count
        p_half = torch.tensor(params[t], dtype=torch.float32).to(tdtype)
        p32 = p_half.float()                 # exact widening
        ref = lerp_ref(e.numpy(), p32.numpy(), w32)
        e.lerp_(p32, w)
        if not same_bits_or_both_nan(e.numpy(), ref):
            bad = np.nonzero(~((e.numpy().view(np.uint32) == ref.view(np.uint32))
                               | (np.isnan(e.numpy()) & np.isnan(ref))))[0]
            sys.exit("torch.lerp_ disagrees with the fused reference formula (case %s decay %r step %d "
                     "lanes %s). Is torch using its non-FMA 'default' CPU kernels "
                     "(ATEN_CPU_CAPABILITY, no AVX2/FMA)? Nothing written." % (dname, decay, t, bad[:8].tolist()))
        out += (bits_u32(p_half) if pbytes == 4 else bits_u16(p_half)).tobytes()
        out += bits_u32(e).tobytes()
    assert len(out) == 40 + 4 * N_LANES + STEPS * N_LANES * (pbytes + 4)
    return bytes(out)


EDGE_VALUES = [0.0, -0.0, 2.0 ** -149, -(2.0 ** -149), 3 * 2.0 ** -149, 1e-40, -1e-40, 5.9e-39,
               2.0 ** -126 - 2.0 ** -149, -(2.0 ** -126 - 2.0 ** -149), 2.0 ** -126, -1.2e-38, 1e-37,
               1e-3, 0.5, 1.0, -1.0, 3.14159, -2.71828, 65504.0, 1e30, -1e-30, 3e38, -3e38,
               FLT_MAX, -FLT_MAX, math.inf, -math.inf, math.nan]
EDGE_DECAYS = DECAYS + (0.0, 1.0, 0.50000003, 0.9999999, 0.99999)  # w = 1, 0, ~0.49999997, ~1e-7, ~1e-5


def make_edges():
    vals = torch.tensor(EDGE_VALUES, dtype=torch.float32)
    m = len(EDGE_VALUES)
    E = vals.repeat_interleave(m)       # e major, p minor
    P = vals.repeat(m)
    recs = []
    for decay in EDGE_DECAYS:
        w32 = weight32(decay)
        e = E.clone()
        e.lerp_(P, 1.0 - decay)
        ref = lerp_ref(E.numpy(), P.numpy(), w32)
        if not same_bits_or_both_nan(e.numpy(), ref):
            sys.exit("edge pairs: torch.lerp_ disagrees with the fused reference (decay %r). Nothing written." % decay)
        wb = np.full(m * m, np.array(w32).view(np.uint32), dtype="<u4")
        recs.append(np.stack([bits_u32(E), bits_u32(P), wb, bits_u32(e)], axis=1))
    recs = np.concatenate(recs).astype("<u4")
    return MAGIC_EDGE + struct.pack("<II", VERSION, recs.shape[0]) + recs.tobytes()


def case_filename(dname, decay):
    return "lerp_%s_%s.bin" % (dname, repr(decay).replace(".", "p"))


def generate():
    files = {}
    for dname, dcode, tdtype, pbytes in DTYPES:
        for decay in DECAYS:
            files[case_filename(dname, decay)] = make_case(dname, dcode, tdtype, pbytes, decay)
    files["lerp_edge_pairs.bin"] = make_edges()
    sums = "".join("%s  %s\n" % (hashlib.sha256(files[k]).hexdigest(), k) for k in sorted(files))
    files["SHA256SUMS"] = sums.encode()
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory and compare with the files in --out; write nothing")
    args = ap.parse_args()
    if not torch.__version__.startswith("1.13"):
        print("warning: golden data was defined with torch 1.13, this is %s" % torch.__version__, file=sys.stderr)
    torch.set_flush_denormal(False)
    files = generate()
    total = sum(len(v) for v in files.values())
    if args.check:
        bad = 0
        for k in sorted(files):
            path = os.path.join(args.out, k)
            ok = os.path.exists(path) and open(path, "rb").read() == files[k]
            bad += not ok
            print("%-28s %s" % (k, "identical" if ok else "DIFFERENT/MISSING"))
        sys.exit(1 if bad else 0)
    os.makedirs(args.out, exist_ok=True)
    for k in sorted(files):
        with open(os.path.join(args.out, k), "wb") as f:
            f.write(files[k])
    sys.stdout.write(files["SHA256SUMS"].decode())
    print("torch %s, %d files, %d bytes, written to %s" % (torch.__version__, len(files), total, args.out))


if __name__ == "__main__":
    main()
