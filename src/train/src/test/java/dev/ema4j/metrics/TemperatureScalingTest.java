package dev.ema4j.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Fitting recovers a known temperature; applying it is a tempered softmax. */
class TemperatureScalingTest {

    /** 20 000 samples of C = 10 logits z ~ 4·N(0, 1), labels drawn from softmax(z/2). */
    @Test
    void fitRecoversTheTemperatureThatGeneratedTheLabels() {
        int n = 20_000;
        int classes = 10;
        Random rnd = new Random(42);
        float[] logits = new float[n * classes];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < classes; c++) {
                logits[i * classes + c] = (float) (4 * rnd.nextGaussian());
            }
        }
        float[] truth = TemperatureScaling.apply(logits, classes, 2.0);
        for (int i = 0; i < n; i++) {
            double u = rnd.nextDouble();
            int c = 0;
            for (double cum = truth[i * classes]; cum < u && c < classes - 1; cum += truth[i * classes + c]) {
                c++;
            }
            labels[i] = c;
        }
        double t = TemperatureScaling.fit(logits, classes, labels);
        assertEquals(2.0, t, 0.1, "fitted T");
        double best = TemperatureScaling.nll(logits, classes, labels, t);
        assertTrue(best <= TemperatureScaling.nll(logits, classes, labels, t * 1.01));
        assertTrue(best <= TemperatureScaling.nll(logits, classes, labels, t / 1.01));
        assertTrue(best < TemperatureScaling.nll(logits, classes, labels, 1.0));
    }

    @Test
    void applyAtTemperatureOneIsSoftmax() {
        float ln3 = (float) Math.log(3);
        float[] logits = {0f, ln3, 5f, 5f, 5f, 0f};
        // C = 2: softmax(0, ln 3) = (1, 3)/4; softmax(5, 5) = (½, ½); softmax(5, 0) = (1, e⁻⁵)/(1 + e⁻⁵)
        float top = (float) (1 / (1 + Math.exp(-5)));
        float[] expected = {0.25f, 0.75f, 0.5f, 0.5f, top, 1 - top};
        assertArrayEquals(expected, TemperatureScaling.apply(logits, 2, 1.0), 1e-7f);
        // T = 2 on (0, 2·ln 3) gives softmax(0, ln 3) again
        assertArrayEquals(new float[] {0.25f, 0.75f},
                TemperatureScaling.apply(new float[] {0f, 2 * ln3}, 2, 2.0), 1e-7f);
    }

    @Test
    void nllAtTemperatureOneMatchesClassificationNll() {
        float[] logits = {1f, -2f, 0.5f, 3f, 0f, -1f};
        int[] labels = {2, 0};
        float[] probs = TemperatureScaling.apply(logits, 3, 1.0);
        assertEquals(Classification.nll(probs, 3, labels), TemperatureScaling.nll(logits, 3, labels, 1.0), 1e-6);
    }

    @Test
    void separableDataDriveTheFitToTheLowerBound() {
        // the label always has the largest logit, so sharper is always better: T → 0, clamped to 1e-2
        float[] logits = {2f, 0f, 0f, 1f, -1f, 3f};
        double t = TemperatureScaling.fit(logits, 2, new int[] {0, 1, 1});
        assertEquals(TemperatureScaling.MIN_TEMPERATURE, t, TemperatureScaling.MIN_TEMPERATURE * 1e-5);
    }
}
