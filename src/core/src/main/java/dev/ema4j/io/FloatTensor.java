package dev.ema4j.io;

import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * A tensor to write with {@link SafetensorsWriter#write}: float values, stored as F32 exactly or narrowed to BF16 or
 * F16 (round to nearest even, as {@link dev.ema4j.backend.HalfFloats} does).
 *
 * @param name the tensor name; not {@code "__metadata__"}
 * @param dtype how the values are stored: {@link TensorDType#F32}, {@link TensorDType#BF16} or {@link TensorDType#F16}
 * @param shape the dimensions, each at least 0; empty for a scalar (stored as an unmodifiable copy)
 * @param source where the {@link #elementCount()} values come from, in row-major order
 */
public record FloatTensor(String name, TensorDType dtype, List<Long> shape, FloatSource source) {

    private static final Set<TensorDType> STORABLE = Set.of(TensorDType.F32, TensorDType.BF16, TensorDType.F16);

    /**
     * Checks the components and copies {@code shape}.
     *
     * @throws NullPointerException if any component or shape element is null
     * @throws IllegalArgumentException if the name is {@code "__metadata__"}, the dtype is not a float type this
     *     writer narrows to, a dimension is negative, or the tensor's size in bytes does not fit in a long
     */
    public FloatTensor {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(source, "source");
        if (name.equals(HeaderParser.METADATA_KEY)) {
            throw new IllegalArgumentException("tensor name \"__metadata__\" is reserved for metadata");
        }
        if (!STORABLE.contains(dtype)) {
            throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + ": dtype is " + dtype
                    + "; float values are stored as F32, BF16 or F16");
        }
        shape = TensorInfo.copyShape(shape);
        try {
            Math.multiplyExact(TensorInfo.product(shape), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + " shape " + shape
                    + " is too large: its size in bytes does not fit in a long", e);
        }
    }

    /** An F32 tensor. */
    public FloatTensor(String name, List<Long> shape, FloatSource source) {
        this(name, TensorDType.F32, shape, source);
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
