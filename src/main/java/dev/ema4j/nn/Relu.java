package dev.ema4j.nn;

/** {@code max(x, 0)}. */
public final class Relu extends Layer {

    private Binding b;
    private Tensor y;
    private Tensor dx;

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        return in;
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
        b.ops().reluForward(x, out);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        int n = dy.shape().n();
        Tensor d = dx.withBatch(n);
        b.ops().reluBackward(y.withBatch(n), dy, d);
        return d;
    }
}
