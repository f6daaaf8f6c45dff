package dev.ema4j.bench;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.nn.Layer;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One full training step on a CUDA GPU at batch {@value #BATCH} on 1×28×28 inputs: forward, loss (read back, as a
 * trainer does), backward, and the SGD step (Nesterov, weight decay 5e-4) fused with an EMA update of the weights.
 * The inputs are fixed random batches (the GPU machine has no dataset); bench/device/torch_train.py times the same
 * models and step in PyTorch eager. Images per second = {@value #BATCH} / (ms per step) · 1000.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class GpuTrainBenchmark {

    public static final int BATCH = 128;
    private static final int BATCHES = 8;

    /** smallCnn16: SmallCnn(16); resnet20: ResNet-20 of width 16. */
    @Param({"smallCnn16", "resnet20"})
    public String model;

    private final Sgd sgd = Sgd.nesterov(5e-4);
    private CudaBackend backend;
    private Network net;
    private GpuEma ema;
    private float[][] x;
    private int[][] y;
    private int next;

    /** The benchmarked model. */
    public static Layer model(String name) {
        return switch (name) {
            case "smallCnn16" -> Models.smallCnn(16, 10);
            case "resnet20" -> Models.resnet(20, 16, 10);
            default -> throw new IllegalArgumentException("unknown model " + name);
        };
    }

    @Setup(Level.Trial)
    public void setUp() {
        backend = CudaBackend.open(0);
        net = Network.build(backend, model(model), new Shape(1, 1, 28, 28), BATCH, 1);
        ema = GpuEma.create(backend, net.parameters().parameters(), EmaConfig.constant(0.999)
                .withNonFinite(NonFinitePolicy.IGNORE));
        Random r = new Random(1);
        x = new float[BATCHES][BATCH * 28 * 28];
        y = new int[BATCHES][BATCH];
        for (int b = 0; b < BATCHES; b++) {
            for (int i = 0; i < x[b].length; i++) {
                x[b][i] = (float) r.nextGaussian();
            }
            for (int i = 0; i < BATCH; i++) {
                y[b][i] = r.nextInt(10);
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ema.close();
        net.close();
        backend.close();
    }

    @Benchmark
    public double trainStep() {
        int b = next;
        next = (next + 1) % BATCHES;
        double loss = net.gradients(x[b], y[b], 0.01);
        ParameterStore p = net.parameters();
        ema.stepAndUpdate(p.parameters(), net.sgdStep(sgd, 0.01));
        return loss;
    }
}
