package dev.ema4j.study.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.report.Verdict.Expect;
import dev.ema4j.study.report.Verdict.Outcome;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The report's building blocks: number formatting, Markdown tables, the verdict rules, interpolation. */
class ReportPartsTest {

    private static final Claim CLAIM = new Claim("c", "p", "r");

    @Test
    void statPrintsMeanAndSampleStd() {
        assertEquals("91.23", Stat.percent(0.9123).toString());
        assertEquals("2.00 ± 1.41", Stat.of(2, 1, 3).toString());
        assertEquals(Math.sqrt(2), Stat.of(2, 1, 3).std(), 1e-15);
    }

    @Test
    void tableRightAlignsNumbersAndEscapesPipes() {
        String md = Table.of("t", "name", "value").row("a|b", Stat.of(1, 2.5)).markdown();
        assertEquals("| name | value |\n|---|---:|\n| a\\|b | 2.5 |\n", md);
    }

    @Test
    void oneSeedIsNeverReproduced() {
        Verdict v = Verdict.paired(CLAIM, "", "gain", Expect.ABOVE_0, Fmt::pp, 0.05);
        assertEquals(Outcome.INCONCLUSIVE, v.outcome());
        assertTrue(v.reason().contains("one seed"), v.reason());
        assertEquals(Outcome.INCONCLUSIVE, Verdict.paired(CLAIM, "", "gain", Expect.BELOW_0, Fmt::pp, -0.05).outcome());
    }

    @Test
    void anIntervalAroundZeroIsInconclusive() {
        // mean 0.01, std 0.0265, half-width t(2) · std / √3 = 4.303 · 0.0265 / 1.732 = 0.0657
        Verdict v = Verdict.paired(CLAIM, "", "gain", Expect.ABOVE_0, Fmt::pp, -0.02, 0.02, 0.03);
        assertEquals(Outcome.INCONCLUSIVE, v.outcome());
        assertTrue(v.reason().contains("[-5.57 pp, +7.57 pp]"), v.reason());
        // a mean 1.73 standard errors above 0 (the old one-standard-error rule said "reproduced") is inconclusive
        assertEquals(Outcome.INCONCLUSIVE, Verdict.paired(CLAIM, "", "gain", Expect.ABOVE_0, Fmt::pp,
                0.0, 0.01, 0.02).outcome());
    }

    @Test
    void sameLrCostComparesTheEmaAtSgdsLrWithItsOwnPerSeed() {
        // 3 LRs × 3 seeds; SGD prefers LR 2 on every seed, the EMA LR 2, LR 1 (a tie with LR 2: the first), LR 0
        double[][] sgdVal = {{0.80, 0.81, 0.80}, {0.85, 0.84, 0.86}, {0.90, 0.89, 0.91}};
        double[][] emaVal = {{0.80, 0.81, 0.95}, {0.85, 0.90, 0.86}, {0.91, 0.90, 0.90}};
        double[][] emaTest = {{0.70, 0.71, 0.72}, {0.75, 0.76, 0.77}, {0.80, 0.79, 0.78}};
        int[] sgd = LrSection.bestPerSeed(sgdVal);
        int[] ema = LrSection.bestPerSeed(emaVal);
        assertEquals(List.of(2, 2, 2), java.util.Arrays.stream(sgd).boxed().toList());
        assertEquals(List.of(2, 1, 0), java.util.Arrays.stream(ema).boxed().toList());
        double[] cost = LrSection.costOfSgdsLr(sgd, ema, emaTest);
        assertEquals(0, cost[0], 1e-12);                  // the same LR
        assertEquals(0.79 - 0.76, cost[1], 1e-12);        // EMA at SGD's LR 2 − at its own LR 1
        assertEquals(0.78 - 0.72, cost[2], 1e-12);
    }

    @Test
    void atLeastSaysMatchesBeatsOrWorse() {
        Verdict beats = Verdict.atLeast(CLAIM, "", "d", 0.005, Fmt::pp, 0.010, 0.012, 0.011);
        assertEquals(Outcome.REPRODUCED, beats.outcome());
        assertTrue(beats.reason().contains("beats"), beats.reason());
        Verdict matches = Verdict.atLeast(CLAIM, "", "d", 0.005, Fmt::pp, -0.001, 0.001, 0.0);
        assertEquals(Outcome.REPRODUCED, matches.outcome());
        assertTrue(matches.reason().contains("matches"), matches.reason());
        assertEquals(Outcome.NOT_REPRODUCED, Verdict.atLeast(CLAIM, "", "d", 0.005, Fmt::pp, -0.02, -0.021, -0.019)
                .outcome());
        // mean −0.2 pp but wide: reaches below −0.5 pp
        assertEquals(Outcome.INCONCLUSIVE, Verdict.atLeast(CLAIM, "", "d", 0.005, Fmt::pp, -0.01, 0.006, -0.002)
                .outcome());
        assertEquals(Outcome.INCONCLUSIVE, Verdict.atLeast(CLAIM, "", "d", 0.005, Fmt::pp, 0.02).outcome());
    }

    @Test
    void aClearEffectIsReproducedInTheClaimedDirectionOnly() {
        double[] up = {0.01, 0.02, 0.03};  // mean 0.02, std 0.01: interval [−0.0048, 0.0448]
        assertEquals(Outcome.INCONCLUSIVE, Verdict.paired(CLAIM, "", "g", Expect.ABOVE_0, Fmt::pp, up).outcome());
        double[] clear = {0.039, 0.041, 0.040, 0.038, 0.042};
        assertEquals(Outcome.REPRODUCED, Verdict.paired(CLAIM, "", "g", Expect.ABOVE_0, Fmt::pp, clear).outcome());
        assertEquals(Outcome.NOT_REPRODUCED, Verdict.paired(CLAIM, "", "g", Expect.BELOW_0, Fmt::pp, clear)
                .outcome());
        double[] down = {-0.039, -0.041, -0.040};
        assertEquals(Outcome.REPRODUCED, Verdict.paired(CLAIM, "", "g", Expect.BELOW_0, Fmt::pp, down).outcome());
        assertEquals(Outcome.NOT_REPRODUCED, Verdict.paired(CLAIM, "", "g", Expect.ABOVE_0, Fmt::pp, down)
                .outcome());
    }

    @Test
    void pairedIntervalUsesStudentT() {
        assertEquals(12.706, Paired.t975(1), 1e-9);
        assertEquals(4.303, Paired.t975(2), 1e-9);
        assertEquals(2.042, Paired.t975(30), 1e-9);
        // the expansion beyond the table: t(0.975, 31) = 2.0395, t(0.975, 60) = 2.0003, t(0.975, 1000) = 1.9623
        assertEquals(2.0395, Paired.t975(31), 1e-3);
        assertEquals(2.0003, Paired.t975(60), 1e-3);
        assertEquals(1.9623, Paired.t975(1000), 1e-3);
        Paired p = Paired.of(1, 2, 3);
        assertEquals(2, p.mean(), 1e-12);
        assertEquals(2 - 4.303 / Math.sqrt(3), p.lo(), 1e-9);
        assertEquals(2 + 4.303 / Math.sqrt(3), p.hi(), 1e-9);
        assertTrue(Double.isNaN(Paired.of(1).lo()));
        assertThrows(IllegalArgumentException.class, Paired::of);
        assertThrows(IllegalArgumentException.class, () -> Paired.t975(0));
    }

    @Test
    void memorizationIsInterpolatedAtTheFirstCrossing() {
        // clean-train accuracy 0.5, 0.7, 0.6, 0.9 with memorized 0.1, 0.3, 0.2, 0.8
        double[][] points = {{0.5, 0.1}, {0.7, 0.3}, {0.6, 0.2}, {0.9, 0.8}};
        List<EpochRecord> epochs = new java.util.ArrayList<>();
        for (int e = 0; e < points.length; e++) {
            epochs.add(new EpochRecord(e, e, 0.1, 1, 0.5, List.of(new VariantRecord("sgd", "train", 0.5, 1, 0, 0,
                    points[e][0], points[e][1], 0.0))));
        }
        Cell c = new Cell(new CellResult(StudyPlan.spec("noise40", Scale.QUICK, 1), Map.of(), 0, epochs, Map.of(),
                Map.of(), List.of()), Path.of("unused"));
        assertEquals(0.2, NoiseSection.memorizedAt(c, "sgd", 0.6), 1e-12);
        assertEquals(0.1, NoiseSection.memorizedAt(c, "sgd", 0.4), 1e-12);
        assertEquals(0.6, NoiseSection.memorizedAt(c, "sgd", 0.8), 1e-12);
        assertEquals(Double.NaN, NoiseSection.memorizedAt(c, "sgd", 0.95));
    }

    @Test
    void theSgdBaselineIsChosenOnValidationNotTest() {
        // live model (recomputed statistics): epoch 1 validates worse but tests better than the last epoch
        double[][] valTest = {{0.50, 0.90}, {0.60, 0.70}};
        Cell c = sgdCell(valTest);
        assertEquals(0.70, NoiseSection.betterSgd(c), 1e-12, "the last iterate validates better");
        assertEquals(0.70, c.earlyStoppedTestAccuracy(c.live()), 1e-12);
        // early stopping validates better: its test accuracy, even though the last iterate tests higher
        Cell early = sgdCell(new double[][] {{0.65, 0.60}, {0.60, 0.80}});
        assertEquals(0.60, NoiseSection.betterSgd(early), 1e-12);
    }

    /** A cell with "sgd" (running statistics, test 0) and "sgd/recomputed" records {val, test} per epoch. */
    private static Cell sgdCell(double[][] valTest) {
        List<EpochRecord> epochs = new java.util.ArrayList<>();
        for (int e = 0; e < valTest.length; e++) {
            epochs.add(new EpochRecord(e, e, 0.1, 1, 0.5, List.of(
                    new VariantRecord("sgd", "val", 0.99, 1, 0, 0, null, null, null),
                    new VariantRecord("sgd", "test", 0.0, 1, 0, 0, null, null, null),
                    new VariantRecord("sgd/recomputed", "val", valTest[e][0], 1, 0, 0, null, null, null),
                    new VariantRecord("sgd/recomputed", "test", valTest[e][1], 1, 0, 0, null, null, null))));
        }
        return new Cell(new CellResult(StudyPlan.spec("noise40", Scale.QUICK, 1), Map.of(), 0, epochs, Map.of(),
                Map.of(), List.of()), Path.of("unused"));
    }
}
