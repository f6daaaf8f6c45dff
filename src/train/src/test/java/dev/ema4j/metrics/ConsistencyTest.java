package dev.ema4j.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Churn and Jensen–Shannon divergence on hand-made predictions. */
class ConsistencyTest {

    @Test
    void churnOfPredictedClasses() {
        assertEquals(0.5, Consistency.churn(new int[] {0, 1, 2, 1}, new int[] {0, 2, 2, 0}));
        assertEquals(0.0, Consistency.churn(new int[] {3, 1}, new int[] {3, 1}));
    }

    @Test
    void churnOfProbabilitiesUsesTop1WithTies() {
        // A predicts 0 (tie), 1, 1; B predicts 0, 0, 1: one of three differs
        float[] a = {0.5f, 0.5f, 0.25f, 0.75f, 0.0f, 1.0f};
        float[] b = {0.75f, 0.25f, 0.5f, 0.5f, 0.125f, 0.875f};
        assertEquals(1.0 / 3.0, Consistency.churn(a, b, 2), 1e-15);
    }

    @Test
    void jsOfIdenticalDistributionsIsZero() {
        float[] p = {0.2f, 0.3f, 0.5f, 1f, 0f, 0f};
        assertEquals(0.0, Consistency.jsDivergence(p, p.clone(), 3));
    }

    @Test
    void jsOfDisjointOneHotsIsLn2() {
        float[] p = {1f, 0f, 0f, 0f, 0f, 1f};
        float[] q = {0f, 1f, 0f, 0f, 1f, 0f};
        assertEquals(Math.log(2), Consistency.jsDivergence(p, q, 3), 1e-15);
    }

    @Test
    void jsByHandAndSymmetric() {
        // p = (1, 0), q = (½, ½): m = (¾, ¼); KL(p‖m) = ln(4/3); KL(q‖m) = ½·ln(2/3) + ½·ln 2 = ½·ln(4/3);
        // JS = ½·ln(4/3) + ¼·ln(4/3) = ¾·ln(4/3). Second sample identical (JS 0), so the mean is ⅜·ln(4/3).
        float[] p = {1f, 0f, 0.25f, 0.75f};
        float[] q = {0.5f, 0.5f, 0.25f, 0.75f};
        double expected = 0.375 * Math.log(4.0 / 3.0);
        assertEquals(expected, Consistency.jsDivergence(p, q, 2), 1e-15);
        assertEquals(expected, Consistency.jsDivergence(q, p, 2), 1e-15);
    }
}
