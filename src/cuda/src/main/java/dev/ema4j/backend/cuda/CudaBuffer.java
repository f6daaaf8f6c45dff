package dev.ema4j.backend.cuda;

import dev.ema4j.backend.BufferHandle;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;

/** A buffer in GPU memory. */
final class CudaBuffer extends BufferHandle {

    private final CudaBackend backend;
    private CudaMemory memory;
    private boolean closed;

    CudaBuffer(CudaBackend backend, DType dtype, long length, CudaMemory memory) {
        super(backend, dtype, length);
        this.backend = backend;
        this.memory = memory;
    }

    @Override
    public boolean isClosed() {
        return closed || memory.isFreed();
    }

    CudaMemory memory() {
        if (isClosed()) {
            throw new IllegalStateException("buffer " + this + " is closed");
        }
        return memory;
    }

    long address() {
        return memory().address();
    }

    @Override
    protected void exchangeStorage(DeviceBuffer other) {
        CudaBuffer o = (CudaBuffer) other;
        CudaMemory m = memory;
        memory = o.memory;
        o.memory = m;
        backend.storageSwapped();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            backend.free(memory);
        }
    }

    @Override
    public String toString() {
        return backend.name() + " " + dtype() + "[" + length() + "]";
    }
}
