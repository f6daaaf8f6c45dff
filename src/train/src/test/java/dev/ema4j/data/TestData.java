package dev.ema4j.data;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.zip.GZIPOutputStream;

/** Hand-made IDX bytes and small datasets for the tests, built independently of the code under test. */
final class TestData {

    private TestData() {}

    /** An IDX file: {@code 00 00 type rank}, big-endian dims, then {@code data}. */
    static byte[] idx(int type, int[] dims, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length + data.length);
        b.put((byte) 0).put((byte) 0).put((byte) type).put((byte) dims.length);
        for (int d : dims) {
            b.putInt(d);
        }
        return b.put(data).array();
    }

    /** An unsigned-byte IDX file. */
    static byte[] idx(int[] dims, byte[] data) {
        return idx(0x08, dims, data);
    }

    static byte[] gzip(byte[] bytes) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    /** {@code n} bytes {@code 0, 1, 2, ...} (mod 256). */
    static byte[] ramp(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) i;
        }
        return b;
    }

    /** {@code n} one-pixel images (pixel {@code i mod 256}) labeled {@code i mod classes}. */
    static ImageDataset cyclicLabels(int n, int classes) {
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % classes;
        }
        return ImageDataset.of(ramp(n), labels, 1, 1, classes);
    }

    /** Pixel (r, c) of image {@code i} of {@link #patterned}: distinct and nonzero within each image. */
    static int patternPixel(int i, int r, int c, int width) {
        return 1 + r * width + c + 3 * (i % 11);
    }

    /** {@code n} images of {@code height x width} with {@link #patternPixel} values, labeled {@code i mod 10}. */
    static ImageDataset patterned(int n, int height, int width) {
        byte[] pixels = new byte[n * height * width];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 10;
            for (int r = 0; r < height; r++) {
                for (int c = 0; c < width; c++) {
                    pixels[(i * height + r) * width + c] = (byte) patternPixel(i, r, c, width);
                }
            }
        }
        return ImageDataset.of(pixels, labels, height, width, 10);
    }
}
