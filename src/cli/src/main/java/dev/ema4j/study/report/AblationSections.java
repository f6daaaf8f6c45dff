package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.report.Verdict.Expect;
import java.util.Arrays;
import java.util.List;

/**
 * The paper's side claims: the EMA against SWA (on the cosine runs), and on the 12k-image runs against one variant of
 * them: EMAs updated every 16 steps against every step, and copying the EMA back into training.
 */
final class AblationSections {

    /** Two accuracies this close (a fraction: 0.5 pp) count as equal. */
    static final double MARGIN = 0.005;

    private AblationSections() {
    }

    /** The EMA selected on validation (decay and epoch): its test accuracy. */
    static double selectedEma(Cell c) {
        return c.testAccuracy(c.byValAccuracy());
    }

    /** The EMA against a uniform average of the weights of the second half of training (SWA). */
    static final class Swa implements Section {

        static final Claim CLAIM = new Claim("EMA is comparable to SWA", "TinyIN/ResNet-18: EMA comparable to SWA",
                "cosine runs: test accuracy of the EMA selected on validation − that of SWA (the uniform average of "
                        + "the live weights at the ends of the epochs of the second half, BatchNorm statistics "
                        + "recomputed); " + Verdict.withinRule(Fmt.pp(MARGIN).replace("+", "")));

        @Override
        public String name() {
            return "swa";
        }

        @Override
        public String title() {
            return "EMA against SWA";
        }

        @Override
        public List<Claim> claims() {
            return List.of(CLAIM);
        }

        @Override
        public Rendered render(Inputs in) {
            Group g = in.group("cosine");
            double[] emas = g.each(AblationSections::selectedEma);
            double[] swa = g.each(c -> c.last("swa/recomputed", "test").accuracy());
            double[] sgd = g.each(c -> c.last(g.live(), "test").accuracy());
            Rendered r = new Rendered().text("Runs: `cosine`. SWA averages the live weights at the ends of the "
                    + "epochs after " + Fmt.f("%.0f%%", 100 * g.spec().swaFrom()) + " of the run, then recomputes "
                    + "BatchNorm statistics; the EMA is the decay and epoch selected on validation accuracy. Under a "
                    + "cosine schedule the learning rate falls through that part of the run, so SWA sits between "
                    + "the last iterate and a long-window EMA.");
            r.table(Table.of("Test accuracy (mean ± std over seeds)", "model", "test accuracy (%)")
                    .row("SGD (final, statistics recomputed)", Stat.percent(sgd))
                    .row("SWA", Stat.percent(swa))
                    .row("selected EMA", Stat.percent(emas)));
            return r.verdict(Verdict.within(CLAIM, "SWA " + Fmt.pct(Stat.mean(swa)) + " vs EMA "
                    + Fmt.pct(Stat.mean(emas)), "EMA − SWA", MARGIN, Fmt::pp, Stat.difference(emas, swa)));
        }
    }

    /** EMAs updated every 16 steps (α^16 per update) against every step (α per update): the same windows in steps. */
    static final class Every implements Section {

        static final Claim CLAIM = new Claim("T = 16 with compensated decays equals T = 1",
                "updating every 16 steps gave the same results as every step",
                "test accuracy of the EMA selected on validation, `base12k` (every T = 16 steps at full scale) − "
                        + "`base12k-every1` (every step; the same decays α per step, so α per update instead of α^T), per seed; " + Verdict.withinRule(Fmt.pp(MARGIN).replace("+", "")));

        @Override
        public String name() {
            return "every";
        }

        @Override
        public String title() {
            return "EMA updated every T steps or every step";
        }

        @Override
        public List<Claim> claims() {
            return List.of(CLAIM);
        }

        @Override
        public Rendered render(Inputs in) {
            Group t16 = in.group("base12k");
            Group t1 = in.group("base12k-every1");
            Rendered r = new Rendered().text("Runs: `base12k` (EMAs every " + t16.spec().every() + " steps) and "
                    + "`base12k-every1` (every step). The decays α are per step: an update every " + t16.spec().every()
                    + " steps applies α^" + t16.spec().every() + ", an update every step α, the same window in steps "
                    + "(the paper's compensation α_T = α_1^T). Test accuracy at the final epoch, statistics "
                    + "recomputed.");
            Table t = Table.of("Final-epoch test accuracy by decay (mean ± std over seeds)", "decay α (per step)",
                    "every " + t16.spec().every() + " steps (%)", "every step (%)");
            for (int k = 0; k < t16.spec().decays().size(); k++) {
                int i = k;
                t.row(Fmt.decay(t16.spec().decays().get(k)), Stat.percent(t16.each(c -> c.last(ema(i), "test")
                        .accuracy())), Stat.percent(t1.each(c -> c.last(ema(i), "test").accuracy())));
            }
            double[] a = t16.each(AblationSections::selectedEma);
            double[] b = t1.each(AblationSections::selectedEma);
            int n = Math.min(a.length, b.length);
            r.table(t.row("selected on validation", Stat.percent(a), Stat.percent(b)));
            int every = t16.spec().every();
            return r.verdict(Verdict.within(CLAIM, "T = " + every + " " + Fmt.pct(Stat.mean(a)) + " vs T = 1 "
                    + Fmt.pct(Stat.mean(b)), "T" + every + " − T1", MARGIN, Fmt::pp,
                    Stat.difference(Arrays.copyOf(a, n), Arrays.copyOf(b, n))));
        }
    }

    /** Copying the EMA into the live weights after every epoch. */
    static final class CopyBack implements Section {

        static final Claim CLAIM = new Claim("copying the EMA back into training hurts", "75.83 → 74.47 % val",
                "test accuracy of the model selected on validation (SGD or an EMA, any epoch), `base12k-copyback` − "
                        + "`base12k`, per seed; " + Verdict.PAIRED_RULE + " (the paper's direction: < 0)");

        @Override
        public String name() {
            return "copyback";
        }

        @Override
        public String title() {
            return "Copying the EMA back into training";
        }

        @Override
        public List<Claim> claims() {
            return List.of(CLAIM);
        }

        @Override
        public Rendered render(Inputs in) {
            Group plain = in.group("base12k");
            Group copied = in.group("base12k-copyback");
            int k = copied.spec().copyBack();
            Rendered r = new Rendered().text("Runs: `base12k`, and `base12k-copyback`, where the EMA of decay "
                    + Fmt.decay(copied.spec().decays().get(k)) + " replaces the live weights after every epoch "
                    + "(momentum and BatchNorm statistics kept); the EMAs go on averaging. The model compared is the "
                    + "best on validation accuracy among the live model and the EMAs at any evaluated epoch.");
            double[] a = plain.each(Cell::bestOnValidationTestAccuracy);
            double[] b = copied.each(Cell::bestOnValidationTestAccuracy);
            int n = Math.min(a.length, b.length);
            r.table(Table.of("Test accuracy of the model selected on validation (mean ± std over seeds)", "run",
                    "test accuracy (%)").row("base12k", Stat.percent(a)).row("base12k-copyback", Stat.percent(b)));
            return r.verdict(Verdict.paired(CLAIM, Fmt.pct(Stat.mean(a)) + " → " + Fmt.pct(Stat.mean(b)),
                    "copyback − base", Expect.BELOW_0, Fmt::pp,
                    Stat.difference(Arrays.copyOf(b, n), Arrays.copyOf(a, n))));
        }
    }
}
