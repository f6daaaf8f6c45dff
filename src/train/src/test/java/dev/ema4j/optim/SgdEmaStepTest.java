package dev.ema4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.nn.FusedSgdStep;
import dev.ema4j.nn.TrainingOps;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The SGD step fused with the EMA update must give, bit for bit, what the two separate passes give: the same float
 * operations in the same order, only with one sweep over memory.
 */
class SgdEmaStepTest {

    private static final Sgd SGD = new Sgd(0.9, 5e-4, true);

    @Test
    void fusedStepEqualsStepThenLerpBitForBit() {
        // lengths cross the 4-wide lerp groups, the per-thread chunks and a shadow count above 4 (two lerp groups)
        for (int n : new int[] {1, 7, 4099, 70_001}) {
            for (int count : new int[] {1, 3, 5, Backend.MAX_SHADOWS}) {
                try (Backend backend = new CpuBackend(2)) {
                    Random r = new Random(n * 31L + count);
                    float[] p0 = gaussian(r, n);
                    float[] m0 = gaussian(r, n);
                    float[] g = gaussian(r, n);
                    float[][] e0 = new float[count][];
                    float[] weights = new float[count];
                    for (int k = 0; k < count; k++) {
                        e0[k] = gaussian(r, n);
                        double half = Math.pow(0.5, k + 1);  // both branches of the formula: 0.5, 0.25, 0.875, ...
                        weights[k] = (float) (k % 2 == 0 ? 1 - half : half);
                    }
                    Run fused = new Run(backend, p0, g, m0, e0);
                    TrainingOps.of(backend).sgdEmaStep(fused.p, fused.g, fused.m, SGD, 0.1, fused.shadows, weights);
                    Run separate = new Run(backend, p0, g, m0, e0);
                    TrainingOps.of(backend).sgdStep(separate.p, separate.g, separate.m, SGD, 0.1);
                    try (ParamTable table = backend.bind(Params.of(separate.p))) {
                        backend.emaLerp(table, separate.shadows, weights, null);
                    }
                    String where = "n " + n + ", shadows " + count;
                    assertArrayEquals(separate.read(separate.p), fused.read(fused.p), where + ": params");
                    assertArrayEquals(separate.read(separate.m), fused.read(fused.m), where + ": momentum");
                    for (int k = 0; k < count; k++) {
                        assertArrayEquals(separate.read(separate.shadows.get(k)), fused.read(fused.shadows.get(k)),
                                where + ": shadow " + k);
                    }
                    // and the update really happened: the shadow moved towards the new parameters
                    float[] e = fused.read(fused.shadows.get(0));
                    float[] p = fused.read(fused.p);
                    int i = n / 2;
                    assertEquals(e0[0][i] + weights[0] * (p[i] - e0[0][i]), e[i], 1e-5f * (1 + Math.abs(e[i])));
                }
            }
        }
    }

    @Test
    void gpuEmaSgdStepAndUpdateMatchesStepThenUpdate() {
        int n = 10_007;
        EmaConfig[] configs = {
            EmaConfig.of(DecaySchedule.biasCorrected(0.99), DecaySchedule.constant(0.9)).withEvery(2),
            EmaConfig.constant(0.999).withNonFinite(NonFinitePolicy.SKIP),
        };
        for (EmaConfig config : configs) {
            try (Backend backend = new CpuBackend(2)) {
                Random r = new Random(5);
                float[] p0 = gaussian(r, n);
                Run fused = new Run(backend, p0, new float[n], new float[n], new float[0][]);
                Run separate = new Run(backend, p0, new float[n], new float[n], new float[0][]);
                try (GpuEma a = GpuEma.create(backend, Params.of(fused.p), config);
                     GpuEma b = GpuEma.create(backend, Params.of(separate.p), config)) {
                    for (int step = 0; step < 5; step++) {
                        float[] g = gaussian(r, n);
                        backend.write(g, 0, fused.g, 0, n);
                        backend.write(g, 0, separate.g, 0, n);
                        a.stepAndUpdate(Params.of(fused.p),
                                new FusedSgdStep(TrainingOps.of(backend), fused.p, fused.g, fused.m, SGD, 0.05));
                        TrainingOps.of(backend).sgdStep(separate.p, separate.g, separate.m, SGD, 0.05);
                        b.update(Params.of(separate.p));
                    }
                    assertEquals(b.stats(), a.stats(), config.toString());
                    assertArrayEquals(separate.read(separate.p), fused.read(fused.p), config + ": params");
                    for (int k = 0; k < config.shadowCount(); k++) {
                        float[] ea = new float[n];
                        float[] eb = new float[n];
                        a.copyTo(Params.of(ea), k);
                        b.copyTo(Params.of(eb), k);
                        assertArrayEquals(eb, ea, config + ": shadow " + k);
                    }
                }
            }
        }
    }

    @Test
    void badArgumentsAreRejectedBeforeAnythingChanges() {
        try (Backend backend = new CpuBackend(1)) {
            float[] ones = {1, 1, 1, 1};
            Run run = new Run(backend, ones, ones, ones, new float[][] {ones});
            List<DeviceBuffer> aliased = List.of(run.p);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingOps.of(backend).sgdEmaStep(run.p, run.g, run.m, SGD, 0.1, aliased, new float[] {0.5f}));
            assertEquals("shadows[0] is the same buffer as params", e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingOps.of(backend).sgdEmaStep(run.p, run.g, run.m, SGD, 0.1, run.shadows, new float[] {0.5f, 1}));
            assertEquals("weights has 2 values, shadows 1 buffers", e.getMessage());
            DeviceBuffer half = backend.allocate(DType.F16, 4);
            e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingOps.of(backend).sgdEmaStep(run.p, half, run.m, SGD, 0.1, run.shadows, new float[] {0.5f}));
            assertEquals("grads is F16; SGD buffers must be F32", e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingOps.of(backend).sgdEmaStep(run.p, run.g, run.g, SGD, 0.1, run.shadows, new float[] {0.5f}));
            assertEquals("momentum is the same buffer as grads", e.getMessage());
            assertArrayEquals(ones, run.read(run.p));
            assertArrayEquals(ones, run.read(run.m));
            assertArrayEquals(ones, run.read(run.shadows.get(0)));
        }
    }

    private static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    /** Device copies of one SGD state and its shadows. */
    private static final class Run {
        final Backend backend;
        final DeviceBuffer p;
        final DeviceBuffer g;
        final DeviceBuffer m;
        final List<DeviceBuffer> shadows = new ArrayList<>();

        Run(Backend backend, float[] p, float[] g, float[] m, float[][] shadows) {
            this.backend = backend;
            this.p = upload(p);
            this.g = upload(g);
            this.m = upload(m);
            for (float[] e : shadows) {
                this.shadows.add(upload(e));
            }
        }

        private DeviceBuffer upload(float[] values) {
            DeviceBuffer b = backend.allocate(DType.F32, values.length);
            backend.write(values, 0, b, 0, values.length);
            return b;
        }

        float[] read(DeviceBuffer b) {
            float[] out = new float[(int) b.length()];
            backend.read(b, 0, out, 0, out.length);
            return out;
        }
    }
}
