package dev.ema4j.metrics;

import java.util.Objects;

/**
 * Agreement between the predictions of two classifiers A and B on the same N samples, from their (N, C)
 * probabilities (shapes and checks: {@linkplain dev.ema4j.metrics package docs}) or top-1 classes.
 */
public final class Consistency {

    private Consistency() {
    }

    /** {@code churn = (1/N)·Σ_n [predictionsA[n] ≠ predictionsB[n]]}, the fraction of samples whose class differs. */
    public static double churn(int[] predictionsA, int[] predictionsB) {
        Objects.requireNonNull(predictionsA, "predictionsA");
        Objects.requireNonNull(predictionsB, "predictionsB");
        if (predictionsA.length == 0) {
            throw new IllegalArgumentException("predictionsA is empty");
        }
        Inputs.sameLength("predictionsA", predictionsA.length, "predictionsB", predictionsB.length);
        long differ = 0;
        for (int i = 0; i < predictionsA.length; i++) {
            if (predictionsA[i] != predictionsB[i]) {
                differ++;
            }
        }
        return (double) differ / predictionsA.length;
    }

    /** The churn of the top-1 classes ({@link Classification#top1}, ties to the lowest index) of A and B. */
    public static double churn(float[] probsA, float[] probsB, int classes) {
        checkPair(probsA, probsB, classes);
        return churn(Classification.top1(probsA, classes), Classification.top1(probsB, classes));
    }

    /**
     * Mean Jensen–Shannon divergence {@code (1/N)·Σ_n JS(p_n‖q_n)} between A's rows p and B's rows q, where
     * {@code JS(p‖q) = ½·KL(p‖m) + ½·KL(q‖m)}, {@code m = (p+q)/2}, {@code KL(p‖m) = Σ_c p_c·ln(p_c/m_c)} with the
     * natural log and {@code 0·ln 0 = 0}; so it is symmetric and lies in [0, ln 2] for rows that sum to 1.
     */
    public static double jsDivergence(float[] probsA, float[] probsB, int classes) {
        int n = checkPair(probsA, probsB, classes);
        double sum = 0;
        for (int i = 0; i < probsA.length; i++) {
            double p = probsA[i];
            double q = probsB[i];
            double m = 0.5 * (p + q);
            sum += 0.5 * (xLogXOverM(p, m) + xLogXOverM(q, m));
        }
        return sum / n;
    }

    /** {@code x·ln(x/m)}, 0 when x = 0 (then m ≥ 0 may be 0 too). */
    private static double xLogXOverM(double x, double m) {
        return x == 0 ? 0 : x * Math.log(x / m);
    }

    private static int checkPair(float[] probsA, float[] probsB, int classes) {
        Objects.requireNonNull(probsA, "probsA");
        Objects.requireNonNull(probsB, "probsB");
        Inputs.sameLength("probsA", probsA.length, "probsB", probsB.length);
        Inputs.probabilities("probsB", probsB, classes);
        return Inputs.probabilities("probsA", probsA, classes);
    }
}
