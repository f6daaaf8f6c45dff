package dev.ema4j.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.Backends;
import dev.ema4j.backend.BackendAvailability;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Loading the cuBLAS bindings where their libraries may be missing (no GPU, no libcublas): a failure is a reason,
 * never an exception, and the same reason every time (not the {@code NoClassDefFoundError} of a class whose
 * initializer failed once).
 */
class CublasLoadingTest {

    private static final Pattern REASON = Pattern.compile("[A-Za-z]+(Error|Exception): .+");

    @Test
    void cublas13FailsToLoadWithTheSameReasonEveryTime() {
        String first = Cublas13Gemm.loadFailure();
        assertEquals(first, Cublas13Gemm.loadFailure());
        BackendAvailability cuda = Backends.cudaAvailability();
        if (!cuda.available() && cuda.reason().contains("UnsatisfiedLinkError")) {
            // no libcuda.so.1: the presets' CUDA runtime bindings, which cuBLAS 13's inherit, cannot load
            assertNotNull(first, "cuBLAS 13 loaded where CUDA did not: " + cuda.reason());
        }
        if (first != null) {
            System.out.println("cuBLAS 13: " + first);
            assertTrue(REASON.matcher(first).matches(), first);
            assertFalse(first.contains("Could not initialize class"), first);
            assertFalse(first.contains("/.javacpp/"), "directories are dropped: " + first);
        }
    }

    @Test
    void cublas12FailsToLoadWithTheSameReasonEveryTime() {
        String first = Cublas12Gemm.loadFailure();
        assertEquals(first, Cublas12Gemm.loadFailure());
        if (first != null) {
            System.out.println("cuBLAS 12: " + first);
            assertTrue(REASON.matcher(first).matches(), first);
            assertFalse(first.contains("Could not initialize class"), first);
        }
    }

    @Test
    void summariesNameTheMissingLibrary() {
        UnsatisfiedLinkError e = new UnsatisfiedLinkError("no jnicudart in java.library.path: /usr/lib");
        e.initCause(new UnsatisfiedLinkError("/root/.javacpp/cache/cuda-13.1-9.19-1.5.13-linux-x86_64.jar/org/bytedeco"
                + "/cuda/linux-x86_64/libjnicublas.so: libcublas.so.13: cannot open shared object file: No such file or"
                + " directory"));
        assertEquals("UnsatisfiedLinkError: libjnicublas.so: libcublas.so.13: cannot open shared object file: No such"
                + " file or directory", Cublas13Gemm.summary(e));
        assertEquals("NoClassDefFoundError: org/bytedeco/cuda/global/cublas",
                Cublas13Gemm.summary(new NoClassDefFoundError("org/bytedeco/cuda/global/cublas")));
        assertEquals("UnsatisfiedLinkError: Platform \"macosx-arm64\" not supported by class"
                + " org.bytedeco.cuda.global.cublas", Cublas13Gemm.summary(new UnsatisfiedLinkError(
                "Platform \"macosx-arm64\" not supported by class org.bytedeco.cuda.global.cublas")));
    }
}
