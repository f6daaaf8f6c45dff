package dev.ema4j.study.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.study.CellResult.EpochRecord;
import dev.ema4j.study.CellResult.Selection;
import dev.ema4j.study.CellResult.VariantRecord;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.PostHocSweep;
import dev.ema4j.study.RunSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Writes hand-made cells (result.json and predictions.safetensors, as {@link dev.ema4j.study.CellRunner} lays them
 * out) whose EMAs are clearly better or clearly worse than SGD on every measure; nothing is trained.
 *
 * <p>Accuracy (val and test, each with its own {@link #jitter}) at epoch e of seed s: SGD {@code 0.70 + 0.05e + 0.001s}, {@code + 0.002} with recomputed
 * statistics; SWA the selected EMA's {@code + 0.001} (better) or {@code + 0.05} (worse); some groups shift it
 * ({@code groupOffset}); EMA k with recomputed statistics
 * {@code 0.80 + 0.01k − 0.01e + 0.001s} if better (peaks at the first epoch), SGD {@code − 0.03 − 0.01k} if worse;
 * averaged statistics {@code ∓ 0.01(k+1)} from that. NLL = 1 − accuracy. Memorization on {@code train}: clean
 * accuracy {@code 0.6 + 0.2e} for all; memorized SGD {@code 0.3 + 0.4e}, EMA {@code 0.1 + 0.1e} (better) or
 * {@code 0.5 + 0.4e} (worse). Predictions: SGD right on 70% of the samples at random per seed with confidence 0.95;
 * a better EMA right on a fixed 75% of samples (plus 10% at random) with confidence 0.8, a worse one right on 60% at
 * random with confidence 0.99. Post-hoc widths (last epoch): the best tracked EMA's accuracy + 0.1 pp at σ_rel 0.10 and
 * − 0.2 pp at the others (better), or − 2 pp (worse).
 */
final class SyntheticStudy {

    enum Quality { BETTER, WORSE }

    static final int SAMPLES = 1000;
    static final String[] SETS = {"val", "test"};
    static final String[] CRITERIA = {"final", "best_acc", "best_nll"};

    private SyntheticStudy() {
    }

    static void write(Path out, List<RunSpec> specs, Quality q) throws IOException {
        for (RunSpec spec : specs) {
            writeCell(out.resolve("cells"), spec, q);
        }
    }

    /** Writes {@code spec}'s cell into {@code cells/<key>}. */
    static void writeCell(Path cells, RunSpec spec, Quality q) throws IOException {
        Path dir = Files.createDirectories(cells.resolve(spec.key()));
        List<String> variants = variants(spec);
        List<EpochRecord> epochs = new ArrayList<>();
        for (int e = 0; e < spec.epochs(); e++) {
            List<VariantRecord> records = new ArrayList<>();
            if (evaluated(spec, e)) {
                for (String v : evaluatedVariants(spec, e)) {
                    double a = accuracy(spec, v, e, q);
                    for (String set : SETS) {
                        double j = a + jitter(spec, v, set, e);
                        records.add(new VariantRecord(v, set, j, 1 - j, 0.05, 0.04, null, null, null));
                    }
                    if (spec.memorizationSamples() > 0) {
                        double m = memorized(v, e, q);
                        records.add(new VariantRecord(v, "train", a, 1 - a, 0.05, 0.04, 0.6 + 0.2 * e, m,
                                0.95 - m));
                    }
                }
            }
            epochs.add(new EpochRecord(e, 10L * (e + 1), 0.1, 1.0 / (e + 1), 0.5, records));
        }
        Map<String, Selection> selections = new LinkedHashMap<>();
        for (String v : variants) {
            int best = -1;
            for (int e = 0; e < spec.epochs(); e++) {
                if (evaluated(spec, e) && (best < 0 || accuracy(spec, v, e, q) > accuracy(spec, v, best, q))) {
                    best = e;
                }
            }
            selections.put(v, new Selection(best, best));
        }
        Map<String, Double> probes = new LinkedHashMap<>();
        if (spec.probe()) {
            probes.put("sgd", 0.6);
            for (int k = 0; k < spec.decays().size(); k++) {
                probes.put("ema" + k + "/recomputed", q == Quality.BETTER ? 0.65 + 0.01 * k : 0.55 - 0.01 * k);
            }
        }
        Map<String, String> env = new LinkedHashMap<>();
        env.put("ema4j", "test");
        env.put("backend", "cpu");
        env.put("blas", "none");
        env.put("java", "test-jvm");
        env.put("cpu", "test-cpu");
        new ObjectMapper().writeValue(dir.resolve("result.json").toFile(),
                new CellResult(spec, env, 60.0 * spec.seed(), epochs, selections, probes, posthocFits(spec)));
        SafetensorsWriter.write(dir.resolve("predictions.safetensors"), Map.of(), tensors(spec, variants, q));
    }

    /**
     * A deterministic offset in [−{@link #JITTER}, {@link #JITTER}] per cell, variant, set and epoch: seeds differ by
     * more than a shift, so paired intervals have a width, and validation differs from test.
     */
    static double jitter(RunSpec spec, String variant, String set, int epoch) {
        return JITTER * (2 * new SplittableRandom(Objects.hash(spec.key(), variant, set, epoch)).nextDouble() - 1);
    }

    /** The largest {@link #jitter}: 0.05 pp, well inside every synthetic effect. */
    static final double JITTER = 0.0005;

    static boolean evaluated(RunSpec spec, int epoch) {
        return (epoch + 1) % spec.evalEvery() == 0 || epoch + 1 == spec.epochs();
    }

    static int classes(RunSpec spec) {
        return spec.classes().isEmpty() ? 10 : spec.classes().size();
    }

    /** The variants with records at epoch {@code e}: SWA and the post-hoc widths only at the last epoch. */
    static List<String> evaluatedVariants(RunSpec spec, int e) {
        List<String> v = new ArrayList<>(variants(spec));
        if (spec.swaFrom() > 0 && e == spec.epochs() - 1) {
            v.add("swa/recomputed");
        }
        if (spec.snapshotEvery() > 0 && e == spec.epochs() - 1) {
            PostHocSweep.SIGMAS.forEach(sigma -> v.add(PostHocSweep.model(sigma) + "/recomputed"));
        }
        return v;
    }

    /** The sweep's fits of a snapshotting cell (a small profile error), else none. */
    static List<CellResult.PostHocFit> posthocFits(RunSpec spec) {
        return spec.snapshotEvery() == 0 ? List.of() : PostHocSweep.SIGMAS.stream()
                .map(sigma -> new CellResult.PostHocFit(sigma, 88, 44, 1e-3, 1.5)).toList();
    }

    /** The variants evaluated at every epoch (and kept in the predictions). */
    static List<String> variants(RunSpec spec) {
        List<String> v = new ArrayList<>(List.of("sgd", "sgd/recomputed"));
        for (int k = 0; k < spec.decays().size(); k++) {
            if (spec.averagedStats()) {
                v.add("ema" + k + "/averaged");
            }
            v.add("ema" + k + "/recomputed");
        }
        return v;
    }

    static double accuracy(RunSpec spec, String variant, int e, Quality q) {
        boolean better = q == Quality.BETTER;
        if (variant.equals("swa/recomputed")) {
            // the selected EMA's accuracy (val = test) and 0.1 pp (better: comparable) or 5 pp (worse) more
            double best = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < spec.decays().size(); k++) {
                for (int epoch = 0; epoch < spec.epochs(); epoch++) {
                    best = Math.max(best, accuracy(spec, "ema" + k + "/recomputed", epoch, q));
                }
            }
            return best + (better ? 0.001 : 0.05);
        }
        if (variant.startsWith("posthoc")) {
            // the best tracked EMA at the last epoch and 0.1 pp at σ_rel 0.10, 0.3 pp less elsewhere (better), or
            // 2 pp less (worse)
            double best = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < spec.decays().size(); k++) {
                best = Math.max(best, accuracy(spec, "ema" + k + "/recomputed", e, q));
            }
            boolean peak = variant.startsWith(PostHocSweep.model(0.10));
            return best + (better ? (peak ? 0.001 : -0.002) : -0.02);
        }
        int k = variant.startsWith("ema") ? variant.charAt(3) - '0' : -1;
        return base(spec, variant, e, better) + groupOffset(spec.group(), k, better);
    }

    private static double base(RunSpec spec, String variant, int e, boolean better) {
        double sgd = 0.70 + 0.05 * e + 0.001 * spec.seed();
        if (variant.equals("sgd")) {
            return sgd;
        }
        if (variant.equals("sgd/recomputed")) {
            return sgd + 0.002;
        }
        int k = variant.charAt(3) - '0';
        double recomputed = better ? 0.80 + 0.01 * k - 0.01 * e + 0.001 * spec.seed() : sgd - 0.03 - 0.01 * k;
        return variant.endsWith("/recomputed") ? recomputed : recomputed + (better ? -0.01 : 0.01) * (k + 1);
    }

    /**
     * What a group adds to every variant (or EMA {@code k}; −1 for SGD) so that its claim holds clearly (better) or
     * fails clearly (worse): every-step EMAs equal (5 pp above); copying back 2 pp below (above); peak LR 0.05 1 pp
     * below for all, 0.2 1 pp below for SGD and 1 pp below (2 pp above) for the EMAs; without BatchNorm nothing (EMA
     * k 2k pp lower, so long windows lose more than with BatchNorm).
     */
    private static double groupOffset(String group, int k, boolean better) {
        boolean ema = k >= 0;
        return switch (group) {
            case "base12k-every1" -> ema && !better ? 0.05 : 0;
            case "base12k-copyback" -> better ? -0.02 : 0.02;
            case "base12k-lr0.05" -> -0.01;
            case "base12k-lr0.2" -> ema && !better ? 0.02 : -0.01;
            case "base12k-nobn" -> ema && !better ? -0.02 * k : 0;
            default -> 0;
        };
    }

    static double memorized(String variant, int e, Quality q) {
        if (variant.startsWith("sgd")) {
            return 0.3 + 0.4 * e;
        }
        return q == Quality.BETTER ? 0.1 + 0.1 * e : 0.5 + 0.4 * e;
    }

    /** Labels of a set: sample i has class i mod C. */
    static int[] labels(RunSpec spec) {
        int[] l = new int[SAMPLES];
        for (int i = 0; i < l.length; i++) {
            l[i] = i % classes(spec);
        }
        return l;
    }

    static float[] probabilities(RunSpec spec, String variant, String set, String criterion, Quality q) {
        int c = classes(spec);
        int[] labels = labels(spec);
        SplittableRandom perSeed = new SplittableRandom(Objects.hash(spec.group(), spec.seed(), variant, set,
                criterion));
        boolean ema = variant.startsWith("ema");
        float[] p = new float[SAMPLES * c];
        for (int i = 0; i < SAMPLES; i++) {
            boolean right;
            int wrong;
            float confidence;
            if (ema && q == Quality.BETTER) {
                boolean fixed = new SplittableRandom(i * 31L + set.hashCode()).nextDouble() < 0.75;
                right = perSeed.nextDouble() < 0.1 || fixed;
                wrong = (labels[i] + 1) % c;
                confidence = 0.8f;
            } else {
                right = perSeed.nextDouble() < (ema ? 0.6 : 0.7);
                wrong = (labels[i] + 1 + perSeed.nextInt(c - 1)) % c;
                confidence = ema ? 0.99f : 0.95f;
            }
            int predicted = right ? labels[i] : wrong;
            for (int j = 0; j < c; j++) {
                p[i * c + j] = j == predicted ? confidence : (1 - confidence) / (c - 1);
            }
        }
        return p;
    }

    private static List<FloatTensor> tensors(RunSpec spec, List<String> variants, Quality q) {
        List<FloatTensor> t = new ArrayList<>();
        int[] labels = labels(spec);
        float[] l = new float[labels.length];
        for (int i = 0; i < l.length; i++) {
            l[i] = labels[i];
        }
        for (String set : SETS) {
            t.add(tensor("labels|" + set, l, List.of((long) SAMPLES)));
            for (String v : variants) {
                for (String criterion : CRITERIA) {
                    t.add(tensor(v + "|" + set + "|" + criterion, probabilities(spec, v, set, criterion, q),
                            List.of((long) SAMPLES, (long) classes(spec))));
                }
            }
        }
        return t;
    }

    private static FloatTensor tensor(String name, float[] values, List<Long> shape) {
        return new FloatTensor(name, shape, (offset, dst, dstOffset, length) ->
                System.arraycopy(values, (int) offset, dst, dstOffset, length));
    }
}
