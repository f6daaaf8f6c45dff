package dev.ema4j.nn;

/** The mode of the passes, shared by all layers of a network. */
public final class RunState {

    /** How BatchNorm layers behave. */
    public enum Mode {
        /** Normalize with batch statistics; update the running statistics with the layer's momentum. */
        TRAIN,
        /** Normalize with the running statistics. */
        EVAL,
        /**
         * Normalize with batch statistics; make the running statistics the equal-weight average of every batch
         * since {@link #startRecompute()} (momentum {@code 1/(k+1)} at batch k).
         */
        RECOMPUTE
    }

    private Mode mode = Mode.TRAIN;
    private long recomputedBatches;

    public Mode mode() {
        return mode;
    }

    public void setMode(Mode mode) {
        this.mode = java.util.Objects.requireNonNull(mode, "mode");
    }

    /** Enters {@link Mode#RECOMPUTE} with no batch seen. */
    public void startRecompute() {
        mode = Mode.RECOMPUTE;
        recomputedBatches = 0;
    }

    /** The running-statistics momentum of the current batch for a layer whose own momentum is {@code momentum}. */
    double statisticsMomentum(double momentum) {
        return mode == Mode.RECOMPUTE ? 1.0 / (recomputedBatches + 1) : momentum;
    }

    /** Called by the network after each forward pass. */
    void batchDone() {
        if (mode == Mode.RECOMPUTE) {
            recomputedBatches++;
        }
    }
}
