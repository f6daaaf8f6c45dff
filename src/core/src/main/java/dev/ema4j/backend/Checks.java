package dev.ema4j.backend;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;

/** Argument checks shared by the backends, so both throw the same exceptions with the same messages. */
public final class Checks {

    private Checks() {
    }

    /** Checks the arguments of {@link Backend#emaLerp}. */
    public static void emaLerp(Backend backend, ParamTable params, List<DeviceBuffer> shadows, float[] weights) {
        Objects.requireNonNull(params, "params");
        shadows(backend, params.layout().shadowLength(), shadows, weights);
    }

    /** Checks 1 to {@link Backend#MAX_SHADOWS} distinct F32 shadows of {@code length} floats and their weights. */
    public static void shadows(Backend backend, long length, List<DeviceBuffer> shadows, float[] weights) {
        Objects.requireNonNull(shadows, "shadows");
        Objects.requireNonNull(weights, "weights");
        if (shadows.isEmpty() || shadows.size() > Backend.MAX_SHADOWS) {
            throw new IllegalArgumentException(
                    "shadows has " + shadows.size() + " buffers; must be 1 to " + Backend.MAX_SHADOWS);
        }
        if (weights.length != shadows.size()) {
            throw new IllegalArgumentException(
                    "weights has " + weights.length + " values, shadows " + shadows.size() + " buffers");
        }
        var seen = new IdentityHashMap<DeviceBuffer, Boolean>();
        for (int k = 0; k < shadows.size(); k++) {
            DeviceBuffer s = shadows.get(k);
            shadow(backend, length, s, "shadows[" + k + "]");
            if (seen.put(s, Boolean.TRUE) != null) {
                throw new IllegalArgumentException("shadows[" + k + "] appears twice");
            }
            float w = weights[k];
            if (!(w >= 0f && w <= 1f)) {
                throw new IllegalArgumentException("weights[" + k + "] is " + w + "; must be in [0, 1]");
            }
        }
    }

    /** Checks that {@code shadow} is an open F32 buffer of {@code backend} of {@code length} floats. */
    public static void shadow(Backend backend, long length, DeviceBuffer shadow, String what) {
        Objects.requireNonNull(shadow, what);
        owned(backend, shadow, what);
        if (shadow.dtype() != DType.F32) {
            throw new IllegalArgumentException(what + " is " + shadow.dtype() + "; shadows must be F32");
        }
        if (shadow.length() != length) {
            throw new IllegalArgumentException(what + " has " + shadow.length() + " floats, params need " + length);
        }
    }

    /** Checks that {@code buffer} is open and belongs to {@code backend}. */
    public static void owned(Backend backend, DeviceBuffer buffer, String what) {
        if (buffer.backend() != backend) {
            throw new IllegalArgumentException(what + " belongs to backend " + buffer.backend().name()
                    + ", not to " + backend.name());
        }
        if (buffer.isClosed()) {
            throw new IllegalStateException(what + " is closed");
        }
    }

    /** Checks a host-device copy of {@code length} floats. */
    public static void copy(Backend backend, float[] array, int arrayOffset, DeviceBuffer buffer, long bufferOffset,
                            int length) {
        Objects.requireNonNull(array, "array");
        Objects.requireNonNull(buffer, "buffer");
        owned(backend, buffer, "buffer");
        if (buffer.dtype() != DType.F32) {
            throw new IllegalArgumentException("buffer is " + buffer.dtype() + "; host copies need F32");
        }
        if (length < 0 || arrayOffset < 0 || arrayOffset > array.length - length) {
            throw new IndexOutOfBoundsException("array range [" + arrayOffset + ", " + arrayOffset + " + " + length
                    + ") is outside float[" + array.length + "]");
        }
        if (bufferOffset < 0 || bufferOffset > buffer.length() - length) {
            throw new IndexOutOfBoundsException("buffer range [" + bufferOffset + ", " + bufferOffset + " + "
                    + length + ") is outside " + buffer.length() + " elements");
        }
    }

    /** Checks an allocation request. */
    public static void allocation(DType dtype, long length, long maxLength) {
        Objects.requireNonNull(dtype, "dtype");
        if (length < 0 || length > maxLength) {
            throw new IllegalArgumentException("length is " + length + "; must be in [0, " + maxLength + "]");
        }
    }

    /**
     * Checks that every tensor of {@code params} can be written (read-only {@link java.nio.FloatBuffer}s cannot),
     * before an operation that writes them starts.
     */
    public static void writable(Params params) {
        for (int i = 0; i < params.size(); i++) {
            if (params.tensor(i).storage() instanceof Params.Floats f && f.buffer().isReadOnly()) {
                throw new IllegalArgumentException("params tensor " + i + " (" + params.tensor(i).name()
                        + ") is a read-only FloatBuffer and cannot be written");
            }
        }
    }
}
