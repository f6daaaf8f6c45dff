package dev.ema4j;

import java.util.Arrays;

/**
 * An independent reference for the EMA operations, written without any library code: the lerp formula of the
 * contract, and 16-bit float conversions derived from first principles (decoding by the definition of the
 * formats, narrowing by searching the nearest representable value).
 */
final class EmaOracle {

    private static final float[] F16_VALUES = new float[1 << 16];
    /** Finite non-negative fp16 values in increasing order, with their bit patterns. */
    private static final float[] F16_SORTED;
    private static final short[] F16_SORTED_BITS;

    static {
        for (int h = 0; h < F16_VALUES.length; h++) {
            F16_VALUES[h] = decodeF16(h);
        }
        F16_SORTED = new float[0x7c00];
        F16_SORTED_BITS = new short[0x7c00];
        for (int h = 0; h < 0x7c00; h++) {
            F16_SORTED[h] = F16_VALUES[h];
            F16_SORTED_BITS[h] = (short) h;
        }
    }

    private EmaOracle() {
    }

    /** The weight of an update with {@code decay}: {@code w = 1 − decay} in double, rounded to float. */
    static float weight(double decay) {
        return (float) (1.0 - decay);
    }

    /** PyTorch's {@code e.lerp_(p, w)} elementwise (NOTE: [lerp-torch] in {@code Backend#emaLerp}). */
    static void lerp(float[] e, float[] p, double decay) {
        float w = weight(decay);
        for (int i = 0; i < e.length; i++) {
            e[i] = lerp(e[i], p[i], w);
        }
    }

    /** {@code fma(w, p − e, e)} below {@code w = 0.5}, {@code fma(−(1 − w), p − e, p)} from there on. */
    static float lerp(float e, float p, float w) {
        float d = p - e;
        if (w < 0.5f) {
            return Math.fma(w, d, e);
        }
        return Math.fma(-(1f - w), d, p);
    }

    /** bf16 bits to float by definition: the bits are the upper half of a binary32. */
    static float bf16(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /**
     * fp16 bits to float by definition: (−1)^s · 2^(e−15) · 1.m, or 2^−14 · 0.m when e = 0; a NaN keeps its
     * sign and payload (the 10 mantissa bits become the top of the 23).
     */
    static float f16(short bits) {
        return F16_VALUES[bits & 0xffff];
    }

    private static float decodeF16(int h) {
        int sign = (h >> 15) == 0 ? 1 : -1;
        int exp = (h >> 10) & 0x1f;
        int man = h & 0x3ff;
        if (exp == 0x1f) {
            return man == 0 ? sign * Float.POSITIVE_INFINITY
                    : Float.intBitsToFloat((h & 0x8000) << 16 | 0x7f800000 | man << 13);
        }
        double value = exp == 0 ? Math.scalb(man / 1024.0, -14) : Math.scalb(1 + man / 1024.0, exp - 15);
        return (float) (sign * value);
    }

    /** Float to bf16, to nearest with ties to even, by comparing the two neighbouring bf16 values. */
    static short toBf16(float f) {
        if (Float.isNaN(f)) {
            return (short) (Float.floatToRawIntBits(f) < 0 ? 0xffc0 : 0x7fc0);
        }
        int bits = Float.floatToRawIntBits(f);
        int down = bits >>> 16;
        if ((bits & 0xffff) == 0) {
            return (short) down;
        }
        int up = down + 1;
        double dDown = Math.abs((double) f - bf16((short) down));
        double upValue = (up & 0x7fff) == 0x7f80 ? Math.copySign(Math.scalb(1.0, 128), f) : bf16((short) up);
        double dUp = Math.abs((double) f - upValue);
        if (dDown != dUp) {
            return (short) (dDown < dUp ? down : up);
        }
        return (short) ((down & 1) == 0 ? down : up);
    }

    /** Float to fp16, to nearest with ties to even, by binary search over all finite fp16 values. */
    static short toF16(float f) {
        if (Float.isNaN(f)) {
            return (short) (Float.floatToRawIntBits(f) < 0 ? 0xfe00 : 0x7e00);
        }
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x8000 : 0;
        double a = Math.abs((double) f);
        // 65520 = 65504 + half an ulp: from there on (and for infinity) the result is infinity
        if (a >= 65520.0) {
            return (short) (sign | 0x7c00);
        }
        int i = Arrays.binarySearch(F16_SORTED, (float) a);
        if (i >= 0) {
            return (short) (sign | F16_SORTED_BITS[i]);
        }
        int hi = -i - 1;
        int lo = hi - 1;
        if (hi == F16_SORTED.length) {
            return (short) (sign | F16_SORTED_BITS[lo]);
        }
        double dLo = a - F16_SORTED[lo];
        double dHi = F16_SORTED[hi] - a;
        int pick = dLo < dHi ? lo : dHi < dLo ? hi : ((F16_SORTED_BITS[lo] & 1) == 0 ? lo : hi);
        return (short) (sign | F16_SORTED_BITS[pick]);
    }
}
