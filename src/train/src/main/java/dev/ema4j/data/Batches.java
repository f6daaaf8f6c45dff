package dev.ema4j.data;

import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Objects;

/**
 * Cuts a {@link DatasetView} into mini-batches, epoch by epoch, with no hidden random state: the order of
 * epoch {@code e} is a permutation that depends only on {@code (seed, e)}, and the augmentation of a sample
 * only on {@code (seed, e, its position in the view)}. So {@code batch(e, k)} is the same whether an epoch runs
 * from the start or resumes at batch {@code k}, and a run resumes from {@code (epoch, batch)} alone.
 *
 * <pre>{@code
 * Batches batches = new Batches(train, BatchConfig.training(128, 42));
 * for (Batch b : batches.epoch(epoch, startBatch)) {
 *     step(b.x(), b.y());          // b's arrays are reused by the next batch
 * }
 * }</pre>
 *
 * <p>Batches reuses two sets of output arrays (full batches and the last partial one); a returned
 * {@link Batch} is valid until the next batch of the same size is filled. Not thread-safe.
 */
public final class Batches {

    private static final long SHUFFLE = 11;
    private static final long AUGMENT = 12;

    private final DatasetView view;
    private final BatchConfig config;
    private final byte[] pixels;
    private final int height;
    private final int width;
    private final float[] normalized = new float[256];
    private final int batchCount;
    private final Batch full;
    private final Batch tail;
    private int orderEpoch = -1;
    private int[] order;

    /**
     * Batches of {@code view} as {@code config} says.
     *
     * @throws IllegalArgumentException if the view is empty, or has fewer samples than a batch with drop-last
     */
    public Batches(DatasetView view, BatchConfig config) {
        this.view = Objects.requireNonNull(view, "view");
        this.config = Objects.requireNonNull(config, "config");
        int n = view.size();
        int b = config.batchSize();
        if (n == 0) {
            throw new IllegalArgumentException("view is empty; batches need at least one sample");
        }
        if (config.dropLast() && n < b) {
            throw new IllegalArgumentException("view has " + n + " samples, fewer than batchSize " + b
                    + "; with dropLast there would be no batch");
        }
        ImageDataset data = view.dataset();
        this.pixels = data.pixels();
        this.height = data.height();
        this.width = data.width();
        for (int v = 0; v < 256; v++) {
            normalized[v] = config.normalization().normalize(v);
        }
        this.batchCount = config.dropLast() ? n / b : (n + b - 1) / b;
        this.full = new Batch(Math.min(b, n), height, width);
        this.tail = config.dropLast() || n % b == 0 || n < b ? null : new Batch(n % b, height, width);
    }

    /** Batches per epoch: {@code size/batchSize}, rounded down with drop-last, else up. */
    public int batchCount() {
        return batchCount;
    }

    /** The view positions in the order epoch {@code epoch >= 0} visits them; a fresh array. */
    public int[] order(int epoch) {
        return orderOf(epoch).clone();
    }

    private static void checkEpoch(int epoch) {
        if (epoch < 0) {
            throw new IllegalArgumentException("epoch is " + epoch + "; must be >= 0");
        }
    }

    private int[] orderOf(int epoch) {
        checkEpoch(epoch);
        int canonical = config.shuffle() ? epoch : 0;
        if (orderEpoch != canonical) {
            int n = view.size();
            order = config.shuffle() ? Mix.permutation(n, config.seed(), SHUFFLE, epoch) : identity(n);
            orderEpoch = canonical;
        }
        return order;
    }

    private static int[] identity(int n) {
        int[] p = new int[n];
        Arrays.setAll(p, i -> i);
        return p;
    }

    /**
     * Fills and returns batch {@code number} of epoch {@code epoch}.
     *
     * @param epoch the epoch, {@code >= 0}
     * @param number the batch, in {@code [0, batchCount())}
     * @return the batch, in reused arrays (see the class doc)
     */
    public Batch batch(int epoch, int number) {
        if (number < 0 || number >= batchCount) {
            throw new IndexOutOfBoundsException("number is " + number + "; must be in [0, " + batchCount + ")");
        }
        int[] positions = orderOf(epoch);
        int start = number * config.batchSize();
        Batch out = positions.length - start >= config.batchSize() || tail == null ? full : tail;
        long epochKey = Mix.hash(config.seed(), AUGMENT, epoch);
        int hw = height * width;
        for (int s = 0; s < out.size(); s++) {
            int p = positions[start + s];
            int d = view.index(p);
            out.positions()[s] = p;
            out.indices()[s] = d;
            out.y()[s] = view.label(p);
            fillImage(out.x(), s * hw, d * hw, Mix.hash(epochKey, p, 0));
        }
        out.place(epoch, number);
        return out;
    }

    /** The batches of epoch {@code epoch}, from the first. */
    public Iterable<Batch> epoch(int epoch) {
        return epoch(epoch, 0);
    }

    /**
     * The batches of epoch {@code epoch} from batch {@code first} on: the same batches a full pass gives from
     * there. Each iterator step reuses the arrays (see the class doc).
     *
     * @param epoch the epoch, {@code >= 0}
     * @param first the first batch, in {@code [0, batchCount()]} ({@code batchCount()} gives none)
     */
    public Iterable<Batch> epoch(int epoch, int first) {
        checkEpoch(epoch);
        if (first < 0 || first > batchCount) {
            throw new IllegalArgumentException("first is " + first + "; must be in [0, " + batchCount + "]");
        }
        return () -> new Iterator<>() {
            private int next = first;

            @Override
            public boolean hasNext() {
                return next < batchCount;
            }

            @Override
            public Batch next() {
                if (!hasNext()) {
                    throw new NoSuchElementException("epoch " + epoch + " has " + batchCount + " batches");
                }
                return batch(epoch, next++);
            }
        };
    }

    /**
     * Writes one normalized, possibly augmented image: {@code x[out + r·W + c] = src(r + dy, c' + dx)} with
     * {@code c' = W−1−c} when flipped, else {@code c}, and pixel 0 outside the image ({@code dy, dx} in
     * {@code [−padding, padding]}, drawn from {@code h}).
     */
    private void fillImage(float[] x, int out, int src, long h) {
        Augmentation aug = config.augmentation();
        if (aug.isNone()) {
            for (int i = 0; i < height * width; i++) {
                x[out + i] = normalized[pixels[src + i] & 0xff];
            }
            return;
        }
        int pad = aug.padding();
        int dy = Mix.below(h, 2 * pad + 1) - pad;
        int dx = Mix.below(h >>> 32, 2 * pad + 1) - pad;
        boolean flip = aug.flip() && (Mix.mix64(h) & 1) != 0;
        float zero = normalized[0];
        for (int r = 0; r < height; r++) {
            int o = out + r * width;
            int sr = r + dy;
            if (sr < 0 || sr >= height) {
                Arrays.fill(x, o, o + width, zero);
                continue;
            }
            int row = src + sr * width;
            for (int c = 0; c < width; c++) {
                int sc = (flip ? width - 1 - c : c) + dx;
                x[o + c] = sc >= 0 && sc < width ? normalized[pixels[row + sc] & 0xff] : zero;
            }
        }
    }

    /** The view these batches cut. */
    public DatasetView view() {
        return view;
    }

    /** The configuration. */
    public BatchConfig config() {
        return config;
    }
}
