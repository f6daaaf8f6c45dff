package dev.ema4j.posthoc;

/**
 * Solves {@code min ‖Σ x_i·p_i − r‖²} subject to {@code Σ x_i = 1} from the Gram matrix {@code A_ij = ⟨p_i, p_j⟩},
 * {@code b_i = ⟨p_i, r⟩} and {@code c = ⟨r, r⟩}, in double precision:
 * {@code x = A⁺b + A⁺1·(1 − 1ᵀA⁺b)/(1ᵀA⁺1)}, with the pseudo-inverse {@code A⁺} from a Jacobi eigendecomposition
 * that drops eigenvalues below {@link #RCOND} times the largest (the minimum-norm solution when profiles are nearly
 * dependent). The constraint makes the result an average: a parameter that never changed is rebuilt exactly.
 */
final class AffineLeastSquares {

    /** Eigenvalues below this fraction of the largest are treated as zero. */
    static final double RCOND = 1e-12;

    private AffineLeastSquares() {
    }

    /** The weights, and the relative profile error {@code ‖Σ x_i·p_i − r‖ / ‖r‖}. */
    record Solution(double[] x, double relativeError) {
    }

    static Solution solve(double[][] a, double[] b, double c) {
        int n = b.length;
        double[][] vectors = new double[n][n];
        double[] values = jacobiEigen(copy(a), vectors);
        double largest = 0;
        for (double v : values) {
            largest = Math.max(largest, v);
        }
        double[] ones = new double[n];
        java.util.Arrays.fill(ones, 1);
        double[] free = pseudoInverseTimes(values, vectors, largest * RCOND, b);
        double[] toOnes = pseudoInverseTimes(values, vectors, largest * RCOND, ones);
        double shift = (1 - sum(free)) / sum(toOnes);
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = free[i] + shift * toOnes[i];
        }
        double squared = c - 2 * dot(x, b) + dot(x, times(a, x));
        return new Solution(x, Math.sqrt(Math.max(0, squared) / c));
    }

    private static double[] pseudoInverseTimes(double[] values, double[][] vectors, double floor, double[] v) {
        int n = v.length;
        double[] out = new double[n];
        for (int k = 0; k < n; k++) {
            if (values[k] <= floor) {
                continue;
            }
            double projection = 0;
            for (int i = 0; i < n; i++) {
                projection += vectors[i][k] * v[i];
            }
            projection /= values[k];
            for (int i = 0; i < n; i++) {
                out[i] += projection * vectors[i][k];
            }
        }
        return out;
    }

    /**
     * Eigenvalues of the symmetric matrix {@code a} (destroyed), by cyclic Jacobi rotations until the off-diagonal
     * part is negligible; the eigenvectors go into the columns of {@code vectors}.
     */
    static double[] jacobiEigen(double[][] a, double[][] vectors) {
        int n = a.length;
        for (int i = 0; i < n; i++) {
            java.util.Arrays.fill(vectors[i], 0);
            vectors[i][i] = 1;
        }
        for (int sweep = 0; sweep < 100; sweep++) {
            double off = 0;
            double diagonal = 0;
            for (int i = 0; i < n; i++) {
                diagonal += a[i][i] * a[i][i];
                for (int j = i + 1; j < n; j++) {
                    off += a[i][j] * a[i][j];
                }
            }
            if (off <= 1e-32 * diagonal) {
                break;
            }
            for (int p = 0; p < n; p++) {
                for (int q = p + 1; q < n; q++) {
                    if (a[p][q] != 0) {
                        rotate(a, vectors, p, q);
                    }
                }
            }
        }
        double[] values = new double[n];
        for (int i = 0; i < n; i++) {
            values[i] = a[i][i];
        }
        return values;
    }

    /** One rotation in the (p, q) plane that zeroes {@code a[p][q]}. */
    private static void rotate(double[][] a, double[][] v, int p, int q) {
        double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        if (theta == 0) {
            t = 1;
        }
        double cos = 1 / Math.sqrt(t * t + 1);
        double sin = t * cos;
        int n = a.length;
        for (int k = 0; k < n; k++) {
            double akp = a[k][p];
            double akq = a[k][q];
            a[k][p] = cos * akp - sin * akq;
            a[k][q] = sin * akp + cos * akq;
        }
        for (int k = 0; k < n; k++) {
            double apk = a[p][k];
            double aqk = a[q][k];
            a[p][k] = cos * apk - sin * aqk;
            a[q][k] = sin * apk + cos * aqk;
        }
        for (int k = 0; k < n; k++) {
            double vkp = v[k][p];
            double vkq = v[k][q];
            v[k][p] = cos * vkp - sin * vkq;
            v[k][q] = sin * vkp + cos * vkq;
        }
    }

    private static double[][] copy(double[][] a) {
        double[][] c = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            c[i] = a[i].clone();
        }
        return c;
    }

    private static double[] times(double[][] a, double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = dot(a[i], x);
        }
        return y;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static double sum(double[] a) {
        double s = 0;
        for (double v : a) {
            s += v;
        }
        return s;
    }
}
