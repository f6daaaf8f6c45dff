package dev.ema4j.study.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.study.RunSpec;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.report.SyntheticStudy.Quality;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reports of hand-made studies ({@link SyntheticStudy}): contents, verdicts and missing cells. */
class StudyReportTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String COMMAND = "ema4j reproduce all --scale quick --seeds 3";

    @TempDir
    Path out;

    @BeforeAll
    static void headless() {
        System.setProperty("java.awt.headless", "true");
    }

    private Path study(List<String> experiments, int seeds, Quality q) throws IOException {
        SyntheticStudy.write(out, StudyPlan.runs(experiments, Scale.QUICK, seeds), q);
        return StudyReport.write(out, experiments, Scale.QUICK, seeds, COMMAND);
    }

    /** "experiment: claim" → outcome, from results.json. */
    private Map<String, String> outcomes() throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        for (JsonNode e : JSON.readTree(out.resolve("results.json").toFile()).get("experiments")) {
            for (JsonNode v : e.get("verdicts")) {
                m.put(e.get("name").asText() + ": " + v.get("claim").get("text").asText(), v.get("outcome").asText());
            }
        }
        return m;
    }

    @Test
    void completeStudyHasEveryTablePlotAndVerdict() throws IOException {
        String md = Files.readString(study(StudyPlan.EXPERIMENTS, 3, Quality.BETTER));

        assertTrue(md.startsWith("# "), md.lines().findFirst().orElse(""));
        for (String heading : List.of("## Setup", "**Environment and invocation**", "**Runs by group",
                "## dynamics: ", "**Test accuracy by run", "## bn: ", "**Gap (pp) by epoch and decay",
                "**12k-image runs with and without BatchNorm", "## noise: ", "**Test accuracy under label noise",
                "**40% noise by training-set size", "## swa: ", "## every: ", "## copyback: ",
                "**Peak LR under cosine",
                "**Memorization at equal clean-train accuracy", "## consistency: ", "**Consistency over 3 seed pair(s)",
                "## calibration: ", "**Test ECE before and after temperature scaling", "## transfer: ",
                "**Linear-probe test accuracy", "## lr: ", "## posthoc: ", "**Post-hoc widths at the end of training",
                "**Tracked EMAs at the end of training", "**Test accuracy by LR schedule", "## Summary",
                "Verdict rules:", COMMAND, "test-cpu")) {
            assertTrue(md.contains(heading), heading);
        }
        List<String> plots = List.of("dynamics-cosine.png", "dynamics-constant.png", "dynamics-step.png",
                "dynamics-overfit.png", "bn-gap.png", "noise-noise20-accuracy.png", "noise-noise20-memorization.png",
                "noise-noise40-accuracy.png", "noise-noise40-memorization.png",
                "noise-noise40-memorization-vs-clean.png", "consistency-churn.png", "consistency-js.png",
                "calibration-reliability.png", "posthoc-sweep.png");
        for (String p : plots) {
            assertTrue(md.contains("](plots/" + p + ")"), p);
            assertTrue(Files.size(out.resolve("plots").resolve(p)) > 1000, p);
        }
        Map<String, String> outcomes = outcomes();
        assertEquals(17, outcomes.size(), outcomes.toString());  // each claim counted once
        outcomes.forEach((claim, outcome) -> assertEquals("reproduced", outcome, claim));
        assertTrue(md.contains("| EMA generalizes better | 77.63 → 78.55 (C100/ResNet-18) |"));
        assertTrue(md.contains("| dynamics | EMA generalizes better |"));
        assertTrue(md.contains("17 reproduced."));
        assertTrue(md.contains("above 0: beats"), "the post-hoc width beats the tracked decays by 0.1 pp");
        assertTrue(md.contains("0.9 @ 1; 0.9 @ 1; 0.9 @ 1 (0.9 ×3)"), "how often each decay was selected");
        assertTrue(md.contains("95% interval"), "every paired verdict states its interval");
    }

    @Test
    void worseEmaIsNotReproduced() throws IOException {
        String md = Files.readString(study(StudyPlan.EXPERIMENTS, 3, Quality.WORSE));

        Map<String, String> outcomes = outcomes();
        assertEquals(17, outcomes.size(), outcomes.toString());
        outcomes.forEach((claim, outcome) -> assertEquals("not reproduced", outcome, claim));
        assertTrue(md.contains("**not reproduced**"));
    }

    @Test
    void metricsCsvHasOneRowPerCellEpochVariantAndSet() throws IOException {
        study(StudyPlan.EXPERIMENTS, 2, Quality.BETTER);

        long expected = 0;
        for (RunSpec s : StudyPlan.runs(StudyPlan.EXPERIMENTS, Scale.QUICK, 2)) {
            int sets = s.memorizationSamples() > 0 ? 3 : 2;
            expected += java.util.stream.IntStream.range(0, s.epochs()).filter(e -> SyntheticStudy.evaluated(s, e))
                    .map(e -> SyntheticStudy.evaluatedVariants(s, e).size() * sets).sum();
        }
        List<String> lines = Files.readAllLines(out.resolve("metrics.csv"));
        assertEquals(MetricsCsv.HEADER, lines.get(0));
        assertEquals(expected, lines.size() - 1);
        String[] row = lines.stream()
                .filter(l -> l.startsWith("noise40-seed1,noise40,1,2,20,0.1,0.5,0.5,ema1/recomputed,0.9,train,"))
                .findFirst().orElseThrow().split(",", -1);
        assertEquals(18, row.length);
        double[] expectedTail = {0.801, 0.199, 0.05, 0.04, 0.8, 0.2, 0.75};
        for (int i = 0; i < expectedTail.length; i++) {
            assertEquals(expectedTail[i], Double.parseDouble(row[11 + i]), 1e-12, MetricsCsv.HEADER.split(",")[11 + i]);
        }
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("cosine-seed2,cosine,2,1,10,0.1,1.0,0.5,sgd,,test,")));
    }

    @Test
    void missingCellMakesItsExperimentsInconclusive() throws IOException {
        List<String> experiments = List.of("dynamics", "transfer");
        SyntheticStudy.write(out, StudyPlan.runs(experiments, Scale.QUICK, 3), Quality.BETTER);
        deleteCell("step-seed1");

        String md = Files.readString(StudyReport.write(out, experiments, Scale.QUICK, 3, COMMAND));

        assertTrue(md.startsWith("**INCOMPLETE: 1 of 15 expected cells missing: step-seed1 (not run).**"),
                md.lines().findFirst().orElse(""));
        Map<String, String> outcomes = outcomes();
        outcomes.forEach((claim, outcome) -> assertEquals(claim.startsWith("dynamics") ? "inconclusive"
                : "reproduced", outcome, claim));
        assertEquals(4, outcomes.size(), outcomes.toString());
        assertTrue(md.contains("| **inconclusive (missing cells: step-seed1)** |"));
        assertTrue(md.contains("| dynamics | EMA generalizes better | — | inconclusive (missing cells: step-seed1) |"));
        assertTrue(md.contains("| transfer | EMA transfers better |"));
        // each cell's minutes (the synthetic cells take `seed` minutes), the missing one as "—", and the total
        assertTrue(md.contains("**Training time of each cell"), md);
        assertTrue(md.contains("| step | — | 2.0 | 3.0 | 5.0 |"), md);
        assertTrue(md.contains("| cosine | 1.0 | 2.0 | 3.0 | 6.0 |"), md);
        assertTrue(md.contains("| all |  |  |  | 29.0 |"), md);
        assertTrue(md.contains("| training time | 0.5 h over 14 cells (cells read; each cell below) |"), md);
        JsonNode results = JSON.readTree(out.resolve("results.json").toFile());
        assertEquals(false, results.get("complete").asBoolean());
        assertEquals("step-seed1", results.get("experiments").get(0).get("missingCells").get(0).asText());
    }

    @Test
    void cellFromAnotherSpecCountsAsMissing() throws IOException {
        List<String> experiments = List.of("bn", "transfer");
        SyntheticStudy.write(out, StudyPlan.runs(experiments, Scale.QUICK, 3), Quality.BETTER);
        RunSpec other = StudyPlan.spec("cosine", Scale.FULL, 1);
        SyntheticStudy.writeCell(out.resolve("cells"), other, Quality.BETTER);

        String md = Files.readString(StudyReport.write(out, experiments, Scale.QUICK, 3, COMMAND));

        assertTrue(md.startsWith("**INCOMPLETE: 1 of 12 expected cells missing: cosine-seed1 (made from another "
                + "spec).**"), md.lines().findFirst().orElse(""));
        Map<String, String> outcomes = outcomes();
        assertEquals("inconclusive", outcomes.get("bn: recomputing BN statistics improves the EMA"));
        assertEquals("inconclusive", outcomes.get("bn: long windows suffer without recompute"));
        assertEquals("reproduced", outcomes.get("transfer: EMA transfers better"));
    }

    @Test
    void singleSeedConsistencyIsInconclusive() throws IOException {
        String md = Files.readString(study(List.of("consistency"), 1, Quality.BETTER));

        assertTrue(md.startsWith("# "));
        assertEquals(Map.of("consistency: EMA predictions are more consistent", "inconclusive"), outcomes());
    }

    @Test
    void demoShowsEpochsIntervalsAndTies() throws IOException {
        String md = Files.readString(study(List.of("demo"), 3, Quality.BETTER));

        assertTrue(md.contains("**Clean labels: test accuracy per epoch (mean ± std over seeds)**"), md);
        // epoch 1: SGD (recomputed) 0.702 + 0.001s, the EMA chosen on validation (the third) 0.82 + 0.001s, each
        // within 0.05 pp (SyntheticStudy.jitter)
        assertTrue(md.matches("(?s).*\\| 1 \\| 70\\.(3|4)\\d ± 0\\.\\d\\d \\| 70\\.[12]\\d ± 0\\.\\d\\d \\| "
                + "82\\.[12]\\d ± 0\\.\\d\\d \\| 11\\.[78]\\d ± 0\\.0\\d \\| \\[\\+11\\.\\d\\d pp, \\+11\\.\\d\\d pp\\] "
                + "\\| EMA ahead \\|.*"), md);
        assertTrue(md.contains("**40% noisy labels: test set (mean ± std over seeds)**"), md);
        assertTrue(md.contains("looks underconfident on clean labels"), md);
        assertTrue(md.contains("| scale | the demo's settings (runs below) |"), md);
        assertTrue(md.contains("| seeds | every group: 1..3 |"), md);
        assertTrue(Files.size(out.resolve("plots/demo-clean.png")) > 1000);
        assertTrue(Files.size(out.resolve("plots/demo-noise40.png")) > 1000);
        assertEquals(Map.of("demo: EMA is strong early (clean labels)", "reproduced",
                "demo: EMA generalizes better (clean labels)", "reproduced",
                "demo: EMA is robust to label noise (40% noisy labels)", "reproduced"), outcomes());
    }

    @Test
    void demoWithOneSeedGivesNoVerdict() throws IOException {
        String md = Files.readString(study(List.of("demo"), 1, Quality.BETTER));

        outcomes().forEach((claim, outcome) -> assertEquals("inconclusive", outcome, claim));
        assertTrue(md.contains("on one seed: no interval, so no verdict"), md);
        assertTrue(md.contains("| one seed |"), md);
    }

    private void deleteCell(String key) throws IOException {
        Path dir = out.resolve("cells").resolve(key);
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
    }
}
