package dev.ema4j.ops.cuda;

/**
 * The three products of a linear layer through a cuBLAS binding: {@link Cublas13Gemm} ({@code libcublas.so.13}
 * through JavaCPP's CUDA presets) or {@link Cublas12Gemm} ({@code libcublas.so.12} through JCublas2);
 * {@link GemmChoice} picks one. Our matrices are row-major; cuBLAS's are column-major, where a row-major
 * {@code (r, c)} matrix reads as its transpose with leading dimension {@code c}. So {@code y = x·wᵀ} (row-major
 * {@code (N, O)}) is computed as the column-major {@code yᵀ = w·xᵀ}, and likewise for the gradients.
 *
 * <p>Every call runs on the stream the binding was opened on, in the context current on the calling thread (the
 * backend's primary context: {@link CudaNnOps} makes it current first). Addresses are raw device addresses.
 */
interface CublasGemm extends AutoCloseable {

    /** What runs, for {@link CudaNnOps#gemm()}: {@code cuBLAS 13.1.0 (JavaCPP)}. */
    String describe();

    /**
     * Column-major {@code C = op(A)·op(B)} (alpha 1, beta 0) with {@code C} {@code (m, n)} and inner dimension
     * {@code k}; {@code transA}/{@code transB} select {@code CUBLAS_OP_T} instead of {@code CUBLAS_OP_N}.
     */
    void sgemm(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb, long c, int ldc);

    /** {@code y = x·wᵀ}: x (N, I), w (O, I), y (N, O). */
    default void forward(long x, long w, long y, int n, int in, int out) {
        sgemm(true, false, out, n, in, w, in, x, in, y, out);
    }

    /** {@code dx = dy·w}: dy (N, O), w (O, I), dx (N, I). */
    default void backwardData(long dy, long w, long dx, int n, int in, int out) {
        sgemm(false, false, in, n, out, w, in, dy, out, dx, in);
    }

    /** {@code dw = dyᵀ·x}: dy (N, O), x (N, I), dw (O, I). */
    default void backwardWeight(long dy, long x, long dw, int n, int in, int out) {
        sgemm(false, true, in, out, n, x, in, dy, out, dw, in);
    }

    /** Destroys the handle; later calls do nothing. */
    @Override
    void close();

    /** {@code cublasGetVersion}'s {@code major·10000 + minor·100 + patch} as {@code major.minor.patch}. */
    static String version(int v) {
        return v / 10000 + "." + v / 100 % 100 + "." + v % 100;
    }
}
