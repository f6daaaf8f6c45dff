package dev.ema4j.backend.cuda;

import jcuda.driver.CUdeviceptr;

/** One device allocation of a {@link CudaBackend}, freed by the backend (never by the garbage collector). */
final class CudaMemory {

    /** A device pointer whose raw address is readable (JCuda keeps it in a protected field). */
    static final class Address extends CUdeviceptr {
        long value() {
            return getNativePointer() + getByteOffset();
        }
    }

    final Address pointer = new Address();
    final long bytes;
    private boolean freed;

    CudaMemory(long bytes) {
        this.bytes = bytes;
    }

    long address() {
        if (freed) {
            throw new IllegalStateException("device memory was freed");
        }
        return pointer.value();
    }

    CUdeviceptr at(long byteOffset) {
        address();
        return pointer.withByteOffset(byteOffset);
    }

    boolean isFreed() {
        return freed;
    }

    void markFreed() {
        freed = true;
    }
}
