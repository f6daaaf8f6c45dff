package dev.ema4j.backend.cpu;

import dev.ema4j.backend.BufferHandle;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;

/** A CPU buffer: a {@code float[]} (F32) or a {@code short[]} (BF16, F16) on the Java heap. */
final class CpuBuffer extends BufferHandle {

    private final CpuBackend backend;
    private Object storage;

    CpuBuffer(CpuBackend backend, DType dtype, int length) {
        super(backend, dtype, length);
        this.backend = backend;
        this.storage = dtype == DType.F32 ? new float[length] : new short[length];
    }

    @Override
    public boolean isClosed() {
        return storage == null;
    }

    /** The F32 storage. */
    float[] floats() {
        return (float[]) open();
    }

    /** A view of the current storage (it changes with {@link #swapStorage}). */
    HostView view() {
        Object s = open();
        return s instanceof float[] f ? HostView.of(f) : HostView.of((short[]) s, dtype());
    }

    private Object open() {
        if (storage == null) {
            throw new IllegalStateException("buffer " + this + " is closed");
        }
        return storage;
    }

    @Override
    protected void exchangeStorage(DeviceBuffer other) {
        CpuBuffer o = (CpuBuffer) other;
        Object s = storage;
        storage = o.storage;
        o.storage = s;
    }

    @Override
    public void close() {
        if (storage != null) {
            storage = null;
            backend.released(this);
        }
    }

    /** Marks the buffer closed when its backend closes. */
    void invalidate() {
        storage = null;
    }

    @Override
    public String toString() {
        return "cpu " + dtype() + "[" + length() + "]";
    }
}
