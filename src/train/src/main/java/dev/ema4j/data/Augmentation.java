package dev.ema4j.data;

/**
 * Random training augmentation: pad each image by {@code padding} pixels of value 0 on every side and crop
 * the original size at a random offset, then, if {@code flip}, mirror it left to right with probability 1/2.
 * The choices for a sample are a pure function of (seed, epoch, position in the view); see {@link Batches}.
 *
 * @param padding pixels of zero padding per side, {@code >= 0}; 0 disables cropping
 * @param flip whether to flip horizontally with probability 1/2
 */
public record Augmentation(int padding, boolean flip) {

    /** No augmentation. */
    public static final Augmentation NONE = new Augmentation(0, false);

    public Augmentation {
        if (padding < 0) {
            throw new IllegalArgumentException("padding is " + padding + "; must be >= 0");
        }
    }

    /** Whether this augmentation changes anything. */
    public boolean isNone() {
        return padding == 0 && !flip;
    }
}
