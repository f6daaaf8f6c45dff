package dev.ema4j.study.report;

import static dev.ema4j.study.report.Cell.ema;

import dev.ema4j.metrics.Binning;
import dev.ema4j.metrics.Calibration;
import dev.ema4j.metrics.Classification;
import dev.ema4j.metrics.ReliabilityDiagram;
import dev.ema4j.metrics.TemperatureScaling;
import dev.ema4j.study.report.Verdict.Expect;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Expected calibration error of SGD and the EMA, before and after temperature scaling. */
final class CalibrationSection implements Section {

    static final Claim CALIBRATED = new Claim("EMA is better calibrated",
            "ECE (100 equal-mass bins) 11.75 → 9.46 % (3.13 after temperature scaling), C100/ResNet-18",
            "cosine runs: the ECE (100 equal-mass bins, before temperature scaling) of the EMA of the lowest "
                    + "validation NLL − SGD's; " + Verdict.PAIRED_RULE + " (the paper's direction: < 0)");

    /**
     * ECEs of one model on one seed's test set.
     *
     * @param mass ECE, 100 equal-mass bins
     * @param width ECE, 15 equal-width bins
     * @param temperature T fitted on the validation set
     * @param massScaled ECE, 100 equal-mass bins, after temperature scaling
     * @param widthScaled ECE, 15 equal-width bins, after temperature scaling
     */
    record Ece(double mass, double width, double temperature, double massScaled, double widthScaled) {
    }

    @Override
    public String name() {
        return "calibration";
    }

    @Override
    public String title() {
        return "Calibration";
    }

    @Override
    public List<Claim> claims() {
        return List.of(CALIBRATED);
    }

    @Override
    public Rendered render(Inputs in) throws IOException {
        Group g = in.group("cosine");
        Rendered r = new Rendered().text("Runs: `cosine`. Test-set ECE with " + Calibration.PAPER_EQUAL_MASS_BINS
                + " equal-mass bins (the paper's) and " + Calibration.COMMON_EQUAL_WIDTH_BINS + " equal-width bins, "
                + "for SGD at the final epoch and for the EMA of the lowest validation NLL (decay and epoch, "
                + "criterion `best_nll`). Temperature scaling: T minimizes the validation NLL of the logits "
                + "ln max(p, 1e-12) of the stored probabilities, then softmax(logits/T) on the test set. The noise "
                + "experiment reports the same ECEs under label noise.");
        List<Ece> sgd = new ArrayList<>();
        List<Ece> emas = new ArrayList<>();
        List<Cell.Prediction> sgdTest = new ArrayList<>();
        List<Cell.Prediction> emaTest = new ArrayList<>();
        for (Cell c : g.cells()) {
            String e = ema(c.byValNll().k());
            sgdTest.add(c.prediction(c.live(), "test", "final"));
            emaTest.add(c.prediction(e, "test", "best_nll"));
            sgd.add(ece(c.prediction(c.live(), "val", "final"), sgdTest.get(sgdTest.size() - 1)));
            emas.add(ece(c.prediction(e, "val", "best_nll"), emaTest.get(emaTest.size() - 1)));
        }
        Table t = Table.of("Test ECE before and after temperature scaling (mean ± std over seeds)", "model",
                "ECE 100 equal-mass (%)", "ECE 15 equal-width (%)", "temperature T", "ECE 100 equal-mass, scaled (%)",
                "ECE 15 equal-width, scaled (%)");
        row(t, "SGD (final)", sgd);
        row(t, "EMA (lowest val NLL)", emas);
        r.table(t);
        Plots.lines(in.plots().resolve("calibration-reliability.png"), "Reliability, test set, "
                        + Calibration.PAPER_EQUAL_MASS_BINS + " equal-mass bins (the verdict's), seeds pooled",
                "mean confidence of the bin (%)", "accuracy of the bin (%)", false,
                List.of(reliability("SGD (final)", sgdTest), reliability("EMA (lowest val NLL)", emaTest),
                        Plots.Line.reference("perfect calibration", new double[] {0, 100}, new double[] {0, 100})));
        r.plot("calibration-reliability.png", "reliability diagram, SGD vs EMA");

        double[] sgdEce = sgd.stream().mapToDouble(Ece::mass).toArray();
        double[] emaEce = emas.stream().mapToDouble(Ece::mass).toArray();
        String ours = "ECE " + Fmt.pct(Stat.mean(sgdEce)) + " → " + Fmt.pct(Stat.mean(emaEce)) + " %";
        return r.verdict(Verdict.paired(CALIBRATED, ours, "EMA − SGD ECE", Expect.BELOW_0, Fmt::pp,
                Stat.difference(emaEce, sgdEce)));
    }

    /** The ECEs of {@code test}, with T fitted on {@code val}. */
    static Ece ece(Cell.Prediction val, Cell.Prediction test) {
        int classes = test.classes();
        double t = TemperatureScaling.fit(logits(val.probs()), classes, val.labels());
        float[] scaled = TemperatureScaling.apply(logits(test.probs()), classes, t);
        return new Ece(ece(test.probs(), test, Binning.EQUAL_MASS), ece(test.probs(), test, Binning.EQUAL_WIDTH), t,
                ece(scaled, test, Binning.EQUAL_MASS), ece(scaled, test, Binning.EQUAL_WIDTH));
    }

    /** {@code ln max(p, 1e-12)}: logits whose softmax is the (normalized) probabilities. */
    static float[] logits(float[] probs) {
        float[] z = new float[probs.length];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) Math.log(Math.max(probs[i], Classification.MIN_PROBABILITY));
        }
        return z;
    }

    static double ece(float[] probs, Cell.Prediction test, Binning binning) {
        int bins = binning == Binning.EQUAL_MASS ? Calibration.PAPER_EQUAL_MASS_BINS
                : Calibration.COMMON_EQUAL_WIDTH_BINS;
        return Calibration.ece(probs, test.classes(), test.labels(), binning, bins);
    }

    private static void row(Table t, String model, List<Ece> e) {
        t.row(model, Stat.percent(e.stream().mapToDouble(Ece::mass).toArray()),
                Stat.percent(e.stream().mapToDouble(Ece::width).toArray()),
                Stat.of(3, e.stream().mapToDouble(Ece::temperature).toArray()),
                Stat.percent(e.stream().mapToDouble(Ece::massScaled).toArray()),
                Stat.percent(e.stream().mapToDouble(Ece::widthScaled).toArray()));
    }

    /**
     * The predictions of all seeds together in the verdict's binning ({@link Calibration#PAPER_EQUAL_MASS_BINS}
     * equal-mass bins): (confidence, accuracy) in %.
     */
    private static Plots.Line reliability(String name, List<Cell.Prediction> seeds) {
        int classes = seeds.get(0).classes();
        int n = seeds.stream().mapToInt(p -> p.labels().length).sum();
        float[] probs = new float[n * classes];
        int[] labels = new int[n];
        int at = 0;
        for (Cell.Prediction p : seeds) {
            System.arraycopy(p.probs(), 0, probs, at * classes, p.probs().length);
            System.arraycopy(p.labels(), 0, labels, at, p.labels().length);
            at += p.labels().length;
        }
        List<ReliabilityDiagram.Bin> bins = Calibration.reliability(probs, classes, labels, Binning.EQUAL_MASS,
                Calibration.PAPER_EQUAL_MASS_BINS).bins().stream().filter(b -> b.count() > 0).toList();
        return new Plots.Line(name, bins.stream().mapToDouble(b -> 100 * b.meanConfidence()).toArray(),
                bins.stream().mapToDouble(b -> 100 * b.accuracy()).toArray());
    }
}
