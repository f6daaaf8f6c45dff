package dev.ema4j.study;

import dev.ema4j.EmaClock;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The experiments of the study and the runs each needs. Several experiments read the same runs (the cosine runs
 * serve dynamics, BatchNorm, consistency, calibration and the learning-rate comparison), so a study runs the union.
 *
 * <p>EMA decays are per optimizer step: an EMA updated every T steps applies α^T per update ({@link EmaClock}'s
 * compounding), so its window, about 1/(1 − α) steps, does not depend on T. The paper keeps
 * α ∈ {0.968 … 0.998} per update at T = 16 (0.998 … 0.999875 per step) with the warm-up
 * {@code min(α, (t+1)/(t+10))}. Its runs have ~80k steps; ours have ~5.6k (15 epochs of 375 steps), where that
 * warm-up, counted in steps or in updates, holds every decay above ~0.98 at the same value for the whole run. The
 * study therefore uses Adam-style bias-corrected decays ({@code DecaySchedule.biasCorrected}, clocked in EMA
 * updates): every EMA is a normalized exponential average from the first update on, so the decays differ at once.
 */
public final class StudyPlan {

    /** The experiments of {@code all}, in report order ({@code demo} is the demo command's own). */
    public static final List<String> EXPERIMENTS = List.of("dynamics", "bn", "noise", "consistency", "calibration",
            "transfer", "lr", "swa", "every", "copyback", "posthoc");

    private static final Map<String, List<String>> GROUPS = Map.ofEntries(
            Map.entry("dynamics", List.of("cosine", "constant", "step", "overfit")),
            Map.entry("bn", List.of("cosine", "base12k", "base12k-nobn")),
            Map.entry("noise", List.of("noise20", "noise40", "noise40-10k", "noise40-all")),
            Map.entry("consistency", List.of("cosine")),
            Map.entry("calibration", List.of("cosine")),
            Map.entry("transfer", List.of("transfer")),
            Map.entry("lr", List.of("cosine", "constant", "base12k-lr0.05", "base12k", "base12k-lr0.2")),
            Map.entry("swa", List.of("cosine")),
            Map.entry("every", List.of("base12k", "base12k-every1")),
            Map.entry("copyback", List.of("base12k", "base12k-copyback")),
            Map.entry("posthoc", List.of("posthoc12k")));

    /**
     * Groups cheap enough to run at least {@link #CHEAP_SEEDS} seeds at full scale (1k to 12k training images); the
     * equivalence rules of the 12k ablations need the narrower intervals.
     */
    private static final List<String> CHEAP = List.of("noise20", "noise40", "demo-noise40", "base12k",
            "base12k-lr0.05", "base12k-lr0.2", "base12k-every1", "base12k-copyback", "base12k-nobn",
            "posthoc12k");

    /** Seeds of the {@link #CHEAP} groups at least. */
    public static final int CHEAP_SEEDS = 5;

    /** The demo's groups; not part of {@code all}. */
    private static final List<String> DEMO = List.of("demo-clean", "demo-noise40");

    private StudyPlan() {
    }

    /** The run groups an experiment reads. */
    public static List<String> groups(String experiment) {
        List<String> g = experiment.equals("demo") ? DEMO : GROUPS.get(experiment);
        if (g == null) {
            throw new IllegalArgumentException("unknown experiment \"" + experiment + "\"; choose one of "
                    + EXPERIMENTS + " or all");
        }
        return g;
    }

    /** Most seeds a study takes: each is a set of training runs of minutes to hours. */
    public static final int MAX_SEEDS = 1000;

    /**
     * The runs of {@code experiments} at {@code scale}: every group with seeds 1..{@code seeds} (the cheap
     * label-noise groups at full scale at least {@link #CHEAP_SEEDS}), so that each claim rests on per-seed paired
     * differences (the same seed numbers in every group).
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
            int n = CHEAP.contains(g) && scale == Scale.FULL ? Math.max(seeds, CHEAP_SEEDS) : seeds;
            for (long seed = 1; seed <= n; seed++) {
                runs.add(spec(g, scale, seed));
            }
        }
        return runs;
    }

    /**
     * The label-noise runs, in the memorization regime the paper's claim is about: a wider SmallCnn(32) without weight
     * decay on 2k images for 60 epochs, where SGD ends up fitting almost every noisy label; and, at 40% noise, the
     * same network on 10k images for 24 epochs and on all 60k (48k for training) for 10 epochs (96k, 192k and 480k
     * training samples seen), to show where the EMA's gain appears and where it vanishes. EMAs every 4 steps.
     */
    private static RunSpec noise(String group, Scale scale, long seed, List<Double> decays, int recompute) {
        boolean full = scale == Scale.FULL;
        int samples = switch (group) {
            case "noise40-10k" -> full ? 10_000 : 800;
            case "noise40-all" -> full ? 0 : 1000;
            default -> full ? 2000 : 600;
        };
        int epochs = switch (group) {
            case "noise40-10k" -> full ? 24 : 2;
            case "noise40-all" -> full ? 10 : 2;
            default -> full ? 60 : 2;
        };
        return new RunSpec(group, full ? 32 : 4, samples, group.equals("noise20") ? 0.2 : 0.4, List.of(),
                full ? 5000 : 500, epochs, full ? 128 : 64, "cosine", full ? 0.05 : 0.1, 0, decays, full ? 4 : 2,
                false, recompute, full ? 1600 : 480, full ? Math.max(1, epochs / 20) : 1, false, "smallCnn", 0, -1, 0,
                seed);
    }

    /**
     * The demo's runs, about four minutes together on two CPU cores: three seeds of SmallCnn(16) on 6k clean images
     * for 6 epochs, evaluated after every epoch (the early lead); five seeds on 1k images with 40% symmetric noise for
     * 60 epochs without weight decay, where SGD comes to fit most noisy labels (the regime of the paper's claim),
     * evaluated every 10 epochs. Three EMAs, every 4 steps, 2000 test images. {@link Scale#QUICK}: a tiny version for
     * tests.
     */
    private static RunSpec demo(String group, Scale scale, long seed) {
        boolean full = scale == Scale.FULL;
        boolean noisy = group.endsWith("noise40");
        List<Double> decays = List.of(0.9, 0.968, 0.992);
        if (!full) {
            return new RunSpec(group, 4, 600, noisy ? 0.4 : 0, List.of(), 500, 2, 64, "cosine", 0.1, 5e-4, decays, 2,
                    false, 2, 0, 1, false, "smallCnn", 0, -1, 0, seed);
        }
        return noisy
                ? new RunSpec(group, 16, 1000, 0.4, List.of(), 2000, 60, 128, "cosine", 0.05, 0, decays, 4, false, 5,
                        0, 10, false, "smallCnn", 0, -1, 0, seed)
                : new RunSpec(group, 16, 6000, 0, List.of(), 2000, 6, 128, "cosine", 0.1, 5e-4, decays, 4, false, 10,
                        0, 1, false, "smallCnn", 0, -1, 0, seed);
    }

    /**
     * The ablations, each against {@code base12k} (cosine on 12k drawn images, 15 epochs, the study's EMAs every 16
     * steps, statistics averaged and recomputed): {@code base12k-lr0.05} and {@code base12k-lr0.2} (other peak LRs),
     * {@code base12k-every1} (EMAs every step with the same decays per step: α per update instead of α^16),
     * {@code base12k-copyback} (the EMA of
     * decay 0.968 copied into the live weights after every epoch), {@code base12k-nobn} (the network without
     * BatchNorm; its peak LR is 0.05, since 0.1 diverged in a trial on 12k images), {@code posthoc12k} ({@code base12k}
     * with two power-function EMAs snapshotted every 4 EMA updates, and the post-hoc sweep after training). A fifth of the data makes each
     * run about five times cheaper than the 48k-image runs, and every comparison is within the 12k runs.
     */
    private static RunSpec ablation(String group, Scale scale, long seed, List<Double> decays, int every,
                                    int recompute) {
        boolean full = scale == Scale.FULL;
        int samples = full ? 12_000 : 1200;
        int tests = full ? 0 : 500;
        int epochs = full ? 15 : 2;
        int batch = full ? 128 : 64;
        int width = full ? 16 : 4;
        double lr = switch (group) {
            case "base12k-lr0.05", "base12k-nobn" -> 0.05;
            case "base12k-lr0.2" -> 0.2;
            default -> 0.1;
        };
        boolean everyStep = group.equals("base12k-every1");
        return new RunSpec(group, width, samples, 0, List.of(), tests, epochs, batch, "cosine", lr, 5e-4, decays,
                everyStep ? 1 : every, group.equals("base12k"), recompute, 0, 1, false,
                group.equals("base12k-nobn") ? "smallCnnNoBatchNorm" : "smallCnn", 0,
                group.equals("base12k-copyback") ? 1 : -1,
                group.equals("posthoc12k") ? 4 * every : 0, seed);
    }

    /**
     * The run of {@code group} at {@code scale} with {@code seed}. Groups: {@code cosine}, {@code constant} and
     * {@code step} (SmallCnn(16) on all 48k training images for 15 epochs under three LR schedules; cosine also
     * keeps SWA over the second half); {@code overfit} (SmallCnn(32) on 4k clean images, no weight decay, 60 epochs:
     * near-zero training loss); the label-noise groups ({@link #noise}); {@code transfer}; the demo's; and the
     * ablations ({@link #ablation}).
     */
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
                    group, 0.1, 5e-4, decays, every, group.equals("cosine"), recompute, 0, 1, false, "smallCnn",
                    group.equals("cosine") ? 0.5 : 0, -1, 0, seed);
            case "base12k", "base12k-lr0.05", "base12k-lr0.2", "base12k-every1", "base12k-copyback",
                    "base12k-nobn", "posthoc12k" -> ablation(group, scale, seed, decays, every, recompute);
            case "overfit" -> new RunSpec(group, full ? 32 : 4, full ? 4000 : 600, 0, List.of(), tests,
                    full ? 60 : 4, batch, "cosine", 0.1, 0, decays, full ? 4 : 2, false, recompute, 0, full ? 3 : 1,
                    false, "smallCnn", 0, -1, 0, seed);
            case "noise20", "noise40", "noise40-10k", "noise40-all" -> noise(group, scale, seed, decays, recompute);
            case "transfer" -> new RunSpec(group, width, samples, 0, List.of(0, 1, 2, 3, 4), tests, epochs, batch,
                    "cosine", 0.1, 5e-4, decays, every, false, recompute, 0, epochs, true, "smallCnn", 0, -1, 0, seed);
            case "demo-clean", "demo-noise40" -> demo(group, scale, seed);
            default -> throw new IllegalArgumentException("unknown run group \"" + group + "\"");
        };
    }
}
