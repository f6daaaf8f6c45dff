package dev.ema4j.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Accuracy, NLL and top-1 on examples worked out by hand. */
class ClassificationTest {

    // (N, C) = (3, 3); the true class has probability 0.5, 0.25, 0.75; sample 1 predicts class 1, label 2.
    private static final float[] PROBS = {
        0.5f, 0.25f, 0.25f,
        0.25f, 0.5f, 0.25f,
        0.125f, 0.125f, 0.75f,
    };
    private static final int[] LABELS = {0, 2, 2};

    @Test
    void threeSamplesByHand() {
        assertArrayEquals(new int[] {0, 1, 2}, Classification.top1(PROBS, 3));
        assertEquals(2.0 / 3.0, Classification.accuracy(PROBS, 3, LABELS), 1e-15);
        // −(ln 0.5 + ln 0.25 + ln 0.75)/3 = (ln 2 + 2·ln 2 + ln(4/3))/3
        double nll = (3 * Math.log(2) + Math.log(4.0 / 3.0)) / 3;
        assertEquals(nll, Classification.nll(PROBS, 3, LABELS), 1e-15);
    }

    @Test
    void tiesGoToTheLowestClassIndex() {
        float[] probs = {
            0.25f, 0.25f, 0.25f, 0.25f,
            0.0f, 0.5f, 0.0f, 0.5f,
            0.1f, 0.2f, 0.35f, 0.35f,
        };
        assertArrayEquals(new int[] {0, 1, 2}, Classification.top1(probs, 4));
        assertEquals(1.0, Classification.accuracy(probs, 4, new int[] {0, 1, 2}));
        assertEquals(0.0, Classification.accuracy(probs, 4, new int[] {3, 3, 3}));
    }

    @Test
    void zeroProbabilityIsClampedBeforeTheLog() {
        float[] probs = {1f, 0f, 0.5f, 0.5f};
        // sample 0: −ln(1e-12) = 12·ln 10; sample 1: −ln 0.5 = ln 2
        double expected = (12 * Math.log(10) + Math.log(2)) / 2;
        assertEquals(expected, Classification.nll(probs, 2, new int[] {1, 0}), 1e-12);
        assertEquals(12 * Math.log(10), -Math.log(Classification.MIN_PROBABILITY), 1e-12);
    }
}
