package dev.ema4j.backend;

/**
 * Memory owned by a {@link Backend}: a typed array of {@link #length()} elements on the backend's device (the
 * Java heap for the CPU backend, GPU memory for CUDA). Closing the buffer frees it; closing the backend frees
 * all of its buffers. Use after close throws {@link IllegalStateException}.
 */
public interface DeviceBuffer extends AutoCloseable {

    /** The backend that owns this buffer. */
    Backend backend();

    /** Element type. */
    DType dtype();

    /** Number of elements. */
    long length();

    /** Size in bytes. */
    default long byteSize() {
        return length() * dtype().byteSize();
    }

    /** Whether {@link #close()} was called on this buffer or its backend. */
    boolean isClosed();

    /**
     * Exchanges the memory of this buffer and {@code other} in O(1), without copying: afterwards each handle
     * refers to what the other held. Both must belong to the same open backend and have the same dtype and length.
     *
     * @throws IllegalArgumentException if the buffers differ in backend, dtype or length
     * @throws IllegalStateException if either buffer is closed
     */
    void swapStorage(DeviceBuffer other);

    /** Frees the memory. Idempotent. */
    @Override
    void close();
}
