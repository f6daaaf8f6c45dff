package dev.ema4j.cli;

import dev.ema4j.study.report.StudyReport;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** Merges the cells that exist under OUT/cells into OUT/report.md; lists the missing ones. */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Write OUT/report.md (plots, CSV, JSON) from the finished cells under OUT/cells; missing cells "
                + "are listed and make their experiments' verdicts inconclusive.")
final class ReportCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "EXPERIMENT", defaultValue = "all", description = "an experiment or all")
    String experiment;

    @Mixin
    StudyOptions study;

    @Override
    public Integer call() throws Exception {
        List<String> experiments = ReproduceCommand.experiments(experiment);
        Path dir = study.dir();
        if (!Files.isDirectory(dir.resolve("cells"))) {
            throw new IllegalArgumentException(dir + " holds no cells/ directory: run `ema4j reproduce` first");
        }
        CommonOptions.writableOutput(dir);
        System.out.println("report: " + StudyReport.write(dir, experiments, study.scale(), study.seeds,
                ReproduceCommand.commandLine(spec)));
        return 0;
    }
}
