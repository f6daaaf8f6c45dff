package dev.ema4j.bench;

import dev.ema4j.backend.cpu.CpuBackend;

/** Prints the BLAS build and kernels the CPU backend uses. */
public final class BlasReport {

    private BlasReport() {
    }

    public static void main(String[] args) {
        System.out.println(CpuBackend.blas());
    }
}
