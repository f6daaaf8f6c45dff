package dev.ema4j.train;

import dev.ema4j.metrics.Evaluation;

/**
 * One model evaluated on one data set.
 *
 * @param model {@code "sgd"} for the live weights, {@code "ema"} for an EMA
 * @param shadow the EMA's index in the EMA config, −1 for the live weights
 * @param stats the BatchNorm statistics used: {@code "live"} (the running statistics of training),
 *     {@code "averaged"} (EMAN) or {@code "recomputed"} (by a pass over training batches for these weights)
 * @param set the data set's name
 * @param metrics accuracy, NLL and ECE
 * @param probabilities the per-sample class probabilities, {@code n × classes}, in data-set order
 * @param labels the labels evaluated against
 * @param memorization on the training set's first samples, or null
 */
public record ModelEvaluation(String model, int shadow, String stats, String set, Evaluation metrics,
                              float[] probabilities, int[] labels, Memorization memorization) {

    /**
     * A short name: {@code sgd} (live weights and statistics), {@code sgd/recomputed} (live weights, statistics
     * recomputed for them) or {@code ema1/recomputed}.
     */
    public String variant() {
        if (shadow < 0) {
            return stats.equals("live") ? model : model + "/" + stats;
        }
        return model + shadow + "/" + stats;
    }
}
