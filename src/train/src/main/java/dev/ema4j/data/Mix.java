package dev.ema4j.data;

import java.util.SplittableRandom;

/**
 * Stateless random numbers: a hash of a seed and coordinates (epoch, position, index) through the SplitMix64
 * finalizer, so every random choice can be recomputed from its coordinates alone.
 */
final class Mix {

    private static final long GOLDEN = 0x9e3779b97f4a7c15L;

    private Mix() {
    }

    /** A well-mixed 64-bit hash of {@code (seed, a, b)}. */
    static long hash(long seed, long a, long b) {
        return mix64(mix64(mix64(seed + GOLDEN) + a) + GOLDEN * (b + 1));
    }

    /** A uniformly random permutation of {@code 0..n-1} that depends only on {@code (seed, a, b)}. */
    static int[] permutation(int n, long seed, long a, long b) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        SplittableRandom random = new SplittableRandom(hash(seed, a, b));
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** The SplitMix64 finalizer (Steele, Lea and Flood 2014). */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** A double in [0, 1) from the top 53 bits of {@code h}. */
    static double unit(long h) {
        return (h >>> 11) * 0x1.0p-53;
    }

    /** An int in [0, bound) from the low 32 bits of {@code h} (multiply-shift; bias below bound/2^32). */
    static int below(long h, int bound) {
        return (int) (((h & 0xffffffffL) * bound) >>> 32);
    }
}
