package dev.ema4j.cli;

import dev.ema4j.backend.Backend;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.CellRunner;
import dev.ema4j.study.RunSpec;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.StudyRunner;
import dev.ema4j.study.report.StudyReport;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The demo: SmallCnn(16) on Fashion-MNIST, clean and with 40% symmetric label noise, trained with SGD while three
 * EMAs of its weights are kept; prints the last iterate against the best EMA and writes a report.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Train a small CNN on Fashion-MNIST (clean, and with 40%% label noise) with SGD and EMAs of its "
                + "weights, then compare the last iterate with the best EMA (a few minutes on two CPU cores).")
final class DemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "results/demo",
            description = "output directory (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--scale", defaultValue = "full", hidden = true, description = "full, or quick for tests")
    String scale;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        Scale s = StudyOptions.scale(scale);
        Path dir = CommonOptions.writableOutput(out);
        Path data = dataOrInstall();
        List<RunSpec> runs = StudyPlan.runs(List.of("demo"), s, 1);
        try (Backend backend = common.openBackend()) {
            System.out.println("training on " + backend.name() + "; results in " + dir);
            StudyRunner.runMissing(runs, dir.resolve("cells"), new CellRunner(data, backend),
                    new CellProgress(common.quiet, System.out));
        }
        System.out.println();
        System.out.println("| data | model | test accuracy | NLL | ECE (15 bins) |");
        System.out.println("|---|---|---:|---:|---:|");
        for (RunSpec spec : runs) {
            CellResult r = CellRunner.read(dir.resolve("cells"), spec);
            String data0 = spec.noise() > 0 ? "40% noisy labels" : "clean labels";
            CellResult.EpochRecord last = r.epochs().get(r.epochs().size() - 1);
            CellResult.VariantRecord sgd = find(last, "sgd", "test");
            // the best EMA: the decay and epoch of the highest validation accuracy (the paper's protocol)
            CellResult.EpochRecord bestEpoch = last;
            CellResult.VariantRecord bestVal = null;
            for (CellResult.EpochRecord e : r.epochs()) {
                for (CellResult.VariantRecord v : e.evaluations()) {
                    if (v.set().equals("val") && v.variant().startsWith("ema")
                            && (bestVal == null || v.accuracy() > bestVal.accuracy())) {
                        bestVal = v;
                        bestEpoch = e;
                    }
                }
            }
            CellResult.VariantRecord ema = find(bestEpoch, bestVal.variant(), "test");
            int k = Integer.parseInt(ema.variant().substring(3, ema.variant().indexOf('/')));
            System.out.printf("| %s | last iterate (SGD, epoch %d) | %.4f | %.4f | %.4f |%n", data0, last.epoch() + 1,
                    sgd.accuracy(), sgd.nll(), sgd.eceEqualWidth());
            System.out.printf("| %s | best EMA (decay %s, epoch %d, chosen on validation) | %.4f | %.4f | %.4f |%n",
                    data0, spec.decays().get(k), bestEpoch.epoch() + 1, ema.accuracy(), ema.nll(), ema.eceEqualWidth());
        }
        Path report = StudyReport.write(dir, List.of("demo"), s, 1, ReproduceCommand.commandLine(spec));
        System.out.println();
        System.out.println("report: " + report);
        return 0;
    }

    private static CellResult.VariantRecord find(CellResult.EpochRecord e, String variant, String set) {
        return e.evaluations().stream().filter(v -> v.variant().equals(variant) && v.set().equals(set)).findFirst()
                .orElseThrow();
    }

    /** The data directory; installs the Debian package when it is missing, no directory was given and we are root. */
    private Path dataOrInstall() throws IOException, InterruptedException {
        try {
            return common.checkedData();
        } catch (IOException missing) {
            if (common.data != null || !isRoot()) {
                throw missing;
            }
            System.out.println("Fashion-MNIST is missing: running apt-get install -y dataset-fashion-mnist");
            Process p = new ProcessBuilder("apt-get", "install", "-y", "dataset-fashion-mnist").inheritIO().start();
            if (p.waitFor() != 0) {
                throw new IOException("apt-get install -y dataset-fashion-mnist failed (exit " + p.exitValue() + ")",
                        missing);
            }
            return common.checkedData();
        }
    }

    private static boolean isRoot() {
        try {
            return new com.sun.security.auth.module.UnixSystem().getUid() == 0;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }
}
