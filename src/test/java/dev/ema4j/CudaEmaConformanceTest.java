package dev.ema4j;

import static dev.ema4j.ExceptionAssertions.assertMessage;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.cuda.CudaBackend;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The conformance suite on CUDA device 0; skipped, with the probe's reason, where CUDA is unavailable. */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaEmaConformanceTest extends EmaConformanceSuite {

    @Override
    protected Backend newBackend() {
        return CudaBackend.open(0);
    }

    /** A null device pointer: not an allocation. */
    @Override
    protected Params foreignDeviceParams(int length) {
        return Params.ofDevice(DType.F32, new CUdeviceptr[] {new CUdeviceptr()}, new long[] {length});
    }

    /** Memory the user allocated, addressed with JCuda byte offsets (one element past 16-byte alignment). */
    @Test
    void userDevicePointersWithByteOffsets() {
        int n = 65537;
        float[] values = values(n, 30);
        backend.synchronize();  // makes the backend's context current for the raw JCuda calls below
        CUdeviceptr base = new CUdeviceptr();
        cuMemAlloc(base, 4L * (n + 3));
        try {
            cuMemcpyHtoD(base.withByteOffset(12), Pointer.to(values), 4L * n);
            Params first = Params.ofDevice(DType.F32, new CUdeviceptr[] {base.withByteOffset(12)}, new long[] {n - 1});
            Params second = Params.ofDevice(DType.F32, new CUdeviceptr[] {base.withByteOffset(16)}, new long[] {n - 1});
            float[] expected = new float[n - 1];
            try (GpuEma ema = GpuEma.create(backend, Params.of(new float[n - 1]), 0.5)) {
                ema.update(first);
                EmaOracle.lerp(expected, Arrays.copyOfRange(values, 0, n - 1), 0.5);
                ema.update(second);  // another address of the same allocation: a new launch plan
                EmaOracle.lerp(expected, Arrays.copyOfRange(values, 1, n), 0.5);
                assertBits(expected, shadow(ema, 0)[0], "two sub-ranges of one allocation");
            }
            assertMessage(IllegalArgumentException.class, () -> backend.bind(Params.ofDevice(DType.F32,
                    new CUdeviceptr[] {base.withByteOffset(12)}, new long[] {n + 1})), "overrun its allocation");
        } finally {
            backend.synchronize();
            cuMemFree(base);
        }
    }
}
