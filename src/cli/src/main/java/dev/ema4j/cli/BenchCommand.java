package dev.ema4j.cli;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.TrainingOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** A short throughput check; the JMH benchmarks in bench/ are the measurements of record. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "A short throughput check: images/s of a SmallCnn(16) training step at batch 128, and the "
                + "bandwidth of an EMA update over 16 Mi fp32 parameters (three decays), on the chosen backend.")
final class BenchCommand implements Callable<Integer> {

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        try (Backend backend = common.openBackend()) {
            System.out.println("backend: " + backend.name() + ", " + TrainingOps.of(backend).gemm());
            trainStep(backend);
            ema(backend);
        }
        return 0;
    }

    private static void trainStep(Backend backend) {
        int batch = 128;
        try (Network net = Network.build(backend, Models.smallCnn(16, 10), new Shape(1, 1, 28, 28), batch, 1)) {
            Random r = new Random(1);
            float[] x = new float[batch * 784];
            int[] y = new int[batch];
            Sgd sgd = Sgd.nesterov(5e-4);
            for (int s = 0; s < 45; s++) {
                if (s == 15) {
                    long t0 = System.nanoTime();
                    for (int t = 0; t < 30; t++) {
                        fill(r, x, y);
                        net.trainStep(x, y, sgd, 0.05);
                    }
                    double ms = (System.nanoTime() - t0) / 1e6 / 30;
                    System.out.printf("training step SmallCnn(16), batch 128: %.1f ms = %.0f images/s%n", ms,
                            batch / ms * 1000);
                    return;
                }
                fill(r, x, y);
                net.trainStep(x, y, sgd, 0.05);
            }
        }
    }

    private static void fill(Random r, float[] x, int[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < y.length; i++) {
            y[i] = r.nextInt(10);
        }
    }

    private static void ema(Backend backend) {
        int n = 1 << 24;
        try (DeviceBuffer params = backend.allocate(DType.F32, n);
             GpuEma ema = GpuEma.create(backend, Params.of(params), EmaConfig.constant(0.99, 0.999, 0.9999)
                     .withNonFinite(NonFinitePolicy.IGNORE))) {
            Params p = Params.of(params);
            for (int i = 0; i < 5; i++) {
                ema.update(p);
            }
            backend.synchronize();
            long t0 = System.nanoTime();
            int updates = 20;
            for (int i = 0; i < updates; i++) {
                ema.update(p);
            }
            backend.synchronize();
            double ms = (System.nanoTime() - t0) / 1e6 / updates;
            System.out.printf("EMA update, 16 Mi fp32 parameters, 3 decays: %.2f ms = %.1f GB/s (28 bytes/parameter)%n",
                    ms, 28.0 * n / (ms * 1e6));
        }
    }
}
