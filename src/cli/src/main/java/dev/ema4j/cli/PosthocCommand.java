package dev.ema4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.backend.Backend;
import dev.ema4j.posthoc.Profile;
import dev.ema4j.posthoc.SnapshotSet;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.CellRunner;
import dev.ema4j.study.PostHocSweep;
import dev.ema4j.study.RunSpec;
import dev.ema4j.study.report.Plots;
import dev.ema4j.train.ModelEvaluation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Post-hoc EMA over a finished run's snapshots: rebuilds power-function EMAs of a sweep of widths (and the run's
 * classic EMAs, as a check), recomputes BatchNorm statistics, evaluates them, plots validation accuracy against the
 * width and reports the width selected on validation against the tracked EMAs and the last iterate on test data.
 */
@Command(name = "posthoc", mixinStandardHelpOptions = true,
        description = "Rebuild EMAs of other averaging widths from a finished run's snapshots, evaluate them and pick "
                + "the best on validation data. RUN is a cell directory of a snapshotting run group, e.g. "
                + "results/quick/cells/posthoc12k-seed1 after `ema4j reproduce posthoc`.")
final class PosthocCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "RUN", description = "the run's cell directory (result.json, snapshots/, "
            + "final.safetensors)")
    Path run;

    @Option(names = "--sigmas", split = ",", paramLabel = "S",
            description = "widths σ_rel to rebuild, each in (0, 0.2887) (default: 0.02,0.03,0.05,0.07,0.10,0.13,0.16,"
                    + "0.20,0.24,0.28)")
    List<Double> sigmas;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "results/posthoc",
            description = "where posthoc.md and posthoc-sweep.png go (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    CommonOptions common;

    /** One evaluated model: its fit (none for tracked models) and accuracies. */
    private record Row(String name, double sigmaRel, String fit, double val, double valNll, double test) {
    }

    @Override
    public Integer call() throws Exception {
        List<Double> widths = sigmas == null ? PostHocSweep.SIGMAS : sigmas;
        for (double s : widths) {
            Profile.sigmaRel(s, 1);  // rejects a width outside (0, sqrt(1/12)) before anything runs
        }
        Path result = run.resolve("result.json");
        Path snapshots = run.resolve(PostHocSweep.SNAPSHOTS);
        if (!Files.isRegularFile(result) || !Files.isDirectory(snapshots)
                || !Files.isRegularFile(run.resolve(PostHocSweep.FINAL_STATE))) {
            throw new IllegalArgumentException(run + " is not a finished snapshotting run (it needs result.json, "
                    + PostHocSweep.SNAPSHOTS + "/ and " + PostHocSweep.FINAL_STATE + "): run a snapshotting group "
                    + "first, e.g. `ema4j reproduce posthoc`, and pass a directory under cells/");
        }
        RunSpec spec = new ObjectMapper().readValue(result.toFile(), CellResult.class).spec();
        Path dir = CommonOptions.writableOutput(out);
        Path data = common.checkedData();
        List<Row> rows;
        String header;
        try (Backend backend = common.openBackend(); SnapshotSet set = SnapshotSet.open(snapshots)) {
            double t = set.lastTime();
            header = String.format(Locale.ROOT, "%s: %d snapshot files, %d times from %s to %s %s; rebuilt at the "
                    + "last, the end of training", spec.key(), set.snapshots().size(), set.times().size(),
                    fmt(set.times().get(0)), fmt(t),
                    set.snapshots().get(0).clock().name().toLowerCase(Locale.ROOT).replace('_', ' '));
            System.out.println(header);
            rows = new CellRunner(data, backend).withFinishedRun(spec, run, trainer -> {
                List<Row> r = new ArrayList<>();
                List<PostHocSweep.Target> targets = new ArrayList<>(PostHocSweep.widths(widths, t));
                targets.addAll(PostHocSweep.decays(spec, t));
                for (PostHocSweep.Point p : PostHocSweep.run(trainer, set, targets)) {
                    Profile target = p.target().profile();
                    String name = target instanceof Profile.Power ? "post-hoc power EMA"
                            : "classic EMA α " + spec.decays().get(r.size() - widths.size()) + ", rebuilt";
                    r.add(new Row(name, target.sigmaRel(), String.format(Locale.ROOT, "%.1e / %.2f",
                            p.fit().relativeError(), p.fit().amplification()),
                            accuracy(p.evaluations(), "val"), nll(p.evaluations(), "val"),
                            accuracy(p.evaluations(), "test")));
                }
                List<ModelEvaluation> tracked = trainer.evaluate();
                for (int k = 0; k < spec.decays().size(); k++) {
                    String variant = "ema" + k + "/recomputed";
                    r.add(new Row("classic EMA α " + spec.decays().get(k) + ", tracked",
                            Profile.exponential(PostHocSweep.clockDecay(spec, k), t).sigmaRel(), "—",
                            accuracy(tracked, variant, "val"), nll(tracked, variant, "val"),
                            accuracy(tracked, variant, "test")));
                }
                r.add(new Row("last iterate", Double.NaN, "—", accuracy(tracked, "sgd/recomputed", "val"),
                        nll(tracked, "sgd/recomputed", "val"), accuracy(tracked, "sgd/recomputed", "test")));
                return r;
            });
        }
        String md = report(header, rows, widths.size(), spec.decays().size());
        System.out.print(md);
        Files.writeString(dir.resolve("posthoc.md"), md);
        plot(dir.resolve("posthoc-sweep.png"), spec.key(), rows, widths.size(), spec.decays().size());
        System.out.println("wrote " + dir.resolve("posthoc.md") + " and " + dir.resolve("posthoc-sweep.png"));
        return 0;
    }

    private static String report(String header, List<Row> rows, int widths, int decays) {
        StringBuilder md = new StringBuilder("# Post-hoc EMA\n\n").append(header).append(".\n\n");
        md.append("BatchNorm statistics recomputed for every model. Profile error: ‖rebuilt profile − asked profile‖ / "
                + "‖asked profile‖; amplification: Σ|weights|.\n\n");
        md.append("| model | σ_rel | profile error / amplification | val accuracy (%) | test accuracy (%) |\n");
        md.append("|---|---|---|---|---|\n");
        for (Row r : rows) {
            md.append(String.format(Locale.ROOT, "| %s | %s | %s | %.2f | %.2f |%n", r.name(),
                    Double.isNaN(r.sigmaRel()) ? "—" : String.format(Locale.ROOT, "%.3f", r.sigmaRel()), r.fit(),
                    100 * r.val(), 100 * r.test()));
        }
        Row posthoc = best(rows.subList(0, widths));
        Row tracked = best(rows.subList(widths + decays, widths + 2 * decays));
        Row last = rows.get(rows.size() - 1);
        md.append(String.format(Locale.ROOT, "%nSelected on validation (accuracy, then NLL on ties): post-hoc "
                + "σ_rel %.3f (val %.2f%%) → test %.2f%%; best tracked EMA, %s (val %.2f%%) → test %.2f%%; last iterate test %.2f%%. "
                + "Post-hoc − tracked: %+.2f pp on test (one run; a claim needs seeds, see the study's posthoc "
                + "section).%n", posthoc.sigmaRel(), 100 * posthoc.val(), 100 * posthoc.test(),
                tracked.name().replace(", tracked", ""), 100 * tracked.val(), 100 * tracked.test(), 100 * last.test(),
                100 * (posthoc.test() - tracked.test())));
        return md.toString();
    }

    private static void plot(Path file, String key, List<Row> rows, int widths, int decays) throws Exception {
        double[] x = rows.subList(0, widths).stream().mapToDouble(Row::sigmaRel).toArray();
        double[] y = rows.subList(0, widths).stream().mapToDouble(r -> 100 * r.val()).toArray();
        List<Plots.Line> lines = new ArrayList<>();
        lines.add(new Plots.Line("post-hoc power EMA", x, y));
        for (Row r : rows.subList(widths + decays, widths + 2 * decays)) {
            lines.add(new Plots.Line(r.name(), new double[] {r.sigmaRel()}, new double[] {100 * r.val()}));
        }
        double last = 100 * rows.get(rows.size() - 1).val();
        double lo = Math.min(x[0], lines.stream().skip(1).mapToDouble(l -> l.x()[0]).min().orElse(x[0]));
        double hi = Math.max(x[x.length - 1], lines.stream().skip(1).mapToDouble(l -> l.x()[0]).max().orElse(0));
        lines.add(Plots.Line.reference("last iterate", new double[] {lo, hi}, new double[] {last, last}));
        Plots.lines(file, "Validation accuracy against the averaging width, " + key, "σ_rel (profile width / "
                + "training length)", "validation accuracy (%)", false, lines);
    }

    /** The row of the highest validation accuracy, the lowest validation NLL on ties. */
    private static Row best(List<Row> rows) {
        Row best = rows.get(0);
        for (Row r : rows) {
            if (r.val() > best.val() || r.val() == best.val() && r.valNll() < best.valNll()) {
                best = r;
            }
        }
        return best;
    }

    private static double accuracy(List<ModelEvaluation> evaluations, String set) {
        return on(evaluations, set).metrics().accuracy();
    }

    private static double nll(List<ModelEvaluation> evaluations, String set) {
        return on(evaluations, set).metrics().nll();
    }

    private static ModelEvaluation on(List<ModelEvaluation> evaluations, String set) {
        return evaluations.stream().filter(e -> e.set().equals(set)).findFirst().orElseThrow();
    }

    private static double accuracy(List<ModelEvaluation> evaluations, String variant, String set) {
        return on(evaluations, variant, set).metrics().accuracy();
    }

    private static double nll(List<ModelEvaluation> evaluations, String variant, String set) {
        return on(evaluations, variant, set).metrics().nll();
    }

    private static ModelEvaluation on(List<ModelEvaluation> evaluations, String variant, String set) {
        return evaluations.stream().filter(e -> e.variant().equals(variant) && e.set().equals(set)).findFirst()
                .orElseThrow(() -> new IllegalStateException("no " + variant + " on " + set));
    }

    private static String fmt(double t) {
        return t == Math.rint(t) ? Long.toString((long) t) : Double.toString(t);
    }
}
