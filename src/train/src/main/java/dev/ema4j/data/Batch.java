package dev.ema4j.data;

/**
 * One mini-batch filled by {@link Batches}: normalized images, labels, and where each sample came from.
 *
 * <p>The arrays belong to the {@link Batches} that filled them and are overwritten by its next batch of the same
 * size; call {@link #copy()} to keep a batch.
 */
public final class Batch {

    private final float[] x; // (B, 1, H, W)
    private final int[] y;
    private final int[] indices;
    private final int[] positions;
    private final int height;
    private final int width;
    private int epoch;
    private int number;

    Batch(int size, int height, int width) {
        this(new float[size * height * width], new int[size], new int[size], new int[size], height, width);
    }

    private Batch(float[] x, int[] y, int[] indices, int[] positions, int height, int width) {
        this.x = x;
        this.y = y;
        this.indices = indices;
        this.positions = positions;
        this.height = height;
        this.width = width;
    }

    void place(int epoch, int number) {
        this.epoch = epoch;
        this.number = number;
    }

    /** An independent copy of this batch. */
    public Batch copy() {
        Batch c = new Batch(x.clone(), y.clone(), indices.clone(), positions.clone(), height, width);
        c.place(epoch, number);
        return c;
    }

    /** Number of samples B. */
    public int size() {
        return y.length;
    }

    /** The epoch this batch belongs to. */
    public int epoch() {
        return epoch;
    }

    /** The batch's number within its epoch, from 0. */
    public int number() {
        return number;
    }

    /** Rows per image H. */
    public int height() {
        return height;
    }

    /** Columns per image W. */
    public int width() {
        return width;
    }

    /** The images, (B, 1, H, W) row-major, each pixel {@code (pixel/255 − mean)/std}; shared, see the class doc. */
    public float[] x() {
        return x;
    }

    /** The labels (noisy where the view's are), one per sample; shared, see the class doc. */
    public int[] y() {
        return y;
    }

    /** The dataset index of each sample; shared, see the class doc. */
    public int[] indices() {
        return indices;
    }

    /**
     * The position of each sample in the view, for {@link DatasetView#cleanLabel} and
     * {@link DatasetView#isNoisy}; shared, see the class doc.
     */
    public int[] positions() {
        return positions;
    }
}
