package dev.ema4j.backend;


/**
 * A parameter set bound to a backend: its {@linkplain ParamLayout layout} and launch plan. Created by
 * {@link Backend#bind}; closing it frees the plan (never the parameters). Use after close throws
 * {@link IllegalStateException}.
 */
public interface ParamTable extends AutoCloseable {

    /** The parameter set this table was built for. */
    Params params();

    /** The layout of the parameters in shadow buffers. */
    ParamLayout layout();

    /** Whether this table describes exactly the storage of {@code other} (same arrays, buffers or pointers). */
    default boolean bindsSameStorage(Params other) {
        return params().sameStorage(other);
    }

    @Override
    void close();
}
