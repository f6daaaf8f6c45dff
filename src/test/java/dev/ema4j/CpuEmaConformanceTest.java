package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.cpu.CpuBackend;
import jcuda.driver.CUdeviceptr;

/** The conformance suite on the CPU backend, with three threads so work is split unevenly on any machine. */
class CpuEmaConformanceTest extends EmaConformanceSuite {

    @Override
    protected Backend newBackend() {
        return new CpuBackend(3);
    }

    @Override
    protected Params foreignDeviceParams(int length) {
        return Params.ofDevice(DType.F32, new CUdeviceptr[] {new CUdeviceptr()}, new long[] {length});
    }
}
