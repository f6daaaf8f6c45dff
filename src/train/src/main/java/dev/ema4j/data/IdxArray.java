package dev.ema4j.data;

import java.util.Arrays;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * The contents of an unsigned-byte IDX file: its shape and its values in row-major order. The arrays are
 * not copied; whoever holds the record owns them.
 *
 * @param shape the dimensions, each {@code >= 0}
 * @param data the values, {@code product(shape)} bytes, to be read as unsigned
 */
public record IdxArray(int[] shape, byte[] data) {

    public IdxArray {
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(data, "data");
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has a negative dimension");
            }
        }
        if (count(shape, data.length) != data.length) {
            throw new IllegalArgumentException(
                    "shape " + shapeString(shape) + " does not hold the " + data.length + " bytes of data");
        }
    }

    /**
     * The product of {@code shape} (non-negative dimensions), or -1 if it exceeds {@code limit}; never
     * overflows.
     */
    static long count(int[] shape, long limit) {
        for (int d : shape) {
            if (d == 0) {
                return 0;
            }
        }
        long n = 1;
        for (int d : shape) {
            n *= d;
            if (n > limit) {
                return -1;
            }
        }
        return n;
    }

    /** The shape as {@code 60000x28x28}. */
    static String shapeString(int[] shape) {
        return Arrays.stream(shape).mapToObj(Integer::toString).collect(Collectors.joining("x"));
    }

    @Override
    public String toString() {
        return "IdxArray[" + shapeString(shape) + "]";
    }
}
