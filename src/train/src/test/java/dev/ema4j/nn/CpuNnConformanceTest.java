package dev.ema4j.nn;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.cpu.CpuBackend;

/** The training-operations suite on the CPU backend, with three threads so work is split unevenly on any machine. */
class CpuNnConformanceTest extends NnConformanceSuite {

    @Override
    protected Backend newBackend() {
        return new CpuBackend(3);
    }
}
