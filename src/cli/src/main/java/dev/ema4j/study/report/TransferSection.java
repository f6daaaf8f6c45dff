package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.SGD;
import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.RunSpec;
import dev.ema4j.study.report.Verdict.Expect;
import java.util.List;
import java.util.stream.Collectors;

/** Linear probes on held-out classes of backbones pretrained with SGD and of their EMAs. */
final class TransferSection implements Section {

    static final Claim TRANSFERS = new Claim("EMA transfers better", "linear probe TinyIN → C100: 52.77 → 57.78",
            "per seed, probe test accuracy of the EMA chosen on the pretraining validation accuracy at the final "
                    + "epoch (the backbones probed) − SGD's; " + Verdict.PAIRED_RULE);

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
                + spec.epochs() + " epochs. After training, the backbone of SGD (final) and of each EMA (both with "
                + "BatchNorm statistics recomputed, final epoch) is frozen and a new linear head is trained on the penultimate "
                + "features of the other classes (50 epochs, SGD Nesterov, LR 0.01, no weight decay); its test "
                + "accuracy on those classes.");
        Table t = Table.of("Linear-probe test accuracy on the held-out classes (mean ± std over seeds)", "backbone",
                "probe accuracy (%)");
        double[] sgd = g.each(c -> probe(c, c.result().probeAccuracy().containsKey(Cell.SGD_RECOMPUTED)
                ? Cell.SGD_RECOMPUTED : SGD));
        t.row("SGD (final)", Stat.percent(sgd));
        for (int k = 0; k < spec.decays().size(); k++) {
            int i = k;
            t.row("EMA decay " + Fmt.decay(spec.decays().get(k)), Stat.percent(g.each(c -> probe(c, ema(i)))));
        }
        double[] chosen = g.each(c -> probe(c, ema(chosenOnValidation(c))));
        t.row("EMA chosen on pretraining validation, per seed", Stat.percent(chosen));
        r.table(t).text("EMA chosen per seed: " + g.cells().stream()
                .map(c -> Fmt.decay(c.decay(chosenOnValidation(c)))).collect(Collectors.joining("; ")) + ".");
        String ours = Fmt.pct(Stat.mean(sgd)) + " → " + Fmt.pct(Stat.mean(chosen)) + " ("
                + Fmt.pp(Stat.mean(chosen) - Stat.mean(sgd)) + ")";
        return r.verdict(Verdict.paired(TRANSFERS, ours, "EMA − SGD probe accuracy", Expect.ABOVE_0, Fmt::pp,
                Stat.difference(chosen, sgd)));
    }

    /** The EMA of the highest validation accuracy on the pretraining classes at the final epoch (first on ties). */
    static int chosenOnValidation(Cell c) {
        int best = 0;
        for (int k = 1; k < c.emas(); k++) {
            if (c.last(ema(k), "val").accuracy() > c.last(ema(best), "val").accuracy()) {
                best = k;
            }
        }
        return best;
    }

    private static double probe(Cell c, String variant) {
        Double a = c.result().probeAccuracy().get(variant);
        if (a == null) {
            throw new IllegalStateException("cell " + c.spec().key() + " has no probe accuracy for " + variant);
        }
        return a;
    }
}
