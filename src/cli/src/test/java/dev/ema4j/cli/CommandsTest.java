package dev.ema4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.study.StudyPlan;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The commands end to end at the quick (tiny) scale, and their answers to bad options. */
class CommandsTest {

    /** Runs the program; returns {exit code, stdout + stderr}. */
    private static Object[] run(String... args) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.PrintStream saved = System.out;
        java.io.PrintStream savedErr = System.err;
        System.setOut(new java.io.PrintStream(out, true));
        System.setErr(new java.io.PrintStream(out, true));  // picocli's own warnings go to System.err
        try {
            StringWriter err = new StringWriter();
            CommandLine cli = Ema4jCommand.commandLine();
            cli.setErr(new PrintWriter(err));
            int code = cli.execute(args);
            return new Object[] {code, out + err.toString()};
        } finally {
            System.setOut(saved);
            System.setErr(savedErr);
        }
    }

    @Test
    void everyExperimentRunsEndToEndAndItsReportIsComplete(@TempDir Path dir) throws IOException {
        Object[] r = run("reproduce", "all", "--scale", "quick", "--seeds", "2", "--out", dir.toString(), "--quiet");
        assertEquals(0, r[0], (String) r[1]);
        String report = Files.readString(dir.resolve("report.md"));
        assertFalse(report.startsWith("INCOMPLETE") || report.contains("**INCOMPLETE**"), report);
        for (String experiment : StudyPlan.EXPERIMENTS) {
            assertTrue(report.toLowerCase().contains(experiment), "report covers " + experiment);
        }
        assertTrue(report.contains("reproduced") || report.contains("inconclusive"), "verdicts present");
        try (var plots = Files.list(dir.resolve("plots"))) {
            assertTrue(plots.anyMatch(p -> p.toString().endsWith(".png")), "plots written");
        }
        assertTrue(Files.size(dir.resolve("metrics.csv")) > 0);
        Object[] again = run("reproduce", "all", "--scale", "quick", "--seeds", "2", "--out", dir.toString(), "--quiet");
        assertTrue(((String) again[1]).contains("done already, skipped"), "finished cells are not rerun");
        Object[] list = run("reproduce", "all", "--scale", "quick", "--list-cells");
        assertTrue(((String) list[1]).contains("cosine-seed3") && ((String) list[1]).contains("noise40-seed1"));
    }

    /** A snapshotting run, then the post-hoc sweep over its snapshots: the table, the selection, the files. */
    @Test
    void posthocSweepsAFinishedRunsSnapshots(@TempDir Path dir) throws IOException {
        assertEquals(0, run("reproduce", "posthoc", "--scale", "quick", "--seeds", "1", "--out", dir.toString(),
                "--quiet")[0]);
        Path cell = dir.resolve("cells").resolve("posthoc12k-seed1");
        Path out = dir.resolve("posthoc");
        Object[] r = run("posthoc", cell.toString(), "--sigmas", "0.05,0.1,0.2", "--out", out.toString());
        assertEquals(0, r[0], (String) r[1]);
        String text = (String) r[1];
        assertTrue(text.contains("| post-hoc power EMA | 0.050 | 0.0e+00 / 1.00 |"), "a tracked width is exact: "
                + text);
        assertTrue(text.contains("classic EMA α 0.5, rebuilt") && text.contains("classic EMA α 0.5, tracked")
                && text.contains("| last iterate |"), text);
        assertTrue(text.contains("Selected on validation (accuracy, then NLL on ties): post-hoc σ_rel"), text);
        assertTrue(Files.readString(out.resolve("posthoc.md")).contains("Post-hoc − tracked"));
        assertTrue(Files.size(out.resolve("posthoc-sweep.png")) > 1000);
        assertError(run("posthoc", dir.toString(), "--out", out.toString()), "is not a finished snapshotting run");
        assertError(run("posthoc", cell.toString(), "--sigmas", "0.3", "--out", out.toString()), "sigmaRel is 0.3");
    }

    @Test
    void missingCellsMakeTheReportIncomplete(@TempDir Path dir) {
        assertEquals(0, run("reproduce", "bn", "--scale", "quick", "--seeds", "1", "--out", dir.toString(),
                "--quiet")[0]);
        Object[] r = run("report", "all", "--scale", "quick", "--seeds", "1", "--out", dir.toString());
        assertEquals(0, r[0], (String) r[1]);
        String report = assertReadable(dir.resolve("report.md"));
        assertTrue(report.contains("INCOMPLETE"), report.substring(0, Math.min(400, report.length())));
        assertTrue(report.contains("inconclusive (missing cells"), "affected verdicts are inconclusive");
    }

    @Test
    void demoPrintsItsTable(@TempDir Path dir) {
        Object[] r = run("demo", "--scale", "quick", "--out", dir.toString(), "--quiet");
        assertEquals(0, r[0], (String) r[1]);
        String out = (String) r[1];
        assertTrue(out.contains("**Clean labels: test accuracy per epoch (mean ± std over seeds)**")
                && out.contains("| 2 | ") && out.contains("| EMA selected on validation (decay and epoch) | "), out);
        assertTrue(out.contains("EMA is strong early (clean labels)") && !out.contains("![") , out);
        assertTrue(out.contains("3 seeds") || out.contains("on one seed"), "verdicts state their seeds: " + out);
        assertTrue(out.contains("report: " + dir.resolve("report.md")), out);
    }

    @Test
    void badOptionsGiveClearErrors(@TempDir Path dir) throws IOException {
        assertError(run("reproduce", "nosuch"), "unknown experiment \"nosuch\"");
        assertError(run("reproduce", "all", "--seeds", "-1", "--out", dir.toString()), "seeds is -1; must be 1 to 1000");
        assertError(run("reproduce", "all", "--seeds", "2000000000", "--list-cells"),
                "seeds is 2000000000; must be 1 to 1000");
        assertError(run("reproduce", "all", "--scale", "huge"), "--scale is \"huge\"; must be quick or full");
        assertError(run("reproduce", "all", "--out", dir.toString(), "--data", dir.resolve("nowhere").toString()),
                "apt-get install -y dataset-fashion-mnist");
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        assertError(run("reproduce", "all", "--out", file.resolve("sub").toString()),
                "cannot write the output directory");
        assertError(run("report", "all", "--out", dir.resolve("empty").toString()), "holds no cells/ directory");
        assertError(run("reproduce", "all", "--cell", "nosuch-seed9", "--out", dir.toString()),
                "--cell nosuch-seed9 is not a cell");
        assertFalse(Files.exists(dir.resolve("report.md")), "no report from failed commands");
    }

    @Test
    void helpPrintsNoWarnings() {
        for (String command : new String[] {"demo", "reproduce", "report", "bench"}) {
            Object[] r = run(command, "--help");
            assertEquals(0, r[0], (String) r[1]);
            assertFalse(((String) r[1]).contains("WARN"), (String) r[1]);
        }
        Object[] top = run("--help");
        assertFalse(((String) top[1]).contains("WARN"), (String) top[1]);
        assertTrue(((String) run("demo", "--help")[1]).contains("40% label"), "the percent sign prints as is");
    }

    @Test
    void aCorruptCellIsReportedWithItsPath(@TempDir Path dir) throws IOException {
        assertEquals(0, run("reproduce", "bn", "--scale", "quick", "--seeds", "1", "--out", dir.toString(),
                "--quiet")[0]);
        Path result;
        try (var cells = Files.list(dir.resolve("cells"))) {
            result = cells.findFirst().orElseThrow().resolve("result.json");
        }
        Files.writeString(result, "{\"truncated");
        assertError(run("report", "bn", "--scale", "quick", "--seeds", "1", "--out", dir.toString()),
                result + " is not a readable cell result");
    }

    @Test
    void benchReportsThroughput() {
        Object[] r = run("bench", "--backend", "cpu");
        assertEquals(0, r[0], (String) r[1]);
        assertTrue(((String) r[1]).matches("(?s).*images/s.*GB/s.*"), (String) r[1]);
    }

    private static void assertError(Object[] result, String fragment) {
        assertEquals(2, result[0], (String) result[1]);
        assertTrue(((String) result[1]).contains(fragment), "\"" + result[1] + "\" should contain \"" + fragment + "\"");
    }

    private static String assertReadable(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            throw new AssertionError(p + " unreadable", e);
        }
    }
}
