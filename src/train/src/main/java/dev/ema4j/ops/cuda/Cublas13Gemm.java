package dev.ema4j.ops.cuda;

import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cublas.CUBLAS_STATUS_SUCCESS;
import static org.bytedeco.cuda.global.cublas.cublasCreate_v2;
import static org.bytedeco.cuda.global.cublas.cublasDestroy_v2;
import static org.bytedeco.cuda.global.cublas.cublasGetStatusName;
import static org.bytedeco.cuda.global.cublas.cublasGetVersion_v2;
import static org.bytedeco.cuda.global.cublas.cublasSetStream_v2;
import static org.bytedeco.cuda.global.cublas.cublasSgemm_v2;

import dev.ema4j.backend.cuda.JCudaAddresses;
import jcuda.driver.CUstream;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;

/**
 * {@link CublasGemm} through JavaCPP's CUDA presets ({@code org.bytedeco:cuda} 13.1-9.19-1.5.13), which bind
 * {@code libcublas.so.13}: only the presets' Java classes and JNI libraries travel with ema4j, never NVIDIA's
 * redistributable libraries, so the system's {@code libcublas.so.13}, {@code libcublasLt.so.13},
 * {@code libcudart.so.13} and {@code libcuda.so.1} must be found by the dynamic loader ({@code LD_LIBRARY_PATH},
 * {@code ldconfig}, or JavaCPP's {@code -Dorg.bytedeco.javacpp.platform.preloadpath}). The presets' cuBLAS
 * bindings inherit their CUDA runtime bindings, so loading them loads {@code libcudart.so.13} too (it is not
 * called).
 *
 * <p>The natives load once per JVM, at the first {@link #open} (a CUDA backend creating its training operations),
 * never on the CPU path; a failure (no library, another platform, no presets jar) is kept as a reason and reported
 * again by later calls.
 *
 * <p>NOTE: [cublas-bridge]. JCuda's handles are bridged to JavaCPP by raw address, with nothing allocated or
 * freed: the stream is the backend's {@code CUstream}, whose address ({@link JCudaAddresses#of}) is the
 * {@code cudaStream_t} cuBLAS takes (the runtime's {@code cudaStream_t} and the driver's {@code CUstream} are the
 * same {@code CUstream_st*}); device memory is passed as {@link FloatPointer}s whose {@code address} field is set
 * and that own nothing (no deallocator). The context: cuBLAS runs on the CUDA runtime (linked statically into
 * {@code libcublas}), and the runtime uses the context current on the calling thread when there is one, else the
 * device's primary context; {@link CudaNnOps} makes the backend's context current before every call, and that
 * context is the primary context of the device ({@code CudaBackend}), so cuBLAS and our kernels share the context,
 * the memory and the stream, whichever thread calls. Nothing here calls the CUDA runtime of
 * {@code libcudart.so.13} itself, and loading the presets initializes no runtime and creates no context.
 */
final class Cublas13Gemm implements CublasGemm {

    private final cublasContext handle;
    private final String version;
    private final FloatPointer one = new FloatPointer(1f);
    private final FloatPointer zero = new FloatPointer(0f);
    private boolean closed;

    private Cublas13Gemm(cublasContext handle, String version) {
        this.handle = handle;
        this.version = version;
    }

    /** Loads the presets' natives once; null when they loaded, else why not. */
    static String loadFailure() {
        return Library.FAILURE;
    }

    private static final class Library {
        static final String FAILURE = load();

        private static String load() {
            try {
                Loader.load(cublas.class);
                return null;
            } catch (LinkageError | RuntimeException e) {  // UnsatisfiedLinkError, NoClassDefFoundError, ...
                return summary(e);
            }
        }
    }

    /**
     * The innermost cause of a loading failure, which names the library that is missing (JavaCPP's own message
     * says only that the JNI library was not found), with directories dropped from paths.
     */
    static String summary(Throwable e) {
        Throwable cause = e;
        while (cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
        }
        String line = String.valueOf(cause.getMessage()).lines().findFirst().orElse("")
                .replaceAll("(^|[\\s\"'])/[^\\s:]*/([^/\\s:]+)", "$1$2");
        line = cause.getClass().getSimpleName() + ": " + line;
        return line.length() > 400 ? line.substring(0, 400) + "..." : line;
    }

    /**
     * A cuBLAS handle on {@code stream} in the current context (NOTE: [cublas-bridge]).
     *
     * @throws IllegalStateException with the reason when cuBLAS does not load or initialize
     */
    static Cublas13Gemm open(CUstream stream) {
        String failure = loadFailure();
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
        cublasContext handle = new cublasContext();
        check("cublasCreate", cublasCreate_v2(handle));
        try {
            check("cublasSetStream", cublasSetStream_v2(handle, new Stream(JCudaAddresses.of(stream))));
            int[] version = new int[1];
            check("cublasGetVersion", cublasGetVersion_v2(handle, version));
            return new Cublas13Gemm(handle, CublasGemm.version(version[0]));
        } catch (RuntimeException e) {
            cublasDestroy_v2(handle);
            throw e;
        }
    }

    @Override
    public String describe() {
        return "cuBLAS " + version + " (JavaCPP)";
    }

    @Override
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb, long c,
                      int ldc) {
        check("cublasSgemm", cublasSgemm_v2(handle, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                transB ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, one, new Device(a), lda, new Device(b), ldb, zero,
                new Device(c), ldc));
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            cublasDestroy_v2(handle);
            one.close();
            zero.close();
        }
    }

    private static void check(String call, int status) {
        if (status != CUBLAS_STATUS_SUCCESS) {
            BytePointer name = cublasGetStatusName(status);
            throw new IllegalStateException(call + ": " + (name == null ? "status " + status : name.getString()));
        }
    }

    /** fp32 device memory at a raw address; owns nothing (NOTE: [cublas-bridge]). */
    private static final class Device extends FloatPointer {
        Device(long address) {
            this.address = address;
        }
    }

    /** The backend's stream at its raw address; owns nothing (NOTE: [cublas-bridge]). */
    private static final class Stream extends CUstream_st {
        Stream(long address) {
            this.address = address;
        }
    }
}
