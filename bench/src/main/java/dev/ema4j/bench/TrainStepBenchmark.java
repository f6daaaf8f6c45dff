package dev.ema4j.bench;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.data.BatchConfig;
import dev.ema4j.data.Batches;
import dev.ema4j.data.DatasetView;
import dev.ema4j.data.FashionMnist;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One full training step of {@code SmallCnn(16)} at batch 128 on the CPU: forward, backward, SGD (Nesterov) and an
 * EMA update with three decays, on successive Fashion-MNIST training batches (so the loss stays realistic).
 * Images per second = 128 / (ms per step) · 1000.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 2, jvmArgsAppend = {"-Xmx4g"})
public class TrainStepBenchmark {

    public static final int BATCH = 128;

    private Backend backend;
    private Network net;
    private GpuEma ema;
    private Params params;
    private Batches batches;
    private int next;
    private final Sgd sgd = Sgd.nesterov(5e-4);

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        backend = new CpuBackend();
        net = Network.build(backend, Models.smallCnn(16, 10), new Shape(1, 1, 28, 28), BATCH, 1);
        params = net.parameters().parameters();
        ema = GpuEma.create(backend, params, EmaConfig.constant(0.99, 0.999, 0.9999)
                .withNonFinite(NonFinitePolicy.IGNORE));
        DatasetView train = FashionMnist.train(null).view();
        batches = new Batches(train, BatchConfig.training(BATCH, 1));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ema.close();
        net.close();
        backend.close();
    }

    @Benchmark
    public double trainStep() {
        var b = batches.batch(0, next);
        next = (next + 1) % batches.batchCount();
        double loss = net.trainStep(b.x(), b.y(), sgd, 0.05);
        ema.update(params);
        return loss;
    }
}
