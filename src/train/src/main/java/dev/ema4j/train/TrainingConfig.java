package dev.ema4j.train;

import dev.ema4j.EmaConfig;
import dev.ema4j.data.Augmentation;
import dev.ema4j.optim.LrSchedule;
import dev.ema4j.optim.Sgd;
import java.util.Objects;

/**
 * A training run: epochs of shuffled batches, SGD with a per-step learning-rate schedule, EMAs of the weights
 * (and, EMAN-style, of the BatchNorm statistics) with {@code ema}'s decays and period, and what to evaluate.
 *
 * @param epochs number of passes over the training data
 * @param batchSize samples per step (at most the network's largest batch)
 * @param seed seeds shuffling and augmentation (the network's initialization has its own seed)
 * @param sgd the optimizer
 * @param lr the learning rate per optimizer step
 * @param ema the EMAs; null for none
 * @param augmentation training-time augmentation
 * @param evaluation what to evaluate after epochs
 */
public record TrainingConfig(int epochs, int batchSize, long seed, Sgd sgd, LrSchedule lr, EmaConfig ema,
                             Augmentation augmentation, EvaluationConfig evaluation) {

    public TrainingConfig {
        if (epochs < 1 || batchSize < 1) {
            throw new IllegalArgumentException("epochs is " + epochs + ", batchSize " + batchSize
                    + "; both must be >= 1");
        }
        Objects.requireNonNull(sgd, "sgd");
        Objects.requireNonNull(lr, "lr");
        Objects.requireNonNull(augmentation, "augmentation");
        Objects.requireNonNull(evaluation, "evaluation");
    }
}
