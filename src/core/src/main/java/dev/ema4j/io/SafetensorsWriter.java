package dev.ema4j.io;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ema4j.backend.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Writes safetensors files that Python's {@code safetensors} and {@link SafetensorsFile} can read. */
public final class SafetensorsWriter {

    private static final int CHUNK_FLOATS = 1 << 20;
    private static final Function<Path, String> TEMP_PREFIX = target -> "." + target.getFileName() + ".";
    private static final String TEMP_SUFFIX = ".tmp";

    private SafetensorsWriter() {}

    /**
     * Writes tensors and string metadata to {@code path}, atomically: the file is written to a temporary file
     * {@code .<name>.<random>.tmp} in the same directory, flushed with {@code force(true)}, then renamed over
     * {@code path} (ATOMIC_MOVE, REPLACE_EXISTING). On any failure the temporary file is deleted and an existing
     * file at {@code path} is left untouched. A writer holds a lock on its temporary file; temporary files of the
     * same target that no writer holds (left by a process killed while saving) are deleted first.
     *
     * <p>Tensors are stored in the given order, contiguous; the header is padded with spaces to a multiple
     * of 8 bytes and omits {@code __metadata__} when {@code metadata} is empty. Values are pulled from each
     * tensor's {@link FloatSource} in chunks of at most 1 Mi floats and stored little-endian: F32 bit for bit,
     * BF16 and F16 rounded to nearest even. No argument is modified.
     *
     * @param path the file to create or replace
     * @param metadata the string metadata, stored in its iteration order
     * @param tensors the tensors, with unique names
     * @throws IllegalArgumentException if two tensors share a name, or the header or data would be too large
     * @throws NullPointerException if an argument, a metadata key or a metadata value is null
     * @throws IOException if writing fails or a {@link FloatSource} throws
     */
    public static void write(Path path, Map<String, String> metadata, List<FloatTensor> tensors)
            throws IOException {
        Objects.requireNonNull(path, "path");
        byte[] header = header(metadata, tensors);
        Path target = path.toAbsolutePath();
        deleteStaleTemporaries(target);
        Path temp = target.resolveSibling(TEMP_PREFIX.apply(target)
                + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + TEMP_SUFFIX);
        FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        try {
            try (channel) {
                channel.lock();  // released when the channel closes; marks the file as being written
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

    /**
     * Deletes the temporary files of earlier writes to {@code target} that no writer holds: files named
     * {@code .<name>.<base-36 number>.tmp} (this writer's pattern, nothing else) that can be locked.
     */
    private static void deleteStaleTemporaries(Path target) throws IOException {
        Path dir = target.getParent();
        Pattern own = Pattern.compile(Pattern.quote(TEMP_PREFIX.apply(target)) + "[0-9a-z]{1,13}"
                + Pattern.quote(TEMP_SUFFIX));
        List<Path> candidates;
        try (Stream<Path> files = Files.list(dir)) {
            candidates = files.filter(f -> own.matcher(f.getFileName().toString()).matches()
                    && Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)).toList();
        } catch (NoSuchFileException e) {
            return;  // the write reports the missing directory
        }
        for (Path stale : candidates) {
            try (FileChannel c = FileChannel.open(stale, StandardOpenOption.WRITE)) {
                if (c.tryLock() != null) {
                    Files.deleteIfExists(stale);
                }
            } catch (OverlappingFileLockException | NoSuchFileException e) {
                // being written by this JVM, or already gone
            }
        }
    }

    private static byte[] header(Map<String, String> metadata, List<FloatTensor> tensors) throws IOException {
        Objects.requireNonNull(metadata, "metadata");
        Objects.requireNonNull(tensors, "tensors");
        ObjectNode root = HeaderParser.MAPPER.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(HeaderParser.METADATA_KEY);
            metadata.forEach((key, value) -> meta.put(Objects.requireNonNull(key, "metadata key"),
                    Objects.requireNonNull(value, "metadata value")));
        }
        long offset = 0;
        for (FloatTensor t : tensors) {
            if (root.has(t.name())) {
                throw new IllegalArgumentException("duplicate tensor name " + HeaderParser.quote(t.name()));
            }
            long end = Math.addExact(offset, t.elementCount() * t.dtype().byteSize());
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", t.dtype().name());
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

    private static void writeData(FileChannel channel, List<FloatTensor> tensors) throws IOException {
        long largest = tensors.stream().mapToLong(FloatTensor::elementCount).max().orElse(0);
        float[] values = new float[(int) Math.min(largest, CHUNK_FLOATS)];
        ByteBuffer bytes = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (FloatTensor t : tensors) {
            long count = t.elementCount();
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(count - done, values.length);
                t.source().read(done, values, 0, n);
                bytes.clear();
                switch (t.dtype()) {
                    case F32 -> bytes.asFloatBuffer().put(values, 0, n);
                    case BF16 -> {
                        for (int i = 0; i < n; i++) {
                            bytes.putShort(2 * i, HalfFloats.floatToBf16(values[i]));
                        }
                    }
                    default -> {
                        for (int i = 0; i < n; i++) {
                            bytes.putShort(2 * i, HalfFloats.floatToF16(values[i]));
                        }
                    }
                }
                bytes.limit(n * t.dtype().byteSize());
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
