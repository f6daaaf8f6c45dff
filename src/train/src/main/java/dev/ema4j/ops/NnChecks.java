package dev.ema4j.ops;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;

/**
 * Argument checks of the {@link dev.ema4j.ops.NnOps} operations, shared by the backends so both throw the same
 * exceptions with the same messages, before anything runs. Each method checks one operation's shapes and scalars;
 * the backends check that the tensors are theirs.
 */
public final class NnChecks {

    private NnChecks() {
    }

    /**
     * Checks the arguments of {@link NnOps#sgdEmaStep}: three distinct open F32 buffers of one length,
     * a finite {@code lr >= 0}, and (when {@code shadows} is not empty) shadows of that length that alias none of them.
     */
    public static void sgdStep(Backend backend, DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum,
                               double lr, List<DeviceBuffer> shadows, float[] weights) {
        Objects.requireNonNull(shadows, "shadows");
        Objects.requireNonNull(weights, "weights");
        String[] names = {"params", "grads", "momentum"};
        DeviceBuffer[] buffers = {params, grads, momentum};
        var seen = new IdentityHashMap<DeviceBuffer, String>();
        for (int i = 0; i < buffers.length; i++) {
            Objects.requireNonNull(buffers[i], names[i]);
            Checks.owned(backend, buffers[i], names[i]);
            if (buffers[i].dtype() != DType.F32) {
                throw new IllegalArgumentException(names[i] + " is " + buffers[i].dtype() + "; SGD buffers must be F32");
            }
            String other = seen.put(buffers[i], names[i]);
            if (other != null) {
                throw new IllegalArgumentException(names[i] + " is the same buffer as " + other);
            }
        }
        if (grads.length() != params.length() || momentum.length() != params.length()) {
            throw new IllegalArgumentException("SGD buffers differ in length: params " + params.length() + ", grads "
                    + grads.length() + ", momentum " + momentum.length());
        }
        if (!(lr >= 0 && lr < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("lr is " + lr + "; must be finite and >= 0");
        }
        if (shadows.isEmpty() && weights.length == 0) {
            return;
        }
        Checks.shadows(backend, params.length(), shadows, weights);
        for (int k = 0; k < shadows.size(); k++) {
            String other = seen.get(shadows.get(k));
            if (other != null) {
                throw new IllegalArgumentException("shadows[" + k + "] is the same buffer as " + other);
            }
        }
    }

    /** Checks {@code conv2dForward} and returns its geometry. */
    public static ConvGeometry conv2dForward(Tensor x, Tensor w, Tensor bias, Tensor y, int stride, int pad) {
        ConvGeometry g = conv(x, w, y, "y", stride, pad);
        bias(bias, g.k());
        return g;
    }

    /** Checks {@code conv2dBackward} and returns its geometry. */
    public static ConvGeometry conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor dbias,
                                              int stride, int pad) {
        ConvGeometry g = conv(x, w, dy, "dy", stride, pad);
        same("dw", dw, "w", w);
        if (dx != null) {
            same("dx", dx, "x", x);
        }
        bias(dbias, g.k());
        return g;
    }

    private static ConvGeometry conv(Tensor x, Tensor w, Tensor y, String yName, int stride, int pad) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(w, "w");
        Objects.requireNonNull(y, yName);
        Shape xs = x.shape();
        Shape ws = w.shape();
        Shape ys = y.shape();
        if (stride < 1 || pad < 0) {
            throw new IllegalArgumentException("stride is " + stride + ", pad " + pad + "; need stride >= 1, pad >= 0");
        }
        if (ws.c() != xs.c()) {
            throw new IllegalArgumentException("conv weights " + ws + " expect " + ws.c() + " input channels, input is "
                    + xs);
        }
        int p = (xs.h() + 2 * pad - ws.h()) / stride + 1;
        int q = (xs.w() + 2 * pad - ws.w()) / stride + 1;
        Shape expected = new Shape(xs.n(), ws.n(), p, q);
        if (!ys.equals(expected)) {
            throw new IllegalArgumentException("conv of input " + xs + " by weights " + ws + " (stride " + stride
                    + ", pad " + pad + ") gives " + expected + ", output is " + ys);
        }
        return new ConvGeometry(xs.n(), xs.c(), xs.h(), xs.w(), ws.n(), ws.h(), ws.w(), p, q, stride, pad);
    }

    /** A bias of {@code k} values, or null. */
    public static void bias(Tensor bias, int k) {
        if (bias != null && bias.size() != k) {
            throw new IllegalArgumentException("bias " + bias.shape() + " must hold " + k + " values");
        }
    }

    /** Checks {@code batchNormForwardTrain}. */
    public static void batchNormTrain(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean,
                                      Tensor saveInvStd, Tensor runningMean, Tensor runningVar, double momentum,
                                      double eps) {
        Objects.requireNonNull(x, "x");
        same("y", y, "x", x);
        perChannel(x.shape().c(), gamma, beta, saveMean, saveInvStd, runningMean, runningVar);
        if (!(momentum >= 0 && momentum <= 1)) {
            throw new IllegalArgumentException("momentum is " + momentum + "; must be in [0, 1]");
        }
        eps(eps);
        Shape s = x.shape();
        if (s.n() * s.h() * s.w() < 2) {
            throw new IllegalArgumentException("batch norm in training needs more than one value per channel, got "
                    + s);
        }
    }

    /** Checks {@code batchNormForwardEval}. */
    public static void batchNormEval(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                     Tensor y, double eps) {
        Objects.requireNonNull(x, "x");
        same("y", y, "x", x);
        perChannel(x.shape().c(), gamma, beta, runningMean, runningVar);
        eps(eps);
    }

    private static void eps(double eps) {
        if (!(eps > 0 && eps < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("eps is " + eps + "; must be finite and > 0");
        }
    }

    /** Checks {@code batchNormBackward}. */
    public static void batchNormBackward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor relu,
                                         Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta) {
        Objects.requireNonNull(x, "x");
        same("dy", dy, "x", x);
        same("dx", dx, "x", x);
        if (relu != null) {
            same("relu", relu, "x", x);
        }
        perChannel(x.shape().c(), gamma, saveMean, saveInvStd, dgamma, dbeta);
    }

    /** Checks {@code reluForward} and {@code copy}-like ops: {@code y} has the shape of {@code x}. */
    public static void sameShape(String name, Tensor t, String refName, Tensor ref) {
        Objects.requireNonNull(ref, refName);
        same(name, t, refName, ref);
    }

    /** Checks {@code reluBackward}. */
    public static void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        Objects.requireNonNull(y, "y");
        same("dy", dy, "y", y);
        same("dx", dx, "y", y);
    }

    /** Checks {@code add}. */
    public static void add(Tensor a, Tensor b, Tensor y) {
        Objects.requireNonNull(a, "a");
        same("b", b, "a", a);
        same("y", y, "a", a);
    }

    /** Checks {@code maxPoolForward}. */
    public static void maxPool(Tensor x, Tensor y, Tensor argmax, int k) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(y, "y");
        pool(x.shape(), y.shape(), k);
        same("argmax", argmax, "y", y);
    }

    /** Checks {@code maxPoolBackward}. */
    public static void maxPoolBackward(Tensor argmax, Tensor dy, Tensor dx, int k) {
        Objects.requireNonNull(dx, "dx");
        Objects.requireNonNull(dy, "dy");
        pool(dx.shape(), dy.shape(), k);
        same("argmax", argmax, "dy", dy);
    }

    private static void pool(Shape x, Shape y, int k) {
        if (k < 1) {
            throw new IllegalArgumentException("pool size is " + k + "; must be >= 1");
        }
        Shape expected = new Shape(x.n(), x.c(), x.h() / k, x.w() / k);
        if (!y.equals(expected)) {
            throw new IllegalArgumentException("max pool " + k + "x" + k + " of " + x + " gives " + expected
                    + ", output is " + y);
        }
    }

    /** Checks {@code globalAvgPoolForward} ({@code y}) and {@code globalAvgPoolBackward} ({@code dy}). */
    public static void globalAvgPool(Tensor x, String name, Tensor pooled) {
        Objects.requireNonNull(x, "x");
        Shape s = x.shape();
        expect(name, pooled, Shape.of(s.n(), s.c()), "global average pool of " + s);
    }

    /** Checks {@code linearForward}. */
    public static void linear(Tensor x, Tensor w, Tensor b, Tensor y) {
        linearWeights(x, w);
        expect("y", y, Shape.of(x.shape().n(), w.shape().n()), "linear of " + x.shape() + " by " + w.shape());
        bias(b, w.shape().n());
    }

    /** Checks {@code linearBackward}. */
    public static void linearBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db) {
        linearWeights(x, w);
        expect("dy", dy, Shape.of(x.shape().n(), w.shape().n()), "linear of " + x.shape() + " by " + w.shape());
        same("dw", dw, "w", w);
        if (dx != null) {
            same("dx", dx, "x", x);
        }
        bias(db, w.shape().n());
    }

    private static void linearWeights(Tensor x, Tensor w) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(w, "w");
        if (w.shape().sampleSize() != x.shape().sampleSize()) {
            throw new IllegalArgumentException("linear weights " + w.shape() + " expect " + w.shape().sampleSize()
                    + " inputs, input is " + x.shape());
        }
    }

    /** Checks {@code softmaxCrossEntropy}. */
    public static void softmaxCrossEntropy(Tensor logits, int[] labels, Tensor probs, Tensor dlogits,
                                           float[] lossesOut) {
        Objects.requireNonNull(logits, "logits");
        Objects.requireNonNull(labels, "labels");
        int n = logits.shape().n();
        int classes = logits.shape().sampleSize();
        if (labels.length != n) {
            throw new IllegalArgumentException("labels has " + labels.length + " entries, logits " + logits.shape());
        }
        same("probs", probs, "logits", logits);
        if (dlogits != null) {
            same("dlogits", dlogits, "logits", logits);
        }
        if (lossesOut != null && lossesOut.length < n) {
            throw new IllegalArgumentException("lossesOut has " + lossesOut.length + " entries, need " + n);
        }
        for (int i = 0; i < n; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException("labels[" + i + "] is " + labels[i] + "; must be in [0, "
                        + classes + ")");
            }
        }
    }

    /** True when every tensor starts at the same element offset. */
    public static boolean sameOffsets(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t.offset() != tensors[0].offset()) {
                return false;
            }
        }
        return true;
    }

    private static void same(String name, Tensor t, String refName, Tensor ref) {
        Objects.requireNonNull(t, name);
        if (!t.shape().equals(ref.shape())) {
            throw new IllegalArgumentException(name + " is " + t.shape() + ", " + refName + " is " + ref.shape());
        }
    }

    private static void expect(String name, Tensor t, Shape shape, String what) {
        Objects.requireNonNull(t, name);
        if (!t.shape().equals(shape)) {
            throw new IllegalArgumentException(what + " gives " + shape + ", " + name + " is " + t.shape());
        }
    }

    private static void perChannel(int channels, Tensor... tensors) {
        for (Tensor t : tensors) {
            Objects.requireNonNull(t, "per-channel tensor");
            if (t.size() != channels) {
                throw new IllegalArgumentException("per-channel tensor " + t.shape() + " must hold " + channels
                        + " values");
            }
        }
    }
}
