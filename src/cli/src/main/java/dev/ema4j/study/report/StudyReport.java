package dev.ema4j.study.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.ema4j.study.CellResult;
import dev.ema4j.study.CellRunner;
import dev.ema4j.study.Environment;
import dev.ema4j.study.RunSpec;
import dev.ema4j.study.Scale;
import dev.ema4j.study.StudyPlan;
import dev.ema4j.study.report.Verdict.Outcome;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Writes a study's report from its published cells: {@code OUT/report.md} (setup, one section per experiment with
 * tables, plots and a verdict per paper claim, and a summary of the verdicts), {@code OUT/plots/*.png},
 * {@code OUT/metrics.csv} (every per-epoch metric) and {@code OUT/results.json} (the tables and verdicts).
 *
 * <p>Every cell that {@link StudyPlan#runs} expects is read; a cell that is absent, unreadable, without predictions
 * or made from another spec than the expected one is missing. Missing cells are listed on report.md's first line
 * ({@code INCOMPLETE}), and every experiment that reads one is not analysed: its claims are inconclusive.
 */
public final class StudyReport {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private static final List<Section> SECTIONS = List.of(new DynamicsSection(), new BnSection(), new NoiseSection(),
            new ConsistencySection(), new CalibrationSection(), new TransferSection(), new LrSection(),
            new AblationSections.Swa(), new AblationSections.Every(), new AblationSections.CopyBack(),
            new PostHocSection(), new DemoSection());

    /** Why the EMAs use bias-corrected decays (after {@link StudyPlan}'s Javadoc). */
    private static final String DECAY_NOTE = "**EMA decays.** Every EMA is updated once every `every` optimizer "
            + "steps as `ema ← β_u·ema + (1 − β_u)·θ`, with the Adam-style bias-corrected decay "
            + "`β_u = a·(1 − a^u)/(1 − a^(u+1))`, `a = α^every`, clocked in EMA updates u = 0, 1, … "
            + "(`DecaySchedule.biasCorrected`, `EmaClock.EMA_UPDATES`): α, the decay in the tables, is per optimizer "
            + "step, and the window, about 1/(1 − α) steps (10, 31, 125 and 500 steps for 0.9, 0.968, 0.992 and "
            + "0.998), does not depend on `every`. The paper keeps α ∈ {0.968 … 0.998} per update at every = 16 "
            + "(0.998 … 0.999875 per step: windows of 500 to 8000 steps, 0.6% to 10% of its ~80k-step runs) with the "
            + "warm-up `min(α, (t+1)/(t+10))`; ours are 0.2% to 9% of a 5.6k-step cosine run. Over a few thousand "
            + "steps that warm-up, counted in steps or in updates, holds every decay above ~0.98 at the same value "
            + "for the whole run, so those EMAs would coincide. With bias correction every EMA is a normalized "
            + "exponential average from its first update on, and the decays differ at once. ";

    private StudyReport() {
    }

    /**
     * A cell that cannot be analysed.
     *
     * @param spec the expected run
     * @param why why: not run, made from another spec, …
     */
    record Missing(RunSpec spec, String why) {
        @Override
        public String toString() {
            return spec.key() + " (" + why + ")";
        }
    }

    /** One experiment in results.json. */
    record ExperimentResult(String name, String title, List<String> missingCells, List<Table> tables,
                            List<Verdict> verdicts) {
    }

    /** results.json. */
    record Results(boolean complete, List<String> missingCells, List<Table> setup, List<ExperimentResult> experiments) {
    }

    /**
     * Writes OUT/report.md, OUT/plots/*.png, OUT/metrics.csv, OUT/results.json for {@code experiments} from the
     * cells under OUT/cells; returns report.md's path.
     *
     * @param out the study's directory (holds {@code cells/})
     * @param experiments names of {@link StudyPlan#EXPERIMENTS}, or {@code demo}
     * @param scale the scale the cells were run at
     * @param seeds seeds of every run group
     * @param command the command line that made the study, quoted in the setup
     */
    public static Path write(Path out, List<String> experiments, Scale scale, int seeds, String command)
            throws IOException {
        List<RunSpec> expected = StudyPlan.runs(experiments, scale, seeds);
        Map<String, List<Cell>> byGroup = new LinkedHashMap<>();
        List<Missing> missing = new ArrayList<>();
        for (RunSpec spec : expected) {
            String why = load(out.resolve("cells"), spec, byGroup);
            if (why != null) {
                missing.add(new Missing(spec, why));
            }
        }
        Map<String, Group> groups = new LinkedHashMap<>();
        byGroup.forEach((name, cells) -> groups.put(name, new Group(name, cells)));
        Inputs in = new Inputs(groups, Files.createDirectories(out.resolve("plots")));

        StringBuilder md = new StringBuilder();
        List<String> missingKeys = missing.stream().map(Missing::toString).toList();
        if (!missing.isEmpty()) {
            md.append("**INCOMPLETE: ").append(missing.size()).append(" of ").append(expected.size())
                    .append(" expected cells missing: ").append(String.join(", ", missingKeys))
                    .append(".** Experiments that read them are inconclusive; run the missing cells and write the "
                            + "report again.\n\n");
        }
        md.append("# Exponential moving average of weights: reproduction report\n\n");
        md.append("Reproduces at small scale the claims of Morales-Brotons, Vogels & Hendrikx, \"Exponential Moving "
                + "Average of Weights in Deep Learning: Dynamics and Benefits\" (TMLR 2024) on Fashion-MNIST.\n\n");
        List<Table> setup = setup(expected, byGroup, scale, seeds, command);
        md.append("## Setup\n\n");
        setup.forEach(t -> md.append("**").append(t.title()).append("**\n\n").append(t.markdown()).append('\n'));
        md.append(DECAY_NOTE).append("This report's runs update their EMAs every ")
                .append(expected.stream().map(r -> Integer.toString(r.every())).distinct()
                        .collect(Collectors.joining(" or "))).append(" steps (see the runs table).\n\n");

        List<ExperimentResult> results = new ArrayList<>();
        for (String name : experiments) {
            Section s = section(name);
            Set<String> read = Set.copyOf(StudyPlan.groups(name));
            List<String> absent = missing.stream().filter(m -> read.contains(m.spec().group()))
                    .map(m -> m.spec().key()).toList();
            Rendered r = absent.isEmpty() ? s.render(in) : notAnalysed(s, absent);
            md.append("## ").append(name).append(": ").append(s.title()).append("\n\n").append(r.markdown());
            md.append(claims(r.verdicts()));
            results.add(new ExperimentResult(name, s.title(), absent, r.tables(), r.verdicts()));
        }
        md.append(summary(results, missing.size()));

        Path report = out.resolve("report.md");
        Files.writeString(report, md);
        MetricsCsv.write(out.resolve("metrics.csv"), byGroup.values().stream().flatMap(List::stream).toList());
        JSON.writeValue(out.resolve("results.json").toFile(), new Results(missing.isEmpty(), missingKeys, setup,
                results));
        return report;
    }

    /** Adds {@code spec}'s cell to {@code byGroup}; returns why it is missing, or null. */
    private static String load(Path cells, RunSpec spec, Map<String, List<Cell>> byGroup) throws IOException {
        CellResult result;
        try {
            result = CellRunner.read(cells, spec);
        } catch (JsonProcessingException e) {
            return "unreadable result.json";
        }
        if (result == null) {
            return "not run";
        }
        if (!result.spec().equals(spec)) {
            return "made from another spec";
        }
        Path dir = cells.resolve(spec.key());
        if (!Files.exists(dir.resolve(Cell.PREDICTIONS))) {
            return "no " + Cell.PREDICTIONS;
        }
        byGroup.computeIfAbsent(spec.group(), g -> new ArrayList<>()).add(new Cell(result, dir));
        return null;
    }

    private static Section section(String name) {
        return SECTIONS.stream().filter(s -> s.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no report section for experiment \"" + name + "\""));
    }

    private static Rendered notAnalysed(Section s, List<String> absent) {
        Rendered r = new Rendered().text("**inconclusive (missing cells: " + String.join(", ", absent) + ")**: this "
                + "experiment reads " + StudyPlan.groups(s.name()) + " and was not analysed.");
        s.claims().forEach(c -> r.verdict(Verdict.missing(c, absent)));
        return r;
    }

    private static String claims(List<Verdict> verdicts) {
        Table t = Table.of("Claims", "claim", "paper", "ours", "verdict", "reason");
        StringBuilder rules = new StringBuilder("Verdict rules:\n\n");
        for (Verdict v : verdicts) {
            t.row(v.claim().text(), v.claim().paper(), v.ours(), "**" + v.label() + "**", v.reason());
            rules.append("- *").append(v.claim().text()).append("*: ").append(v.claim().rule()).append('\n');
        }
        return "**Claims**\n\n" + t.markdown() + "\n" + rules + "\n";
    }

    private static String summary(List<ExperimentResult> results, int missing) {
        Table t = Table.of("Summary", "experiment", "claim", "ours", "verdict");
        Map<Outcome, Integer> tally = new LinkedHashMap<>();
        for (ExperimentResult e : results) {
            for (Verdict v : e.verdicts()) {
                t.row(e.name(), v.claim().text(), v.ours(), v.label());
                tally.merge(v.outcome(), 1, Integer::sum);
            }
        }
        String incomplete = missing == 0 ? "" : "**INCOMPLETE**: " + missing + " expected cell(s) missing (see the "
                + "first line); the verdicts of the experiments that read them are inconclusive.\n\n";
        return "## Summary\n\n" + incomplete + t.markdown() + "\n" + tally.entrySet().stream()
                .map(e -> e.getValue() + " " + e.getKey().label()).collect(Collectors.joining(", ")) + ".\n";
    }

    private static List<Table> setup(List<RunSpec> expected, Map<String, List<Cell>> byGroup, Scale scale, int seeds,
                                     String command) {
        Table env = Table.of("Environment and invocation", "item", "value");
        env.row("ema4j (this report)", Environment.version());
        Map<String, Set<String>> values = new LinkedHashMap<>();
        byGroup.values().stream().flatMap(List::stream).forEach(c -> c.result().environment()
                .forEach((k, v) -> values.computeIfAbsent(k, x -> new LinkedHashSet<>()).add(v)));
        if (values.isEmpty()) {
            env.row("cells' environment", "unknown: no cell was read");
        }
        values.forEach((k, v) -> env.row(k + " (cells)", String.join("; ", v)));
        boolean demo = expected.stream().allMatch(r -> r.group().startsWith("demo-"));
        env.row("scale", demo ? "the demo's settings (runs below)" : scale.name().toLowerCase());
        Map<Integer, List<String>> seedCounts = new LinkedHashMap<>();
        expected.stream().collect(Collectors.groupingBy(RunSpec::group, LinkedHashMap::new, Collectors.counting()))
                .forEach((g, n) -> seedCounts.computeIfAbsent(n.intValue(), x -> new ArrayList<>()).add(g));
        env.row("seeds", seedCounts.size() == 1 ? "every group: 1.." + seedCounts.keySet().iterator().next()
                : seedCounts.entrySet().stream().map(e -> String.join(", ", e.getValue()) + ": 1.." + e.getKey())
                        .collect(Collectors.joining("; ")));
        env.row("command", "`" + command + "`");

        Table runs = Table.of("Runs by group (the expected specs; SmallCnn, SGD with Nesterov momentum 0.9, 80/20 "
                        + "train/validation split of the drawn training images)", "group", "seeds", "model",
                "training images", "label noise", "classes", "test images", "epochs", "batch", "LR schedule",
                "weight decay", "EMA decays α (per step)", "every (steps)", "EMA BatchNorm statistics", "other",
                "time per seed (s)");
        Map<String, List<RunSpec>> specs = expected.stream()
                .collect(Collectors.groupingBy(RunSpec::group, LinkedHashMap::new, Collectors.toList()));
        double[] total = {0};
        specs.forEach((group, list) -> {
            RunSpec s = list.get(0);
            double[] seconds = byGroup.getOrDefault(group, List.of()).stream().mapToDouble(c -> c.result().seconds())
                    .toArray();
            total[0] += Arrays.stream(seconds).sum();
            runs.row(group, Integer.toString(list.size()), (s.model().equals("smallCnn") ? "SmallCnn" : "SmallCnn "
                            + "without BatchNorm") + "(width " + s.width() + ")",
                    s.trainSamples() == 0 ? "all 60000" : Integer.toString(s.trainSamples()),
                    Fmt.f("%.0f%%", 100 * s.noise()),
                    s.classes().isEmpty() ? "all 10" : s.classes() + (s.probe() ? ", probe on the others" : ""),
                    s.testSamples() == 0 ? "all" : Integer.toString(s.testSamples()), Integer.toString(s.epochs()),
                    Integer.toString(s.batch()), schedule(s), plain(s.weightDecay()),
                    s.decays().stream().map(Fmt::decay).collect(Collectors.joining(", ")), Integer.toString(s.every()),
                    "recomputed over " + s.recomputeBatches() + " batches" + (s.averagedStats()
                            ? "; averaged (EMAN)" : ""), other(s),
                    seconds.length == 0 ? "—" : Stat.of(0, seconds).toString());
        });
        env.row("training time", Fmt.f("%.1f h over %d cells (cells read; each cell below)",
                total[0] / 3600, byGroup.values().stream().mapToInt(List::size).sum()));
        return List.of(env, runs, cellTimes(specs, byGroup, total[0]));
    }

    /** Each cell's wall-clock time in minutes, one row per group and a column per seed; "—" for a missing cell. */
    private static Table cellTimes(Map<String, List<RunSpec>> specs, Map<String, List<Cell>> byGroup, double total) {
        int maxSeeds = specs.values().stream().mapToInt(List::size).max().orElse(0);
        List<String> header = new ArrayList<>(List.of("group"));
        for (int seed = 1; seed <= maxSeeds; seed++) {
            header.add("seed " + seed);
        }
        header.add("group total");
        Table t = Table.of("Training time of each cell (minutes, wall clock, cells run one after another)",
                header.toArray(String[]::new));
        specs.forEach((group, list) -> {
            Map<Long, Double> bySeed = new LinkedHashMap<>();
            byGroup.getOrDefault(group, List.of())
                    .forEach(c -> bySeed.put(c.result().spec().seed(), c.result().seconds()));
            List<String> row = new ArrayList<>(List.of(group));
            for (int seed = 1; seed <= maxSeeds; seed++) {
                Double s = bySeed.get((long) seed);
                row.add(s == null ? (seed <= list.size() ? "—" : "") : Fmt.f("%.1f", s / 60));
            }
            row.add(bySeed.isEmpty() ? "—"
                    : Fmt.f("%.1f", bySeed.values().stream().mapToDouble(Double::doubleValue).sum() / 60));
            t.row(row.toArray(String[]::new));
        });
        List<String> all = new ArrayList<>(List.of("all"));
        for (int seed = 1; seed <= maxSeeds; seed++) {
            all.add("");
        }
        all.add(Fmt.f("%.1f", total / 60));
        t.row(all.toArray(String[]::new));
        return t;
    }

    private static String other(RunSpec s) {
        List<String> o = new ArrayList<>();
        if (s.swaFrom() > 0) {
            o.add("SWA over the epochs after " + plain(s.swaFrom()) + " of the run");
        }
        if (s.copyBack() >= 0) {
            o.add("EMA " + Fmt.decay(s.decays().get(s.copyBack())) + " copied into the live weights after every "
                    + "epoch");
        }
        if (s.memorizationSamples() > 0) {
            o.add("memorization on " + s.memorizationSamples() + " training samples");
        }
        return o.isEmpty() ? "" : String.join("; ", o);
    }

    private static String schedule(RunSpec s) {
        String peak = ", peak " + plain(s.baseLr());
        return switch (s.lr()) {
            case "cosine" -> "cosine" + peak + " (1 epoch linear warm-up)";
            case "step" -> "step" + peak + " (÷5 at 30, 60, 80% of the steps)";
            default -> "constant " + plain(s.baseLr());
        };
    }

    /** {@code 5.0E-4 → "0.0005"}. */
    private static String plain(double d) {
        return BigDecimal.valueOf(d).stripTrailingZeros().toPlainString();
    }
}
