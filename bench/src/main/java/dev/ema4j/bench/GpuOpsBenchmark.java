package dev.ema4j.bench;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.nn.FusedSgdStep;
import dev.ema4j.nn.TrainingOps;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Training operations on a CUDA GPU: the SGD step over 2.5e7 fp32 parameters alone and fused with one and three EMA
 * updates, against a device-to-device copy of the parameters (the bandwidth reference) measured in the same run;
 * and a 3×3 convolution (batch 128, 32 → 32 channels, 28×28, padding 1) forward and backward. Each invocation
 * issues {@value #REPS} operations, then waits for the device.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class GpuOpsBenchmark {

    static final int REPS = 10;
    /** Parameters of the optimizer benchmarks. */
    public static final int N = 25_000_000;
    /**
     * The bandwidth floor of each optimizer benchmark in bytes per parameter: momentum SGD reads p, g, m and writes
     * p, m (20); each EMA shadow adds a read and a write (8); the copy reads and writes (8).
     */
    public static final Map<String, Integer> BYTES_PER_PARAM = Map.of("copy", 8, "sgd", 20, "sgdEma1", 28,
            "sgdEma3", 44);
    /** The convolution: input (N, C, H, W), weights (K, C, 3, 3). */
    public static final Shape CONV_INPUT = new Shape(128, 32, 28, 28);
    public static final int CONV_K = 32;
    /** Multiply-adds ×2 of the forward convolution; the backward pass does twice as many (data and filter). */
    public static final double CONV_FLOPS = 2.0 * CONV_INPUT.size() * CONV_K * 9;

    private static final Sgd SGD = new Sgd(0.9, 5e-4, true);
    private static final double LR = 1e-6;

    private CudaBackend backend;
    private NnOps ops;
    private DeviceBuffer params;
    private DeviceBuffer grads;
    private DeviceBuffer momentum;
    private Tensor copySrc;
    private Tensor copyDst;
    private GpuEma ema1;
    private GpuEma ema3;
    private Params tracked;
    private FusedSgdStep sgdStep;
    private Tensor x;
    private Tensor w;
    private Tensor y;
    private Tensor dx;
    private Tensor dw;

    @Setup(Level.Trial)
    public void setUp() {
        backend = CudaBackend.open(0);
        ops = TrainingOps.of(backend);
        Random r = new Random(1);
        params = random(N, r);
        grads = random(N, r);
        momentum = backend.allocate(DType.F32, N);
        copySrc = Tensor.of(params, Shape.of(1, N));
        copyDst = Tensor.of(backend.allocate(DType.F32, N), Shape.of(1, N));
        EmaConfig unguarded = EmaConfig.constant(0.999).withNonFinite(NonFinitePolicy.IGNORE);
        tracked = Params.of(params);
        sgdStep = new FusedSgdStep(ops, params, grads, momentum, SGD, LR);
        ema1 = GpuEma.create(backend, tracked, unguarded);
        ema3 = GpuEma.create(backend, tracked, EmaConfig.constant(0.99, 0.999, 0.9999)
                .withNonFinite(NonFinitePolicy.IGNORE));
        Shape in = CONV_INPUT;
        Shape out = new Shape(in.n(), CONV_K, in.h(), in.w());
        x = Tensor.of(random(in.size(), r), in);
        w = Tensor.of(random(CONV_K * in.c() * 9, r), new Shape(CONV_K, in.c(), 3, 3));
        y = Tensor.of(random(out.size(), r), out);
        dx = Tensor.of(backend.allocate(DType.F32, in.size()), in);
        dw = Tensor.of(backend.allocate(DType.F32, w.size()), w.shape());
        backend.synchronize();
    }

    private DeviceBuffer random(int n, Random r) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        DeviceBuffer b = backend.allocate(DType.F32, n);
        backend.write(v, 0, b, 0, n);
        return b;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void copy() {
        for (int i = 0; i < REPS; i++) {
            ops.copy(copySrc, copyDst);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void sgd() {
        for (int i = 0; i < REPS; i++) {
            ops.sgdStep(params, grads, momentum, SGD, LR);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void sgdEma1() {
        for (int i = 0; i < REPS; i++) {
            ema1.stepAndUpdate(tracked, sgdStep);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void sgdEma3() {
        for (int i = 0; i < REPS; i++) {
            ema3.stepAndUpdate(tracked, sgdStep);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void convForward() {
        for (int i = 0; i < REPS; i++) {
            ops.conv2dForward(x, w, null, y, 1, 1);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(REPS)
    public void convBackward() {
        for (int i = 0; i < REPS; i++) {
            ops.conv2dBackward(x, w, y, dx, dw, null, 1, 1);
        }
        backend.synchronize();
    }
}
