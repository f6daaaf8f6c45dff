package dev.ema4j.ops.cuda;

import static jcuda.jcublas.JCublas2.cublasCreate;
import static jcuda.jcublas.JCublas2.cublasDestroy;
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
 * The three products of a linear layer through cuBLAS (JCublas2, which needs {@code libcublas.so.12}). Our
 * matrices are row-major; cuBLAS's are column-major, where a row-major {@code (r, c)} matrix reads as its
 * transpose with leading dimension {@code c}. So {@code y = x·wᵀ} (row-major {@code (N, O)}) is computed as the
 * column-major {@code yᵀ = w·xᵀ}, and likewise for the gradients.
 */
final class CublasGemm implements AutoCloseable {

    private static final Pointer ONE = Pointer.to(new float[] {1f});
    private static final Pointer ZERO = Pointer.to(new float[] {0f});

    private final cublasHandle handle;
    private boolean closed;

    private CublasGemm(cublasHandle handle) {
        this.handle = handle;
    }

    /**
     * A cuBLAS handle on {@code stream} in the current context.
     *
     * @throws IllegalStateException with the reason when cuBLAS does not load or initialize
     */
    static CublasGemm open(CUstream stream) {
        cublasHandle handle = new cublasHandle();
        try {
            JCublas2.setExceptionsEnabled(true);
            cublasCreate(handle);
        } catch (LinkageError | CudaException e) {
            throw new IllegalStateException("cuBLAS unavailable: " + CudaProbe.summary(e), e);
        }
        try {
            cublasSetStream(handle, new cudaStream_t(stream));
        } catch (CudaException e) {
            cublasDestroy(handle);
            throw new IllegalStateException("cuBLAS unavailable: " + e.getMessage(), e);
        }
        return new CublasGemm(handle);
    }

    /** {@code y = x·wᵀ}: x (N, I), w (O, I), y (N, O). */
    void forward(long x, long w, long y, int n, int in, int out) {
        cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, ONE, at(w), in, at(x), in, ZERO, at(y), out);
    }

    /** {@code dx = dy·w}: dy (N, O), w (O, I), dx (N, I). */
    void backwardData(long dy, long w, long dx, int n, int in, int out) {
        cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, ONE, at(w), in, at(dy), out, ZERO, at(dx), in);
    }

    /** {@code dw = dyᵀ·x}: dy (N, O), x (N, I), dw (O, I). */
    void backwardWeight(long dy, long x, long dw, int n, int in, int out) {
        cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, ONE, at(x), in, at(dy), out, ZERO, at(dw), in);
    }

    private static Pointer at(long address) {
        return CudaBackend.pointerAt(address);
    }

    /** Destroys the handle; later calls do nothing. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            cublasDestroy(handle);
        }
    }
}
