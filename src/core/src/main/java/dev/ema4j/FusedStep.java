package dev.ema4j;

import dev.ema4j.backend.DeviceBuffer;
import java.util.List;

/**
 * An optimizer step that can fold an EMA update into its own pass over memory ({@link GpuEma#stepAndUpdate}),
 * reading each parameter once for the step and every shadow: the training module's fused SGD step is one.
 */
public interface FusedStep {

    /** Runs the optimizer step alone. */
    void step();

    /**
     * Runs the optimizer step and, in the same pass, moves every shadow toward the new parameters with the update
     * of {@link dev.ema4j.backend.Backend#emaLerp}: shadow {@code k} with weight {@code weights[k]}, bit for bit what
     * {@link #step()} followed by {@code emaLerp} computes.
     *
     * @param shadows modified: the EMA's F32 shadows, laid out like the parameters
     * @param weights {@code w_k = 1 − decay_k}, one per shadow
     */
    void stepAndUpdate(List<DeviceBuffer> shadows, float[] weights);
}
