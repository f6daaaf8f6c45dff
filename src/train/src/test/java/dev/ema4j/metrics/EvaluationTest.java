package dev.ema4j.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The one-call summary equals the separate metrics with the documented bin counts. */
class EvaluationTest {

    @Test
    void summaryMatchesTheSeparateMetrics() {
        int n = 500;
        int classes = 5;
        Random rnd = new Random(3);
        float[] logits = new float[n * classes];
        int[] labels = new int[n];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (2 * rnd.nextGaussian());
        }
        for (int i = 0; i < n; i++) {
            labels[i] = rnd.nextInt(classes);
        }
        float[] probs = TemperatureScaling.apply(logits, classes, 1.0);

        Evaluation e = Evaluation.of(probs, classes, labels);
        assertEquals(new Evaluation(
                Classification.accuracy(probs, classes, labels),
                Classification.nll(probs, classes, labels),
                Calibration.ece(probs, classes, labels, Binning.EQUAL_MASS, 100),
                Calibration.ece(probs, classes, labels, Binning.EQUAL_WIDTH, 15)), e);

        Evaluation custom = Evaluation.of(probs, classes, labels, 10, 3);
        assertEquals(Calibration.ece(probs, classes, labels, Binning.EQUAL_MASS, 10), custom.eceEqualMass());
        assertEquals(Calibration.ece(probs, classes, labels, Binning.EQUAL_WIDTH, 3), custom.eceEqualWidth());
    }
}
