package dev.ema4j.posthoc;

import dev.ema4j.EmaClock;
import java.nio.file.Path;

/**
 * One snapshot file: a power-function EMA of exponent {@code γ} read at time {@code t}, as {@link EmaSnapshotter}
 * writes it.
 *
 * @param file the safetensors file
 * @param gamma the profile's exponent
 * @param t the time of the EMA's last update, in units of {@code clock}: optimizer steps (the update after step
 *     {@code s} ends the interval {@code (s − every, s]}) or EMA updates
 * @param clock what {@code t} counts
 * @param steps optimizer steps when the snapshot was taken
 * @param skippedUpdates updates the EMA had skipped by then (non-finite parameters): each leaves a gap in the
 *     profile, so the snapshot averages with only approximately {@link #profile()}
 */
public record Snapshot(Path file, double gamma, double t, EmaClock clock, long steps, long skippedUpdates) {

    /** The profile this snapshot averages with. */
    public Profile.Power profile() {
        return Profile.power(gamma, t);
    }

    static String formatTime(double t) {
        return t == Math.rint(t) && Math.abs(t) < 1e15 ? Long.toString((long) t) : Double.toString(t);
    }
}
