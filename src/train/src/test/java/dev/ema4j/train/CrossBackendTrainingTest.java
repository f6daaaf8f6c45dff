package dev.ema4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ema4j.GpuEma;
import dev.ema4j.RequiresCuda;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.Sgd;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The same SmallCnn, built from the same seed, trained for a few steps on the same batches on the CPU and on CUDA
 * (forward, loss, backward, and the SGD step fused with an EMA update, as {@link Trainer} runs them), must give
 * the same losses, parameters, BatchNorm statistics, EMA shadow and predictions up to the rounding of float
 * reductions done in other orders.
 *
 * <p>The tolerances are set from what rounding alone does: the CPU backend with one thread and with three sums the
 * convolution filter gradients in different orders, and after five steps the losses differ by 6e-9 (relative) and
 * the parameters, statistics, shadow and probabilities by at most 2.4e-7 of their RMS (this test prints both
 * comparisons). The bounds, 1e-4 on each loss and {@code 1e-4·RMS + 1e-3·|value|} elementwise, are hundreds of times
 * that, room for a GPU that reorders every reduction (GEMM tiles, BatchNorm and softmax sums), while an operation
 * that computes something else moves these numbers by far more after five steps. FMA contraction is not among the
 * differences they must cover: the kernels are built with -fmad=false (NOTE: [no-contraction] in
 * native/build-ptx.sh), so the GPU rounds every operation as the CPU does, and fuses a multiply-add only where both
 * write one; what remains is the order of the sums, and CUDA's exp and log.
 */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CrossBackendTrainingTest {

    private static final Shape SAMPLE = new Shape(1, 1, 28, 28);
    private static final int WIDTH = 8;
    private static final int CLASSES = 10;
    private static final int BATCH = 32;
    private static final int STEPS = 5;
    private static final long SEED = 2024;
    private static final Sgd SGD = Sgd.nesterov(5e-4);
    private static final double LR = 0.05;
    private static final double EMA_DECAY = 0.9;

    /** Relative bound on the per-step losses. */
    static final double LOSS_RTOL = 1e-4;
    /** {@code |cpu − cuda| ≤ ATOL·rms + RTOL·|cpu|} for parameters, statistics, shadow and probabilities. */
    static final double ATOL = 1e-4;
    static final double RTOL = 1e-3;

    /** What one training run gave. */
    record Run(String backend, double[] losses, float[] params, float[] statistics, float[] shadow, float[] probs) {
    }

    @Test
    void smallCnnTrainsAndPredictsTheSameOnCpuAndCuda() {
        Run cpu = train(new CpuBackend(1));
        Run reordered = train(new CpuBackend(3));
        Run cuda = train(CudaBackend.open(0));
        System.out.println("CPU 1 thread vs 3 threads (rounding alone): " + divergence(cpu, reordered));
        System.out.println("CPU vs CUDA: " + divergence(cpu, cuda));
        for (int step = 0; step < STEPS; step++) {
            double allowed = LOSS_RTOL * Math.abs(cpu.losses()[step]);
            if (!(Math.abs(cpu.losses()[step] - cuda.losses()[step]) <= allowed)) {
                fail("loss of step " + step + ": CPU " + cpu.losses()[step] + ", CUDA " + cuda.losses()[step]
                        + "; CPU with 3 threads " + reordered.losses()[step]);
            }
        }
        assertClose("parameters", cpu.params(), cuda.params(), reordered.params());
        assertClose("BatchNorm running statistics", cpu.statistics(), cuda.statistics(), reordered.statistics());
        assertClose("EMA shadow", cpu.shadow(), cuda.shadow(), reordered.shadow());
        assertClose("predicted probabilities", cpu.probs(), cuda.probs(), reordered.probs());
        int decided = 0;
        for (int i = 0; i < BATCH; i++) {
            int[] top = top2(cpu.probs(), i);
            if (cpu.probs()[i * CLASSES + top[0]] - cpu.probs()[i * CLASSES + top[1]] > 1e-3) {
                decided++;
                assertEquals(top[0], top2(cuda.probs(), i)[0], "predicted class of test sample " + i);
            }
        }
        assertTrue(decided > BATCH / 2, "most test samples have a clear prediction (" + decided + " of " + BATCH
                + "), so the class check means something");
        assertTrue(cpu.losses()[STEPS - 1] < cpu.losses()[0], "the run learns: losses "
                + java.util.Arrays.toString(cpu.losses()));
    }

    /** Trains on {@code backend} (closed afterwards) and reads everything back. */
    static Run train(Backend backend) {
        try (backend;
             Network net = Network.build(backend, Models.smallCnn(WIDTH, CLASSES), SAMPLE, BATCH, SEED);
             GpuEma ema = GpuEma.create(backend, net.parameters().parameters(), EMA_DECAY)) {
            ParameterStore p = net.parameters();
            double[] losses = new double[STEPS];
            int[] labels = new int[BATCH];
            for (int step = 0; step < STEPS; step++) {
                float[] x = images(step, labels);
                losses[step] = net.gradients(x, labels, LR);
                ema.stepAndUpdate(p.parameters(), net.sgdStep(SGD, LR));
            }
            float[] probs = net.predict(images(STEPS, labels), BATCH);
            float[] shadow = new float[(int) p.values().length()];
            ema.copyTo(Params.of(shadow), 0);
            return new Run(backend.name(), losses, read(backend, p), readStatistics(backend, p), shadow, probs);
        }
    }

    /**
     * Batch {@code index} of synthetic 28×28 images: a bright blob whose place depends on the class, over noise;
     * fills {@code labels}.
     */
    static float[] images(int index, int[] labels) {
        Random random = new Random(SEED + 31L * index);
        float[] x = new float[BATCH * 28 * 28];
        for (int i = 0; i < BATCH; i++) {
            int label = random.nextInt(CLASSES);
            labels[i] = label;
            double cy = 6 + (label % 5) * 4;
            double cx = 8 + (label / 5) * 12;
            for (int r = 0; r < 28; r++) {
                for (int c = 0; c < 28; c++) {
                    double d2 = (r - cy) * (r - cy) + (c - cx) * (c - cx);
                    x[(i * 28 + r) * 28 + c] = (float) (2 * Math.exp(-d2 / 8) + 0.3 * random.nextGaussian() - 0.2);
                }
            }
        }
        return x;
    }

    private static float[] read(Backend backend, ParameterStore p) {
        float[] v = new float[(int) p.values().length()];
        backend.read(p.values(), 0, v, 0, v.length);
        return v;
    }

    private static float[] readStatistics(Backend backend, ParameterStore p) {
        float[] v = new float[(int) p.statistics().length()];
        backend.read(p.statistics(), 0, v, 0, v.length);
        return v;
    }

    /** {@code |a − b| ≤ ATOL·rms(a) + RTOL·|a|} everywhere; the message gives the CPU's own spread for scale. */
    private static void assertClose(String what, float[] cpu, float[] cuda, float[] reordered) {
        assertEquals(cpu.length, cuda.length, what + ": length");
        double atol = ATOL * rms(cpu);
        for (int i = 0; i < cpu.length; i++) {
            if (!(Math.abs(cpu[i] - cuda[i]) <= atol + RTOL * Math.abs(cpu[i]))) {
                fail(what + "[" + i + "]: CPU " + cpu[i] + ", CUDA " + cuda[i] + " (CPU with 3 threads " + reordered[i]
                        + "); allowed " + (atol + RTOL * Math.abs(cpu[i])));
            }
        }
    }

    /** The largest difference of each output, relative to the output's RMS, and of the losses. */
    static String divergence(Run a, Run b) {
        double loss = 0;
        for (int i = 0; i < STEPS; i++) {
            loss = Math.max(loss, Math.abs(a.losses()[i] - b.losses()[i]) / Math.abs(a.losses()[i]));
        }
        return String.format("losses %.2g, parameters %.2g, statistics %.2g, shadow %.2g, probabilities %.2g "
                        + "(largest difference / RMS)", loss, spread(a.params(), b.params()),
                spread(a.statistics(), b.statistics()), spread(a.shadow(), b.shadow()), spread(a.probs(), b.probs()));
    }

    private static double spread(float[] a, float[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max / rms(a);
    }

    private static double rms(float[] v) {
        double s = 0;
        for (float f : v) {
            s += (double) f * f;
        }
        return Math.sqrt(s / Math.max(1, v.length));
    }

    private static int[] top2(float[] probs, int sample) {
        int best = -1;
        int second = -1;
        for (int c = 0; c < CLASSES; c++) {
            float p = probs[sample * CLASSES + c];
            if (best < 0 || p > probs[sample * CLASSES + best]) {
                second = best;
                best = c;
            } else if (second < 0 || p > probs[sample * CLASSES + second]) {
                second = c;
            }
        }
        return new int[] {best, second};
    }
}
