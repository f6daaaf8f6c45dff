package dev.ema4j.dl4j;

import dev.ema4j.Backends;
import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.Backend;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.Random;
import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/**
 * Trains a small Deeplearning4j network (an MLP with BatchNorm) on Fashion-MNIST while ema4j keeps an EMA of its
 * weights, updated after every {@code fit} step, then evaluates the live weights and the EMA swapped in, with the
 * BatchNorm statistics averaged by the EMA, recomputed for the EMA weights, or the live ones.
 *
 * <pre>{@code
 * mvn -B -pl src/dl4j -am test -Dtest=Dl4jEmaExampleTest -Dsurefire.failIfNoSpecifiedTests=false
 * }</pre>
 * runs it as a test (the table is in
 * {@code src/dl4j/target/surefire-reports/dev.ema4j.dl4j.Dl4jEmaExampleTest-output.txt});
 * {@link #main} takes the number of steps and the data directory (default {@value #STEPS},
 * {@code /usr/share/datasets/fashion-mnist}, from the Debian package {@code dataset-fashion-mnist}).
 */
public final class Dl4jEmaExample {

    static final int STEPS = 400;
    static final int BATCH = 128;
    static final double DECAY = 0.99;
    static final int RECOMPUTE_BATCHES = 50;

    /**
     * What a run measured: test accuracies, the largest |EMA − live| parameter difference, whether closing the swap
     * scope gave back the live weights bit for bit, and the training time.
     */
    record Result(int steps, double live, double emaAveragedStats, double emaRecomputedStats, double emaLiveStats,
                  double maxParameterDifference, boolean restoredBitForBit, double trainSeconds) {

        String table() {
            return String.format(Locale.ROOT, """
                    Fashion-MNIST, MLP 784-256-BN-128-BN-10, Adam 1e-3, batch %d, %d steps (%.1f s), EMA paperWarmup(%s)
                      test accuracy
                      live weights                          %.4f
                      EMA, averaged BatchNorm statistics    %.4f
                      EMA, recomputed statistics (%d b.)    %.4f
                      EMA, live statistics                  %.4f
                      max |EMA - live| parameter            %.4g
                      live weights restored bit for bit     %s
                    """, BATCH, steps, trainSeconds, DECAY, live, emaAveragedStats, RECOMPUTE_BATCHES,
                    emaRecomputedStats, emaLiveStats, maxParameterDifference, restoredBitForBit);
        }
    }

    private Dl4jEmaExample() {
    }

    public static void main(String[] args) throws IOException {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : STEPS;
        Path dir = args.length > 1 ? Path.of(args[1]) : FashionMnistIdx.DEBIAN_DIR;
        System.out.print(run(dir, steps, 42).table());
    }

    @SuppressWarnings("try") // the swap scopes are used for their close()
    static Result run(Path dataDir, int steps, long seed) throws IOException {
        FashionMnistIdx train = FashionMnistIdx.train(dataDir);
        FashionMnistIdx test = FashionMnistIdx.test(dataDir);
        MultiLayerNetwork net = network(seed);
        Dl4jParams weights = Dl4jParams.of(net);                                   // BatchNorm statistics averaged too
        Dl4jParams trainable = Dl4jParams.of(net, BatchNormStats.EXCLUDE);         // for comparison: without them
        EmaConfig config = EmaConfig.of(DecaySchedule.paperWarmup(DECAY));
        try (Backend backend = Backends.cpu();
             GpuEma ema = GpuEma.create(backend, weights.params(), config);
             GpuEma emaWithoutStats = GpuEma.create(backend, trainable.params(), config)) {
            Batches batches = new Batches(train, BATCH, seed);
            long start = System.nanoTime();
            for (int step = 0; step < steps; step++) {
                net.fit(batches.next());
                ema.update(weights.params());
                emaWithoutStats.update(trainable.params());
            }
            double seconds = (System.nanoTime() - start) / 1e9;

            double live = accuracy(net, test);
            INDArray liveWeights = net.params().dup();
            double averaged;
            double recomputed;
            double difference;
            try (SwapScope s = ema.swapInto(weights.params())) {
                difference = net.params().sub(liveWeights).amaxNumber().doubleValue();
                averaged = accuracy(net, test);
                BatchNormRecompute.recompute(net, new ExistingDataSetIterator(new Batches(train, BATCH, seed + 1)),
                        RECOMPUTE_BATCHES);
                recomputed = accuracy(net, test);
            }
            boolean restored = sameBits(liveWeights, net.params());
            double liveStats;
            try (SwapScope s = emaWithoutStats.swapInto(trainable.params())) {
                liveStats = accuracy(net, test);
            }
            restored &= sameBits(liveWeights, net.params());
            return new Result(steps, live, averaged, recomputed, liveStats, difference, restored, seconds);
        }
    }

    /** 784 → 256 → BatchNorm → ReLU → 128 → BatchNorm → ReLU → 10, softmax. */
    static MultiLayerNetwork network(long seed) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(seed)
                .dataType(DataType.FLOAT)
                .updater(new Adam(1e-3))
                .weightInit(WeightInit.RELU)
                .list()
                .layer(new DenseLayer.Builder().nOut(256).activation(Activation.IDENTITY).build())
                .layer(new BatchNormalization.Builder().build())
                .layer(new ActivationLayer(Activation.RELU))
                .layer(new DenseLayer.Builder().nOut(128).activation(Activation.IDENTITY).build())
                .layer(new BatchNormalization.Builder().build())
                .layer(new ActivationLayer(Activation.RELU))
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nOut(FashionMnistIdx.CLASSES)
                        .activation(Activation.SOFTMAX).build())
                .setInputType(InputType.feedForward(FashionMnistIdx.PIXELS))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** The fraction of {@code data} that {@code net} classifies correctly (inference mode). */
    static double accuracy(MultiLayerNetwork net, FashionMnistIdx data) {
        int chunk = 2000;
        int correct = 0;
        for (int from = 0; from < data.count(); from += chunk) {
            int n = Math.min(chunk, data.count() - from);
            float[] x = new float[n * FashionMnistIdx.PIXELS];
            System.arraycopy(data.images(), from * FashionMnistIdx.PIXELS, x, 0, x.length);
            INDArray predicted = net.output(Nd4j.create(x, new long[] {n, FashionMnistIdx.PIXELS}, 'c'), false)
                    .argMax(1);
            for (int i = 0; i < n; i++) {
                if (predicted.getInt(i) == data.labels()[from + i]) {
                    correct++;
                }
            }
        }
        return (double) correct / data.count();
    }

    static boolean sameBits(INDArray a, INDArray b) {
        if (a.length() != b.length()) {
            return false;
        }
        for (long i = 0; i < a.length(); i++) {
            if (Float.floatToRawIntBits(a.getFloat(i)) != Float.floatToRawIntBits(b.getFloat(i))) {
                return false;
            }
        }
        return true;
    }

    /** Endless shuffled mini-batches, one-hot labels; reshuffled every epoch. */
    static final class Batches implements Iterator<DataSet> {
        private final FashionMnistIdx data;
        private final int batch;
        private final Random random;
        private final int[] order;
        private int next;

        Batches(FashionMnistIdx data, int batch, long seed) {
            this.data = data;
            this.batch = batch;
            this.random = new Random(seed);
            this.order = new int[data.count()];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            shuffle();
        }

        private void shuffle() {
            for (int i = order.length - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            next = 0;
        }

        @Override
        public boolean hasNext() {
            return true;
        }

        @Override
        public DataSet next() {
            if (batch > order.length) {
                throw new NoSuchElementException("batch " + batch + " > " + order.length + " examples");
            }
            if (next + batch > order.length) {
                shuffle();
            }
            float[] x = new float[batch * FashionMnistIdx.PIXELS];
            float[] y = new float[batch * FashionMnistIdx.CLASSES];
            for (int i = 0; i < batch; i++) {
                int k = order[next++];
                System.arraycopy(data.images(), k * FashionMnistIdx.PIXELS, x, i * FashionMnistIdx.PIXELS,
                        FashionMnistIdx.PIXELS);
                y[i * FashionMnistIdx.CLASSES + data.labels()[k]] = 1f;
            }
            return new DataSet(Nd4j.create(x, new long[] {batch, FashionMnistIdx.PIXELS}, 'c'),
                    Nd4j.create(y, new long[] {batch, FashionMnistIdx.CLASSES}, 'c'));
        }
    }
}
