package dev.ema4j.posthoc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class AffineLeastSquaresTest {

    private static double[][] randomSpd(int n, Random r) {
        double[][] m = new double[n][n];
        for (double[] row : m) {
            for (int j = 0; j < n; j++) {
                row[j] = r.nextGaussian();
            }
        }
        double[][] a = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                for (int k = 0; k < n; k++) {
                    a[i][j] += m[i][k] * m[j][k];
                }
            }
        }
        return a;
    }

    @Test
    void jacobiEigenvectorsDiagonalizeTheMatrix() {
        int n = 37;
        double[][] a = randomSpd(n, new Random(1));
        double[][] v = new double[n][n];
        double[][] work = new double[n][];
        for (int i = 0; i < n; i++) {
            work[i] = a[i].clone();
        }
        double[] w = AffineLeastSquares.jacobiEigen(work, v);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double rebuilt = 0;
                double orthogonality = 0;
                for (int k = 0; k < n; k++) {
                    rebuilt += v[i][k] * w[k] * v[j][k];
                    orthogonality += v[k][i] * v[k][j];
                }
                assertEquals(a[i][j], rebuilt, 1e-10 * n, "A[" + i + "][" + j + "]");
                assertEquals(i == j ? 1 : 0, orthogonality, 1e-12, "VᵀV[" + i + "][" + j + "]");
            }
        }
    }

    @Test
    void aTargetInsideTheAffineSpanIsHitExactlyWithWeightsSummingToOne() {
        // vectors p_i in R^6 with the standard inner product; r = 0.7 p_0 − 0.2 p_1 + 0.5 p_3 (sum 1)
        Random random = new Random(2);
        int n = 4;
        double[][] p = new double[n][6];
        for (double[] row : p) {
            for (int j = 0; j < 6; j++) {
                row[j] = random.nextGaussian();
            }
        }
        double[] r = new double[6];
        for (int j = 0; j < 6; j++) {
            r[j] = 0.7 * p[0][j] - 0.2 * p[1][j] + 0.5 * p[3][j];
        }
        double[][] a = new double[n][n];
        double[] b = new double[n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < n; k++) {
                a[i][k] = dot(p[i], p[k]);
            }
            b[i] = dot(p[i], r);
        }
        AffineLeastSquares.Solution s = AffineLeastSquares.solve(a, b, dot(r, r));
        assertEquals(0.7, s.x()[0], 1e-10);
        assertEquals(-0.2, s.x()[1], 1e-10);
        assertEquals(0.0, s.x()[2], 1e-10);
        assertEquals(0.5, s.x()[3], 1e-10);
        assertTrue(s.relativeError() < 1e-6, "error " + s.relativeError());
    }

    @Test
    void theWeightsSumToOneEvenWhenTheTargetIsScaledAway() {
        // r = 2 p_0: the best unconstrained fit is x = (2, 0); constrained to sum 1 it stays an average
        double[][] a = {{1, 0}, {0, 1}};
        double[] b = {2, 0};
        AffineLeastSquares.Solution s = AffineLeastSquares.solve(a, b, 4);
        assertEquals(1, s.x()[0] + s.x()[1], 1e-12);
        assertEquals(1.5, s.x()[0], 1e-12);
        // ‖1.5 e0 − 0.5 e1 − 2 e0‖ / 2 = sqrt(0.5) / 2
        assertEquals(Math.sqrt(0.5) / 2, s.relativeError(), 1e-12);
    }

    @Test
    void dependentProfilesGiveTheMinimumNormSolution() {
        // p_0 = p_1: the Gram matrix is singular; the pseudo-inverse splits the weight evenly
        double[][] a = {{2, 2}, {2, 2}};
        double[] b = {2, 2};
        AffineLeastSquares.Solution s = AffineLeastSquares.solve(a, b, 2);
        assertEquals(0.5, s.x()[0], 1e-12);
        assertEquals(0.5, s.x()[1], 1e-12);
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
