package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.metrics.Binning;
import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.report.Verdict.Expect;
import dev.ema4j.study.report.Verdict.Outcome;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/** Training on symmetric label noise: test accuracy and memorization of the noisy training labels. */
final class NoiseSection implements Section {

    /** SGD has reached the memorization regime once it predicts at least this fraction of noisy labels. */
    static final double MEMORIZATION_REGIME = 0.5;

    static final List<String> RATES = List.of("noise20", "noise40");

    static final Claim ROBUST = new Claim("EMA is robust to label noise", "CIFAR-100N: 55.47 → 65.15 (+9.7 pp)",
            "40% noise: test accuracy of the EMA selected on validation − that of the better SGD baseline of the "
                    + "same seed, chosen on validation: the last iterate, or SGD stopped at its best validation epoch "
                    + "(BatchNorm statistics recomputed); "
                    + Verdict.PAIRED_RULE);
    static final Claim MEMORIZES_LESS = new Claim("EMA memorizes less",
            "at equal clean-train accuracy EMA 28.8% vs SGD 68.2% of noisy labels",
            "40% noise: memorized fraction of the selected EMA − SGD's, each interpolated at the highest "
                    + "clean-train accuracy both reach; inconclusive if SGD never memorized "
                    + Fmt.f("%.0f%%", 100 * MEMORIZATION_REGIME) + " of the noisy labels (mean over seeds: the regime "
                    + "the paper measured in), else " + Verdict.PAIRED_RULE + " (the paper's direction: < 0)");

    @Override
    public String name() {
        return "noise";
    }

    @Override
    public String title() {
        return "Label noise";
    }

    @Override
    public List<Claim> claims() {
        return List.of(ROBUST, MEMORIZES_LESS);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Rendered r = new Rendered().text("Runs: `noise20` and `noise40` (2k drawn images), and `noise40-10k` and "
                + "`noise40-all` (more images, fewer epochs), symmetric label noise on the training and "
                + "validation labels (the test labels are clean). Memorization is measured on the first training "
                + "samples (set `train`): of the noisy-labelled ones, the fraction predicted as their noisy label; "
                + "clean-train accuracy is the accuracy on the clean-labelled ones. The EMA compared is the one "
                + "selected on (noisy) validation accuracy.");
        Table accuracy = Table.of("Test accuracy under label noise (mean ± std over seeds)", "noise", "final SGD (%)",
                "SGD stopped early (%)", "selected EMA (%)", "gain over the better SGD (pp)",
                "decays selected (seeds)");
        Table memo = Table.of("Memorization at equal clean-train accuracy", "noise", "clean-train accuracy level (%)",
                "SGD memorized (%)", "selected EMA memorized (%)", "highest SGD memorization (%)",
                "memorization regime (SGD ≥ " + Fmt.f("%.0f%%", 100 * MEMORIZATION_REGIME) + ")");
        Table calibration = Table.of("Test ECE under label noise, before temperature scaling (mean ± std over "
                + "seeds; not a claim of the paper, which measured calibration on clean labels)", "noise",
                "SGD (final), 100 equal-mass (%)", "EMA (lowest val NLL), 100 equal-mass (%)",
                "SGD (final), 15 equal-width (%)", "EMA (lowest val NLL), 15 equal-width (%)");
        Map<String, String> plots = new LinkedHashMap<>();
        for (String rate : RATES) {
            Group g = in.group(rate);
            calibrationRow(calibration, rate, g);
            double[] selected = g.each(c -> c.testAccuracy(c.byValAccuracy()));
            accuracy.row(rate, Stat.percent(g.each(c -> c.last(c.live(), "test").accuracy())),
                    Stat.percent(g.each(c -> c.earlyStoppedTestAccuracy(c.live()))), Stat.percent(selected),
                    Stat.percent(Stat.difference(selected, g.each(NoiseSection::betterSgd))), g.selectedDecays());
            double[] maxSgd = g.each(c -> maxMemorized(c, c.live()));
            memo.row(rate, Stat.percent(g.each(NoiseSection::level)),
                    Stat.percent(g.each(c -> memorizedAt(c, c.live(), level(c)))),
                    Stat.percent(g.each(c -> memorizedAt(c, selectedEma(c), level(c)))), Stat.percent(maxSgd),
                    Stat.mean(maxSgd) >= MEMORIZATION_REGIME ? "reached" : "not reached");
            String a = "noise-" + rate + "-accuracy.png";
            String m = "noise-" + rate + "-memorization.png";
            Plots.lines(in.plots().resolve(a), "Test accuracy, " + rate, "epoch", "test accuracy (%)", false,
                    g.curves("test", VariantRecord::accuracy));
            Plots.lines(in.plots().resolve(m), "Memorized noisy training labels, " + rate, "epoch",
                    "noisy samples predicted as their noisy label (%)", false,
                    g.curves("train", VariantRecord::memorized));
            plots.put(a, "test accuracy per epoch, " + rate);
            plots.put(m, "memorization per epoch, " + rate);
        }
        r.table(accuracy).table(memo).table(calibration).text("Read the ECEs under noise with care: a model that "
                + "fits the noisy label distribution instead of memorizing it gives the class it ranks first a "
                + "probability of at most about 1 − r + r/10 (0.64 at r = 40%), so against clean test labels "
                + "it looks underconfident; a model that memorized the noisy labels is confident again. A low ECE "
                + "here does not mean a better model.");
        plots.forEach(r::plot);
        Group g40 = in.group("noise40");
        String againstClean = "noise-noise40-memorization-vs-clean.png";
        Plots.lines(in.plots().resolve(againstClean), "Memorization vs clean-train accuracy, noise40 (epoch means, "
                + g40.cells().size() + " seeds)", "clean-train accuracy (%)", "noisy samples predicted as their noisy "
                + "label (%)", false, memorizationAgainstClean(g40));
        r.plot(againstClean, "memorization against clean-train accuracy per model (the paper's view)");
        r.table(sizes(in));

        Group g = in.group("noise40");
        double[] sgd = g.each(NoiseSection::betterSgd);
        double[] ema = g.each(c -> c.testAccuracy(c.byValAccuracy()));
        String ours = Fmt.pct(Stat.mean(sgd)) + " → " + Fmt.pct(Stat.mean(ema)) + " ("
                + Fmt.pp(Stat.mean(ema) - Stat.mean(sgd)) + ")";
        r.verdict(Verdict.paired(ROBUST, ours, "EMA − better SGD", Expect.ABOVE_0, Fmt::pp,
                Stat.difference(ema, sgd)));

        double[] sgdMemo = g.each(c -> memorizedAt(c, c.live(), level(c)));
        double[] emaMemo = g.each(c -> memorizedAt(c, selectedEma(c), level(c)));
        double maxSgd = Stat.mean(g.each(c -> maxMemorized(c, c.live())));
        String memoOurs = "SGD " + Fmt.pct(Stat.mean(sgdMemo)) + "% vs EMA " + Fmt.pct(Stat.mean(emaMemo)) + "% at "
                + Fmt.pct(Stat.mean(g.each(NoiseSection::level))) + "% clean-train accuracy";
        if (maxSgd < MEMORIZATION_REGIME) {
            return r.verdict(Verdict.of(MEMORIZES_LESS, memoOurs, Outcome.INCONCLUSIVE, "SGD memorized at most "
                    + Fmt.pct(maxSgd) + "% < " + Fmt.f("%.0f%%", 100 * MEMORIZATION_REGIME)
                    + ": the memorization regime was not reached"));
        }
        return r.verdict(Verdict.paired(MEMORIZES_LESS, memoOurs, "EMA − SGD memorized", Expect.BELOW_0, Fmt::pp,
                Stat.difference(emaMemo, sgdMemo)));
    }

    /** The 40%-noise groups by training-set size. */
    static final List<String> SIZES = List.of("noise40", "noise40-10k", "noise40-all");

    /** The EMA's gain over the better SGD at each training-set size, with its paired interval. */
    private static Table sizes(Inputs in) {
        Table t = Table.of("40% noise by training-set size: test accuracy (mean ± std over seeds) and the EMA's gain "
                        + "over the better SGD baseline (paired, 95% interval)", "run", "drawn images", "epochs",
                "better SGD (%)", "selected EMA (%)", "gain (pp)", "95% interval (pp)", "reading");
        for (String name : SIZES) {
            Group g = in.group(name);
            double[] sgd = g.each(NoiseSection::betterSgd);
            double[] ema = g.each(c -> c.testAccuracy(c.byValAccuracy()));
            Paired p = Paired.of(Stat.difference(ema, sgd));
            t.row(name, g.spec().trainSamples() == 0 ? "all 60000" : Integer.toString(g.spec().trainSamples()),
                    Integer.toString(g.spec().epochs()), Stat.percent(sgd), Stat.percent(ema),
                    Stat.percent(Stat.difference(ema, sgd)),
                    p.n() < 2 ? "—" : "[" + Fmt.pp(p.lo()) + ", " + Fmt.pp(p.hi()) + "]", DemoSection.reading(p));
        }
        return t;
    }

    /** Per model, memorized against clean-train accuracy, each averaged over the seeds per evaluated epoch. */
    private static List<Plots.Line> memorizationAgainstClean(Group g) {
        List<Plots.Line> lines = new ArrayList<>();
        List<String> variants = new ArrayList<>(List.of(g.live()));
        List<String> names = new ArrayList<>(List.of("SGD"));
        for (int k = 0; k < g.spec().decays().size(); k++) {
            variants.add(ema(k));
            names.add("EMA decay " + Fmt.decay(g.spec().decays().get(k)));
        }
        for (int i = 0; i < variants.size(); i++) {
            double[][] clean = g.perEpoch(variants.get(i), "train", VariantRecord::cleanAccuracy);
            double[][] memorized = g.perEpoch(variants.get(i), "train", VariantRecord::memorized);
            double[] x = new double[clean.length];
            double[] y = new double[clean.length];
            for (int e = 0; e < x.length; e++) {
                x[e] = 100 * Stat.mean(clean[e]);
                y[e] = 100 * Stat.mean(memorized[e]);
            }
            lines.add(new Plots.Line(names.get(i), x, y));
        }
        return lines;
    }

    /**
     * The test accuracy of the better SGD baseline of a cell, chosen on validation: the last iterate or SGD stopped at
     * its best validation epoch, whichever has the higher validation accuracy (the live model, {@link Cell#live}).
     */
    static double betterSgd(Cell c) {
        String live = c.live();
        EpochRecord early = c.bestValEpoch(live);
        VariantRecord last = c.last(live, "val");
        return c.record(early, live, "val").accuracy() > last.accuracy() ? c.record(early, live, "test").accuracy()
                : c.last(live, "test").accuracy();
    }

    private static String selectedEma(Cell c) {
        return ema(c.byValAccuracy().k());
    }

    /** The highest clean-train accuracy that both SGD and the selected EMA reach. */
    static double level(Cell c) {
        return Math.min(maxOf(c, c.live(), VariantRecord::cleanAccuracy), maxOf(c, selectedEma(c),
                VariantRecord::cleanAccuracy));
    }

    private static double maxMemorized(Cell c, String variant) {
        return maxOf(c, variant, VariantRecord::memorized);
    }

    private static double maxOf(Cell c, String variant, Function<VariantRecord, Double> field) {
        return c.evaluated().stream().mapToDouble(e -> field.apply(c.record(e, variant, "train"))).max()
                .orElseThrow();
    }

    /**
     * The memorized fraction of {@code variant} when its clean-train accuracy first reaches {@code level}, linearly
     * interpolated between the evaluated epochs around that crossing (the first epoch's value if it starts above);
     * NaN if it never does.
     */
    static double memorizedAt(Cell c, String variant, double level) {
        double clean = Double.NaN;
        double memorized = Double.NaN;
        for (EpochRecord e : c.evaluated()) {
            VariantRecord v = c.record(e, variant, "train");
            if (v.cleanAccuracy() >= level) {
                return Double.isNaN(clean) ? v.memorized()
                        : memorized + (level - clean) / (v.cleanAccuracy() - clean) * (v.memorized() - memorized);
            }
            clean = v.cleanAccuracy();
            memorized = v.memorized();
        }
        return Double.NaN;
    }

    /** ECE of SGD at the final epoch and of the EMA of the lowest validation NLL, as the calibration experiment. */
    private static void calibrationRow(Table t, String rate, Group g) throws IOException {
        List<Cell.Prediction> sgd = new ArrayList<>();
        List<Cell.Prediction> ema = new ArrayList<>();
        for (Cell c : g.cells()) {
            sgd.add(c.prediction(c.live(), "test", "final"));
            ema.add(c.prediction(ema(c.byValNll().k()), "test", "best_nll"));
        }
        t.row(rate, ece(sgd, Binning.EQUAL_MASS), ece(ema, Binning.EQUAL_MASS), ece(sgd, Binning.EQUAL_WIDTH),
                ece(ema, Binning.EQUAL_WIDTH));
    }

    private static Stat ece(List<Cell.Prediction> seeds, Binning binning) {
        return Stat.percent(seeds.stream().mapToDouble(p -> CalibrationSection.ece(p.probs(), p, binning)).toArray());
    }
}
