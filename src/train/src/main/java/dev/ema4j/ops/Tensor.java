package dev.ema4j.ops;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import java.util.Objects;

/**
 * A dense fp32 NCHW view into a backend buffer: elements {@code [offset, offset + shape.size())}. Parameters are
 * views into one flat buffer; activations are views of per-layer buffers sized for the largest batch.
 *
 * @param buffer the F32 buffer holding the elements
 * @param offset element offset of element (0, 0, 0, 0)
 * @param shape the shape
 */
public record Tensor(DeviceBuffer buffer, long offset, Shape shape) {

    public Tensor {
        Objects.requireNonNull(buffer, "buffer");
        Objects.requireNonNull(shape, "shape");
        if (buffer.dtype() != DType.F32) {
            throw new IllegalArgumentException("tensor buffer is " + buffer.dtype() + "; tensors are F32");
        }
        if (offset < 0 || offset + shape.size() > buffer.length()) {
            throw new IllegalArgumentException("tensor " + shape + " at offset " + offset + " exceeds its buffer of "
                    + buffer.length() + " elements");
        }
    }

    /** The whole buffer as a tensor of {@code shape}. */
    public static Tensor of(DeviceBuffer buffer, Shape shape) {
        return new Tensor(buffer, 0, shape);
    }

    /** The first {@code n} samples. */
    public Tensor withBatch(int n) {
        if (n > shape.n()) {
            throw new IllegalArgumentException("batch " + n + " exceeds this tensor's " + shape);
        }
        return new Tensor(buffer, offset, shape.withBatch(n));
    }

    /** This tensor's elements under another shape of the same size. */
    public Tensor reshape(Shape other) {
        if (other.size() != shape.size()) {
            throw new IllegalArgumentException("cannot view " + shape + " as " + other);
        }
        return new Tensor(buffer, offset, other);
    }

    /** Number of elements. */
    public int size() {
        return shape.size();
    }
}
