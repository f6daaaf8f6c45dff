package dev.ema4j.io;

import static dev.ema4j.io.TestFiles.concat;
import static dev.ema4j.io.TestFiles.file;
import static dev.ema4j.io.TestFiles.le64;
import static dev.ema4j.io.TestFiles.rawHeader;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every validation rule of {@link SafetensorsFile#open} against crafted malicious files. */
class SafetensorsValidationTest {

    private static final String F32_4 = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";

    @TempDir
    Path dir;

    static Stream<Arguments> malformedFiles() {
        return Stream.of(
                // sizes
                bad("empty file", new byte[0], "file holds 0 bytes, fewer than the 8"),
                bad("file shorter than 8 bytes", new byte[] {2, 0, 0, 0, 0}, "file holds 5 bytes"),
                bad("header size above maximum", concat(le64(100_000_001L), "{}".getBytes(StandardCharsets.US_ASCII)),
                        "header size 100000001 exceeds the maximum of 100000000"),
                bad("header size with sign bit (unsigned u64)", concat(le64(-1L), new byte[16]),
                        "header size 18446744073709551615 exceeds the maximum"),
                bad("header size beyond file", concat(le64(50), "{}".getBytes(StandardCharsets.US_ASCII)),
                        "header size 50 exceeds the 2 bytes after the size field (file holds 10)"),
                bad("header size 0", le64(0), "header size 0 is below the minimum of 2"),
                bad("header size 1", concat(le64(1), new byte[] {'{'}), "header size 1 is below the minimum of 2"),
                // UTF-8
                bad("invalid UTF-8 byte", rawHeader(bytes('{', '"', 'a', 0xff, '"', ':', '1', '}')),
                        "not valid UTF-8: malformed sequence at byte 3 (0xff)"),
                bad("overlong UTF-8 encoding of '/'", rawHeader(bytes('{', '"', 0xc0, 0xaf, '"', ':', '1', '}')),
                        "malformed sequence at byte 2 (0xc0)"),
                bad("UTF-8 encoded surrogate", rawHeader(bytes('{', '"', 0xed, 0xa0, 0x80, '"', ':', '1', '}')),
                        "malformed sequence at byte 2 (0xed)"),
                bad("truncated UTF-8 sequence at end", rawHeader(bytes('{', '}', 0xe2, 0x82)),
                        "malformed sequence at byte 2 (0xe2)"),
                // JSON framing
                bad("leading space", file(" {}", 0), "must start with '{' but starts with byte 0x20"),
                bad("top level array", file("[]", 0), "must start with '{' but starts with byte 0x5b"),
                bad("top level string", file("\"x\"", 0), "starts with byte 0x22"),
                bad("byte order mark", rawHeader(bytes(0xef, 0xbb, 0xbf, '{', '}')), "starts with byte 0xef"),
                bad("unterminated object", file("{\"w\":", 0), "header is not valid JSON"),
                bad("trailing object", file("{} {}", 0), "header is not valid JSON: Trailing token"),
                bad("trailing garbage", file("{}x", 0), "header is not valid JSON"),
                bad("duplicate tensor key", file("{\"w\":" + F32_4 + ",\"w\":" + F32_4 + "}", 4),
                        "Duplicate field 'w'"),
                bad("duplicate metadata key", file("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0),
                        "Duplicate field 'k'"),
                bad("duplicate __metadata__", file("{\"__metadata__\":{},\"__metadata__\":{}}", 0),
                        "Duplicate field '__metadata__'"),
                bad("duplicate key inside tensor entry",
                        file("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                        "Duplicate field 'dtype'"),
                bad("deep nesting", file("{\"__metadata__\":" + "[".repeat(5000) + "]".repeat(5000) + "}", 0),
                        "header is not valid JSON"),
                // metadata
                bad("metadata not an object", file("{\"__metadata__\":\"x\"}", 0),
                        "\"__metadata__\" must be an object of strings, got \"x\""),
                bad("metadata number value", file("{\"__metadata__\":{\"k\":17}}", 0),
                        "\"__metadata__\" value \"k\" must be a string, got 17"),
                bad("metadata null value", file("{\"__metadata__\":{\"k\":null}}", 0), "value \"k\" must be a string, got null"),
                bad("metadata nested value", file("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0),
                        "value \"k\" must be a string, got {\"x\":\"y\"}"),
                // tensor entries
                bad("tensor entry not an object", file("{\"w\":[1]}", 0), "tensor \"w\" must be an object, got [1]"),
                bad("missing data_offsets", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[0]}}", 0),
                        "tensor \"w\" is missing key \"data_offsets\""),
                bad("missing dtype", file("{\"w\":{\"shape\":[0],\"data_offsets\":[0,0]}}", 0),
                        "tensor \"w\" is missing key \"dtype\""),
                bad("extra key", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":1}}", 0),
                        "tensor \"w\" has unexpected key \"x\""),
                bad("unknown dtype", file("{\"w\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                        "tensor \"w\" has unknown dtype \"F31\""),
                bad("lower-case dtype", file("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                        "unknown dtype \"f32\""),
                bad("dtype not a string", file("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                        "tensor \"w\" dtype must be a string, got 4"),
                bad("shape not an array", file("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16),
                        "tensor \"w\" shape must be an array of integers, got 4"),
                bad("fractional dimension", shapeFile("[2,1.5]"), "tensor \"w\" shape[1] must be an integer from 0 to "
                        + Long.MAX_VALUE + ", got 1.5"),
                bad("float dimension 1.0", shapeFile("[1.0]"), "shape[0] must be an integer from 0 to 9223372036854775807, got 1.0"),
                bad("exponent dimension", shapeFile("[1e0]"), "shape[0] must be an integer from 0 to 9223372036854775807, got 1.0"),
                bad("string dimension", shapeFile("[\"2\"]"), "shape[0] must be an integer from 0 to 9223372036854775807, got \"2\""),
                bad("negative dimension", shapeFile("[-1]"), "shape[0] must be an integer from 0 to 9223372036854775807, got -1"),
                bad("dimension beyond long", shapeFile("[9223372036854775808]"), "got 9223372036854775808"),
                bad("null dimension", shapeFile("[null]"), "shape[0] must be an integer from 0 to 9223372036854775807, got null"),
                bad("three data_offsets", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8),
                        "tensor \"w\" data_offsets must hold exactly 2 integers, got [0, 4, 8]"),
                bad("one data_offset", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0]}}", 0),
                        "tensor \"w\" data_offsets must hold exactly 2 integers, got [0]"),
                bad("fractional data_offset", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 4),
                        "tensor \"w\" data_offsets[1] must be an integer from 0 to 9223372036854775807, got 4.5"),
                bad("negative data_offset", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4),
                        "tensor \"w\" data_offsets[0] must be an integer from 0 to 9223372036854775807, got -4"),
                bad("begin after end", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8),
                        "tensor \"w\" data_offsets [8, 4] begin after end"),
                // sizes against dtype and shape
                bad("size mismatch", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12),
                        "tensor \"w\" data_offsets [0, 12] hold 12 bytes but dtype F32 shape [2, 2] needs 16"),
                bad("element count overflow",
                        file("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0),
                        "tensor \"w\" dtype U8 shape [4294967296, 4294967296] overflows a long byte count"),
                bad("byte count overflow",
                        file("{\"w\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807],\"data_offsets\":[0,0]}}", 0),
                        "tensor \"w\" dtype F64 shape [9223372036854775807] overflows a long byte count"),
                bad("zero-size shape with non-empty range",
                        file("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,1000],\"data_offsets\":[0,4]}}", 4),
                        "data_offsets [0, 4] hold 4 bytes but dtype F32 shape [0, 1000] needs 0"),
                bad("end beyond data buffer", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                        "tensor \"w\" data_offsets [0, 16] end beyond the data buffer of 8 bytes"),
                bad("huge offsets beyond data buffer", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
                        + "\"data_offsets\":[9223372036854775803,9223372036854775807]}}", 4),
                        "data_offsets [9223372036854775803, 9223372036854775807] end beyond the data buffer of 4 bytes"),
                // layout of the data buffer
                bad("overlap", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
                        "tensor \"b\" data_offsets [4, 12] overlaps tensor \"a\", which ends at byte 8"),
                bad("same range twice", file("{\"a\":" + F32_4 + ",\"b\":" + F32_4 + "}", 4),
                        "data_offsets [0, 4] overlaps tensor \"a\", which ends at byte 4"),
                bad("hole between tensors", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12),
                        "tensor \"b\" data_offsets [8, 12] leaves a hole: bytes [4, 8) belong to no tensor"),
                bad("hole at start", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                        "tensor \"a\" data_offsets [4, 8] leaves a hole: bytes [0, 4) belong to no tensor"),
                bad("unused bytes at end", file("{\"a\":" + F32_4 + "}", 8),
                        "the data buffer holds 8 bytes but the tensors cover only the first 4"),
                bad("data without tensors", file("{\"__metadata__\":{}}", 3),
                        "the data buffer holds 3 bytes but the tensors cover only the first 0"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedFiles")
    void rejectsMalformedFile(String description, byte[] content, String expectedFragment) throws IOException {
        Path path = dir.resolve("bad.safetensors");
        Files.write(path, content);
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(path).close());
        assertTrue(e.getMessage().startsWith(path + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(expectedFragment),
                "expected \"" + expectedFragment + "\" in: " + e.getMessage());
    }

    @Test
    void directoriesAndFifosAreRefusedBeforeOpening() throws IOException, InterruptedException {
        SafetensorsException directory = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(dir));
        assertEquals(dir + ": not a regular file (a directory, FIFO or device)", directory.getMessage());
        Path fifo = dir.resolve("fifo.safetensors");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
        org.junit.jupiter.api.Assumptions.assumeTrue(mkfifo.waitFor() == 0, "mkfifo is unavailable");
        SafetensorsException pipe = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(fifo));
        assertTrue(pipe.getMessage().startsWith(fifo + ": not a regular file"), pipe.getMessage());
        assertThrows(java.nio.file.NoSuchFileException.class, () -> SafetensorsFile.open(dir.resolve("missing")));
    }

    @Test
    void sizeMismatchMessageIsExact() throws IOException {
        Path path = dir.resolve("model.safetensors");
        Files.write(path, file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(path));
        assertEquals(path + ": tensor \"w\" data_offsets [0, 12] hold 12 bytes but dtype F32 shape [2, 2] needs 16",
                e.getMessage());
    }

    @Test
    void longUntrustedNamesAreEscapedAndCutInMessages() throws IOException {
        Path path = dir.resolve("bad.safetensors");
        String name = "\\n\\u0007" + "x".repeat(10_000);
        Files.write(path, file("{\"" + name + "\":{\"dtype\":\"F33\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(path));
        assertTrue(e.getMessage().contains("tensor \"\\n\\u0007xxx"), e.getMessage());
        assertTrue(e.getMessage().length() < 400, "message length " + e.getMessage().length());
        assertTrue(e.getMessage().chars().noneMatch(c -> c < 0x20), e.getMessage());
    }

    @Test
    void acceptsValidEdgeCases() throws IOException {
        Path path = dir.resolve("ok.safetensors");
        Files.write(path, file("{\"__metadata__\":{},"
                + "\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"z2\":{\"dtype\":\"BOOL\",\"shape\":[3,0],\"data_offsets\":[4,4]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[4,6]},"
                + "\"z3\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[6,6]}}          ", 6));
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertEquals(List.of("z1", "a", "z2", "b", "z3"), f.tensors().stream().map(TensorInfo::name).toList());
            assertTrue(f.metadata().isEmpty());
        }
    }

    @Test
    void acceptsEmptyHeaderWithoutTensors() throws IOException {
        Path path = dir.resolve("empty.safetensors");
        Files.write(path, file("{}      ", 0));
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertTrue(f.tensors().isEmpty());
            assertTrue(f.metadata().isEmpty());
        }
    }

    private static Arguments bad(String description, byte[] content, String expectedFragment) {
        return Arguments.of(description, content, expectedFragment);
    }

    private static byte[] shapeFile(String shape) {
        return file("{\"w\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,8]}}", 8);
    }

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) values[i];
        }
        return out;
    }
}
