package dev.ema4j.ops;

/**
 * The shape of an activation or parameter tensor, NCHW: {@code (n, c, h, w)}; 2-D tensors are {@code (n, c, 1, 1)}.
 *
 * @param n batch (or output channels for convolution weights)
 * @param c channels (or features)
 * @param h height
 * @param w width
 */
public record Shape(int n, int c, int h, int w) {

    public Shape {
        if (n < 0 || c < 0 || h < 0 || w < 0) {
            throw new IllegalArgumentException("shape " + n + "x" + c + "x" + h + "x" + w + " has a negative size");
        }
    }

    /** A 2-D shape {@code (n, c)}. */
    public static Shape of(int n, int c) {
        return new Shape(n, c, 1, 1);
    }

    /** Number of elements. */
    public int size() {
        return Math.multiplyExact(Math.multiplyExact(n, c), Math.multiplyExact(h, w));
    }

    /** Elements of one sample: {@code c·h·w}. */
    public int sampleSize() {
        return c * h * w;
    }

    /** This shape with batch {@code n}. */
    public Shape withBatch(int batch) {
        return new Shape(batch, c, h, w);
    }

    @Override
    public String toString() {
        return h == 1 && w == 1 ? n + "x" + c : n + "x" + c + "x" + h + "x" + w;
    }
}
