package dev.ema4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ema4j.GpuEma;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.TensorDType;
import dev.ema4j.io.TensorInfo;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Networks export PyTorch-shaped state dicts: names, shapes and bytes; and an EMA model through a swap. */
class StateDictExportTest {

    private static final Shape MNIST = new Shape(1, 1, 28, 28);

    /** The keys and shapes of PyTorch's state_dict of the equivalent SmallCnn(4), 10 classes. */
    private static Map<String, List<Long>> smallCnnKeys() {
        Map<String, List<Long>> keys = new LinkedHashMap<>();
        long[][] convs = {{4, 1}, {4, 4}, {8, 4}, {8, 8}};
        for (int i = 0; i < 4; i++) {
            keys.put("conv" + (i + 1) + ".weight", List.of(convs[i][0], convs[i][1], 3L, 3L));
            for (String p : new String[] {"weight", "bias", "running_mean", "running_var"}) {
                keys.put("bn" + (i + 1) + "." + p, List.of(convs[i][0]));
            }
        }
        keys.put("fc.weight", List.of(10L, 8L));
        keys.put("fc.bias", List.of(10L));
        return keys;
    }

    @Test
    void smallCnnKeysShapesAndBytesAreTorchs(@TempDir Path dir) throws IOException {
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 10), MNIST, 8, 3)) {
            Path file = dir.resolve("model.safetensors");
            net.exportStateDict(file, TensorDType.F32);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                Map<String, List<Long>> actual = new LinkedHashMap<>();
                f.tensors().forEach(t -> actual.put(t.name(), t.shape()));
                assertEquals(smallCnnKeys(), actual);
                assertEquals("pt", f.metadata().get("format"));
                for (ParameterStore.Slot slot : net.parameters().slots()) {
                    assertArrayEquals(values(backend, net.parameters().value(slot)), read(f, slot.name()),
                            slot.name());
                }
            }
        }
    }

    @Test
    void resnetShortcutsKeepTheirFourDimensions(@TempDir Path dir) throws IOException {
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.resnet(8, 4, 10), MNIST, 4, 3)) {
            Path file = dir.resolve("resnet.safetensors");
            net.exportStateDict(file, TensorDType.BF16);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                TensorInfo shortcut = f.tensor("layer2.0.shortcut.0.weight").orElseThrow();
                assertEquals(List.of(8L, 4L, 1L, 1L), shortcut.shape(), "a 1x1 convolution's weight");
                assertEquals(TensorDType.BF16, shortcut.dtype());
                assertEquals(List.of(8L), f.tensor("layer2.0.shortcut.1.running_var").orElseThrow().shape());
                assertEquals(List.of(16L, 16L, 3L, 3L), f.tensor("layer3.0.conv2.weight").orElseThrow().shape());
                assertEquals(net.parameters().slots().size(), f.tensors().size());
            }
        }
    }

    /** An EMA model exported inside the swaps of both EMAs holds the shadows, not the live weights. */
    @Test
    void anEmaModelExportsThroughSwaps(@TempDir Path dir) throws IOException {
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 10), MNIST, 8, 3);
             GpuEma weights = GpuEma.create(backend, net.parameters().parameters(), 0.9);
             GpuEma stats = GpuEma.create(backend, net.parameters().statisticsParams(), 0.9)) {
            Random r = new Random(1);
            float[] x = new float[8 * 784];
            int[] y = new int[8];
            for (int step = 0; step < 3; step++) {
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < y.length; i++) {
                    y[i] = r.nextInt(10);
                }
                net.trainStep(x, y, Sgd.nesterov(5e-4), 0.1, weights);
                stats.update(net.parameters().statisticsParams());
            }
            float[] liveFc = values(backend, net.parameters().value(slot(net, "fc.weight")));
            Path file = dir.resolve("ema.safetensors");
            List<float[]> expected = new ArrayList<>();
            try (SwapScope w = weights.swapInto(net.parameters().parameters());
                 SwapScope s = stats.swapInto(net.parameters().statisticsParams())) {
                net.exportStateDict(file, TensorDType.F32);
                for (ParameterStore.Slot slot : net.parameters().slots()) {
                    expected.add(values(backend, net.parameters().value(slot)));
                }
            }
            assertArrayEquals(liveFc, values(backend, net.parameters().value(slot(net, "fc.weight"))),
                    "live weights restored");
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                List<ParameterStore.Slot> slots = net.parameters().slots();
                for (int i = 0; i < slots.size(); i++) {
                    assertArrayEquals(expected.get(i), read(f, slots.get(i).name()), slots.get(i).name());
                }
                float[] emaFc = read(f, "fc.weight");
                assertEquals(false, java.util.Arrays.equals(liveFc, emaFc), "the EMA differs from the live weights");
            }
        }
    }

    private static ParameterStore.Slot slot(Network net, String name) {
        return net.parameters().slots().stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow();
    }

    private static float[] values(Backend backend, Tensor t) {
        float[] v = new float[t.size()];
        backend.read(t.buffer(), t.offset(), v, 0, v.length);
        return v;
    }

    private static float[] read(SafetensorsFile f, String name) throws IOException {
        TensorInfo t = f.tensor(name).orElseThrow();
        float[] v = new float[(int) t.elementCount()];
        f.readF32(t, 0, v, 0, v.length);
        return v;
    }
}
