package dev.ema4j.bench;

import dev.ema4j.Backends;
import dev.ema4j.backend.Backend;
import dev.ema4j.nn.TrainingOps;

/** Prints which backend {@link Backends#best()} picks and why, and on CUDA the GEMM of the training operations. */
public final class BackendReport {

    private BackendReport() {
    }

    public static void main(String[] args) {
        System.out.println("ema4j backend: " + Backends.explain());
        if (Backends.cudaAvailability().available()) {
            try (Backend cuda = Backends.cuda()) {
                System.out.println("ema4j CUDA training GEMM: " + TrainingOps.of(cuda).gemm());
            }
        }
    }
}
