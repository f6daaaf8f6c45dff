package dev.ema4j.io;

import java.util.List;
import java.util.Objects;

/**
 * An F32 tensor to write with {@link SafetensorsWriter#writeF32}.
 *
 * @param name the tensor name; not {@code "__metadata__"}
 * @param shape the dimensions, each at least 0; empty for a scalar (stored as an unmodifiable copy)
 * @param source where the {@link #elementCount()} values come from, in row-major order
 */
public record F32Tensor(String name, List<Long> shape, FloatSource source) {

    /**
     * Checks the components and copies {@code shape}.
     *
     * @throws NullPointerException if any component or shape element is null
     * @throws IllegalArgumentException if the name is {@code "__metadata__"}, a dimension is negative,
     *     or the tensor's size in bytes does not fit in a long
     */
    public F32Tensor {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(source, "source");
        if (name.equals(HeaderParser.METADATA_KEY)) {
            throw new IllegalArgumentException("tensor name \"__metadata__\" is reserved for metadata");
        }
        shape = TensorInfo.copyShape(shape);
        try {
            Math.multiplyExact(TensorInfo.product(shape), TensorDType.F32.byteSize());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + " shape " + shape
                    + " is too large: its size in bytes does not fit in a long", e);
        }
    }

    /**
     * Returns the number of elements: the product of the shape, 1 for a scalar.
     *
     * @return the element count
     */
    public long elementCount() {
        return TensorInfo.product(shape);
    }
}
