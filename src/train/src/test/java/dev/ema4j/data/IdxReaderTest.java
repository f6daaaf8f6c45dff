package dev.ema4j.data;

import static dev.ema4j.data.TestData.concat;
import static dev.ema4j.data.TestData.gzip;
import static dev.ema4j.data.TestData.idx;
import static dev.ema4j.data.TestData.ramp;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@link IdxReader} on hand-made valid and malformed files, raw and gzipped. */
class IdxReaderTest {

    private static final byte[] SMALL = idx(new int[] {3, 2, 4}, ramp(24));

    @TempDir
    Path dir;

    private Path write(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    @Test
    void readsRawFile() throws IOException {
        IdxArray a = IdxReader.read(write("small-idx3-ubyte", SMALL));
        assertArrayEquals(new int[] {3, 2, 4}, a.shape());
        assertArrayEquals(ramp(24), a.data());
    }

    @Test
    void readsGzipFileRecognizedByMagicNotName() throws IOException {
        IdxArray a = IdxReader.read(write("no-gz-suffix", gzip(SMALL)));
        assertArrayEquals(new int[] {3, 2, 4}, a.shape());
        assertArrayEquals(ramp(24), a.data());
    }

    @Test
    void readsUnsignedBytesAndEmptyDimensions() throws IOException {
        byte[] values = {0, 1, (byte) 128, (byte) 255};
        assertArrayEquals(values, IdxReader.read(write("u8", idx(new int[] {4}, values))).data());
        IdxArray empty = IdxReader.read(write("empty.gz", gzip(idx(new int[] {0, 28, 28}, new byte[0]))));
        assertArrayEquals(new int[] {0, 28, 28}, empty.shape());
        assertEquals(0, empty.data().length);
    }

    static Stream<Arguments> malformedFiles() {
        byte[] gzSmall = gzip(SMALL);
        byte[] badCrc = gzSmall.clone();
        badCrc[badCrc.length - 8] ^= 0x01;
        // A valid gzip member header followed by a deflate block of the reserved type 3.
        byte[] badBlock = {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0, 0};
        return Stream.of(
                bad("empty file", new byte[0], "file holds 0 bytes, fewer than the 4 of the magic number"),
                bad("short magic", new byte[] {0, 0, 8}, "file holds 3 bytes, fewer than the 4"),
                bad("magic without zero bytes", concat(new byte[] {0x50, 0x4b, 8, 1}, new byte[8]),
                        "magic number 0x504b0801 does not start with two zero bytes; not an IDX file"),
                bad("float32 type", idx(0x0d, new int[] {2}, new byte[8]),
                        "data type 0x0d (float32); only 0x08 (unsigned byte) is supported"),
                bad("signed byte type", idx(0x09, new int[] {2}, new byte[2]), "data type 0x09 (signed byte)"),
                bad("zero dimensions", new byte[] {0, 0, 8, 0, 1}, "number of dimensions is 0; must be 1 to 255"),
                bad("header cut inside the dims", Arrays.copyOf(SMALL, 10),
                        "file holds 10 bytes, fewer than the 16-byte header of 3 dimensions"),
                bad("negative dimension", idx(new int[] {2, -1}, new byte[0]),
                        "dimension 1 is -1 (4294967295 unsigned); must be >= 0"),
                bad("huge dimensions", idx(new int[] {65536, 65536, 65536}, new byte[0]),
                        "header says 65536x65536x65536 = 281474976710656 values, more than the 2147483639"),
                bad("product just above an array", idx(new int[] {2, 1073741820}, new byte[0]),
                        "header says 2x1073741820 = 2147483640 values"),
                bad("truncated data", Arrays.copyOf(SMALL, SMALL.length - 1),
                        "header says 3x2x4 = 24 bytes, file holds 23 after the 16-byte header"),
                bad("trailing byte", concat(SMALL, new byte[1]),
                        "header says 3x2x4 = 24 bytes, file holds 25 after the 16-byte header"),
                bad("gzip of truncated data", gzip(Arrays.copyOf(SMALL, 30)),
                        "header says 3x2x4 = 24 bytes, decompressed data holds 14 after the 16-byte header"),
                bad("gzip of trailing bytes", gzip(concat(SMALL, new byte[3])),
                        "header says 3x2x4 = 24 bytes, decompressed data holds 27 after the 16-byte header"),
                bad("gzip of huge trailing data", gzip(concat(SMALL, new byte[3 << 20])),
                        "decompressed data holds more than 1048600 after the 16-byte header"),
                bad("gzip cut in half", Arrays.copyOf(gzSmall, gzSmall.length / 2), "gzip data ends early"),
                bad("gzip magic only", new byte[] {0x1f, (byte) 0x8b}, "gzip data ends early"),
                bad("gzip with wrong CRC", badCrc, "corrupt gzip data: Corrupt GZIP trailer"),
                bad("gzip with invalid deflate block", badBlock, "corrupt gzip data: invalid block type"));
    }

    private static Arguments bad(String name, byte[] bytes, String message) {
        return Arguments.of(name, bytes, message);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformedFiles")
    void rejectsMalformedFile(String name, byte[] bytes, String message) throws IOException {
        Path file = write("bad-idx", bytes);
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> IdxReader.read(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    @Test
    void idxArrayRejectsDataOfTheWrongSize() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new IdxArray(new int[] {2, 3}, new byte[5]));
        assertEquals("shape 2x3 does not hold the 5 bytes of data", e.getMessage());
    }
}
