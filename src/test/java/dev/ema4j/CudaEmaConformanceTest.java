package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.cuda.CudaBackend;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Tag;
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
}
