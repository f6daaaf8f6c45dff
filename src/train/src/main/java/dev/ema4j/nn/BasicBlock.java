package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import java.util.List;

/**
 * The residual basic block of ResNet: {@code relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))}, 3×3 convolutions,
 * the first with stride {@code stride}; the shortcut is the identity, or a 1×1 convolution with BatchNorm when the
 * stride or the channel count changes.
 */
public final class BasicBlock extends Layer {

    private final Sequential main;
    private final Sequential shortcut;
    private Tensor sum;
    private Tensor x;

    public BasicBlock(int in, int out, int stride) {
        main = new Sequential(List.of(Conv2d.conv3x3(in, out, stride), BatchNorm2d.withRelu(out),
                Conv2d.conv3x3(out, out, 1), new BatchNorm2d(out)), List.of("conv1", "bn1", "conv2", "bn2"));
        shortcut = stride == 1 && in == out ? null
                : new Sequential(List.of(new Conv2d(in, out, 1, stride, 0, false), new BatchNorm2d(out)),
                List.of("0", "1"));
    }

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        Shape out = main.declare(name, in, p);
        if (shortcut != null) {
            Shape s = shortcut.declare(name + ".shortcut", in, p);
            if (!s.equals(out)) {
                throw new IllegalArgumentException(name + ": shortcut gives " + s + ", main path " + out);
            }
        } else if (!in.equals(out)) {
            throw new IllegalArgumentException(name + ": identity shortcut of " + in + " cannot add to " + out);
        }
        return out;
    }

    @Override
    public void bind(Binding binding) {
        super.bind(binding);
        main.bind(binding);
        if (shortcut != null) {
            shortcut.bind(binding);
        }
        sum = binding.activation(output());
    }

    @Override
    public Tensor forward(Tensor input) {
        x = input;
        int n = input.shape().n();
        Tensor m = main.forward(input);
        Tensor s = shortcut == null ? input : shortcut.forward(input);
        Tensor added = sum.withBatch(n);
        binding().ops().add(m, s, added);
        Tensor out = outputs(n);
        binding().ops().reluForward(added, out);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        int n = x.shape().n();
        Tensor dSum = sum.withBatch(n);
        binding().ops().reluBackward(outputs(n), dy, dSum);
        Tensor dMain = main.backward(dSum);
        Tensor d = inputGradients(n);
        binding().ops().add(dMain, shortcut == null ? dSum : shortcut.backward(dSum), d);
        return d;
    }
}
