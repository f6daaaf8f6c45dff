package dev.ema4j.bench;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Locale;
import org.bytedeco.openblas.global.openblas_full;

/**
 * The measurement behind NOTE: [gemm-slices] in the CPU convolution: single-threaded OpenBLAS SGEMM on the per-image
 * products of SmallCnn(16)'s and ResNet-20's 3×3 convolutions ({@code m} output channels, inner dimension
 * {@code k = 9·C}, {@code n = P·Q} columns), as one call and split into column slices of several widths. Prints
 * GFLOP/s per shape and slice width (best of 3 runs of 2000 products), then the filter gradient's product in its two
 * orientations.
 *
 * <pre>{@code java -cp ... dev.ema4j.bench.SgemmSlices}</pre>
 */
public final class SgemmSlices {

    private static final int[][] SHAPES = {{16, 144, 784}, {32, 288, 196}, {32, 288, 784}, {64, 576, 49}, {16, 9, 784}};
    private static final int[] SLICES = {0, 48, 96, 160, 192, 384};

    private SgemmSlices() {
    }

    public static void main(String[] args) {
        openblas_full.openblas_set_num_threads(1);
        System.out.println("OpenBLAS " + openblas_full.openblas_get_config().getString() + "; GFLOP/s, best of 3");
        StringBuilder head = new StringBuilder("| m | k | n |");
        for (int slice : SLICES) {
            head.append(slice == 0 ? " one call |" : " slices of " + slice + " |");
        }
        System.out.println(head);
        System.out.println("|---|---|---|" + "---:|".repeat(SLICES.length));
        for (int[] shape : SHAPES) {
            int m = shape[0];
            int k = shape[1];
            int n = shape[2];
            FloatBuffer a = filled(m * k);
            FloatBuffer b = filled(k * n);
            FloatBuffer c = filled(m * n);
            StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %d | %d | %d |", m, k, n));
            for (int slice : SLICES) {
                int width = slice == 0 ? n : slice;
                double gflops = gflops(2.0 * m * n * k, () -> {
                    for (int j = 0; j < n; j += width) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, Math.min(width, n - j), k, 1f, a, k,
                                b.position(j).slice(), n, 0f, c.position(j).slice(), n);
                        b.position(0);
                        c.position(0);
                    }
                });
                row.append(String.format(Locale.ROOT, " %.0f |", gflops));
            }
            System.out.println(row);
        }
        System.out.println();
        System.out.println("filter gradient (m = K, C·R·S = k, inner P·Q = n of the shapes above): GFLOP/s");
        System.out.println("| K | C·R·S | P·Q | dw += dy × colᵀ | dwᵀ += col × dyᵀ |");
        System.out.println("|---|---|---|---:|---:|");
        for (int[] shape : SHAPES) {
            int m = shape[0];
            int rows = shape[1];
            int inner = shape[2];
            FloatBuffer dy = filled(m * inner);
            FloatBuffer col = filled(rows * inner);
            FloatBuffer dw = filled(m * rows);
            double flops = 2.0 * m * rows * inner;
            double plain = gflops(flops, () -> cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, rows, inner, 1f,
                    dy, inner, col, inner, 1f, dw, rows));
            double transposed = gflops(flops, () -> cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, inner,
                    1f, col, inner, dy, inner, 1f, dw, m));
            System.out.println(String.format(Locale.ROOT, "| %d | %d | %d | %.0f | %.0f |", m, rows, inner, plain,
                    transposed));
        }
    }

    /** GFLOP/s of {@code product} ({@code flops} each), the best of 3 runs of 2000. */
    private static double gflops(double flops, Runnable product) {
        double best = 0;
        for (int run = 0; run < 3; run++) {
            int reps = 2000;
            long t0 = System.nanoTime();
            for (int r = 0; r < reps; r++) {
                product.run();
            }
            best = Math.max(best, flops * reps / (System.nanoTime() - t0));
        }
        return best;
    }

    private static FloatBuffer filled(int n) {
        FloatBuffer f = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (int i = 0; i < n; i++) {
            f.put(i, (float) Math.sin(i));
        }
        return f;
    }
}
