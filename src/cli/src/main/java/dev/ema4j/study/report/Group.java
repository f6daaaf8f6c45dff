package dev.ema4j.study.report;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.RunSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * The cells of one run group, one per seed in seed order; they share their spec but for the seed.
 *
 * @param name the group ({@code cosine}, {@code noise40}, …)
 * @param cells at least one
 */
record Group(String name, List<Cell> cells) {

    Group {
        cells = List.copyOf(cells);
        if (cells.isEmpty()) {
            throw new IllegalArgumentException("group " + name + " has no cells");
        }
    }

    /** The spec of the first seed. */
    RunSpec spec() {
        return cells.get(0).spec();
    }

    /** {@code f} of each cell, in seed order. */
    double[] each(ToDoubleFunction<Cell> f) {
        return cells.stream().mapToDouble(f).toArray();
    }

    /** The evaluated epochs, counted from 1 (the plots' x axis). */
    double[] epochs() {
        return cells.get(0).evaluated().stream().mapToDouble(e -> e.epoch() + 1).toArray();
    }

    /** Per evaluated epoch, {@code metric} of {@code variant} on {@code set}, averaged over the seeds. */
    private double[] meanCurve(String variant, String set, ToDoubleFunction<VariantRecord> metric) {
        double[] y = new double[epochs().length];
        for (Cell c : cells) {
            List<EpochRecord> evaluated = c.evaluated();
            for (int i = 0; i < y.length; i++) {
                y[i] += metric.applyAsDouble(c.record(evaluated.get(i), variant, set)) / cells.size();
            }
        }
        return y;
    }

    /** Lines of SGD and each EMA (recomputed statistics): 100 × {@code metric} on {@code set}, mean over seeds. */
    List<Plots.Line> curves(String set, ToDoubleFunction<VariantRecord> metric) {
        List<Plots.Line> lines = new ArrayList<>();
        lines.add(new Plots.Line("SGD", epochs(), percent(meanCurve(Cell.SGD, set, metric))));
        for (int k = 0; k < spec().decays().size(); k++) {
            lines.add(new Plots.Line("EMA decay " + Fmt.decay(spec().decays().get(k)), epochs(),
                    percent(meanCurve(Cell.ema(k), set, metric))));
        }
        return lines;
    }

    private static double[] percent(double[] fractions) {
        double[] p = fractions.clone();
        for (int i = 0; i < p.length; i++) {
            p[i] *= 100;
        }
        return p;
    }
}
