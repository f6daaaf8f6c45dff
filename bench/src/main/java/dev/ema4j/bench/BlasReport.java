package dev.ema4j.bench;

import dev.ema4j.ops.cpu.CpuNnOps;

/** Prints the BLAS build and kernels the CPU training operations use. */
public final class BlasReport {

    private BlasReport() {
    }

    public static void main(String[] args) {
        System.out.println(CpuNnOps.blas());
    }
}
