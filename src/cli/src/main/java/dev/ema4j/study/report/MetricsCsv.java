package dev.ema4j.study.report;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.RunSpec;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.StringJoiner;

/**
 * {@code metrics.csv}: one row per cell, evaluated epoch, variant and set, with every per-epoch metric. Epochs
 * count from 1; {@code decay} is empty for {@code sgd}, SWA, the post-hoc rebuilds and a snapshotting run's
 * power-function EMAs ({@code ema<k>} past the decays: σ_rel 0.05 and 0.10); the memorization columns are empty
 * except on {@code train}.
 */
final class MetricsCsv {

    static final String HEADER = "cell,group,seed,epoch,step,lr,train_loss,train_accuracy,variant,decay,set,"
            + "accuracy,nll,ece_equal_mass,ece_equal_width,clean_accuracy,memorized,corrected";

    private MetricsCsv() {
    }

    static void write(Path file, List<Cell> cells) throws IOException {
        try (Writer w = Files.newBufferedWriter(file)) {
            w.write(HEADER + "\n");
            for (Cell c : cells) {
                RunSpec s = c.spec();
                for (EpochRecord e : c.evaluated()) {
                    for (VariantRecord v : e.evaluations()) {
                        StringJoiner row = new StringJoiner(",", "", "\n");
                        row.add(s.key()).add(s.group()).add(Long.toString(s.seed()))
                                .add(Integer.toString(e.epoch() + 1)).add(Long.toString(e.step()))
                                .add(Double.toString(e.lr())).add(Double.toString(e.trainLoss()))
                                .add(Double.toString(e.trainAccuracy())).add(v.variant())
                                .add(decay(s, v.variant())).add(v.set()).add(Double.toString(v.accuracy()))
                                .add(Double.toString(v.nll())).add(Double.toString(v.eceEqualMass()))
                                .add(Double.toString(v.eceEqualWidth())).add(orEmpty(v.cleanAccuracy()))
                                .add(orEmpty(v.memorized())).add(orEmpty(v.corrected()));
                        w.write(row.toString());
                    }
                }
            }
        }
    }

    /** The decay of {@code ema<k>/…}, empty for other variants. */
    private static String decay(RunSpec s, String variant) {
        int slash = variant.indexOf('/');
        if (!variant.startsWith("ema") || slash <= 3) {
            return "";
        }
        int k = Integer.parseInt(variant.substring(3, slash));
        return k < s.decays().size() ? Double.toString(s.decays().get(k)) : "";
    }

    private static String orEmpty(Double d) {
        return d == null ? "" : d.toString();
    }
}
