package dev.ema4j.study;

import dev.ema4j.DecaySchedule;
import dev.ema4j.io.TensorDType;
import dev.ema4j.posthoc.Combination;
import dev.ema4j.posthoc.Profile;
import dev.ema4j.posthoc.SnapshotSet;
import dev.ema4j.train.ModelEvaluation;
import dev.ema4j.train.Trainer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The post-hoc EMA sweep of a run: from the snapshots of its two power-function EMAs, the weights of power-function
 * EMAs of other widths {@code σ_rel} at the last snapshot are rebuilt ({@link SnapshotSet}), BatchNorm statistics
 * recomputed for them, and evaluated on every evaluation set (variant {@code posthoc<σ_rel>/recomputed}).
 */
public final class PostHocSweep {

    /** The widths of the tracked, snapshotted EMAs. */
    public static final List<Double> TRACKED = List.of(0.05, 0.10);

    /** The widths rebuilt by default: from much narrower than the tracked ones to nearly a uniform average. */
    public static final List<Double> SIGMAS = List.of(0.02, 0.03, 0.05, 0.07, 0.10, 0.13, 0.16, 0.20, 0.24, 0.28);

    /** Snapshots directory of a cell. */
    public static final String SNAPSHOTS = "snapshots";

    /** The run's final state (live weights, EMAs), saved by snapshotting cells for {@code ema4j posthoc}. */
    public static final String FINAL_STATE = "final.safetensors";

    private PostHocSweep() {
    }

    /** The schedules of the tracked power-function EMAs. */
    static List<DecaySchedule> trackedSchedules() {
        return TRACKED.stream().map(DecaySchedule::powerFunctionSigmaRel).toList();
    }

    /** The model name of the rebuilt EMA of width {@code sigmaRel}. */
    public static String model(double sigmaRel) {
        return String.format(Locale.ROOT, "posthoc%.3f", sigmaRel);
    }

    /** A profile to rebuild, and the model name its evaluations carry. */
    public record Target(String model, Profile profile) {
    }

    /** Power-function EMAs of widths {@code sigmas} read at {@code t}, named {@link #model(double)}. */
    public static List<Target> widths(List<Double> sigmas, double t) {
        return sigmas.stream().map(s -> new Target(model(s), Profile.sigmaRel(s, t))).toList();
    }

    /**
     * A run's classic EMAs, rebuilt from its snapshots instead: bias-corrected exponentials read at {@code t} EMA
     * updates, each of decay α^every per update ({@code spec}'s decays are per step; {@link #clockDecay}), named
     * {@code rebuilt<k>}.
     */
    public static List<Target> decays(RunSpec spec, double t) {
        List<Target> targets = new ArrayList<>();
        for (int k = 0; k < spec.decays().size(); k++) {
            targets.add(new Target("rebuilt" + k, Profile.exponential(clockDecay(spec, k), t)));
        }
        return targets;
    }

    /**
     * The decay per unit of the snapshots' clock (EMA updates) of the run's EMA {@code k}: α^every, as
     * {@link dev.ema4j.EmaClock#EMA_UPDATES} compounds a per-step decay.
     */
    public static double clockDecay(RunSpec spec, int k) {
        return Math.pow(spec.decays().get(k), spec.every());
    }

    /**
     * One rebuilt profile.
     *
     * @param fit how the snapshots were combined, and how closely they express the profile
     * @param evaluations on each evaluation set, statistics recomputed (variant {@code <model>/recomputed})
     */
    public record Point(Target target, Combination fit, List<ModelEvaluation> evaluations) {
    }

    /**
     * Rebuilds each target from {@code snapshots}, recomputes BatchNorm statistics for it and evaluates it.
     *
     * @throws IllegalArgumentException if a target cannot be fitted ({@link SnapshotSet#fit})
     */
    public static List<Point> run(Trainer trainer, SnapshotSet snapshots, List<Target> targets) throws IOException {
        List<Point> points = new ArrayList<>();
        for (Target target : targets) {
            Combination fit = snapshots.fit(target.profile());
            float[] weights = trainer.weightsOf(snapshots.rebuild(fit, TensorDType.F32));
            points.add(new Point(target, fit, trainer.evaluateWeights(target.model(), weights)));
        }
        return points;
    }
}
