package dev.ema4j.study;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaClock;
import dev.ema4j.EmaConfig;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Backend;
import dev.ema4j.data.Augmentation;
import dev.ema4j.data.Batch;
import dev.ema4j.data.BatchConfig;
import dev.ema4j.data.Batches;
import dev.ema4j.data.DatasetView;
import dev.ema4j.data.FashionMnist;
import dev.ema4j.data.ImageDataset;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.metrics.Classification;
import dev.ema4j.nn.Linear;
import dev.ema4j.nn.Layer;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.LrSchedule;
import dev.ema4j.optim.Sgd;
import dev.ema4j.posthoc.Combination;
import dev.ema4j.posthoc.SnapshotConfig;
import dev.ema4j.posthoc.SnapshotSet;
import dev.ema4j.train.EpochReport;
import dev.ema4j.train.EvaluationConfig;
import dev.ema4j.train.ModelEvaluation;
import dev.ema4j.train.Trainer;
import dev.ema4j.train.TrainingConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Executes one {@link RunSpec} and publishes its cell: {@code <cells>/<key>/result.json} and
 * {@code predictions.safetensors} (per variant, set ({@code val}, {@code test}) and criterion ({@code final},
 * {@code best_acc}, {@code best_nll}): the class probabilities, tensor {@code <variant>|<set>|<criterion>};
 * labels as {@code labels|<set>}); a snapshotting run ({@link RunSpec#snapshotEvery()}) also keeps its snapshots
 * ({@code snapshots/}) and final state ({@code final.safetensors}) for {@code ema4j posthoc}. Everything is written
 * into a temporary directory that is renamed into place, so a cell directory is either complete or absent.
 */
public final class CellRunner {

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final String[] CRITERIA = {"final", "best_acc", "best_nll"};

    private final Path dataDir;
    private final Backend backend;
    private final Map<String, String> environment;

    /**
     * @param dataDir Fashion-MNIST's directory, or null for the default ({@link FashionMnist#directory})
     * @param backend where to train (the network runs on it; EMAs too)
     */
    public CellRunner(Path dataDir, Backend backend) {
        this.dataDir = dataDir;
        this.backend = backend;
        this.environment = Environment.describe(backend);
    }

    /** Reads a cell's result, or null when the cell has not been published. */
    public static CellResult read(Path cells, RunSpec spec) throws IOException {
        Path file = cells.resolve(spec.key()).resolve("result.json");
        if (!Files.exists(file)) {
            return null;
        }
        try {
            return JSON.readValue(file.toFile(), CellResult.class);
        } catch (IOException e) {
            throw new IOException(file + " is not a readable cell result (delete the cell's directory to run it "
                    + "again): " + e.getMessage(), e);
        }
    }

    /** What a run trains on and evaluates on, its configuration and model, as its spec determines them. */
    private record Setup(ImageDataset trainSet, ImageDataset testSet, int[] classes, DatasetView train,
                         Map<String, DatasetView> evalSets, int stepsPerEpoch, TrainingConfig config, Layer model) {
    }

    private Setup setup(RunSpec spec) throws IOException {
        ImageDataset trainSet = FashionMnist.train(dataDir);
        ImageDataset testSet = FashionMnist.test(dataDir);
        DatasetView pool = trainSet.view();
        DatasetView test = testSet.view();
        if (spec.trainSamples() > 0) {
            pool = pool.sample(spec.trainSamples(), RunSpec.DATA_SEED);
        }
        int[] classes = spec.classes().stream().mapToInt(Integer::intValue).toArray();
        if (classes.length > 0) {
            pool = pool.subsetRelabeled(classes);
            test = test.subsetRelabeled(classes);
        }
        if (spec.noise() > 0) {
            pool = pool.symmetricNoise(spec.noise(), RunSpec.DATA_SEED);
        }
        if (spec.testSamples() > 0) {
            test = test.first(Math.min(spec.testSamples(), test.size()));
        }
        DatasetView.Split split = pool.split(0.8, RunSpec.DATA_SEED);
        int stepsPerEpoch = new Batches(split.train(), BatchConfig.training(spec.batch(), spec.seed())).batchCount();
        TrainingConfig config = new TrainingConfig(spec.epochs(), spec.batch(), spec.seed(),
                Sgd.nesterov(spec.weightDecay()), schedule(spec, stepsPerEpoch), emaConfig(spec), Augmentation.NONE,
                new EvaluationConfig(spec.averagedStats(), true, spec.recomputeBatches(), spec.memorizationSamples(),
                        100, 15, spec.evalEvery()));
        Map<String, DatasetView> evalSets = new LinkedHashMap<>();
        evalSets.put("val", split.validation());
        evalSets.put("test", test);
        int outputs = classes.length > 0 ? classes.length : trainSet.classes();
        Layer model = spec.model().equals("smallCnn") ? Models.smallCnn(spec.width(), outputs)
                : Models.smallCnnNoBatchNorm(spec.width(), outputs);
        return new Setup(trainSet, testSet, classes, split.train(), evalSets, stepsPerEpoch, config, model);
    }

    /** Work on a finished run's trainer. */
    @FunctionalInterface
    public interface FinishedRun<T> {
        T apply(Trainer trainer) throws IOException;
    }

    /**
     * Rebuilds a snapshotting run's data, network and trainer from its spec, loads the final state it saved
     * ({@link PostHocSweep#FINAL_STATE}) and applies {@code action} to the trainer.
     *
     * @throws IOException if the state file is missing, unreadable or not this run's
     */
    public <T> T withFinishedRun(RunSpec spec, Path cellDirectory, FinishedRun<T> action) throws IOException {
        Setup s = setup(spec);
        try (Network net = Network.build(backend, s.model(), new Shape(1, 1, 28, 28), spec.batch(), spec.seed());
             Trainer trainer = new Trainer(net, s.train(), s.evalSets(), s.config())) {
            trainer.load(cellDirectory.resolve(PostHocSweep.FINAL_STATE));
            return action.apply(trainer);
        }
    }

    /** Runs {@code spec} and publishes its cell under {@code cells}, reporting to {@code progress}. */
    public CellResult run(RunSpec spec, Path cells, Progress progress) throws IOException {
        long start = System.nanoTime();
        Setup s = setup(spec);
        ImageDataset trainSet = s.trainSet();
        ImageDataset testSet = s.testSet();
        int[] classes = s.classes();
        int stepsPerEpoch = s.stepsPerEpoch();
        List<CellResult.EpochRecord> epochs = new ArrayList<>();
        Predictions predictions = new Predictions();
        Map<String, Double> probes = new LinkedHashMap<>();
        List<CellResult.PostHocFit> posthoc = new ArrayList<>();
        Files.createDirectories(cells);
        Path work = Files.createTempDirectory(cells, ".tmp-" + spec.key() + "-");
        try {
            try (Network net = Network.build(backend, s.model(), new Shape(1, 1, 28, 28), spec.batch(), spec.seed());
                 Trainer trainer = new Trainer(net, s.train(), s.evalSets(), s.config())) {
                UniformAverage swa = new UniformAverage();
                trainer.onEpoch(report -> {
                    if (spec.swaFrom() > 0 && report.epoch() + 1 > spec.swaFrom() * spec.epochs()) {
                        swa.add(trainer.liveWeights());
                    }
                    if (spec.copyBack() >= 0) {
                        trainer.copyEmaIntoLiveWeights(spec.copyBack());
                    }
                    epochs.add(record(report));
                    predictions.add(report);
                    progress.line(summary(spec, report));
                });
                if (spec.snapshotEvery() > 0) {
                    trainer.snapshotPowerEmas(SnapshotConfig.of(work.resolve(PostHocSweep.SNAPSHOTS))
                            .withEvery(spec.snapshotEvery()));
                }
                progress.start(spec, (long) spec.epochs() * stepsPerEpoch);
                try {
                    while (trainer.epoch() < spec.epochs()) {
                        trainer.runSteps(1);
                        progress.step();
                    }
                } finally {
                    progress.done();
                }
                int last = epochs.size() - 1;
                if (swa.count() > 0) {
                    epochs.set(last, withEvaluations(epochs.get(last), trainer.evaluateWeights("swa", swa.mean())));
                }
                if (spec.snapshotEvery() > 0) {
                    trainer.save(work.resolve(PostHocSweep.FINAL_STATE));
                    try (SnapshotSet set = SnapshotSet.open(work.resolve(PostHocSweep.SNAPSHOTS))) {
                        List<PostHocSweep.Point> points = PostHocSweep.run(trainer, set,
                                PostHocSweep.widths(PostHocSweep.SIGMAS, set.lastTime()));
                        for (int i = 0; i < points.size(); i++) {
                            Combination fit = points.get(i).fit();
                            epochs.set(last, withEvaluations(epochs.get(last), points.get(i).evaluations()));
                            posthoc.add(new CellResult.PostHocFit(PostHocSweep.SIGMAS.get(i), fit.target().t(),
                                    fit.snapshots().size(), fit.relativeError(), fit.amplification()));
                        }
                    }
                }
                if (spec.probe()) {
                    probes.putAll(probe(spec, trainer, net, trainSet, testSet, classes));
                }
            }
            CellResult result = new CellResult(spec, environment, (System.nanoTime() - start) / 1e9, epochs,
                    predictions.selections(), probes, posthoc);
            publish(cells, work, spec, result, predictions);
            return result;
        } catch (IOException | RuntimeException e) {
            delete(work);
            throw e;
        }
    }

    static LrSchedule schedule(RunSpec spec, int stepsPerEpoch) {
        long total = (long) spec.epochs() * stepsPerEpoch;
        return switch (spec.lr()) {
            case "cosine" -> LrSchedule.warmupCosine(spec.baseLr(), stepsPerEpoch, Math.max(total, stepsPerEpoch + 1));
            case "constant" -> LrSchedule.constant(spec.baseLr());
            default -> LrSchedule.step(spec.baseLr(), List.of((long) (0.3 * total), (long) (0.6 * total),
                    (long) (0.8 * total)), 0.2);
        };
    }

    static EmaConfig emaConfig(RunSpec spec) {
        List<DecaySchedule> schedules = new ArrayList<>(spec.decays().stream().map(DecaySchedule::biasCorrected)
                .toList());
        if (spec.snapshotEvery() > 0) {
            schedules.addAll(PostHocSweep.trackedSchedules());
        }
        return new EmaConfig(schedules, spec.every(), EmaClock.EMA_UPDATES, NonFinitePolicy.SKIP);
    }

    /** A running uniform average of weight vectors (SWA's), in double. */
    private static final class UniformAverage {
        private double[] sum;
        private int count;

        void add(float[] w) {
            if (sum == null) {
                sum = new double[w.length];
            }
            for (int i = 0; i < w.length; i++) {
                sum[i] += w[i];
            }
            count++;
        }

        int count() {
            return count;
        }

        float[] mean() {
            float[] m = new float[sum.length];
            for (int i = 0; i < m.length; i++) {
                m[i] = (float) (sum[i] / count);
            }
            return m;
        }
    }

    /** {@code e} with the records of {@code more} added. */
    private static CellResult.EpochRecord withEvaluations(CellResult.EpochRecord e, List<ModelEvaluation> more) {
        List<CellResult.VariantRecord> variants = new ArrayList<>(e.evaluations());
        variants.addAll(variants(more));
        return new CellResult.EpochRecord(e.epoch(), e.step(), e.lr(), e.trainLoss(), e.trainAccuracy(), variants);
    }

    private static List<CellResult.VariantRecord> variants(List<ModelEvaluation> evaluations) {
        List<CellResult.VariantRecord> variants = new ArrayList<>();
        for (ModelEvaluation e : evaluations) {
            var m = e.memorization();
            variants.add(new CellResult.VariantRecord(e.variant(), e.set(), e.metrics().accuracy(), e.metrics().nll(),
                    e.metrics().eceEqualMass(), e.metrics().eceEqualWidth(), m == null ? null : m.cleanAccuracy(),
                    m == null ? null : m.memorized(), m == null ? null : m.corrected()));
        }
        return variants;
    }

    private static CellResult.EpochRecord record(EpochReport r) {
        return new CellResult.EpochRecord(r.epoch(), r.step(), r.lr(), r.trainLoss(), r.trainAccuracy(),
                variants(r.evaluations()));
    }

    private static String summary(RunSpec spec, EpochReport r) {
        StringBuilder sb = new StringBuilder(String.format("%s epoch %d/%d: loss %.4f, train acc %.4f", spec.key(),
                r.epoch() + 1, spec.epochs(), r.trainLoss(), r.trainAccuracy()));
        for (ModelEvaluation e : r.evaluations()) {
            // every model with statistics recomputed (the live model's running statistics lag its weights)
            if (e.set().equals("test") && e.variant().endsWith("/recomputed")) {
                sb.append(String.format(", %s %.4f", e.variant(), e.metrics().accuracy()));
            }
        }
        return sb.toString();
    }

    /**
     * Transfer: for the live model and each EMA model (recomputed statistics), the penultimate features of the
     * held-out classes; a new linear head trained on them for 50 epochs (SGD, Nesterov, LR 0.01, no weight decay);
     * its test accuracy.
     */
    private Map<String, Double> probe(RunSpec spec, Trainer trainer, Network net, ImageDataset trainSet,
                                      ImageDataset testSet, int[] pretrained) {
        int[] held = IntStream.range(0, trainSet.classes()).filter(c -> IntStream.of(pretrained).noneMatch(p -> p == c))
                .toArray();
        DatasetView probeTrain = trainSet.view();
        if (spec.trainSamples() > 0) {
            probeTrain = probeTrain.sample(spec.trainSamples(), RunSpec.DATA_SEED + 1);
        }
        probeTrain = probeTrain.subsetRelabeled(held);
        DatasetView probeTest = testSet.view().subsetRelabeled(held);
        if (spec.testSamples() > 0) {
            probeTest = probeTest.first(Math.min(spec.testSamples(), probeTest.size()));
        }
        Map<String, Double> accuracy = new LinkedHashMap<>();
        DatasetView ptrain = probeTrain;
        DatasetView ptest = probeTest;
        accuracy.put("sgd/recomputed", trainer.withLiveRecomputed(() -> linearProbe(spec, net, ptrain, ptest,
                held.length)));
        for (int k = 0; k < spec.decays().size(); k++) {
            accuracy.put("ema" + k + "/recomputed",
                    trainer.withEmaModel(k, true, () -> linearProbe(spec, net, ptrain, ptest, held.length)));
        }
        return accuracy;
    }

    private double linearProbe(RunSpec spec, Network backbone, DatasetView train, DatasetView test, int classes) {
        float[] trainFeatures = features(backbone, train);
        float[] testFeatures = features(backbone, test);
        int d = trainFeatures.length / train.size();
        int[] trainLabels = train.labels();
        int epochs = spec.epochs() > 2 ? 50 : 2;
        int batch = spec.batch();
        try (Network head = Network.build(backend, new Linear(d, classes), new Shape(1, d, 1, 1), batch, spec.seed())) {
            Sgd sgd = new Sgd(0.9, 0, true);
            SplittableRandom random = new SplittableRandom(spec.seed());
            int n = train.size();
            float[] x = new float[batch * d];
            int[] order = IntStream.range(0, n).toArray();
            for (int epoch = 0; epoch < epochs; epoch++) {
                for (int i = n - 1; i > 0; i--) {
                    int j = random.nextInt(i + 1);
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
                for (int from = 0; from < n; from += batch) {
                    int m = Math.min(batch, n - from);
                    int[] y = new int[m];
                    for (int i = 0; i < m; i++) {
                        System.arraycopy(trainFeatures, order[from + i] * d, x, i * d, d);
                        y[i] = trainLabels[order[from + i]];
                    }
                    head.trainStep(x, y, sgd, 0.01);
                }
            }
            float[] probs = new float[test.size() * classes];
            for (int from = 0; from < test.size(); from += batch) {
                int m = Math.min(batch, test.size() - from);
                float[] p = head.predict(java.util.Arrays.copyOfRange(testFeatures, from * d, (from + m) * d), m);
                System.arraycopy(p, 0, probs, from * classes, p.length);
            }
            return Classification.accuracy(probs, classes, test.labels());
        }
    }

    private static float[] features(Network net, DatasetView view) {
        Batches batches = new Batches(view, BatchConfig.evaluation(net.maxBatch()));
        List<float[]> parts = new ArrayList<>();
        int total = 0;
        for (Batch b : batches.epoch(0)) {
            float[] f = net.features(b.x(), b.size());
            parts.add(f);
            total += f.length;
        }
        float[] all = new float[total];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }

    /** Writes the cell's files into {@code work} (a temporary directory of {@code cells}) and renames it into place. */
    private static void publish(Path cells, Path work, RunSpec spec, CellResult result, Predictions predictions)
            throws IOException {
        SafetensorsWriter.write(work.resolve("predictions.safetensors"), Map.of("format", "ema4j.predictions"),
                predictions.tensors());
        JSON.writeValue(work.resolve("result.json").toFile(), result);
        Path target = cells.resolve(spec.key());
        if (Files.exists(target)) {
            throw new IOException(target + " already exists; it was published by another run");
        }
        Files.move(work, target, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void delete(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /** The predictions kept while training: the last evaluated epoch and each variant's validation-selected ones. */
    private static final class Predictions {
        private final Map<String, float[]> kept = new LinkedHashMap<>();
        private final Map<String, int[]> labels = new LinkedHashMap<>();
        private final Map<String, double[]> best = new LinkedHashMap<>();  // variant → {bestAcc, acc, bestNll, nll}

        void add(EpochReport report) {
            Map<String, ModelEvaluation> val = new LinkedHashMap<>();
            for (ModelEvaluation e : report.evaluations()) {
                if (e.set().equals("train")) {
                    continue;
                }
                labels.putIfAbsent(e.set(), e.labels());
                kept.put(e.variant() + "|" + e.set() + "|final", e.probabilities());
                if (e.set().equals("val")) {
                    val.put(e.variant(), e);
                }
            }
            for (Map.Entry<String, ModelEvaluation> v : val.entrySet()) {
                String variant = v.getKey();
                double acc = v.getValue().metrics().accuracy();
                double nll = v.getValue().metrics().nll();
                double[] b = best.computeIfAbsent(variant, k -> new double[] {-1, -1, -1, Double.POSITIVE_INFINITY});
                for (ModelEvaluation e : report.evaluations()) {
                    if (!e.variant().equals(variant) || e.set().equals("train")) {
                        continue;
                    }
                    if (acc > b[1]) {
                        kept.put(variant + "|" + e.set() + "|best_acc", e.probabilities());
                    }
                    if (nll < b[3]) {
                        kept.put(variant + "|" + e.set() + "|best_nll", e.probabilities());
                    }
                }
                if (acc > b[1]) {
                    b[0] = report.epoch();
                    b[1] = acc;
                }
                if (nll < b[3]) {
                    b[2] = report.epoch();
                    b[3] = nll;
                }
            }
        }

        Map<String, CellResult.Selection> selections() {
            Map<String, CellResult.Selection> s = new LinkedHashMap<>();
            best.forEach((v, b) -> s.put(v, new CellResult.Selection((int) b[0], (int) b[2])));
            return s;
        }

        List<FloatTensor> tensors() {
            List<FloatTensor> tensors = new ArrayList<>();
            labels.forEach((set, l) -> {
                float[] f = new float[l.length];
                for (int i = 0; i < l.length; i++) {
                    f[i] = l[i];
                }
                tensors.add(tensor("labels|" + set, f, List.of((long) l.length)));
            });
            for (String criterion : CRITERIA) {
                kept.forEach((key, probs) -> {
                    if (key.endsWith("|" + criterion)) {
                        int n = labels.get(key.split("\\|")[1]).length;
                        tensors.add(tensor(key, probs, List.of((long) n, (long) (probs.length / n))));
                    }
                });
            }
            return tensors;
        }

        private static FloatTensor tensor(String name, float[] values, List<Long> shape) {
            return new FloatTensor(name, shape, (offset, dst, dstOffset, length) ->
                    System.arraycopy(values, (int) offset, dst, dstOffset, length));
        }
    }
}
