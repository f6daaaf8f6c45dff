package dev.ema4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.GpuEma;
import dev.ema4j.RequiresCuda;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.ops.Replayable;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.ops.cuda.CudaNnOps;
import dev.ema4j.optim.Sgd;
import java.util.Arrays;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Training steps whose forward and backward passes are captured into CUDA graphs and replayed (NOTE: [pass-graphs]
 * in CudaNnOps) give bit for bit what the same steps give without graphs: the graph launches the same kernels on the
 * same memory. Batches of two sizes alternate (the last batch of an epoch is smaller), the larger one coming later so
 * that it grows the scratch the first size's graphs use, predictions run in between, and once the gradients of the EMA
 * weights are taken with the EMA swapped into the parameters (their buffers exchange memory, so a graph captured
 * before must not be replayed).
 */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaTrainingGraphsTest {

    private static final Shape SAMPLE = new Shape(1, 1, 28, 28);
    private static final int[] BATCHES = {10, 10, 10, 16, 16, 10, 16, 10};
    private static final Sgd SGD = Sgd.nesterov(5e-4);
    private static final double LR = 0.05;
    private static final Pattern REPORT = Pattern.compile("CUDA graphs: (\\d+) captured, (\\d+) replays");

    record Run(double[] losses, float[] values, float[] shadow, float[] probs, String replays) {
    }

    @Test
    void capturedTrainingStepsGiveBitForBitWhatUncapturedStepsGive() {
        Run eager = withGraphs("false", CudaTrainingGraphsTest::train);
        Run graphs = withGraphs(null, CudaTrainingGraphsTest::train);
        assertEquals("CUDA graphs off: turned off by -Dema4j.cuda.graphs=false", eager.replays());
        Matcher m = REPORT.matcher(graphs.replays());
        assertTrue(m.matches(), graphs.replays());
        System.out.println(graphs.replays());
        // each size: a first call runs the pass, the second captures it; forward and backward
        assertTrue(Integer.parseInt(m.group(1)) >= 4, graphs.replays());
        assertTrue(Integer.parseInt(m.group(2)) >= 2 * (BATCHES.length - 2), graphs.replays());
        assertArrayEquals(eager.losses(), graphs.losses(), "losses");
        assertArrayEquals(eager.values(), graphs.values(), "parameters and BatchNorm statistics");
        assertArrayEquals(eager.shadow(), graphs.shadow(), "EMA shadow");
        assertArrayEquals(eager.probs(), graphs.probs(), "predictions");
    }

    private static Run train() {
        try (CudaBackend cuda = CudaBackend.open(0);
             CudaNnOps ops = new CudaNnOps(cuda);
             Network net = Network.build(cuda, ops, Models.smallCnn(4, 10), SAMPLE, 16, 2024);
             GpuEma ema = GpuEma.create(cuda, net.parameters().parameters(), 0.9)) {
            ParameterStore p = net.parameters();
            double[] losses = new double[BATCHES.length + 1];
            double swapLoss = 0;
            int[] labels = new int[32];
            for (int step = 0; step < BATCHES.length; step++) {
                float[] x = CrossBackendTrainingTest.images(step, labels);
                losses[step] = net.gradients(x, Arrays.copyOf(labels, BATCHES[step]), LR);
                ema.stepAndUpdate(p.parameters(), net.sgdStep(SGD, LR));
                if (step % 3 == 1) {
                    net.predict(x, 7);  // an eval pass between training steps
                }
                if (step == 6) {  // gradients of the EMA weights, swapped in by exchanging the buffers' memory
                    try (SwapScope swapped = ema.swapInto(p.parameters())) {
                        swapLoss = net.gradients(x, Arrays.copyOf(labels, BATCHES[step]), LR);
                    }
                }
            }
            losses[BATCHES.length] = swapLoss;
            float[] probs = net.predict(CrossBackendTrainingTest.images(99, labels), 16);
            float[] values = new float[(int) p.values().length()];
            cuda.read(p.values(), 0, values, 0, values.length);
            float[] shadow = new float[values.length];
            ema.copyTo(Params.of(shadow), 0);
            return new Run(losses, values, shadow, probs, ops.replays());
        }
    }

    /**
     * A captured pass replays the operations on the memory as it is at each call, and a pass that cannot be captured
     * (it reads back to the host) runs as it is, after which the operations use no graphs and say why.
     */
    @Test
    void replaysReadTheMemoryOfEachCallAndAFailedCaptureFallsBack() {
        int n = 5000;
        try (CudaBackend cuda = CudaBackend.open(0);
             CudaNnOps ops = withGraphs(null, () -> new CudaNnOps(cuda));
             DeviceBuffer xb = cuda.allocate(DType.F32, n);
             DeviceBuffer yb = cuda.allocate(DType.F32, n);
             Replayable add = ops.replayable();
             Replayable readBack = ops.replayable()) {
            Tensor x = Tensor.of(xb, Shape.of(1, n));
            Tensor y = Tensor.of(yb, Shape.of(1, n));
            ops.fill(y, 0);
            float sum = 0;
            for (int call = 1; call <= 4; call++) {
                ops.fill(x, call);
                sum += call;
                add.run(() -> ops.addTo(x, y));
            }
            assertEquals("CUDA graphs: 1 captured, 3 replays", ops.replays(), "warm-up, capture + launch, 2 replays");
            assertArrayEquals(filled(n, sum), read(cuda, yb), "y = 1 + 2 + 3 + 4");
            float[] seen = new float[n];
            for (int call = 1; call <= 3; call++) {
                float value = call;
                ops.fill(y, -1);
                readBack.run(() -> {
                    ops.fill(y, 7);
                    cuda.read(yb, 0, seen, 0, n);
                });
                assertArrayEquals(filled(n, 7), seen, "call " + value + " ran the pass");
            }
            assertTrue(ops.replays().startsWith("CUDA graphs off: a capture failed: "), ops.replays());
            assertTrue(ops.replays().contains("CUDA_ERROR_STREAM_CAPTURE"), ops.replays());
            add.run(() -> ops.addTo(x, y));
            assertArrayEquals(filled(n, 11), read(cuda, yb), "after a failed capture, passes run as they are: 7 + 4");
        }
    }

    @Test
    void syncModeRunsPassesAsTheyAre() {
        String before = System.getProperty("ema4j.cuda.sync");
        System.setProperty("ema4j.cuda.sync", "true");
        try (CudaBackend cuda = CudaBackend.open(0);
             CudaNnOps ops = withGraphs(null, () -> new CudaNnOps(cuda))) {
            assertEquals("CUDA graphs off: sync mode (-Dema4j.cuda.sync=true) waits for every kernel", ops.replays());
        } finally {
            restore("ema4j.cuda.sync", before);
        }
    }

    /** Runs {@code body} with {@code -Dema4j.cuda.graphs} set to {@code value} (null: unset, the default). */
    private static <T> T withGraphs(String value, Supplier<T> body) {
        String before = System.getProperty(CudaNnOps.GRAPHS_PROPERTY);
        if (value == null) {
            System.clearProperty(CudaNnOps.GRAPHS_PROPERTY);
        } else {
            System.setProperty(CudaNnOps.GRAPHS_PROPERTY, value);
        }
        try {
            return body.get();
        } finally {
            restore(CudaNnOps.GRAPHS_PROPERTY, before);
        }
    }

    private static void restore(String property, String value) {
        if (value == null) {
            System.clearProperty(property);
        } else {
            System.setProperty(property, value);
        }
    }

    private static float[] filled(int n, float value) {
        float[] a = new float[n];
        Arrays.fill(a, value);
        return a;
    }

    private static float[] read(CudaBackend cuda, DeviceBuffer b) {
        float[] a = new float[(int) b.length()];
        cuda.read(b, 0, a, 0, a.length);
        return a;
    }
}
