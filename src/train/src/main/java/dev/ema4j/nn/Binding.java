package dev.ema4j.nn;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import java.util.List;

/**
 * What a layer is bound to: the backend and its operations, the parameter store, the largest batch, the shared
 * {@link RunState}, and the list of activation buffers the network frees on close.
 */
public record Binding(Backend backend, NnOps ops, ParameterStore parameters, int maxBatch, RunState state,
                      List<DeviceBuffer> buffers) {

    /** A new buffer of exactly {@code shape}. */
    public Tensor tensor(Shape shape) {
        DeviceBuffer b = backend.allocate(DType.F32, shape.size());
        buffers.add(b);
        return Tensor.of(b, shape);
    }

    /** A new activation buffer holding {@code maxBatch} samples of {@code sample} (n = 1). */
    public Tensor activation(Shape sample) {
        DeviceBuffer b = backend.allocate(DType.F32, (long) maxBatch * sample.sampleSize());
        buffers.add(b);
        return Tensor.of(b, sample.withBatch(maxBatch));
    }
}
