package dev.ema4j.study.report;

import dev.ema4j.study.report.Verdict.Expect;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

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
            "`base12k` runs at three peak LRs, per seed: SGD's best LR (validation accuracy at the final epoch, "
                    + "statistics recomputed) and the EMA's (validation accuracy of the EMA selected on validation); "
                    + "cost = the EMA's test accuracy at SGD's LR − at its own (0 when they agree): tuning the LR for "
                    + "SGD costs the EMA at most " + Fmt.pp(AblationSections.MARGIN).replace("+", "") + "; "
                    + Verdict.atLeastRule(Fmt.pp(AblationSections.MARGIN).replace("+", "")));

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
        int lrs = SWEEP.size();
        double[][] sgdVal = new double[lrs][];
        double[][] emaVal = new double[lrs][];
        double[][] emaTest = new double[lrs][];
        for (int i = 0; i < lrs; i++) {
            Group g = in.group(SWEEP.get(i));
            sgdVal[i] = g.each(c -> c.last(c.live(), "val").accuracy());
            emaVal[i] = g.each(c -> c.valAccuracy(c.byValAccuracy()));
            emaTest[i] = ema(g);
            sweep.row(Fmt.f("%s", g.spec().baseLr()), Stat.percent(sgdVal[i]), Stat.percent(sgd(g)),
                    Stat.percent(emaVal[i]), Stat.percent(emaTest[i]));
        }
        r.table(sweep);
        int[] sgdBest = bestPerSeed(sgdVal);
        int[] emaBest = bestPerSeed(emaVal);
        int agree = (int) IntStream.range(0, sgdBest.length).filter(s -> sgdBest[s] == emaBest[s]).count();
        String ours = "best peak LR on validation per seed: SGD " + lrCounts(in, sgdBest) + "; EMA "
                + lrCounts(in, emaBest) + " (the same in " + agree + " of " + sgdBest.length + ")";
        return r.verdict(Verdict.atLeast(SAME_LR, ours, "EMA test at SGD's LR − at its own", AblationSections.MARGIN,
                Fmt::pp, costOfSgdsLr(sgdBest, emaBest, emaTest)));
    }

    /**
     * Per seed (seeds paired by index; the sweep's groups run the same seeds), the index of the LR of the highest
     * validation accuracy, the first on ties.
     *
     * @param val validation accuracy by LR, then by seed
     */
    static int[] bestPerSeed(double[][] val) {
        int seeds = Arrays.stream(val).mapToInt(v -> v.length).min().orElse(0);
        int[] best = new int[seeds];
        for (int s = 0; s < seeds; s++) {
            for (int i = 1; i < val.length; i++) {
                if (val[i][s] > val[best[s]][s]) {
                    best[s] = i;
                }
            }
        }
        return best;
    }

    /** Per seed, the EMA's test accuracy at SGD's best LR − at its own best LR. */
    static double[] costOfSgdsLr(int[] sgdBest, int[] emaBest, double[][] emaTest) {
        double[] cost = new double[sgdBest.length];
        for (int s = 0; s < cost.length; s++) {
            cost[s] = emaTest[sgdBest[s]][s] - emaTest[emaBest[s]][s];
        }
        return cost;
    }

    /** {@code "0.2 ×4, 0.1 ×1"}: how often each LR was the best, the most frequent first. */
    private static String lrCounts(Inputs in, int[] best) {
        Map<Integer, Long> counts = Arrays.stream(best).boxed()
                .collect(Collectors.groupingBy(i -> i, TreeMap::new, Collectors.counting()));
        return counts.entrySet().stream().sorted(Map.Entry.<Integer, Long>comparingByValue().reversed())
                .map(e -> in.group(SWEEP.get(e.getKey())).spec().baseLr() + " ×" + e.getValue())
                .collect(Collectors.joining(", "));
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
