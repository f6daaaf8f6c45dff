package dev.ema4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The oracle's backward functions ({@link Reference}) against central finite differences of its forward functions,
 * all in double: for {@code L = Σ r·f(v)} with a random {@code r}, {@code ∂L/∂v[i]} by differences must equal the
 * analytic gradient contracted with {@code r}. The conformance suite trusts these references, so they are checked
 * here first, on small shapes that still cover strides, padding, non-square kernels, bias and the fused ReLU.
 */
class ReferenceTest {

    private static final double H = 1e-6;

    @Test
    void convolutionGradients() {
        Reference.Conv[] geometries = {
            new Reference.Conv(2, 3, 5, 6, 4, 3, 3, 1, 1),
            new Reference.Conv(2, 2, 7, 6, 3, 3, 3, 2, 1),
            new Reference.Conv(1, 3, 6, 5, 2, 3, 3, 2, 0),
            new Reference.Conv(2, 2, 4, 5, 3, 1, 1, 1, 0),
            new Reference.Conv(1, 2, 5, 5, 2, 1, 1, 2, 1),
            new Reference.Conv(2, 2, 5, 6, 3, 3, 1, 1, 0),
            new Reference.Conv(1, 2, 6, 5, 2, 2, 3, 2, 1),
            new Reference.Conv(1, 1, 4, 4, 2, 5, 5, 1, 2),
        };
        Random random = new Random(1);
        for (Reference.Conv g : geometries) {
            double[] x = gaussian(random, g.x().size());
            double[] w = gaussian(random, g.weights().size());
            double[] b = gaussian(random, g.k());
            double[] r = gaussian(random, g.y().size());
            check(g + " dx", v -> Reference.convForward(g, v, w, b), x, r, Reference.convBackwardData(g, w, r));
            check(g + " dw", v -> Reference.convForward(g, x, v, b), w, r, Reference.convBackwardFilter(g, x, r));
            check(g + " db", v -> Reference.convForward(g, x, w, v), b, r, Reference.convBackwardBias(g, r));
        }
    }

    @Test
    void batchNormGradients() {
        Random random = new Random(2);
        int n = 3;
        int c = 2;
        int hw = 5;
        for (boolean relu : new boolean[] {false, true}) {
            double[] x = gaussian(random, n * c * hw);
            double[] gamma = {0.7, -1.3};
            double[] beta = {0.2, -0.1};
            double[] r = gaussian(random, x.length);
            Function<double[], double[]> forward = v -> {
                Reference.Moments m = Reference.moments(v, n, c, hw);
                return Reference.batchNormAffine(v, n, c, hw, m.mean(), m.var(), gamma, beta, 1e-5, relu);
            };
            Reference.Moments m = Reference.moments(x, n, c, hw);
            double[] invStd = new double[c];
            for (int i = 0; i < c; i++) {
                invStd[i] = 1 / Math.sqrt(m.var()[i] + 1e-5);
            }
            double[] y = forward.apply(x);
            Reference.BatchNormGrads grads = Reference.batchNormBackward(x, n, c, hw, gamma, m.mean(), invStd,
                    relu ? y : null, r);
            String what = relu ? "batch norm + relu" : "batch norm";
            check(what + " dx", forward, x, r, grads.dx());
            check(what + " dgamma", v -> {
                Reference.Moments mv = Reference.moments(x, n, c, hw);
                return Reference.batchNormAffine(x, n, c, hw, mv.mean(), mv.var(), v, beta, 1e-5, relu);
            }, gamma, r, grads.dgamma());
            check(what + " dbeta", v -> {
                Reference.Moments mv = Reference.moments(x, n, c, hw);
                return Reference.batchNormAffine(x, n, c, hw, mv.mean(), mv.var(), gamma, v, 1e-5, relu);
            }, beta, r, grads.dbeta());
        }
    }

    @Test
    void linearGradients() {
        Random random = new Random(3);
        int n = 3;
        int in = 5;
        int out = 4;
        double[] x = gaussian(random, n * in);
        double[] w = gaussian(random, out * in);
        double[] b = gaussian(random, out);
        double[] r = gaussian(random, n * out);
        Reference.LinearGrads grads = Reference.linearBackward(x, n, in, w, out, r);
        check("linear dx", v -> Reference.linear(v, n, in, w, b, out), x, r, grads.dx());
        check("linear dw", v -> Reference.linear(x, n, in, v, b, out), w, r, grads.dw());
        check("linear db", v -> Reference.linear(x, n, in, w, v, out), b, r, grads.db());
    }

    @Test
    void poolingGradients() {
        Random random = new Random(4);
        for (int k : new int[] {2, 3}) {
            int nc = 3;
            int h = 7;
            int w = 8;
            double[] x = gaussian(random, nc * h * w);
            Reference.MaxPool pool = Reference.maxPool(x, nc, h, w, k);
            double[] r = gaussian(random, pool.y().length);
            check("max pool " + k + " dx", v -> Reference.maxPool(v, nc, h, w, k).y(), x, r,
                    Reference.maxPoolBackward(pool.argmax(), r, nc, h, w, k));
        }
        double[] x = gaussian(random, 6 * 10);
        double[] r = gaussian(random, 6);
        check("global average pool dx", v -> Reference.globalAvgPool(v, 6, 10), x, r,
                Reference.globalAvgPoolBackward(r, 6, 10));
    }

    @Test
    void maxPoolTakesTheFirstMaximumInRowMajorOrder() {
        double[] x = {
            1, 3, 3, 0,
            3, 2, 5, 5,
            0, 0, 7, 7,
            0, 0, 7, 7,
        };
        Reference.MaxPool pool = Reference.maxPool(x, 1, 4, 4, 2);
        assertEquals(java.util.List.of(1, 6, 8, 10), java.util.Arrays.stream(pool.argmax()).boxed().toList());
        assertEquals(java.util.List.of(3.0, 5.0, 0.0, 7.0), java.util.Arrays.stream(pool.y()).boxed().toList());
    }

    @Test
    void crossEntropyGradient() {
        Random random = new Random(5);
        int n = 4;
        int classes = 6;
        double[] z = gaussian(random, n * classes);
        int[] labels = {0, 5, 2, 2};
        double[] one = {1};
        check("cross-entropy dlogits", v -> new double[] {Reference.crossEntropy(v, n, classes, labels)}, z, one,
                Reference.softmaxCrossEntropy(z, n, classes, labels).dlogits());
    }

    /** {@code Σ_j r[j]·∂f_j/∂v[i] = analytic[i]} for every i, by central differences of f at {@code v}. */
    private static void check(String what, Function<double[], double[]> f, double[] v, double[] r, double[] analytic) {
        assertEquals(v.length, analytic.length, what + ": gradient length");
        for (int i = 0; i < v.length; i++) {
            double saved = v[i];
            v[i] = saved + H;
            double plus = dot(r, f.apply(v));
            v[i] = saved - H;
            double minus = dot(r, f.apply(v));
            v[i] = saved;
            double numeric = (plus - minus) / (2 * H);
            if (!(Math.abs(numeric - analytic[i]) <= 1e-6 + 1e-6 * Math.abs(numeric))) {
                fail(what + "[" + i + "]: finite differences give " + numeric + ", the reference " + analytic[i]);
            }
        }
    }

    private static double dot(double[] r, double[] y) {
        double s = 0;
        for (int i = 0; i < y.length; i++) {
            s += r[i] * y[i];
        }
        return s;
    }

    private static double[] gaussian(Random random, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = random.nextGaussian();
        }
        return v;
    }
}
