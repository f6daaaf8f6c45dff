package dev.ema4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Exact output and atomicity of {@link SafetensorsWriter}. */
class SafetensorsWriterTest {

    @TempDir
    Path dir;

    @Test
    void staleTemporariesOfTheSameTargetAreRemovedByTheNextSave() throws IOException {
        Path path = dir.resolve("ema.safetensors");
        Path stale = dir.resolve(".ema.safetensors.3k9x0af2.tmp");    // left by a process killed while saving
        Path otherTarget = dir.resolve(".other.safetensors.3k9x0af2.tmp");
        Path notOurs = dir.resolve(".ema.safetensors.tmp");
        Path staleDirectory = dir.resolve(".ema.safetensors.zz.tmp");
        Files.write(stale, new byte[1000]);
        Files.write(otherTarget, new byte[10]);
        Files.write(notOurs, new byte[10]);
        Files.createDirectory(staleDirectory);
        Path held = dir.resolve(".ema.safetensors.held1.tmp");
        try (FileChannel writer = FileChannel.open(held, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
             FileLock lock = writer.lock()) {                            // a save in progress
            SafetensorsWriter.write(path, Map.of(), List.of(new FloatTensor("w", List.of(1L), values(1f))));
            assertTrue(lock.isValid());
            assertTrue(Files.exists(held), "a temporary file being written is kept");
        }
        assertFalse(Files.exists(stale), "the stale temporary file is removed");
        assertTrue(Files.exists(otherTarget), "another target's temporary file is kept");
        assertTrue(Files.exists(notOurs), "a file of another naming pattern is kept");
        assertTrue(Files.exists(staleDirectory), "directories are never removed");
        assertTrue(Files.exists(path));
    }

    @Test
    void writesBf16AndF16RoundedToNearestEven() throws IOException {
        Path path = dir.resolve("half.safetensors");
        float tie = Float.intBitsToFloat(0x3f808000);  // halfway between two bf16 values: rounds to the even 0x3f80
        SafetensorsWriter.write(path, Map.of(), List.of(
                new FloatTensor("b", TensorDType.BF16, List.of(2L), values(tie, 1.5f)),
                new FloatTensor("h", TensorDType.F16, List.of(1L), values(65504f))));
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertEquals(TensorDType.BF16, f.tensor("b").orElseThrow().dtype());
            assertEquals(List.of(2L), f.tensor("b").orElseThrow().shape());
        }
        byte[] bytes = Files.readAllBytes(path);
        byte[] data = java.util.Arrays.copyOfRange(bytes, bytes.length - 6, bytes.length);
        assertArrayEquals(new byte[] {(byte) 0x80, 0x3f, (byte) 0xc0, 0x3f, (byte) 0xff, 0x7b}, data);
    }

    @Test
    void writesExactlyTheHandComputedBytes() throws IOException {
        Path path = dir.resolve("small.safetensors");
        SafetensorsWriter.write(path, Map.of("k", "v"), List.of(
                new FloatTensor("w", List.of(2L), values(1.0f, -2.0f)),
                new FloatTensor("s", List.of(), values(0.5f)),
                new FloatTensor("e", List.of(0L, 3L), values())));

        String json = "{\"__metadata__\":{\"k\":\"v\"},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
                + "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[12,12]}}";
        assertEquals(189, json.length());
        byte[] expected = TestFiles.concat(
                new byte[] {(byte) 0xc0, 0, 0, 0, 0, 0, 0, 0}, // 192 = 189 bytes of JSON + 3 spaces
                json.getBytes(StandardCharsets.US_ASCII),
                "   ".getBytes(StandardCharsets.US_ASCII),
                new byte[] {0x00, 0x00, (byte) 0x80, 0x3f}, // 1.0f = 0x3f800000
                new byte[] {0x00, 0x00, 0x00, (byte) 0xc0}, // -2.0f = 0xc0000000
                new byte[] {0x00, 0x00, 0x00, 0x3f}); // 0.5f = 0x3f000000
        assertArrayEquals(expected, Files.readAllBytes(path));
    }

    @Test
    void failingSourceLeavesExistingFileAndNoTemporaryFile() throws IOException {
        Path path = dir.resolve("ema.safetensors");
        byte[] old = "previous contents".getBytes(StandardCharsets.US_ASCII);
        Files.write(path, old);
        IOException failure = new IOException("device lost");
        FloatSource failsInSecondChunk = (offset, dst, dstOffset, length) -> {
            if (offset > 0) {
                throw failure;
            }
        };
        List<FloatTensor> tensors = List.of(
                new FloatTensor("a", List.of(3L), values(1, 2, 3)),
                new FloatTensor("b", List.of(2L, 1L << 20), failsInSecondChunk));

        IOException thrown = assertThrows(IOException.class, () -> SafetensorsWriter.write(path, Map.of(), tensors));

        assertSame(failure, thrown);
        assertArrayEquals(old, Files.readAllBytes(path));
        assertEquals(List.of(path), listDir());
    }

    @Test
    void uncheckedFailureAlsoCleansUp() throws IOException {
        Path path = dir.resolve("ema.safetensors");
        byte[] old = {1, 2, 3};
        Files.write(path, old);
        IllegalStateException failure = new IllegalStateException("bug");
        FloatSource broken = (offset, dst, dstOffset, length) -> {
            throw failure;
        };

        RuntimeException thrown = assertThrows(RuntimeException.class,
                () -> SafetensorsWriter.write(path, Map.of(), List.of(new FloatTensor("x", List.of(4L), broken))));

        assertSame(failure, thrown);
        assertArrayEquals(old, Files.readAllBytes(path));
        assertEquals(List.of(path), listDir());
    }

    @Test
    void replacesExistingFileOnSuccess() throws IOException {
        Path path = dir.resolve("ema.safetensors");
        Files.write(path, new byte[] {9, 9, 9});
        SafetensorsWriter.write(path, Map.of("step", "7"), List.of(new FloatTensor("x", List.of(1L), values(4f))));
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertEquals(Map.of("step", "7"), f.metadata());
            float[] out = new float[1];
            f.readF32(f.tensor("x").orElseThrow(), 0, out, 0, 1);
            assertEquals(4f, out[0]);
        }
        assertEquals(List.of(path), listDir());
    }

    @Test
    void missingDirectoryFailsWithoutCreatingAnything() throws IOException {
        Path path = dir.resolve("missing").resolve("ema.safetensors");
        assertThrows(NoSuchFileException.class, () -> SafetensorsWriter.write(path, Map.of(), List.of()));
        assertEquals(List.of(), listDir());
    }

    @Test
    void rejectsInvalidArgumentsBeforeCreatingFiles() throws IOException {
        Path path = dir.resolve("ema.safetensors");
        List<FloatTensor> duplicates = List.of(
                new FloatTensor("w", List.of(1L), values(1f)), new FloatTensor("w", List.of(1L), values(2f)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.write(path, Map.of(), duplicates));
        assertTrue(e.getMessage().contains("duplicate tensor name \"w\""), e.getMessage());

        Map<String, String> nullValue = new LinkedHashMap<>();
        nullValue.put("k", null);
        assertThrows(NullPointerException.class, () -> SafetensorsWriter.write(path, nullValue, List.of()));
        assertEquals(List.of(), listDir());
    }

    @Test
    void tensorRejectsReservedNameNegativeDimensionAndOverflow() {
        FloatSource none = values();
        IllegalArgumentException reserved = assertThrows(IllegalArgumentException.class,
                () -> new FloatTensor("__metadata__", List.of(), none));
        assertTrue(reserved.getMessage().contains("\"__metadata__\""), reserved.getMessage());

        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                () -> new FloatTensor("w", List.of(2L, -3L), none));
        assertTrue(negative.getMessage().contains("[2, -3]"), negative.getMessage());

        IllegalArgumentException overflow = assertThrows(IllegalArgumentException.class,
                () -> new FloatTensor("w", List.of(1L << 31, 1L << 31), none));
        assertTrue(overflow.getMessage().contains("[2147483648, 2147483648]"), overflow.getMessage());

        assertEquals(24, new FloatTensor("w", List.of(2L, 3L, 4L), none).elementCount());
        assertEquals(1, new FloatTensor("s", List.of(), none).elementCount());
    }

    private List<Path> listDir() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.toList();
        }
    }

    private static FloatSource values(float... values) {
        return (offset, dst, dstOffset, length) ->
                System.arraycopy(values, Math.toIntExact(offset), dst, dstOffset, length);
    }
}
