package dev.ema4j.study.report;

import dev.ema4j.study.report.Verdict.Expect;
import java.util.Arrays;
import java.util.List;

/**
 * The learning rate: does the EMA make the LR decay unnecessary (the selected EMA under a constant LR against SGD
 * under cosine), and is the best peak LR the same for SGD and the EMA?
 */
final class LrSection implements Section {

    /** An EMA this far below SGD (a fraction: 0.5 pp) or above still counts as matching. */
    static final double TOLERANCE = 0.005;

    static final Claim CLAIM = new Claim("EMA needs less LR decay",
            "with cosine LR the best EMA comes mid-training; EMA matches SGD without the full decay",
            "per seed, selected EMA under a constant LR − final SGD under cosine LR (test accuracy) + "
                    + Fmt.f("%.1f", 100 * TOLERANCE) + " pp (an EMA at most that far below SGD still matches); "
                    + Verdict.PAIRED_RULE);

    /** The peak-LR sweep under cosine: its groups and their peak LRs. */
    static final List<String> SWEEP = List.of("base12k-lr0.05", "base12k", "base12k-lr0.2");

    static final Claim SAME_LR = new Claim("the same initial LR is best for SGD and the EMA",
            "use the same initial LR as for plain SGD",
            "`base12k` runs at three peak LRs: the best LR of SGD (final epoch, statistics recomputed) and of the EMA "
                    + "(selected on validation), each by mean validation accuracy over seeds; then per seed the EMA's "
                    + "test accuracy at SGD's best LR − at its own (0 when they are the same LR); "
                    + Verdict.withinRule(Fmt.pp(AblationSections.MARGIN).replace("+", "")));

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
        return List.of(CLAIM, SAME_LR);
    }

    @Override
    public Rendered render(Inputs in) {
        Group cosine = in.group("cosine");
        Group constant = in.group("constant");
        Rendered r = new Rendered().text("Runs: `cosine` and `constant` (same model, data, peak LR and EMAs), and "
                + "`base12k` at peak LRs 0.05, 0.1 and 0.2 (cosine on 12k drawn images). The EMA is the decay and epoch "
                + "selected on validation accuracy; SGD is the live model at the final epoch, BatchNorm statistics "
                + "recomputed.");
        r.table(Table.of("Test accuracy by LR schedule", "model", "LR schedule", "seeds", "test accuracy (%)")
                .row("SGD (final)", "cosine", seeds(cosine), Stat.percent(sgd(cosine)))
                .row("SGD (final)", "constant", seeds(constant), Stat.percent(sgd(constant)))
                .row("selected EMA", "cosine", seeds(cosine), Stat.percent(ema(cosine)))
                .row("selected EMA", "constant", seeds(constant), Stat.percent(ema(constant))));
        r.verdict(verdict(in));

        Table sweep = Table.of("Peak LR under cosine: validation and test accuracy (mean ± std over seeds)",
                "peak LR", "SGD val (%)", "SGD test (%)", "selected EMA val (%)", "selected EMA test (%)");
        double[] sgdVal = new double[SWEEP.size()];
        double[] emaVal = new double[SWEEP.size()];
        for (int i = 0; i < SWEEP.size(); i++) {
            Group g = in.group(SWEEP.get(i));
            double[] sv = g.each(c -> c.last(c.live(), "val").accuracy());
            double[] ev = g.each(c -> c.valAccuracy(c.byValAccuracy()));
            sgdVal[i] = Stat.mean(sv);
            emaVal[i] = Stat.mean(ev);
            sweep.row(Fmt.f("%s", g.spec().baseLr()), Stat.percent(sv), Stat.percent(sgd(g)), Stat.percent(ev),
                    Stat.percent(ema(g)));
        }
        r.table(sweep);
        int bestSgd = argmax(sgdVal);
        int bestEma = argmax(emaVal);
        String ours = "best peak LR on validation: SGD " + in.group(SWEEP.get(bestSgd)).spec().baseLr() + ", EMA "
                + in.group(SWEEP.get(bestEma)).spec().baseLr();
        double[] atSgds = ema(in.group(SWEEP.get(bestSgd)));
        double[] own = ema(in.group(SWEEP.get(bestEma)));
        int n = Math.min(own.length, atSgds.length);
        return r.verdict(Verdict.within(SAME_LR, ours, "EMA test at SGD's LR − at its own", AblationSections.MARGIN,
                Fmt::pp, Stat.difference(Arrays.copyOf(atSgds, n), Arrays.copyOf(own, n))));
    }

    private static int argmax(double[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
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
        return g.each(c -> c.last(c.live(), "test").accuracy());
    }

    private static double[] ema(Group g) {
        return g.each(c -> c.testAccuracy(c.byValAccuracy()));
    }

    private static String seeds(Group g) {
        return Integer.toString(g.cells().size());
    }
}
