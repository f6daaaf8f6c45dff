package dev.ema4j;

import dev.ema4j.backend.Backend;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * How a {@link GpuEma} updates its shadows: one {@link DecaySchedule} per shadow (1 to 8), an update every
 * {@code every} optimizer steps, the {@link EmaClock} of the schedules, and the {@link NonFinitePolicy}.
 *
 * <pre>{@code
 * EmaConfig.constant(0.999, 0.9999)                                   // two EMAs, every step
 * EmaConfig.of(DecaySchedule.paperWarmup(0.998)).withEvery(16)         // the paper's setup
 * }</pre>
 *
 * @param schedules one per shadow
 * @param every update after every {@code every}-th optimizer step (decays compensated, see {@link EmaClock})
 * @param clock what the schedules' {@code t} counts
 * @param nonFinite what an update does with NaN or infinite parameters
 */
public record EmaConfig(List<DecaySchedule> schedules, int every, EmaClock clock, NonFinitePolicy nonFinite) {

    public EmaConfig {
        Objects.requireNonNull(schedules, "schedules");
        schedules = List.copyOf(schedules);
        if (schedules.isEmpty() || schedules.size() > Backend.MAX_SHADOWS) {
            throw new IllegalArgumentException(
                    "schedules has " + schedules.size() + " entries; must be 1 to " + Backend.MAX_SHADOWS);
        }
        if (every < 1) {
            throw new IllegalArgumentException("every is " + every + "; must be >= 1");
        }
        Objects.requireNonNull(clock, "clock");
        Objects.requireNonNull(nonFinite, "nonFinite");
    }

    /** Constant decays (one shadow each), updated every step, skipping non-finite updates. */
    public static EmaConfig constant(double... decays) {
        Objects.requireNonNull(decays, "decays");
        return of(Arrays.stream(decays).mapToObj(DecaySchedule::constant).toArray(DecaySchedule[]::new));
    }

    /** One shadow per schedule, updated every step, clocked in optimizer steps, skipping non-finite updates. */
    public static EmaConfig of(DecaySchedule... schedules) {
        Objects.requireNonNull(schedules, "schedules");
        return new EmaConfig(List.of(schedules), 1, EmaClock.OPTIMIZER_STEPS, NonFinitePolicy.SKIP);
    }

    /** This configuration updating after every {@code k}-th optimizer step. */
    public EmaConfig withEvery(int k) {
        return new EmaConfig(schedules, k, clock, nonFinite);
    }

    /** This configuration with another clock. */
    public EmaConfig withClock(EmaClock clock) {
        return new EmaConfig(schedules, every, clock, nonFinite);
    }

    /** This configuration with another non-finite policy. */
    public EmaConfig withNonFinite(NonFinitePolicy policy) {
        return new EmaConfig(schedules, every, clock, policy);
    }

    /** Number of shadows. */
    public int shadowCount() {
        return schedules.size();
    }

    /**
     * The decays of the update that follows optimizer step {@code step} (1-based, a multiple of {@link #every()})
     * when {@code update} updates (0-based) came before it. Pure; see {@link EmaClock}.
     */
    public double[] decays(long step, long update) {
        if (step < every || step % every != 0) {
            throw new IllegalArgumentException("step is " + step + "; must be a positive multiple of every = " + every);
        }
        if (update < 0) {
            throw new IllegalArgumentException("update is " + update + "; must be >= 0");
        }
        double[] decays = new double[schedules.size()];
        for (int k = 0; k < decays.length; k++) {
            DecaySchedule s = schedules.get(k);
            if (clock == EmaClock.EMA_UPDATES) {
                decays[k] = s.compounded(every).decay(update);
            } else {
                double product = 1.0;
                for (long t = step - every; t < step; t++) {
                    product *= s.decay(t);
                }
                decays[k] = product;
            }
            if (!(decays[k] >= 0.0 && decays[k] <= 1.0)) {
                throw new IllegalStateException("schedule " + s + " gave decay " + decays[k] + " for the update after "
                        + "step " + step + " (update " + update + "); decays must be in [0, 1]");
            }
        }
        return decays;
    }
}
