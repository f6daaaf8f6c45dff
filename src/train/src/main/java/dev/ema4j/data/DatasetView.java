package dev.ema4j.data;

import java.util.Arrays;
import java.util.BitSet;
import java.util.Objects;

/**
 * An immutable selection of a dataset's samples: an array of dataset indices, one label per sample (possibly
 * relabeled or noisy) and the clean label of each sample. Samples are addressed by their <em>position</em>
 * {@code 0..size()-1} in the view; {@link #index(int)} maps a position to the dataset index.
 *
 * <p>All operations are deterministic functions of their arguments and return new views; the images are
 * shared, never copied. Dataset indices are unique within a view.
 *
 * <pre>{@code
 * DatasetView.Split s = FashionMnist.train(null).view().split(0.8, 1);     // 48,000 / 12,000
 * DatasetView noisy = s.train().symmetricNoise(0.4, 7);                    // 40 % wrong labels
 * DatasetView target = FashionMnist.test(null).view().subsetRelabeled(5, 6, 7, 8, 9);   // labels 0..4
 * }</pre>
 */
public final class DatasetView {

    private static final long SPLIT = 1;
    private static final long SAMPLE = 2;
    private static final long SYMMETRIC_NOISE = 3;
    private static final long PAIR_FLIP_NOISE = 4;

    private final ImageDataset dataset;
    private final int[] indices;
    private final int[] labels;
    private final int[] clean;
    private final int classes;

    private DatasetView(ImageDataset dataset, int[] indices, int[] labels, int[] clean, int classes) {
        this.dataset = dataset;
        this.indices = indices;
        this.labels = labels;
        this.clean = clean;
        this.classes = classes;
    }

    static DatasetView all(ImageDataset dataset) {
        int n = dataset.count();
        int[] indices = new int[n];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            indices[i] = i;
            labels[i] = dataset.label(i);
        }
        return new DatasetView(dataset, indices, labels, labels, dataset.classes());
    }

    /**
     * The two disjoint parts of a {@link #split}, together covering the view, each in view order.
     *
     * @param train the first part, {@code round(fraction·size)} samples
     * @param validation the rest
     */
    public record Split(DatasetView train, DatasetView validation) {
    }

    /**
     * Splits the samples at random into two disjoint views covering this one; each keeps the view order of its
     * samples. Stratification is not attempted.
     *
     * @param fraction the share of the first part, in (0, 1); it gets {@code round(fraction·size)} samples
     * @param seed the seed; the split depends only on it and this view
     */
    public Split split(double fraction, long seed) {
        if (!(fraction > 0 && fraction < 1)) {
            throw new IllegalArgumentException("fraction is " + fraction + "; must be in (0, 1)");
        }
        int n = size();
        int k = (int) Math.round(fraction * n);
        int[] order = Mix.permutation(n, seed, SPLIT, n);
        int[] first = Arrays.copyOf(order, k);
        int[] rest = Arrays.copyOfRange(order, k, n);
        Arrays.sort(first);
        Arrays.sort(rest);
        return new Split(select(first), select(rest));
    }

    /** The first {@code n} samples, {@code 0 <= n <= size()}. */
    public DatasetView first(int n) {
        checkCount(n);
        return select(range(n));
    }

    /**
     * {@code n} distinct samples drawn at random, in view order.
     *
     * @param n how many, {@code 0 <= n <= size()}
     * @param seed the seed; the sample depends only on it and this view
     */
    public DatasetView sample(int n, long seed) {
        checkCount(n);
        int[] chosen = Arrays.copyOf(Mix.permutation(size(), seed, SAMPLE, size()), n);
        Arrays.sort(chosen);
        return select(chosen);
    }

    /**
     * The samples of the given classes, in view order, keeping their labels and the number of classes.
     *
     * @param keep distinct classes in {@code [0, classes())}
     * @throws IllegalStateException if this view has label noise (add the noise after selecting classes)
     */
    public DatasetView subset(int... keep) {
        return subset(keep, false);
    }

    /**
     * The samples of the given classes, in view order, relabeled {@code keep[i] → i}; the result has
     * {@code keep.length} classes. {@code subsetRelabeled(5, 6, 7, 8, 9)} turns classes 5–9 into 0–4.
     *
     * @param keep distinct classes in {@code [0, classes())}, in the order of their new labels
     * @throws IllegalStateException if this view has label noise (add the noise after selecting classes)
     */
    public DatasetView subsetRelabeled(int... keep) {
        return subset(keep, true);
    }

    private DatasetView subset(int[] keep, boolean relabel) {
        Objects.requireNonNull(keep, "keep");
        if (hasNoise()) {
            throw new IllegalStateException("this view has " + noisyCount()
                    + " noisy labels; select classes before adding label noise");
        }
        if (keep.length == 0) {
            throw new IllegalArgumentException("keep is empty; name at least one class");
        }
        int[] newLabel = new int[classes];
        Arrays.fill(newLabel, -1);
        for (int i = 0; i < keep.length; i++) {
            int c = keep[i];
            if (c < 0 || c >= classes) {
                throw new IllegalArgumentException("keep[" + i + "] is " + c + "; must be in [0, " + classes + ")");
            }
            if (newLabel[c] >= 0) {
                throw new IllegalArgumentException("keep[" + i + "] is " + c + ", already keep[" + newLabel[c] + "]");
            }
            newLabel[c] = i;
        }
        int n = 0;
        for (int label : labels) {
            n += newLabel[label] >= 0 ? 1 : 0;
        }
        int[] idx = new int[n];
        int[] lab = new int[n];
        int j = 0;
        for (int p = 0; p < labels.length; p++) {
            if (newLabel[labels[p]] >= 0) {
                idx[j] = indices[p];
                lab[j] = relabel ? newLabel[labels[p]] : labels[p];
                j++;
            }
        }
        return new DatasetView(dataset, idx, lab, lab, relabel ? keep.length : classes);
    }

    /**
     * Symmetric label noise: each sample, with probability {@code rate}, gets a label drawn uniformly from the
     * other {@code classes() − 1} classes. Whether and how a sample's label changes depends only on
     * {@code (seed, dataset index)}, so splitting before or after adding noise gives the same labels.
     *
     * @param rate the probability of a wrong label, in [0, 1]
     * @param seed the seed
     * @return a view with the noisy labels; {@link #cleanLabel} keeps the clean ones
     * @throws IllegalStateException if this view already has noise or fewer than 2 classes
     */
    public DatasetView symmetricNoise(double rate, long seed) {
        checkNoise(rate);
        int[] noisy = clean.clone();
        for (int p = 0; p < noisy.length; p++) {
            long h = Mix.hash(seed, SYMMETRIC_NOISE, indices[p]);
            if (Mix.unit(h) < rate) {
                int other = Mix.below(Mix.mix64(h), classes - 1);
                noisy[p] = other >= clean[p] ? other + 1 : other;
            }
        }
        return new DatasetView(dataset, indices, noisy, clean, classes);
    }

    /**
     * Pair-flip label noise: each sample, with probability {@code rate}, has its label {@code c} replaced by
     * {@code (c + 1) mod classes()}. Whether a sample flips depends only on {@code (seed, dataset index)}.
     *
     * @param rate the probability of a wrong label, in [0, 1]
     * @param seed the seed
     * @return a view with the noisy labels; {@link #cleanLabel} keeps the clean ones
     * @throws IllegalStateException if this view already has noise or fewer than 2 classes
     */
    public DatasetView pairFlipNoise(double rate, long seed) {
        checkNoise(rate);
        int[] noisy = clean.clone();
        for (int p = 0; p < noisy.length; p++) {
            if (Mix.unit(Mix.hash(seed, PAIR_FLIP_NOISE, indices[p])) < rate) {
                noisy[p] = (clean[p] + 1) % classes;
            }
        }
        return new DatasetView(dataset, indices, noisy, clean, classes);
    }

    private void checkNoise(double rate) {
        if (!(rate >= 0 && rate <= 1)) {
            throw new IllegalArgumentException("rate is " + rate + "; must be in [0, 1]");
        }
        if (hasNoise()) {
            throw new IllegalStateException("this view already has " + noisyCount() + " noisy labels");
        }
        if (classes < 2) {
            throw new IllegalStateException("label noise needs >= 2 classes; this view has " + classes);
        }
    }

    /**
     * Pixel mean and standard deviation of this view's images, scaled to [0, 1]; sums are exact integers.
     *
     * @throws IllegalStateException if the view is empty
     */
    public PixelStats pixelStats() {
        if (indices.length == 0) {
            throw new IllegalStateException("the view is empty; pixel statistics need at least one image");
        }
        byte[] pixels = dataset.pixels();
        int hw = dataset.height() * dataset.width();
        long sum = 0;
        long sumSquares = 0;
        for (int d : indices) {
            for (int i = d * hw, end = i + hw; i < end; i++) {
                int v = pixels[i] & 0xff;
                sum += v;
                sumSquares += v * v;
            }
        }
        double n = (double) indices.length * hw;
        double mean = sum / n / 255;
        double meanSquare = sumSquares / n / (255.0 * 255.0);
        return new PixelStats(mean, Math.sqrt(Math.max(0, meanSquare - mean * mean)));
    }

    private void checkCount(int n) {
        if (n < 0 || n > size()) {
            throw new IllegalArgumentException("n is " + n + "; must be in [0, " + size() + "]");
        }
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    /** The view of the given positions, in that order, keeping labels and clean labels. */
    private DatasetView select(int[] positions) {
        int n = positions.length;
        int[] idx = new int[n];
        int[] lab = new int[n];
        int[] cl = labels == clean ? lab : new int[n];
        for (int j = 0; j < n; j++) {
            int p = positions[j];
            idx[j] = indices[p];
            lab[j] = labels[p];
            cl[j] = clean[p];
        }
        return new DatasetView(dataset, idx, lab, cl, classes);
    }

    /** The dataset whose images this view selects. */
    public ImageDataset dataset() {
        return dataset;
    }

    /** Number of samples. */
    public int size() {
        return indices.length;
    }

    /** Number of classes; labels lie in {@code [0, classes())}. */
    public int classes() {
        return classes;
    }

    /** The dataset index of the sample at {@code position}. */
    public int index(int position) {
        return indices[position];
    }

    /** The label (possibly noisy) of the sample at {@code position}. */
    public int label(int position) {
        return labels[position];
    }

    /** The clean label of the sample at {@code position} (relabeled like {@link #label}, but without noise). */
    public int cleanLabel(int position) {
        return clean[position];
    }

    /** Whether the label of the sample at {@code position} differs from its clean label. */
    public boolean isNoisy(int position) {
        return labels[position] != clean[position];
    }

    /** Whether any label differs from its clean label. */
    public boolean hasNoise() {
        return labels != clean && noisyCount() > 0;
    }

    /** The positions whose label differs from the clean label; a fresh set. */
    public BitSet noisyMask() {
        BitSet mask = new BitSet(labels.length);
        for (int p = 0; p < labels.length; p++) {
            if (labels[p] != clean[p]) {
                mask.set(p);
            }
        }
        return mask;
    }

    /** How many labels differ from their clean labels. */
    public int noisyCount() {
        int n = 0;
        for (int p = 0; p < labels.length; p++) {
            n += labels[p] != clean[p] ? 1 : 0;
        }
        return n;
    }

    /** The dataset indices, by position; a fresh copy. */
    public int[] indices() {
        return indices.clone();
    }

    /** The labels (possibly noisy), by position; a fresh copy. */
    public int[] labels() {
        return labels.clone();
    }

    /** The clean labels, by position; a fresh copy. */
    public int[] cleanLabels() {
        return clean.clone();
    }

    @Override
    public String toString() {
        return "DatasetView[" + size() + " of " + dataset.count() + " images, " + classes + " classes, "
                + noisyCount() + " noisy labels]";
    }
}
