package dev.ema4j;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cuda.CudaBackend;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The CUDA backend on another library's stream, ordered with it by events (NOTE: [stream-order] in CudaBackend). On
 * the CUDA driver emulator, work on non-blocking streams runs late, at synchronization points, so a missing wait
 * shows as wrong shadows.
 */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaStreamsTest {

    private static final int N = 70_003;

    private static long address(Object jcudaHandle) {
        return dev.ema4j.backend.cuda.JCudaAddresses.of((jcuda.NativePointerObject) jcudaHandle);
    }

    /**
     * A "framework" writes new parameters on its own non-blocking stream (after the backend's set-up, whose event it
     * waits for) and records an event; the backend, on its own stream, waits for that event, updates, and records an
     * event the framework's host waits for.
     */
    @Test
    void updatesWaitForAnotherStreamsEventAndSignalTheirOwn() {
        float[] before = EmaConformanceSuite.values(N, 40);
        float[] after = EmaConformanceSuite.values(N, 41);
        try (CudaBackend cuda = CudaBackend.open(0);
             DeviceBuffer params = cuda.allocate(DType.F32, N)) {
            cuda.write(before, 0, params, 0, N);
            CUstream framework = new CUstream();
            CUevent created = new CUevent();
            CUevent written = new CUevent();
            CUevent updated = new CUevent();
            Pointer pinned = new Pointer();
            cuda.synchronize();  // the backend's context is current on this thread
            cuStreamCreate(framework, CUstream_flags.CU_STREAM_NON_BLOCKING);
            cuEventCreate(created, CUevent_flags.CU_EVENT_DISABLE_TIMING);
            cuEventCreate(written, CUevent_flags.CU_EVENT_DISABLE_TIMING);
            cuEventCreate(updated, CUevent_flags.CU_EVENT_DISABLE_TIMING);
            cuMemHostAlloc(pinned, 4L * N, 0);
            try (GpuEma ema = GpuEma.create(cuda, Params.of(params), 0.75)) {
                // the shadow starts as a copy of the parameters, queued on the backend's stream: the framework must
                // not overwrite them before that copy ran (the emulator runs the streams in a random order)
                cuda.record(address(created));
                cuStreamWaitEvent(framework, created, 0);
                pinned.getByteBuffer(0, 4L * N).order(java.nio.ByteOrder.nativeOrder()).asFloatBuffer().put(after);
                cuMemcpyHtoDAsync(CudaBackend.pointerAt(cuda.address(params)), pinned, 4L * N, framework);
                cuEventRecord(written, framework);
                cuda.waitFor(address(written));
                ema.update(Params.of(params));
                cuda.record(address(updated));
                cuEventSynchronize(updated);
                float[] expected = before.clone();
                EmaOracle.lerp(expected, after, 0.75);
                float[] shadow = new float[N];
                ema.copyTo(Params.of(shadow));
                EmaConformanceSuite.assertBits(expected, shadow, "the update saw the framework's parameters");
            } finally {
                cuStreamSynchronize(framework);
                cuMemFreeHost(pinned);
                cuEventDestroy(created);
                cuEventDestroy(written);
                cuEventDestroy(updated);
                cuStreamDestroy(framework);
            }
        }
    }

    /** On the caller's non-blocking stream, host parameters, device parameters and reads all stay in order. */
    @Test
    void aBackendOnTheCallersNonBlockingStream() {
        CUstream callers = new CUstream();
        try (CudaBackend framework = CudaBackend.open(0)) {  // holds the primary context, as the caller's library does
            framework.synchronize();
            cuStreamCreate(callers, CUstream_flags.CU_STREAM_NON_BLOCKING);
            try {
                float[] host = EmaConformanceSuite.values(N, 42);
                try (CudaBackend cuda = CudaBackend.openOnStream(0, address(callers));
                     GpuEma ema = GpuEma.create(cuda, Params.of(host), 0.9, 0.3)) {
                    float[] e0 = host.clone();
                    float[] e1 = host.clone();
                    for (int step = 0; step < 5; step++) {
                        float[] next = EmaConformanceSuite.values(N, 43 + step);
                        System.arraycopy(next, 0, host, 0, N);
                        ema.update(Params.of(host));
                        EmaOracle.lerp(e0, next, 0.9);
                        EmaOracle.lerp(e1, next, 0.3);
                        Arrays.fill(host, Float.NaN);  // staged before update returned: these are never read
                    }
                    float[] shadow = new float[N];
                    ema.copyTo(Params.of(shadow), 0);
                    EmaConformanceSuite.assertBits(e0, shadow, "shadow 0");
                    ema.copyTo(Params.of(shadow), 1);
                    EmaConformanceSuite.assertBits(e1, shadow, "shadow 1");
                }
                framework.synchronize();
                cuStreamSynchronize(callers);  // the caller's stream outlives the backend that used it
            } finally {
                cuStreamDestroy(callers);
            }
        }
    }

    @Test
    void aZeroEventIsRefused() {
        try (CudaBackend cuda = CudaBackend.open(0)) {
            assertThrows(IllegalArgumentException.class, () -> cuda.waitFor(0));
            assertThrows(IllegalArgumentException.class, () -> cuda.record(0));
        }
    }
}
