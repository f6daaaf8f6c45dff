package dev.ema4j.backend.cpu;

/**
 * The CPU loops of the EMA operations (NOTE: [lerp-torch] in {@link dev.ema4j.backend.Backend#emaLerp} and
 * cuda/ema.cu); each is a plain loop C2 vectorizes. {@link #update} is public for fused optimizer passes of other
 * modules (the training module's SGD step), so they compute the EMA update exactly as the backend does.
 */
public final class Lerp {

    private Lerp() {
    }

    /**
     * The update of {@link dev.ema4j.backend.Backend#emaLerp} for the elements {@code [from, to)} of {@code p} and of
     * every shadow {@code e[k]} (the same indices), shadow {@code k} with weight {@code w[k]}; reads {@code p} once
     * per four shadows that take the same branch of the formula (NOTE: [lerp-branch]).
     *
     * @param e modified
     */
    public static void update(float[] p, float[][] e, float[] w, int from, int to) {
        int[] order = new int[e.length];
        int lows = 0;
        for (int k = 0; k < e.length; k++) {
            if (w[k] < 0.5f) {
                order[lows++] = k;
            }
        }
        int highs = lows;
        for (int k = 0; k < e.length; k++) {
            if (!(w[k] < 0.5f)) {
                order[highs++] = k;
            }
        }
        for (int g = 0; g < lows; g += 4) {  // NOTE: [same-index]
            lerp(p, e, w, order, g, Math.min(4, lows - g), true, from, to);
        }
        for (int g = lows; g < highs; g += 4) {
            lerp(p, e, w, order, g, Math.min(4, highs - g), false, from, to);
        }
    }

    /** The coefficient of {@code p − e} in the update with weight {@code w} (NOTE: [lerp-torch]). */
    static float coefficient(float w) {
        return w < 0.5f ? w : -(1f - w);
    }

    /**
     * Updates up to four shadows {@code e[order[first + j]]} in one pass over {@code p[from .. to)}, each with
     * {@code e[i] ← fma(c, p[i] − e[i], low ? e[i] : p[i])} where {@code c} is the {@link #coefficient} of its
     * weight. NOTE: [same-index]: one index for every array lets C2 vectorize fully (with two offsets it must allow
     * for {@code p == e} and runs about 30% slower), and one loop over several shadows reads {@code p} once (1.5x
     * faster than a pass per shadow for three shadows). NOTE: [lerp-branch]: every shadow of a pass takes the same
     * branch of the formula ({@code low}: {@code w < 0.5}), so the loop has one loop-invariant condition, which C2
     * unswitches into two vectorized loops; with a condition per shadow (or a base array chosen per shadow) C2 left
     * the four-shadow loop scalar, about 5x slower.
     */
    static void lerp(float[] p, float[][] e, float[] w, int[] order, int first, int count, boolean low, int from,
                     int to) {
        int k0 = order[first];
        switch (count) {
            case 1 -> lerp1(p, e[k0], coefficient(w[k0]), low, from, to);
            case 2 -> {
                int k1 = order[first + 1];
                lerp2(p, e[k0], e[k1], coefficient(w[k0]), coefficient(w[k1]), low, from, to);
            }
            case 3 -> {
                int k1 = order[first + 1];
                int k2 = order[first + 2];
                lerp3(p, e[k0], e[k1], e[k2], coefficient(w[k0]), coefficient(w[k1]), coefficient(w[k2]), low, from,
                        to);
            }
            default -> {
                int k1 = order[first + 1];
                int k2 = order[first + 2];
                int k3 = order[first + 3];
                lerp4(p, e[k0], e[k1], e[k2], e[k3], coefficient(w[k0]), coefficient(w[k1]), coefficient(w[k2]),
                        coefficient(w[k3]), low, from, to);
            }
        }
    }

    private static void lerp1(float[] p, float[] e0, float c0, boolean low, int from, int to) {
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(c0, x - a, low ? a : x);
        }
    }

    private static void lerp2(float[] p, float[] e0, float[] e1, float c0, float c1, boolean low, int from, int to) {
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(c0, x - a, low ? a : x);
            float b = e1[i];
            e1[i] = Math.fma(c1, x - b, low ? b : x);
        }
    }

    private static void lerp3(float[] p, float[] e0, float[] e1, float[] e2, float c0, float c1, float c2, boolean low,
                              int from, int to) {
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(c0, x - a, low ? a : x);
            float b = e1[i];
            e1[i] = Math.fma(c1, x - b, low ? b : x);
            float c = e2[i];
            e2[i] = Math.fma(c2, x - c, low ? c : x);
        }
    }

    private static void lerp4(float[] p, float[] e0, float[] e1, float[] e2, float[] e3, float c0, float c1, float c2,
                              float c3, boolean low, int from, int to) {
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(c0, x - a, low ? a : x);
            float b = e1[i];
            e1[i] = Math.fma(c1, x - b, low ? b : x);
            float c = e2[i];
            e2[i] = Math.fma(c2, x - c, low ? c : x);
            float d = e3[i];
            e3[i] = Math.fma(c3, x - d, low ? d : x);
        }
    }

    /** The update of {@code e[eOff + i]} toward {@code p[pOff + i]} with weight {@code w}, for {@code i < n}. */
    static void lerp(float[] p, int pOff, float[] e, int eOff, int n, float w) {
        float c = coefficient(w);
        boolean low = w < 0.5f;
        for (int i = 0; i < n; i++) {
            float x = p[pOff + i];
            float a = e[eOff + i];
            e[eOff + i] = Math.fma(c, x - a, low ? a : x);
        }
    }

    /**
     * Whether none of {@code a[from .. to)} is NaN or infinite: {@code x·0} is ±0 for finite {@code x} and NaN
     * otherwise. Eight independent sums, because C2 (Java 17) vectorizes no float reduction: this runs at about
     * 0.17 ns per element and thread, against 0.30 for a single accumulator.
     */
    static boolean allFinite(float[] a, int from, int to) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int i = from;
        for (; i + 7 < to; i += 8) {
            s0 += a[i] * 0f;
            s1 += a[i + 1] * 0f;
            s2 += a[i + 2] * 0f;
            s3 += a[i + 3] * 0f;
            s4 += a[i + 4] * 0f;
            s5 += a[i + 5] * 0f;
            s6 += a[i + 6] * 0f;
            s7 += a[i + 7] * 0f;
        }
        for (; i < to; i++) {
            s0 += a[i] * 0f;
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) == 0f;
    }

    /** Whether none of the 16-bit floats {@code a[from .. to)} with exponent mask {@code expMask} is NaN or infinite. */
    static boolean allFinite(short[] a, int from, int to, int expMask) {
        int carry = expMask & -expMask;
        int acc = 0;
        for (int i = from; i < to; i++) {
            acc |= (a[i] & expMask) + carry;
        }
        return (acc & 0x8000) == 0;
    }
}
