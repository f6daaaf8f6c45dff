package dev.ema4j.nn;

import dev.ema4j.FusedStep;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.ops.NnOps;
import dev.ema4j.optim.Sgd;
import java.util.List;
import java.util.Objects;

/**
 * One {@link Sgd} step over flat buffers that can fold an EMA update into its pass ({@link NnOps#sgdEmaStep}):
 * hand it to {@link dev.ema4j.GpuEma#stepAndUpdate} and the step and the update read and write each array once.
 *
 * <pre>{@code
 * ema.stepAndUpdate(Params.of(params), new FusedSgdStep(ops, params, grads, momentum, sgd, lr));
 * }</pre>
 *
 * @param ops the backend's operations ({@link TrainingOps#of})
 * @param params modified
 * @param grads read
 * @param momentum modified
 * @param sgd the optimizer
 * @param lr the learning rate of this step
 */
public record FusedSgdStep(NnOps ops, DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum, Sgd sgd,
                           double lr) implements FusedStep {

    public FusedSgdStep {
        Objects.requireNonNull(ops, "ops");
        Objects.requireNonNull(sgd, "sgd");
    }

    @Override
    public void step() {
        ops.sgdStep(params, grads, momentum, sgd, lr);
    }

    @Override
    public void stepAndUpdate(List<DeviceBuffer> shadows, float[] weights) {
        ops.sgdEmaStep(params, grads, momentum, sgd, lr, shadows, weights);
    }
}
