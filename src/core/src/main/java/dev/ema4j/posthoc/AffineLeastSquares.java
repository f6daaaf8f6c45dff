package dev.ema4j.posthoc;

import java.util.Arrays;

/**
 * Solves {@code min ‖Σ x_i·p_i − r‖²} subject to {@code Σ x_i = 1} from the Gram matrix {@code A_ij = ⟨p_i, p_j⟩},
 * {@code b_i = ⟨p_i, r⟩} and {@code c = ⟨r, r⟩}, in double precision:
 * {@code x = A⁻¹b + A⁻¹1·(1 − 1ᵀA⁻¹b)/(1ᵀA⁻¹1)}, with {@code A} regularized by {@link #RIDGE} times its mean
 * diagonal and factored by Cholesky ({@code n³/3} operations: 512 snapshots in well under a second). The ridge keeps
 * the solve stable, and the weights small, when profiles are nearly dependent (two snapshots of the same profile split
 * their weight evenly). The constraint makes the result an average: a parameter that never changed is rebuilt
 * exactly.
 */
final class AffineLeastSquares {

    /** The ridge added to {@code A}'s diagonal, relative to its mean diagonal. */
    static final double RIDGE = 1e-12;

    private AffineLeastSquares() {
    }

    /** The weights, and the relative profile error {@code ‖Σ x_i·p_i − r‖ / ‖r‖}. */
    record Solution(double[] x, double relativeError) {
    }

    static Solution solve(double[][] a, double[] b, double c) {
        int n = b.length;
        double trace = 0;
        for (int i = 0; i < n; i++) {
            trace += a[i][i];
        }
        double[][] l = cholesky(a, RIDGE * trace / n);
        double[] ones = new double[n];
        Arrays.fill(ones, 1);
        double[] free = solveWith(l, b);
        double[] toOnes = solveWith(l, ones);
        double shift = (1 - sum(free)) / sum(toOnes);
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = free[i] + shift * toOnes[i];
        }
        double squared = c - 2 * dot(x, b) + dot(x, times(a, x));
        return new Solution(x, Math.sqrt(Math.max(0, squared) / c));
    }

    /**
     * The lower-triangular {@code L} with {@code L·Lᵀ = A + ridge·I}.
     *
     * @throws IllegalArgumentException if that matrix is not positive definite (not a Gram matrix)
     */
    static double[][] cholesky(double[][] a, double ridge) {
        int n = a.length;
        double[][] l = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = a[i][j] + (i == j ? ridge : 0);
                double[] li = l[i];
                double[] lj = l[j];
                for (int k = 0; k < j; k++) {
                    s -= li[k] * lj[k];
                }
                if (i == j) {
                    if (!(s > 0)) {
                        throw new IllegalArgumentException("the profiles' Gram matrix is not positive definite "
                                + "(pivot " + i + " is " + s + ")");
                    }
                    li[i] = Math.sqrt(s);
                } else {
                    li[j] = s / lj[j];
                }
            }
        }
        return l;
    }

    /** {@code (L·Lᵀ)⁻¹·v} by forward and back substitution. */
    static double[] solveWith(double[][] l, double[] v) {
        int n = v.length;
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            double s = v[i];
            for (int k = 0; k < i; k++) {
                s -= l[i][k] * y[k];
            }
            y[i] = s / l[i][i];
        }
        double[] x = new double[n];
        for (int i = n - 1; i >= 0; i--) {
            double s = y[i];
            for (int k = i + 1; k < n; k++) {
                s -= l[k][i] * x[k];
            }
            x[i] = s / l[i][i];
        }
        return x;
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
