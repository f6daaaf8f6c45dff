package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/** The mean over (H, W) per channel: (N, C, H, W) → (N, C). */
public final class GlobalAvgPool extends Layer {

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        return Shape.of(1, in.c());
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor out = outputs(x.shape().n());
        binding().ops().globalAvgPoolForward(x, out);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor d = inputGradients(dy.shape().n());
        binding().ops().globalAvgPoolBackward(dy, d);
        return d;
    }
}
