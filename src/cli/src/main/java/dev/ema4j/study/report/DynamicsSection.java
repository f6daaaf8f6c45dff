package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.SGD;
import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.report.Verdict.Outcome;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Test accuracy of SGD and its EMAs along training under cosine, constant and step learning rates. */
final class DynamicsSection implements Section {

    /** The best EMA should peak before this fraction of the epochs. */
    static final double PEAK_BEFORE = 0.75;

    static final List<String> SCHEDULES = List.of("cosine", "constant", "step");

    static final Claim GENERALIZES = new Claim("EMA generalizes better", "77.63 → 78.55 (C100/ResNet-18)",
            "cosine runs: gain = test accuracy of the selected EMA − final SGD per seed; reproduced if the mean gain "
                    + "exceeds one standard error of the gains (0 with one seed), not reproduced if it is ≤ 0, "
                    + "inconclusive in between");
    static final Claim EARLY = new Claim("EMA is strong early",
            "EMA beats SGD from the first epochs, while the LR is large",
            "cosine runs: lead = best EMA (highest test accuracy among the decays at that epoch) − SGD, averaged "
                    + "over the evaluated epochs among the first ⌈E/3⌉ of E and over seeds; reproduced if > 0, "
                    + "else not reproduced");
    static final Claim PEAK = new Claim("best EMA before 3/4 of the budget", "best EMA always before 3/4 of the budget",
            "cosine runs: e/E, with e the epoch (from 1) at which the best EMA's test accuracy peaks (first on ties), "
                    + "mean over seeds; reproduced if < " + PEAK_BEFORE + ", else not reproduced");

    @Override
    public String name() {
        return "dynamics";
    }

    @Override
    public String title() {
        return "Training dynamics under three LR schedules";
    }

    @Override
    public List<Claim> claims() {
        return List.of(GENERALIZES, EARLY, PEAK, LrSection.CLAIM);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Rendered r = new Rendered().text("Runs: `cosine`, `constant` and `step` (see Setup). Per epoch, the test "
                + "accuracy of SGD (the live model) and of each EMA (BatchNorm statistics recomputed). The selected "
                + "EMA is the decay and epoch of the best validation accuracy (the paper's protocol); \"best EMA\" at "
                + "an epoch is the decay with the highest test accuracy there. Epochs count from 1.");
        Table t = Table.of("Test accuracy by schedule (mean ± std over seeds)", "schedule", "seeds",
                "final SGD (%)", "selected EMA (%)", "selected decay @ epoch, per seed", "best-EMA peak epoch / epochs",
                "early lead of best EMA (pp)");
        Map<String, String> plots = new LinkedHashMap<>();
        for (String s : SCHEDULES) {
            Group g = in.group(s);
            t.row(s, Integer.toString(g.cells().size()), Stat.percent(g.each(c -> c.last(SGD, "test").accuracy())),
                    Stat.percent(g.each(c -> c.testAccuracy(c.byValAccuracy()))), choices(g),
                    Stat.of(2, g.each(DynamicsSection::peakFraction)),
                    Stat.of(2, g.each(c -> 100 * earlyLead(c))));
            String file = "dynamics-" + s + ".png";
            Plots.lines(in.plots().resolve(file), "Test accuracy, " + s + " LR (mean over " + g.cells().size()
                    + " seeds)", "epoch", "test accuracy (%)", false, g.curves("test", VariantRecord::accuracy));
            plots.put(file, "test accuracy per epoch, " + s + " LR");
        }
        r.table(t);
        plots.forEach(r::plot);

        Group cosine = in.group("cosine");
        double[] sgd = cosine.each(c -> c.last(SGD, "test").accuracy());
        double[] selected = cosine.each(c -> c.testAccuracy(c.byValAccuracy()));
        double[] gains = Stat.difference(selected, sgd);
        r.verdict(Verdict.gain(GENERALIZES, "final SGD " + Fmt.pct(Stat.mean(sgd)) + " → selected EMA "
                + Fmt.pct(Stat.mean(selected)) + " (" + Fmt.pp(Stat.mean(gains)) + ")", gains));

        double lead = Stat.mean(cosine.each(DynamicsSection::earlyLead));
        String leadText = "mean early lead " + Fmt.pp(lead);
        if (Double.isNaN(lead)) {
            r.verdict(Verdict.of(EARLY, "—", Outcome.INCONCLUSIVE, "no evaluated epoch in the first third"));
        } else if (lead > 0) {
            r.verdict(Verdict.of(EARLY, leadText, Outcome.REPRODUCED, "the best EMA leads SGD early on"));
        } else {
            r.verdict(Verdict.of(EARLY, leadText, Outcome.NOT_REPRODUCED, "the best EMA does not lead SGD early on"));
        }

        double peak = Stat.mean(cosine.each(DynamicsSection::peakFraction));
        String peakText = Fmt.f("peak at %.2f of the epochs", peak);
        r.verdict(peak < PEAK_BEFORE
                ? Verdict.of(PEAK, peakText, Outcome.REPRODUCED, Fmt.f("%.2f < %.2f", peak, PEAK_BEFORE))
                : Verdict.of(PEAK, peakText, Outcome.NOT_REPRODUCED, Fmt.f("%.2f ≥ %.2f", peak, PEAK_BEFORE)));
        return r.verdict(LrSection.verdict(in));
    }

    /** The highest test accuracy among the EMAs at an epoch. */
    private static double bestEma(Cell c, EpochRecord e) {
        double best = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < c.emas(); k++) {
            best = Math.max(best, c.record(e, ema(k), "test").accuracy());
        }
        return best;
    }

    /** e/E for the first epoch e (from 1) at which the best EMA's test accuracy peaks. */
    static double peakFraction(Cell c) {
        EpochRecord peak = null;
        for (EpochRecord e : c.evaluated()) {
            if (peak == null || bestEma(c, e) > bestEma(c, peak)) {
                peak = e;
            }
        }
        return (peak.epoch() + 1.0) / c.spec().epochs();
    }

    /** Mean of best EMA − SGD test accuracy over the evaluated epochs among the first ⌈E/3⌉; NaN if none. */
    static double earlyLead(Cell c) {
        int third = (c.spec().epochs() + 2) / 3;
        return c.evaluated().stream().filter(e -> e.epoch() < third)
                .mapToDouble(e -> bestEma(c, e) - c.record(e, SGD, "test").accuracy()).average().orElse(Double.NaN);
    }

    private static String choices(Group g) {
        return g.cells().stream().map(c -> {
            Cell.Choice ch = c.byValAccuracy();
            return Fmt.decay(c.decay(ch.k())) + " @ " + (ch.epoch() + 1);
        }).collect(Collectors.joining("; "));
    }
}
