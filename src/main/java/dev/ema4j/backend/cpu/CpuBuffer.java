package dev.ema4j.backend.cpu;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;

/** A CPU buffer: a {@code float[]} (F32) or a {@code short[]} (BF16, F16) on the Java heap. */
final class CpuBuffer implements DeviceBuffer {

    private final CpuBackend backend;
    private final DType dtype;
    private final int length;
    private Object storage;

    CpuBuffer(CpuBackend backend, DType dtype, int length) {
        this.backend = backend;
        this.dtype = dtype;
        this.length = length;
        this.storage = dtype == DType.F32 ? new float[length] : new short[length];
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
        return storage == null;
    }

    /** The F32 storage. */
    float[] floats() {
        return (float[]) open();
    }

    /** A view of the current storage (it changes with {@link #swapStorage}). */
    HostView view() {
        Object s = open();
        return s instanceof float[] f ? HostView.of(f) : HostView.of((short[]) s, dtype);
    }

    private Object open() {
        if (storage == null) {
            throw new IllegalStateException("buffer " + this + " is closed");
        }
        return storage;
    }

    @Override
    public void swapStorage(DeviceBuffer other) {
        Checks.owned(backend, this, "this buffer");
        Checks.owned(backend, other, "other");
        if (other.dtype() != dtype || other.length() != length) {
            throw new IllegalArgumentException("cannot swap " + this + " with " + other
                    + ": dtype and length must match");
        }
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
        return "cpu " + dtype + "[" + length + "]";
    }
}
