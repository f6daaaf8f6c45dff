package dev.ema4j.bench;

import static dev.ema4j.bench.DeviceQuickBench.option;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.nn.Network;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * ema4j's side of {@code bench/vs_torch.py} (PyTorch's is {@code bench/torch_cpu.py}, with the same shapes, threads and
 * work): one measurement, printed as one JSON line {@code {"ms": median, ...}}.
 *
 * <ul>
 *   <li>{@code train --model smallCnn16|resnet20}: a training step at batch {@code --batch} (128) on 1×28×28 inputs:
 *       forward, cross-entropy (the loss read), backward, Nesterov SGD (momentum 0.9, weight decay 5e-4) fused with
 *       the update of three EMAs (0.99, 0.999, 0.9999; no non-finite guard: PyTorch has none); the median over
 *       {@code --steps} steps after {@code --warmup}.</li>
 *   <li>{@code ema --layout flat|resnet50 --guard on|off}: {@code GpuEma.update(params, 0.999)} over one buffer of
 *       {@code --n} fp32 parameters (64 Mi) or over ResNet-50's 161 tensors scaled to {@code --n} in all; the median
 *       of {@code --steps} updates after {@code --warmup}.</li>
 * </ul>
 * The CPU backend uses {@code --threads} threads (default: the machine's cores, as PyTorch does).
 */
public final class CpuSide {

    private CpuSide() {
    }

    public static void main(String[] args) throws Exception {
        List<String> a = Arrays.asList(args);
        if (a.isEmpty() || !(a.get(0).equals("train") || a.get(0).equals("ema"))) {
            System.err.println("usage: CpuSide train --model smallCnn16|resnet20 [--batch 128] | ema --layout"
                    + " flat|resnet50 --guard on|off [--n 67108864]; [--threads T] [--steps S] [--warmup W]");
            System.exit(2);
        }
        int threads = Integer.parseInt(option(a, "--threads", String.valueOf(Runtime.getRuntime()
                .availableProcessors())));
        int warmup = Integer.parseInt(option(a, "--warmup", "5"));
        int steps = Integer.parseInt(option(a, "--steps", "15"));
        Map<String, Object> out = new LinkedHashMap<>();
        try (CpuBackend cpu = new CpuBackend(threads)) {
            double[] ms;
            if (a.get(0).equals("train")) {
                String model = option(a, "--model", "smallCnn16");
                int batch = Integer.parseInt(option(a, "--batch", "128"));
                ms = train(cpu, model, batch, warmup, steps);
                out.put("what", "train " + model + " batch " + batch + ", 3 EMAs");
            } else {
                String layout = option(a, "--layout", "flat");
                boolean guard = option(a, "--guard", "on").equals("on");
                int n = Integer.parseInt(option(a, "--n", String.valueOf(1 << 26)));
                ms = ema(cpu, layout, guard, n, warmup, steps);
                out.put("what", "ema " + layout + " " + n + " fp32, guard " + (guard ? "on" : "off"));
            }
            out.put("threads", threads);
            out.put("ms", median(ms));
            out.put("all", ms);
        }
        System.out.println(new ObjectMapper().writeValueAsString(out));
    }

    private static double[] train(CpuBackend cpu, String model, int batch, int warmup, int steps) {
        int batches = 4;
        float[][] x = new float[batches][batch * 28 * 28];
        int[][] y = new int[batches][batch];
        Random r = new Random(1);
        for (int b = 0; b < batches; b++) {
            for (int i = 0; i < x[b].length; i++) {
                x[b][i] = (float) r.nextGaussian();
            }
            for (int i = 0; i < batch; i++) {
                y[b][i] = r.nextInt(10);
            }
        }
        Sgd sgd = Sgd.nesterov(5e-4);
        try (Network net = Network.build(cpu, GpuTrainBenchmark.model(model), new Shape(1, 1, 28, 28), batch, 1);
             GpuEma ema = GpuEma.create(cpu, net.parameters().parameters(), EmaConfig.constant(0.99, 0.999, 0.9999)
                     .withNonFinite(NonFinitePolicy.IGNORE))) {
            int[] next = {0};
            return time(() -> {
                int b = next[0]++ % batches;
                net.trainStep(x[b], y[b], sgd, 0.01, ema);
            }, warmup, steps);
        }
    }

    private static double[] ema(CpuBackend cpu, String layout, boolean guard, int n, int warmup, int steps) {
        float[][] tensors;
        if (layout.equals("flat")) {
            tensors = new float[][] {new float[n]};
        } else {
            long[] sizes = ResNet50.tensorSizes();
            long total = Arrays.stream(sizes).sum();
            tensors = new float[sizes.length][];
            for (int i = 0; i < sizes.length; i++) {
                tensors[i] = new float[(int) Math.max(1, sizes[i] * n / total)];
            }
        }
        Random r = new Random(2);
        for (float[] t : tensors) {
            for (int i = 0; i < t.length; i++) {
                t[i] = (float) r.nextGaussian();
            }
        }
        Params params = Params.of(tensors);
        EmaConfig config = EmaConfig.constant(0.999).withNonFinite(guard ? NonFinitePolicy.SKIP
                : NonFinitePolicy.IGNORE);
        try (GpuEma ema = GpuEma.create(cpu, params, config)) {
            return time(() -> ema.update(params), warmup, steps);
        }
    }

    private static double[] time(Runnable op, int warmup, int steps) {
        for (int i = 0; i < warmup; i++) {
            op.run();
        }
        double[] ms = new double[steps];
        for (int i = 0; i < steps; i++) {
            long t0 = System.nanoTime();
            op.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        return ms;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
