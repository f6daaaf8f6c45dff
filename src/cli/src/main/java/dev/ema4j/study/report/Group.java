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

    /** Per evaluated epoch, {@code metric} of {@code variant} on {@code set} of each seed: [epoch][seed]. */
    double[][] perEpoch(String variant, String set, ToDoubleFunction<VariantRecord> metric) {
        double[][] v = new double[epochs().length][cells.size()];
        for (int s = 0; s < cells.size(); s++) {
            Cell c = cells.get(s);
            List<EpochRecord> evaluated = c.evaluated();
            for (int i = 0; i < v.length; i++) {
                v[i][s] = metric.applyAsDouble(c.record(evaluated.get(i), variant, set));
            }
        }
        return v;
    }

    /** The live model's variant of these cells: with recomputed statistics when they have it. */
    String live() {
        return cells.stream().allMatch(c -> c.live().equals(Cell.SGD_RECOMPUTED)) ? Cell.SGD_RECOMPUTED : Cell.SGD;
    }

    /** A line of 100 × {@code metric} of {@code variant} per epoch: mean over seeds, error bars ± their std. */
    Plots.Line curve(String name, String variant, String set, ToDoubleFunction<VariantRecord> metric) {
        double[][] v = perEpoch(variant, set, metric);
        double[] mean = new double[v.length];
        double[] std = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            mean[i] = 100 * Stat.mean(v[i]);
            std[i] = 100 * Stat.std(v[i]);
        }
        return new Plots.Line(name, epochs(), mean, cells.size() > 1 ? std : null);
    }

    /**
     * Lines of SGD (the live model, {@link #live}) and each EMA (recomputed statistics): 100 × {@code metric} on
     * {@code set}, mean ± std over seeds.
     */
    List<Plots.Line> curves(String set, ToDoubleFunction<VariantRecord> metric) {
        List<Plots.Line> lines = new ArrayList<>();
        lines.add(curve(live().equals(Cell.SGD) ? "SGD" : "SGD (statistics recomputed)", live(), set, metric));
        for (int k = 0; k < spec().decays().size(); k++) {
            lines.add(curve("EMA decay " + Fmt.decay(spec().decays().get(k)), Cell.ema(k), set, metric));
        }
        return lines;
    }

    /**
     * How often each decay was selected on validation (decay and epoch, {@link Cell#byValAccuracy}) across the seeds,
     * e.g. {@code "0.968 ×2, 0.992 ×1"}, in decay order.
     */
    String selectedDecays() {
        int[] counts = new int[spec().decays().size()];
        cells.forEach(c -> counts[c.byValAccuracy().k()]++);
        List<String> parts = new ArrayList<>();
        for (int k = 0; k < counts.length; k++) {
            if (counts[k] > 0) {
                parts.add(Fmt.decay(spec().decays().get(k)) + " ×" + counts[k]);
            }
        }
        return String.join(", ", parts);
    }

    /** "mean ± std over N seeds" for a chart title. */
    String seedsNote() {
        return cells.size() == 1 ? "one seed" : "mean ± std over " + cells.size() + " seeds";
    }
}
