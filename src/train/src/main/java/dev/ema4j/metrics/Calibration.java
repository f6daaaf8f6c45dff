package dev.ema4j.metrics;

import java.util.Objects;

/**
 * Expected calibration error (ECE, formula at {@link ReliabilityDiagram#ece()}) of a classifier from its (N, C)
 * probabilities (shapes and checks: {@linkplain dev.ema4j.metrics package docs}). A sample's confidence is its top-1
 * probability {@code max_c probs[n, c]}, and it is correct when its top-1 class (ties to the lowest index, as
 * {@link Classification#top1}) equals its label.
 */
public final class Calibration {

    /** Bins of the paper's ECE (Morales-Brotons et al. 2024), used with {@link Binning#EQUAL_MASS}. */
    public static final int PAPER_EQUAL_MASS_BINS = 100;

    /** The common ECE bin count (Guo et al. 2017), used with {@link Binning#EQUAL_WIDTH}. */
    public static final int COMMON_EQUAL_WIDTH_BINS = 15;

    private Calibration() {
    }

    /** The ECE with {@code bins} bins formed by {@code binning}. */
    public static double ece(float[] probs, int classes, int[] labels, Binning binning, int bins) {
        return reliability(probs, classes, labels, binning, bins).ece();
    }

    /** The {@code bins} bins formed by {@code binning}, with their counts, bounds, confidence and accuracy. */
    public static ReliabilityDiagram reliability(float[] probs, int classes, int[] labels, Binning binning,
                                                 int bins) {
        int n = Inputs.probabilities(probs, classes, labels);
        Objects.requireNonNull(binning, "binning");
        Inputs.bins("bins", bins);
        float[] confidence = new float[n];
        boolean[] correct = new boolean[n];
        for (int i = 0; i < n; i++) {
            int top = Classification.argmax(probs, i * classes, classes);
            confidence[i] = probs[i * classes + top];
            correct[i] = top == labels[i];
        }
        return new ReliabilityDiagram(binning, binning.bin(confidence, correct, bins));
    }
}
