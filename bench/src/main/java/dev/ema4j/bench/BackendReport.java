package dev.ema4j.bench;

import dev.ema4j.backend.Backends;
import dev.ema4j.backend.cuda.CudaBackend;

/** Prints which backend {@link Backends#best()} picks and why, and on CUDA the GEMM of the training operations. */
public final class BackendReport {

    private BackendReport() {
    }

    public static void main(String[] args) {
        System.out.println("ema4j backend: " + Backends.explain());
        if (Backends.cudaAvailability().available()) {
            try (CudaBackend cuda = CudaBackend.open(0)) {
                System.out.println("ema4j CUDA training GEMM: " + cuda.gemm());
            }
        }
    }
}
