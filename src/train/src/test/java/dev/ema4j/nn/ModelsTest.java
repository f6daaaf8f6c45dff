package dev.ema4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import org.junit.jupiter.api.Test;

/** The model families: parameter counts computed by hand, and a training step that runs and lowers the loss. */
class ModelsTest {

    private static final Shape MNIST = new Shape(1, 1, 28, 28);

    @Test
    void smallCnnHasTheDocumentedParameters() {
        int w = 16;
        long expected = 9L * w + 2 * w           // conv1 1→w, bn1
                + 9L * w * w + 2 * w             // conv2 w→w, bn2
                + 9L * w * 2 * w + 4 * w         // conv3 w→2w, bn3
                + 9L * 4 * w * w + 4 * w         // conv4 2w→2w, bn4
                + 2L * w * 10 + 10;              // fc 2w→10
        assertEquals(16_794, expected);
        try (Backend backend = new CpuBackend(1);
             Network net = Network.build(backend, Models.smallCnn(w, 10), MNIST, 2, 1)) {
            assertEquals(expected, net.parameters().parameterCount());
            assertEquals(10, net.classes());
        }
    }

    @Test
    void resnetsOfDepth8To20() {
        for (int depth : new int[] {8, 14, 20}) {
            int n = (depth - 2) / 6;
            int w = 4;
            long expected = 9L * w + 2 * w;  // stem
            int in = w;
            for (int stage = 0; stage < 3; stage++) {
                int out = w << stage;
                for (int b = 0; b < n; b++) {
                    expected += 9L * in * out + 2 * out + 9L * out * out + 2 * out;
                    if (in != out) {
                        expected += (long) in * out + 2 * out;  // 1×1 projection + BN
                    }
                    in = out;
                }
            }
            expected += 4L * w * 10 + 10;
            try (Backend backend = new CpuBackend(2);
                 Network net = Network.build(backend, Models.resnet(depth, w, 10), MNIST, 8, 1)) {
                assertEquals(expected, net.parameters().parameterCount(), "ResNet-" + depth);
                assertTrainingLowersTheLoss(net, 20, "ResNet-" + depth);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> Models.resnet(10, 16, 10));
    }

    @Test
    void smallCnnWithoutBatchNormHasBiasesAndNoStatisticsAndTrains() {
        int w = 4;
        long expected = 9L * w + w + 9L * w * w + w + 9L * w * 2 * w + 2 * w + 9L * 4 * w * w + 2 * w
                + 2L * w * 10 + 10;
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnnNoBatchNorm(w, 10), MNIST, 8, 1)) {
            assertEquals(expected, net.parameters().parameterCount());
            assertTrue(net.parameters().slots().stream().noneMatch(ParameterStore.Slot::statistic));
            assertTrainingLowersTheLoss(net, 30, "SmallCnn without BatchNorm");
        }
    }

    /** {@code steps} SGD steps on one fixed batch of 8 images lower its loss; the network predicts 10 classes. */
    private static void assertTrainingLowersTheLoss(Network net, int steps, String what) {
        float[] x = new float[8 * 784];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i * 0.37);
        }
        int[] y = {0, 1, 2, 3, 4, 5, 6, 7};
        double first = net.trainStep(x, y, Sgd.nesterov(0), 0.05);
        double later = first;
        for (int s = 0; s < steps; s++) {
            later = net.trainStep(x, y, Sgd.nesterov(0), 0.05);
        }
        assertTrue(later < first, what + " loss " + first + " -> " + later);
        assertEquals(8 * 10, net.predict(x, 8).length);
    }
}
