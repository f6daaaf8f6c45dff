package dev.ema4j.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Every entry point rejects bad input with an exception whose message names the argument and its values. */
class InputValidationTest {

    private static final float[] P = {0.5f, 0.5f, 0.25f, 0.75f};  // (N, C) = (2, 2)
    private static final int[] L = {0, 1};

    private static void rejects(String message, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertEquals(message, e.getMessage());
    }

    private static void rejectsNull(String name, Executable call) {
        NullPointerException e = assertThrows(NullPointerException.class, call);
        assertEquals(name, e.getMessage());
    }

    @Test
    void nullArrays() {
        rejectsNull("probs", () -> Classification.top1(null, 2));
        rejectsNull("probs", () -> Classification.accuracy(null, 2, L));
        rejectsNull("labels", () -> Classification.nll(P, 2, null));
        rejectsNull("labels", () -> Calibration.ece(P, 2, null, Binning.EQUAL_MASS, 2));
        rejectsNull("binning", () -> Calibration.reliability(P, 2, L, null, 2));
        rejectsNull("probsA", () -> Consistency.jsDivergence(null, P, 2));
        rejectsNull("probsB", () -> Consistency.churn(P, null, 2));
        rejectsNull("predictionsB", () -> Consistency.churn(L, null));
        rejectsNull("logits", () -> TemperatureScaling.fit(null, 2, L));
        rejectsNull("logits", () -> TemperatureScaling.apply(null, 2, 1.0));
        rejectsNull("probs", () -> Evaluation.of(null, 2, L));
    }

    @Test
    void lengthMismatches() {
        rejects("probs has 1000 values, expected labels.length (99) x classes (10)",
                () -> Classification.accuracy(new float[1000], 10, new int[99]));
        rejects("probs has 4 values, expected labels.length (3) x classes (2)",
                () -> Calibration.ece(P, 2, new int[3], Binning.EQUAL_WIDTH, 15));
        rejects("probs has 5 values, expected a positive multiple of classes (2)",
                () -> Classification.top1(new float[5], 2));
        rejects("probs has 0 values, expected a positive multiple of classes (2)",
                () -> Classification.top1(new float[0], 2));
        rejects("labels is empty", () -> Classification.nll(new float[0], 2, new int[0]));
        rejects("probsB has 2 values, expected probsA.length (4)",
                () -> Consistency.jsDivergence(P, new float[] {1f, 0f}, 2));
        rejects("probsB has 6 values, expected probsA.length (4)",
                () -> Consistency.churn(P, new float[6], 2));
        rejects("predictionsB has 3 values, expected predictionsA.length (2)",
                () -> Consistency.churn(L, new int[3]));
        rejects("predictionsA is empty", () -> Consistency.churn(new int[0], new int[0]));
        rejects("logits has 4 values, expected labels.length (1) x classes (2)",
                () -> TemperatureScaling.fit(new float[4], 2, new int[1]));
        rejects("logits has 3 values, expected a positive multiple of classes (2)",
                () -> TemperatureScaling.apply(new float[3], 2, 1.0));
    }

    @Test
    void tooFewClasses() {
        rejects("classes is 1, expected >= 2", () -> Classification.top1(new float[] {1f}, 1));
        rejects("classes is 1, expected >= 2", () -> Classification.accuracy(new float[] {1f}, 1, new int[1]));
        rejects("classes is 0, expected >= 2", () -> Consistency.jsDivergence(P, P, 0));
        rejects("classes is -3, expected >= 2", () -> TemperatureScaling.apply(P, -3, 1.0));
        rejects("classes is 1, expected >= 2", () -> Evaluation.of(new float[] {1f}, 1, new int[1]));
    }

    @Test
    void tooFewBins() {
        rejects("bins is 0, expected >= 1", () -> Calibration.ece(P, 2, L, Binning.EQUAL_MASS, 0));
        rejects("bins is -1, expected >= 1", () -> Calibration.reliability(P, 2, L, Binning.EQUAL_WIDTH, -1));
        rejects("equalMassBins is 0, expected >= 1", () -> Evaluation.of(P, 2, L, 0, 15));
        rejects("equalWidthBins is 0, expected >= 1", () -> Evaluation.of(P, 2, L, 100, 0));
    }

    @Test
    void badValues() {
        float[] nan = {0.5f, 0.5f, Float.NaN, 1f};
        String nanMessage = "probs[2] is NaN (sample 1, class 0); probabilities must be in [0, 1]";
        rejects(nanMessage, () -> Classification.top1(nan, 2));
        rejects(nanMessage, () -> Classification.accuracy(nan, 2, L));
        rejects(nanMessage, () -> Classification.nll(nan, 2, L));
        rejects(nanMessage, () -> Calibration.ece(nan, 2, L, Binning.EQUAL_MASS, 2));
        rejects(nanMessage, () -> Evaluation.of(nan, 2, L));
        rejects("probsA[2] is NaN (sample 1, class 0); probabilities must be in [0, 1]",
                () -> Consistency.jsDivergence(nan, P, 2));
        rejects("probsB[2] is NaN (sample 1, class 0); probabilities must be in [0, 1]",
                () -> Consistency.churn(P, nan, 2));
        rejects("probs[1] is 1.5 (sample 0, class 1); probabilities must be in [0, 1]",
                () -> Classification.top1(new float[] {0f, 1.5f}, 2));
        rejects("probs[0] is -0.25 (sample 0, class 0); probabilities must be in [0, 1]",
                () -> Classification.nll(new float[] {-0.25f, 1f}, 2, new int[1]));
        rejects("labels[1] is 2, expected 0 <= label < classes (2)",
                () -> Classification.accuracy(P, 2, new int[] {0, 2}));
        rejects("labels[0] is -1, expected 0 <= label < classes (2)",
                () -> TemperatureScaling.fit(P, 2, new int[] {-1, 0}));
        rejects("logits[3] is Infinity (sample 1, class 1); logits must be finite",
                () -> TemperatureScaling.fit(new float[] {0f, 1f, 2f, Float.POSITIVE_INFINITY}, 2, L));
        rejects("logits[0] is NaN (sample 0, class 0); logits must be finite",
                () -> TemperatureScaling.apply(new float[] {Float.NaN, 0f}, 2, 1.0));
        for (double t : new double[] {0.0, -1.0, Double.NaN, Double.POSITIVE_INFINITY}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TemperatureScaling.apply(P, 2, t));
            assertTrue(e.getMessage().startsWith("temperature is " + t), e.getMessage());
        }
        rejects("temperature is 0.0, expected finite and > 0", () -> TemperatureScaling.nll(P, 2, L, 0.0));
    }
}
