package dev.ema4j.nn;

import java.util.SplittableRandom;

/**
 * How a parameter starts, as PyTorch's defaults: convolution and linear weights Kaiming-uniform with a = √5, i.e.
 * {@code U(−1/√fanIn, 1/√fanIn)}, their biases {@code U(−1/√fanIn, 1/√fanIn)} too; BatchNorm weight 1, bias 0,
 * running mean 0, running variance 1.
 *
 * @param kind the distribution
 * @param fanIn inputs per output (for {@link Kind#UNIFORM_FAN_IN})
 */
public record Init(Kind kind, int fanIn) {

    /** The distributions. */
    public enum Kind { UNIFORM_FAN_IN, ONES, ZEROS }

    public static Init fanIn(int fanIn) {
        return new Init(Kind.UNIFORM_FAN_IN, fanIn);
    }

    public static Init ones() {
        return new Init(Kind.ONES, 0);
    }

    public static Init zeros() {
        return new Init(Kind.ZEROS, 0);
    }

    /** Fills {@code values[from .. from + n)}, drawing from {@code random} in order. */
    void fill(float[] values, int from, int n, SplittableRandom random) {
        switch (kind) {
            case ONES -> java.util.Arrays.fill(values, from, from + n, 1f);
            case ZEROS -> java.util.Arrays.fill(values, from, from + n, 0f);
            case UNIFORM_FAN_IN -> {
                double bound = 1 / Math.sqrt(fanIn);
                for (int i = from; i < from + n; i++) {
                    values[i] = (float) ((2 * random.nextDouble() - 1) * bound);
                }
            }
        }
    }
}
