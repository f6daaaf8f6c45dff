package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.SGD;

import dev.ema4j.study.report.Verdict.Expect;
import java.util.List;

/** Does the EMA make the learning-rate decay unnecessary? The selected EMA under a constant LR vs SGD under cosine. */
final class LrSection implements Section {

    /** An EMA this far below SGD (a fraction: 0.5 pp) or above still counts as matching. */
    static final double TOLERANCE = 0.005;

    static final Claim CLAIM = new Claim("EMA needs less LR decay",
            "with cosine LR the best EMA comes mid-training; EMA matches SGD without the full decay",
            "per seed, selected EMA under a constant LR − final SGD under cosine LR (test accuracy) + "
                    + Fmt.f("%.1f", 100 * TOLERANCE) + " pp (an EMA at most that far below SGD still matches); "
                    + Verdict.PAIRED_RULE);

    @Override
    public String name() {
        return "lr";
    }

    @Override
    public String title() {
        return "EMA without learning-rate decay";
    }

    @Override
    public List<Claim> claims() {
        return List.of(CLAIM);
    }

    @Override
    public Rendered render(Inputs in) {
        Group cosine = in.group("cosine");
        Group constant = in.group("constant");
        Rendered r = new Rendered().text("Runs: `cosine` and `constant` (same model, data, peak LR and EMAs). "
                + "The EMA is the decay and epoch selected on validation accuracy; SGD is the live model at the "
                + "final epoch.");
        r.table(Table.of("Test accuracy by LR schedule", "model", "LR schedule", "seeds", "test accuracy (%)")
                .row("SGD (final)", "cosine", seeds(cosine), Stat.percent(sgd(cosine)))
                .row("SGD (final)", "constant", seeds(constant), Stat.percent(sgd(constant)))
                .row("selected EMA", "cosine", seeds(cosine), Stat.percent(ema(cosine)))
                .row("selected EMA", "constant", seeds(constant), Stat.percent(ema(constant))));
        return r.verdict(verdict(in));
    }

    /** The verdict on {@link #CLAIM}: seeds paired by number (the groups run the same seeds). */
    static Verdict verdict(Inputs in) {
        double[] sgdCosine = sgd(in.group("cosine"));
        double[] emaConstant = ema(in.group("constant"));
        int n = Math.min(sgdCosine.length, emaConstant.length);
        double[] margins = new double[n];
        for (int i = 0; i < n; i++) {
            margins[i] = emaConstant[i] - sgdCosine[i] + TOLERANCE;
        }
        String ours = "SGD cosine " + Fmt.pct(Stat.mean(sgdCosine)) + " vs EMA constant "
                + Fmt.pct(Stat.mean(emaConstant)) + " (" + Fmt.pp(Stat.mean(emaConstant) - Stat.mean(sgdCosine))
                + ")";
        return Verdict.paired(CLAIM, ours, "EMA constant − SGD cosine + " + Fmt.f("%.1f pp", 100 * TOLERANCE),
                Expect.ABOVE_0, Fmt::pp, margins);
    }

    private static double[] sgd(Group g) {
        return g.each(c -> c.last(SGD, "test").accuracy());
    }

    private static double[] ema(Group g) {
        return g.each(c -> c.testAccuracy(c.byValAccuracy()));
    }

    private static String seeds(Group g) {
        return Integer.toString(g.cells().size());
    }
}
