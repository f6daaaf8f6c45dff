package dev.ema4j;

/** What an update does when a parameter is NaN or infinite. */
public enum NonFinitePolicy {
    /**
     * Skip the update: every shadow keeps its value and the skip is counted in {@link EmaStats#skippedUpdates()}.
     * Decided on the device, without host synchronization; costs one extra read of the parameters.
     */
    SKIP,
    /** As {@link #SKIP}, then throw {@link NonFiniteParametersException}; waits for the device on every update. */
    THROW,
    /** No check: non-finite parameters propagate into the shadows. The fastest. */
    IGNORE
}
