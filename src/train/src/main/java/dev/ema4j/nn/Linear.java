package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/** {@code y = x·Wᵀ + b}: (N, I) → (N, O). */
public final class Linear extends Layer {

    private final int in;
    private final int out;
    private ParameterStore.Slot weight;
    private ParameterStore.Slot bias;
    private Tensor x;

    public Linear(int in, int out) {
        if (in < 1 || out < 1) {
            throw new IllegalArgumentException("linear " + in + "->" + out + ": sizes must be positive");
        }
        this.in = in;
        this.out = out;
    }

    @Override
    protected Shape declareParameters(String name, Shape input, ParameterStore.Builder p) {
        if (input.sampleSize() != in || input.h() != 1 || input.w() != 1) {
            throw new IllegalArgumentException(name + ": linear expects " + Shape.of(1, in) + ", input is " + input);
        }
        weight = p.parameter(name + ".weight", Shape.of(out, in), Init.fanIn(in));
        bias = p.parameter(name + ".bias", Shape.of(1, out), Init.fanIn(in));
        return Shape.of(1, out);
    }

    @Override
    public Tensor forward(Tensor input) {
        x = input;
        Tensor o = outputs(input.shape().n());
        ParameterStore p = binding().parameters();
        binding().ops().linearForward(input, p.value(weight), p.value(bias), o);
        return o;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor d = inputGradients(x.shape().n());
        ParameterStore p = binding().parameters();
        binding().ops().linearBackward(x, p.value(weight), dy, d, p.grad(weight), p.grad(bias));
        return d;
    }
}
