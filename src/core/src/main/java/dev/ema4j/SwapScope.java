package dev.ema4j;

/** An EMA shadow swapped into the parameters; {@link #close()} puts the live weights back, bit for bit. */
public interface SwapScope extends AutoCloseable {

    /** Restores the live weights. Idempotent. */
    @Override
    void close();
}
