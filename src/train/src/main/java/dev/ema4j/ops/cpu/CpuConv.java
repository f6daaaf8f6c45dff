package dev.ema4j.ops.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import dev.ema4j.ops.ConvGeometry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Convolution on the CPU as one small GEMM per image: the image is unfolded (im2col) into a direct buffer of
 * {@code (C·R·S) × (P·Q)}, small enough to stay in cache, and multiplied by the weights with single-threaded
 * OpenBLAS SGEMM; images are split over the backend's threads. The operands live in direct buffers because
 * JavaCPP copies Java arrays on every call, while the activations stay in {@code float[]}, where C2 vectorizes the
 * elementwise loops (it does not vectorize loops over direct buffers on Java 17).
 */
final class CpuConv {

    /** Per-thread scratch, grown on demand and reused across calls. */
    static final class Scratch {
        private FloatBuffer col = direct(0);
        private FloatBuffer out = direct(0);
        private FloatBuffer dcol = direct(0);
        private FloatBuffer dw = direct(0);
        private float[] row = new float[0];
        private float[] unfold = new float[0];

        float[] unfold(int n) {
            if (unfold.length < n) {
                unfold = new float[n];
            }
            return unfold;
        }

        FloatBuffer col(int n) {
            return col = ensure(col, n);
        }

        FloatBuffer out(int n) {
            return out = ensure(out, n);
        }

        FloatBuffer dcol(int n) {
            return dcol = ensure(dcol, n);
        }

        FloatBuffer dw(int n) {
            return dw = ensure(dw, n);
        }

        float[] row(int n) {
            if (row.length < n) {
                row = new float[n];
            }
            return row;
        }
    }

    private static final float[] ZEROS = new float[4096];

    private CpuConv() {
    }

    static FloatBuffer direct(int floats) {
        return ByteBuffer.allocateDirect(4 * floats).order(ByteOrder.nativeOrder()).asFloatBuffer();
    }

    private static FloatBuffer ensure(FloatBuffer b, int floats) {
        return b.capacity() >= floats ? b : direct(Math.max(floats, b.capacity() * 3 / 2));
    }

    /** The weights (K, C·R·S) copied into a direct buffer for SGEMM. */
    static FloatBuffer weights(float[] w, int offset, int count) {
        FloatBuffer d = direct(count);
        d.put(0, w, offset, count);
        return d;
    }

    /** {@code y_n = W × im2col(x_n)} (+ bias) for image {@code n}. */
    static void forward(ConvGeometry g, float[] x, int xOff, FloatBuffer w, float[] bias, int biasOff, float[] y, int yOff,
                        int image, Scratch s) {
        FloatBuffer col = s.col(g.rows() * g.cols());
        FloatBuffer out = s.out(g.k() * g.cols());
        im2col(g, x, xOff + image * g.c() * g.h() * g.w(), col, s);
        multiply(CblasNoTrans, g.k(), g.cols(), g.rows(), w, g.rows(), col, out);
        int base = yOff + image * g.k() * g.cols();
        out.get(0, y, base, g.k() * g.cols());
        if (bias != null) {
            for (int k = 0; k < g.k(); k++) {
                float b = bias[biasOff + k];
                int from = base + k * g.cols();
                for (int i = from; i < from + g.cols(); i++) {
                    y[i] += b;
                }
            }
        }
    }

    /**
     * For image {@code n}: {@code dw_accᵀ += im2col(x_n) × dy_nᵀ} and, when {@code dx != null}, the input gradient:
     * for stride 1 as a forward convolution of {@code dy_n} by the flipped weights ({@link #flipped}) with padding
     * {@code R − 1 − pad}, an SGEMM with inner dimension K·R·S; otherwise {@code col2im(Wᵀ × dy_n)}.
     */
    static void backward(ConvGeometry g, float[] x, int xOff, FloatBuffer w, FloatBuffer wFlipped, float[] dy, int dyOff,
                         float[] dx, int dxOff, int image, Scratch s) {
        FloatBuffer col = s.col(g.rows() * g.cols());
        FloatBuffer out = s.out(g.k() * g.cols());
        FloatBuffer dwT = s.dw(g.k() * g.rows());
        int dyBase = dyOff + image * g.k() * g.cols();
        out.put(0, dy, dyBase, g.k() * g.cols());
        im2col(g, x, xOff + image * g.c() * g.h() * g.w(), col, s);
        // dwᵀ += im2col(x_n) × dy_nᵀ (NOTE: [gemm-slices])
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.rows(), g.k(), g.cols(), 1f, col, g.cols(), out,
                g.cols(), 1f, dwT, g.k());
        if (dx == null) {
            return;
        }
        if (wFlipped != null) {
            forward(transposed(g), dy, dyOff, wFlipped, null, 0, dx, dxOff, image, s);
            return;
        }
        FloatBuffer dcol = s.dcol(g.rows() * g.cols());
        multiply(CblasTrans, g.rows(), g.cols(), g.k(), w, g.rows(), out, dcol);
        col2im(g, dcol, dx, dxOff + image * g.c() * g.h() * g.w(), s);
    }

    /**
     * {@code c = op(a) × b} with row-major {@code op(a)} (m × k; {@code a} is stored transposed when {@code transA} is
     * {@code CblasTrans}, with leading dimension {@code lda}), {@code b} (k × n) and {@code c} (m × n): one
     * single-threaded SGEMM per slice of {@link #sliceColumns} columns of {@code b} and {@code c}.
     *
     * <p>NOTE: [gemm-slices]. The per-image products of the small convolutions (m = 16–64 rows, inner dimension k =
     * 144–576, n = 49–784 columns) ran at 47–70 GFLOP/s as one OpenBLAS call on the project's AVX-512 machine
     * (Cooperlake kernels), and at 95–110 GFLOP/s when split into column slices of about 27,648 / k columns (a slice
     * of {@code b} of about 108 KB: 192 columns for k = 144, 96 for k = 288); more columns per call, or fewer, were
     * slower. The filter gradient is accumulated transposed, {@code dwᵀ += im2col(x) × dyᵀ} (C·R·S rows of K), which
     * ran 1.1–1.5× faster than {@code dw += dy × im2col(x)ᵀ} (slicing it gained nothing reliably).
     * {@code dev.ema4j.bench.SgemmSlices} measures both. Each element of a product is the same dot product either
     * way.
     */
    static void multiply(int transA, int m, int n, int k, FloatBuffer a, int lda, FloatBuffer b, FloatBuffer c) {
        int slice = sliceColumns(n, k);
        for (int j = 0; j < n; j += slice) {
            int cols = Math.min(slice, n - j);
            cblas_sgemm(CblasRowMajor, transA, CblasNoTrans, m, cols, k, 1f, a, lda, b.position(j).slice(), n, 0f,
                    c.position(j).slice(), n);
            b.position(0);
            c.position(0);
        }
    }

    /**
     * The columns per SGEMM of {@link #multiply} (NOTE: [gemm-slices]): {@code n} when it is at most 27,648 / k,
     * else slices of equal size (multiples of 16), each at most that.
     */
    static int sliceColumns(int n, int k) {
        int most = Math.max(16, 27_648 / Math.max(k, 1) / 16 * 16);
        if (n <= most) {
            return Math.max(n, 1);
        }
        int slices = (n + most - 1) / most;
        return ((n + slices - 1) / slices + 15) / 16 * 16;
    }

    /** Whether {@link #backward} computes the input gradient as a convolution by {@link #flipped} weights. */
    static boolean transposable(ConvGeometry g) {
        // one padding for both axes: the transposed convolution pads by r − 1 − pad, so the kernel must be square
        return g.stride() == 1 && g.r() == g.s() && g.pad() <= g.r() - 1;
    }

    /** The convolution whose output is the input gradient of a stride-1 convolution: dy (K channels) → dx (C). */
    private static ConvGeometry transposed(ConvGeometry g) {
        return new ConvGeometry(g.n(), g.k(), g.p(), g.q(), g.c(), g.r(), g.s(), g.h(), g.w(), 1, g.r() - 1 - g.pad());
    }

    /** {@code w'[c,k,r,s] = w[k,c,R−1−r,S−1−s]}, in a direct buffer. */
    static FloatBuffer flipped(ConvGeometry g, float[] w, int offset) {
        FloatBuffer d = direct(g.k() * g.rows());
        float[] f = new float[g.k() * g.rows()];
        for (int k = 0; k < g.k(); k++) {
            for (int c = 0; c < g.c(); c++) {
                for (int r = 0; r < g.r(); r++) {
                    for (int sx = 0; sx < g.s(); sx++) {
                        f[((c * g.k() + k) * g.r() + (g.r() - 1 - r)) * g.s() + (g.s() - 1 - sx)] =
                                w[offset + ((k * g.c() + c) * g.r() + r) * g.s() + sx];
                    }
                }
            }
        }
        d.put(0, f, 0, f.length);
        return d;
    }

    /** Zeroes the first {@code K·C·R·S} floats of the thread's filter-gradient accumulator. */
    static void clearFilterGradient(ConvGeometry g, Scratch s) {
        FloatBuffer dw = s.dw(g.k() * g.rows());
        for (int i = 0; i < g.k() * g.rows(); i += ZEROS.length) {
            dw.put(i, ZEROS, 0, Math.min(ZEROS.length, g.k() * g.rows() - i));
        }
    }

    /** Adds the thread's filter-gradient accumulator, {@code dwᵀ} (C·R·S × K), into {@code dw[off ..]} (K × C·R·S). */
    static void addFilterGradient(ConvGeometry g, Scratch s, float[] dw, int off) {
        int n = g.k() * g.rows();
        float[] tmp = s.row(n);
        s.dw(n).get(0, tmp, 0, n);
        for (int k = 0; k < g.k(); k++) {
            int to = off + k * g.rows();
            for (int r = 0; r < g.rows(); r++) {
                dw[to + r] += tmp[r * g.k() + k];
            }
        }
    }

    /**
     * {@code col[(c·R + r)·S + s][p·Q + q] = x[c, p·stride + r − pad, q·stride + s − pad]}, zero outside; built in
     * a {@code float[]} and copied to the direct buffer in one call (thousands of short copies into a direct
     * buffer cost three times the GEMM).
     */
    private static void im2col(ConvGeometry g, float[] x, int xBase, FloatBuffer col, Scratch scratch) {
        int cols = g.cols();
        float[] c2 = scratch.unfold(g.rows() * cols);
        if (g.stride() == 1 && g.p() == g.h() && g.q() == g.w()) {
            im2colSame(g, x, xBase, c2);
            col.put(0, c2, 0, g.rows() * cols);
            return;
        }
        for (int c = 0; c < g.c(); c++) {
            for (int r = 0; r < g.r(); r++) {
                for (int sx = 0; sx < g.s(); sx++) {
                    int row = ((c * g.r() + r) * g.s() + sx) * cols;
                    for (int p = 0; p < g.p(); p++) {
                        int h = p * g.stride() + r - g.pad();
                        int at = row + p * g.q();
                        if (h < 0 || h >= g.h()) {
                            java.util.Arrays.fill(c2, at, at + g.q(), 0f);
                            continue;
                        }
                        int src = xBase + (c * g.h() + h) * g.w();
                        if (g.stride() == 1) {
                            // w = q + sx − pad stays inside [0, W) for q in [lo, hi)
                            int lo = Math.max(0, g.pad() - sx);
                            int hi = Math.max(lo, Math.min(g.q(), g.w() + g.pad() - sx));
                            java.util.Arrays.fill(c2, at, at + lo, 0f);
                            System.arraycopy(x, src + lo + sx - g.pad(), c2, at + lo, hi - lo);
                            java.util.Arrays.fill(c2, at + hi, at + g.q(), 0f);
                        } else {
                            for (int q = 0; q < g.q(); q++) {
                                int wx = q * g.stride() + sx - g.pad();
                                c2[at + q] = wx >= 0 && wx < g.w() ? x[src + wx] : 0f;
                            }
                        }
                    }
                }
            }
        }
        col.put(0, c2, 0, g.rows() * cols);
    }

    /**
     * im2col of a stride-1 convolution whose output is as large as its input: each row is the input plane shifted
     * by {@code (r − pad, s − pad)}, so it is one copy, then the rows and the column that fell outside are zeroed.
     */
    private static void im2colSame(ConvGeometry g, float[] x, int xBase, float[] col) {
        int h = g.h();
        int w = g.w();
        int plane = h * w;
        for (int c = 0; c < g.c(); c++) {
            int src = xBase + c * plane;
            for (int r = 0; r < g.r(); r++) {
                int dr = r - g.pad();
                int rowLo = Math.max(0, -dr);
                int rowHi = Math.min(h, h - dr);
                for (int sx = 0; sx < g.s(); sx++) {
                    int ds = sx - g.pad();
                    int row = ((c * g.r() + r) * g.s() + sx) * plane;
                    int from = rowLo * w + Math.max(0, -ds);
                    int to = rowHi * w - Math.max(0, ds);
                    java.util.Arrays.fill(col, row, row + from, 0f);
                    if (to > from) {
                        System.arraycopy(x, src + from + dr * w + ds, col, row + from, to - from);
                    }
                    java.util.Arrays.fill(col, row + Math.max(from, to), row + plane, 0f);
                    // columns whose source wrapped into the neighbouring row
                    for (int p = rowLo; p < rowHi; p++) {
                        for (int q = 0; q < -ds; q++) {
                            col[row + p * w + q] = 0f;
                        }
                        for (int q = w - ds; q < w; q++) {
                            col[row + p * w + q] = 0f;
                        }
                    }
                }
            }
        }
    }

    /** {@code dx[c, p·stride + r − pad, q·stride + s − pad] += dcol[(c,r,s)][(p,q)]} over the image. */
    private static void col2im(ConvGeometry g, FloatBuffer dcol, float[] dx, int dxBase, Scratch s) {
        int plane = g.h() * g.w();
        java.util.Arrays.fill(dx, dxBase, dxBase + g.c() * plane, 0f);
        int cols = g.cols();
        float[] all = s.unfold(g.rows() * cols);
        dcol.get(0, all, 0, g.rows() * cols);
        for (int c = 0; c < g.c(); c++) {
            for (int r = 0; r < g.r(); r++) {
                for (int sx = 0; sx < g.s(); sx++) {
                    int row = ((c * g.r() + r) * g.s() + sx) * cols;
                    for (int p = 0; p < g.p(); p++) {
                        int h = p * g.stride() + r - g.pad();
                        if (h < 0 || h >= g.h()) {
                            continue;
                        }
                        int dst = dxBase + c * plane + h * g.w();
                        int src = row + p * g.q();
                        if (g.stride() == 1) {
                            int lo = Math.max(0, g.pad() - sx);
                            int hi = Math.min(g.q(), g.w() + g.pad() - sx);
                            int shift = sx - g.pad();
                            for (int q = lo; q < hi; q++) {
                                dx[dst + q + shift] += all[src + q];
                            }
                        } else {
                            for (int q = 0; q < g.q(); q++) {
                                int wx = q * g.stride() + sx - g.pad();
                                if (wx >= 0 && wx < g.w()) {
                                    dx[dst + wx] += all[src + q];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
