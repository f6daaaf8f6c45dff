package dev.ema4j.study;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Runs the cells of a study that are not published yet, one after the other. */
public final class StudyRunner {

    private StudyRunner() {
    }

    /**
     * Runs every spec of {@code runs} whose cell is missing under {@code cells}; returns the keys it ran.
     *
     * @throws IllegalStateException if a published cell was made from another spec (another scale or version):
     *     choose another output directory
     */
    public static List<String> runMissing(List<RunSpec> runs, Path cells, CellRunner runner, Progress progress)
            throws IOException {
        List<String> ran = new ArrayList<>();
        for (RunSpec spec : runs) {
            CellResult existing = CellRunner.read(cells, spec);
            if (existing != null) {
                if (!existing.spec().equals(spec)) {
                    throw new IllegalStateException("cell " + spec.key() + " in " + cells + " was made from "
                            + existing.spec() + ", not " + spec + "; use another output directory");
                }
                progress.line(spec.key() + ": done already, skipped");
                continue;
            }
            runner.run(spec, cells, progress);
            ran.add(spec.key());
        }
        return ran;
    }
}
