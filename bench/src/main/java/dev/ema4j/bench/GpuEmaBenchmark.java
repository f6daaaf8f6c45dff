package dev.ema4j.bench;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cuda.CudaBackend;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * EMA on a CUDA GPU over device-resident parameters, against a device-to-device copy of the parameters measured
 * in the same run. Each invocation issues {@value #UPDATES} operations and then waits for the device, so launch
 * overhead is included but host synchronization is amortized.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class GpuEmaBenchmark {

    static final int UPDATES = 10;
    /** Bytes per parameter: read p, read and write each shadow; the copy reads and writes p. */
    public static final Map<String, Integer> BYTES_PER_PARAM = Map.of("ema", 12, "emaGuarded", 12, "fusedK3", 28,
            "bf16", 10, "copy", 8);

    /** flat25M: one tensor of 2.5e7; resnet50: ResNet-50's 161 tensors; flat1G: one tensor of 1e9. */
    @Param({"flat25M", "resnet50", "flat1G"})
    public String shape;

    private CudaBackend backend;
    private Params fp32;
    private Params bf16;
    private GpuEma ema;
    private GpuEma guarded;
    private GpuEma fused;
    private GpuEma fromBf16;
    private CUdeviceptr copySrc;
    private CUdeviceptr copyDst;
    private long bytes;

    /** Parameter tensor sizes of a shape. */
    public static long[] sizes(String shape) {
        return switch (shape) {
            case "flat25M" -> new long[] {25_000_000L};
            case "flat1G" -> new long[] {1_000_000_000L};
            case "resnet50" -> ResNet50.tensorSizes();
            default -> throw new IllegalArgumentException("unknown shape " + shape);
        };
    }

    @Setup(Level.Trial)
    public void setUp() {
        backend = CudaBackend.open(0);
        long[] sizes = sizes(shape);
        Params.Builder f = Params.builder();
        Params.Builder h = Params.builder();
        float[] chunk = new float[1 << 24];
        Random r = new Random(1);
        for (int i = 0; i < chunk.length; i++) {
            chunk[i] = (float) r.nextGaussian();
        }
        for (int t = 0; t < sizes.length; t++) {
            DeviceBuffer b = backend.allocate(DType.F32, sizes[t]);
            for (long at = 0; at < sizes[t]; at += chunk.length) {
                backend.write(chunk, 0, b, at, (int) Math.min(chunk.length, sizes[t] - at));
            }
            f.add("t" + t, b);
            h.add("t" + t, backend.allocate(DType.BF16, sizes[t]));
            bytes += 4 * sizes[t];
        }
        fp32 = f.build();
        bf16 = h.build();
        EmaConfig unguarded = EmaConfig.constant(0.999).withNonFinite(NonFinitePolicy.IGNORE);
        ema = GpuEma.create(backend, fp32, unguarded);
        ema.copyTo(bf16);
        guarded = GpuEma.create(backend, fp32, 0.999);
        fused = GpuEma.create(backend, fp32, EmaConfig.constant(0.99, 0.999, 0.9999)
                .withNonFinite(NonFinitePolicy.IGNORE));
        fromBf16 = GpuEma.create(backend, bf16, unguarded);
        copySrc = new CUdeviceptr();
        copyDst = new CUdeviceptr();
        cuMemAlloc(copySrc, bytes);
        cuMemAlloc(copyDst, bytes);
        backend.synchronize();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.synchronize();  // makes the context current on this thread
        cuMemFree(copySrc);
        cuMemFree(copyDst);
        backend.close();
    }

    @Benchmark
    @OperationsPerInvocation(UPDATES)
    public void ema() {
        for (int i = 0; i < UPDATES; i++) {
            ema.update(fp32, 0.999);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(UPDATES)
    public void emaGuarded() {
        for (int i = 0; i < UPDATES; i++) {
            guarded.update(fp32, 0.999);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(UPDATES)
    public void fusedK3() {
        for (int i = 0; i < UPDATES; i++) {
            fused.update(fp32, 0.99, 0.999, 0.9999);
        }
        backend.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(UPDATES)
    public void bf16() {
        for (int i = 0; i < UPDATES; i++) {
            fromBf16.update(bf16, 0.999);
        }
        backend.synchronize();
    }

    /** Baseline: a device-to-device copy of the parameters' bytes. */
    @Benchmark
    @OperationsPerInvocation(UPDATES)
    public void copy() {
        backend.synchronize();  // makes the context current on this thread (JMH may set up on another); idle here
        for (int i = 0; i < UPDATES; i++) {
            cuMemcpyDtoDAsync(copyDst, copySrc, bytes, new CUstream());
        }
        cuCtxSynchronize();
    }
}
