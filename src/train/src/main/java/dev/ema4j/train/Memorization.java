package dev.ema4j.train;

/**
 * How a model fits noisy training labels: accuracy on the clean-labelled samples, and on the noisy-labelled
 * ones the fraction predicted as their noisy label (memorized) and as their true label.
 *
 * @param cleanAccuracy accuracy on samples whose label is clean
 * @param memorized fraction of noisy samples predicted as their noisy label
 * @param corrected fraction of noisy samples predicted as their true label
 * @param noisySamples number of noisy samples measured
 */
public record Memorization(double cleanAccuracy, double memorized, double corrected, int noisySamples) {
}
