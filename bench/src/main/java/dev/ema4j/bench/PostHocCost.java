package dev.ema4j.bench;

import static dev.ema4j.bench.DeviceQuickBench.option;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.io.TensorDType;
import dev.ema4j.nn.Network;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import dev.ema4j.posthoc.Combination;
import dev.ema4j.posthoc.EmaSnapshotter;
import dev.ema4j.posthoc.Profile;
import dev.ema4j.posthoc.SnapshotConfig;
import dev.ema4j.posthoc.SnapshotSet;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The costs of post-hoc EMA, printed as one JSON line.
 *
 * <ul>
 *   <li>{@code rebuild [--times 50] [--dtype F32|BF16] [--dir D]}: ResNet-18's 62 parameter tensors (11,689,512
 *       floats) with two power-function EMAs (σ_rel 0.05, 0.10), snapshotted after each of {@code --times} synthetic
 *       steps ({@code 2·times} files); the time of each snapshot (both files, fsync'd), then of opening and checking
 *       the set, fitting σ_rel 0.07 at the last time, and rebuilding it into a file. The files are deleted after.</li>
 *   <li>{@code train [--model smallCnn16|resnet20] [--steps 1024] [--every 256]}: training steps at batch 128 with
 *       three classic EMAs and the two power-function EMAs fused into the SGD step (no non-finite guard), snapshotting
 *       every {@code --every} steps; the time spent in snapshots against the whole loop's.</li>
 * </ul>
 */
public final class PostHocCost {

    private PostHocCost() {
    }

    public static void main(String[] args) throws Exception {
        List<String> a = Arrays.asList(args);
        if (a.isEmpty() || !(a.get(0).equals("rebuild") || a.get(0).equals("train"))) {
            System.err.println("usage: PostHocCost rebuild [--times 50] [--dtype F32|BF16] [--dir D] | train "
                    + "[--model smallCnn16|resnet20] [--steps 1024] [--every 256]");
            System.exit(2);
        }
        Map<String, Object> out = a.get(0).equals("rebuild") ? rebuild(a) : train(a);
        System.out.println(new ObjectMapper().writeValueAsString(out));
    }

    /** torchvision's ResNet-18: (name, shape) of its 62 parameter tensors, 11,689,512 floats. */
    static List<Map.Entry<String, long[]>> resnet18() {
        List<Map.Entry<String, long[]>> t = new ArrayList<>();
        t.add(Map.entry("conv1.weight", new long[] {64, 3, 7, 7}));
        batchNorm(t, "bn1", 64);
        int in = 64;
        for (int layer = 1; layer <= 4; layer++) {
            int c = 64 << (layer - 1);
            for (int block = 0; block < 2; block++) {
                String p = "layer" + layer + "." + block + ".";
                int from = block == 0 ? in : c;
                t.add(Map.entry(p + "conv1.weight", new long[] {c, from, 3, 3}));
                batchNorm(t, p + "bn1", c);
                t.add(Map.entry(p + "conv2.weight", new long[] {c, c, 3, 3}));
                batchNorm(t, p + "bn2", c);
                if (block == 0 && from != c) {
                    t.add(Map.entry(p + "downsample.0.weight", new long[] {c, from, 1, 1}));
                    batchNorm(t, p + "downsample.1", c);
                }
            }
            in = c;
        }
        t.add(Map.entry("fc.weight", new long[] {1000, 512}));
        t.add(Map.entry("fc.bias", new long[] {1000}));
        return t;
    }

    private static void batchNorm(List<Map.Entry<String, long[]>> t, String name, int c) {
        t.add(Map.entry(name + ".weight", new long[] {c}));
        t.add(Map.entry(name + ".bias", new long[] {c}));
    }

    private static Map<String, Object> rebuild(List<String> a) throws Exception {
        int times = Integer.parseInt(option(a, "--times", "50"));
        TensorDType dtype = TensorDType.valueOf(option(a, "--dtype", "F32"));
        Path dir = Files.createTempDirectory(Path.of(option(a, "--dir", System.getProperty("java.io.tmpdir"))),
                "posthoc-cost-");
        List<Map.Entry<String, long[]>> shapes = resnet18();
        List<float[]> tensors = new ArrayList<>();
        Params.Builder b = Params.builder();
        Random r = new Random(1);
        long count = 0;
        for (Map.Entry<String, long[]> e : shapes) {
            float[] v = new float[(int) Arrays.stream(e.getValue()).reduce(1, (x, y) -> x * y)];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) r.nextGaussian();
            }
            tensors.add(v);
            b.add(e.getKey(), v, e.getValue());
            count += v.length;
        }
        Params params = b.build();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("what", "ResNet-18 shapes, " + count + " floats, " + 2 * times + " snapshot files, " + dtype);
        double[] snapshotMs = new double[times];
        try (CpuBackend cpu = new CpuBackend();
             GpuEma ema = GpuEma.create(cpu, params, EmaConfig.of(DecaySchedule.powerFunctionSigmaRel(0.05),
                     DecaySchedule.powerFunctionSigmaRel(0.10)).withNonFinite(NonFinitePolicy.IGNORE))) {
            EmaSnapshotter snapshots = new EmaSnapshotter(ema, SnapshotConfig.of(dir).withEvery(1)
                    .withKeep(Math.max(2, times)).withDType(dtype));
            for (int step = 0; step < times; step++) {
                for (float[] v : tensors) {
                    for (int i = step % 7; i < v.length; i += 7) {
                        v[i] += 0.01f;
                    }
                }
                ema.update(params);
                long t0 = System.nanoTime();
                snapshots.afterStep();
                snapshotMs[step] = (System.nanoTime() - t0) / 1e6;
            }
        }
        out.put("snapshot_ms_median", CpuSide.median(snapshotMs));
        out.put("snapshot_bytes", Files.size(dir.resolve("snapshot-0000000001-ema0.safetensors")) * 2);
        long t0 = System.nanoTime();
        try (SnapshotSet set = SnapshotSet.open(dir)) {
            long t1 = System.nanoTime();
            Combination c = set.fit(Profile.sigmaRel(0.07, set.lastTime()));
            long t2 = System.nanoTime();
            set.write(dir.resolve("rebuilt.safetensors"), c, TensorDType.F32);
            long t3 = System.nanoTime();
            out.put("open_s", (t1 - t0) / 1e9);
            out.put("fit_s", (t2 - t1) / 1e9);
            out.put("rebuild_write_s", (t3 - t2) / 1e9);
            out.put("total_s", (t3 - t0) / 1e9);
            out.put("fit", c.toString());
        } finally {
            try (Stream<Path> files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(dir);
        }
        return out;
    }

    private static Map<String, Object> train(List<String> a) throws Exception {
        String model = option(a, "--model", "smallCnn16");
        int steps = Integer.parseInt(option(a, "--steps", "1024"));
        int every = Integer.parseInt(option(a, "--every", String.valueOf(SnapshotConfig.DEFAULT_EVERY)));
        int batch = 128;
        int batches = 4;
        float[][] x = new float[batches][batch * 28 * 28];
        int[][] y = new int[batches][batch];
        Random r = new Random(1);
        for (int i = 0; i < batches; i++) {
            for (int j = 0; j < x[i].length; j++) {
                x[i][j] = (float) r.nextGaussian();
            }
            for (int j = 0; j < batch; j++) {
                y[i][j] = r.nextInt(10);
            }
        }
        Path dir = Files.createTempDirectory("posthoc-train-");
        Sgd sgd = Sgd.nesterov(5e-4);
        long total;
        long inSnapshots = 0;
        int taken = 0;
        try (CpuBackend cpu = new CpuBackend();
             Network net = Network.build(cpu, GpuTrainBenchmark.model(model), new Shape(1, 1, 28, 28), batch, 1);
             GpuEma ema = GpuEma.create(cpu, net.parameters().parameters(), EmaConfig.of(
                     DecaySchedule.constant(0.99), DecaySchedule.constant(0.999), DecaySchedule.constant(0.9999),
                     DecaySchedule.powerFunctionSigmaRel(0.05), DecaySchedule.powerFunctionSigmaRel(0.10))
                     .withNonFinite(NonFinitePolicy.IGNORE))) {
            EmaSnapshotter snapshots = new EmaSnapshotter(ema, SnapshotConfig.of(dir).withEvery(every));
            for (int i = 0; i < 5; i++) {
                net.trainStep(x[i % batches], y[i % batches], sgd, 0.01);
            }
            long start = System.nanoTime();
            for (int step = 0; step < steps; step++) {
                net.trainStep(x[step % batches], y[step % batches], sgd, 0.01, ema);
                long t0 = System.nanoTime();
                taken += snapshots.afterStep() ? 1 : 0;
                inSnapshots += System.nanoTime() - t0;
            }
            total = System.nanoTime() - start;
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("what", model + " batch 128, 3 classic + 2 power-function EMAs, " + steps + " steps, a snapshot "
                    + "every " + every + " steps (" + net.parameters().parameterCount() + " parameters)");
            out.put("snapshots", taken);
            out.put("loop_s", total / 1e9);
            out.put("snapshot_s", inSnapshots / 1e9);
            out.put("overhead_percent", 100.0 * inSnapshots / (total - inSnapshots));
            return out;
        } finally {
            try (Stream<Path> files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(dir);
        }
    }
}
