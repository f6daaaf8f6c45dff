package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.metrics.Consistency;
import dev.ema4j.study.report.Verdict.Expect;
import dev.ema4j.study.report.Verdict.Outcome;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/** Agreement between the test predictions of runs that differ only in their seed. */
final class ConsistencySection implements Section {

    static final Claim CONSISTENT = new Claim("EMA predictions are more consistent",
            "churn 18.84 → 11.69 %, JS divergence 0.32 → 0.09 (C100/ResNet-18)",
            "cosine runs, per seed: its mean churn and mean JS divergence against the other seeds, EMA − SGD, each "
                    + "by the paired rule over the seeds (" + Verdict.PAIRED_RULE + "); reproduced if both are, not "
                    + "reproduced if either is not, else inconclusive; needs 3 seeds");

    @Override
    public String name() {
        return "consistency";
    }

    @Override
    public String title() {
        return "Prediction consistency across seeds";
    }

    @Override
    public List<Claim> claims() {
        return List.of(CONSISTENT);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Group g = in.group("cosine");
        List<Cell> cells = g.cells();
        Rendered r = new Rendered().text("Runs: `cosine`, " + cells.size() + " seed(s). For every pair of seeds: "
                + "churn (% of test samples whose top-1 class differs) and the mean Jensen–Shannon divergence (nats) "
                + "of the test probabilities, for SGD at the final epoch and for each seed's EMA chosen by the lowest "
                + "validation NLL (decay and epoch, the paper's guideline), criterion `best_nll`.");
        if (cells.size() < 2) {
            return r.text("Consistency needs at least 2 seeds; this study has 1.").verdict(Verdict.of(CONSISTENT,
                    "—", Outcome.INCONCLUSIVE, "a single seed: no pair to compare"));
        }
        List<Cell.Prediction> sgd = new ArrayList<>();
        List<Cell.Prediction> emas = new ArrayList<>();
        for (Cell c : cells) {
            sgd.add(c.prediction(c.live(), "test", "final"));
            emas.add(c.prediction(ema(c.byValNll().k()), "test", "best_nll"));
        }
        double[][] sgdPairs = pairs(sgd);
        double[][] emaPairs = pairs(emas);
        r.text("EMA chosen per seed (decay @ epoch): " + cells.stream().map(c -> Fmt.decay(c.decay(c.byValNll().k()))
                + " @ " + (c.byValNll().epoch() + 1)).collect(Collectors.joining("; ")) + ".");
        r.table(Table.of("Consistency over " + sgdPairs[0].length + " seed pair(s) (mean ± std over pairs)", "model",
                        "churn (%)", "JS divergence")
                .row("SGD (final)", Stat.percent(sgdPairs[0]), Stat.of(4, sgdPairs[1]))
                .row("EMA (lowest val NLL)", Stat.percent(emaPairs[0]), Stat.of(4, emaPairs[1])));
        List<String> models = List.of("SGD (final)", "EMA (lowest val NLL)");
        Plots.bars(in.plots().resolve("consistency-churn.png"), "Churn between seeds (error bars: std over pairs)",
                "churn (%)", models, new double[] {100 * Stat.mean(sgdPairs[0]), 100 * Stat.mean(emaPairs[0])},
                new double[] {100 * Stat.std(sgdPairs[0]), 100 * Stat.std(emaPairs[0])});
        Plots.bars(in.plots().resolve("consistency-js.png"), "JS divergence between seeds (error bars: std over pairs)",
                "JS divergence (nats)", models, new double[] {Stat.mean(sgdPairs[1]), Stat.mean(emaPairs[1])},
                new double[] {Stat.std(sgdPairs[1]), Stat.std(emaPairs[1])});
        r.plot("consistency-churn.png", "churn between seeds");
        r.plot("consistency-js.png", "JS divergence between seeds");

        String ours = "churn " + Fmt.pct(Stat.mean(sgdPairs[0])) + " → " + Fmt.pct(Stat.mean(emaPairs[0]))
                + " %, JS " + Fmt.f("%.4f", Stat.mean(sgdPairs[1])) + " → " + Fmt.f("%.4f", Stat.mean(emaPairs[1]));
        if (cells.size() < 3) {
            return r.verdict(Verdict.of(CONSISTENT, ours, Outcome.INCONCLUSIVE, cells.size() + " seeds: a per-seed "
                    + "interval needs 3"));
        }
        Verdict churn = Verdict.paired(CONSISTENT, ours, "churn EMA − SGD", Expect.BELOW_0, Fmt::pp,
                Stat.difference(perSeed(emas, 0), perSeed(sgd, 0)));
        Verdict js = Verdict.paired(CONSISTENT, ours, "JS EMA − SGD", Expect.BELOW_0, v -> Fmt.f("%+.4f", v),
                Stat.difference(perSeed(emas, 1), perSeed(sgd, 1)));
        Outcome both = churn.outcome() == Outcome.NOT_REPRODUCED || js.outcome() == Outcome.NOT_REPRODUCED
                ? Outcome.NOT_REPRODUCED
                : churn.outcome() == Outcome.REPRODUCED && js.outcome() == Outcome.REPRODUCED ? Outcome.REPRODUCED
                : Outcome.INCONCLUSIVE;
        return r.verdict(Verdict.of(CONSISTENT, ours, both, churn.reason() + "; " + js.reason()));
    }

    /** Per seed, the mean over the other seeds of metric {@code m} (0 churn, 1 JS divergence) of its predictions. */
    static double[] perSeed(List<Cell.Prediction> p, int m) {
        double[] out = new double[p.size()];
        for (int i = 0; i < p.size(); i++) {
            for (int j = 0; j < p.size(); j++) {
                if (i != j) {
                    out[i] += (m == 0 ? Consistency.churn(p.get(i).probs(), p.get(j).probs(), p.get(i).classes())
                            : Consistency.jsDivergence(p.get(i).probs(), p.get(j).probs(), p.get(i).classes()))
                            / (p.size() - 1);
                }
            }
        }
        return out;
    }

    /** For every pair i < j: {churn[], js[]} of the two seeds' test predictions. */
    static double[][] pairs(List<Cell.Prediction> p) {
        int n = p.size() * (p.size() - 1) / 2;
        double[][] out = new double[2][n];
        int pair = 0;
        for (int i = 0; i < p.size(); i++) {
            for (int j = i + 1; j < p.size(); j++, pair++) {
                out[0][pair] = Consistency.churn(p.get(i).probs(), p.get(j).probs(), p.get(i).classes());
                out[1][pair] = Consistency.jsDivergence(p.get(i).probs(), p.get(j).probs(), p.get(i).classes());
            }
        }
        return out;
    }
}
