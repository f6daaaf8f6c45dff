package dev.ema4j.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.metrics.ReliabilityDiagram.Bin;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** ECE and reliability bins of both binnings on hand-made sets (confidences exact in binary, so sums are exact). */
class CalibrationTest {

    /** One (C = 4) row with top-1 probability {@code top} on class {@code cls}, the rest spread over the others. */
    private static float[] row(int cls, float top) {
        float[] r = new float[4];
        for (int c = 0; c < 4; c++) {
            r[c] = c == cls ? top : (1 - top) / 3;
        }
        return r;
    }

    private static float[] rows(float[]... rows) {
        float[] out = new float[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, out, i * rows[i].length, rows[i].length);
        }
        return out;
    }

    @Test
    void perfectlyCalibratedSetHasZeroEce() {
        // eight samples at confidence 0.75 on class 0, three of each (index-ordered) half labelled 0:
        // every bin that keeps whole halves has acc 0.75 = conf 0.75
        float[] probs = new float[8 * 4];
        for (int i = 0; i < 8; i++) {
            System.arraycopy(row(0, 0.75f), 0, probs, 4 * i, 4);
        }
        int[] labels = {0, 1, 0, 0, 0, 0, 2, 0};
        for (int bins : new int[] {1, 2, 15, 100}) {
            assertEquals(0.0, Calibration.ece(probs, 4, labels, Binning.EQUAL_WIDTH, bins), "equal width " + bins);
        }
        for (int bins : new int[] {1, 2}) {
            assertEquals(0.0, Calibration.ece(probs, 4, labels, Binning.EQUAL_MASS, bins), "equal mass " + bins);
        }
        // four equal-mass bins split the halves: {✓✗} {✓✓} {✓✓} {✗✓}, gaps ¼ each, ECE = 0.25
        assertEquals(0.25, Calibration.ece(probs, 4, labels, Binning.EQUAL_MASS, 4));
    }

    /**
     * Six samples (stored out of order) with confidence and correctness
     * 0.25 ✓ (uniform row: top-1 is class 0 by the tie rule), 0.375 ✗, 0.5 ✗, 0.75 ✓, 0.875 ✓, 1.0 ✓.
     */
    private static final float[] SIX = rows(
            row(1, 0.875f),                    // 0.875, label 1 ✓
            new float[] {0.25f, 0.25f, 0.25f, 0.25f}, // 0.25, label 0 ✓
            row(3, 1.0f),                      // 1.0, label 3 ✓
            row(2, 0.375f),                    // 0.375, label 0 ✗
            row(0, 0.75f),                     // 0.75, label 0 ✓
            new float[] {0.5f, 0.5f, 0f, 0f}); // 0.5 on class 0, label 1 ✗
    private static final int[] SIX_LABELS = {1, 0, 3, 0, 0, 1};

    @Test
    void equalWidthTwoBinsByHand() {
        // [0, 0.5): {0.25 ✓, 0.375 ✗}: conf 0.3125, acc 0.5, gap 0.1875
        // [0.5, 1]: {0.5 ✗, 0.75 ✓, 0.875 ✓, 1.0 ✓}: conf 3.125/4 = 0.78125, acc 0.75, gap 0.03125
        // ECE = (2·0.1875 + 4·0.03125)/6 = 0.5/6 = 1/12
        ReliabilityDiagram d = Calibration.reliability(SIX, 4, SIX_LABELS, Binning.EQUAL_WIDTH, 2);
        assertEquals(List.of(new Bin(0.0, 0.5, 2, 0.3125, 0.5), new Bin(0.5, 1.0, 4, 0.78125, 0.75)), d.bins());
        assertEquals(6, d.samples());
        assertEquals(1.0 / 12.0, d.ece(), 1e-15);
        assertEquals(1.0 / 12.0, Calibration.ece(SIX, 4, SIX_LABELS, Binning.EQUAL_WIDTH, 2), 1e-15);
    }

    @Test
    void equalMassThreeBinsByHand() {
        // sorted: {0.25 ✓, 0.375 ✗} conf 0.3125 acc 0.5 gap 0.1875; {0.5 ✗, 0.75 ✓} conf 0.625 acc 0.5 gap 0.125;
        // {0.875 ✓, 1.0 ✓} conf 0.9375 acc 1 gap 0.0625. ECE = (2/6)·(0.1875 + 0.125 + 0.0625) = 0.375/3 = 0.125
        ReliabilityDiagram d = Calibration.reliability(SIX, 4, SIX_LABELS, Binning.EQUAL_MASS, 3);
        assertEquals(List.of(
                new Bin(0.25, 0.375, 2, 0.3125, 0.5),
                new Bin(0.5, 0.75, 2, 0.625, 0.5),
                new Bin(0.875, 1.0, 2, 0.9375, 1.0)), d.bins());
        assertEquals(0.125, d.ece(), 1e-15);
        assertEquals(Binning.EQUAL_MASS, d.binning());
    }

    @Test
    void equalMassBreaksConfidenceTiesBySampleIndex() {
        // all at confidence 0.5 (C = 2, top-1 class 0); samples 0, 1 correct, 2, 3 wrong.
        // By index: bins {0, 1} acc 1 and {2, 3} acc 0, ECE = ½·0.5 + ½·0.5 = 0.5 (any other order gives less).
        float[] probs = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
        ReliabilityDiagram d = Calibration.reliability(probs, 2, new int[] {0, 0, 1, 1}, Binning.EQUAL_MASS, 2);
        assertEquals(1.0, d.bins().get(0).accuracy());
        assertEquals(0.0, d.bins().get(1).accuracy());
        assertEquals(0.5, d.ece());
    }

    @Test
    void equalMassCountsDifferByAtMostOne() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 50; trial++) {
            int n = 1 + rnd.nextInt(300);
            int bins = 1 + rnd.nextInt(120);
            float[] probs = new float[2 * n];
            int[] labels = new int[n];
            for (int i = 0; i < n; i++) {
                probs[2 * i] = rnd.nextInt(4) / 4f;  // many ties
                probs[2 * i + 1] = 1 - probs[2 * i];
                labels[i] = rnd.nextInt(2);
            }
            List<Bin> bs = Calibration.reliability(probs, 2, labels, Binning.EQUAL_MASS, bins).bins();
            int min = bs.stream().mapToInt(Bin::count).min().orElseThrow();
            int max = bs.stream().mapToInt(Bin::count).max().orElseThrow();
            assertEquals(bins, bs.size());
            assertEquals(n, bs.stream().mapToInt(Bin::count).sum());
            assertTrue(max - min <= 1, "n " + n + " bins " + bins + ": counts " + min + ".." + max);
            for (int b = 1; b < bs.size(); b++) {
                if (bs.get(b - 1).count() > 0 && bs.get(b).count() > 0) {
                    assertTrue(bs.get(b - 1).upper() <= bs.get(b).lower(), "bins are in confidence order");
                }
            }
        }
    }

    @Test
    void confidenceOneLandsInTheLastEqualWidthBin() {
        ReliabilityDiagram d = Calibration.reliability(new float[] {0f, 1f}, 2, new int[] {1},
                Binning.EQUAL_WIDTH, 15);
        assertEquals(15, d.bins().size());
        assertEquals(new Bin(14.0 / 15, 1.0, 1, 1.0, 1.0), d.bins().get(14));
        assertEquals(0, d.bins().get(0).count());
        assertTrue(Double.isNaN(d.bins().get(0).meanConfidence()), "an empty bin has NaN mean confidence");
        assertEquals(0.0, d.ece());
    }
}
