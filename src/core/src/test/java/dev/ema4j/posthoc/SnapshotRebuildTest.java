package dev.ema4j.posthoc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.Backends;
import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaClock;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.TensorDType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;

/**
 * Rebuilds averages that were also tracked directly, from snapshots of two power-function EMAs taken during a
 * simulated training run (a noisy walk toward a moving target, 1,003 parameters in two tensors).
 */
class SnapshotRebuildTest {

    static final int STEPS = 600;
    static final int EVERY = 20;

    @TempDir
    Path dir;

    /** The run: two snapshotted power EMAs (σ_rel 0.05, 0.10) and the tracked references. */
    static final class Run {
        final float[] a = new float[997];
        final float[] b = new float[6];
        final Params params = Params.builder().add("layer.weight", a, 997).add("layer.bias", b, 6).build();
        float[][] tracked;
        double movement;
    }

    static Run train(Backend backend, SnapshotConfig config, DecaySchedule... references) throws IOException {
        return train(backend, config, 1, EmaClock.OPTIMIZER_STEPS, references);
    }

    static Run train(Backend backend, SnapshotConfig config, int every, EmaClock clock,
                     DecaySchedule... references) throws IOException {
        Run run = new Run();
        Random random = new Random(7);
        for (int i = 0; i < run.a.length; i++) {
            run.a[i] = (float) random.nextGaussian();
        }
        float[] start = run.a.clone();
        EmaConfig snapshotted = EmaConfig.of(DecaySchedule.powerFunctionSigmaRel(0.05),
                DecaySchedule.powerFunctionSigmaRel(0.10)).withEvery(every).withClock(clock);
        try (GpuEma ema = GpuEma.create(backend, run.params, snapshotted);
             GpuEma reference = GpuEma.create(backend, run.params,
                     EmaConfig.of(references).withEvery(every).withClock(clock))) {
            EmaSnapshotter snapshotter = new EmaSnapshotter(ema, config);
            for (int s = 1; s <= STEPS; s++) {
                double lr = 0.05 * (1 + Math.cos(Math.PI * s / STEPS)) / 2;
                for (int i = 0; i < run.a.length; i++) {
                    run.a[i] += (float) (lr * (Math.sin(i + s / 100.0) - run.a[i]) + lr * 0.3 * random.nextGaussian());
                }
                for (int i = 0; i < run.b.length; i++) {
                    run.b[i] = 3.25f;  // a parameter that never changes after the first step
                }
                ema.update(run.params);
                reference.update(run.params);
                snapshotter.afterStep();
            }
            run.tracked = new float[references.length][];
            for (int k = 0; k < references.length; k++) {
                float[] wa = new float[run.a.length];
                float[] wb = new float[run.b.length];
                reference.copyTo(Params.builder().add("layer.weight", wa, 997).add("layer.bias", wb, 6).build(), k);
                run.tracked[k] = concat(wa, wb);
            }
        }
        for (int i = 0; i < start.length; i++) {
            run.movement = Math.max(run.movement, Math.abs(run.a[i] - start[i]));
        }
        return run;
    }

    static float[] concat(float[] a, float[] b) {
        float[] c = new float[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    static float[] read(List<FloatTensor> tensors) throws IOException {
        int n = 0;
        for (FloatTensor t : tensors) {
            n += (int) t.elementCount();
        }
        float[] out = new float[n];
        int at = 0;
        for (FloatTensor t : tensors) {
            t.source().read(0, out, at, (int) t.elementCount());
            at += (int) t.elementCount();
        }
        return out;
    }

    static double maxDifference(float[] x, float[] y) {
        double d = 0;
        for (int i = 0; i < x.length; i++) {
            d = Math.max(d, Math.abs(x[i] - y[i]));
        }
        return d;
    }

    @Test
    void trackedProfilesAreRebuiltWithinTheDocumentedTolerance() throws IOException {
        Profile.Power p07 = Profile.sigmaRel(0.07, STEPS);
        Profile.Power p15 = Profile.sigmaRel(0.15, STEPS);
        Run run = train(Backends.cpu(), SnapshotConfig.of(dir).withEvery(EVERY),
                DecaySchedule.powerFunction(p07.gamma()), DecaySchedule.powerFunction(p15.gamma()),
                DecaySchedule.biasCorrected(0.99), DecaySchedule.powerFunctionSigmaRel(0.10));
        try (SnapshotSet set = SnapshotSet.open(dir)) {
            assertEquals(2 * STEPS / EVERY, set.snapshots().size());
            Profile[] targets = {p07, p15, Profile.exponential(0.99, STEPS), Profile.sigmaRel(0.10, STEPS)};
            // documented tolerances, as fractions of how far the parameters moved in the run
            double[] tolerance = {1e-5, 1e-5, 1e-3, 1e-6};
            for (int k = 0; k < targets.length; k++) {
                Combination c = set.fit(targets[k]);
                float[] rebuilt = read(set.rebuild(c, TensorDType.F32));
                double error = maxDifference(rebuilt, run.tracked[k]);
                System.out.printf("%s: max |rebuilt - tracked| %.3g (movement %.3g), %s%n", targets[k], error,
                        run.movement, c);
                assertEquals(1, c.weightSum(), 1e-9, "weights sum");
                assertTrue(error < tolerance[k] * run.movement, targets[k] + ": error " + error);
                assertEquals(3.25f, rebuilt[997], 1e-6, "a constant parameter stays constant");
            }
            // the check can fail: σ_rel 0.05 is not σ_rel 0.07
            float[] other = read(set.rebuild(set.fit(Profile.sigmaRel(0.05, STEPS)), TensorDType.F32));
            assertTrue(maxDifference(other, run.tracked[0]) > 2e-3 * run.movement);
        }
    }

    /**
     * With an update every 4 steps, a snapshot's time counts the clock (steps or updates), and a bias-corrected EMA of
     * decay α per step is, clocked in updates, the exponential of decay α^4 per update ({@link EmaClock}).
     */
    @Test
    void snapshotTimesFollowTheClockWhenTheEmaUpdatesEveryFourSteps() throws IOException {
        for (EmaClock clock : EmaClock.values()) {
            Path into = dir.resolve(clock.name());
            Profile.Power p07 = Profile.sigmaRel(0.07, 1);
            Run run = train(Backends.cpu(), SnapshotConfig.of(into).withEvery(EVERY), 4, clock,
                    DecaySchedule.powerFunction(p07.gamma()), DecaySchedule.biasCorrected(0.99));
            try (SnapshotSet set = SnapshotSet.open(into)) {
                boolean steps = clock == EmaClock.OPTIMIZER_STEPS;
                double last = steps ? STEPS : STEPS / 4.0;
                assertEquals(last, set.lastTime(), clock.name());
                float[] rebuilt = read(set.rebuild(set.fit(Profile.power(p07.gamma(), last)), TensorDType.F32));
                double error = maxDifference(rebuilt, run.tracked[0]);
                assertTrue(error < 1e-4 * run.movement, clock + ": error " + error);
                if (!steps) {
                    Profile classic = Profile.exponential(Math.pow(0.99, 4), last);
                    float[] exponential = read(set.rebuild(set.fit(classic), TensorDType.F32));
                    double e = maxDifference(exponential, run.tracked[1]);
                    assertTrue(e < 2e-3 * run.movement, "α^4 per update: error " + e);
                    float[] wrong = read(set.rebuild(set.fit(Profile.exponential(0.99, last)), TensorDType.F32));
                    assertTrue(maxDifference(wrong, run.tracked[1]) > 2e-2 * run.movement, "α per update is not it");
                }
            }
        }
    }
}
