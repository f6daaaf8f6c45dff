package dev.ema4j.backend.cuda;

import static jcuda.driver.JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ema4j.RequiresCuda;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import jcuda.CudaException;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What CUDA failures say (NOTE: [cuda-errors] in CudaBackend): a failed launch names its kernel, grid, block and
 * arguments; a fault found by sync mode names the kernel that ran; without sync mode the error that surfaces later
 * says so and how to find the kernel; a refused module is named, with the JIT's log. Grids follow each kernel's
 * occupancy. Faults are planted on the emulator only: on a GPU a kernel fault leaves the primary context unusable
 * for every later test of the JVM.
 */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaFailuresTest {

    private static boolean emulated() {
        return CudaProbe.deviceName(0).startsWith("ema4j CUDA emulator");
    }

    /** How a launch failure writes a 64-bit argument. */
    private static String argument(long value) {
        return value >= 1L << 32 ? "0x" + Long.toHexString(value) : Long.toString(value);
    }

    private static void assertContains(String message, String... fragments) {
        for (String f : fragments) {
            assertTrue(message.contains(f), "message \"" + message + "\" should contain \"" + f + "\"");
        }
    }

    @Test
    void aRefusedLaunchNamesTheKernelTheGridTheBlockAndTheArguments() {
        try (CudaBackend backend = CudaBackend.open(0, false)) {
            CUfunction relu = CudaBackend.function(backend.loadModule("elementwise"), "relu_forward_f32");
            long x = backend.address(backend.allocate(DType.F32, 16));
            long y = backend.address(backend.allocate(DType.F32, 16));
            CudaException e = assertThrows(CudaException.class, () -> backend.launch(relu, 3, 1, 1, 2048, x, y, 16L));
            assertEquals("relu_forward_f32<<<(3,1,1), (2048,1,1)>>>(" + argument(x) + ", " + argument(y)
                    + ", 16) of cuda/elementwise.cu failed: CUDA_ERROR_INVALID_VALUE", e.getMessage());
            backend.launch(relu, 1, 1, 1, 256, x, y, 16L);  // a refused launch leaves the context usable
            backend.synchronize();
        }
    }

    @Test
    void aKernelFaultInSyncModeNamesTheKernel() {
        assumeTrue(emulated(), "planted on the emulator only (see the class comment)");
        CudaBackend backend = CudaBackend.open(0, true);
        try {
            CUfunction relu = CudaBackend.function(backend.loadModule("elementwise"), "relu_forward_f32");
            long x = backend.address(backend.allocate(DType.F32, 64));
            long y = backend.address(backend.allocate(DType.F32, 8));
            // 40 outputs into 8 floats: the last 128 bytes land in the emulator's red zone, a fault on a GPU
            CudaException e = assertThrows(CudaException.class, () -> backend.launch(relu, 1, 1, 1, 64, x, y, 40L));
            assertContains(e.getMessage(), "relu_forward_f32<<<(1,1,1), (64,1,1)>>>(" + argument(x) + ", "
                    + argument(y) + ", 40) of cuda/elementwise.cu failed while it ran: CUDA_ERROR_ILLEGAL_ADDRESS",
                    "-Dema4j.cuda.sync=true");
        } finally {
            closeAfterFault(backend);
        }
    }

    @Test
    void withoutSyncModeAFaultSurfacesLaterAndTheMessageSaysHowToFindIt() {
        assumeTrue(emulated(), "planted on the emulator only (see the class comment)");
        CudaBackend backend = CudaBackend.open(0, false);
        try {
            CUfunction relu = CudaBackend.function(backend.loadModule("elementwise"), "relu_forward_f32");
            DeviceBuffer xs = backend.allocate(DType.F32, 64);
            long x = backend.address(xs);
            long y = backend.address(backend.allocate(DType.F32, 8));
            backend.launch(relu, 1, 1, 1, 64, x, y, 40L);  // returns: the fault is found later
            String unknown = "which operation failed is unknown without sync mode: rerun with -Dema4j.cuda.sync=true";
            assertContains(assertThrows(CudaException.class, backend::synchronize).getMessage(),
                    "synchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS (an error of an earlier asynchronous operation",
                    unknown);
            assertContains(assertThrows(CudaException.class, () -> backend.read(xs, 0, new float[4], 0, 4))
                    .getMessage(), "copying 4 floats to the host failed: CUDA_ERROR_ILLEGAL_ADDRESS", unknown);
            assertContains(assertThrows(CudaException.class, () -> backend.launch(relu, 1, 1, 1, 64, x, x, 8L))
                    .getMessage(), "relu_forward_f32<<<(1,1,1), (64,1,1)>>>(" + argument(x) + ", " + argument(x)
                    + ", 8) of cuda/elementwise.cu failed: CUDA_ERROR_ILLEGAL_ADDRESS", unknown);
        } finally {
            closeAfterFault(backend);
        }
    }

    /** Closing after a fault frees everything and reports the failure; the next backend works. */
    private static void closeAfterFault(CudaBackend backend) {
        IllegalStateException e = assertThrows(IllegalStateException.class, backend::close);
        assertTrue(Arrays.stream(e.getSuppressed())
                        .anyMatch(s -> s.getMessage().contains("CUDA_ERROR_ILLEGAL_ADDRESS")),
                "suppressed: " + Arrays.toString(e.getSuppressed()));
        try (CudaBackend next = CudaBackend.open(0, false)) {
            next.synchronize();
        }
    }

    @Test
    void aModuleTheDriverRefusesIsNamedWithTheJitLog() {
        try (CudaBackend backend = CudaBackend.open(0, false)) {
            byte[] packaged = CudaBackend.readPtx("ema");
            String ptx = new String(packaged, 0, packaged.length - 1, StandardCharsets.US_ASCII);
            // another source hash in the stamp (the emulator refuses the module) and a line that is not PTX (a
            // driver's JIT compiler refuses it)
            String corrupt = ptx.replaceFirst("sha256=[0-9a-f]{64}", "sha256=" + "0".repeat(64))
                    .replaceFirst("\\.address_size 64", ".address_size 64\nthis is not PTX;");
            byte[] image = Arrays.copyOf(corrupt.getBytes(StandardCharsets.US_ASCII), corrupt.length() + 1);
            CudaException e = assertThrows(CudaException.class, () -> backend.loadModule("ema", image));
            assertContains(e.getMessage(),
                    "loading module ema (ema.ptx, built from cuda/ema.cu) failed: CUDA_ERROR_INVALID_");
            if (!emulated()) {
                assertContains(e.getMessage(), "JIT error log:\n");
            }
            CUmodule m = backend.loadModule("elementwise");  // the context is still usable
            assertEquals(new CudaBackend.Kernel("add_f32", "cuda/elementwise.cu", CudaBackend.function(m, "add_f32")),
                    backend.kernel(CudaBackend.function(m, "add_f32")));
        }
    }

    @Test
    void gridsFollowEachKernelsOccupancy() {
        try (CudaBackend backend = CudaBackend.open(0, false)) {
            CUmodule elementwise = backend.loadModule("elementwise");
            CUmodule conv = backend.loadModule("conv");
            List<CUfunction> kernels = List.of(CudaBackend.function(elementwise, "relu_forward_f32"),
                    CudaBackend.function(conv, "conv2d_sum_splits_f32"));
            backend.makeCurrent();
            for (CUfunction f : kernels) {
                for (int block : new int[] {256, 1024}) {
                    int[] perMultiprocessor = new int[1];
                    cuOccupancyMaxActiveBlocksPerMultiprocessor(perMultiprocessor, f, block, 0);
                    int full = backend.multiprocessors() * perMultiprocessor[0];
                    String what = backend.kernel(f).name() + " with " + block + " threads per block";
                    assertEquals(full, backend.grid(f, block, Long.MAX_VALUE), what);
                    assertEquals(full, backend.grid(f, block, full + 1L), what);
                    assertEquals(full - 1, backend.grid(f, block, full - 1L), what);
                    assertEquals(1, backend.grid(f, block, 0), what);
                    if (block == 256) {
                        assertEquals(full, backend.grid(f, Long.MAX_VALUE), what);
                    }
                }
            }
        }
    }
}
