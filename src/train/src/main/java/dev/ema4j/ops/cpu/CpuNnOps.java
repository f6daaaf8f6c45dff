package dev.ema4j.ops.cpu;

import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.backend.cpu.Lerp;
import dev.ema4j.ops.ConvGeometry;
import dev.ema4j.ops.NnChecks;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Objects;
import org.bytedeco.openblas.global.openblas_full;

/**
 * {@link NnOps} on the CPU: multithreaded Java loops over the buffers' {@code float[]} storage on the backend's
 * threads, written so C2 vectorizes them (NOTE: [same-index] in {@link Lerp}), and convolutions through
 * {@link CpuConv}. OpenBLAS runs single-threaded inside each of the backend's threads.
 */
public final class CpuNnOps implements NnOps {

    /** Elements per work item of the elementwise loops. */
    private static final int GRAIN = 1 << 15;

    private final CpuBackend backend;
    private final CpuConv.Scratch[] scratch;

    /** The operations on {@code backend}'s buffers and threads. */
    public CpuNnOps(CpuBackend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.scratch = new CpuConv.Scratch[backend.threadCount()];
        for (int t = 0; t < scratch.length; t++) {
            scratch[t] = new CpuConv.Scratch();
        }
        openblas_full.openblas_set_num_threads(1);
    }

    /**
     * The BLAS the convolutions use, e.g. {@code OpenBLAS 0.3.31 … (kernels: Cooperlake)}. OpenBLAS picks its
     * kernels for the CPU when it loads, unless the environment variable {@code OPENBLAS_CORETYPE} names others
     * (AVX2 {@code Haswell} kernels on an AVX-512 CPU made training steps 1.3x slower, bench/RESULTS.md).
     */
    public static String blas() {
        return openblas_full.openblas_get_config().getString() + " (kernels: "
                + openblas_full.openblas_get_corename().getString() + ")";
    }

    /** {@link #blas()}. */
    @Override
    public String gemm() {
        return blas();
    }

    // --- convolution ---------------------------------------------------------------------------------------------

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor bias, Tensor y, int stride, int pad) {
        ConvGeometry g = NnChecks.conv2dForward(x, w, bias, y, stride, pad);
        own(x, w, bias, y);
        float[] xa = data(x);
        float[] ya = data(y);
        FloatBuffer wd = CpuConv.weights(data(w), off(w), w.size());
        float[] ba = bias == null ? null : data(bias);
        int bo = bias == null ? 0 : off(bias);
        forRanges(g.n(), (t, from, to) -> {
            for (int i = from; i < to; i++) {
                CpuConv.forward(g, xa, off(x), wd, ba, bo, ya, off(y), i, scratch[t]);
            }
        });
    }

    @Override
    public void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor dbias, int stride, int pad) {
        ConvGeometry g = NnChecks.conv2dBackward(x, w, dy, dx, dw, dbias, stride, pad);
        own(x, w, dy, dx, dw, dbias);
        float[] xa = data(x);
        float[] dya = data(dy);
        float[] dxa = dx == null ? null : data(dx);
        FloatBuffer wd = CpuConv.weights(data(w), off(w), w.size());
        FloatBuffer flipped = dx != null && CpuConv.transposable(g) ? CpuConv.flipped(g, data(w), off(w)) : null;
        int ranges = Math.min(scratch.length, Math.max(1, g.n()));
        forRanges(g.n(), (t, from, to) -> {
            CpuConv.clearFilterGradient(g, scratch[t]);
            for (int i = from; i < to; i++) {
                CpuConv.backward(g, xa, off(x), wd, flipped, dya, off(dy), dxa, dx == null ? 0 : off(dx), i,
                        scratch[t]);
            }
        });
        float[] dwa = data(dw);
        java.util.Arrays.fill(dwa, off(dw), off(dw) + dw.size(), 0f);
        for (int t = 0; t < ranges; t++) {
            CpuConv.addFilterGradient(g, scratch[t], dwa, off(dw));
        }
        if (dbias != null) {
            float[] db = data(dbias);
            int plane = g.cols();
            for (int k = 0; k < g.k(); k++) {
                double sum = 0;
                for (int n = 0; n < g.n(); n++) {
                    sum += sum(dya, off(dy) + (n * g.k() + k) * plane, plane);
                }
                db[off(dbias) + k] = (float) sum;
            }
        }
    }

    // --- batch norm ----------------------------------------------------------------------------------------------

    @Override
    public void batchNormForwardTrain(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean,
                                      Tensor saveInvStd, Tensor runningMean, Tensor runningVar, double momentum,
                                      double eps, boolean relu) {
        NnChecks.batchNormTrain(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, momentum, eps);
        own(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar);
        Shape s = x.shape();
        int m = s.n() * s.h() * s.w();
        float[] xa = data(x);
        float[] ya = data(y);
        int plane = s.h() * s.w();
        backend.parallelFor(s.c(), c -> {
            // one pass: sums of d = x − shift and d², shift = the channel's first value, so var = E[d²] − E[d]²
            // does not cancel catastrophically when the mean is large
            float shift0 = xa[off(x) + c * plane];
            double sum = 0;
            double squares = 0;
            for (int n = 0; n < s.n(); n++) {
                double[] moments = shiftedMoments(xa, off(x) + (n * s.c() + c) * plane, plane, shift0);
                sum += moments[0];
                squares += moments[1];
            }
            double meanShifted = sum / m;
            float mean = (float) (shift0 + meanShifted);
            double var = Math.max(0, squares / m - meanShifted * meanShifted);
            float invStd = (float) (1.0 / Math.sqrt(var + eps));
            set(saveMean, c, mean);
            set(saveInvStd, c, invStd);
            set(runningMean, c, (float) ((1 - momentum) * get(runningMean, c) + momentum * mean));
            set(runningVar, c, (float) ((1 - momentum) * get(runningVar, c) + momentum * var * m / (m - 1)));
            float scale = get(gamma, c) * invStd;
            float shift = get(beta, c) - mean * scale;
            for (int n = 0; n < s.n(); n++) {
                int at = (n * s.c() + c) * plane;
                affine(xa, off(x) + at, ya, off(y) + at, plane, scale, shift, relu);
            }
        });
    }

    @Override
    public void batchNormForwardEval(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                     Tensor y, double eps, boolean relu) {
        NnChecks.batchNormEval(x, gamma, beta, runningMean, runningVar, y, eps);
        own(x, gamma, beta, runningMean, runningVar, y);
        Shape s = x.shape();
        float[] xa = data(x);
        float[] ya = data(y);
        int plane = s.h() * s.w();
        backend.parallelFor(s.c(), c -> {
            float scale = (float) (get(gamma, c) / Math.sqrt(get(runningVar, c) + eps));
            float shift = get(beta, c) - get(runningMean, c) * scale;
            for (int n = 0; n < s.n(); n++) {
                int at = (n * s.c() + c) * plane;
                affine(xa, off(x) + at, ya, off(y) + at, plane, scale, shift, relu);
            }
        });
    }

    @Override
    public void batchNormBackward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor relu, Tensor dy,
                                  Tensor dx, Tensor dgamma, Tensor dbeta) {
        NnChecks.batchNormBackward(x, gamma, saveMean, saveInvStd, relu, dy, dx, dgamma, dbeta);
        own(x, gamma, saveMean, saveInvStd, relu, dy, dx, dgamma, dbeta);
        Shape s = x.shape();
        float[] xa = data(x);
        float[] dya = data(dy);
        float[] dxa = data(dx);
        float[] ya = relu == null ? null : data(relu);
        int plane = s.h() * s.w();
        int m = s.n() * plane;
        boolean aligned = relu == null ? NnChecks.sameOffsets(x, dy, dx) : NnChecks.sameOffsets(x, dy, dx, relu);
        backend.parallelFor(s.c(), c -> {
            float mean = get(saveMean, c);
            float invStd = get(saveInvStd, c);
            double sumDy = 0;
            double sumDyX = 0;
            for (int n = 0; n < s.n(); n++) {
                int at = (n * s.c() + c) * plane;
                double[] sums = ya == null ? sumAndDotCentered(dya, off(dy) + at, xa, off(x) + at, plane, mean)
                        : aligned ? maskedSumAndDotCentered(dya, ya, xa, off(x) + at, plane, mean)
                        : maskedSumAndDotCentered(dya, off(dy) + at, ya, off(relu) + at, xa, off(x) + at, plane, mean);
                sumDy += sums[0];
                sumDyX += sums[1];
            }
            float dBeta = (float) sumDy;
            float dGamma = (float) (sumDyX * invStd);
            set(dbeta, c, dBeta);
            set(dgamma, c, dGamma);
            // dx = a·dy + b·(x − mean) + c0, a = γ·invStd, b = −a·invStd·dγ/M, c0 = −a·dβ/M
            float a = get(gamma, c) * invStd;
            float b = -a * invStd * dGamma / m;
            float c0 = -a * dBeta / m - b * mean;
            for (int n = 0; n < s.n(); n++) {
                int at = (n * s.c() + c) * plane;
                if (ya != null && aligned) {
                    for (int i = off(x) + at; i < off(x) + at + plane; i++) {  // NOTE: [same-index]
                        dxa[i] = Math.fma(a, dya[i] * reluMask(ya[i]), Math.fma(b, xa[i], c0));
                    }
                } else if (ya != null) {
                    for (int i = 0; i < plane; i++) {
                        float g = dya[off(dy) + at + i] * reluMask(ya[off(relu) + at + i]);
                        dxa[off(dx) + at + i] = Math.fma(a, g, Math.fma(b, xa[off(x) + at + i], c0));
                    }
                } else if (aligned) {
                    for (int i = off(x) + at; i < off(x) + at + plane; i++) {  // NOTE: [same-index]
                        dxa[i] = Math.fma(a, dya[i], Math.fma(b, xa[i], c0));
                    }
                } else {
                    for (int i = 0; i < plane; i++) {
                        dxa[off(dx) + at + i] = Math.fma(a, dya[off(dy) + at + i], Math.fma(b, xa[off(x) + at + i], c0));
                    }
                }
            }
        });
    }

    // --- elementwise -------------------------------------------------------------------------------------------

    @Override
    public void reluForward(Tensor x, Tensor y) {
        NnChecks.sameShape("y", y, "x", x);
        float[] xa = data(x);
        float[] ya = data(y);
        boolean aligned = NnChecks.sameOffsets(x, y);
        elementwise(x.size(), (from, to) -> {
            if (aligned) {
                for (int i = off(x) + from; i < off(x) + to; i++) {  // NOTE: [same-index]
                    ya[i] = Math.max(xa[i], 0f);
                }
            } else {
                for (int i = from; i < to; i++) {
                    ya[off(y) + i] = Math.max(xa[off(x) + i], 0f);
                }
            }
        });
    }

    /**
     * {@code dx = dy·mask(y) + 0} (the {@code + 0} turns −0 into +0); see {@link #reluMask}.
     */
    @Override
    public void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        NnChecks.reluBackward(y, dy, dx);
        float[] ya = data(y);
        float[] dya = data(dy);
        float[] dxa = data(dx);
        boolean aligned = NnChecks.sameOffsets(y, dy, dx);
        elementwise(y.size(), (from, to) -> {
            if (aligned) {
                for (int i = off(y) + from; i < off(y) + to; i++) {  // NOTE: [same-index]
                    dxa[i] = Math.fma(dya[i], reluMask(ya[i]), 0f);
                }
            } else {
                for (int i = from; i < to; i++) {
                    dxa[off(dx) + i] = Math.fma(dya[off(dy) + i], reluMask(ya[off(y) + i]), 0f);
                }
            }
        });
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor y) {
        NnChecks.add(a, b, y);
        float[] aa = data(a);
        float[] ba = data(b);
        float[] ya = data(y);
        boolean aligned = NnChecks.sameOffsets(a, b, y);
        elementwise(a.size(), (from, to) -> {
            if (aligned) {
                for (int i = off(a) + from; i < off(a) + to; i++) {  // NOTE: [same-index]
                    ya[i] = aa[i] + ba[i];
                }
            } else {
                for (int i = from; i < to; i++) {
                    ya[off(y) + i] = aa[off(a) + i] + ba[off(b) + i];
                }
            }
        });
    }

    @Override
    public void addTo(Tensor x, Tensor y) {
        NnChecks.sameShape("y", y, "x", x);
        float[] xa = data(x);
        float[] ya = data(y);
        boolean aligned = NnChecks.sameOffsets(x, y);
        elementwise(x.size(), (from, to) -> {
            if (aligned) {
                for (int i = off(x) + from; i < off(x) + to; i++) {  // NOTE: [same-index]
                    ya[i] += xa[i];
                }
            } else {
                for (int i = from; i < to; i++) {
                    ya[off(y) + i] += xa[off(x) + i];
                }
            }
        });
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        NnChecks.sameShape("dst", dst, "src", src);
        System.arraycopy(data(src), off(src), data(dst), off(dst), src.size());
    }

    @Override
    public void fill(Tensor t, float value) {
        java.util.Arrays.fill(data(t), off(t), off(t) + t.size(), value);
    }

    // --- pooling -------------------------------------------------------------------------------------------------

    @Override
    public void maxPoolForward(Tensor x, Tensor y, Tensor argmax, int k) {
        NnChecks.maxPool(x, y, argmax, k);
        own(x, y, argmax);
        Shape s = x.shape();
        float[] xa = data(x);
        float[] ya = data(y);
        float[] ia = data(argmax);
        int ph = s.h() / k;
        int pw = s.w() / k;
        backend.parallelFor(s.n() * s.c(), plane -> {
            int xb = off(x) + plane * s.h() * s.w();
            int yb = plane * ph * pw;
            for (int p = 0; p < ph; p++) {
                for (int q = 0; q < pw; q++) {
                    int at = k == 2 ? firstMax2(xa, xb, (2 * p) * s.w() + 2 * q, s.w())
                            : firstMax(xa, xb, p * k * s.w() + q * k, s.w(), k);
                    ya[off(y) + yb + p * pw + q] = xa[xb + at];
                    ia[off(argmax) + yb + p * pw + q] = at;
                }
            }
        });
    }

    /** The in-plane index of the first maximum of the 2×2 window at {@code at}, without data-dependent branches. */
    private static int firstMax2(float[] x, int base, int at, int w) {
        float a = x[base + at];
        float b = x[base + at + 1];
        float c = x[base + at + w];
        float d = x[base + at + w + 1];
        int top = b > a ? 1 : 0;
        int bottom = d > c ? 1 : 0;
        int lower = Math.max(c, d) > Math.max(a, b) ? 1 : 0;
        return at + lower * (w + bottom) + (1 - lower) * top;
    }

    private static int firstMax(float[] x, int base, int at, int w, int k) {
        int best = at;
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                if (x[base + at + i * w + j] > x[base + best]) {
                    best = at + i * w + j;
                }
            }
        }
        return best;
    }

    @Override
    public void maxPoolBackward(Tensor argmax, Tensor dy, Tensor dx, int k) {
        NnChecks.maxPoolBackward(argmax, dy, dx, k);
        own(argmax, dy, dx);
        Shape s = dx.shape();
        float[] ia = data(argmax);
        float[] dya = data(dy);
        float[] dxa = data(dx);
        int outPlane = (s.h() / k) * (s.w() / k);
        int plane = s.h() * s.w();
        backend.parallelFor(s.n() * s.c(), i -> {
            int xb = off(dx) + i * plane;
            java.util.Arrays.fill(dxa, xb, xb + plane, 0f);
            int yb = i * outPlane;
            for (int o = 0; o < outPlane; o++) {
                dxa[xb + (int) ia[off(argmax) + yb + o]] = dya[off(dy) + yb + o];
            }
        });
    }

    @Override
    public void globalAvgPoolForward(Tensor x, Tensor y) {
        NnChecks.globalAvgPool(x, "y", y);
        Shape s = x.shape();
        float[] xa = data(x);
        float[] ya = data(y);
        int plane = s.h() * s.w();
        backend.parallelFor(s.n() * s.c(), i -> ya[off(y) + i] = (float) (sum(xa, off(x) + i * plane, plane) / plane));
    }

    @Override
    public void globalAvgPoolBackward(Tensor dy, Tensor dx) {
        NnChecks.globalAvgPool(dx, "dy", dy);
        Shape s = dx.shape();
        float[] dya = data(dy);
        float[] dxa = data(dx);
        int plane = s.h() * s.w();
        backend.parallelFor(s.n() * s.c(), i -> java.util.Arrays.fill(dxa, off(dx) + i * plane, off(dx) + (i + 1) * plane,
                dya[off(dy) + i] / plane));
    }

    // --- linear and loss ---------------------------------------------------------------------------------------

    @Override
    public void linearForward(Tensor x, Tensor w, Tensor b, Tensor y) {
        NnChecks.linear(x, w, b, y);
        own(x, w, b, y);
        int n = x.shape().n();
        int in = x.shape().sampleSize();
        int out = w.shape().n();
        float[] xa = data(x);
        float[] wa = data(w);
        float[] ya = data(y);
        backend.parallelFor(n, i -> {
            for (int o = 0; o < out; o++) {
                float acc = b == null ? 0f : data(b)[off(b) + o];
                ya[off(y) + i * out + o] = acc + dot(xa, off(x) + i * in, wa, off(w) + o * in, in);
            }
        });
    }

    @Override
    public void linearBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db) {
        NnChecks.linearBackward(x, w, dy, dx, dw, db);
        own(x, w, dy, dx, dw, db);
        int n = x.shape().n();
        int in = x.shape().sampleSize();
        int out = w.shape().n();
        float[] xa = data(x);
        float[] wa = data(w);
        float[] dya = data(dy);
        float[] dwa = data(dw);
        backend.parallelFor(out, o -> {
            for (int i = 0; i < in; i++) {
                float acc = 0f;
                for (int s = 0; s < n; s++) {
                    acc = Math.fma(dya[off(dy) + s * out + o], xa[off(x) + s * in + i], acc);
                }
                dwa[off(dw) + o * in + i] = acc;
            }
            if (db != null) {
                float acc = 0f;
                for (int s = 0; s < n; s++) {
                    acc += dya[off(dy) + s * out + o];
                }
                data(db)[off(db) + o] = acc;
            }
        });
        if (dx != null) {
            float[] dxa = data(dx);
            backend.parallelFor(n, s -> {
                int row = off(dx) + s * in;
                java.util.Arrays.fill(dxa, row, row + in, 0f);
                for (int o = 0; o < out; o++) {
                    float g = dya[off(dy) + s * out + o];
                    int wr = off(w) + o * in;
                    for (int i = 0; i < in; i++) {
                        dxa[row + i] = Math.fma(g, wa[wr + i], dxa[row + i]);
                    }
                }
            });
        }
    }

    @Override
    public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor probs, Tensor dlogits, float[] lossesOut) {
        NnChecks.softmaxCrossEntropy(logits, labels, probs, dlogits, lossesOut);
        own(logits, probs, dlogits);
        int n = logits.shape().n();
        int classes = logits.shape().sampleSize();
        float[] z = data(logits);
        float[] p = data(probs);
        double total = 0;
        for (int i = 0; i < n; i++) {
            int zo = off(logits) + i * classes;
            int po = off(probs) + i * classes;
            float max = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) {
                max = Math.max(max, z[zo + c]);
            }
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                sum += Math.exp(z[zo + c] - max);
            }
            double lse = max + Math.log(sum);
            for (int c = 0; c < classes; c++) {
                p[po + c] = (float) Math.exp(z[zo + c] - lse);
            }
            double loss = lse - z[zo + labels[i]];
            total += loss;
            if (lossesOut != null) {
                lossesOut[i] = (float) loss;
            }
            if (dlogits != null) {
                float[] d = data(dlogits);
                int dofs = off(dlogits) + i * classes;
                for (int c = 0; c < classes; c++) {
                    d[dofs + c] = (p[po + c] - (c == labels[i] ? 1f : 0f)) / n;
                }
            }
        }
        return total / n;
    }

    // --- optimizer -----------------------------------------------------------------------------------------------

    @Override
    public void sgdEmaStep(DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum, Sgd sgd, double lr,
                           List<DeviceBuffer> shadows, float[] weights) {
        Objects.requireNonNull(sgd, "sgd");
        NnChecks.sgdStep(backend, params, grads, momentum, lr, shadows, weights);
        float[] p = backend.floats(params);
        float[] g = backend.floats(grads);
        float[] m = backend.floats(momentum);
        float[][] e = shadows.stream().map(backend::floats).toArray(float[][]::new);
        float wd = (float) sgd.weightDecay();
        float mu = (float) sgd.momentum();
        float rate = (float) lr;
        boolean nesterov = sgd.nesterov();
        elementwise(p.length, (from, to) -> {
            for (int i = from; i < to; i++) {
                float gi = Math.fma(wd, p[i], g[i]);
                float mi = Math.fma(mu, m[i], gi);
                m[i] = mi;
                p[i] -= rate * (nesterov ? Math.fma(mu, mi, gi) : mi);
            }
            // the chunk's new parameters are still in cache: the shadows read them now (NOTE: [same-index])
            Lerp.update(p, e, weights, from, to);
        });
    }

    // --- helpers -------------------------------------------------------------------------------------------------

    /** A contiguous range of items per thread, with the thread's index. */
    @FunctionalInterface
    private interface RangeBody {
        void run(int thread, int from, int to);
    }

    private void forRanges(int items, RangeBody body) {
        int ranges = Math.min(scratch.length, Math.max(1, items));
        backend.parallelFor(ranges, t -> body.run(t, (int) ((long) items * t / ranges),
                (int) ((long) items * (t + 1) / ranges)));
    }

    @FunctionalInterface
    private interface Span {
        void run(int from, int to);
    }

    private void elementwise(int n, Span body) {
        int items = (n + GRAIN - 1) / GRAIN;
        backend.parallelFor(items, i -> body.run(i * GRAIN, Math.min(n, (i + 1) * GRAIN)));
    }

    /** Sum with eight independent accumulators (Lerp#allFinite explains why). */
    private static double sum(float[] a, int from, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int i = from;
        int end = from + n;
        for (; i + 7 < end; i += 8) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
            s4 += a[i + 4];
            s5 += a[i + 5];
            s6 += a[i + 6];
            s7 += a[i + 7];
        }
        for (; i < end; i++) {
            s0 += a[i];
        }
        return ((double) s0 + s1 + s2 + s3) + ((double) s4 + s5 + s6 + s7);
    }

    /** {@code {Σ d, Σ d²}} with {@code d = a[i] − shift}, four independent pairs of sums. */
    private static double[] shiftedMoments(float[] a, int from, int n, float shift) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        float q0 = 0, q1 = 0, q2 = 0, q3 = 0;
        int i = from;
        int end = from + n;
        for (; i + 3 < end; i += 4) {
            float d0 = a[i] - shift;
            float d1 = a[i + 1] - shift;
            float d2 = a[i + 2] - shift;
            float d3 = a[i + 3] - shift;
            s0 += d0;
            s1 += d1;
            s2 += d2;
            s3 += d3;
            q0 = Math.fma(d0, d0, q0);
            q1 = Math.fma(d1, d1, q1);
            q2 = Math.fma(d2, d2, q2);
            q3 = Math.fma(d3, d3, q3);
        }
        for (; i < end; i++) {
            float d = a[i] - shift;
            s0 += d;
            q0 = Math.fma(d, d, q0);
        }
        return new double[] {((double) s0 + s1) + ((double) s2 + s3), ((double) q0 + q1) + ((double) q2 + q3)};
    }

    /**
     * The ReLU gradient mask of an output {@code y ≥ 0}: {@code min(y·2^149, 1)} is 1 for every {@code y > 0} (the
     * smallest positive float is 2^−149) and 0 for {@code y = 0}. Branch-free, so C2 vectorizes the loops using it;
     * a data-dependent branch mispredicts on half the elements (ten times slower).
     */
    private static float reluMask(float y) {
        return Math.min(y * 0x1p127f * 0x1p22f, 1f);
    }

    /** {@code {Σ g, Σ g·(x − mean)}} with {@code g = dy·mask(y)}; all arrays indexed from {@code from}. */
    private static double[] maskedSumAndDotCentered(float[] dy, float[] y, float[] x, int from, int n, float mean) {
        float s0 = 0, s1 = 0;
        float t0 = 0, t1 = 0;
        int i = from;
        int end = from + n;
        for (; i + 1 < end; i += 2) {
            float g0 = dy[i] * reluMask(y[i]);
            float g1 = dy[i + 1] * reluMask(y[i + 1]);
            s0 += g0;
            s1 += g1;
            t0 = Math.fma(g0, x[i] - mean, t0);
            t1 = Math.fma(g1, x[i + 1] - mean, t1);
        }
        for (; i < end; i++) {
            float g = dy[i] * reluMask(y[i]);
            s0 += g;
            t0 = Math.fma(g, x[i] - mean, t0);
        }
        return new double[] {(double) s0 + s1, (double) t0 + t1};
    }

    /** {@link #maskedSumAndDotCentered(float[], float[], float[], int, int, float)} with an offset per array. */
    private static double[] maskedSumAndDotCentered(float[] dy, int dyFrom, float[] y, int yFrom, float[] x, int xFrom,
                                                    int n, float mean) {
        float s = 0;
        float t = 0;
        for (int i = 0; i < n; i++) {
            float g = dy[dyFrom + i] * reluMask(y[yFrom + i]);
            s += g;
            t = Math.fma(g, x[xFrom + i] - mean, t);
        }
        return new double[] {s, t};
    }

    /** {@code {Σ dy[i], Σ dy[i]·(x[i] − mean)}} in one pass, four independent pairs of sums. */
    private static double[] sumAndDotCentered(float[] dy, int dyFrom, float[] x, int xFrom, int n, float mean) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            float g0 = dy[dyFrom + i];
            float g1 = dy[dyFrom + i + 1];
            float g2 = dy[dyFrom + i + 2];
            float g3 = dy[dyFrom + i + 3];
            s0 += g0;
            s1 += g1;
            s2 += g2;
            s3 += g3;
            t0 = Math.fma(g0, x[xFrom + i] - mean, t0);
            t1 = Math.fma(g1, x[xFrom + i + 1] - mean, t1);
            t2 = Math.fma(g2, x[xFrom + i + 2] - mean, t2);
            t3 = Math.fma(g3, x[xFrom + i + 3] - mean, t3);
        }
        for (; i < n; i++) {
            s0 += dy[dyFrom + i];
            t0 = Math.fma(dy[dyFrom + i], x[xFrom + i] - mean, t0);
        }
        return new double[] {((double) s0 + s1) + ((double) s2 + s3), ((double) t0 + t1) + ((double) t2 + t3)};
    }

    private static float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s = 0f;
        for (int i = 0; i < n; i++) {
            s = Math.fma(a[ao + i], b[bo + i], s);
        }
        return s;
    }

    /** {@code y = fma(x, scale, shift)}, then {@code max(y, 0)} with {@code relu}. */
    private static void affine(float[] x, int xo, float[] y, int yo, int n, float scale, float shift, boolean relu) {
        float floor = relu ? 0f : Float.NEGATIVE_INFINITY;
        if (xo == yo) {
            for (int i = xo; i < xo + n; i++) {  // NOTE: [same-index]
                y[i] = Math.max(Math.fma(x[i], scale, shift), floor);
            }
        } else {
            for (int i = 0; i < n; i++) {
                y[yo + i] = Math.max(Math.fma(x[xo + i], scale, shift), floor);
            }
        }
    }

    private float[] data(Tensor t) {
        Objects.requireNonNull(t, "tensor");
        Checks.owned(backend, t.buffer(), "tensor " + t.shape());
        return backend.floats(t.buffer());
    }

    /** Checks that every non-null tensor is this backend's, before an operation writes anything. */
    private void own(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null) {
                data(t);
            }
        }
    }

    private static int off(Tensor t) {
        return (int) t.offset();
    }

    private float get(Tensor t, int i) {
        return data(t)[off(t) + i];
    }

    private void set(Tensor t, int i, float v) {
        data(t)[off(t) + i] = v;
    }
}
