package dev.ema4j.train;

/** Receives each epoch's report as training runs. */
@FunctionalInterface
public interface TrainingCallback {

    void onEpoch(EpochReport report);
}
