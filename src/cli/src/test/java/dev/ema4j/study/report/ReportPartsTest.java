package dev.ema4j.study.report;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
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
    void gainRuleUsesOneStandardError() {
        assertEquals(Outcome.REPRODUCED, Verdict.gain(CLAIM, "", 0.001).outcome());
        assertEquals(Outcome.NOT_REPRODUCED, Verdict.gain(CLAIM, "", 0.0).outcome());
        // mean 0.01, std 0.0361, SE 0.0208 > mean
        assertEquals(Outcome.INCONCLUSIVE, Verdict.gain(CLAIM, "", -0.02, 0.02, 0.03).outcome());
        // mean 0.02, SE 0.0058 < mean
        assertEquals(Outcome.REPRODUCED, Verdict.gain(CLAIM, "", 0.01, 0.02, 0.03).outcome());
        assertEquals(Outcome.NOT_REPRODUCED, Verdict.gain(CLAIM, "", 0.01, -0.02, -0.03).outcome());
    }

    @Test
    void robustnessRuleHasTwoPercentagePointThreshold() {
        assertEquals(Outcome.REPRODUCED, NoiseSection.robustness(CLAIM, "", 0.02).outcome());
        assertEquals(Outcome.INCONCLUSIVE, NoiseSection.robustness(CLAIM, "", 0.0199).outcome());
        assertEquals(Outcome.INCONCLUSIVE, NoiseSection.robustness(CLAIM, "", 0).outcome());
        assertEquals(Outcome.NOT_REPRODUCED, NoiseSection.robustness(CLAIM, "", -0.001).outcome());
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
                Map.of()), Path.of("unused"));
        assertEquals(0.2, NoiseSection.memorizedAt(c, "sgd", 0.6), 1e-12);
        assertEquals(0.1, NoiseSection.memorizedAt(c, "sgd", 0.4), 1e-12);
        assertEquals(0.6, NoiseSection.memorizedAt(c, "sgd", 0.8), 1e-12);
        assertEquals(Double.NaN, NoiseSection.memorizedAt(c, "sgd", 0.95));
    }
}
