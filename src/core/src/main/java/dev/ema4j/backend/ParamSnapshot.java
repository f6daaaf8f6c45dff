package dev.ema4j.backend;

/** A bit-exact copy of a parameter set's values (see {@link Backend#snapshot}). */
public interface ParamSnapshot extends AutoCloseable {

    /** Writes the saved values back into the parameters. */
    void restore();

    /** Frees the copy. Idempotent. */
    @Override
    void close();
}
