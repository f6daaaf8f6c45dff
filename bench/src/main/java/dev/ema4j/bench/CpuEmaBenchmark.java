package dev.ema4j.bench;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.nn.FusedSgdStep;
import dev.ema4j.nn.TrainingOps;
import dev.ema4j.optim.Sgd;
import java.util.List;
import java.util.Map;
import java.util.Random;
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
 * EMA over 64 Mi fp32 parameters on the CPU backend against baselines measured in the same run: an in-place add
 * {@code e[i] += p[i]} with the same memory traffic (12 bytes per parameter) on the same threads and work split,
 * three single-shadow updates against one fused three-shadow update, a naive single-threaded loop, and an SGD step
 * followed by an EMA update against the two fused in one pass ({@link GpuEma#stepAndUpdate}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 2, jvmArgsAppend = {"-Xms6g", "-Xmx6g"})
public class CpuEmaBenchmark {

    /** Parameters per update. */
    public static final int N = 1 << 26;
    /** Bytes each benchmark moves per parameter: read p, read and write each shadow (the guard's read not counted). */
    public static final Map<String, Integer> BYTES_PER_PARAM = Map.of("ema", 12, "emaGuarded", 12, "fusedK3", 28,
            "threeSingles", 36, "addBaseline", 12, "naiveSingleThread", 12,
            "sgdThenEma", 32, "sgdEmaFused", 28);

    private static final Sgd SGD = new Sgd(0.9, 5e-4, true);
    private static final double LR = 1e-5;
    /** Elements per work item of the baseline: the CPU backend's own grain (CpuParamTable.GRAIN). */
    private static final int GRAIN = 1 << 16;

    private CpuBackend backend;
    private float[] p;
    private float[] e;
    private Params params;
    private GpuEma ema;
    private GpuEma guarded;
    private GpuEma fused;
    private List<GpuEma> singles;
    private DeviceBuffer sgdParams;
    private DeviceBuffer grads;
    private DeviceBuffer momentum;
    private GpuEma sgdEma;
    private Params sgdTracked;
    private FusedSgdStep sgdStep;

    @Setup(Level.Trial)
    public void setUp() {
        backend = new CpuBackend();
        p = new float[N];
        Random r = new Random(1);
        for (int i = 0; i < N; i++) {
            p[i] = (float) r.nextGaussian();
        }
        e = p.clone();
        params = Params.of(p);
        EmaConfig unguarded = EmaConfig.constant(0.999).withNonFinite(NonFinitePolicy.IGNORE);
        ema = GpuEma.create(backend, params, unguarded);
        guarded = GpuEma.create(backend, params, 0.999);
        fused = GpuEma.create(backend, params, EmaConfig.constant(0.99, 0.999, 0.9999)
                .withNonFinite(NonFinitePolicy.IGNORE));
        singles = List.of(GpuEma.create(backend, params, unguarded), GpuEma.create(backend, params, unguarded),
                GpuEma.create(backend, params, unguarded));
        sgdParams = backend.allocate(DType.F32, N);
        grads = backend.allocate(DType.F32, N);
        momentum = backend.allocate(DType.F32, N);
        backend.write(p, 0, sgdParams, 0, N);
        backend.write(e, 0, grads, 0, N);
        sgdTracked = Params.of(sgdParams);
        sgdEma = GpuEma.create(backend, sgdTracked, unguarded);
        sgdStep = new FusedSgdStep(TrainingOps.of(backend), sgdParams, grads, momentum, SGD, LR);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
    }

    @Benchmark
    public void ema() {
        ema.update(params, 0.999);
    }

    @Benchmark
    public void emaGuarded() {
        guarded.update(params, 0.999);
    }

    @Benchmark
    public void fusedK3() {
        fused.update(params, 0.99, 0.999, 0.9999);
    }

    @Benchmark
    public void threeSingles() {
        singles.get(0).update(params, 0.99);
        singles.get(1).update(params, 0.999);
        singles.get(2).update(params, 0.9999);
    }

    /** An SGD step, then an EMA update of the new parameters: two passes over memory. */
    @Benchmark
    public void sgdThenEma() {
        sgdStep.step();
        sgdEma.update(sgdTracked);
    }

    /** The same step and update in one pass. */
    @Benchmark
    public void sgdEmaFused() {
        sgdEma.stepAndUpdate(sgdTracked, sgdStep);
    }

    /** {@code e[i] += p[i]}: the same traffic as one EMA update, on the same threads and work items. */
    @Benchmark
    public void addBaseline() {
        int items = (N + GRAIN - 1) / GRAIN;
        backend.parallelFor(items, item -> {
            int from = item * GRAIN;
            int to = Math.min(N, from + GRAIN);
            for (int i = from; i < to; i++) {
                e[i] += p[i];
            }
        });
    }

    /** The textbook loop a user would write: one thread, no FMA. */
    @Benchmark
    public void naiveSingleThread() {
        float decay = 0.999f;
        for (int i = 0; i < N; i++) {
            e[i] = decay * e[i] + (1 - decay) * p[i];
        }
    }
}
