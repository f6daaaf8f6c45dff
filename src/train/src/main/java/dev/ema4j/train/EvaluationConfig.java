package dev.ema4j.train;

/**
 * What an evaluation measures: each EMA model with its BatchNorm statistics (a) averaged EMAN-style and/or (b)
 * recomputed by a pass over training data in train mode; memorization of noisy training labels on the first
 * {@code memorizationSamples} training samples (0 for none); ECE bin counts; how often.
 *
 * @param averagedStats evaluate the EMA models with the EMA of the BatchNorm statistics
 * @param recomputedStats evaluate the EMA models with statistics recomputed for their weights
 * @param recomputeBatches training batches of the recompute pass; 0 for a full pass
 * @param memorizationSamples training samples to measure memorization on; 0 for none
 * @param equalMassBins ECE bins of equal mass (the paper: 100)
 * @param equalWidthBins ECE bins of equal width (common: 15)
 * @param everyEpochs evaluate after every {@code everyEpochs}-th epoch (and after the last)
 */
public record EvaluationConfig(boolean averagedStats, boolean recomputedStats, int recomputeBatches,
                               int memorizationSamples, int equalMassBins, int equalWidthBins, int everyEpochs) {

    public EvaluationConfig {
        if (recomputeBatches < 0 || memorizationSamples < 0 || equalMassBins < 1 || equalWidthBins < 1
                || everyEpochs < 1) {
            throw new IllegalArgumentException("evaluation config " + recomputeBatches + " recompute batches, "
                    + memorizationSamples + " memorization samples, " + equalMassBins + "/" + equalWidthBins
                    + " bins, every " + everyEpochs + " epochs: counts must be >= 0, bins and every >= 1");
        }
    }

    /** Both BatchNorm treatments, a full recompute pass, no memorization, 100 equal-mass and 15 equal-width bins. */
    public static EvaluationConfig defaults() {
        return new EvaluationConfig(true, true, 0, 0, 100, 15, 1);
    }

    public EvaluationConfig withRecomputeBatches(int batches) {
        return new EvaluationConfig(averagedStats, recomputedStats, batches, memorizationSamples, equalMassBins,
                equalWidthBins, everyEpochs);
    }

    public EvaluationConfig withMemorizationSamples(int samples) {
        return new EvaluationConfig(averagedStats, recomputedStats, recomputeBatches, samples, equalMassBins,
                equalWidthBins, everyEpochs);
    }

    public EvaluationConfig withStats(boolean averaged, boolean recomputed) {
        return new EvaluationConfig(averaged, recomputed, recomputeBatches, memorizationSamples, equalMassBins,
                equalWidthBins, everyEpochs);
    }

    public EvaluationConfig withEveryEpochs(int every) {
        return new EvaluationConfig(averagedStats, recomputedStats, recomputeBatches, memorizationSamples,
                equalMassBins, equalWidthBins, every);
    }
}
