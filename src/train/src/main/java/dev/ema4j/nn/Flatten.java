package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/** (N, C, H, W) → (N, C·H·W), a view without copying. */
public final class Flatten extends Layer {

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        return Shape.of(1, in.sampleSize());
    }

    @Override
    public void bind(Binding binding) {
        // nothing to allocate: a view
    }

    @Override
    public Tensor forward(Tensor x) {
        return x.reshape(output().withBatch(x.shape().n()));
    }

    @Override
    public Tensor backward(Tensor dy) {
        return dy.reshape(input().withBatch(dy.shape().n()));
    }
}
