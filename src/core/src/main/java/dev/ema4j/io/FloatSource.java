package dev.ema4j.io;

import java.io.IOException;

/** A source of float values for one tensor, pulled in chunks by {@link SafetensorsWriter}. */
@FunctionalInterface
public interface FloatSource {

    /**
     * Copies {@code length} values, starting at element {@code offset} of the tensor, into
     * {@code dst[dstOffset .. dstOffset + length)}. Modifies only that range of {@code dst}.
     *
     * @param offset the index of the first element to copy, in row-major order
     * @param dst the array to fill
     * @param dstOffset the first index of {@code dst} to write
     * @param length the number of values to copy
     * @throws IOException if the values cannot be produced; the write is then abandoned
     */
    void read(long offset, float[] dst, int dstOffset, int length) throws IOException;
}
