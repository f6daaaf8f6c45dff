package dev.ema4j.posthoc;

import java.util.List;

/**
 * The weights that rebuild {@code target} from snapshots: {@code Σ weights[i]·snapshots[i]}, with
 * {@code Σ weights = 1} (an average), chosen by least squares on the profiles ({@link SnapshotSet#fit}).
 *
 * @param target the profile asked for
 * @param snapshots the snapshots combined, in the set's order
 * @param weights one per snapshot; they alternate in sign when the target is narrower than the tracked profiles
 * @param relativeError {@code ‖Σ weights[i]·p_i − p_target‖ / ‖p_target‖}: 0 for a profile that was tracked, about
 *     1e-4 to 1e-2 between and near the tracked widths, large (0.1 and up) for what the snapshots cannot express
 * @param amplification {@code Σ |weights[i]|}: how much the rebuild can magnify the snapshots' rounding (1 for a
 *     tracked profile)
 */
public record Combination(Profile target, List<Snapshot> snapshots, List<Double> weights, double relativeError,
                          double amplification) {

    public Combination {
        snapshots = List.copyOf(snapshots);
        weights = List.copyOf(weights);
        if (snapshots.size() != weights.size()) {
            throw new IllegalArgumentException("snapshots has " + snapshots.size() + " entries, weights "
                    + weights.size());
        }
    }

    /** {@code Σ weights}, 1 up to rounding. */
    public double weightSum() {
        return weights.stream().mapToDouble(Double::doubleValue).sum();
    }

    /**
     * The most updates any snapshot's EMA had skipped (non-finite parameters); above 0, the snapshots' profiles, and
     * so {@link #relativeError()}, are approximate.
     */
    public long skippedUpdates() {
        return snapshots.stream().mapToLong(Snapshot::skippedUpdates).max().orElse(0);
    }

    @Override
    public String toString() {
        String skipped = skippedUpdates() == 0 ? "" : String.format("; the EMAs had skipped up to %d updates "
                + "(non-finite parameters), so the profiles are approximate", skippedUpdates());
        return String.format("%s from %d snapshots: relative profile error %.2e, amplification %.2f%s", target,
                snapshots.size(), relativeError, amplification, skipped);
    }
}
