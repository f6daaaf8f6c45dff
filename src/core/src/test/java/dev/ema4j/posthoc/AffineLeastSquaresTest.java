package dev.ema4j.posthoc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
    void choleskyFactorsAndSolves() {
        int n = 37;
        double[][] a = randomSpd(n, new Random(1));
        double[][] l = AffineLeastSquares.cholesky(a, 0);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double product = 0;
                for (int k = 0; k < n; k++) {
                    product += l[i][k] * l[j][k];
                }
                assertEquals(a[i][j], product, 1e-10 * n, "LLᵀ[" + i + "][" + j + "]");
                if (j > i) {
                    assertEquals(0, l[i][j], "lower triangular");
                }
            }
        }
        double[] x = new Random(3).doubles(n).toArray();
        double[] b = new double[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                b[i] += a[i][j] * x[j];
            }
        }
        double[] solved = AffineLeastSquares.solveWith(l, b);
        for (int i = 0; i < n; i++) {
            assertEquals(x[i], solved[i], 1e-8, "x[" + i + "]");
        }
        assertThrows(IllegalArgumentException.class, () -> AffineLeastSquares.cholesky(new double[][] {{1, 2}, {2, 1}},
                0));
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
        assertEquals(1.5, s.x()[0], 1e-9);  // up to the ridge
        // ‖1.5 e0 − 0.5 e1 − 2 e0‖ / 2 = sqrt(0.5) / 2
        assertEquals(Math.sqrt(0.5) / 2, s.relativeError(), 1e-9);
    }

    @Test
    void dependentProfilesSplitTheirWeightEvenly() {
        // p_0 = p_1: the Gram matrix is singular; the ridge makes it solvable and splits the weight about evenly
        // (rounding in the nearly zero second pivot decides the last digits)
        double[][] a = {{2, 2}, {2, 2}};
        double[] b = {2, 2};
        AffineLeastSquares.Solution s = AffineLeastSquares.solve(a, b, 2);
        assertEquals(1, s.x()[0] + s.x()[1], 1e-12);
        assertEquals(0.5, s.x()[0], 1e-3);
        assertTrue(s.relativeError() < 1e-6, "the target is the profile itself: " + s.relativeError());
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
