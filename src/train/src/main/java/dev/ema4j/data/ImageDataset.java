package dev.ema4j.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * An immutable set of single-channel uint8 images with integer class labels. Pixels stay bytes (Fashion-MNIST
 * train: 47 MB rather than 188 MB of floats); {@link Batches} converts them to normalized floats batch by batch.
 * Select, split and relabel samples through {@link #view()}.
 */
public final class ImageDataset {

    private final byte[] pixels; // (N, H, W)
    private final int[] labels;
    private final int height;
    private final int width;
    private final int classes;

    private ImageDataset(byte[] pixels, int[] labels, int height, int width, int classes) {
        this.pixels = pixels;
        this.labels = labels;
        this.height = height;
        this.width = width;
        this.classes = classes;
    }

    /**
     * A dataset of copies of the given arrays.
     *
     * @param pixels {@code count·height·width} bytes, row-major (N, H, W), read as unsigned
     * @param labels one per image, each in {@code [0, classes)}
     * @param height rows per image, {@code >= 1}
     * @param width columns per image, {@code >= 1}
     * @param classes number of classes, {@code >= 1}
     * @return the dataset
     * @throws IllegalArgumentException if the sizes disagree or a label is out of range
     */
    public static ImageDataset of(byte[] pixels, int[] labels, int height, int width, int classes) {
        Objects.requireNonNull(pixels, "pixels");
        Objects.requireNonNull(labels, "labels");
        checkShape(height, width, classes);
        if ((long) labels.length * height * width != pixels.length) {
            throw new IllegalArgumentException("pixels has " + pixels.length + " bytes; " + labels.length
                    + " labels of " + height + "x" + width + " images need " + (long) labels.length * height * width);
        }
        int bad = firstLabelOutOfRange(labels, classes);
        if (bad >= 0) {
            throw new IllegalArgumentException(
                    "labels[" + bad + "] is " + labels[bad] + "; must be in [0, " + classes + ")");
        }
        return new ImageDataset(pixels.clone(), labels.clone(), height, width, classes);
    }

    /**
     * Loads a dataset from an IDX images file of shape (N, H, W) and an IDX labels file of shape (N).
     *
     * @param images the images file, raw or gzip-compressed
     * @param labels the labels file, raw or gzip-compressed
     * @param classes number of classes; every label must be below it
     * @return the dataset
     * @throws IdxFormatException if a file is malformed, has the wrong rank, the counts differ, or a label is
     *     out of range
     * @throws IOException if a file cannot be read
     */
    public static ImageDataset fromIdx(Path images, Path labels, int classes) throws IOException {
        checkClasses(classes);
        IdxArray x = IdxReader.read(images);
        IdxArray y = IdxReader.read(labels);
        if (x.shape().length != 3) {
            throw new IdxFormatException(images + ": shape " + IdxArray.shapeString(x.shape())
                    + " has " + x.shape().length + " dimensions; images need 3 (count x height x width)");
        }
        if (y.shape().length != 1) {
            throw new IdxFormatException(labels + ": shape " + IdxArray.shapeString(y.shape())
                    + " has " + y.shape().length + " dimensions; labels need 1 (count)");
        }
        int n = x.shape()[0];
        if (y.shape()[0] != n) {
            throw new IdxFormatException(images + " holds " + n + " images but " + labels + " holds "
                    + y.shape()[0] + " labels");
        }
        if (x.shape()[1] < 1 || x.shape()[2] < 1) {
            throw new IdxFormatException(images + ": images are " + x.shape()[1] + "x" + x.shape()[2]
                    + "; height and width must be >= 1");
        }
        int[] ys = new int[n];
        for (int i = 0; i < n; i++) {
            ys[i] = y.data()[i] & 0xff;
        }
        int bad = firstLabelOutOfRange(ys, classes);
        if (bad >= 0) {
            throw new IdxFormatException(
                    labels + ": label " + bad + " is " + ys[bad] + "; must be in [0, " + classes + ")");
        }
        return new ImageDataset(x.data(), ys, x.shape()[1], x.shape()[2], classes);
    }

    private static void checkShape(int height, int width, int classes) {
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("images are " + height + "x" + width + "; height and width must be >= 1");
        }
        checkClasses(classes);
    }

    private static void checkClasses(int classes) {
        if (classes < 1) {
            throw new IllegalArgumentException("classes is " + classes + "; must be >= 1");
        }
    }

    private static int firstLabelOutOfRange(int[] labels, int classes) {
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                return i;
            }
        }
        return -1;
    }

    /** A view of all samples in order, with the dataset's labels. */
    public DatasetView view() {
        return DatasetView.all(this);
    }

    /** Number of images. */
    public int count() {
        return labels.length;
    }

    /** Rows per image. */
    public int height() {
        return height;
    }

    /** Columns per image. */
    public int width() {
        return width;
    }

    /** Number of classes; labels lie in {@code [0, classes)}. */
    public int classes() {
        return classes;
    }

    /** The label of image {@code i}. */
    public int label(int i) {
        return labels[i];
    }

    /** The pixel of image {@code i} at row {@code r}, column {@code c}, in {@code [0, 255]}. */
    public int pixel(int i, int r, int c) {
        Objects.checkIndex(i, labels.length);
        Objects.checkIndex(r, height);
        Objects.checkIndex(c, width);
        return pixels[(i * height + r) * width + c] & 0xff;
    }

    /** The pixels, (N, H, W); shared, never to be modified. */
    byte[] pixels() {
        return pixels;
    }

    @Override
    public String toString() {
        return "ImageDataset[" + count() + " images of " + height + "x" + width + ", " + classes + " classes]";
    }
}
