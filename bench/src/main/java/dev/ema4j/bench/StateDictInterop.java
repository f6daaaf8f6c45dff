package dev.ema4j.bench;

import dev.ema4j.GpuEma;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.nn.Layer;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Writes an EMA model's state dict for bench/interop/check_state_dict.py, which loads it into the equivalent
 * PyTorch module: trains {@code smallcnn} (SmallCnn(8)) or {@code resnet} (ResNet-8, width 4) for 20 SGD steps on
 * random data with EMAs of the weights and of the BatchNorm statistics, swaps both in, and writes
 * {@code DIR/<model>.safetensors} (F32), {@code DIR/<model>-bf16.safetensors} and
 * {@code DIR/<model>-expected.safetensors} (16 inputs {@code x} and the EMA model's class probabilities {@code probs}
 * in eval mode).
 *
 * <pre>{@code java -cp ... dev.ema4j.bench.StateDictInterop DIR smallcnn|resnet}</pre>
 */
public final class StateDictInterop {

    private static final Shape SAMPLE = new Shape(1, 1, 28, 28);
    private static final int BATCH = 16;

    private StateDictInterop() {
    }

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args[0]);
        String model = args[1];
        Layer body = switch (model) {
            case "smallcnn" -> Models.smallCnn(8, 10);
            case "resnet" -> Models.resnet(8, 4, 10);
            default -> throw new IllegalArgumentException("model is \"" + model + "\"; must be smallcnn or resnet");
        };
        Files.createDirectories(dir);
        Random r = new Random(7);
        float[] x = new float[BATCH * SAMPLE.sampleSize()];
        int[] y = new int[BATCH];
        try (Backend backend = new CpuBackend();
             Network net = Network.build(backend, body, SAMPLE, BATCH, 1);
             GpuEma weights = GpuEma.create(backend, net.parameters().parameters(), 0.9);
             GpuEma stats = GpuEma.create(backend, net.parameters().statisticsParams(), 0.9)) {
            for (int step = 0; step < 20; step++) {
                fill(r, x, y);
                net.trainStep(x, y, Sgd.nesterov(5e-4), 0.05, weights);
                stats.update(net.parameters().statisticsParams());
            }
            fill(r, x, y);
            try (SwapScope w = weights.swapInto(net.parameters().parameters());
                 SwapScope s = stats.swapInto(net.parameters().statisticsParams())) {
                net.exportStateDict(dir.resolve(model + ".safetensors"), TensorDType.F32);
                net.exportStateDict(dir.resolve(model + "-bf16.safetensors"), TensorDType.BF16);
                float[] probs = net.predict(x, BATCH);
                SafetensorsWriter.write(dir.resolve(model + "-expected.safetensors"), Map.of(), List.of(
                        new FloatTensor("x", List.of((long) BATCH, 1L, 28L, 28L), source(x)),
                        new FloatTensor("probs", List.of((long) BATCH, 10L), source(probs))));
            }
            System.out.println("wrote " + dir.resolve(model + ".safetensors") + " and its bf16 copy and inputs");
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

    private static dev.ema4j.io.FloatSource source(float[] values) {
        return (offset, dst, dstOffset, length) -> System.arraycopy(values, (int) offset, dst, dstOffset, length);
    }
}
