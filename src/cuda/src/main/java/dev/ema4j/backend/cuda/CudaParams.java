package dev.ema4j.backend.cuda;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.Params;
import java.util.Objects;
import jcuda.driver.CUdeviceptr;

/** Parameter sets of JCuda device pointers: {@link Params#ofDevice} for code that holds {@link CUdeviceptr}s. */
public final class CudaParams {

    private CudaParams() {
    }

    /**
     * CUDA device memory of device {@code device} given as JCuda pointers: {@code pointers[i]} holds
     * {@code lengths[i]} elements of {@code dtype} (see {@link Params#ofDevice}).
     */
    public static Params of(int device, DType dtype, CUdeviceptr[] pointers, long[] lengths) {
        Objects.requireNonNull(pointers, "pointers");
        long[] addresses = new long[pointers.length];
        for (int i = 0; i < pointers.length; i++) {
            addresses[i] = address(Objects.requireNonNull(pointers[i], "pointers[" + i + "]"));
        }
        return Params.ofDevice(device, dtype, addresses, lengths);
    }

    /** The raw device address a JCuda pointer stands for, its byte offset included. */
    public static long address(CUdeviceptr pointer) {
        return JCudaAddresses.of(Objects.requireNonNull(pointer, "pointer"));
    }
}
