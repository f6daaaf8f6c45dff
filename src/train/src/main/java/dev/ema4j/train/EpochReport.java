package dev.ema4j.train;

import java.util.List;

/**
 * The end of an epoch: training loss and accuracy (of the live model, in train mode, averaged over the epoch's
 * batches) and, when the epoch was evaluated, every model variant on every evaluation set.
 *
 * @param epoch the epoch that ended (0-based)
 * @param step optimizer steps done so far
 * @param lr the learning rate of the epoch's last step
 * @param trainLoss mean loss over the epoch's batches
 * @param trainAccuracy accuracy over the epoch's batches
 * @param evaluations the evaluations (empty when the epoch was not evaluated)
 */
public record EpochReport(int epoch, long step, double lr, double trainLoss, double trainAccuracy,
                          List<ModelEvaluation> evaluations) {

    public EpochReport {
        evaluations = List.copyOf(evaluations);
    }
}
