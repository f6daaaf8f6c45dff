package dev.ema4j.dl4j;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;

/**
 * Fashion-MNIST from its IDX files (gzip-compressed, as the Debian package {@code dataset-fashion-mnist} installs
 * them in {@link #DEBIAN_DIR}), for the example: DL4J's own Fashion-MNIST iterator downloads the data.
 *
 * @param images {@code count × 784} pixels in [0, 1], row-major
 * @param labels {@code count} classes in 0..9
 */
record FashionMnistIdx(float[] images, int[] labels) {

    static final Path DEBIAN_DIR = Path.of("/usr/share/datasets/fashion-mnist");
    static final int PIXELS = 28 * 28;
    static final int CLASSES = 10;

    /** The 60,000 training images. */
    static FashionMnistIdx train(Path dir) throws IOException {
        return read(dir.resolve("train-images-idx3-ubyte.gz"), dir.resolve("train-labels-idx1-ubyte.gz"));
    }

    /** The 10,000 test images. */
    static FashionMnistIdx test(Path dir) throws IOException {
        return read(dir.resolve("t10k-images-idx3-ubyte.gz"), dir.resolve("t10k-labels-idx1-ubyte.gz"));
    }

    /** Whether the files are in {@code dir}. */
    static boolean available(Path dir) {
        return Files.isReadable(dir.resolve("train-images-idx3-ubyte.gz"))
                && Files.isReadable(dir.resolve("t10k-labels-idx1-ubyte.gz"));
    }

    int count() {
        return labels.length;
    }

    static FashionMnistIdx read(Path imageFile, Path labelFile) throws IOException {
        byte[] pixels = readIdx(imageFile, 28, 28);
        byte[] classes = readIdx(labelFile);
        if (pixels.length / PIXELS != classes.length) {
            throw new IOException(imageFile + " holds " + pixels.length / PIXELS + " images, " + labelFile + " "
                    + classes.length + " labels");
        }
        float[] images = new float[pixels.length];
        for (int i = 0; i < pixels.length; i++) {
            images[i] = (pixels[i] & 0xff) / 255f;
        }
        int[] labels = new int[classes.length];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = classes[i] & 0xff;
            if (labels[i] >= CLASSES) {
                throw new IOException(labelFile + ": label " + labels[i] + " at " + i + " is not a class 0..9");
            }
        }
        return new FashionMnistIdx(images, labels);
    }

    /**
     * The unsigned-byte values of a gzip-compressed IDX file: magic {@code 00 00 08 rank}, {@code rank} big-endian
     * int32 sizes, the values; {@code inner} are the sizes expected after the first.
     */
    static byte[] readIdx(Path file, int... inner) throws IOException {
        try (InputStream raw = Files.newInputStream(file);
             DataInputStream in = new DataInputStream(new GZIPInputStream(raw, 1 << 16))) {
            int magic = in.readInt();
            if ((magic >>> 8) != 0x08 || (magic & 0xff) != inner.length + 1) {
                throw new IOException(file + ": magic 0x" + Integer.toHexString(magic) + ", expected 0x0000080"
                        + (inner.length + 1) + " (unsigned bytes, rank " + (inner.length + 1) + ")");
            }
            int[] dims = new int[inner.length + 1];
            long n = 1;
            for (int d = 0; d < dims.length; d++) {
                dims[d] = in.readInt();
                if (dims[d] < 0 || (d > 0 && dims[d] != inner[d - 1])) {
                    String expected = inner.length == 0 ? "[n]" : "[n, " + Arrays.toString(inner).substring(1);
                    throw new IOException(file + ": sizes start " + Arrays.toString(Arrays.copyOf(dims, d + 1))
                            + ", expected " + expected);
                }
                n *= dims[d];
            }
            if (n > Integer.MAX_VALUE - 8) {
                throw new IOException(file + ": " + n + " values, too many for one array");
            }
            byte[] values = new byte[(int) n];
            try {
                in.readFully(values);
            } catch (EOFException e) {
                throw new IOException(file + ": ends before its " + n + " values", e);
            }
            if (in.read() != -1) {
                throw new IOException(file + ": bytes after its " + n + " values");
            }
            return values;
        }
    }
}
