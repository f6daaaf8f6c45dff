package dev.ema4j.study.report;

import dev.ema4j.study.report.Verdict.Expect;
import dev.ema4j.study.report.Verdict.Outcome;
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
                    + "(selected on validation), each by mean validation accuracy over seeds; reproduced if they are "
                    + "the same LR; otherwise, per seed, the EMA's validation accuracy at its best LR − at SGD's: not "
                    + "reproduced if the paired 95% interval excludes 0 (the choice matters for the EMA), else "
                    + "inconclusive");

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
        String ours = "best peak LR: SGD " + in.group(SWEEP.get(bestSgd)).spec().baseLr() + ", EMA "
                + in.group(SWEEP.get(bestEma)).spec().baseLr();
        if (bestSgd == bestEma) {
            return r.verdict(Verdict.of(SAME_LR, ours, Outcome.REPRODUCED, "the same peak LR has the highest mean "
                    + "validation accuracy for both"));
        }
        double[] own = in.group(SWEEP.get(bestEma)).each(c -> c.valAccuracy(c.byValAccuracy()));
        double[] atSgds = in.group(SWEEP.get(bestSgd)).each(c -> c.valAccuracy(c.byValAccuracy()));
        int n = Math.min(own.length, atSgds.length);
        Verdict v = Verdict.paired(SAME_LR, ours, "EMA val at its LR − at SGD's", Expect.ABOVE_0, Fmt::pp,
                Stat.difference(Arrays.copyOf(own, n), Arrays.copyOf(atSgds, n)));
        return r.verdict(Verdict.of(SAME_LR, ours, v.outcome() == Outcome.REPRODUCED ? Outcome.NOT_REPRODUCED
                : Outcome.INCONCLUSIVE, "different best LRs; " + v.reason()));
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
