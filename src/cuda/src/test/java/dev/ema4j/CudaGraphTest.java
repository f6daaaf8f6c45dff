package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.backend.cuda.CudaGraph;
import java.util.Arrays;
import jcuda.CudaException;
import jcuda.driver.CUfunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link CudaGraph}: a captured pass runs nothing until it is launched, each launch runs it once on the memory as it
 * is then, and a capture that fails or a pass that throws leaves the backend usable (NOTE: [cuda-graphs]).
 */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaGraphTest {

    /** Crosses the 256-thread block and the grid. */
    private static final int N = 70_003;

    private CudaBackend cuda;
    private DeviceBuffer x;
    private DeviceBuffer y;
    private CUfunction addToKernel;

    /** x = 1, y = 0 on a new backend. */
    @BeforeEach
    void open() {
        cuda = CudaBackend.open(0);
        x = cuda.allocate(DType.F32, N);
        y = cuda.allocate(DType.F32, N);
        addToKernel = CudaBackend.function(cuda.loadModule("elementwise"), "add_to_f32");
        cuda.write(filled(1), 0, x, 0, N);
        cuda.write(filled(0), 0, y, 0, N);
    }

    @AfterEach
    void close() {
        cuda.close();
    }

    /** {@code y += x} with the kernel of cuda/elementwise.cu. */
    private void addTo() {
        cuda.launch(addToKernel, cuda.grid(addToKernel, (N + 255) / 256), 1, 1, 256, cuda.address(x), cuda.address(y),
                (long) N);
    }

    private static float[] filled(float value) {
        float[] a = new float[N];
        Arrays.fill(a, value);
        return a;
    }

    private float[] y() {
        float[] a = new float[N];
        cuda.read(y, 0, a, 0, N);
        return a;
    }

    @Test
    void aCapturedPassRunsOnlyWhenLaunchedOnTheMemoryAsItIsThen() {
        try (CudaGraph graph = CudaGraph.capture(cuda, this::addTo)) {
            assertArrayEquals(filled(0), y(), "the capture ran nothing");
            graph.launch();
            assertArrayEquals(filled(1), y(), "one launch adds once");
            cuda.write(filled(2.5f), 0, x, 0, N);
            graph.launch();
            graph.launch();
            assertArrayEquals(filled(6), y(), "later launches read x as it is then: 1 + 2.5 + 2.5");
        }
    }

    @Test
    void aPassThatThrowsEndsTheCaptureAndTheBackendStaysUsable() {
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class,
                () -> CudaGraph.capture(cuda, () -> {
                    addTo();
                    throw new IllegalArgumentException("planted");
                }));
        assertEquals("planted", thrown.getMessage());
        addTo();
        assertArrayEquals(filled(1), y(), "the work issued before the throw never ran; later work does");
    }

    @Test
    void aPassThatWaitsForTheDeviceCannotBeCaptured() {
        CudaException e = assertThrows(CudaException.class, () -> CudaGraph.capture(cuda, () -> {
            addTo();
            y();
        }));
        assertTrue(e.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE"), e.getMessage());
        assertArrayEquals(filled(0), y(), "nothing of the failed capture ran");
        addTo();
        assertArrayEquals(filled(1), y(), "the backend works after the failed capture");
    }

    @Test
    void aClosedGraphAndSyncModeAreRefused() {
        CudaGraph graph = CudaGraph.capture(cuda, this::addTo);
        graph.close();
        graph.close();
        assertThrows(IllegalStateException.class, graph::launch);
        String before = System.getProperty("ema4j.cuda.sync");
        System.setProperty("ema4j.cuda.sync", "true");
        try (CudaBackend synced = CudaBackend.open(0)) {
            assertTrue(synced.syncMode());
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> CudaGraph.capture(synced, () -> { }));
            assertTrue(e.getMessage().contains("sync mode"), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty("ema4j.cuda.sync");
            } else {
                System.setProperty("ema4j.cuda.sync", before);
            }
        }
    }
}
