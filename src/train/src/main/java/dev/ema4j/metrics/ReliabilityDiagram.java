package dev.ema4j.metrics;

import java.util.List;
import java.util.Objects;

/**
 * Per-bin calibration data of a classifier, in increasing confidence, for reliability diagrams and the ECE.
 *
 * @param binning how samples were assigned to bins
 * @param bins the bins, in increasing confidence
 */
public record ReliabilityDiagram(Binning binning, List<Bin> bins) {

    /** Copies {@code bins}. */
    public ReliabilityDiagram {
        Objects.requireNonNull(binning, "binning");
        bins = List.copyOf(bins);
    }

    /**
     * One bin.
     *
     * @param lower the bin's lower bound: {@code b/B} for {@link Binning#EQUAL_WIDTH}, the smallest confidence in it
     *     for {@link Binning#EQUAL_MASS} (NaN if empty)
     * @param upper the bin's upper bound: {@code (b+1)/B}, or the largest confidence in it (NaN if empty)
     * @param count number of samples in the bin
     * @param meanConfidence mean top-1 confidence of its samples, NaN if empty
     * @param accuracy fraction of its samples whose top-1 class is the label, NaN if empty
     */
    public record Bin(double lower, double upper, int count, double meanConfidence, double accuracy) {

        static Bin of(double lower, double upper, int count, double confidenceSum, int correct) {
            return new Bin(lower, upper, count, confidenceSum / count, (double) correct / count);
        }
    }

    /** Number of samples N, the sum of the bin counts. */
    public int samples() {
        int n = 0;
        for (Bin b : bins) {
            n += b.count();
        }
        return n;
    }

    /**
     * Expected calibration error {@code ECE = Σ_b (n_b/N)·|acc_b − conf_b|} over the bins, with bin b holding
     * {@code n_b} samples of accuracy {@code acc_b} and mean confidence {@code conf_b}; empty bins add nothing.
     */
    public double ece() {
        double n = samples();
        double ece = 0;
        for (Bin b : bins) {
            if (b.count() > 0) {
                ece += b.count() / n * Math.abs(b.accuracy() - b.meanConfidence());
            }
        }
        return ece;
    }
}
