package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.SGD;
import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.RunSpec;
import dev.ema4j.study.report.Verdict.Outcome;
import java.util.List;

/** Linear probes on held-out classes of backbones pretrained with SGD and of their EMAs. */
final class TransferSection implements Section {

    static final Claim TRANSFERS = new Claim("EMA transfers better", "linear probe TinyIN → C100: 52.77 → 57.78",
            "probe test accuracy (mean over seeds) of the best EMA ≥ SGD's: reproduced, else not reproduced; the best "
                    + "EMA is picked on the probe's test accuracy (there is no probe validation set), which favours "
                    + "the EMA");

    @Override
    public String name() {
        return "transfer";
    }

    @Override
    public String title() {
        return "Transfer by linear probing";
    }

    @Override
    public List<Claim> claims() {
        return List.of(TRANSFERS);
    }

    @Override
    public Rendered render(Inputs in) {
        Group g = in.group("transfer");
        RunSpec spec = g.spec();
        Rendered r = new Rendered().text("Runs: `transfer`, pretrained on classes " + spec.classes() + " for "
                + spec.epochs() + " epochs. After training, the backbone of SGD (final) and of each EMA (BatchNorm "
                + "statistics recomputed, final epoch) is frozen and a new linear head is trained on the penultimate "
                + "features of the other classes (50 epochs, SGD Nesterov, LR 0.01, no weight decay); its test "
                + "accuracy on those classes.");
        Table t = Table.of("Linear-probe test accuracy on the held-out classes (mean ± std over seeds)", "backbone",
                "probe accuracy (%)");
        double[] sgd = g.each(c -> probe(c, SGD));
        t.row("SGD (final)", Stat.percent(sgd));
        int best = 0;
        double bestMean = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < spec.decays().size(); k++) {
            int i = k;
            double[] acc = g.each(c -> probe(c, ema(i)));
            t.row("EMA decay " + Fmt.decay(spec.decays().get(k)), Stat.percent(acc));
            if (Stat.mean(acc) > bestMean) {
                best = k;
                bestMean = Stat.mean(acc);
            }
        }
        r.table(t);
        double sgdMean = Stat.mean(sgd);
        String ours = Fmt.pct(sgdMean) + " → " + Fmt.pct(bestMean) + " (EMA decay "
                + Fmt.decay(spec.decays().get(best)) + ", " + Fmt.pp(bestMean - sgdMean) + ")";
        return r.verdict(bestMean >= sgdMean
                ? Verdict.of(TRANSFERS, ours, Outcome.REPRODUCED, "the best EMA's probe is at least as accurate")
                : Verdict.of(TRANSFERS, ours, Outcome.NOT_REPRODUCED, "every EMA's probe is less accurate"));
    }

    private static double probe(Cell c, String variant) {
        Double a = c.result().probeAccuracy().get(variant);
        if (a == null) {
            throw new IllegalStateException("cell " + c.spec().key() + " has no probe accuracy for " + variant);
        }
        return a;
    }
}
