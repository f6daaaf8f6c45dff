package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/**
 * A differentiable layer. A network {@linkplain #declare declares} its layers in order (each checks its input shape
 * and names its parameters), {@linkplain #bind binds} them to a backend (allocating activations for the largest
 * batch), then runs {@link #forward} and, in reverse order, {@link #backward}, which writes the parameters'
 * gradients and returns the input's.
 */
public abstract class Layer {

    private Shape input;
    private Shape output;
    private Binding binding;
    private Tensor outputs;
    private Tensor inputGradients;

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

    /**
     * Allocates what the passes need: by default an output buffer and an input-gradient buffer for the largest
     * batch ({@link #outputs}, {@link #inputGradients}); layers that need more call this and allocate the rest.
     */
    public void bind(Binding b) {
        binding = b;
        outputs = b.activation(output);
        inputGradients = b.activation(input);
    }

    /** The forward pass of a batch; the result stays valid until the next forward pass. */
    public abstract Tensor forward(Tensor x);

    /** The backward pass for the last forward batch: writes parameter gradients, returns the input gradient. */
    public abstract Tensor backward(Tensor dy);

    /** The binding of {@link #bind}. */
    protected Binding binding() {
        return binding;
    }

    /** The output buffer for a batch of {@code n}. */
    protected Tensor outputs(int n) {
        return outputs.withBatch(n);
    }

    /** The input-gradient buffer for a batch of {@code n}. */
    protected Tensor inputGradients(int n) {
        return inputGradients.withBatch(n);
    }

    /** The input shape of one sample (n = 1). */
    protected Shape input() {
        return input;
    }

    /** The output shape of one sample (n = 1). */
    protected Shape output() {
        return output;
    }
}
