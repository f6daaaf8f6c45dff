package dev.ema4j.nn;

import dev.ema4j.RequiresCuda;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.cuda.CudaBackend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;

/** The training-operations suite on CUDA device 0; skipped, with the probe's reason, where CUDA is unavailable. */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaNnConformanceTest extends NnConformanceSuite {

    @Override
    protected Backend newBackend() {
        return CudaBackend.open(0);
    }
}
