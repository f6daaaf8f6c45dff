package dev.ema4j.backend;

/**
 * Device-side state of the non-finite guard of {@link Backend#emaLerp}: a flag raised by the last guarded update
 * when it saw a NaN or infinite parameter (and so skipped), and the number of updates skipped so far. Reading
 * either waits for the device.
 */
public interface NonFiniteGuard extends AutoCloseable {

    /** Whether the last guarded update was skipped. Synchronizes. */
    boolean raised();

    /** Updates skipped so far. Synchronizes. */
    long skippedUpdates();

    /** Sets the skip counter (when resuming from saved state). */
    void setSkippedUpdates(long count);

    @Override
    void close();
}
