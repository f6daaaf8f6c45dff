package dev.ema4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every layer's forward pass against {@link Reference}, and its backward pass (input and parameter gradients)
 * against central finite differences of the reference in double precision, for the loss {@code L = Σ r·y} with a
 * random {@code r}.
 */
class GradientCheckTest {

    private static final double H = 1e-4;
    private final Backend backend = new CpuBackend(2);

    @AfterEach
    void close() {
        backend.close();
    }

    /** A reference forward pass of one layer given its input and parameters by name. */
    @FunctionalInterface
    interface Ref {
        double[] apply(double[] x, Map<String, double[]> p);
    }

    @Test
    void conv2d() {
        for (int stride : new int[] {1, 2}) {
            check(new Conv2d(3, 4, 3, stride, 1, true), new Shape(1, 3, 6, 7), 2,
                    (x, p) -> Reference.conv(x, 2, 3, 6, 7, p.get("l.weight"), 4, 3, p.get("l.bias"), stride, 1));
        }
        check(new Conv2d(2, 3, 1, 2, 0, false), new Shape(1, 2, 5, 5), 3,
                (x, p) -> Reference.conv(x, 3, 2, 5, 5, p.get("l.weight"), 3, 1, null, 2, 0));
    }

    @Test
    void batchNormInTrainMode() {
        check(new BatchNorm2d(3), new Shape(1, 3, 4, 5), 4,
                (x, p) -> Reference.batchNorm(x, 4, 3, 20, p.get("l.weight"), p.get("l.bias"), 1e-5));
        check(BatchNorm2d.withRelu(3), new Shape(1, 3, 4, 5), 4,
                (x, p) -> Reference.relu(Reference.batchNorm(x, 4, 3, 20, p.get("l.weight"), p.get("l.bias"), 1e-5)));
    }

    @Test
    void reluMaxPoolGlobalAvgPoolFlattenLinear() {
        check(new Relu(), new Shape(1, 2, 3, 4), 2, (x, p) -> Reference.relu(x));
        check(new MaxPool2d(2), new Shape(1, 2, 6, 4), 2, (x, p) -> Reference.maxPool(x, 4, 6, 4, 2));
        check(new GlobalAvgPool(), new Shape(1, 3, 4, 4), 2, (x, p) -> Reference.globalAvgPool(x, 6, 16));
        check(new Flatten(), new Shape(1, 2, 3, 3), 2, (x, p) -> x.clone());
        check(new Linear(12, 5), Shape.of(1, 12), 3,
                (x, p) -> Reference.linear(x, 3, 12, p.get("l.weight"), p.get("l.bias"), 5));
    }

    @Test
    void residualBlocks() {
        check(new BasicBlock(3, 3, 1), new Shape(1, 3, 5, 5), 2, (x, p) -> block(x, p, 2, 3, 3, 5, 1, false));
        check(new BasicBlock(2, 4, 2), new Shape(1, 2, 6, 6), 2, (x, p) -> block(x, p, 2, 2, 4, 6, 2, true));
    }

    private static double[] block(double[] x, Map<String, double[]> p, int n, int in, int out, int size, int stride,
                                  boolean projection) {
        int half = (size + 2 - 3) / stride + 1;
        double[] a = Reference.conv(x, n, in, size, size, p.get("l.conv1.weight"), out, 3, null, stride, 1);
        a = Reference.relu(Reference.batchNorm(a, n, out, half * half, p.get("l.bn1.weight"), p.get("l.bn1.bias"),
                1e-5));
        a = Reference.conv(a, n, out, half, half, p.get("l.conv2.weight"), out, 3, null, 1, 1);
        a = Reference.batchNorm(a, n, out, half * half, p.get("l.bn2.weight"), p.get("l.bn2.bias"), 1e-5);
        double[] s = x;
        if (projection) {
            s = Reference.conv(x, n, in, size, size, p.get("l.shortcut.0.weight"), out, 1, null, stride, 0);
            s = Reference.batchNorm(s, n, out, half * half, p.get("l.shortcut.1.weight"), p.get("l.shortcut.1.bias"),
                    1e-5);
        }
        return Reference.relu(Reference.add(a, s));
    }

    @Test
    void softmaxCrossEntropyGradient() {
        int n = 4;
        int classes = 5;
        Random random = new Random(3);
        float[] z = new float[n * classes];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) (random.nextGaussian() * 3);
        }
        int[] labels = {0, 4, 2, 2};
        try (Buffers b = new Buffers(backend)) {
            Tensor logits = b.tensor(Shape.of(n, classes), z);
            Tensor probs = b.tensor(Shape.of(n, classes), null);
            Tensor d = b.tensor(Shape.of(n, classes), null);
            float[] losses = new float[n];
            double loss = backend.nn().softmaxCrossEntropy(logits, labels, probs, d, losses);
            double[] zd = toDouble(z);
            assertEquals(Reference.crossEntropy(zd, n, classes, labels), loss, 1e-6);
            float[] grad = b.read(d);
            for (int i = 0; i < z.length; i++) {
                double[] plus = zd.clone();
                double[] minus = zd.clone();
                plus[i] += H;
                minus[i] -= H;
                double numeric = (Reference.crossEntropy(plus, n, classes, labels)
                        - Reference.crossEntropy(minus, n, classes, labels)) / (2 * H);
                assertClose(numeric, grad[i], "dlogits[" + i + "]");
            }
            float[] p = b.read(probs);
            for (int s = 0; s < n; s++) {
                double sum = 0;
                for (int c = 0; c < classes; c++) {
                    sum += p[s * classes + c];
                }
                assertEquals(1.0, sum, 1e-6, "probabilities of sample " + s + " sum to 1");
            }
        }
    }

    // --- the check ---------------------------------------------------------------------------------------------

    private void check(Layer layer, Shape sample, int n, Ref ref) {
        ParameterStore.Builder builder = ParameterStore.builder();
        Shape out = layer.declare("l", sample, builder);
        Random random = new Random(7);
        List<DeviceBuffer> buffers = new ArrayList<>();
        try (ParameterStore store = builder.build(backend, 11)) {
            RunState state = new RunState();
            layer.bind(new Binding(backend, backend.nn(), store, n, state, buffers));
            Map<String, double[]> params = randomize(store, random);
            float[] x = gaussian(random, n * sample.sampleSize());
            DeviceBuffer xb = backend.allocate(dev.ema4j.backend.DType.F32, x.length);
            buffers.add(xb);
            backend.write(x, 0, xb, 0, x.length);
            Tensor y = layer.forward(Tensor.of(xb, sample.withBatch(n)));
            assertEquals(out.withBatch(n), y.shape(), "output shape");
            double[] expected = ref.apply(toDouble(x), params);
            float[] actual = new float[y.size()];
            backend.read(y.buffer(), y.offset(), actual, 0, actual.length);
            for (int i = 0; i < actual.length; i++) {
                assertClose(expected[i], actual[i], "forward[" + i + "]");
            }
            float[] r = gaussian(random, y.size());
            DeviceBuffer rb = backend.allocate(dev.ema4j.backend.DType.F32, r.length);
            buffers.add(rb);
            backend.write(r, 0, rb, 0, r.length);
            Tensor dx = layer.backward(Tensor.of(rb, y.shape()));
            float[] dxa = new float[dx.size()];
            backend.read(dx.buffer(), dx.offset(), dxa, 0, dxa.length);
            double[] xd = toDouble(x);
            for (int i = 0; i < xd.length; i++) {
                assertClose(numeric(ref, xd, params, r, xd, i), dxa[i], "dx[" + i + "]");
            }
            for (ParameterStore.Slot s : store.slots()) {
                if (s.statistic()) {
                    continue;
                }
                Tensor g = store.grad(s);
                float[] ga = new float[g.size()];
                backend.read(g.buffer(), g.offset(), ga, 0, ga.length);
                double[] values = params.get(s.name());
                for (int i = 0; i < values.length; i++) {
                    assertClose(numeric(ref, xd, params, r, values, i), ga[i], s.name() + "[" + i + "]");
                }
            }
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    /** {@code ∂(Σ r·ref(x, p))/∂v[i]} by central differences, where {@code v} is x or one of the parameters. */
    private static double numeric(Ref ref, double[] x, Map<String, double[]> p, float[] r, double[] v, int i) {
        double saved = v[i];
        v[i] = saved + H;
        double plus = dot(r, ref.apply(x, p));
        v[i] = saved - H;
        double minus = dot(r, ref.apply(x, p));
        v[i] = saved;
        return (plus - minus) / (2 * H);
    }

    private static double dot(float[] r, double[] y) {
        double s = 0;
        for (int i = 0; i < y.length; i++) {
            s += r[i] * y[i];
        }
        return s;
    }

    /** Random trained parameters (BatchNorm scales around 1); returns every slot's values as doubles. */
    private Map<String, double[]> randomize(ParameterStore store, Random random) {
        Map<String, double[]> params = new HashMap<>();
        for (ParameterStore.Slot s : store.slots()) {
            Tensor t = store.value(s);
            float[] v = new float[t.size()];
            if (s.statistic()) {
                backend.read(t.buffer(), t.offset(), v, 0, v.length);
            } else {
                boolean scale = s.name().endsWith("weight") && s.shape().n() == 1;  // a BatchNorm scale
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (scale ? 0.5 + random.nextDouble() : random.nextGaussian() * 0.5);
                }
                backend.write(v, 0, t.buffer(), t.offset(), v.length);
            }
            params.put(s.name(), toDouble(v));
        }
        return params;
    }

    private static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    private static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /** {@code |expected − actual| ≤ 2e-3 + 2e-3·|expected|}: float passes against double references. */
    private static void assertClose(double expected, float actual, String what) {
        if (!(Math.abs(expected - actual) <= 2e-3 + 2e-3 * Math.abs(expected))) {
            fail(what + ": expected " + expected + ", got " + actual);
        }
    }

    /** Buffers of a test, freed together. */
    private static final class Buffers implements AutoCloseable {
        private final Backend backend;
        private final List<DeviceBuffer> all = new ArrayList<>();

        Buffers(Backend backend) {
            this.backend = backend;
        }

        Tensor tensor(Shape shape, float[] values) {
            DeviceBuffer b = backend.allocate(dev.ema4j.backend.DType.F32, shape.size());
            all.add(b);
            if (values != null) {
                backend.write(values, 0, b, 0, values.length);
            }
            return Tensor.of(b, shape);
        }

        float[] read(Tensor t) {
            float[] v = new float[t.size()];
            backend.read(t.buffer(), t.offset(), v, 0, v.length);
            return v;
        }

        @Override
        public void close() {
            all.forEach(DeviceBuffer::close);
        }
    }
}
