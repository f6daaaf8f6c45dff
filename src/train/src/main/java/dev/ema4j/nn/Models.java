package dev.ema4j.nn;

import java.util.ArrayList;
import java.util.List;

/** The model families of the experiments, for 1-channel 28×28 inputs (Fashion-MNIST) or any size they divide. */
public final class Models {

    private Models() {
    }

    /**
     * {@code SmallCnn(w)} (BatchNorm and ReLU fused): [conv3x3(in→w)+BN+ReLU, conv3x3(w→w)+BN+ReLU, maxpool2, conv3x3(w→2w)+BN+ReLU,
     * conv3x3(2w→2w)+BN+ReLU, maxpool2, global average pool, linear(2w→classes)], convolutions without bias.
     */
    public static Layer smallCnn(int width, int classes) {
        return smallCnn(1, width, classes);
    }

    /** {@link #smallCnn(int, int)} for inputs of {@code inChannels} channels. */
    public static Layer smallCnn(int inChannels, int width, int classes) {
        int w = width;
        return new Sequential(List.of(
                Conv2d.conv3x3(inChannels, w, 1), BatchNorm2d.withRelu(w),
                Conv2d.conv3x3(w, w, 1), BatchNorm2d.withRelu(w),
                new MaxPool2d(2),
                Conv2d.conv3x3(w, 2 * w, 1), BatchNorm2d.withRelu(2 * w),
                Conv2d.conv3x3(2 * w, 2 * w, 1), BatchNorm2d.withRelu(2 * w),
                new MaxPool2d(2),
                new GlobalAvgPool(),
                new Linear(2 * w, classes)),
                List.of("conv1", "bn1", "conv2", "bn2", "pool1", "conv3", "bn3", "conv4", "bn4", "pool2", "gap", "fc"));
    }

    /**
     * {@link #smallCnn(int, int)} without BatchNorm: each convolution has a bias and is followed by a ReLU. For
     * comparing EMAs of a network with no statistics to recompute.
     */
    public static Layer smallCnnNoBatchNorm(int width, int classes) {
        int w = width;
        return new Sequential(List.of(
                new Conv2d(1, w, 3, 1, 1, true), new Relu(),
                new Conv2d(w, w, 3, 1, 1, true), new Relu(),
                new MaxPool2d(2),
                new Conv2d(w, 2 * w, 3, 1, 1, true), new Relu(),
                new Conv2d(2 * w, 2 * w, 3, 1, 1, true), new Relu(),
                new MaxPool2d(2),
                new GlobalAvgPool(),
                new Linear(2 * w, classes)),
                List.of("conv1", "relu1", "conv2", "relu2", "pool1", "conv3", "relu3", "conv4", "relu4", "pool2", "gap",
                        "fc"));
    }

    /**
     * A CIFAR-style ResNet of depth {@code 6n + 2} (8, 14, 20, …): conv3x3(in→w)+BN+ReLU, three stages of n
     * {@link BasicBlock}s of widths w, 2w, 4w (the second and third start with stride 2), global average pool,
     * linear(4w→classes).
     */
    public static Layer resnet(int depth, int width, int classes) {
        if (depth < 8 || (depth - 2) % 6 != 0) {
            throw new IllegalArgumentException("ResNet depth is " + depth + "; must be 6n + 2 >= 8 (8, 14, 20, ...)");
        }
        int blocks = (depth - 2) / 6;
        List<Layer> layers = new ArrayList<>(List.of(Conv2d.conv3x3(1, width, 1), BatchNorm2d.withRelu(width)));
        List<String> names = new ArrayList<>(List.of("conv1", "bn1"));
        int in = width;
        for (int stage = 0; stage < 3; stage++) {
            int out = width << stage;
            List<Layer> stageBlocks = new ArrayList<>();
            for (int b = 0; b < blocks; b++) {
                stageBlocks.add(new BasicBlock(in, out, b == 0 && stage > 0 ? 2 : 1));
                in = out;
            }
            layers.add(new Sequential(stageBlocks));
            names.add("layer" + (stage + 1));
        }
        layers.add(new GlobalAvgPool());
        layers.add(new Linear(in, classes));
        names.add("gap");
        names.add("fc");
        return new Sequential(layers, names);
    }
}
