package dev.ema4j.study;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The experiments of the study and the runs each needs. Several experiments read the same runs (the cosine runs
 * serve dynamics, BatchNorm, consistency, calibration and the learning-rate comparison), so a study runs the union.
 *
 * <p>EMA decays: the paper keeps α ∈ {0.968 … 0.998} per update at T = 16 with the warm-up
 * {@code min(α, (t+1)/(t+10))}. Its runs have ~80k steps; ours have ~5.6k (15 epochs of 375 steps), where that
 * warm-up, counted in steps or in updates, holds every decay above ~0.98 at the same value for the whole run. The
 * study therefore uses Adam-style bias-corrected decays ({@code DecaySchedule.biasCorrected}, clocked in EMA
 * updates): every EMA is a normalized exponential average from the first update on, so the decays differ at once.
 */
public final class StudyPlan {

    /** The experiments of {@code all}, in report order ({@code demo} is the demo command's own). */
    public static final List<String> EXPERIMENTS = List.of("dynamics", "bn", "noise", "consistency", "calibration",
            "transfer", "lr");

    private static final Map<String, List<String>> GROUPS = Map.of(
            "dynamics", List.of("cosine", "constant", "step"),
            "bn", List.of("cosine"),
            "noise", List.of("noise20", "noise40"),
            "consistency", List.of("cosine"),
            "calibration", List.of("cosine"),
            "transfer", List.of("transfer"),
            "lr", List.of("cosine", "constant"),
            "demo", List.of("demo-clean", "demo-noise40"));

    private StudyPlan() {
    }

    /** The run groups an experiment reads. */
    public static List<String> groups(String experiment) {
        List<String> g = GROUPS.get(experiment);
        if (g == null) {
            throw new IllegalArgumentException("unknown experiment \"" + experiment + "\"; choose one of "
                    + EXPERIMENTS + " or all");
        }
        return g;
    }

    /** Most seeds a study takes: each is a set of training runs of minutes to hours. */
    public static final int MAX_SEEDS = 1000;

    /**
     * The runs of {@code experiments} at {@code scale}: every group with seeds 1..{@code seeds}, so that each claim
     * rests on per-seed paired differences (the same seed numbers in every group).
     */
    public static List<RunSpec> runs(List<String> experiments, Scale scale, int seeds) {
        if (seeds < 1 || seeds > MAX_SEEDS) {
            throw new IllegalArgumentException("seeds is " + seeds + "; must be 1 to " + MAX_SEEDS);
        }
        Set<String> groups = new LinkedHashSet<>();
        for (String e : experiments) {
            groups.addAll(groups(e));
        }
        List<RunSpec> runs = new ArrayList<>();
        for (String g : groups) {
            for (long seed = 1; seed <= seeds; seed++) {
                runs.add(spec(g, scale, seed));
            }
        }
        return runs;
    }

    /**
     * The label-noise runs, in the memorization regime the paper's claim is about: a wider SmallCnn(32) on 2k
     * images without weight decay for 60 epochs, where SGD ends up fitting almost every noisy label (with 60k images
     * and 15 epochs it fits a few percent, and its last iterate is as good as the EMA). EMAs every 4 steps, so the
     * decays span windows from 3 epochs to the whole run.
     */
    private static RunSpec noise(String group, Scale scale, long seed, List<Double> decays, int recompute) {
        boolean full = scale == Scale.FULL;
        return new RunSpec(group, full ? 32 : 4, full ? 2000 : 600, group.equals("noise20") ? 0.2 : 0.4, List.of(),
                full ? 5000 : 500, full ? 60 : 2, full ? 128 : 64, "cosine", full ? 0.05 : 0.1, 0, decays,
                full ? 4 : 2, false, recompute, full ? 1600 : 480, full ? 3 : 1, false, seed);
    }

    /**
     * The demo's runs, a few minutes together on two CPU cores: SmallCnn(16) on 12k clean images for 8 epochs; and
     * on 1k images with 40% symmetric noise for 60 epochs without weight decay, where SGD comes to fit most noisy
     * labels (the regime of the paper's claim). Three EMAs, every 4 steps. {@link Scale#QUICK}: a tiny version for
     * tests.
     */
    private static RunSpec demo(String group, Scale scale, long seed) {
        boolean full = scale == Scale.FULL;
        boolean noisy = group.endsWith("noise40");
        List<Double> decays = List.of(0.9, 0.968, 0.992);
        if (!full) {
            return new RunSpec(group, 4, 600, noisy ? 0.4 : 0, List.of(), 500, 2, 64, "cosine", 0.1, 5e-4, decays, 2,
                    false, 2, 0, 1, false, seed);
        }
        return noisy
                ? new RunSpec(group, 16, 1000, 0.4, List.of(), 5000, 60, 128, "cosine", 0.05, 0, decays, 4, false, 5,
                        0, 3, false, seed)
                : new RunSpec(group, 16, 12_000, 0, List.of(), 5000, 8, 128, "cosine", 0.1, 5e-4, decays, 4, false, 10,
                        0, 1, false, seed);
    }

    /** The run of {@code group} at {@code scale} with {@code seed}. */
    public static RunSpec spec(String group, Scale scale, long seed) {
        boolean full = scale == Scale.FULL;
        List<Double> decays = full ? List.of(0.9, 0.968, 0.992, 0.998) : List.of(0.5, 0.9);
        int every = full ? 16 : 2;
        int width = full ? 16 : 4;
        int samples = full ? 0 : 1200;
        int tests = full ? 0 : 500;
        int epochs = full ? 15 : 2;
        int batch = full ? 128 : 64;
        int recompute = full ? 20 : 2;
        return switch (group) {
            case "cosine", "constant", "step" -> new RunSpec(group, width, samples, 0, List.of(), tests, epochs, batch,
                    group, 0.1, 5e-4, decays, every, group.equals("cosine"), recompute, 0, 1, false, seed);
            case "noise20", "noise40" -> noise(group, scale, seed, decays, recompute);
            case "transfer" -> new RunSpec(group, width, samples, 0, List.of(0, 1, 2, 3, 4), tests, epochs, batch,
                    "cosine", 0.1, 5e-4, decays, every, false, recompute, 0, epochs, true, seed);
            case "demo-clean", "demo-noise40" -> demo(group, scale, seed);
            default -> throw new IllegalArgumentException("unknown run group \"" + group + "\"");
        };
    }
}
