package dev.ema4j.study;

import java.util.List;
import java.util.Map;

/**
 * What a run wrote ({@code result.json} in its cell directory, beside {@code predictions.safetensors}).
 *
 * @param spec the run
 * @param environment backend, BLAS, Java, machine and ema4j version
 * @param seconds wall time
 * @param epochs per-epoch records
 * @param selections per model variant, the epochs chosen on the validation set
 * @param probeAccuracy per variant, the test accuracy of a linear probe on the held-out classes (transfer only)
 * @param posthoc the post-hoc sweep's fits ({@link RunSpec#snapshotEvery()} above 0; their evaluations are variants
 *     {@code posthoc<σ_rel>/recomputed} of the last epoch), else empty
 */
public record CellResult(RunSpec spec, Map<String, String> environment, double seconds, List<EpochRecord> epochs,
                         Map<String, Selection> selections, Map<String, Double> probeAccuracy,
                         List<PostHocFit> posthoc) {

    public CellResult {
        posthoc = posthoc == null ? List.of() : List.copyOf(posthoc);
    }

    /**
     * One width of the post-hoc sweep: how the snapshots expressed it.
     *
     * @param sigmaRel the rebuilt power-function EMA's width
     * @param t the time it was read at, in EMA updates
     * @param snapshots the snapshot files combined
     * @param relativeError the profile's relative L2 error ({@link dev.ema4j.posthoc.Combination#relativeError()})
     * @param amplification {@code Σ |weights|}
     */
    public record PostHocFit(double sigmaRel, double t, int snapshots, double relativeError, double amplification) {
    }

    /**
     * One epoch.
     *
     * @param epoch 0-based
     * @param step optimizer steps so far
     * @param lr learning rate of the epoch's last step
     * @param trainLoss mean training loss of the epoch (live model, train mode)
     * @param trainAccuracy training accuracy of the epoch (live model, train mode, on the possibly noisy labels)
     * @param evaluations empty when the epoch was not evaluated
     */
    public record EpochRecord(int epoch, long step, double lr, double trainLoss, double trainAccuracy,
                              List<VariantRecord> evaluations) {
    }

    /**
     * One model variant on one set at one epoch.
     *
     * @param variant {@code sgd}, {@code ema<k>/recomputed} or {@code ema<k>/averaged}
     * @param set {@code val}, {@code test} or {@code train} (memorization)
     * @param cleanAccuracy on {@code train}: accuracy on the clean-labelled samples, else null
     * @param memorized on {@code train}: fraction of noisy samples predicted as their noisy label, else null
     * @param corrected on {@code train}: fraction of noisy samples predicted as their true label, else null
     */
    public record VariantRecord(String variant, String set, double accuracy, double nll, double eceEqualMass,
                                double eceEqualWidth, Double cleanAccuracy, Double memorized, Double corrected) {
    }

    /**
     * The epochs of a variant chosen on the validation set (the paper's two stopping criteria).
     *
     * @param bestAccuracyEpoch epoch of the highest validation accuracy
     * @param bestNllEpoch epoch of the lowest validation NLL
     */
    public record Selection(int bestAccuracyEpoch, int bestNllEpoch) {
    }
}
