package dev.ema4j.dl4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayer;
import org.deeplearning4j.nn.conf.layers.wrapper.BaseWrapperLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;

/**
 * Recomputes the running statistics of every {@code BatchNormalization} layer for the network's current weights,
 * as PyTorch's {@code torch.optim.swa_utils.update_bn} does: forward passes in training mode (each BatchNorm layer
 * normalizes with its batch's statistics, dropout is active) over batches of training data, the weights unchanged.
 * Each layer's mean becomes the average of its input's per-batch means, its variance the average of the per-batch
 * biased variances (what DL4J's own running estimate tracks), every batch weighted equally; a layer with
 * {@code useLogStd} stores {@code log10(sqrt(var))}. Only the statistics change.
 *
 * <p>For an EMA, recompute inside a swap scope of an EMA that averages the statistics ({@link BatchNormStats#AVERAGE}),
 * so that closing the scope restores the live weights and statistics alike:
 * <pre>{@code
 * try (SwapScope s = ema.swapInto(weights.params())) {
 *     BatchNormRecompute.recompute(net, trainBatches, 50);     // statistics of the EMA weights
 *     evaluate(net);
 * }
 * }</pre>
 * Under {@link BatchNormStats#EXCLUDE} the scope does not hold the statistics, and recomputing overwrites the live
 * ones for good.
 *
 * <p>Supports BatchNorm inputs of rank 2 (dense) and 4 (convolutional, NCHW or NHWC) and networks with one input.
 */
public final class BatchNormRecompute {

    private BatchNormRecompute() {
    }

    /**
     * Recomputes the BatchNorm statistics of {@code net} from up to {@code maxBatches} batches of {@code batches},
     * read from its current position (labels are not used).
     *
     * @param net modified: the running mean and variance (or {@code log10stdev}) of each BatchNorm layer
     * @return the number of batches read; 0 if {@code net} has no BatchNorm layer (nothing is read then)
     * @throws IllegalArgumentException if {@code maxBatches < 1}, {@code batches} is empty, or a BatchNorm layer's
     *     input has a rank other than 2 or 4
     */
    public static int recompute(MultiLayerNetwork net, DataSetIterator batches, int maxBatches) {
        Objects.requireNonNull(net, "net");
        Layer[] layers = requireLayers(net.getLayers(), net);
        List<Target<List<INDArray>>> targets = new ArrayList<>();
        for (int i = 0; i < layers.length; i++) {
            BatchNormalization conf = batchNorm(layers[i]);
            if (conf != null) {
                int index = i;
                InputPreProcessor pre = net.getLayerWiseConfigurations().getInputPreProcess(i);
                targets.add(new Target<>("layer " + i, layers[i], conf, pre, acts -> acts.get(index)));
            }
        }
        return run(targets, batches, maxBatches, x -> net.feedForward(x, true));
    }

    /**
     * Recomputes the BatchNorm statistics of a graph with one input, like
     * {@link #recompute(MultiLayerNetwork, DataSetIterator, int)}.
     *
     * @param graph modified: the running mean and variance (or {@code log10stdev}) of each BatchNorm layer
     * @return the number of batches read; 0 if {@code graph} has no BatchNorm layer
     * @throws IllegalArgumentException if the graph has several inputs, or as the other overload
     */
    public static int recompute(ComputationGraph graph, DataSetIterator batches, int maxBatches) {
        Objects.requireNonNull(graph, "graph");
        Layer[] layers = requireLayers(graph.getLayers(), graph);
        if (graph.getNumInputArrays() != 1) {
            throw new IllegalArgumentException("the graph has " + graph.getNumInputArrays()
                    + " inputs; recompute feeds the features of a DataSet, one input");
        }
        Map<String, List<String>> inputs = graph.getConfiguration().getVertexInputs();
        Map<String, GraphVertex> vertices = graph.getConfiguration().getVertices();
        List<Target<Map<String, INDArray>>> targets = new ArrayList<>();
        for (Layer layer : layers) {
            BatchNormalization conf = batchNorm(layer);
            if (conf != null) {
                String name = layer.conf().getLayer().getLayerName();
                String input = inputs.get(name).get(0);
                InputPreProcessor pre = vertices.get(name) instanceof LayerVertex v ? v.getPreProcessor() : null;
                targets.add(new Target<>("layer " + name, layer, conf, pre, acts -> {
                    INDArray a = acts.get(input);
                    if (a == null) {
                        throw new IllegalStateException("the forward pass gave no activation of vertex " + input
                                + ", the input of " + name);
                    }
                    return a;
                }));
            }
        }
        return run(targets, batches, maxBatches, x -> graph.feedForward(x, true));
    }

    /** The BatchNormalization configuration of {@code layer} (under frozen or other wrappers), else null. */
    static BatchNormalization batchNorm(Layer layer) {
        org.deeplearning4j.nn.conf.layers.Layer conf = layer.conf() == null ? null : layer.conf().getLayer();
        while (true) {
            if (conf instanceof FrozenLayer f) {
                conf = f.getLayer();
            } else if (conf instanceof BaseWrapperLayer w) {
                conf = w.getUnderlying();
            } else {
                return conf instanceof BatchNormalization bn ? bn : null;
            }
        }
    }

    private static Layer[] requireLayers(Layer[] layers, Object model) {
        if (layers == null) {
            throw new IllegalArgumentException(model.getClass().getSimpleName() + " is not initialized (call init() "
                    + "first)");
        }
        return layers;
    }

    /** A BatchNorm layer, where its input comes from, and its sums over the batches. */
    private static final class Target<A> {
        final String name;
        final Layer layer;
        final BatchNormalization conf;
        final InputPreProcessor pre;
        final Function<A, INDArray> input;
        double[] mean;
        double[] var;

        Target(String name, Layer layer, BatchNormalization conf, InputPreProcessor pre, Function<A, INDArray> input) {
            this.name = name;
            this.layer = layer;
            this.conf = conf;
            this.pre = pre;
            this.input = input;
        }

        /** Adds the batch's per-channel mean and biased variance of this layer's input. */
        void add(A activations, int batchSize) {
            INDArray x = input.apply(activations);
            if (pre != null) {
                x = pre.preProcess(x, batchSize, LayerWorkspaceMgr.noWorkspaces());
            }
            int[] dims;
            if (x.rank() == 2) {
                dims = new int[] {0};
            } else if (x.rank() == 4) {
                dims = conf.getCnn2DFormat() == CNN2DFormat.NHWC ? new int[] {0, 1, 2} : new int[] {0, 2, 3};
            } else {
                throw new IllegalArgumentException("BatchNormalization " + name + " gets input of shape "
                        + Arrays.toString(x.shape()) + "; recompute supports rank 2 (dense) and 4 (convolutional)");
            }
            double[] m = x.mean(dims).toDoubleVector();
            double[] v = x.var(false, dims).toDoubleVector();
            if (mean == null) {
                mean = new double[m.length];
                var = new double[v.length];
            }
            for (int c = 0; c < m.length; c++) {
                mean[c] += m[c];
                var[c] += v[c];
            }
        }

        /** Writes the averages over {@code n} batches into the layer's statistics. */
        void store(int n) {
            INDArray meanView = layer.getParam(BatchNormalizationParamInitializer.GLOBAL_MEAN);
            INDArray varView = conf.isUseLogStd() ? layer.getParam(BatchNormalizationParamInitializer.GLOBAL_LOG_STD)
                    : layer.getParam(BatchNormalizationParamInitializer.GLOBAL_VAR);
            for (int c = 0; c < mean.length; c++) {
                double v = var[c] / n;
                meanView.putScalar(c, mean[c] / n);
                varView.putScalar(c, conf.isUseLogStd() ? 0.5 * Math.log10(v) : v);
            }
        }
    }

    private static <A> int run(List<Target<A>> targets, DataSetIterator batches, int maxBatches,
                               Function<INDArray, A> forward) {
        Objects.requireNonNull(batches, "batches");
        if (maxBatches < 1) {
            throw new IllegalArgumentException("maxBatches is " + maxBatches + "; must be >= 1");
        }
        if (targets.isEmpty()) {
            return 0;
        }
        int n = 0;
        while (n < maxBatches && batches.hasNext()) {
            DataSet batch = batches.next();
            INDArray x = batch.getFeatures();
            A activations = forward.apply(x);
            for (Target<A> t : targets) {
                t.add(activations, (int) x.size(0));
            }
            n++;
        }
        if (n == 0) {
            throw new IllegalArgumentException("the iterator has no batch; recompute needs at least one");
        }
        for (Target<A> t : targets) {
            t.store(n);
        }
        return n;
    }
}
