package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;

/** The conformance suite on the CPU backend, with three threads so work is split unevenly on any machine. */
class CpuEmaConformanceTest extends EmaConformanceSuite {

    @Override
    protected Backend newBackend() {
        return new CpuBackend(3);
    }

    @Override
    protected Params foreignDeviceParams(int length) {
        return Params.ofDevice(0, DType.F32, new long[] {4096}, new long[] {length});
    }
}
