package dev.ema4j.data;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Reads IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed; gzip is recognized by
 * its magic bytes {@code 1f 8b}, not by the file name.
 *
 * <p>Layout: two zero bytes, a type byte (only {@code 0x08}, unsigned byte, is accepted), the number of
 * dimensions {@code n} (1 to 255), {@code n} big-endian int32 dimensions, then {@code product(dims)} values.
 * The file is treated as untrusted: negative dimensions, a product larger than a Java array, truncated data,
 * trailing bytes and corrupt gzip data are all rejected with an {@link IdxFormatException} naming the file.
 */
public final class IdxReader {

    /** The largest number of values {@link #read} accepts: the largest Java array. */
    public static final int MAX_VALUES = Integer.MAX_VALUE - 8;

    private static final int UNSIGNED_BYTE = 0x08;
    private static final long TRAILING_COUNT_LIMIT = 1 << 20;

    private IdxReader() {
    }

    /**
     * Reads and validates a whole IDX file.
     *
     * @param path the file, raw or gzip-compressed
     * @return its shape and values
     * @throws IdxFormatException if the file violates the format (the message names the file and values)
     * @throws IOException if the file cannot be read
     */
    public static IdxArray read(Path path) throws IOException {
        String file = path.toString();
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(path), 1 << 16)) {
            raw.mark(2);
            boolean gzip = raw.read() == 0x1f && raw.read() == 0x8b;
            raw.reset();
            if (!gzip) {
                return read(file, raw, Files.size(path));
            }
            try (InputStream in = new GZIPInputStream(raw, 1 << 16)) {
                return read(file, in, -1);
            } catch (ZipException e) {
                throw new IdxFormatException(file + ": corrupt gzip data: " + e.getMessage(), e);
            } catch (EOFException e) {
                throw new IdxFormatException(file + ": gzip data ends early: " + e.getMessage(), e);
            }
        }
    }

    /** Reads from {@code in}; {@code size} is the file's length when known (raw files), else -1. */
    private static IdxArray read(String file, InputStream in, long size) throws IOException {
        String holds = size >= 0 ? "file holds " : "decompressed data holds ";
        byte[] magic = in.readNBytes(4);
        if (magic.length < 4) {
            throw new IdxFormatException(file + ": " + holds + magic.length
                    + " bytes, fewer than the 4 of the magic number");
        }
        if (magic[0] != 0 || magic[1] != 0) {
            throw new IdxFormatException(file + ": magic number " + hex(magic)
                    + " does not start with two zero bytes; not an IDX file");
        }
        if (magic[2] != UNSIGNED_BYTE) {
            throw new IdxFormatException(file + ": data type 0x" + String.format("%02x", magic[2] & 0xff) + " ("
                    + typeName(magic[2] & 0xff) + "); only 0x08 (unsigned byte) is supported");
        }
        int rank = magic[3] & 0xff;
        if (rank == 0) {
            throw new IdxFormatException(file + ": number of dimensions is 0; must be 1 to 255");
        }
        int headerBytes = 4 + 4 * rank;
        byte[] dimBytes = in.readNBytes(4 * rank);
        if (dimBytes.length < 4 * rank) {
            throw new IdxFormatException(file + ": " + holds + (4 + dimBytes.length) + " bytes, fewer than the "
                    + headerBytes + "-byte header of " + rank + " dimensions");
        }
        int[] shape = new int[rank];
        ByteBuffer dims = ByteBuffer.wrap(dimBytes);
        for (int k = 0; k < rank; k++) {
            shape[k] = dims.getInt();
            if (shape[k] < 0) {
                throw new IdxFormatException(file + ": dimension " + k + " is " + shape[k] + " ("
                        + Integer.toUnsignedString(shape[k]) + " unsigned); must be >= 0");
            }
        }
        String shapeString = IdxArray.shapeString(shape);
        long count = IdxArray.count(shape, MAX_VALUES);
        if (count < 0) {
            BigInteger product = BigInteger.ONE;
            for (int d : shape) {
                product = product.multiply(BigInteger.valueOf(d));
            }
            throw new IdxFormatException(file + ": header says " + shapeString + " = " + product
                    + " values, more than the " + MAX_VALUES + " a Java array holds");
        }
        if (size >= 0 && size - headerBytes != count) {
            throw new IdxFormatException(file + ": header says " + shapeString + " = " + count + " bytes, "
                    + holds + (size - headerBytes) + " after the " + headerBytes + "-byte header");
        }
        byte[] data = in.readNBytes((int) count);
        long total = data.length;
        if (total == count) {
            total += countRest(in);
        }
        if (total != count) {
            String found = total > count + TRAILING_COUNT_LIMIT
                    ? "more than " + (count + TRAILING_COUNT_LIMIT) : Long.toString(total);
            throw new IdxFormatException(file + ": header says " + shapeString + " = " + count + " bytes, "
                    + holds + found + " after the " + headerBytes + "-byte header");
        }
        return new IdxArray(shape, data);
    }

    /** The bytes left in {@code in}, counted up to just past {@link #TRAILING_COUNT_LIMIT}. */
    private static long countRest(InputStream in) throws IOException {
        byte[] sink = new byte[8192];
        long n = 0;
        int r;
        while (n <= TRAILING_COUNT_LIMIT && (r = in.read(sink)) >= 0) {
            n += r;
        }
        return n;
    }

    private static String hex(byte[] bytes) {
        StringBuilder s = new StringBuilder("0x");
        for (byte b : bytes) {
            s.append(String.format("%02x", b & 0xff));
        }
        return s.toString();
    }

    private static String typeName(int type) {
        return switch (type) {
            case 0x09 -> "signed byte";
            case 0x0b -> "int16";
            case 0x0c -> "int32";
            case 0x0d -> "float32";
            case 0x0e -> "float64";
            default -> "unknown type";
        };
    }
}
