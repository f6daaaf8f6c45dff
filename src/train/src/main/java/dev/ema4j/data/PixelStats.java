package dev.ema4j.data;

/**
 * Mean and standard deviation of pixel values scaled to [0, 1] ({@code pixel/255}); as batch normalization
 * parameters they map a pixel to {@code (pixel/255 − mean)/std}.
 *
 * @param mean the mean, finite
 * @param std the (population) standard deviation, finite and {@code >= 0}
 */
public record PixelStats(double mean, double std) {

    public PixelStats {
        if (!Double.isFinite(mean)) {
            throw new IllegalArgumentException("mean is " + mean + "; must be finite");
        }
        if (!(std >= 0 && Double.isFinite(std))) {
            throw new IllegalArgumentException("std is " + std + "; must be finite and >= 0");
        }
    }

    /** The normalized value of a pixel: {@code (pixel/255 − mean)/std}, computed in double, rounded once. */
    public float normalize(int pixel) {
        return (float) ((pixel / 255.0 - mean) / std);
    }
}
