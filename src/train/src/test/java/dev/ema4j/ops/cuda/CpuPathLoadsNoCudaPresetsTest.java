package dev.ema4j.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.TrainingOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Training on the CPU loads nothing of JavaCPP's CUDA presets (neither their classes nor their JNI libraries):
 * a fresh JVM with {@code -verbose:class} trains a few steps of a SmallCnn (convolutions, linear layers) on a
 * {@link CpuBackend} and lists the classes it loaded. A fresh JVM because this one may have loaded the presets in
 * another test.
 */
class CpuPathLoadsNoCudaPresetsTest {

    @Test
    void cpuTrainingLoadsNoCudaPresets() throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-verbose:class", "-Xmx512m", "-cp", System.getProperty("java.class.path"),
                CpuTraining.class.getName()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        List<String> lines = out.lines().toList();
        assertTrue(lines.contains("trained on the CPU"), out);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" dev.ema4j.ops.cpu.CpuNnOps ")),
                "-verbose:class lists the CPU operations: " + out);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" org.bytedeco.openblas.")),
                "the CPU path uses JavaCPP (OpenBLAS): " + out);
        List<String> cuda = lines.stream().filter(l -> l.contains("org.bytedeco.cuda.")
                || l.contains("dev.ema4j.ops.cuda.Cublas")).toList();
        assertEquals(List.of(), cuda, "classes loaded by CPU training");
    }

    /** Trains three steps of a SmallCnn on the CPU. */
    static final class CpuTraining {
        public static void main(String[] args) {
            Shape sample = new Shape(1, 1, 28, 28);
            int batch = 4;
            try (CpuBackend cpu = new CpuBackend(1);
                 Network net = Network.build(cpu, Models.smallCnn(4, 10), sample, batch, 1)) {
                System.out.println("gemm: " + TrainingOps.of(cpu).gemm());
                Random random = new Random(1);
                float[] x = new float[batch * sample.sampleSize()];
                int[] labels = new int[batch];
                for (int step = 0; step < 3; step++) {
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) random.nextGaussian();
                    }
                    for (int i = 0; i < batch; i++) {
                        labels[i] = random.nextInt(10);
                    }
                    net.gradients(x, labels, 0.1);
                    net.sgdStep(Sgd.nesterov(5e-4), 0.1).step();
                }
            }
            System.out.println("trained on the CPU");
        }
    }
}
