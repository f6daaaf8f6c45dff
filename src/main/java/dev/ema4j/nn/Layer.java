package dev.ema4j.nn;

/**
 * A differentiable layer. A network {@linkplain #declare declares} its layers in order (each checks its input shape
 * and names its parameters), {@linkplain #bind binds} them to a backend (allocating activations for the largest
 * batch), then runs {@link #forward} and, in reverse order, {@link #backward}, which writes the parameters'
 * gradients and returns the input's.
 */
public abstract class Layer {

    private Shape input;
    private Shape output;

    /**
     * Checks {@code input} (the shape of one batch with n = 1), declares the parameters under {@code name} and
     * returns the output shape.
     *
     * @throws IllegalArgumentException naming both shapes when the input does not fit
     */
    public final Shape declare(String name, Shape input, ParameterStore.Builder parameters) {
        this.input = input;
        this.output = declareParameters(name, input, parameters);
        return output;
    }

    /** Declares the parameters and returns the output shape for {@code input}. */
    protected abstract Shape declareParameters(String name, Shape input, ParameterStore.Builder parameters);

    /** Allocates what the passes need. */
    public abstract void bind(Binding binding);

    /** The forward pass of a batch; the result stays valid until the next forward pass. */
    public abstract Tensor forward(Tensor x);

    /** The backward pass for the last forward batch: writes parameter gradients, returns the input gradient. */
    public abstract Tensor backward(Tensor dy);

    /** The input shape of one sample (n = 1). */
    protected Shape input() {
        return input;
    }

    /** The output shape of one sample (n = 1). */
    protected Shape output() {
        return output;
    }
}
