package dev.ema4j.metrics;

/**
 * Temperature scaling (Guo et al. 2017): calibrated probabilities {@code softmax(z/T)} from (N, C) logits z with
 * one scalar {@code T > 0}, fitted on held-out data to minimize
 * {@code NLL(T) = −(1/N)·Σ_n ln softmax(z_n/T)[labels[n]]} (natural log, computed with a stable log-sum-exp and no
 * clamping). Shapes and checks: {@linkplain dev.ema4j.metrics package docs}.
 */
public final class TemperatureScaling {

    /** Smallest temperature {@link #fit} returns. */
    public static final double MIN_TEMPERATURE = 1e-2;

    /** Largest temperature {@link #fit} returns. */
    public static final double MAX_TEMPERATURE = 1e2;

    /** {@link #fit} stops when its bracket on {@code ln T} is narrower than this. */
    public static final double LOG_TOLERANCE = 1e-6;

    private static final double INV_PHI = (Math.sqrt(5) - 1) / 2;

    private TemperatureScaling() {
    }

    /**
     * The T in [{@value #MIN_TEMPERATURE}, {@value #MAX_TEMPERATURE}] minimizing {@code NLL(T)}, by golden-section
     * search on {@code ln T} until the bracket is narrower than {@value #LOG_TOLERANCE} (so T has a relative
     * precision of about 1e-6). {@code NLL} is convex in {@code 1/T}, hence unimodal in {@code ln T}, so the search
     * finds the global minimum; when that lies outside the range (e.g. separable data want T → 0) the nearer bound
     * is returned.
     */
    public static double fit(float[] logits, int classes, int[] labels) {
        Inputs.logits(logits, classes, labels);
        double a = Math.log(MIN_TEMPERATURE);
        double b = Math.log(MAX_TEMPERATURE);
        double c = b - INV_PHI * (b - a);
        double d = a + INV_PHI * (b - a);
        double fc = nllChecked(logits, classes, labels, Math.exp(c));
        double fd = nllChecked(logits, classes, labels, Math.exp(d));
        while (b - a > LOG_TOLERANCE) {
            if (fc <= fd) {
                b = d;
                d = c;
                fd = fc;
                c = b - INV_PHI * (b - a);
                fc = nllChecked(logits, classes, labels, Math.exp(c));
            } else {
                a = c;
                c = d;
                fc = fd;
                d = a + INV_PHI * (b - a);
                fd = nllChecked(logits, classes, labels, Math.exp(d));
            }
        }
        return Math.exp(0.5 * (a + b));
    }

    /** {@code NLL(T)} of the logits at {@code temperature}. */
    public static double nll(float[] logits, int classes, int[] labels, double temperature) {
        Inputs.logits(logits, classes, labels);
        checkTemperature(temperature);
        return nllChecked(logits, classes, labels, temperature);
    }

    /** The (N, C) probabilities {@code softmax(z_n/T)} of each row, computed in double and rounded to float. */
    public static float[] apply(float[] logits, int classes, double temperature) {
        int n = Inputs.logits(logits, classes);
        checkTemperature(temperature);
        float[] probs = new float[logits.length];
        double[] e = new double[classes];
        for (int i = 0; i < n; i++) {
            int off = i * classes;
            double max = max(logits, off, classes);
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                e[c] = Math.exp((logits[off + c] - max) / temperature);
                sum += e[c];
            }
            for (int c = 0; c < classes; c++) {
                probs[off + c] = (float) (e[c] / sum);
            }
        }
        return probs;
    }

    private static double nllChecked(float[] logits, int classes, int[] labels, double temperature) {
        double total = 0;
        for (int i = 0; i < labels.length; i++) {
            int off = i * classes;
            double max = max(logits, off, classes);
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                sum += Math.exp((logits[off + c] - max) / temperature);
            }
            total += Math.log(sum) - (logits[off + labels[i]] - max) / temperature;
        }
        return total / labels.length;
    }

    private static double max(float[] values, int offset, int length) {
        return values[offset + Classification.argmax(values, offset, length)];
    }

    private static void checkTemperature(double temperature) {
        if (!(temperature > 0 && temperature < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("temperature is " + temperature + ", expected finite and > 0");
        }
    }
}
