package dev.ema4j.io;

import java.util.List;
import java.util.Objects;

/**
 * One tensor of a safetensors header.
 *
 * @param name the tensor name
 * @param dtype the element type
 * @param shape the dimensions, each at least 0; empty for a scalar (stored as an unmodifiable copy)
 * @param begin the first byte of the tensor, relative to the start of the data buffer
 * @param end one past the last byte of the tensor, relative to the start of the data buffer
 */
public record TensorInfo(String name, TensorDType dtype, List<Long> shape, long begin, long end) {

    /**
     * Checks the components and copies {@code shape}.
     *
     * @throws NullPointerException if any component or shape element is null
     * @throws IllegalArgumentException if a dimension is negative or not {@code 0 <= begin <= end}
     */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = copyShape(shape);
        if (begin < 0 || begin > end) {
            throw new IllegalArgumentException("tensor " + HeaderParser.quote(name)
                    + " needs 0 <= begin <= end, got [" + begin + ", " + end + "]");
        }
    }

    /**
     * Returns the number of elements: the product of the shape, 1 for a scalar.
     *
     * @return the element count
     * @throws ArithmeticException if the product does not fit in a long
     */
    public long elementCount() {
        return product(shape);
    }

    static List<Long> copyShape(List<Long> shape) {
        List<Long> copy = List.copyOf(shape);
        for (long dim : copy) {
            if (dim < 0) {
                throw new IllegalArgumentException("shape " + copy + " has a negative dimension");
            }
        }
        return copy;
    }

    static long product(List<Long> shape) {
        long count = 1;
        for (long dim : shape) {
            count = Math.multiplyExact(count, dim);
        }
        return count;
    }
}
