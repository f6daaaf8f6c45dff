package dev.ema4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reads a file made from literal bytes, independently of the writer, and checks readF32's arguments. */
class SafetensorsFileTest {

    /** 193 bytes of JSON, keys and tensors deliberately out of order, padded with 7 spaces to 200. */
    private static final String HEADER = "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]},"
            + "\"__metadata__\":{\"format\":\"pt\"},"
            + "\"z\":{\"shape\":[0,5],\"dtype\":\"F32\",\"data_offsets\":[8,8]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
            + "       ";

    private static final byte[] FILE = TestFiles.concat(
            new byte[] {(byte) 0xc8, 0, 0, 0, 0, 0, 0, 0}, // header size 200
            HEADER.getBytes(StandardCharsets.US_ASCII),
            new byte[] {0x00, 0x00, (byte) 0x80, 0x3f}, // a[0] = 1.0f
            new byte[] {0x00, 0x00, 0x20, (byte) 0xc0}, // a[1] = -2.5f
            new byte[] {7, (byte) 255}); // b = [7, 255] as U8

    @TempDir
    Path dir;

    private Path path;

    @BeforeEach
    void writeFile() throws IOException {
        assertEquals(200, HEADER.length());
        path = dir.resolve("hand.safetensors");
        Files.write(path, FILE);
    }

    @Test
    void readsHandMadeFile() throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(List.of(
                    new TensorInfo("a", TensorDType.F32, List.of(2L), 0, 8),
                    new TensorInfo("z", TensorDType.F32, List.of(0L, 5L), 8, 8),
                    new TensorInfo("b", TensorDType.U8, List.of(2L), 8, 10)), f.tensors());
            assertEquals(Optional.empty(), f.tensor("missing"));

            float[] dst = {9f, 9f, 9f, 9f};
            f.readF32(f.tensor("a").orElseThrow(), 0, dst, 1, 2);
            assertArrayEquals(new float[] {9f, 1.0f, -2.5f, 9f}, dst);

            f.readF32(f.tensor("a").orElseThrow(), 1, dst, 0, 1);
            assertEquals(-2.5f, dst[0]);

            f.readF32(f.tensor("z").orElseThrow(), 0, dst, 0, 0);
            assertEquals(0, f.tensor("z").orElseThrow().elementCount());
        }
    }

    @Test
    void readF32RejectsBadArguments() throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            TensorInfo a = f.tensor("a").orElseThrow();
            TensorInfo b = f.tensor("b").orElseThrow();
            float[] dst = new float[8];

            assertMessage(assertThrows(IllegalArgumentException.class, () -> f.readF32(b, 0, dst, 0, 1)),
                    "tensor \"b\" has dtype U8, not F32");
            assertMessage(assertThrows(IllegalArgumentException.class, () -> f.readF32(a, -1, dst, 0, 1)),
                    "elements [-1, -1 + 1) are not inside tensor \"a\" of 2 elements");
            assertMessage(assertThrows(IllegalArgumentException.class, () -> f.readF32(a, 1, dst, 0, 2)),
                    "elements [1, 1 + 2) are not inside tensor \"a\" of 2 elements");
            assertMessage(assertThrows(IllegalArgumentException.class, () -> f.readF32(a, 3, dst, 0, 0)),
                    "elements [3, 3 + 0) are not inside tensor \"a\" of 2 elements");
            assertMessage(assertThrows(IllegalArgumentException.class, () -> f.readF32(a, 0, dst, 0, -1)),
                    "elements [0, 0 + -1) are not inside");
            assertMessage(assertThrows(IllegalArgumentException.class,
                    () -> f.readF32(a, Long.MAX_VALUE, dst, 0, 2)), "elements [9223372036854775807, ");

            TensorInfo forged = new TensorInfo("a", TensorDType.F32, List.of(2L), 2, 10);
            assertMessage(assertThrows(IllegalArgumentException.class, () -> f.readF32(forged, 0, dst, 0, 2)),
                    "is not a tensor of this file");

            assertThrows(IndexOutOfBoundsException.class, () -> f.readF32(a, 0, dst, 7, 2));
            assertThrows(IndexOutOfBoundsException.class, () -> f.readF32(a, 0, dst, -1, 1));
            assertArrayEquals(new float[8], dst, "failed reads must not modify dst");
        }
    }

    @Test
    void useAfterCloseThrows() throws IOException {
        SafetensorsFile f = SafetensorsFile.open(path);
        TensorInfo a = f.tensor("a").orElseThrow();
        f.close();
        f.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> f.readF32(a, 0, new float[2], 0, 2));
        assertTrue(e.getMessage().contains(path.toString()), e.getMessage());
        assertThrows(IllegalStateException.class, f::tensors);
        assertThrows(IllegalStateException.class, f::metadata);
        assertThrows(IllegalStateException.class, () -> f.tensor("a"));
    }

    @Test
    void truncationAfterOpenIsReported() throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            Files.write(path, new byte[210]);
            SafetensorsException e = assertThrows(SafetensorsException.class,
                    () -> f.readF32(f.tensor("a").orElseThrow(), 0, new float[2], 0, 2));
            assertTrue(e.getMessage().contains("file ended at byte 210"), e.getMessage());
        }
    }

    @Test
    void returnedCollectionsAreUnmodifiable() throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertThrows(UnsupportedOperationException.class, () -> f.metadata().put("x", "y"));
            assertThrows(UnsupportedOperationException.class, () -> f.tensors().clear());
            assertThrows(UnsupportedOperationException.class, () -> f.tensors().get(0).shape().set(0, 5L));
        }
    }

    private static void assertMessage(Exception e, String fragment) {
        assertTrue(e.getMessage().contains(fragment), "expected \"" + fragment + "\" in: " + e.getMessage());
    }
}
