package dev.ema4j;

import static dev.ema4j.ExceptionAssertions.assertMessage;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.backend.cuda.CudaParams;
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

    /** An address no allocation holds. */
    @Override
    protected Params foreignDeviceParams(int length) {
        return Params.ofDevice(0, DType.F32, new long[] {4096}, new long[] {length});
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
            Params first = CudaParams.of(0, DType.F32, new CUdeviceptr[] {base.withByteOffset(12)}, new long[] {n - 1});
            Params second = CudaParams.of(0, DType.F32, new CUdeviceptr[] {base.withByteOffset(16)}, new long[] {n - 1});
            float[] expected = new float[n - 1];
            try (GpuEma ema = GpuEma.create(backend, Params.of(new float[n - 1]), 0.5)) {
                ema.update(first);
                EmaOracle.lerp(expected, Arrays.copyOfRange(values, 0, n - 1), 0.5);
                ema.update(second);  // another address of the same allocation: a new launch plan
                EmaOracle.lerp(expected, Arrays.copyOfRange(values, 1, n), 0.5);
                assertBits(expected, shadow(ema, 0)[0], "two sub-ranges of one allocation");
            }
            assertMessage(IllegalArgumentException.class, () -> backend.bind(CudaParams.of(0, DType.F32,
                    new CUdeviceptr[] {base.withByteOffset(12)}, new long[] {n + 1})), "overrun its allocation");
            assertMessage(IllegalArgumentException.class, () -> backend.bind(CudaParams.of(1, DType.F32,
                    new CUdeviceptr[] {base.withByteOffset(12)}, new long[] {n - 1})),
                    "is declared as memory of CUDA device 1");
            assertMessage(IllegalArgumentException.class, () -> CudaParams.of(0, DType.F32,
                    new CUdeviceptr[] {base.withByteOffset(2)}, new long[] {1}), "is not aligned to 4 bytes");
        } finally {
            backend.synchronize();
            cuMemFree(base);
        }
    }
}
