package dev.ema4j.backend.cuda;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;

/** A buffer in GPU memory. */
final class CudaBuffer implements DeviceBuffer {

    private final CudaBackend backend;
    private final DType dtype;
    private final long length;
    private CudaMemory memory;
    private boolean closed;

    CudaBuffer(CudaBackend backend, DType dtype, long length, CudaMemory memory) {
        this.backend = backend;
        this.dtype = dtype;
        this.length = length;
        this.memory = memory;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public long length() {
        return length;
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
    public void swapStorage(DeviceBuffer other) {
        Checks.owned(backend, this, "this buffer");
        Checks.owned(backend, other, "other");
        if (other.dtype() != dtype || other.length() != length) {
            throw new IllegalArgumentException("cannot swap " + this + " with " + other
                    + ": dtype and length must match");
        }
        CudaBuffer o = (CudaBuffer) other;
        CudaMemory m = memory;
        memory = o.memory;
        o.memory = m;
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
        return backend.name() + " " + dtype + "[" + length + "]";
    }
}
