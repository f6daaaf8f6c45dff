package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.report.Verdict.Expect;
import dev.ema4j.study.report.Verdict.Outcome;
import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Test accuracy of SGD and its EMAs along training under cosine, constant and step learning rates. */
final class DynamicsSection implements Section {

    /** The best EMA should peak before this fraction of the epochs. */
    static final double PEAK_BEFORE = 0.75;

    static final List<String> SCHEDULES = List.of("cosine", "constant", "step", "overfit");

    static final Claim GENERALIZES = new Claim("EMA generalizes better", "77.63 → 78.55 (C100/ResNet-18)",
            "cosine runs: test accuracy of the EMA selected on validation (decay and epoch) − final SGD; "
                    + Verdict.PAIRED_RULE);
    static final Claim EARLY = new Claim("EMA is strong early",
            "EMA beats SGD from the first epochs, while the LR is large",
            "cosine runs: lead = test accuracy of the EMA chosen on validation at each epoch (the decay of the "
                    + "highest validation accuracy there) − SGD's, averaged over the evaluated epochs among the first "
                    + "⌈E/3⌉ of E; " + Verdict.PAIRED_RULE);
    static final Claim PEAK = new Claim("best EMA before 3/4 of the budget", "best EMA always before 3/4 of the budget",
            "`overfit` runs (cosine LR, training loss near 0): e/E per seed, with e the epoch (from 1) of the highest "
                    + "validation accuracy of any EMA (first on ties); reproduced if every seed (at least 3) has "
                    + "e/E < " + PEAK_BEFORE + " (the paper: always), not reproduced if most seeds do not, else "
                    + "inconclusive");

    @Override
    public String name() {
        return "dynamics";
    }

    @Override
    public String title() {
        return "Training dynamics: three LR schedules and an overfitting budget";
    }

    @Override
    public List<Claim> claims() {
        return List.of(GENERALIZES, EARLY, PEAK);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Rendered r = new Rendered().text("Runs: `cosine`, `constant` and `step` (see Setup), and `overfit` (cosine, "
                + "a wider network on 4k images without weight decay for 60 epochs, until the training loss is near "
                + "0). Per epoch, the test accuracy of SGD (the live model, BatchNorm statistics recomputed for its "
                + "weights, since its running statistics lag them) and of each EMA (statistics recomputed). The "
                + "selected EMA is the decay and epoch of the best validation accuracy (the paper's protocol); the early lead "
                + "compares SGD with the decay of the highest validation accuracy at each epoch. Epochs count from "
                + "1.");
        Table t = Table.of("Test accuracy by run (mean ± std over seeds)", "run", "seeds",
                "final training loss", "final SGD (%)", "selected EMA (%)", "selected decay @ epoch, per seed",
                "peak epoch of the EMAs (validation) / epochs",
                "early lead of the EMA chosen on validation (pp)");
        Map<String, String> plots = new LinkedHashMap<>();
        for (String s : SCHEDULES) {
            Group g = in.group(s);
            t.row(s, Integer.toString(g.cells().size()), Stat.of(4, g.each(Cell::finalTrainLoss)),
                    Stat.percent(g.each(c -> c.last(g.live(), "test").accuracy())),
                    Stat.percent(g.each(c -> c.testAccuracy(c.byValAccuracy()))), choices(g),
                    Stat.of(2, g.each(DynamicsSection::peakFraction)),
                    Stat.of(2, g.each(c -> 100 * earlyLead(c))));
            String file = "dynamics-" + s + ".png";
            Plots.lines(in.plots().resolve(file), "Test accuracy, " + s + " (" + g.seedsNote() + ")", "epoch",
                    "test accuracy (%)", false, g.curves("test", VariantRecord::accuracy));
            plots.put(file, "test accuracy per epoch, " + s);
        }
        r.table(t);
        plots.forEach(r::plot);

        Group cosine = in.group("cosine");
        double[] sgd = cosine.each(c -> c.last(cosine.live(), "test").accuracy());
        double[] selected = cosine.each(c -> c.testAccuracy(c.byValAccuracy()));
        double[] gains = Stat.difference(selected, sgd);
        r.verdict(Verdict.paired(GENERALIZES, "final SGD " + Fmt.pct(Stat.mean(sgd)) + " → selected EMA "
                + Fmt.pct(Stat.mean(selected)) + " (" + Fmt.pp(Stat.mean(gains)) + ")", "EMA − SGD",
                Expect.ABOVE_0, Fmt::pp, gains));

        double[] leads = cosine.each(DynamicsSection::earlyLead);
        if (Double.isNaN(Stat.mean(leads))) {
            r.verdict(Verdict.of(EARLY, "—", Outcome.INCONCLUSIVE, "no evaluated epoch in the first third"));
        } else {
            r.verdict(Verdict.paired(EARLY, "mean early lead " + Fmt.pp(Stat.mean(leads)), "lead", Expect.ABOVE_0,
                    Fmt::pp, leads));
        }

        double[] peaks = in.group("overfit").each(DynamicsSection::peakFraction);
        long before = Arrays.stream(peaks).filter(p -> p < PEAK_BEFORE).count();
        String peakText = "peaks at " + Arrays.stream(peaks).mapToObj(p -> Fmt.f("%.2f", p))
                .collect(Collectors.joining(", ")) + " of the epochs";
        String counted = before + " of " + peaks.length + " seeds before " + PEAK_BEFORE;
        return r.verdict(peaks.length >= 3 && before == peaks.length
                ? Verdict.of(PEAK, peakText, Outcome.REPRODUCED, counted)
                : 2 * before < peaks.length ? Verdict.of(PEAK, peakText, Outcome.NOT_REPRODUCED, counted)
                : Verdict.of(PEAK, peakText, Outcome.INCONCLUSIVE, counted + (peaks.length < 3 ? " (fewer than 3 "
                        + "seeds)" : "")));
    }

    /** The highest validation accuracy among the EMAs at an epoch. */
    private static double bestEmaVal(Cell c, EpochRecord e) {
        return c.record(e, ema(c.chosenEmaAt(e)), "val").accuracy();
    }

    /** e/E for the first epoch e (from 1) of the highest validation accuracy of any EMA. */
    static double peakFraction(Cell c) {
        EpochRecord peak = null;
        for (EpochRecord e : c.evaluated()) {
            if (peak == null || bestEmaVal(c, e) > bestEmaVal(c, peak)) {
                peak = e;
            }
        }
        return (peak.epoch() + 1.0) / c.spec().epochs();
    }

    /**
     * Mean of the test accuracy of the EMA chosen on validation − SGD's over the evaluated epochs among the first
     * ⌈E/3⌉; NaN if none.
     */
    static double earlyLead(Cell c) {
        int third = (c.spec().epochs() + 2) / 3;
        return c.evaluated().stream().filter(e -> e.epoch() < third)
                .mapToDouble(e -> c.record(e, ema(c.chosenEmaAt(e)), "test").accuracy()
                        - c.record(e, c.live(), "test").accuracy()).average().orElse(Double.NaN);
    }

    private static String choices(Group g) {
        return g.cells().stream().map(c -> {
            Cell.Choice ch = c.byValAccuracy();
            return Fmt.decay(c.decay(ch.k())) + " @ " + (ch.epoch() + 1);
        }).collect(Collectors.joining("; ")) + " (" + g.selectedDecays() + ")";
    }
}
