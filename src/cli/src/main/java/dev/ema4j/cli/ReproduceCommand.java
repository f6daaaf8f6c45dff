package dev.ema4j.cli;

import dev.ema4j.backend.Backend;
import dev.ema4j.study.CellRunner;
import dev.ema4j.study.RunSpec;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.StudyRunner;
import dev.ema4j.study.report.StudyReport;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * Runs the cells of one experiment or of all, then writes the report. Each cell is an independent training run
 * ({@code --list-cells}, {@code --cell KEY}), so a job scheduler can spread a study over machines; {@code report}
 * merges whatever cells exist.
 */
@Command(name = "reproduce", mixinStandardHelpOptions = true,
        description = {"Reproduce the paper's findings: run the experiment's training runs (cells) that are missing "
                + "under OUT/cells, then write OUT/report.md with plots, CSV and JSON.",
                "Experiments: dynamics, bn, noise, consistency, calibration, transfer, lr, swa, every, copyback, or "
                        + "all."})
final class ReproduceCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "EXPERIMENT", description = "an experiment or all")
    String experiment;

    @Mixin
    StudyOptions study;

    @Option(names = "--cell", paramLabel = "KEY", description = "run only this cell (no report); see --list-cells")
    String cell;

    @Option(names = "--list-cells", description = "print the cells' keys and exit")
    boolean listCells;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        Scale s = study.scale();
        List<String> experiments = experiments(experiment);
        List<RunSpec> runs = StudyPlan.runs(experiments, s, study.seeds);
        if (listCells) {
            runs.forEach(r -> System.out.println(r.key()));
            return 0;
        }
        if (cell != null) {
            runs = runs.stream().filter(r -> r.key().equals(cell)).toList();
            if (runs.isEmpty()) {
                throw new IllegalArgumentException("--cell " + cell + " is not a cell of " + experiment + " at "
                        + study.scale + " scale; --list-cells lists them");
            }
        }
        Path dir = CommonOptions.writableOutput(study.dir());
        Path data = common.checkedData();
        try (Backend backend = common.openBackend()) {
            StudyRunner.runMissing(runs, dir.resolve("cells"), new CellRunner(data, backend),
                    new CellProgress(common.quiet, System.out));
        }
        if (cell == null) {
            Path report = StudyReport.write(dir, experiments, s, study.seeds, commandLine(spec));
            System.out.println("report: " + report);
        }
        return 0;
    }

    static List<String> experiments(String name) {
        if (name.equals("all")) {
            return StudyPlan.EXPERIMENTS;
        }
        if (!StudyPlan.EXPERIMENTS.contains(name)) {
            throw new IllegalArgumentException("unknown experiment \"" + name + "\"; choose one of "
                    + StudyPlan.EXPERIMENTS + " or all");
        }
        return List.of(name);
    }

    /** The command as the user typed it (the program's arguments, without the JVM's), for the report. */
    static String commandLine(CommandSpec spec) {
        return "ema4j " + String.join(" ", spec.commandLine().getParseResult().originalArgs());
    }
}
