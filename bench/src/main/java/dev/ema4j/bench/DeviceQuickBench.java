package dev.ema4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.Backends;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.nn.FusedSgdStep;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.TrainingOps;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.ops.cuda.CudaNnOps;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Short benchmarks for the device check (bench/device/run.sh): one JVM, a few warm-up and timed operations, no JMH
 * forks. Each figure is milliseconds per operation: the best of {@code --repeats} runs of {@code --reps}
 * back-to-back operations, each run ended by {@code synchronize()} and timed with {@link System#nanoTime()}, after
 * {@code --warmup} operations; the same method as bench/device/torch_timing.py, so the ratios against PyTorch compare
 * like with like. Launch overhead is included, host synchronization amortized.
 *
 * <ul>
 *   <li>{@code ema}: for each shape (flat25M: one tensor of 2.5e7 fp32; resnet50: ResNet-50's 161 tensors; flat1G:
 *       one tensor of 1e9; tiny: three small tensors, for dry runs on the CPU), a copy of the parameters' bytes in
 *       one device-to-device copy (the bandwidth reference, 8 bytes per parameter), the update with one shadow
 *       unguarded ({@code ema}, 12) and guarded ({@code emaGuarded}, 12 nominal: the check reads the parameters
 *       again), three shadows in one pass ({@code fusedK3}, 28) and as three single updates ({@code threeSingles},
 *       36), and bf16 parameters into an fp32 shadow ({@code bf16}, 10). Buffers live only while their figure is
 *       measured: at most the parameters and three shadows are resident (16 GB for flat1G).</li>
 *   <li>{@code train}: over {@code --n} fp32 parameters (2.5e7), a copy (8 bytes per parameter), the Nesterov SGD
 *       step (20), and the step fused with one and three EMA updates (28, 44); the 3×3 convolution of
 *       {@link GpuOpsBenchmark} forward and backward; a training step (forward, loss read back, backward, SGD fused
 *       with the EMA) of each of {@code --models} at batch {@code --batch} on 1×28×28 inputs, as
 *       {@link GpuTrainBenchmark}: on CUDA with the passes replayed as CUDA graphs ({@code trainStep}, the default)
 *       and without ({@code trainStepNoGraphs}).</li>
 * </ul>
 *
 * <p>Writes {@code PREFIX.json} (every figure, machine-readable), {@code PREFIX.md} (a Markdown table) and
 * {@code PREFIX.line} (one line of key numbers) and prints the table and the line.
 *
 * <pre>{@code java -cp ... dev.ema4j.bench.DeviceQuickBench ema|train --out PREFIX [--backend cuda|cpu]
 *     [--shapes flat25M,resnet50,flat1G] [--models smallCnn16,resnet20] [--n 25000000] [--batch 128]
 *     [--conv-batch 128] [--warmup 3] [--reps 10] [--repeats 5] [--steps 20]}</pre>
 * {@code --steps} is the number of training steps per timed run (their warm-up is {@code --warmup} steps);
 * {@code --backend cpu} runs the same code on the CPU backend (for a dry run: small sizes, meaningless speeds).
 */
public final class DeviceQuickBench {

    /** Bytes per parameter of each EMA figure (see the class comment). */
    static final Map<String, Integer> EMA_BYTES = Map.of("copy", 8, "ema", 12, "emaGuarded", 12, "fusedK3", 28,
            "threeSingles", 36, "bf16", 10);
    /** Bytes per parameter of each optimizer figure: the bandwidth floor of GpuOpsBenchmark. */
    static final Map<String, Integer> OPT_BYTES = GpuOpsBenchmark.BYTES_PER_PARAM;

    private static final Sgd SGD = new Sgd(0.9, 5e-4, true);
    private static final double DECAY = 0.999;

    private final Backend backend;
    private final int warmup;
    private final int reps;
    private final int repeats;
    private final List<Map<String, Object>> rows = new ArrayList<>();

    private DeviceQuickBench(Backend backend, int warmup, int reps, int repeats) {
        this.backend = backend;
        this.warmup = warmup;
        this.reps = reps;
        this.repeats = repeats;
    }

    public static void main(String[] args) throws IOException {
        List<String> a = new ArrayList<>(Arrays.asList(args));
        String group = a.isEmpty() ? "" : a.get(0);
        String out = option(a, "--out", null);
        if (!(group.equals("ema") || group.equals("train")) || out == null) {
            System.err.println("usage: DeviceQuickBench ema|train --out PREFIX [--backend cuda|cpu] [--shapes ...]"
                    + " [--models ...] [--n N] [--batch B] [--conv-batch B] [--warmup W] [--reps R] [--repeats K]"
                    + " [--steps S]");
            System.exit(2);
        }
        String kind = option(a, "--backend", "cuda");
        int warmup = Integer.parseInt(option(a, "--warmup", "3"));
        int reps = Integer.parseInt(option(a, "--reps", "10"));
        int repeats = Integer.parseInt(option(a, "--repeats", "5"));
        try (Backend backend = switch (kind) {
            case "cuda" -> Backends.cuda();
            case "cpu" -> Backends.cpu();
            default -> throw new IllegalArgumentException("--backend is cuda or cpu, not " + kind);
        }) {
            DeviceQuickBench bench = new DeviceQuickBench(backend, warmup, reps, repeats);
            String table;
            String line;
            if (group.equals("ema")) {
                List<String> shapes = List.of(option(a, "--shapes", "flat25M,resnet50,flat1G").split(","));
                for (String shape : shapes) {
                    bench.ema(shape);
                }
                table = bench.emaTable();
                line = bench.emaLine(shapes);
            } else {
                int n = Integer.parseInt(option(a, "--n", "25000000"));
                int convBatch = Integer.parseInt(option(a, "--conv-batch", "128"));
                int batch = Integer.parseInt(option(a, "--batch", "128"));
                int steps = Integer.parseInt(option(a, "--steps", "20"));
                bench.optimizer(n);
                bench.conv(convBatch);
                for (String model : option(a, "--models", "smallCnn16,resnet20").split(",")) {
                    bench.trainStep(model, batch, steps);
                }
                table = bench.trainTable();
                line = bench.trainLine();
            }
            Map<String, Object> json = new LinkedHashMap<>();
            json.put("group", group);
            json.put("backend", backend.name());
            json.put("method", String.format("best of %d runs of %d operations after %d warm-ups", repeats, reps,
                    warmup));
            json.put("rows", bench.rows);
            json.put("summary", line);
            new ObjectMapper().writeValue(Path.of(out + ".json").toFile(), json);
            Files.writeString(Path.of(out + ".md"), table);
            Files.writeString(Path.of(out + ".line"), line + "\n");
            System.out.println();
            System.out.println(table);
            System.out.println("summary: " + line);
        }
    }

    /** The value after {@code name} in {@code args}, else {@code otherwise}. */
    static String option(List<String> args, String name, String otherwise) {
        int i = args.indexOf(name);
        return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : otherwise;
    }

    // --- timing ----------------------------------------------------------------------------------------------------

    /** Milliseconds per call of {@code op}: the best of {@link #repeats} runs of {@code n} calls, after warm-up. */
    private double time(Runnable op, int warmupCalls, int n) {
        for (int i = 0; i < warmupCalls; i++) {
            op.run();
        }
        backend.synchronize();
        double best = Double.POSITIVE_INFINITY;
        for (int r = 0; r < repeats; r++) {
            long start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                op.run();
            }
            backend.synchronize();
            best = Math.min(best, (System.nanoTime() - start) / 1e6 / n);
        }
        return best;
    }

    private double time(Runnable op) {
        return time(op, warmup, reps);
    }

    private Map<String, Object> row(String shape, String op, double ms) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("shape", shape);
        row.put("op", op);
        row.put("ms", ms);
        rows.add(row);
        return row;
    }

    private Map<String, Object> find(String shape, String op) {
        for (Map<String, Object> r : rows) {
            if (r.get("shape").equals(shape) && r.get("op").equals(op)) {
                return r;
            }
        }
        return null;
    }

    private double ms(String shape, String op) {
        Map<String, Object> r = find(shape, op);
        return r == null ? Double.NaN : (Double) r.get("ms");
    }

    private DeviceBuffer random(DType dtype, long n, float[] chunk) {
        DeviceBuffer b = backend.allocate(dtype, n);
        if (dtype == DType.F32) {
            for (long at = 0; at < n; at += chunk.length) {
                backend.write(chunk, 0, b, at, (int) Math.min(chunk.length, n - at));
            }
        }
        return b;
    }

    private static float[] gaussians(int n, long seed) {
        float[] v = new float[n];
        Random r = new Random(seed);
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    // --- EMA -------------------------------------------------------------------------------------------------------

    static long[] sizes(String shape) {
        return shape.equals("tiny") ? new long[] {100_000, 4_099, 37} : GpuEmaBenchmark.sizes(shape);
    }

    private void ema(String shape) {
        long[] sizes = sizes(shape);
        long n = Arrays.stream(sizes).sum();
        float[] chunk = gaussians((int) Math.min(n, 1 << 24), 1);
        List<DeviceBuffer> owned = new ArrayList<>();
        try {
            NnOps ops = TrainingOps.of(backend);
            // the bandwidth reference: one device-to-device copy of all the parameters' bytes
            try (DeviceBuffer src = random(DType.F32, n, chunk); DeviceBuffer dst = backend.allocate(DType.F32, n)) {
                Tensor from = Tensor.of(src, Shape.of(1, (int) n));
                Tensor to = Tensor.of(dst, Shape.of(1, (int) n));
                record(shape, "copy", n, time(() -> ops.copy(from, to)));
            }
            Params.Builder f = Params.builder();
            for (int t = 0; t < sizes.length; t++) {
                DeviceBuffer b = random(DType.F32, sizes[t], chunk);
                owned.add(b);
                f.add("t" + t, b);
            }
            Params fp32 = f.build();
            EmaConfig unguarded = EmaConfig.constant(DECAY).withNonFinite(NonFinitePolicy.IGNORE);
            try (GpuEma ema = GpuEma.create(backend, fp32, unguarded)) {
                record(shape, "ema", n, time(() -> ema.update(fp32, DECAY)));
            }
            try (GpuEma guarded = GpuEma.create(backend, fp32, DECAY)) {
                record(shape, "emaGuarded", n, time(() -> guarded.update(fp32, DECAY)));
            }
            try (GpuEma fused = GpuEma.create(backend, fp32, EmaConfig.constant(0.99, DECAY, 0.9999)
                    .withNonFinite(NonFinitePolicy.IGNORE))) {
                record(shape, "fusedK3", n, time(() -> fused.update(fp32, 0.99, DECAY, 0.9999)));
            }
            try (GpuEma a = GpuEma.create(backend, fp32, unguarded);
                 GpuEma b = GpuEma.create(backend, fp32, unguarded);
                 GpuEma c = GpuEma.create(backend, fp32, unguarded)) {
                record(shape, "threeSingles", n, time(() -> {
                    a.update(fp32, 0.99);
                    b.update(fp32, DECAY);
                    c.update(fp32, 0.9999);
                }));
            }
            Params.Builder h = Params.builder();
            List<DeviceBuffer> halves = new ArrayList<>();
            for (int t = 0; t < sizes.length; t++) {
                DeviceBuffer b = backend.allocate(DType.BF16, sizes[t]);
                halves.add(b);
                h.add("t" + t, b);
            }
            Params bf16 = h.build();
            try (GpuEma seed = GpuEma.create(backend, fp32, unguarded)) {
                seed.copyTo(bf16);  // the fp32 parameters, rounded to bf16
            }
            for (DeviceBuffer b : owned) {
                b.close();
            }
            owned.clear();
            owned.addAll(halves);
            try (GpuEma fromBf16 = GpuEma.create(backend, bf16, unguarded)) {
                record(shape, "bf16", n, time(() -> fromBf16.update(bf16, DECAY)));
            }
        } finally {
            backend.synchronize();
            for (DeviceBuffer b : owned) {
                b.close();
            }
        }
    }

    private void record(String shape, String op, long n, double ms) {
        Map<String, Object> r = row(shape, op, ms);
        r.put("params", n);
        r.put("bytesPerParam", EMA_BYTES.get(op));
        double gbps = EMA_BYTES.get(op) * (double) n / (ms * 1e6);
        r.put("gbps", gbps);
        double copy = ms(shape, "copy");
        if (!op.equals("copy")) {
            r.put("vsCopy", gbps / (8.0 * n / (copy * 1e6)));
        }
        System.out.printf(Locale.ROOT, "%s %s: %.4f ms, %.1f GB/s%s%n", shape, op, ms, gbps,
                op.equals("copy") ? "" : String.format(Locale.ROOT, ", %.3f of the copy's GB/s", r.get("vsCopy")));
    }

    private String emaTable() {
        StringBuilder sb = new StringBuilder("ema4j on " + backend.name() + "; GB/s counts 12 bytes per parameter for"
                + " one fp32 shadow (ema, emaGuarded: the guard's second read of the parameters is not counted), 28"
                + " for three in one pass (fusedK3), 36 for three single updates, 10 for bf16 parameters, 8 for the"
                + " copy.\n\n| shape | op | ms | GB/s | vs copy |\n|---|---|---:|---:|---:|\n");
        for (Map<String, Object> r : rows) {
            Object vs = r.get("vsCopy");
            sb.append(String.format(Locale.ROOT, "| %s | %s | %.4f | %.1f | %s |%n", r.get("shape"), r.get("op"),
                    r.get("ms"), r.get("gbps"), vs == null ? "" : String.format(Locale.ROOT, "%.3f", vs)));
        }
        return sb.toString();
    }

    /** Per shape: the EMA's bandwidth and its fraction of the copy's, the guard's cost, fusion's gain, bf16. */
    private String emaLine(List<String> shapes) {
        List<String> parts = new ArrayList<>();
        for (String s : shapes) {
            Map<String, Object> ema = find(s, "ema");
            Map<String, Object> bf16 = find(s, "bf16");
            if (ema == null || bf16 == null) {
                continue;
            }
            parts.add(String.format(Locale.ROOT, "%s ema %.0f GB/s = %.2f of copy, guarded %.2fx unguarded speed,"
                    + " fusedK3 %.2fx three singles, bf16 %.0f GB/s", s, ema.get("gbps"), ema.get("vsCopy"),
                    ms(s, "ema") / ms(s, "emaGuarded"), ms(s, "threeSingles") / ms(s, "fusedK3"), bf16.get("gbps")));
        }
        return String.join("; ", parts);
    }

    // --- training --------------------------------------------------------------------------------------------------

    private void optimizer(int n) {
        NnOps ops = TrainingOps.of(backend);
        float[] chunk = gaussians(Math.min(n, 1 << 24), 1);
        try (DeviceBuffer params = random(DType.F32, n, chunk);
             DeviceBuffer grads = random(DType.F32, n, gaussians(Math.min(n, 1 << 24), 2));
             DeviceBuffer momentum = backend.allocate(DType.F32, n);
             DeviceBuffer copy = backend.allocate(DType.F32, n)) {
            backend.write(new float[n], 0, momentum, 0, n);
            Tensor src = Tensor.of(params, Shape.of(1, n));
            Tensor dst = Tensor.of(copy, Shape.of(1, n));
            optRow("copy", n, time(() -> ops.copy(src, dst)));
            double lr = 1e-6;
            optRow("sgd", n, time(() -> ops.sgdStep(params, grads, momentum, SGD, lr)));
            Params tracked = Params.of(params);
            FusedSgdStep step = new FusedSgdStep(ops, params, grads, momentum, SGD, lr);
            try (GpuEma ema1 = GpuEma.create(backend, tracked, EmaConfig.constant(DECAY)
                    .withNonFinite(NonFinitePolicy.IGNORE));
                 GpuEma ema3 = GpuEma.create(backend, tracked, EmaConfig.constant(0.99, DECAY, 0.9999)
                         .withNonFinite(NonFinitePolicy.IGNORE))) {
                optRow("sgdEma1", n, time(() -> ema1.stepAndUpdate(tracked, step)));
                optRow("sgdEma3", n, time(() -> ema3.stepAndUpdate(tracked, step)));
            }
            backend.synchronize();
        }
    }

    private void optRow(String op, int n, double ms) {
        Map<String, Object> r = row("params" + n, op, ms);
        r.put("params", n);
        r.put("bytesPerParam", OPT_BYTES.get(op));
        double gbps = OPT_BYTES.get(op) * (double) n / (ms * 1e6);
        r.put("gbps", gbps);
        double copy = ms("params" + n, "copy");
        if (!op.equals("copy")) {
            r.put("vsCopy", gbps / (8.0 * n / (copy * 1e6)));
        }
        System.out.printf(Locale.ROOT, "%s over %d params: %.4f ms, %.1f GB/s%n", op, n, ms, gbps);
    }

    private void conv(int batch) {
        NnOps ops = TrainingOps.of(backend);
        Shape in = GpuOpsBenchmark.CONV_INPUT.withBatch(batch);
        int k = GpuOpsBenchmark.CONV_K;
        Shape out = new Shape(in.n(), k, in.h(), in.w());
        Shape ws = new Shape(k, in.c(), 3, 3);
        try (DeviceBuffer xb = random(DType.F32, in.size(), gaussians(in.size(), 3));
             DeviceBuffer wb = random(DType.F32, ws.size(), gaussians(ws.size(), 4));
             DeviceBuffer yb = random(DType.F32, out.size(), gaussians(out.size(), 5));
             DeviceBuffer dxb = backend.allocate(DType.F32, in.size());
             DeviceBuffer dwb = backend.allocate(DType.F32, ws.size())) {
            Tensor x = Tensor.of(xb, in);
            Tensor w = Tensor.of(wb, ws);
            Tensor y = Tensor.of(yb, out);
            Tensor dx = Tensor.of(dxb, in);
            Tensor dw = Tensor.of(dwb, ws);
            double flops = 2.0 * in.size() * k * 9;
            String shape = in + " -> " + k + " ch, 3x3";
            convRow(shape, "convForward", flops, time(() -> ops.conv2dForward(x, w, null, y, 1, 1)));
            convRow(shape, "convBackward", 2 * flops, time(() -> ops.conv2dBackward(x, w, y, dx, dw, null, 1, 1)));
            backend.synchronize();
        }
    }

    private void convRow(String shape, String op, double flops, double ms) {
        Map<String, Object> r = row(shape, op, ms);
        r.put("gflops", flops / (ms * 1e6));
        System.out.printf(Locale.ROOT, "%s %s: %.4f ms, %.0f GFLOP/s%n", op, shape, ms, flops / (ms * 1e6));
    }

    private void trainStep(String model, int batch, int steps) {
        int batches = 8;
        float[][] x = new float[batches][];
        int[][] y = new int[batches][batch];
        Random r = new Random(1);
        for (int b = 0; b < batches; b++) {
            x[b] = gaussians(batch * 28 * 28, 10 + b);
            for (int i = 0; i < batch; i++) {
                y[b][i] = r.nextInt(10);
            }
        }
        Sgd sgd = Sgd.nesterov(5e-4);
        double lr = 0.01;
        for (boolean graphs : new boolean[] {true, false}) {
            if (!graphs && !(backend instanceof CudaBackend)) {
                continue;  // only CUDA replays passes
            }
            try (CudaNnOps uncaptured = graphs ? null : uncapturedOps((CudaBackend) backend);
                 Network net = Network.build(backend, graphs ? TrainingOps.of(backend) : uncaptured,
                         GpuTrainBenchmark.model(model), new Shape(1, 1, 28, 28), batch, 1);
                 GpuEma ema = GpuEma.create(backend, net.parameters().parameters(), EmaConfig.constant(DECAY)
                         .withNonFinite(NonFinitePolicy.IGNORE))) {
                int[] next = {0};
                double ms = time(() -> {
                    int b = next[0];
                    next[0] = (b + 1) % batches;
                    net.gradients(x[b], y[b], lr);
                    ema.stepAndUpdate(net.parameters().parameters(), net.sgdStep(sgd, lr));
                }, warmup, steps);
                String op = graphs ? "trainStep" : "trainStepNoGraphs";
                String replays = (graphs ? TrainingOps.of(backend) : uncaptured).replays();
                Map<String, Object> row = row("batch" + batch, op, ms);
                row.put("model", model);
                row.put("imagesPerSecond", batch / ms * 1000);
                row.put("replays", replays);
                System.out.printf(Locale.ROOT, "%s %s, batch %d: %.3f ms, %.0f images/s (%s)%n", op, model, batch, ms,
                        batch / ms * 1000, replays);
            }
        }
    }

    /** The CUDA operations with CUDA graphs turned off (NOTE: [pass-graphs] in CudaNnOps), for the comparison. */
    private static CudaNnOps uncapturedOps(CudaBackend cuda) {
        String before = System.getProperty(CudaNnOps.GRAPHS_PROPERTY);
        System.setProperty(CudaNnOps.GRAPHS_PROPERTY, "false");
        try {
            return new CudaNnOps(cuda);
        } finally {
            if (before == null) {
                System.clearProperty(CudaNnOps.GRAPHS_PROPERTY);
            } else {
                System.setProperty(CudaNnOps.GRAPHS_PROPERTY, before);
            }
        }
    }

    private String trainTable() {
        StringBuilder sb = new StringBuilder("ema4j on " + backend.name() + "\n\n| operation | shape | ms | throughput |"
                + " vs copy |\n|---|---|---:|---:|---:|\n");
        for (Map<String, Object> r : rows) {
            String op = r.get("op") + (r.containsKey("model") ? " " + r.get("model") : "");
            String throughput = r.containsKey("gbps") ? String.format(Locale.ROOT, "%.1f GB/s", r.get("gbps"))
                    : r.containsKey("gflops") ? String.format(Locale.ROOT, "%.0f GFLOP/s", r.get("gflops"))
                    : String.format(Locale.ROOT, "%.0f images/s", r.get("imagesPerSecond"));
            Object vs = r.get("vsCopy");
            sb.append(String.format(Locale.ROOT, "| %s | %s | %.4f | %s | %s |%n", op, r.get("shape"), r.get("ms"),
                    throughput, vs == null ? "" : String.format(Locale.ROOT, "%.3f", vs)));
        }
        return sb.toString();
    }

    private String trainLine() {
        List<String> parts = new ArrayList<>();
        for (Map<String, Object> r : rows) {
            String op = (String) r.get("op");
            if (op.startsWith("sgd")) {
                parts.add(String.format(Locale.ROOT, "%s %.0f GB/s = %.2f of copy", op, r.get("gbps"), r.get("vsCopy")));
            } else if (op.startsWith("conv")) {
                parts.add(String.format(Locale.ROOT, "%s %.0f GFLOP/s", op, r.get("gflops")));
            } else if (op.startsWith("trainStep")) {
                parts.add(String.format(Locale.ROOT, "%s%s %.2f ms (%.0f images/s)", r.get("model"),
                        op.equals("trainStep") ? "" : " without graphs", r.get("ms"), r.get("imagesPerSecond")));
            }
        }
        return String.join(", ", parts);
    }
}
