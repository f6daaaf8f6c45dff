package dev.ema4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.nn.TrainingOps;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The fused SGD step against PyTorch's algorithm written out by hand, in double, over several steps. */
class SgdTest {

    @Test
    void matchesTorchSgdOverSeveralSteps() {
        for (Sgd sgd : new Sgd[] {new Sgd(0.9, 5e-4, true), new Sgd(0.9, 1e-2, false), new Sgd(0, 0, false)}) {
            int n = 70_001;
            Random r = new Random(1);
            try (Backend backend = new CpuBackend(2)) {
                DeviceBuffer p = backend.allocate(DType.F32, n);
                DeviceBuffer g = backend.allocate(DType.F32, n);
                DeviceBuffer m = backend.allocate(DType.F32, n);
                float[] pv = new float[n];
                for (int i = 0; i < n; i++) {
                    pv[i] = (float) r.nextGaussian();
                }
                backend.write(pv, 0, p, 0, n);
                double[] oracleP = new double[n];
                double[] oracleBuf = null;  // torch: momentum_buffer is None before the first step
                for (int i = 0; i < n; i++) {
                    oracleP[i] = pv[i];
                }
                double[] lrs = {0.1, 0.05, 0.2, 0.01};
                for (double lr : lrs) {
                    float[] gv = new float[n];
                    for (int i = 0; i < n; i++) {
                        gv[i] = (float) r.nextGaussian();
                    }
                    backend.write(gv, 0, g, 0, n);
                    TrainingOps.of(backend).sgdStep(p, g, m, sgd, lr);
                    // torch.optim.SGD, dampening 0:
                    //   d_p = grad + wd * p
                    //   buf = d_p.clone() if first step else momentum * buf + d_p
                    //   d_p = d_p + momentum * buf if nesterov else buf
                    //   p = p - lr * d_p
                    double[] buf = new double[n];
                    for (int i = 0; i < n; i++) {
                        double dp = gv[i] + sgd.weightDecay() * oracleP[i];
                        buf[i] = oracleBuf == null ? dp : sgd.momentum() * oracleBuf[i] + dp;
                        double step = sgd.momentum() == 0 ? dp : sgd.nesterov() ? dp + sgd.momentum() * buf[i] : buf[i];
                        oracleP[i] -= lr * step;
                    }
                    oracleBuf = buf;
                }
                float[] out = new float[n];
                backend.read(p, 0, out, 0, n);
                for (int i = 0; i < n; i++) {
                    assertEquals(oracleP[i], out[i], 1e-5 * (1 + Math.abs(oracleP[i])), sgd + " p[" + i + "]");
                }
            }
        }
    }

    @Test
    void badArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Sgd(1.0, 0, false));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(0.9, -1, false));
        assertThrows(IllegalArgumentException.class, () -> new Sgd(0, 0, true));
        try (Backend backend = new CpuBackend(1)) {
            DeviceBuffer a = backend.allocate(DType.F32, 4);
            DeviceBuffer b = backend.allocate(DType.F32, 5);
            DeviceBuffer c = backend.allocate(DType.F32, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TrainingOps.of(backend).sgdStep(a, b, c, Sgd.nesterov(0), 0.1));
            assertEquals("SGD buffers differ in length: params 4, grads 5, momentum 4", e.getMessage());
            DeviceBuffer d = backend.allocate(DType.F32, 4);
            e = assertThrows(IllegalArgumentException.class, () -> TrainingOps.of(backend).sgdStep(a, c, d, Sgd.nesterov(0),
                    Double.NaN));
            assertEquals("lr is NaN; must be finite and >= 0", e.getMessage());
        }
    }
}
