package dev.ema4j.nn;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.cpu.CpuNnOps;
import dev.ema4j.ops.cuda.CudaNnOps;

/** The training operations of a backend: created at the first request, kept and closed with the backend. */
public final class TrainingOps {

    private TrainingOps() {
    }

    /**
     * The {@link NnOps} of {@code backend} (CPU: Java and OpenBLAS; CUDA: the kernels of {@code cuda/*.cu}).
     *
     * @throws UnsupportedOperationException for a backend of another kind
     */
    public static NnOps of(Backend backend) {
        return backend.service(NnOps.class, TrainingOps::create);
    }

    private static NnOps create(Backend backend) {
        if (backend instanceof CpuBackend cpu) {
            return new CpuNnOps(cpu);
        }
        if (backend instanceof CudaBackend cuda) {
            return new CudaNnOps(cuda);
        }
        throw new UnsupportedOperationException("no training operations for backend " + backend.name());
    }
}
