package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/** Max pooling over {@code k×k} windows with stride {@code k}. */
public final class MaxPool2d extends Layer {

    private final int k;
    private Tensor argmax;
    private Tensor x;

    public MaxPool2d(int k) {
        if (k < 1) {
            throw new IllegalArgumentException("pool size is " + k + "; must be >= 1");
        }
        this.k = k;
    }

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        if (in.h() < k || in.w() < k) {
            throw new IllegalArgumentException(name + ": max pool " + k + "x" + k + " of input " + in);
        }
        return new Shape(1, in.c(), in.h() / k, in.w() / k);
    }

    @Override
    public void bind(Binding binding) {
        super.bind(binding);
        argmax = binding.activation(output());
    }

    @Override
    public Tensor forward(Tensor input) {
        x = input;
        Tensor out = outputs(input.shape().n());
        binding().ops().maxPoolForward(input, out, argmax.withBatch(input.shape().n()), k);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        int n = x.shape().n();
        Tensor d = inputGradients(n);
        binding().ops().maxPoolBackward(argmax.withBatch(n), dy, d, k);
        return d;
    }
}
