package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Each schedule against its closed form, in double precision. */
class DecayScheduleTest {

    @Test
    void constantAndPaperWarmup() {
        assertEquals(0.999, DecaySchedule.constant(0.999).decay(12345));
        DecaySchedule warm = DecaySchedule.paperWarmup(0.99);
        assertEquals(0.1, warm.decay(0), 1e-15);
        assertEquals(11.0 / 20.0, warm.decay(10), 1e-15);
        assertEquals(0.99, warm.decay(891), 1e-15);   // (t+1)/(t+10) = 892/901 > 0.99
        assertEquals(890.0 / 899.0, warm.decay(889), 1e-15);
    }

    @Test
    void timmWarmup() {
        DecaySchedule timm = DecaySchedule.timm(0.9999, 1.0, 0.75);
        assertEquals(0.0, timm.decay(0));
        assertEquals(1 - Math.pow(101, -0.75), timm.decay(100), 1e-15);
        assertEquals(0.9999, timm.decay(1_000_000_000L), 0.0);
    }

    /** An EMA with the bias-corrected schedule, started anywhere, equals Adam's m_t / (1 − α^t). */
    /** timm's ModelEmaV3.get_decay(step), transcribed: step counts optimizer steps from 1. */
    private static double timmGetDecay(long step, double decay, double minDecay, long updateAfterStep, double gamma,
                                       double power) {
        long s = Math.max(0, step - updateAfterStep - 1);
        if (s <= 0) {
            return 0.0;
        }
        return Math.max(Math.min(1 - Math.pow(1 + s / gamma, -power), decay), minDecay);
    }

    @Test
    void timmWithMinDecayAndUpdateAfterStepIsModelEmaV3sGetDecay() {
        DecaySchedule s = DecaySchedule.timm(0.999, 2.0, 2.0 / 3, 0.5, 10);
        for (long step = 1; step < 5000; step++) {
            assertEquals(timmGetDecay(step, 0.999, 0.5, 10, 2.0, 2.0 / 3), s.decay(step - 1), 0.0, "step " + step);
        }
        assertEquals(0.0, s.decay(10), "a copy up to update_after_step");
        assertEquals(0.5, s.decay(11), "then at least min_decay");
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.timm(0.9, 1, 1, 0.95, 0));
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.timm(0.9, 1, 1, 0, -1));
    }

    @Test
    void biasCorrectionEqualsAdamsCorrectedAverage() {
        double alpha = 0.9;
        DecaySchedule s = DecaySchedule.biasCorrected(alpha);
        Random r = new Random(1);
        double ema = 12345;  // irrelevant: the first decay is 0
        double m = 0;
        for (int t = 1; t <= 200; t++) {
            double x = r.nextGaussian();
            double beta = s.decay(t - 1);
            ema = beta * ema + (1 - beta) * x;
            m = alpha * m + (1 - alpha) * x;
            assertEquals(m / (1 - Math.pow(alpha, t)), ema, 1e-12, "t = " + t);
        }
        assertEquals(0.0, s.decay(0));
    }

    /** The power-function EMA equals the average of x_1..x_t with weights i^(γ+1) − (i−1)^(γ+1) ≈ (γ+1)·i^γ. */
    @Test
    void powerFunctionIsAPowerWeightedAverage() {
        double gamma = 6.94;
        DecaySchedule s = DecaySchedule.powerFunction(gamma);
        Random r = new Random(2);
        double ema = 777;
        double num = 0;
        double den = 0;
        for (int t = 1; t <= 500; t++) {
            double x = r.nextGaussian();
            double beta = s.decay(t - 1);
            ema = beta * ema + (1 - beta) * x;
            double weight = Math.pow(t, gamma + 1) - Math.pow(t - 1, gamma + 1);
            num += weight * x;
            den += weight;
            assertEquals(num / den, ema, 1e-10, "t = " + t);
        }
    }

    @Test
    void powerFunctionFromSigmaRel() {
        assertEquals(16.97, ((DecaySchedule.PowerFunction) DecaySchedule.powerFunctionSigmaRel(0.05)).gamma(), 0.005);
        assertEquals(6.94, ((DecaySchedule.PowerFunction) DecaySchedule.powerFunctionSigmaRel(0.10)).gamma(), 0.005);
        var p = (DecaySchedule.PowerFunction) DecaySchedule.powerFunctionSigmaRel(0.07);
        double g = p.gamma();
        // the root of γ³ + 7γ² + (16 − σ⁻²)γ + (12 − σ⁻²) = 0
        double inv = 1 / (0.07 * 0.07);
        assertEquals(0.0, g * g * g + 7 * g * g + (16 - inv) * g + (12 - inv), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.powerFunctionSigmaRel(0.3));
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.powerFunctionSigmaRel(0));
    }

    @Test
    void compoundingRaisesTheTargetDecay() {
        assertEquals(Math.pow(0.99, 16), DecaySchedule.constant(0.99).compounded(16).decay(5), 0.0);
        assertEquals(Math.min(Math.pow(0.999, 16), 6.0 / 15.0),
                DecaySchedule.paperWarmup(0.999).compounded(16).decay(5), 0.0);
        DecaySchedule power = DecaySchedule.powerFunction(3);
        assertSame(power, power.compounded(16));
    }

    @Test
    void configDecaysCompensateEveryK() {
        EmaConfig steps = EmaConfig.of(DecaySchedule.paperWarmup(0.999), DecaySchedule.powerFunction(2)).withEvery(4);
        double[] d = steps.decays(8, 1);
        double expected = 1;
        for (int t = 4; t < 8; t++) {
            expected *= Math.min(0.999, (t + 1.0) / (t + 10.0));
        }
        assertEquals(expected, d[0], 1e-15);
        assertEquals(Math.pow(4.0 / 8.0, 3), d[1], 1e-15);  // the product telescopes to ((s−k)/s)^(γ+1)
        double[] u = steps.withClock(EmaClock.EMA_UPDATES).decays(8, 1);
        assertArrayEquals(new double[] {Math.min(Math.pow(0.999, 4), 2.0 / 11.0), Math.pow(0.5, 3)}, u, 1e-15);
        assertThrows(IllegalArgumentException.class, () -> steps.decays(6, 1));
    }

    @Test
    void invalidParametersAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.constant(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.paperWarmup(-0.5));
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.biasCorrected(1.0));
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> DecaySchedule.biasCorrected(0.0));  // accepted once, then every decay was NaN
        assertTrue(zero.getMessage().contains("decay is 0.0; bias correction needs a decay in (0, 1)"),
                zero.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.timm(0.9, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.powerFunction(-1));
        assertThrows(IllegalArgumentException.class, () -> DecaySchedule.powerFunction(Double.POSITIVE_INFINITY));
    }
}
