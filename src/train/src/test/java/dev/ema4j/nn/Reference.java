package dev.ema4j.nn;

import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;

/**
 * Double-precision reference passes, forward and backward, written from the formulas in {@link NnOps} with plain
 * loops and without sharing code with the implementations. Arrays are NCHW, row-major. The backward functions are
 * themselves checked against central finite differences of the forward functions in {@link ReferenceTest}.
 */
final class Reference {

    private Reference() {
    }

    // --- convolution -------------------------------------------------------------------------------------------

    /** The geometry of a convolution: x (N,C,H,W), w (K,C,R,S), y (N,K,P,Q). */
    record Conv(int n, int c, int h, int w, int k, int r, int s, int stride, int pad) {

        int p() {
            return (h + 2 * pad - r) / stride + 1;
        }

        int q() {
            return (w + 2 * pad - s) / stride + 1;
        }

        Shape x() {
            return new Shape(n, c, h, w);
        }

        Shape weights() {
            return new Shape(k, c, r, s);
        }

        Shape y() {
            return new Shape(n, k, p(), q());
        }

        @Override
        public String toString() {
            return "x " + x() + " w " + weights() + " stride " + stride + " pad " + pad;
        }
    }

    /**
     * {@code y[n,k,p,q] = b[k] + Σ_{c,r,s} w[k,c,r,s]·x[n,c,p·stride+r−pad,q·stride+s−pad]}, zero outside x;
     * {@code bias} may be null.
     */
    static double[] convForward(Conv g, double[] x, double[] wt, double[] bias) {
        int p = g.p();
        int q = g.q();
        double[] y = new double[g.n() * g.k() * p * q];
        for (int n = 0; n < g.n(); n++) {
            for (int k = 0; k < g.k(); k++) {
                for (int ip = 0; ip < p; ip++) {
                    for (int iq = 0; iq < q; iq++) {
                        double sum = bias == null ? 0 : bias[k];
                        for (int c = 0; c < g.c(); c++) {
                            for (int r = 0; r < g.r(); r++) {
                                int h = ip * g.stride() + r - g.pad();
                                if (h < 0 || h >= g.h()) {
                                    continue;
                                }
                                for (int s = 0; s < g.s(); s++) {
                                    int w = iq * g.stride() + s - g.pad();
                                    if (w >= 0 && w < g.w()) {
                                        sum += wt[((k * g.c() + c) * g.r() + r) * g.s() + s]
                                                * x[((n * g.c() + c) * g.h() + h) * g.w() + w];
                                    }
                                }
                            }
                        }
                        y[((n * g.k() + k) * p + ip) * q + iq] = sum;
                    }
                }
            }
        }
        return y;
    }

    /** {@code dx[n,c,h,w] = Σ dy[n,k,p,q]·w[k,c,r,s]} over every (k,p,q,r,s) with {@code p·stride+r−pad = h}, … */
    static double[] convBackwardData(Conv g, double[] wt, double[] dy) {
        int p = g.p();
        int q = g.q();
        double[] dx = new double[g.n() * g.c() * g.h() * g.w()];
        for (int n = 0; n < g.n(); n++) {
            for (int k = 0; k < g.k(); k++) {
                for (int ip = 0; ip < p; ip++) {
                    for (int iq = 0; iq < q; iq++) {
                        double d = dy[((n * g.k() + k) * p + ip) * q + iq];
                        for (int c = 0; c < g.c(); c++) {
                            for (int r = 0; r < g.r(); r++) {
                                int h = ip * g.stride() + r - g.pad();
                                if (h < 0 || h >= g.h()) {
                                    continue;
                                }
                                for (int s = 0; s < g.s(); s++) {
                                    int w = iq * g.stride() + s - g.pad();
                                    if (w >= 0 && w < g.w()) {
                                        dx[((n * g.c() + c) * g.h() + h) * g.w() + w] +=
                                                d * wt[((k * g.c() + c) * g.r() + r) * g.s() + s];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx;
    }

    /** {@code dw[k,c,r,s] = Σ_{n,p,q} dy[n,k,p,q]·x[n,c,p·stride+r−pad,q·stride+s−pad]}. */
    static double[] convBackwardFilter(Conv g, double[] x, double[] dy) {
        int p = g.p();
        int q = g.q();
        double[] dw = new double[g.k() * g.c() * g.r() * g.s()];
        for (int k = 0; k < g.k(); k++) {
            for (int c = 0; c < g.c(); c++) {
                for (int r = 0; r < g.r(); r++) {
                    for (int s = 0; s < g.s(); s++) {
                        double sum = 0;
                        for (int n = 0; n < g.n(); n++) {
                            for (int ip = 0; ip < p; ip++) {
                                int h = ip * g.stride() + r - g.pad();
                                if (h < 0 || h >= g.h()) {
                                    continue;
                                }
                                for (int iq = 0; iq < q; iq++) {
                                    int w = iq * g.stride() + s - g.pad();
                                    if (w >= 0 && w < g.w()) {
                                        sum += dy[((n * g.k() + k) * p + ip) * q + iq]
                                                * x[((n * g.c() + c) * g.h() + h) * g.w() + w];
                                    }
                                }
                            }
                        }
                        dw[((k * g.c() + c) * g.r() + r) * g.s() + s] = sum;
                    }
                }
            }
        }
        return dw;
    }

    /** {@code db[k] = Σ_{n,p,q} dy[n,k,p,q]}. */
    static double[] convBackwardBias(Conv g, double[] dy) {
        int plane = g.p() * g.q();
        double[] db = new double[g.k()];
        for (int n = 0; n < g.n(); n++) {
            for (int k = 0; k < g.k(); k++) {
                for (int i = 0; i < plane; i++) {
                    db[k] += dy[(n * g.k() + k) * plane + i];
                }
            }
        }
        return db;
    }

    // --- batch norm --------------------------------------------------------------------------------------------

    /** Per-channel batch statistics: the mean and the biased variance over (N, H, W). */
    record Moments(double[] mean, double[] var) {
    }

    static Moments moments(double[] x, int n, int c, int hw) {
        double[] mean = new double[c];
        double[] var = new double[c];
        int m = n * hw;
        for (int ic = 0; ic < c; ic++) {
            double sum = 0;
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    sum += x[(in * c + ic) * hw + i];
                }
            }
            mean[ic] = sum / m;
            double squares = 0;
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    double d = x[(in * c + ic) * hw + i] - mean[ic];
                    squares += d * d;
                }
            }
            var[ic] = squares / m;
        }
        return new Moments(mean, var);
    }

    /** {@code y = (x − mean)/sqrt(var + eps)·gamma + beta} per channel, then {@code max(y, 0)} with {@code relu}. */
    static double[] batchNormAffine(double[] x, int n, int c, int hw, double[] mean, double[] var, double[] gamma,
                                    double[] beta, double eps, boolean relu) {
        double[] y = new double[x.length];
        for (int in = 0; in < n; in++) {
            for (int ic = 0; ic < c; ic++) {
                double invStd = 1 / Math.sqrt(var[ic] + eps);
                for (int i = 0; i < hw; i++) {
                    int at = (in * c + ic) * hw + i;
                    double v = (x[at] - mean[ic]) * invStd * gamma[ic] + beta[ic];
                    y[at] = relu ? Math.max(v, 0) : v;
                }
            }
        }
        return y;
    }

    /** Batch norm with batch statistics (biased variance), as in training. */
    static double[] batchNorm(double[] x, int n, int c, int hw, double[] gamma, double[] beta, double eps) {
        Moments m = moments(x, n, c, hw);
        return batchNormAffine(x, n, c, hw, m.mean(), m.var(), gamma, beta, eps, false);
    }

    /** {@code running ← (1 − momentum)·running + momentum·stat}. */
    static double[] runningUpdate(double[] running, double[] stat, double momentum) {
        double[] out = new double[running.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (1 - momentum) * running[i] + momentum * stat[i];
        }
        return out;
    }

    /** The gradients of batch norm in training mode. */
    record BatchNormGrads(double[] dx, double[] dgamma, double[] dbeta) {
    }

    /**
     * {@code x̂ = (x − mean)·invStd}, {@code g = dy} masked by {@code y > 0} when {@code y} (the fused ReLU's output)
     * is given, {@code dbeta = Σ g}, {@code dgamma = Σ g·x̂}, {@code dx = gamma·invStd·(g − dbeta/M − x̂·dgamma/M)}.
     */
    static BatchNormGrads batchNormBackward(double[] x, int n, int c, int hw, double[] gamma, double[] mean,
                                            double[] invStd, double[] y, double[] dy) {
        int m = n * hw;
        double[] dx = new double[x.length];
        double[] dgamma = new double[c];
        double[] dbeta = new double[c];
        for (int ic = 0; ic < c; ic++) {
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    int at = (in * c + ic) * hw + i;
                    double g = y == null || y[at] > 0 ? dy[at] : 0;
                    dbeta[ic] += g;
                    dgamma[ic] += g * (x[at] - mean[ic]) * invStd[ic];
                }
            }
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    int at = (in * c + ic) * hw + i;
                    double g = y == null || y[at] > 0 ? dy[at] : 0;
                    double xhat = (x[at] - mean[ic]) * invStd[ic];
                    dx[at] = gamma[ic] * invStd[ic] * (g - dbeta[ic] / m - xhat * dgamma[ic] / m);
                }
            }
        }
        return new BatchNormGrads(dx, dgamma, dbeta);
    }

    // --- elementwise, pooling, linear ----------------------------------------------------------------------------

    static double[] relu(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = Math.max(x[i], 0);
        }
        return y;
    }

    static double[] add(double[] a, double[] b) {
        double[] y = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            y[i] = a[i] + b[i];
        }
        return y;
    }

    /** Max pooling of {@code nc} planes: the values and the in-plane index of each window's first maximum. */
    record MaxPool(double[] y, int[] argmax) {
    }

    static MaxPool maxPool(double[] x, int nc, int h, int w, int k) {
        int p = h / k;
        int q = w / k;
        double[] y = new double[nc * p * q];
        int[] argmax = new int[nc * p * q];
        for (int i = 0; i < nc; i++) {
            for (int ip = 0; ip < p; ip++) {
                for (int iq = 0; iq < q; iq++) {
                    int best = -1;
                    for (int a = 0; a < k; a++) {
                        for (int b = 0; b < k; b++) {
                            int at = (ip * k + a) * w + iq * k + b;
                            if (best < 0 || x[i * h * w + at] > x[i * h * w + best]) {
                                best = at;
                            }
                        }
                    }
                    y[(i * p + ip) * q + iq] = x[i * h * w + best];
                    argmax[(i * p + ip) * q + iq] = best;
                }
            }
        }
        return new MaxPool(y, argmax);
    }

    /** {@code dx} zero but at each window's argmax, which receives the window's {@code dy}. */
    static double[] maxPoolBackward(int[] argmax, double[] dy, int nc, int h, int w, int k) {
        int outPlane = (h / k) * (w / k);
        double[] dx = new double[nc * h * w];
        for (int i = 0; i < nc; i++) {
            for (int o = 0; o < outPlane; o++) {
                dx[i * h * w + argmax[i * outPlane + o]] += dy[i * outPlane + o];
            }
        }
        return dx;
    }

    static double[] globalAvgPool(double[] x, int nc, int hw) {
        double[] y = new double[nc];
        for (int i = 0; i < nc; i++) {
            double sum = 0;
            for (int j = 0; j < hw; j++) {
                sum += x[i * hw + j];
            }
            y[i] = sum / hw;
        }
        return y;
    }

    static double[] globalAvgPoolBackward(double[] dy, int nc, int hw) {
        double[] dx = new double[nc * hw];
        for (int i = 0; i < nc; i++) {
            for (int j = 0; j < hw; j++) {
                dx[i * hw + j] = dy[i] / hw;
            }
        }
        return dx;
    }

    /** {@code y[n,o] = b[o] + Σ_i x[n,i]·w[o,i]}; {@code b} may be null. */
    static double[] linear(double[] x, int n, int in, double[] wt, double[] b, int out) {
        double[] y = new double[n * out];
        for (int s = 0; s < n; s++) {
            for (int o = 0; o < out; o++) {
                double acc = b == null ? 0 : b[o];
                for (int i = 0; i < in; i++) {
                    acc += x[s * in + i] * wt[o * in + i];
                }
                y[s * out + o] = acc;
            }
        }
        return y;
    }

    /** The gradients of {@link #linear}. */
    record LinearGrads(double[] dx, double[] dw, double[] db) {
    }

    /** {@code dx = dy·w}, {@code dw = dyᵀ·x}, {@code db = Σ_n dy}. */
    static LinearGrads linearBackward(double[] x, int n, int in, double[] wt, int out, double[] dy) {
        double[] dx = new double[n * in];
        double[] dw = new double[out * in];
        double[] db = new double[out];
        for (int s = 0; s < n; s++) {
            for (int o = 0; o < out; o++) {
                double g = dy[s * out + o];
                db[o] += g;
                for (int i = 0; i < in; i++) {
                    dx[s * in + i] += g * wt[o * in + i];
                    dw[o * in + i] += g * x[s * in + i];
                }
            }
        }
        return new LinearGrads(dx, dw, db);
    }

    // --- loss --------------------------------------------------------------------------------------------------

    /** Softmax cross-entropy of {@code n} samples: probabilities, per-sample losses, their mean, the gradient. */
    record CrossEntropy(double[] probs, double[] losses, double mean, double[] dlogits) {
    }

    static CrossEntropy softmaxCrossEntropy(double[] logits, int n, int classes, int[] labels) {
        double[] probs = new double[n * classes];
        double[] losses = new double[n];
        double[] d = new double[n * classes];
        double total = 0;
        for (int s = 0; s < n; s++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) {
                max = Math.max(max, logits[s * classes + c]);
            }
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                sum += Math.exp(logits[s * classes + c] - max);
            }
            double lse = max + Math.log(sum);
            for (int c = 0; c < classes; c++) {
                probs[s * classes + c] = Math.exp(logits[s * classes + c] - lse);
                d[s * classes + c] = (probs[s * classes + c] - (c == labels[s] ? 1 : 0)) / n;
            }
            losses[s] = lse - logits[s * classes + labels[s]];
            total += losses[s];
        }
        return new CrossEntropy(probs, losses, total / n, d);
    }

    /** Mean softmax cross-entropy. */
    static double crossEntropy(double[] logits, int n, int classes, int[] labels) {
        return softmaxCrossEntropy(logits, n, classes, labels).mean();
    }

    // --- optimizer ---------------------------------------------------------------------------------------------

    /**
     * One step of {@code torch.optim.SGD} (dampening 0) in double: {@code g = grad + wd·p}, {@code m = μ·m + g}
     * ({@code m = g} on the first step, which a zero buffer gives too), {@code p −= lr·(nesterov ? g + μ·m : m)}.
     * {@code p} and {@code m} are updated in place.
     */
    static void sgd(double[] p, double[] m, float[] grad, double momentum, double weightDecay, boolean nesterov,
                    double lr) {
        for (int i = 0; i < p.length; i++) {
            double g = grad[i] + weightDecay * p[i];
            m[i] = momentum * m[i] + g;
            p[i] -= lr * (nesterov ? g + momentum * m[i] : m[i]);
        }
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }
}
