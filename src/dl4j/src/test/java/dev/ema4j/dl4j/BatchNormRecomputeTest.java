package dev.ema4j.dl4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;

/**
 * After recomputing the statistics from one batch, inference mode on that batch normalizes with exactly its
 * statistics, so it gives what training mode gives: the check that the right axes, the biased variance, the
 * {@code log10stdev} encoding and the preprocessors were used.
 */
class BatchNormRecomputeTest {

    private static final double TOLERANCE = 2e-5;

    @Test
    void denseAndConvolutionalNchw() {
        checkTrainEqualsInference(Dl4jNets.cnn(11));
    }

    @Test
    void convolutionalNhwc() {
        checkTrainEqualsInference(Dl4jNets.cnn(12, CNN2DFormat.NHWC));
    }

    @Test
    void batchNormBehindAPreprocessor() {
        checkTrainEqualsInference(Dl4jNets.batchNormFirst(13));
    }

    @Test
    void computationGraph() {
        MultiLayerNetwork net = Dl4jNets.cnn(14);
        Dl4jNets.train(net, 5, 140);
        ComputationGraph graph = net.toComputationGraph();
        INDArray x = Dl4jNets.features(32, 141);
        assertFalse(close(graph.outputSingle(true, x), graph.outputSingle(false, x)), "statistics differ before");
        assertEquals(1, BatchNormRecompute.recompute(graph, batches(x), 10));
        assertTrue(close(graph.outputSingle(true, x), graph.outputSingle(false, x)));
    }

    @Test
    void averagesThePerBatchStatistics() {
        MultiLayerNetwork net = Dl4jNets.cnn(15);
        Dl4jNets.train(net, 5, 150);
        INDArray x1 = Dl4jNets.features(16, 151);
        INDArray x2 = Dl4jNets.features(16, 152);
        BatchNormRecompute.recompute(net, batches(x1), 1);
        INDArray mean1 = net.getParam("4_mean").dup();
        INDArray var1 = net.getParam("4_var").dup();
        INDArray std1 = net.getParam("1_log10stdev").dup();
        BatchNormRecompute.recompute(net, batches(x2), 1);
        INDArray mean2 = net.getParam("4_mean").dup();
        INDArray var2 = net.getParam("4_var").dup();
        INDArray std2 = net.getParam("1_log10stdev").dup();

        assertEquals(2, BatchNormRecompute.recompute(net, batches(x1, x2), 5));
        assertTrue(net.getParam("4_mean").equalsWithEps(mean1.add(mean2).divi(2), 1e-5));
        assertTrue(net.getParam("4_var").equalsWithEps(var1.add(var2).divi(2), 1e-5));
        INDArray variance = pow10(std1.mul(2)).addi(pow10(std2.mul(2))).divi(2);
        assertTrue(pow10(net.getParam("1_log10stdev").mul(2)).equalsWithEps(variance, 1e-5),
                "log10stdev stores log10(sqrt(mean of the variances))");

        DataSetIterator three = batches(x1, x2, x1);
        assertEquals(2, BatchNormRecompute.recompute(net, three, 2), "at most maxBatches");
        assertTrue(three.hasNext(), "the rest is left unread");
    }

    @Test
    void networksWithoutBatchNormAndBadArguments() {
        MultiLayerNetwork dense = Dl4jNets.dense(16);
        INDArray before = dense.params().dup();
        DataSetIterator one = batches(Dl4jNets.features(4, 160));
        assertEquals(0, BatchNormRecompute.recompute(dense, one, 3));
        assertTrue(one.hasNext(), "nothing read");
        assertEquals(before, dense.params());

        MultiLayerNetwork net = Dl4jNets.cnn(17);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BatchNormRecompute.recompute(net, batches(), 3));
        assertEquals("the iterator has no batch; recompute needs at least one", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BatchNormRecompute.recompute(net, batches(Dl4jNets.features(4, 170)), 0));
        assertEquals("maxBatches is 0; must be >= 1", e.getMessage());
        assertThrows(NullPointerException.class, () -> BatchNormRecompute.recompute(net, null, 1));
        MultiLayerNetwork uninitialized = new MultiLayerNetwork(net.getLayerWiseConfigurations().clone());
        e = assertThrows(IllegalArgumentException.class,
                () -> BatchNormRecompute.recompute(uninitialized, batches(Dl4jNets.features(4, 171)), 1));
        assertEquals("MultiLayerNetwork is not initialized (call init() first)", e.getMessage());
    }

    /** What {@link BatchNormStats} says DL4J does with the statistics, checked against DL4J itself. */
    @Test
    void dl4jUpdatesTheStatisticsInFitOnly() {
        MultiLayerNetwork net = Dl4jNets.cnn(18);
        BatchNormalization conv = (BatchNormalization) net.getLayer(1).conf().getLayer();
        BatchNormalization dense = (BatchNormalization) net.getLayer(4).conf().getLayer();
        assertTrue(conv.isUseLogStd(), "log10stdev is the default");
        assertEquals(0.9, dense.getDecay(), "the default decay");
        INDArray x = Dl4jNets.features(16, 180);
        INDArray before = net.params().dup();
        List<INDArray> activations = net.feedForward(x, true);
        net.output(x, true);
        assertEquals(before, net.params(), "forward passes in training mode change nothing");

        INDArray convInput = activations.get(1);                   // (N, C, H, W)
        INDArray denseInput = activations.get(4);                  // (N, C)
        double d = dense.getDecay();
        INDArray mean1 = net.getParam("1_mean").mul(d).addi(convInput.mean(0, 2, 3).muli(1 - d));
        INDArray var1 = pow10(net.getParam("1_log10stdev").mul(2)).muli(d)
                .addi(convInput.var(false, 0, 2, 3).muli(1 - d));
        INDArray mean4 = net.getParam("4_mean").mul(d).addi(denseInput.mean(0).muli(1 - d));
        INDArray var4 = net.getParam("4_var").mul(d).addi(denseInput.var(false, 0).muli(1 - d));
        net.fit(x, Dl4jNets.labels(16));
        assertTrue(net.getParam("1_mean").equalsWithEps(mean1, 1e-5));
        assertTrue(pow10(net.getParam("1_log10stdev").mul(2)).equalsWithEps(var1, 1e-5));
        assertTrue(net.getParam("4_mean").equalsWithEps(mean4, 1e-5));
        assertTrue(net.getParam("4_var").equalsWithEps(var4, 1e-5));
    }

    private static void checkTrainEqualsInference(MultiLayerNetwork net) {
        Dl4jNets.train(net, 5, 100);
        INDArray x = Dl4jNets.input(net, Dl4jNets.features(32, 101));
        INDArray weights = net.params().dup();
        assertFalse(close(net.output(x, true), net.output(x, false)), "the statistics differ before");
        assertEquals(1, BatchNormRecompute.recompute(net, batches(x), 10));
        assertTrue(close(net.output(x, true), net.output(x, false)),
                "inference with the recomputed statistics = training mode");
        List<String> statistics = Dl4jParams.of(net).batchNormStatistics();
        for (String name : net.paramTable().keySet()) {
            if (!statistics.contains(name)) {
                assertEquals(weightsView(weights, net, name), net.getParam(name), name + " unchanged");
            }
        }
    }

    private static INDArray weightsView(INDArray flat, MultiLayerNetwork net, String name) {
        long offset = (net.getParam(name).data().addressPointer().address()
                - net.params().data().addressPointer().address()) / Float.BYTES;
        INDArray view = net.getParam(name);
        return flat.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(offset, offset + view.length()))
                .reshape(view.ordering(), view.shape());
    }

    private static boolean close(INDArray a, INDArray b) {
        return a.equalsWithEps(b, TOLERANCE);
    }

    private static INDArray pow10(INDArray a) {
        INDArray r = a.dup();
        for (long i = 0; i < r.length(); i++) {
            r.putScalar(i, Math.pow(10, a.getDouble(i)));
        }
        return r;
    }

    private static DataSetIterator batches(INDArray... features) {
        List<DataSet> list = new ArrayList<>();
        for (INDArray x : features) {
            list.add(new DataSet(x, Dl4jNets.labels((int) x.size(0))));
        }
        return new ExistingDataSetIterator(list.iterator());
    }
}
