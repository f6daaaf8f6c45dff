package dev.ema4j.ops;

/**
 * The geometry of one convolution: input {@code (n, c, h, w)}, weights {@code (k, c, r, s)}, output
 * {@code (n, k, p, q)} with {@code p = (h + 2·pad − r)/stride + 1}, {@code q} likewise.
 */
public record ConvGeometry(int n, int c, int h, int w, int k, int r, int s, int p, int q, int stride, int pad) {

    /** Rows of the unfolded input (im2col): {@code c·r·s}. */
    public int rows() {
        return c * r * s;
    }

    /** Columns of one image's unfolded input: {@code p·q}. */
    public int cols() {
        return p * q;
    }
}
