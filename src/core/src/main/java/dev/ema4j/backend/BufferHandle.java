package dev.ema4j.backend;

/**
 * What every backend's buffers share: the owner, dtype and length, and the checks of
 * {@link DeviceBuffer#swapStorage}. Subclasses hold the storage.
 */
public abstract class BufferHandle implements DeviceBuffer {

    private final Backend backend;
    private final DType dtype;
    private final long length;

    protected BufferHandle(Backend backend, DType dtype, long length) {
        this.backend = backend;
        this.dtype = dtype;
        this.length = length;
    }

    @Override
    public final Backend backend() {
        return backend;
    }

    @Override
    public final DType dtype() {
        return dtype;
    }

    @Override
    public final long length() {
        return length;
    }

    @Override
    public final void swapStorage(DeviceBuffer other) {
        Checks.owned(backend, this, "this buffer");
        Checks.owned(backend, other, "other");
        if (other.dtype() != dtype || other.length() != length) {
            throw new IllegalArgumentException("cannot swap " + this + " with " + other
                    + ": dtype and length must match");
        }
        exchangeStorage(other);
    }

    /** Exchanges the storage with {@code other}, a buffer of the same backend, dtype and length. */
    protected abstract void exchangeStorage(DeviceBuffer other);
}
