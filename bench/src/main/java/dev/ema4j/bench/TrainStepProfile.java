package dev.ema4j.bench;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.data.Batch;
import dev.ema4j.data.BatchConfig;
import dev.ema4j.data.Batches;
import dev.ema4j.data.FashionMnist;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.TrainingOps;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where the time of a training step goes ({@code SmallCnn(16)}, or the model named by the first argument:
 * {@code smallCnn16}, {@code resnet20}): every {@link NnOps} call timed by a proxy and keyed
 * by operation and input shape (which identifies the layer), plus the EMA update, over 40 steps after 20 of
 * warm-up. Prints a Markdown table.
 */
public final class TrainStepProfile {

    private TrainStepProfile() {
    }

    public static void main(String[] args) throws IOException {
        String model = args.length > 0 ? args[0] : "smallCnn16";
        int warmup = 20;
        int measured = 40;
        Map<String, long[]> times = new LinkedHashMap<>();
        try (Backend backend = new CpuBackend()) {
            NnOps real = TrainingOps.of(backend);
            NnOps timed = (NnOps) Proxy.newProxyInstance(NnOps.class.getClassLoader(), new Class<?>[] {NnOps.class},
                    (proxy, method, a) -> {
                        long t0 = System.nanoTime();
                        try {
                            return method.invoke(real, a);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        } finally {
                            String key = method.getName() + (a != null && a[0] instanceof Tensor t ? " " + t.shape() : "");
                            times.computeIfAbsent(key, k -> new long[1])[0] += System.nanoTime() - t0;
                        }
                    });
            try (Network net = Network.build(backend, timed, GpuTrainBenchmark.model(model),
                    new Shape(1, 1, 28, 28), 128, 1);
                 GpuEma ema = GpuEma.create(backend, net.parameters().parameters(),
                         EmaConfig.constant(0.99, 0.999, 0.9999).withNonFinite(NonFinitePolicy.IGNORE))) {
                Params params = net.parameters().parameters();
                Batches batches = new Batches(FashionMnist.train(null).view(), BatchConfig.training(128, 1));
                Sgd sgd = Sgd.nesterov(5e-4);
                long total = 0;
                long emaTime = 0;
                for (int s = 0; s < warmup + measured; s++) {
                    if (s == warmup) {
                        times.clear();
                    }
                    Batch b = batches.batch(0, s);
                    long t0 = System.nanoTime();
                    net.trainStep(b.x(), b.y(), sgd, 0.05);
                    long t1 = System.nanoTime();
                    ema.update(params);
                    long t2 = System.nanoTime();
                    if (s >= warmup) {
                        total += t2 - t0;
                        emaTime += t2 - t1;
                    }
                }
                double step = total / 1e6 / measured;
                long all = total;
                System.out.printf("%s, batch 128, %s, %s%n", model, backend.name(), real.gemm());
                System.out.printf("%.1f ms per step = %.0f images/s%n%n", step, 128 / step * 1000);
                System.out.println("| operation (input shape) | ms/step | share |\n|---|---:|---:|");
                times.put("ema update (3 decays, 12-28 B/param)", new long[] {emaTime});
                times.entrySet().stream().sorted((p, q) -> Long.compare(q.getValue()[0], p.getValue()[0]))
                        .forEach(e -> System.out.printf("| %s | %.2f | %.1f%% |%n", e.getKey(),
                                e.getValue()[0] / 1e6 / measured, 100.0 * e.getValue()[0] / all));
            }
        }
    }
}
