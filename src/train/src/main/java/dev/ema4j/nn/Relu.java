package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/** {@code max(x, 0)}. */
public final class Relu extends Layer {

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        return in;
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor out = outputs(x.shape().n());
        binding().ops().reluForward(x, out);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        int n = dy.shape().n();
        Tensor d = inputGradients(n);
        binding().ops().reluBackward(outputs(n), dy, d);
        return d;
    }
}
