package dev.ema4j.nn;

/** The mean over (H, W) per channel: (N, C, H, W) → (N, C). */
public final class GlobalAvgPool extends Layer {

    private Binding b;
    private Tensor y;
    private Tensor dx;

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        return Shape.of(1, in.c());
    }

    @Override
    public void bind(Binding binding) {
        b = binding;
        y = binding.activation(output());
        dx = binding.activation(input());
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor out = y.withBatch(x.shape().n());
        b.ops().globalAvgPoolForward(x, out);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor d = dx.withBatch(dy.shape().n());
        b.ops().globalAvgPoolBackward(dy, d);
        return d;
    }
}
