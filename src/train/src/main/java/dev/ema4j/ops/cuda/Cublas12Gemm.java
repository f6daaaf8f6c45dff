package dev.ema4j.ops.cuda;

import static jcuda.jcublas.JCublas2.cublasCreate;
import static jcuda.jcublas.JCublas2.cublasDestroy;
import static jcuda.jcublas.JCublas2.cublasGetVersion;
import static jcuda.jcublas.JCublas2.cublasSetStream;
import static jcuda.jcublas.JCublas2.cublasSgemm;
import static jcuda.jcublas.cublasOperation.CUBLAS_OP_N;
import static jcuda.jcublas.cublasOperation.CUBLAS_OP_T;

import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.backend.cuda.CudaProbe;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.runtime.cudaStream_t;

/**
 * {@link CublasGemm} through JCublas2 12.6, which needs {@code libcublas.so.12}. JCublas's natives are loaded once
 * per JVM, at the first {@link #open}: a failure is kept and reported again by later calls (a class whose
 * initialization failed would only say {@code NoClassDefFoundError} the second time).
 */
final class Cublas12Gemm implements CublasGemm {

    private static final Pointer ONE = Pointer.to(new float[] {1f});
    private static final Pointer ZERO = Pointer.to(new float[] {0f});

    private final cublasHandle handle;
    private final String version;
    private boolean closed;

    private Cublas12Gemm(cublasHandle handle, String version) {
        this.handle = handle;
        this.version = version;
    }

    /** Loads JCublas's natives once; null when they loaded, else why not. */
    static String loadFailure() {
        return Library.FAILURE;
    }

    private static final class Library {
        static final String FAILURE = load();

        private static String load() {
            try {
                JCublas2.setExceptionsEnabled(true);  // the class's initializer loads the natives
                return null;
            } catch (LinkageError e) {
                return CudaProbe.summary(e);
            }
        }
    }

    /**
     * A cuBLAS handle on {@code stream} in the current context.
     *
     * @throws IllegalStateException with the reason when cuBLAS does not load or initialize
     */
    static Cublas12Gemm open(CUstream stream) {
        String failure = loadFailure();
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
        cublasHandle handle = new cublasHandle();
        try {
            cublasCreate(handle);
        } catch (CudaException e) {
            throw new IllegalStateException("cublasCreate: " + e.getMessage(), e);
        }
        try {
            cublasSetStream(handle, new cudaStream_t(stream));
            int[] version = new int[1];
            cublasGetVersion(handle, version);
            return new Cublas12Gemm(handle, CublasGemm.version(version[0]));
        } catch (CudaException e) {
            cublasDestroy(handle);
            throw new IllegalStateException(e.getMessage(), e);
        }
    }

    @Override
    public String describe() {
        return "cuBLAS " + version + " (JCublas)";
    }

    @Override
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb, long c,
                      int ldc) {
        cublasSgemm(handle, transA ? CUBLAS_OP_T : CUBLAS_OP_N, transB ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, ONE,
                CudaBackend.pointerAt(a), lda, CudaBackend.pointerAt(b), ldb, ZERO, CudaBackend.pointerAt(c), ldc);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            cublasDestroy(handle);
        }
    }
}
