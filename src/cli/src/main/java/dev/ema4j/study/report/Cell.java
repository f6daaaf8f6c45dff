package dev.ema4j.study.report;

import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.TensorInfo;
import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.Selection;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.RunSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * One published cell (layout: {@link dev.ema4j.study.CellRunner}): its result and, on demand, its predictions.
 * Variants: {@link #SGD}, {@link #ema}(k) with recomputed BatchNorm statistics (what "EMA" means in the report) and
 * {@link #averaged}(k) with EMAN-averaged statistics.
 *
 * @param result the cell's {@code result.json}
 * @param dir the cell's directory
 */
record Cell(CellResult result, Path dir) {

    static final String SGD = "sgd";

    /** The live weights with BatchNorm statistics recomputed for them. */
    static final String SGD_RECOMPUTED = "sgd/recomputed";
    static final String PREDICTIONS = "predictions.safetensors";

    /**
     * An EMA (recomputed statistics) and an epoch chosen on the validation set.
     *
     * @param k the EMA's index in the spec's decays
     * @param epoch 0-based
     */
    record Choice(int k, int epoch) {
    }

    /**
     * Predictions of one variant on one set.
     *
     * @param probs (N, C) probabilities
     * @param classes C
     * @param labels N labels
     */
    record Prediction(float[] probs, int classes, int[] labels) {
    }

    static String ema(int k) {
        return "ema" + k + "/recomputed";
    }

    static String averaged(int k) {
        return "ema" + k + "/averaged";
    }

    RunSpec spec() {
        return result.spec();
    }

    int emas() {
        return spec().decays().size();
    }

    double decay(int k) {
        return spec().decays().get(k);
    }

    /** The epochs that were evaluated, in order. */
    List<EpochRecord> evaluated() {
        return result.epochs().stream().filter(e -> !e.evaluations().isEmpty()).toList();
    }

    /** The record of {@code variant} on {@code set} at epoch {@code e}. */
    VariantRecord record(EpochRecord e, String variant, String set) {
        return e.evaluations().stream().filter(v -> v.variant().equals(variant) && v.set().equals(set)).findFirst()
                .orElseThrow(() -> new IllegalStateException("cell " + spec().key() + " has no " + variant + " on "
                        + set + " at epoch " + e.epoch()));
    }

    /** The record of {@code variant} on {@code set} at the 0-based {@code epoch}. */
    VariantRecord at(int epoch, String variant, String set) {
        EpochRecord e = result.epochs().stream().filter(r -> r.epoch() == epoch).findFirst()
                .orElseThrow(() -> new IllegalStateException("cell " + spec().key() + " has no epoch " + epoch));
        return record(e, variant, set);
    }

    /** The record of {@code variant} on {@code set} at the last evaluated epoch. */
    VariantRecord last(String variant, String set) {
        List<EpochRecord> e = evaluated();
        return record(e.get(e.size() - 1), variant, set);
    }

    /** The paper's selection: the EMA and epoch of the highest validation accuracy (first EMA on ties). */
    Choice byValAccuracy() {
        Choice best = null;
        double bestAccuracy = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < emas(); k++) {
            int epoch = selection(k).bestAccuracyEpoch();
            double a = at(epoch, ema(k), "val").accuracy();
            if (a > bestAccuracy) {
                best = new Choice(k, epoch);
                bestAccuracy = a;
            }
        }
        return best;
    }

    /** The paper's guideline for calibration, consistency and transfer: the EMA and epoch of the lowest val NLL. */
    Choice byValNll() {
        Choice best = null;
        double bestNll = Double.POSITIVE_INFINITY;
        for (int k = 0; k < emas(); k++) {
            int epoch = selection(k).bestNllEpoch();
            double nll = at(epoch, ema(k), "val").nll();
            if (nll < bestNll) {
                best = new Choice(k, epoch);
                bestNll = nll;
            }
        }
        return best;
    }

    /** Whether the cell evaluated {@code variant} (cells from before a variant existed lack it). */
    boolean has(String variant) {
        return evaluated().get(0).evaluations().stream().anyMatch(v -> v.variant().equals(variant));
    }

    /** Test accuracy of {@code variant} stopped early: at its evaluated epoch of the highest validation accuracy. */
    double earlyStoppedTestAccuracy(String variant) {
        return record(bestValEpoch(variant), variant, "test").accuracy();
    }

    /**
     * Test accuracy of the model of the highest validation accuracy among the live model (statistics recomputed when
     * the cell has them) and the EMAs (statistics recomputed), at any evaluated epoch.
     */
    double bestOnValidationTestAccuracy() {
        String live = live();
        VariantRecord bestVal = null;
        VariantRecord bestTest = null;
        for (EpochRecord e : evaluated()) {
            for (int k = -1; k < emas(); k++) {
                String v = k < 0 ? live : ema(k);
                VariantRecord val = record(e, v, "val");
                if (bestVal == null || val.accuracy() > bestVal.accuracy()) {
                    bestVal = val;
                    bestTest = record(e, v, "test");
                }
            }
        }
        return bestTest.accuracy();
    }

    /** The live model's variant: with recomputed statistics when the cell has it. */
    String live() {
        return has(SGD_RECOMPUTED) ? SGD_RECOMPUTED : SGD;
    }

    /** The mean training loss of the last epoch. */
    double finalTrainLoss() {
        List<EpochRecord> e = result.epochs();
        return e.get(e.size() - 1).trainLoss();
    }

    /** The EMA chosen on validation at an epoch: the decay of the highest validation accuracy (first on ties). */
    int chosenEmaAt(EpochRecord e) {
        int best = 0;
        for (int k = 1; k < emas(); k++) {
            if (record(e, ema(k), "val").accuracy() > record(e, ema(best), "val").accuracy()) {
                best = k;
            }
        }
        return best;
    }

    /** The evaluated epoch of the highest validation accuracy of {@code variant} (first on ties). */
    EpochRecord bestValEpoch(String variant) {
        EpochRecord best = null;
        for (EpochRecord e : evaluated()) {
            if (best == null || record(e, variant, "val").accuracy() > record(best, variant, "val").accuracy()) {
                best = e;
            }
        }
        return best;
    }

    /** Test accuracy of EMA {@code k} at its epoch of the highest validation accuracy. */
    double emaAtBestVal(int k) {
        return at(selection(k).bestAccuracyEpoch(), ema(k), "test").accuracy();
    }

    /** Validation accuracy of a chosen EMA at its epoch. */
    double valAccuracy(Choice c) {
        return at(c.epoch(), ema(c.k()), "val").accuracy();
    }

    /** Test accuracy of a chosen EMA at its epoch. */
    double testAccuracy(Choice c) {
        return at(c.epoch(), ema(c.k()), "test").accuracy();
    }

    /**
     * Reads tensor {@code <variant>|<set>|<criterion>} and {@code labels|<set>} of the predictions file.
     *
     * @param criterion {@code final}, {@code best_acc} or {@code best_nll}
     */
    Prediction prediction(String variant, String set, String criterion) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PREDICTIONS))) {
            TensorInfo p = tensor(f, variant + "|" + set + "|" + criterion);
            TensorInfo l = tensor(f, "labels|" + set);
            int n = Math.toIntExact(l.elementCount());
            int classes = Math.toIntExact(p.elementCount() / n);
            float[] probs = new float[n * classes];
            f.readF32(p, 0, probs, 0, probs.length);
            float[] labelValues = new float[n];
            f.readF32(l, 0, labelValues, 0, n);
            int[] labels = new int[n];
            for (int i = 0; i < n; i++) {
                labels[i] = (int) labelValues[i];
            }
            return new Prediction(probs, classes, labels);
        }
    }

    private Selection selection(int k) {
        Selection s = result.selections().get(ema(k));
        if (s == null) {
            throw new IllegalStateException("cell " + spec().key() + " has no selection for " + ema(k));
        }
        return s;
    }

    private static TensorInfo tensor(SafetensorsFile f, String name) throws IOException {
        return f.tensor(name).orElseThrow(() -> new IOException(f + " has no tensor \"" + name + "\""));
    }
}
