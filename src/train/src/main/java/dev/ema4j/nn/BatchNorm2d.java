package dev.ema4j.nn;

import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;

/**
 * BatchNorm over (N, H, W) per channel, as PyTorch's {@code BatchNorm2d} (momentum 0.1, eps 1e-5), optionally
 * fused with the ReLU that follows it; its behaviour follows the network's {@link RunState.Mode}. Running mean and
 * variance are statistics of the parameter store.
 */
public final class BatchNorm2d extends Layer {

    private final int channels;
    private final double momentum;
    private final double eps;
    private final boolean relu;
    private ParameterStore.Slot gamma;
    private ParameterStore.Slot beta;
    private ParameterStore.Slot runningMean;
    private ParameterStore.Slot runningVar;
    private Tensor saveMean;
    private Tensor saveInvStd;
    private Tensor x;

    public BatchNorm2d(int channels) {
        this(channels, 0.1, 1e-5, false);
    }

    /** BatchNorm followed by ReLU, in one pass each way. */
    public static BatchNorm2d withRelu(int channels) {
        return new BatchNorm2d(channels, 0.1, 1e-5, true);
    }

    public BatchNorm2d(int channels, double momentum, double eps, boolean relu) {
        if (channels < 1 || !(momentum >= 0 && momentum <= 1) || !(eps > 0)) {
            throw new IllegalArgumentException("batch norm of " + channels + " channels, momentum " + momentum
                    + ", eps " + eps + ": need channels >= 1, momentum in [0, 1], eps > 0");
        }
        this.channels = channels;
        this.momentum = momentum;
        this.eps = eps;
        this.relu = relu;
    }

    @Override
    protected Shape declareParameters(String name, Shape in, ParameterStore.Builder p) {
        if (in.c() != channels) {
            throw new IllegalArgumentException(name + ": batch norm of " + channels + " channels, input is " + in);
        }
        Shape c = Shape.of(1, channels);
        gamma = p.parameter(name + ".weight", c, Init.ones());
        beta = p.parameter(name + ".bias", c, Init.zeros());
        runningMean = p.statistic(name + ".running_mean", c, Init.zeros());
        runningVar = p.statistic(name + ".running_var", c, Init.ones());
        return in;
    }

    @Override
    public void bind(Binding binding) {
        super.bind(binding);
        saveMean = binding.tensor(Shape.of(1, channels));
        saveInvStd = binding.tensor(Shape.of(1, channels));
    }

    @Override
    public Tensor forward(Tensor input) {
        x = input;
        Tensor out = outputs(input.shape().n());
        Binding b = binding();
        ParameterStore p = b.parameters();
        if (b.state().mode() == RunState.Mode.EVAL) {
            b.ops().batchNormForwardEval(input, p.value(gamma), p.value(beta), p.value(runningMean),
                    p.value(runningVar), out, eps, relu);
        } else {
            b.ops().batchNormForwardTrain(input, p.value(gamma), p.value(beta), out, saveMean, saveInvStd,
                    p.value(runningMean), p.value(runningVar), b.state().statisticsMomentum(momentum), eps, relu);
        }
        return out;
    }

    @Override
    public Tensor backward(Tensor dy) {
        int n = x.shape().n();
        Tensor d = inputGradients(n);
        ParameterStore p = binding().parameters();
        binding().ops().batchNormBackward(x, p.value(gamma), saveMean, saveInvStd, relu ? outputs(n) : null, dy, d,
                p.grad(gamma), p.grad(beta));
        return d;
    }
}
