package dev.ema4j.backend.cpu;

/**
 * The CPU loops of the EMA operations (NOTE: [lerp-fma] in cuda/ema.cu); each is a plain loop C2 vectorizes.
 * {@link #update} is public for fused optimizer passes of other modules (the training module's SGD step), so they
 * compute the EMA update exactly as the backend does.
 */
public final class Lerp {

    private Lerp() {
    }

    /**
     * The update of {@link dev.ema4j.backend.Backend#emaLerp} for the elements {@code [from, to)} of {@code p} and of
     * every shadow {@code e[k]} (the same indices), shadow {@code k} with weight {@code w[k]}; reads {@code p} once
     * per four shadows.
     *
     * @param e modified
     */
    public static void update(float[] p, float[][] e, float[] w, int from, int to) {
        for (int k = 0; k < e.length; k += 4) {  // NOTE: [same-index]
            lerp(p, e, w, k, Math.min(4, e.length - k), from, to);
        }
    }

    /**
     * Updates up to four shadows in one pass over {@code p[from .. to)}, each with
     * {@code e[i] ← fma(w, p[i], fma(−w, e[i], e[i]))}. NOTE: [same-index]: one index for every array lets C2
     * vectorize fully (with two offsets it must allow for {@code p == e} and runs about 30% slower), and one loop
     * over several shadows reads {@code p} once (1.5x faster than a pass per shadow for three shadows).
     */
    static void lerp(float[] p, float[][] e, float[] w, int first, int count, int from, int to) {
        switch (count) {
            case 1 -> lerp1(p, e[first], w[first], from, to);
            case 2 -> lerp2(p, e[first], e[first + 1], w[first], w[first + 1], from, to);
            case 3 -> lerp3(p, e[first], e[first + 1], e[first + 2], w[first], w[first + 1], w[first + 2], from, to);
            default -> lerp4(p, e[first], e[first + 1], e[first + 2], e[first + 3], w[first], w[first + 1],
                    w[first + 2], w[first + 3], from, to);
        }
    }

    private static void lerp1(float[] p, float[] e0, float w0, int from, int to) {
        float n0 = -w0;
        for (int i = from; i < to; i++) {
            float a = e0[i];
            e0[i] = Math.fma(w0, p[i], Math.fma(n0, a, a));
        }
    }

    private static void lerp2(float[] p, float[] e0, float[] e1, float w0, float w1, int from, int to) {
        float n0 = -w0;
        float n1 = -w1;
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(w0, x, Math.fma(n0, a, a));
            float b = e1[i];
            e1[i] = Math.fma(w1, x, Math.fma(n1, b, b));
        }
    }

    private static void lerp3(float[] p, float[] e0, float[] e1, float[] e2, float w0, float w1, float w2, int from,
                              int to) {
        float n0 = -w0;
        float n1 = -w1;
        float n2 = -w2;
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(w0, x, Math.fma(n0, a, a));
            float b = e1[i];
            e1[i] = Math.fma(w1, x, Math.fma(n1, b, b));
            float c = e2[i];
            e2[i] = Math.fma(w2, x, Math.fma(n2, c, c));
        }
    }

    private static void lerp4(float[] p, float[] e0, float[] e1, float[] e2, float[] e3, float w0, float w1, float w2,
                              float w3, int from, int to) {
        float n0 = -w0;
        float n1 = -w1;
        float n2 = -w2;
        float n3 = -w3;
        for (int i = from; i < to; i++) {
            float x = p[i];
            float a = e0[i];
            e0[i] = Math.fma(w0, x, Math.fma(n0, a, a));
            float b = e1[i];
            e1[i] = Math.fma(w1, x, Math.fma(n1, b, b));
            float c = e2[i];
            e2[i] = Math.fma(w2, x, Math.fma(n2, c, c));
            float d = e3[i];
            e3[i] = Math.fma(w3, x, Math.fma(n3, d, d));
        }
    }

    /** {@code e[eOff + i] ← fma(w, p[pOff + i], fma(−w, e[eOff + i], e[eOff + i]))} for {@code i < n}. */
    static void lerp(float[] p, int pOff, float[] e, int eOff, int n, float w) {
        float nw = -w;
        for (int i = 0; i < n; i++) {
            float ei = e[eOff + i];
            e[eOff + i] = Math.fma(w, p[pOff + i], Math.fma(nw, ei, ei));
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
