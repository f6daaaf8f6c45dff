package dev.ema4j.dl4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.Backends;
import dev.ema4j.GpuEma;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.TensorDType;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

class Dl4jParamsTest {

    private Backend backend;

    @BeforeEach
    void open() {
        backend = Backends.cpu();
    }

    @AfterEach
    void close() {
        backend.close();
    }

    @Test
    void oneTensorOverTheFlatParameterArray() {
        MultiLayerNetwork net = Dl4jNets.cnn(1);
        Dl4jParams weights = Dl4jParams.of(net);
        Params params = weights.params();
        assertSame(params, weights.params(), "unchanged memory gives the same parameter set");
        assertEquals(0, weights.rebinds());
        assertEquals(1, params.size());
        Params.Floats storage = (Params.Floats) params.tensor(0).storage();
        assertTrue(storage.buffer().isDirect());
        assertEquals(net.numParams(), storage.count());
        assertSame(BatchNormStats.AVERAGE, weights.batchNormStats());
        assertSame(net, weights.model());
        assertEquals(List.of("1_mean", "1_log10stdev", "4_mean", "4_var"), weights.batchNormStatistics());
    }

    @Test
    void writesThroughTheViewReachTheNetworkAndBack() {
        MultiLayerNetwork net = Dl4jNets.cnn(2);
        Params.Floats storage = (Params.Floats) Dl4jParams.of(net).params().tensor(0).storage();
        FloatBuffer buffer = storage.buffer();
        long last = net.numParams() - 1;
        buffer.put(storage.offset(), 123.5f);
        buffer.put(storage.offset() + (int) last, -7.25f);
        assertEquals(123.5f, net.params().getFloat(0));
        assertEquals(-7.25f, net.params().getFloat(last));
        assertEquals(123.5f, net.getParam("0_b").getFloat(0), "the convolution bias comes first in memory");
        net.params().putScalar(1, 9.75f);
        assertEquals(9.75f, buffer.get(storage.offset() + 1));
    }

    @Test
    @SuppressWarnings("try") // the swap scope is used for its close()
    void emaReadsAndWritesTheNetworksMemory() {
        MultiLayerNetwork net = Dl4jNets.cnn(3);
        Dl4jParams weights = Dl4jParams.of(net);
        INDArray start = net.params().dup();
        try (GpuEma ema = GpuEma.create(backend, weights.params(), 0.5)) {
            net.params().addi(1f);                                              // DL4J writes
            INDArray moved = net.params().dup();
            ema.update(weights.params());                                       // ema4j reads: start + 0.5
            try (SwapScope s = ema.swapInto(weights.params())) {                // ema4j writes
                INDArray expected = start.add(moved).muli(0.5f);
                assertTrue(net.params().equalsWithEps(expected, 1e-6), "DL4J reads the EMA");
                long w = offset(net, "0_W");
                assertEquals(expected.getFloat(w + 5), net.getParam("0_W").getFloat(0, 0, 1, 2), 1e-6f,
                        "and so do its parameter views");
            }
            assertTrue(sameBits(moved, net.params()), "closing the scope restores the live weights bit for bit");
        }
    }

    @Test
    void slicesHaveDl4jNamesInMemoryOrderAndRowMajorShapes() throws IOException {
        MultiLayerNetwork net = Dl4jNets.cnn(4);
        Dl4jNets.train(net, 3, 40);
        Params params = Dl4jParams.of(net).params();
        List<Params.Slice> slices = params.tensor(0).slices();
        assertEquals(net.paramTable().keySet(), names(slices));
        assertEquals(List.of("0_b", "0_W", "1_gamma", "1_beta", "1_mean", "1_log10stdev", "3_W", "3_b", "4_gamma",
                "4_beta", "4_mean", "4_var", "6_W", "6_b"), slices.stream().map(Params.Slice::name).toList());
        for (Params.Slice slice : slices) {
            INDArray view = net.getParam(slice.name());
            long[] shape = view.shape().clone();
            if (view.ordering() == 'f') {
                reverse(shape);
            }
            assertArrayEquals(shape, slice.shape().stream().mapToLong(Long::longValue).toArray(), slice.name());
            assertEquals(offset(net, slice.name()), slice.offset(), slice.name());
        }
        assertEquals(List.of(4L, 1L, 3L, 3L), slices.get(1).shape(), "conv weights [out, in, kH, kW] as in PyTorch");
        assertEquals(List.of(5L, 64L), slices.get(6).shape(), "dense W [nIn, nOut] in 'f' order is [nOut, nIn]");
        // every element of every exported tensor is the DL4J element at the same (transposed for 'f') index
        try (GpuEma ema = GpuEma.create(backend, params, 0.9)) {
            for (FloatTensor t : ema.stateDictTensors(0, TensorDType.F32)) {
                INDArray view = net.getParam(t.name());
                float[] values = new float[(int) t.elementCount()];
                t.source().read(0, values, 0, values.length);
                long[] shape = t.shape().stream().mapToLong(Long::longValue).toArray();
                for (int i = 0; i < values.length; i++) {
                    long[] index = unravel(i, shape);
                    if (view.ordering() == 'f') {
                        reverse(index);
                    }
                    assertEquals(view.getFloat(index), values[i], t.name() + " element " + i);
                }
            }
        }
    }

    @Test
    @SuppressWarnings("try") // the swap scope is used for its close()
    void excludeLeavesOutTheBatchNormStatistics() {
        MultiLayerNetwork net = Dl4jNets.cnn(5);
        Dl4jParams trainable = Dl4jParams.of(net, BatchNormStats.EXCLUDE);
        Params params = trainable.params();
        List<String> names = new ArrayList<>();
        params.tensors().forEach(t -> t.slices().forEach(s -> names.add(s.name())));
        assertEquals(List.of("0_b", "0_W", "1_gamma", "1_beta", "3_W", "3_b", "4_gamma", "4_beta", "6_W", "6_b"),
                names);
        assertEquals(3, params.size(), "one tensor per run between statistics");
        assertEquals(List.of("1_mean", "1_log10stdev", "4_mean", "4_var"), trainable.batchNormStatistics());

        try (GpuEma ema = GpuEma.create(backend, params, 0.5)) {
            Dl4jNets.train(net, 3, 50);
            ema.update(trainable.params());
            Map<String, INDArray> live = copies(net);
            try (SwapScope s = ema.swapInto(trainable.params())) {
                for (String stat : trainable.batchNormStatistics()) {
                    assertTrue(sameBits(live.get(stat), net.getParam(stat)), stat + " keeps its live value");
                }
                assertFalse(sameBits(live.get("0_W"), net.getParam("0_W")), "the weights are the EMA's");
            }
        }
    }

    @Test
    void computationGraphsAndSingleLayers() {
        MultiLayerNetwork net = Dl4jNets.cnn(6);
        ComputationGraph graph = net.toComputationGraph();
        Dl4jParams weights = Dl4jParams.of(graph);
        assertEquals(graph.paramTable().keySet(), names(weights.params().tensor(0).slices()));
        assertEquals(List.of("1_mean", "1_log10stdev", "4_mean", "4_var"), weights.batchNormStatistics());
        assertSame(weights.params(), weights.params());
        assertEquals(0, weights.rebinds());
        ((Params.Floats) weights.params().tensor(0).storage()).buffer().put(0, 4.5f);
        assertEquals(4.5f, graph.getParam("0_b").getFloat(0));

        Dl4jParams layer = Dl4jParams.of(net.getLayer(1));
        assertEquals(List.of("gamma", "beta", "mean", "log10stdev"),
                layer.params().tensor(0).slices().stream().map(Params.Slice::name).toList());
        assertEquals(List.of("mean", "log10stdev"), layer.batchNormStatistics());
        Params.Floats storage = (Params.Floats) layer.params().tensor(0).storage();
        assertEquals(4, storage.count() / 4, "a layer's parameters: a view into the network's");
        storage.buffer().put(storage.offset() + 2, -3.5f);
        assertEquals(-3.5f, net.getParam("1_gamma").getFloat(2));
    }

    @Test
    @SuppressWarnings("try") // the swap scope is used for its close()
    void followsTheModelWhenItsParametersMoveToOtherMemory() {
        MultiLayerNetwork a = Dl4jNets.cnn(7);
        MultiLayerNetwork b = Dl4jNets.cnn(8);
        AtomicReference<MultiLayerNetwork> current = new AtomicReference<>(a);
        Model model = Dl4jNets.model(() -> current.get().params(), () -> current.get().paramTable());
        Dl4jParams weights = Dl4jParams.of(model);
        Params first = weights.params();
        try (GpuEma ema = GpuEma.create(backend, first, 0.0)) {
            current.set(b);                                   // as if DL4J had replaced its parameter array
            Params second = weights.params();
            assertNotSame(first, second);
            assertEquals(1, weights.rebinds());
            assertSame(second, weights.params());
            ema.update(weights.params());                     // decay 0: the shadow becomes b
            INDArray bWeights = b.params().dup();
            b.params().assign(0);
            try (SwapScope s = ema.swapInto(weights.params())) {
                assertTrue(sameBits(bWeights, b.params()), "the EMA read and writes the new memory");
            }
        }
    }

    @Test
    @SuppressWarnings("try") // the workspace is used for its close()
    void refusesWhatCannotWork() {
        assertThrows(NullPointerException.class, () -> Dl4jParams.of(null));
        assertThrows(NullPointerException.class, () -> Dl4jParams.of(Dl4jNets.dense(1), null));

        MultiLayerNetwork uninitialized = new MultiLayerNetwork(Dl4jNets.dense(1).getLayerWiseConfigurations().clone());
        assertMessage(() -> Dl4jParams.of(uninitialized), "not initialized (call init() first)");
        ComputationGraph graph = Dl4jNets.dense(1).toComputationGraph();
        assertMessage(() -> Dl4jParams.of(new ComputationGraph(graph.getConfiguration().clone())),
                "not initialized (call init() first)");

        MultiLayerNetwork net = Dl4jNets.cnn(9);
        assertMessage(() -> Dl4jParams.of(net.convertDataType(DataType.DOUBLE)), "holds its parameters as DOUBLE");
        assertMessage(() -> Dl4jParams.of(net.convertDataType(DataType.FLOAT16)), "holds its parameters as HALF");

        INDArray strided = Nd4j.create(DataType.FLOAT, 2 * net.numParams())
                .get(NDArrayIndex.interval(0, 2, 2 * net.numParams()));
        assertMessage(() -> Dl4jParams.of(Dl4jNets.model(() -> strided, net::paramTable)),
                "params() is not one contiguous array (shape [" + net.numParams() + "], strides [2]");

        INDArray other = Nd4j.create(DataType.FLOAT, net.numParams());
        assertMessage(() -> Dl4jParams.of(Dl4jNets.model(() -> other, net::paramTable)),
                "parameter 0_b [4] does not lie inside params()");

        Map<String, INDArray> strides = new HashMap<>(net.paramTable());
        long w = offset(net, "3_W");
        strides.put("3_W", net.params().get(NDArrayIndex.interval(w, 2, w + 10)));
        assertMessage(() -> Dl4jParams.of(Dl4jNets.model(net::params, () -> strides)),
                "parameter 3_W is not contiguous (shape [5], strides [2]");

        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace("dl4j-params-test")) {
            INDArray attached = Nd4j.create(DataType.FLOAT, net.numParams());
            assertMessage(() -> Dl4jParams.of(Dl4jNets.model(() -> attached, net::paramTable)),
                    "params() is an array in an ND4J workspace");
        }

        MultiLayerConfiguration statsOnly = new NeuralNetConfiguration.Builder().list()
                .layer(new BatchNormalization.Builder().lockGammaBeta(true).build())
                .setInputType(InputType.feedForward(4)).build();
        MultiLayerNetwork onlyStats = new MultiLayerNetwork(statsOnly);
        onlyStats.init();
        assertEquals(List.of("0_mean", "0_log10stdev"), Dl4jParams.of(onlyStats).batchNormStatistics());
        assertMessage(() -> Dl4jParams.of(onlyStats, BatchNormStats.EXCLUDE), "leaves nothing to average");
    }

    private static void assertMessage(Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message \"" + e.getMessage() + "\" should contain \""
                + fragment + "\"");
    }

    /** The offset of parameter {@code name} in the flat array. */
    private static long offset(MultiLayerNetwork net, String name) {
        return (net.getParam(name).data().addressPointer().address()
                - net.params().data().addressPointer().address()) / Float.BYTES;
    }

    private static Set<String> names(List<Params.Slice> slices) {
        Set<String> names = new LinkedHashSet<>();
        slices.forEach(s -> names.add(s.name()));
        return names;
    }

    private static Map<String, INDArray> copies(MultiLayerNetwork net) {
        Map<String, INDArray> copies = new HashMap<>();
        net.paramTable().forEach((k, v) -> copies.put(k, v.dup()));
        return copies;
    }

    static boolean sameBits(INDArray a, INDArray b) {
        return Dl4jEmaExample.sameBits(a.reshape(a.length()), b.reshape(b.length()));
    }

    private static long[] unravel(long i, long[] shape) {
        long[] index = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            index[d] = i % shape[d];
            i /= shape[d];
        }
        return index;
    }

    private static void reverse(long[] a) {
        for (int i = 0, j = a.length - 1; i < j; i++, j--) {
            long t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
