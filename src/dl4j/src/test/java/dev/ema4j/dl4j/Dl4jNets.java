package dev.ema4j.dl4j;

import java.lang.reflect.Proxy;
import java.util.Map;
import java.util.function.Supplier;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/** Small networks and data for the tests: 6×6 single-channel inputs, 3 classes. */
final class Dl4jNets {

    static final int SIDE = 6;
    static final int CLASSES = 3;

    private Dl4jNets() {
    }

    /**
     * conv 3×3 (4) → BN (log10stdev) → ReLU → dense (5) → BN (var) → ReLU → softmax (3): a convolution (whose
     * bias precedes its weights in memory), both kinds of BatchNorm statistics, 'c' and 'f' ordered weights.
     */
    static MultiLayerNetwork cnn(long seed, CNN2DFormat format) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().seed(seed).dataType(DataType.FLOAT)
                .updater(new Adam(1e-2))
                .list()
                .layer(new ConvolutionLayer.Builder(3, 3).nOut(4).dataFormat(format).activation(Activation.IDENTITY)
                        .build())
                .layer(new BatchNormalization.Builder().dataFormat(format).build())
                .layer(new ActivationLayer(Activation.RELU))
                .layer(new DenseLayer.Builder().nOut(5).activation(Activation.IDENTITY).build())
                .layer(new BatchNormalization.Builder().useLogStd(false).build())
                .layer(new ActivationLayer(Activation.RELU))
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nOut(CLASSES)
                        .activation(Activation.SOFTMAX).build())
                .setInputType(format == CNN2DFormat.NCHW ? InputType.convolutionalFlat(SIDE, SIDE, 1)
                        : InputType.convolutional(SIDE, SIDE, 1, format))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    static MultiLayerNetwork cnn(long seed) {
        return cnn(seed, CNN2DFormat.NCHW);
    }

    /** BatchNorm first, on flat input shaped as an image by a preprocessor, then dense layers. */
    static MultiLayerNetwork batchNormFirst(long seed) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().seed(seed).dataType(DataType.FLOAT)
                .updater(new Adam(1e-2))
                .list()
                .layer(new BatchNormalization.Builder().build())
                .layer(new DenseLayer.Builder().nOut(7).activation(Activation.TANH).build())
                .layer(new BatchNormalization.Builder().build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nOut(CLASSES)
                        .activation(Activation.SOFTMAX).build())
                .setInputType(InputType.convolutionalFlat(SIDE, SIDE, 1))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** A dense network without BatchNorm. */
    static MultiLayerNetwork dense(long seed) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().seed(seed).dataType(DataType.FLOAT)
                .updater(new Adam(1e-2))
                .list()
                .layer(new DenseLayer.Builder().nOut(4).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nOut(CLASSES)
                        .activation(Activation.SOFTMAX).build())
                .setInputType(InputType.feedForward(SIDE * SIDE))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** Random inputs {@code [n, 36]} in [0, 1), in a fixed sequence per seed. */
    static INDArray features(int n, long seed) {
        Nd4j.getRandom().setSeed(seed);
        return Nd4j.rand(DataType.FLOAT, n, SIDE * SIDE);
    }

    /** One-hot labels {@code [n, 3]}, class {@code i % 3}. */
    static INDArray labels(int n) {
        INDArray y = Nd4j.zeros(DataType.FLOAT, n, CLASSES);
        for (int i = 0; i < n; i++) {
            y.putScalar(i, i % CLASSES, 1f);
        }
        return y;
    }

    /** Fits {@code steps} batches of 16 random examples. */
    static void train(MultiLayerNetwork net, int steps, long seed) {
        for (int s = 0; s < steps; s++) {
            net.fit(input(net, features(16, seed + s)), labels(16));
        }
    }

    /** {@code flat} as {@code net} takes it: as is, or {@code [n, 6, 6, 1]} for the NHWC network. */
    static INDArray input(MultiLayerNetwork net, INDArray flat) {
        boolean image = net.getLayerWiseConfigurations().getInputPreProcess(0) == null
                && net.getLayer(0) instanceof org.deeplearning4j.nn.layers.convolution.ConvolutionLayer;
        return image ? flat.reshape('c', flat.size(0), SIDE, SIDE, 1) : flat;
    }

    /**
     * A {@link Model} whose {@code params()} and {@code paramTable()} are whatever {@code params} and {@code table}
     * give at each call: for the cases no real network produces (replaced, strided or workspace memory).
     */
    static Model model(Supplier<INDArray> params, Supplier<Map<String, INDArray>> table) {
        return (Model) Proxy.newProxyInstance(Dl4jNets.class.getClassLoader(), new Class<?>[] {Model.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "params" -> params.get();
                    case "paramTable" -> table.get();
                    case "toString" -> "proxy model";
                    case "hashCode" -> System.identityHashCode(proxy);
                    case "equals" -> proxy == args[0];
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }
}
