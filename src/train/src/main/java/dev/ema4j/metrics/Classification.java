package dev.ema4j.metrics;

/**
 * Top-1 predictions, accuracy and negative log-likelihood of a classifier from its (N, C) probabilities (shapes and
 * checks: {@linkplain dev.ema4j.metrics package docs}).
 */
public final class Classification {

    /** Probabilities are clamped to at least this value before the log of {@link #nll}. */
    public static final double MIN_PROBABILITY = 1e-12;

    private Classification() {
    }

    /** {@code top1[n] = argmax_c probs[n, c]}; ties go to the lowest class index. */
    public static int[] top1(float[] probs, int classes) {
        int n = Inputs.probabilities("probs", probs, classes);
        int[] top = new int[n];
        for (int i = 0; i < n; i++) {
            top[i] = argmax(probs, i * classes, classes);
        }
        return top;
    }

    /**
     * {@code accuracy = (1/N)·Σ_n [top1[n] = labels[n]]}, with {@link #top1} breaking ties by the lowest class index
     * (so a uniform row predicts class 0).
     */
    public static double accuracy(float[] probs, int classes, int[] labels) {
        int n = Inputs.probabilities(probs, classes, labels);
        long correct = 0;
        for (int i = 0; i < n; i++) {
            if (argmax(probs, i * classes, classes) == labels[i]) {
                correct++;
            }
        }
        return (double) correct / n;
    }

    /**
     * {@code NLL = −(1/N)·Σ_n ln max(probs[n, labels[n]], 1e-12)}, natural log; the clamp ({@link #MIN_PROBABILITY})
     * turns a zero probability for the true class into a finite loss of {@code 12·ln 10 ≈ 27.63}.
     */
    public static double nll(float[] probs, int classes, int[] labels) {
        int n = Inputs.probabilities(probs, classes, labels);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum -= Math.log(Math.max(probs[i * classes + labels[i]], MIN_PROBABILITY));
        }
        return sum / n;
    }

    /** Index of the largest of {@code values[offset, offset + length)}, the first one on ties. */
    static int argmax(float[] values, int offset, int length) {
        int best = 0;
        for (int c = 1; c < length; c++) {
            if (values[offset + c] > values[offset + best]) {
                best = c;
            }
        }
        return best;
    }
}
