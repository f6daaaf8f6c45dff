package dev.ema4j.data;

import java.util.Objects;

/**
 * How {@link Batches} cuts a view into mini-batches.
 *
 * <pre>{@code
 * BatchConfig.training(128, 42).withAugmentation(new Augmentation(4, true))   // shuffled, augmented
 * BatchConfig.evaluation(1000)                                                // in order, plain
 * }</pre>
 *
 * @param batchSize samples per batch, {@code >= 1}
 * @param shuffle whether each epoch visits the samples in a seeded random order (else in view order)
 * @param dropLast whether to drop the last batch when it would be smaller than {@code batchSize}
 * @param seed the seed of the shuffling and augmentation
 * @param normalization pixels become {@code (pixel/255 − mean)/std}; std must be {@code > 0}
 * @param augmentation random crop and flip; {@link Augmentation#NONE} for none
 */
public record BatchConfig(int batchSize, boolean shuffle, boolean dropLast, long seed, PixelStats normalization,
        Augmentation augmentation) {

    public BatchConfig {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize is " + batchSize + "; must be >= 1");
        }
        Objects.requireNonNull(normalization, "normalization");
        if (normalization.std() == 0) {
            throw new IllegalArgumentException("normalization std is 0; must be > 0");
        }
        Objects.requireNonNull(augmentation, "augmentation");
    }

    /** Shuffled batches keeping the last partial one, Fashion-MNIST normalization, no augmentation. */
    public static BatchConfig training(int batchSize, long seed) {
        return new BatchConfig(batchSize, true, false, seed, FashionMnist.STATS, Augmentation.NONE);
    }

    /** Batches in view order keeping the last partial one, Fashion-MNIST normalization, no augmentation. */
    public static BatchConfig evaluation(int batchSize) {
        return new BatchConfig(batchSize, false, false, 0, FashionMnist.STATS, Augmentation.NONE);
    }

    /** This configuration with another drop-last choice. */
    public BatchConfig withDropLast(boolean drop) {
        return new BatchConfig(batchSize, shuffle, drop, seed, normalization, augmentation);
    }

    /** This configuration with other normalization statistics. */
    public BatchConfig withNormalization(PixelStats stats) {
        return new BatchConfig(batchSize, shuffle, dropLast, seed, stats, augmentation);
    }

    /** This configuration with another augmentation. */
    public BatchConfig withAugmentation(Augmentation augment) {
        return new BatchConfig(batchSize, shuffle, dropLast, seed, normalization, augment);
    }
}
