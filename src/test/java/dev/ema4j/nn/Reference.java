package dev.ema4j.nn;

/**
 * Double-precision reference forward passes, written from the formulas in {@link NnOps} without sharing code
 * with the implementations. Arrays are NCHW, row-major.
 */
final class Reference {

    private Reference() {
    }

    static double[] conv(double[] x, int n, int c, int h, int w, double[] wt, int k, int r, double[] bias, int stride,
                         int pad) {
        int p = (h + 2 * pad - r) / stride + 1;
        int q = (w + 2 * pad - r) / stride + 1;
        double[] y = new double[n * k * p * q];
        for (int in = 0; in < n; in++) {
            for (int ik = 0; ik < k; ik++) {
                for (int ip = 0; ip < p; ip++) {
                    for (int iq = 0; iq < q; iq++) {
                        double s = bias == null ? 0 : bias[ik];
                        for (int ic = 0; ic < c; ic++) {
                            for (int ir = 0; ir < r; ir++) {
                                for (int is = 0; is < r; is++) {
                                    int hh = ip * stride + ir - pad;
                                    int ww = iq * stride + is - pad;
                                    if (hh >= 0 && hh < h && ww >= 0 && ww < w) {
                                        s += wt[((ik * c + ic) * r + ir) * r + is] * x[((in * c + ic) * h + hh) * w + ww];
                                    }
                                }
                            }
                        }
                        y[((in * k + ik) * p + ip) * q + iq] = s;
                    }
                }
            }
        }
        return y;
    }

    /** Batch norm with batch statistics (biased variance). */
    static double[] batchNorm(double[] x, int n, int c, int hw, double[] gamma, double[] beta, double eps) {
        double[] y = new double[x.length];
        for (int ic = 0; ic < c; ic++) {
            double mean = 0;
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    mean += x[(in * c + ic) * hw + i];
                }
            }
            mean /= n * hw;
            double var = 0;
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    double d = x[(in * c + ic) * hw + i] - mean;
                    var += d * d;
                }
            }
            var /= n * hw;
            for (int in = 0; in < n; in++) {
                for (int i = 0; i < hw; i++) {
                    int at = (in * c + ic) * hw + i;
                    y[at] = (x[at] - mean) / Math.sqrt(var + eps) * gamma[ic] + beta[ic];
                }
            }
        }
        return y;
    }

    static double[] relu(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = Math.max(x[i], 0);
        }
        return y;
    }

    static double[] maxPool(double[] x, int nc, int h, int w, int k) {
        int p = h / k;
        int q = w / k;
        double[] y = new double[nc * p * q];
        for (int i = 0; i < nc; i++) {
            for (int ip = 0; ip < p; ip++) {
                for (int iq = 0; iq < q; iq++) {
                    double m = Double.NEGATIVE_INFINITY;
                    for (int a = 0; a < k; a++) {
                        for (int b = 0; b < k; b++) {
                            m = Math.max(m, x[(i * h + ip * k + a) * w + iq * k + b]);
                        }
                    }
                    y[(i * p + ip) * q + iq] = m;
                }
            }
        }
        return y;
    }

    static double[] globalAvgPool(double[] x, int nc, int hw) {
        double[] y = new double[nc];
        for (int i = 0; i < nc; i++) {
            for (int j = 0; j < hw; j++) {
                y[i] += x[i * hw + j] / hw;
            }
        }
        return y;
    }

    static double[] linear(double[] x, int n, int in, double[] wt, double[] b, int out) {
        double[] y = new double[n * out];
        for (int s = 0; s < n; s++) {
            for (int o = 0; o < out; o++) {
                double acc = b[o];
                for (int i = 0; i < in; i++) {
                    acc += x[s * in + i] * wt[o * in + i];
                }
                y[s * out + o] = acc;
            }
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

    /** Mean softmax cross-entropy. */
    static double crossEntropy(double[] logits, int n, int classes, int[] labels) {
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
            total += max + Math.log(sum) - logits[s * classes + labels[s]];
        }
        return total / n;
    }
}
