package dev.ema4j.metrics;

/**
 * Summary of one classifier on one labelled set (shapes and checks: {@linkplain dev.ema4j.metrics package docs}).
 *
 * @param accuracy top-1 accuracy, {@link Classification#accuracy}
 * @param nll mean negative log-likelihood, {@link Classification#nll}
 * @param eceEqualMass ECE with {@link Binning#EQUAL_MASS} bins, {@link Calibration#ece}
 * @param eceEqualWidth ECE with {@link Binning#EQUAL_WIDTH} bins, {@link Calibration#ece}
 */
public record Evaluation(double accuracy, double nll, double eceEqualMass, double eceEqualWidth) {

    /**
     * Evaluates with the paper's {@value Calibration#PAPER_EQUAL_MASS_BINS} equal-mass bins and the common
     * {@value Calibration#COMMON_EQUAL_WIDTH_BINS} equal-width bins.
     */
    public static Evaluation of(float[] probs, int classes, int[] labels) {
        return of(probs, classes, labels, Calibration.PAPER_EQUAL_MASS_BINS, Calibration.COMMON_EQUAL_WIDTH_BINS);
    }

    /** Evaluates with the given numbers of equal-mass and equal-width bins. */
    public static Evaluation of(float[] probs, int classes, int[] labels, int equalMassBins, int equalWidthBins) {
        Inputs.bins("equalMassBins", equalMassBins);
        Inputs.bins("equalWidthBins", equalWidthBins);
        return new Evaluation(
                Classification.accuracy(probs, classes, labels),
                Classification.nll(probs, classes, labels),
                Calibration.ece(probs, classes, labels, Binning.EQUAL_MASS, equalMassBins),
                Calibration.ece(probs, classes, labels, Binning.EQUAL_WIDTH, equalWidthBins));
    }
}
