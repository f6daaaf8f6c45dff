package dev.ema4j.io;

import dev.ema4j.backend.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * A safetensors file opened for reading. The whole header is validated by {@link #open}; tensor values
 * are read on demand with positional reads, so files larger than 2 GiB work and several threads may read
 * at once.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** The largest header size, in bytes, that {@link #open} accepts (as the reference implementation). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final int CHUNK_FLOATS = 1 << 20;

    private final String file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final List<TensorInfo> tensors;
    private final Map<String, TensorInfo> byName;
    private volatile boolean closed;

    private SafetensorsFile(String file, FileChannel channel, long dataStart, HeaderParser.Header header) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.metadata = header.metadata();
        this.tensors = header.tensors();
        this.byName = new HashMap<>();
        for (TensorInfo t : tensors) {
            byName.put(t.name(), t);
        }
    }

    /**
     * Opens a file and fully validates its header: sizes, strict UTF-8, strict JSON without duplicate keys
     * or trailing tokens, metadata of strings, tensor entries with exactly dtype, shape and data_offsets,
     * sizes that match dtype and shape, and tensors that cover the data buffer exactly without overlap.
     *
     * @param path the file to open
     * @return the open file; close it when done
     * @throws SafetensorsException if the file violates the format, or is not a regular file (a directory, a FIFO or
     *     a device: refused before it is opened, so a FIFO cannot block)
     * @throws IOException if the file cannot be read
     */
    public static SafetensorsFile open(Path path) throws IOException {
        String file = path.toString();
        if (!Files.isRegularFile(path)) {
            throw Files.exists(path)
                    ? new SafetensorsException(file + ": not a regular file (a directory, FIFO or device)")
                    : new NoSuchFileException(file);
        }
        FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long fileSize = channel.size();
            if (fileSize < Long.BYTES) {
                throw new SafetensorsException(file + ": file holds " + fileSize
                        + " bytes, fewer than the 8 of the header size field");
            }
            ByteBuffer sizeField = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            readFully(file, channel, sizeField, 0);
            long headerSize = sizeField.getLong(0);
            if (Long.compareUnsigned(headerSize, MAX_HEADER_BYTES) > 0) {
                throw new SafetensorsException(file + ": header size " + Long.toUnsignedString(headerSize)
                        + " exceeds the maximum of " + MAX_HEADER_BYTES);
            }
            if (headerSize > fileSize - Long.BYTES) {
                throw new SafetensorsException(file + ": header size " + headerSize + " exceeds the "
                        + (fileSize - Long.BYTES) + " bytes after the size field (file holds " + fileSize + ")");
            }
            if (headerSize < 2) {
                throw new SafetensorsException(file + ": header size " + headerSize
                        + " is below the minimum of 2 (\"{}\")");
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerSize);
            readFully(file, channel, headerBytes, Long.BYTES);
            long dataStart = Long.BYTES + headerSize;
            HeaderParser.Header header = new HeaderParser(file, fileSize - dataStart).parse(headerBytes.array());
            return new SafetensorsFile(file, channel, dataStart, header);
        } catch (IOException | RuntimeException | Error e) {
            try {
                channel.close();
            } catch (IOException closeError) {
                e.addSuppressed(closeError);
            }
            throw e;
        }
    }

    /** The file's path, as given to {@link #open}. */
    @Override
    public String toString() {
        return file;
    }

    /**
     * Returns the string metadata of the header.
     *
     * @return an unmodifiable map in file order, empty when the header has no {@code __metadata__}
     * @throws IllegalStateException if this file is closed
     */
    public Map<String, String> metadata() {
        ensureOpen();
        return metadata;
    }

    /**
     * Returns all tensors of the header.
     *
     * @return an unmodifiable list sorted by begin offset
     * @throws IllegalStateException if this file is closed
     */
    public List<TensorInfo> tensors() {
        ensureOpen();
        return tensors;
    }

    /**
     * Looks up a tensor by name.
     *
     * @param name the tensor name
     * @return the tensor, or empty if the header has no tensor of that name
     * @throws IllegalStateException if this file is closed
     */
    public Optional<TensorInfo> tensor(String name) {
        ensureOpen();
        return Optional.ofNullable(byName.get(name));
    }

    /**
     * Reads {@code length} values of an F32 tensor, starting at element {@code elementOffset}, into
     * {@code dst[dstOffset .. dstOffset + length)}. Modifies only that range of {@code dst}.
     *
     * @param t a tensor of this file, as returned by {@link #tensors()} or {@link #tensor(String)}
     * @param elementOffset the index of the first element to read, in row-major order
     * @param dst the array to fill
     * @param dstOffset the first index of {@code dst} to write
     * @param length the number of values to read
     * @throws IllegalArgumentException if {@code t} is not a tensor of this file, is not F32, or
     *     {@code [elementOffset, elementOffset + length)} is not inside it
     * @throws IndexOutOfBoundsException if {@code [dstOffset, dstOffset + length)} is not inside {@code dst}
     * @throws IllegalStateException if this file is closed
     * @throws SafetensorsException if the file became shorter since it was opened
     * @throws IOException if the file cannot be read
     */
    public void readF32(TensorInfo t, long elementOffset, float[] dst, int dstOffset, int length)
            throws IOException {
        read(t, EnumSet.of(TensorDType.F32), elementOffset, dst, dstOffset, length);
    }

    /**
     * {@link #readF32} for a tensor stored as F32, BF16 or F16: 16-bit values are widened to float exactly.
     *
     * @throws IllegalArgumentException as {@link #readF32}, or if the tensor is not F32, BF16 or F16
     */
    public void readFloats(TensorInfo t, long elementOffset, float[] dst, int dstOffset, int length)
            throws IOException {
        read(t, EnumSet.of(TensorDType.F32, TensorDType.BF16, TensorDType.F16), elementOffset, dst, dstOffset,
                length);
    }

    private void read(TensorInfo t, Set<TensorDType> accepted, long elementOffset, float[] dst, int dstOffset,
                      int length) throws IOException {
        ensureOpen();
        Objects.requireNonNull(t, "t");
        Objects.requireNonNull(dst, "dst");
        if (!t.equals(byName.get(t.name()))) {
            throw new IllegalArgumentException(file + ": " + t + " is not a tensor of this file");
        }
        if (!accepted.contains(t.dtype())) {
            throw new IllegalArgumentException(file + ": tensor " + HeaderParser.quote(t.name()) + " has dtype "
                    + t.dtype() + ", not " + (accepted.size() == 1 ? accepted.iterator().next() : "one of " + accepted));
        }
        long count = t.elementCount();
        if (elementOffset < 0 || length < 0 || elementOffset > count - length) {
            throw new IllegalArgumentException(file + ": elements [" + elementOffset + ", " + elementOffset
                    + " + " + length + ") are not inside tensor " + HeaderParser.quote(t.name()) + " of "
                    + count + " elements");
        }
        Objects.checkFromIndexSize(dstOffset, length, dst.length);
        int width = t.dtype().byteSize();
        ByteBuffer bytes = ByteBuffer.allocate(Math.min(length, CHUNK_FLOATS) * width).order(ByteOrder.LITTLE_ENDIAN);
        long position = dataStart + t.begin() + elementOffset * width;
        for (int done = 0; done < length; ) {
            int n = Math.min(length - done, CHUNK_FLOATS);
            bytes.clear().limit(n * width);
            readFully(file, channel, bytes, position);
            bytes.flip();
            int at = dstOffset + done;
            switch (t.dtype()) {
                case F32 -> bytes.asFloatBuffer().get(dst, at, n);
                case BF16 -> {
                    for (int i = 0; i < n; i++) {
                        dst[at + i] = HalfFloats.bf16ToFloat(bytes.getShort());
                    }
                }
                default -> {
                    for (int i = 0; i < n; i++) {
                        dst[at + i] = HalfFloats.f16ToFloat(bytes.getShort());
                    }
                }
            }
            position += (long) n * width;
            done += n;
        }
    }

    /**
     * Closes the file. Later calls of any other method throw {@link IllegalStateException}; closing again
     * does nothing.
     *
     * @throws IOException if closing the underlying channel fails
     */
    @Override
    public void close() throws IOException {
        closed = true;
        channel.close();
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(file + " is closed");
        }
    }

    private static void readFully(String file, FileChannel channel, ByteBuffer dst, long position)
            throws IOException {
        while (dst.hasRemaining()) {
            int n = channel.read(dst, position);
            if (n < 0) {
                throw new SafetensorsException(file + ": file ended at byte " + position
                        + " while reading; was it truncated after opening?");
            }
            position += n;
        }
    }
}
