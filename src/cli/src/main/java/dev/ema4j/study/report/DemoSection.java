package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.report.Verdict.Expect;
import java.io.IOException;
import java.util.List;
import java.util.function.Function;

/**
 * The demo: on clean labels, SGD against the EMA epoch by epoch (the early lead, or a tie); on 40%-noisy labels, the
 * best EMA against the better of SGD's last iterate and SGD stopped early, chosen on validation. The live model is scored with BatchNorm
 * statistics recomputed for its weights (its running statistics lag them while the learning rate is large).
 */
final class DemoSection implements Section {

    static final Claim EARLY = new Claim("EMA is strong early (clean labels)",
            "EMA beats SGD from the first epochs, while the LR is large",
            "demo-clean: per seed, test accuracy of the EMA chosen on validation at each epoch − SGD's (statistics "
                    + "recomputed), averaged over the first third of the epochs; " + Verdict.PAIRED_RULE);
    static final Claim GENERALIZES = new Claim("EMA generalizes better (clean labels)",
            "77.63 → 78.55 (C100/ResNet-18)",
            "demo-clean: per seed, test accuracy of the EMA selected on validation (decay and epoch) − the last "
                    + "iterate (statistics recomputed); " + Verdict.PAIRED_RULE);
    static final Claim ROBUST = new Claim("EMA is robust to label noise (40% noisy labels)",
            "CIFAR-100N: 55.47 → 65.15 (+9.7 pp)",
            "demo-noise40: per seed, test accuracy of the EMA selected on validation − that of SGD's last iterate "
                    + "or SGD stopped at its best validation epoch, whichever validates better (statistics "
                    + "recomputed); "
                    + Verdict.PAIRED_RULE);

    @Override
    public String name() {
        return "demo";
    }

    @Override
    public String title() {
        return "Demo: SGD against its EMAs";
    }

    @Override
    public List<Claim> claims() {
        return List.of(EARLY, GENERALIZES, ROBUST);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Group clean = in.group("demo-clean");
        Group noisy = in.group("demo-noise40");
        Rendered r = new Rendered().text("Runs: `demo-clean` and `demo-noise40`, " + clean.cells().size() + " and "
                + noisy.cells().size() + " seed(s). SGD is the live model with BatchNorm statistics recomputed for its "
                + "weights; its running statistics, used while training, lag the weights while the learning rate is "
                + "large (the column \"running statistics\" shows what they give). Every EMA has statistics recomputed "
                + "too. A difference whose 95% interval over the seeds contains 0 is a tie.");
        r.table(perEpoch(clean));
        Plots.lines(in.plots().resolve("demo-clean.png"), "Clean labels: test accuracy per epoch ("
                + clean.seedsNote() + ")", "epoch", "test accuracy (%)", false,
                clean.curves("test", VariantRecord::accuracy));
        r.plot("demo-clean.png", "clean labels, test accuracy per epoch");

        r.table(noisyTable(noisy));
        int validation = (int) Math.round(0.2 * noisy.spec().trainSamples());
        r.text("The noisy run validates on " + validation + " images with noisy labels, so what is chosen on them (the "
                + "EMA's decay and epoch, SGD's early-stopping epoch) is itself noisy; the study's label-noise runs "
                + "(2k to 48k images) have larger validation sets.");
        r.text("Under label noise the EMA's calibration error against the clean test labels is not a defect: a model "
                + "that fits the noisy label distribution instead of memorizing it gives its top class at most about "
                + "1 − r + r/10 = 64% probability at r = 40%, so it looks underconfident on clean labels, while a "
                + "model that memorized the noisy labels is confident again.");
        Plots.lines(in.plots().resolve("demo-noise40.png"), "40% noisy labels: test accuracy per epoch ("
                + noisy.seedsNote() + ")", "epoch", "test accuracy (%)", false,
                noisy.curves("test", VariantRecord::accuracy));
        r.plot("demo-noise40.png", "40% noisy labels, test accuracy per epoch");

        double[] leads = clean.each(DynamicsSection::earlyLead);
        r.verdict(Double.isNaN(Stat.mean(leads))
                ? Verdict.of(EARLY, "—", Verdict.Outcome.INCONCLUSIVE, "no evaluated epoch in the first third")
                : Verdict.paired(EARLY, "mean lead " + Fmt.pp(Stat.mean(leads)), "lead", Expect.ABOVE_0, Fmt::pp,
                        leads));
        double[] sgd = clean.each(c -> c.last(c.live(), "test").accuracy());
        double[] selected = clean.each(c -> c.testAccuracy(c.byValAccuracy()));
        r.verdict(Verdict.paired(GENERALIZES, Fmt.pct(Stat.mean(sgd)) + " → " + Fmt.pct(Stat.mean(selected)),
                "EMA − last iterate", Expect.ABOVE_0, Fmt::pp, Stat.difference(selected, sgd)));
        double[] better = noisy.each(NoiseSection::betterSgd);
        double[] best = noisy.each(c -> c.testAccuracy(c.byValAccuracy()));
        return r.verdict(Verdict.paired(ROBUST, Fmt.pct(Stat.mean(better)) + " → " + Fmt.pct(Stat.mean(best)),
                "EMA − better SGD", Expect.ABOVE_0, Fmt::pp, Stat.difference(best, better)));
    }

    /** Per epoch: SGD (recomputed and running statistics), the EMA chosen on validation there, their difference. */
    private static Table perEpoch(Group g) {
        Table t = Table.of("Clean labels: test accuracy per epoch (mean ± std over seeds)", "epoch",
                "SGD (%)", "SGD, running statistics (%)", "EMA chosen on validation (%)", "EMA − SGD (pp)",
                "95% interval (pp)", "reading");
        List<EpochRecord> epochs = g.cells().get(0).evaluated();
        for (int i = 0; i < epochs.size(); i++) {
            int e = i;
            double[] sgd = g.each(c -> c.record(c.evaluated().get(e), c.live(), "test").accuracy());
            double[] running = g.each(c -> c.record(c.evaluated().get(e), Cell.SGD, "test").accuracy());
            double[] emas = g.each(c -> {
                EpochRecord at = c.evaluated().get(e);
                return c.record(at, ema(c.chosenEmaAt(at)), "test").accuracy();
            });
            Paired p = Paired.of(Stat.difference(emas, sgd));
            t.row(Integer.toString(epochs.get(i).epoch() + 1), Stat.percent(sgd), Stat.percent(running),
                    Stat.percent(emas), Stat.percent(Stat.difference(emas, sgd)),
                    p.n() < 2 ? "—" : "[" + Fmt.pp(p.lo()) + ", " + Fmt.pp(p.hi()) + "]", reading(p));
        }
        return t;
    }

    /** "EMA ahead", "SGD ahead" or "tie" by the 95% interval; "one seed" without one. */
    static String reading(Paired p) {
        return p.n() < 2 ? "one seed" : p.above0() ? "EMA ahead" : p.below0() ? "SGD ahead" : "tie";
    }

    private static Table noisyTable(Group g) {
        Table t = Table.of("40% noisy labels: test set (mean ± std over seeds)", "model", "accuracy (%)", "NLL",
                "ECE 15 equal-width (%)");
        row(t, "SGD, last iterate", g, c -> c.last(c.live(), "test"));
        row(t, "SGD stopped early (best validation epoch)", g,
                c -> c.record(c.bestValEpoch(c.live()), c.live(), "test"));
        row(t, "EMA selected on validation (decay and epoch)", g,
                c -> c.at(c.byValAccuracy().epoch(), ema(c.byValAccuracy().k()), "test"));
        return t;
    }

    private static void row(Table t, String model, Group g, Function<Cell, VariantRecord> pick) {
        t.row(model, Stat.percent(g.each(c -> pick.apply(c).accuracy())), Stat.of(4, g.each(c -> pick.apply(c).nll())),
                Stat.percent(g.each(c -> pick.apply(c).eceEqualWidth())));
    }
}
