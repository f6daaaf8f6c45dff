package dev.ema4j.nn;

import static org.junit.jupiter.api.Assertions.fail;

import dev.ema4j.ops.Shape;

/**
 * Comparisons of a backend's fp32 output with the oracle's, element by element. A failure names the check, counts
 * the elements that fail, and gives the first and the worst with their NCHW position and both values.
 */
final class Expect {

    /** With {@code -Dema4j.test.margins=true}, every tolerance check prints its largest error / allowed error. */
    private static final boolean MARGINS = Boolean.getBoolean("ema4j.test.margins");

    private Expect() {
    }

    /**
     * A tolerance {@code |ref − out| ≤ atol + rtol·|ref|} for float results of reductions against double references,
     * with {@code atol = atolPerRms·rms(ref)}: absolute errors of a float reduction scale with its operands, so the
     * absolute part is stated per unit of the output's size and means the same at any scale.
     */
    record Tolerance(double atolPerRms, double rtol) {
    }

    /** Every element within {@code tolerance} of the double reference. */
    static void close(String what, double[] expected, float[] actual, Tolerance tolerance, Shape shape) {
        close(what, expected, actual, tolerance, shape, rms(expected));
    }

    /**
     * Every element within {@code tolerance} of the double reference, the absolute part taken relative to
     * {@code scale} instead of the reference's RMS: for results that cancel, the size of the terms they cancel
     * from.
     */
    static void close(String what, double[] expected, float[] actual, Tolerance tolerance, Shape shape,
                      double scale) {
        lengths(what, expected.length, actual.length);
        double atol = tolerance.atolPerRms() * Math.max(scale, Float.MIN_NORMAL);
        int failures = 0;
        int first = -1;
        int worst = -1;
        double worstExcess = 0;
        double margin = 0;
        for (int i = 0; i < expected.length; i++) {
            double allowed = atol + tolerance.rtol() * Math.abs(expected[i]);
            double error = Math.abs(expected[i] - actual[i]);
            margin = Math.max(margin, error / allowed);
            if (!(error <= allowed)) {
                failures++;
                if (first < 0) {
                    first = i;
                }
                double excess = Double.isNaN(error) ? Double.POSITIVE_INFINITY : error / allowed;
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                }
            }
        }
        if (MARGINS) {
            System.out.printf("margin %.4f  %s%n", margin, what);
        }
        if (failures > 0) {
            fail(what + ": " + failures + " of " + expected.length + " elements outside |ref − out| ≤ "
                    + String.format("%.3g", atol) + " + " + tolerance.rtol() + "·|ref|; first "
                    + element(first, shape, expected[first], actual[first]) + "; worst "
                    + element(worst, shape, expected[worst], actual[worst]));
        }
    }

    /** Every element bit for bit. */
    static void bits(String what, float[] expected, float[] actual, Shape shape) {
        compare(what, expected, actual, shape, false);
    }

    /** Every element equal as a number: bit for bit, but for the sign of a zero. */
    static void values(String what, float[] expected, float[] actual, Shape shape) {
        compare(what, expected, actual, shape, true);
    }

    private static void compare(String what, float[] expected, float[] actual, Shape shape, boolean signedZeros) {
        lengths(what, expected.length, actual.length);
        int failures = 0;
        int first = -1;
        for (int i = 0; i < expected.length; i++) {
            boolean same = Float.floatToRawIntBits(expected[i]) == Float.floatToRawIntBits(actual[i])
                    || signedZeros && expected[i] == 0f && actual[i] == 0f;
            if (!same) {
                failures++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (failures > 0) {
            float e = expected[first];
            float a = actual[first];
            String kind = signedZeros ? " elements differ" : " elements differ in bits";
            fail(what + ": " + failures + " of " + expected.length + kind + "; first " + element(first, shape, e + " (0x" + Integer.toHexString(Float.floatToRawIntBits(e))
                    + ")", a + " (0x" + Integer.toHexString(Float.floatToRawIntBits(a)) + ")"));
        }
    }

    static double rms(double[] v) {
        double sum = 0;
        for (double e : v) {
            sum += e * e;
        }
        return Math.sqrt(sum / Math.max(1, v.length));
    }

    private static void lengths(String what, int expected, int actual) {
        if (expected != actual) {
            fail(what + ": expected " + expected + " elements, got " + actual);
        }
    }

    private static String element(int i, Shape shape, double expected, float actual) {
        return element(i, shape, Double.toString(expected), Float.toString(actual));
    }

    /** {@code [i] (n, c, h, w): expected e, got a}. */
    private static String element(int i, Shape shape, String expected, String actual) {
        String at = "[" + i + "]";
        if (shape != null && shape.size() > 0) {
            int w = i % shape.w();
            int h = i / shape.w() % shape.h();
            int c = i / (shape.w() * shape.h()) % shape.c();
            int n = i / (shape.w() * shape.h() * shape.c());
            at += shape.h() == 1 && shape.w() == 1 ? " (" + n + ", " + c + ")" : " (" + n + ", " + c + ", " + h + ", "
                    + w + ")";
        }
        return at + ": expected " + expected + ", got " + actual;
    }
}
