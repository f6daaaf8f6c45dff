package dev.ema4j.study.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.TensorInfo;
import dev.ema4j.metrics.Binning;
import dev.ema4j.metrics.Calibration;
import dev.ema4j.metrics.Consistency;
import dev.ema4j.metrics.TemperatureScaling;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.report.SyntheticStudy.Quality;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The churn, JS divergence, ECE and temperature of the report equal those computed here directly with the metrics
 * package from the same predictions files.
 */
class ReportNumbersTest {

    /** The EMA of the lowest validation NLL in {@link SyntheticStudy}: the most accurate, the longest decay. */
    private static final String EMA = "ema1/recomputed";

    @TempDir
    Path out;

    @BeforeAll
    static void headless() {
        System.setProperty("java.awt.headless", "true");
    }

    @Test
    void consistencyAndCalibrationMatchTheMetricsPackage() throws IOException {
        List<String> experiments = List.of("consistency", "calibration");
        SyntheticStudy.write(out, StudyPlan.runs(experiments, Scale.QUICK, 2), Quality.BETTER);
        String md = Files.readString(StudyReport.write(out, experiments, Scale.QUICK, 2, "test"));
        JsonNode results = new ObjectMapper().readTree(out.resolve("results.json").toFile());

        // the live model is compared with BatchNorm statistics recomputed
        float[] sgd1 = read(1, "sgd/recomputed|test|final");
        float[] sgd2 = read(2, "sgd/recomputed|test|final");
        float[] ema1 = read(1, EMA + "|test|best_nll");
        float[] ema2 = read(2, EMA + "|test|best_nll");
        JsonNode consistency = results.get("experiments").get(0).get("tables").get(0).get("rows");
        double churn = Consistency.churn(sgd1, sgd2, 10);
        assertEquals(100 * churn, consistency.get(0).get(1).get("mean").asDouble(), 1e-9);
        assertEquals(Consistency.jsDivergence(sgd1, sgd2, 10), consistency.get(0).get(2).get("mean").asDouble(),
                1e-12);
        assertEquals(100 * Consistency.churn(ema1, ema2, 10), consistency.get(1).get(1).get("mean").asDouble(), 1e-9);
        assertEquals(Consistency.jsDivergence(ema1, ema2, 10), consistency.get(1).get(2).get("mean").asDouble(),
                1e-12);
        assertTrue(md.contains("| SGD (final) | " + String.format(Locale.ROOT, "%.2f", 100 * churn) + " |"), md);

        JsonNode calibration = results.get("experiments").get(1).get("tables").get(0).get("rows");
        int[] labels = SyntheticStudy.labels(StudyPlan.spec("cosine", Scale.QUICK, 1));
        String[][] models = {{"sgd/recomputed|val|final", "sgd/recomputed|test|final"},
            {EMA + "|val|best_nll", EMA + "|test|best_nll"}};
        for (int m = 0; m < models.length; m++) {
            double[] sum = new double[5];
            for (int seed = 1; seed <= 2; seed++) {
                float[] val = read(seed, models[m][0]);
                float[] test = read(seed, models[m][1]);
                double t = TemperatureScaling.fit(logits(val), 10, labels);
                float[] scaled = TemperatureScaling.apply(logits(test), 10, t);
                sum[0] += Calibration.ece(test, 10, labels, Binning.EQUAL_MASS, 100) / 2;
                sum[1] += Calibration.ece(test, 10, labels, Binning.EQUAL_WIDTH, 15) / 2;
                sum[2] += t / 2;
                sum[3] += Calibration.ece(scaled, 10, labels, Binning.EQUAL_MASS, 100) / 2;
                sum[4] += Calibration.ece(scaled, 10, labels, Binning.EQUAL_WIDTH, 15) / 2;
            }
            JsonNode row = calibration.get(m);
            assertEquals(100 * sum[0], row.get(1).get("mean").asDouble(), 1e-9);
            assertEquals(100 * sum[1], row.get(2).get("mean").asDouble(), 1e-9);
            assertEquals(sum[2], row.get(3).get("mean").asDouble(), 1e-12);
            assertEquals(100 * sum[3], row.get(4).get("mean").asDouble(), 1e-9);
            assertEquals(100 * sum[4], row.get(5).get("mean").asDouble(), 1e-9);
            assertTrue(md.contains(String.format(Locale.ROOT, "| %.2f ± ", 100 * sum[0])), md);
        }
    }

    private float[] read(int seed, String tensor) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("cells/cosine-seed" + seed
                + "/predictions.safetensors"))) {
            TensorInfo t = f.tensor(tensor).orElseThrow();
            float[] v = new float[(int) t.elementCount()];
            f.readF32(t, 0, v, 0, v.length);
            return v;
        }
    }

    private static float[] logits(float[] probs) {
        float[] z = new float[probs.length];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) Math.log(Math.max(probs[i], 1e-12));
        }
        return z;
    }
}
