package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import java.util.List;

/** A 2-D convolution (cross-correlation, as PyTorch), {@code k×k} kernel, with or without bias. */
public final class Conv2d extends Layer {

    private final int inChannels;
    private final int outChannels;
    private final int kernel;
    private final int stride;
    private final int pad;
    private final boolean hasBias;
    private ParameterStore.Slot weight;
    private ParameterStore.Slot bias;
    private Tensor x;

    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int pad, boolean bias) {
        if (inChannels < 1 || outChannels < 1 || kernel < 1 || stride < 1 || pad < 0) {
            throw new IllegalArgumentException("conv " + inChannels + "->" + outChannels + " kernel " + kernel
                    + " stride " + stride + " pad " + pad + ": sizes must be positive, pad >= 0");
        }
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.kernel = kernel;
        this.stride = stride;
        this.pad = pad;
        this.hasBias = bias;
    }

    /** A 3×3 convolution with padding 1 and no bias. */
    public static Conv2d conv3x3(int in, int out, int stride) {
        return new Conv2d(in, out, 3, stride, 1, false);
    }

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        if (in.c() != inChannels) {
            throw new IllegalArgumentException(name + ": conv expects " + inChannels + " input channels, input is "
                    + in);
        }
        int h = (in.h() + 2 * pad - kernel) / stride + 1;
        int w = (in.w() + 2 * pad - kernel) / stride + 1;
        if (h < 1 || w < 1) {
            throw new IllegalArgumentException(name + ": input " + in + " is smaller than the " + kernel + "x"
                    + kernel + " kernel");
        }
        int fanIn = inChannels * kernel * kernel;
        weight = p.parameter(name + ".weight", new Shape(outChannels, inChannels, kernel, kernel), Init.fanIn(fanIn),
                List.of((long) outChannels, (long) inChannels, (long) kernel, (long) kernel));
        if (hasBias) {
            bias = p.parameter(name + ".bias", Shape.of(1, outChannels), Init.fanIn(fanIn));
        }
        return new Shape(1, outChannels, h, w);
    }

    @Override
    public Tensor forward(Tensor input) {
        x = input;
        Tensor out = outputs(input.shape().n());
        ParameterStore p = binding().parameters();
        binding().ops().conv2dForward(input, p.value(weight), hasBias ? p.value(bias) : null, out, stride, pad);
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor d = inputGradients(x.shape().n());
        ParameterStore p = binding().parameters();
        binding().ops().conv2dBackward(x, p.value(weight), dy, d, p.grad(weight), hasBias ? p.grad(bias) : null,
                stride, pad);
        return d;
    }
}
