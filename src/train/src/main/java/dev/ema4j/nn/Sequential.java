package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import java.util.List;

/** Layers applied in order; child {@code i} is named {@code <name>.<i>} unless given names. */
public final class Sequential extends Layer {

    private final List<Layer> layers;
    private final List<String> names;

    /** Children named by position. */
    public Sequential(List<Layer> layers) {
        this(layers, java.util.stream.IntStream.range(0, layers.size()).mapToObj(String::valueOf).toList());
    }

    /** Children with names. */
    public Sequential(List<Layer> layers, List<String> names) {
        if (layers.isEmpty() || layers.size() != names.size()) {
            throw new IllegalArgumentException("sequential needs at least one layer and one name per layer, got "
                    + layers.size() + " layers, " + names.size() + " names");
        }
        this.layers = List.copyOf(layers);
        this.names = List.copyOf(names);
    }

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        Shape s = in;
        for (int i = 0; i < layers.size(); i++) {
            s = layers.get(i).declare(name.isEmpty() ? names.get(i) : name + "." + names.get(i), s, p);
        }
        return s;
    }

    @Override
    public void bind(Binding binding) {
        layers.forEach(l -> l.bind(binding));
    }

    @Override
    public Tensor forward(Tensor x) {
        Tensor t = x;
        for (Layer l : layers) {
            t = l.forward(t);
        }
        return t;
    }

    /** The forward pass through the first {@code count} layers only. */
    public Tensor forwardPrefix(Tensor x, int count) {
        if (count < 0 || count > layers.size()) {
            throw new IllegalArgumentException("count is " + count + "; this sequential has " + layers.size()
                    + " layers");
        }
        Tensor t = x;
        for (int i = 0; i < count; i++) {
            t = layers.get(i).forward(t);
        }
        return t;
    }

    /** Number of layers. */
    public int size() {
        return layers.size();
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor t = dy;
        for (int i = layers.size() - 1; i >= 0; i--) {
            t = layers.get(i).backward(t);
        }
        return t;
    }
}
