package dev.ema4j.cli;

import dev.ema4j.backend.Backend;
import dev.ema4j.study.CellRunner;
import dev.ema4j.study.RunSpec;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.StudyRunner;
import dev.ema4j.study.report.StudyReport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The demo: SmallCnn(16) on Fashion-MNIST, clean and with 40% symmetric label noise (three and five seeds), trained
 * with SGD while three EMAs of its weights are kept; prints SGD against the EMAs (per epoch on clean labels, the best
 * EMA under noise) with intervals over the seeds, and writes a report.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Train a small CNN on Fashion-MNIST (clean, and with 40%% label noise; three and five seeds) "
                + "with SGD and EMAs of its weights, then compare SGD with the EMAs (about four minutes on two CPU cores).")
final class DemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "results/demo",
            description = "output directory (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--scale", defaultValue = "full", hidden = true, description = "full, or quick for tests")
    String scale;

    @Option(names = "--seeds", defaultValue = "3", description = "seeds of each run (default: ${DEFAULT-VALUE}; the "
            + "noisy-label run takes at least 5); a verdict needs at least 2")
    int seeds;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        Scale s = StudyOptions.scale(scale);
        Path dir = CommonOptions.writableOutput(out);
        List<RunSpec> runs = StudyPlan.runs(List.of("demo"), s, seeds);
        Path data = dataOrInstall();
        try (Backend backend = common.openBackend()) {
            System.out.println("training on " + backend.name() + "; results in " + dir);
            StudyRunner.runMissing(runs, dir.resolve("cells"), new CellRunner(data, backend),
                    new CellProgress(common.quiet, System.out));
        }
        Path report = StudyReport.write(dir, List.of("demo"), s, seeds, ReproduceCommand.commandLine(spec));
        System.out.println();
        System.out.println(demoSection(Files.readString(report)));
        System.out.println("report: " + report);
        return 0;
    }

    /** The demo's section of the report, without its plots: from its heading to the summary. */
    static String demoSection(String report) {
        int from = report.indexOf("## demo");
        int to = report.indexOf("## Summary", Math.max(from, 0));
        String section = from < 0 ? report : report.substring(from, to < 0 ? report.length() : to);
        return section.lines().filter(l -> !l.startsWith("![")).collect(Collectors.joining("\n")).strip();
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
