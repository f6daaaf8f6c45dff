package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.SGD;
import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.report.Verdict.Expect;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** The demo: the last iterate against the best EMA, on clean and on 40%-noisy labels. */
final class DemoSection implements Section {

    static final Claim GENERALIZES = new Claim("EMA generalizes better (clean labels)",
            "77.63 → 78.55 (C100/ResNet-18)", "demo-clean: best EMA − last iterate test accuracy per seed; "
            + Verdict.PAIRED_RULE);
    static final Claim ROBUST = new Claim("EMA is robust to label noise (40% noisy labels)",
            "CIFAR-100N: 55.47 → 65.15 (+9.7 pp)", "demo-noise40: best EMA − last iterate test accuracy per seed; "
            + Verdict.PAIRED_RULE);

    @Override
    public String name() {
        return "demo";
    }

    @Override
    public String title() {
        return "Demo: last iterate vs best EMA";
    }

    @Override
    public List<Claim> claims() {
        return List.of(GENERALIZES, ROBUST);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Rendered r = new Rendered().text("Runs: `demo-clean` and `demo-noise40` (one seed each). The last iterate is "
                + "SGD's live model at the final epoch; the best EMA is the EMA (BatchNorm statistics recomputed) "
                + "and epoch with the highest validation accuracy (the paper's protocol).");
        Table t = Table.of("Last iterate vs best EMA, test set", "data", "model", "test accuracy (%)",
                "NLL", "ECE 15 equal-width (%)");
        List<Plots.Line> lines = new ArrayList<>();
        List<String> groups = List.of("demo-clean", "demo-noise40");
        double[] gains = new double[groups.size()];
        String[] ours = new String[groups.size()];
        for (int i = 0; i < groups.size(); i++) {
            Group g = in.group(groups.get(i));
            Cell c = g.cells().get(0);
            Cell.Choice choice = c.byValAccuracy();
            int k = choice.k();
            String data = c.spec().noise() > 0 ? Fmt.f("%.0f%% noisy labels", 100 * c.spec().noise()) : "clean labels";
            String emaName = "best EMA (decay " + Fmt.decay(c.decay(k)) + ", epoch " + (choice.epoch() + 1) + ")";
            VariantRecord sgd = c.last(SGD, "test");
            VariantRecord best = c.at(choice.epoch(), ema(k), "test");
            t.row(data, "last iterate (SGD)", Stat.percent(sgd.accuracy()), Stat.of(4, sgd.nll()),
                    Stat.percent(sgd.eceEqualWidth()));
            t.row(data, emaName, Stat.percent(best.accuracy()), Stat.of(4, best.nll()),
                    Stat.percent(best.eceEqualWidth()));
            gains[i] = best.accuracy() - sgd.accuracy();
            ours[i] = Fmt.pct(sgd.accuracy()) + " → " + Fmt.pct(best.accuracy()) + " (" + Fmt.pp(gains[i]) + ")";
            List<Plots.Line> curves = g.curves("test", VariantRecord::accuracy);
            lines.add(new Plots.Line("last iterate, " + data, g.epochs(), curves.get(0).y()));
            lines.add(new Plots.Line(emaName + ", " + data, g.epochs(), curves.get(k + 1).y()));
        }
        r.table(t);
        Plots.lines(in.plots().resolve("demo-accuracy.png"), "Test accuracy per epoch", "epoch", "test accuracy (%)",
                false, lines);
        r.plot("demo-accuracy.png", "test accuracy per epoch, clean and noisy");

        r.verdict(Verdict.paired(GENERALIZES, ours[0], "EMA − last iterate", Expect.ABOVE_0, Fmt::pp, gains[0]));
        return r.verdict(Verdict.paired(ROBUST, ours[1], "EMA − last iterate", Expect.ABOVE_0, Fmt::pp, gains[1]));
    }
}
