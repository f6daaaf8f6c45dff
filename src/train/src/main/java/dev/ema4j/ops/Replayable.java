package dev.ema4j.ops;

/**
 * A pass that a backend may record once and replay with less host work (on CUDA: a captured CUDA graph, one launch
 * instead of one per kernel). Made by {@link NnOps#replayable()}, owned and closed by the caller.
 *
 * <pre>{@code
 * try (Replayable backward = ops.replayable()) {
 *     for (...) {
 *         backward.run(() -> body.backward(dlogits));   // the same work at every call
 *     }
 * }
 * }</pre>
 *
 * <p>The pass must issue the same operations on the same tensors, with the same shapes and scalars, at every call,
 * and have no effect but those operations: a replay runs the recorded operations without running the pass's Java
 * code. The results are those of running the pass.
 */
public interface Replayable extends AutoCloseable {

    /** Runs every pass as it is, recording nothing: the CPU's, and the fallback of every backend. */
    Replayable EAGER = new Replayable() {
        @Override
        public void run(Runnable pass) {
            pass.run();
        }

        @Override
        public void close() {
        }
    };

    /** Runs {@code pass}, or replays the operations it issued at an earlier call. */
    void run(Runnable pass);

    /** Frees what was recorded. */
    @Override
    void close();
}
