package dev.ema4j.io;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;

/** Writes safetensors files that Python's {@code safetensors} and {@link SafetensorsFile} can read. */
public final class SafetensorsWriter {

    private static final int CHUNK_FLOATS = 1 << 20;

    private SafetensorsWriter() {}

    /**
     * Writes F32 tensors and string metadata to {@code path}, atomically: the file is written to a
     * temporary file in the same directory, flushed with {@code force(true)}, then renamed over
     * {@code path} (ATOMIC_MOVE, REPLACE_EXISTING). On any failure the temporary file is deleted and an
     * existing file at {@code path} is left untouched.
     *
     * <p>Tensors are stored in the given order, contiguous; the header is padded with spaces to a multiple
     * of 8 bytes and omits {@code __metadata__} when {@code metadata} is empty. Values are pulled from each
     * tensor's {@link FloatSource} in chunks of at most 1 Mi floats and stored little-endian, bit for bit.
     * No argument is modified.
     *
     * @param path the file to create or replace
     * @param metadata the string metadata, stored in its iteration order
     * @param tensors the tensors, with unique names
     * @throws IllegalArgumentException if two tensors share a name, or the header or data would be too large
     * @throws NullPointerException if an argument, a metadata key or a metadata value is null
     * @throws IOException if writing fails or a {@link FloatSource} throws
     */
    public static void writeF32(Path path, Map<String, String> metadata, List<F32Tensor> tensors)
            throws IOException {
        Objects.requireNonNull(path, "path");
        byte[] header = header(metadata, tensors);
        Path temp = path.toAbsolutePath().resolveSibling("." + path.getFileName() + "."
                + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
        FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        try {
            try (channel) {
                writeFully(channel, ByteBuffer.wrap(header));
                writeData(channel, tensors);
                channel.force(true);
            }
            Files.move(temp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (Throwable e) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException deleteError) {
                e.addSuppressed(deleteError);
            }
            throw e;
        }
    }

    private static byte[] header(Map<String, String> metadata, List<F32Tensor> tensors) throws IOException {
        Objects.requireNonNull(metadata, "metadata");
        Objects.requireNonNull(tensors, "tensors");
        ObjectNode root = HeaderParser.MAPPER.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(HeaderParser.METADATA_KEY);
            metadata.forEach((key, value) -> meta.put(Objects.requireNonNull(key, "metadata key"),
                    Objects.requireNonNull(value, "metadata value")));
        }
        long offset = 0;
        for (F32Tensor t : tensors) {
            if (root.has(t.name())) {
                throw new IllegalArgumentException("duplicate tensor name " + HeaderParser.quote(t.name()));
            }
            long end = Math.addExact(offset, t.elementCount() * Float.BYTES);
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", TensorDType.F32.name());
            ArrayNode shape = entry.putArray("shape");
            t.shape().forEach(shape::add);
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = HeaderParser.MAPPER.writeValueAsBytes(root);
        long headerSize = (json.length + 7L) & ~7L;
        if (headerSize > SafetensorsFile.MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("header of " + headerSize + " bytes exceeds the maximum of "
                    + SafetensorsFile.MAX_HEADER_BYTES);
        }
        byte[] out = new byte[Long.BYTES + (int) headerSize];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(0, headerSize);
        System.arraycopy(json, 0, out, Long.BYTES, json.length);
        Arrays.fill(out, Long.BYTES + json.length, out.length, (byte) ' ');
        return out;
    }

    private static void writeData(FileChannel channel, List<F32Tensor> tensors) throws IOException {
        long largest = tensors.stream().mapToLong(F32Tensor::elementCount).max().orElse(0);
        float[] values = new float[(int) Math.min(largest, CHUNK_FLOATS)];
        ByteBuffer bytes = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (F32Tensor t : tensors) {
            long count = t.elementCount();
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(count - done, values.length);
                t.source().read(done, values, 0, n);
                bytes.clear();
                bytes.asFloatBuffer().put(values, 0, n);
                bytes.limit(n * Float.BYTES);
                writeFully(channel, bytes);
                done += n;
            }
        }
    }

    private static void writeFully(FileChannel channel, ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            channel.write(src);
        }
    }
}
