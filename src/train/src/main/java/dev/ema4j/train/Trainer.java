package dev.ema4j.train;

import dev.ema4j.GpuEma;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.data.Batch;
import dev.ema4j.data.BatchConfig;
import dev.ema4j.data.Batches;
import dev.ema4j.data.DatasetView;
import dev.ema4j.metrics.Classification;
import dev.ema4j.metrics.Evaluation;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.NonFiniteLossException;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.nn.RunState;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.posthoc.EmaSnapshotter;
import dev.ema4j.posthoc.SnapshotConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Trains a {@link Network} with SGD and keeps EMAs of its weights with {@link GpuEma} (one shadow per decay,
 * updated after every {@code every}-th step), together with an EMA of its BatchNorm statistics (EMAN style, same
 * decays). After an epoch it evaluates the live model and each EMA model, the latter swapped into the network
 * with the averaged statistics and/or with statistics recomputed for its weights by a pass over training data.
 *
 * <pre>{@code
 * try (Trainer trainer = new Trainer(net, train, Map.of("test", test), config)) {
 *     trainer.onEpoch(report -> System.out.println(report.epoch() + " " + report.trainLoss()));
 *     List<EpochReport> reports = trainer.run();
 * }
 * }</pre>
 *
 * A run can be {@linkplain #save saved} at any step and {@linkplain #load resumed} bit for bit on the same
 * backend and thread count.
 */
public final class Trainer implements AutoCloseable {

    private final Network net;
    private final DatasetView train;
    private final Map<String, DatasetView> evalSets;
    private final TrainingConfig config;
    private final Batches batches;
    private final GpuEma emaParams;
    private final GpuEma emaStats;
    private final Params params;
    private final Params stats;
    private final List<TrainingCallback> callbacks = new ArrayList<>();
    private EmaSnapshotter snapshotter;
    private Checkpoint.Position position = new Checkpoint.Position(0, 0, 0, 0, 0, 0);
    private double lastLr;

    /**
     * @param evalSets data sets to evaluate on, by name (e.g. "validation", "test")
     * @throws IllegalArgumentException if the batch size exceeds the network's, or the data's classes differ
     */
    public Trainer(Network net, DatasetView train, Map<String, DatasetView> evalSets, TrainingConfig config) {
        this.net = Objects.requireNonNull(net, "net");
        this.train = Objects.requireNonNull(train, "train");
        this.evalSets = new LinkedHashMap<>(Objects.requireNonNull(evalSets, "evalSets"));
        this.config = Objects.requireNonNull(config, "config");
        if (config.batchSize() > net.maxBatch()) {
            throw new IllegalArgumentException("batchSize is " + config.batchSize() + "; the network was built for "
                    + net.maxBatch());
        }
        for (Map.Entry<String, DatasetView> e : this.evalSets.entrySet()) {
            if (e.getValue().classes() != net.classes()) {
                throw new IllegalArgumentException("evaluation set " + e.getKey() + " has " + e.getValue().classes()
                        + " classes, the network " + net.classes());
            }
        }
        if (train.classes() != net.classes()) {
            throw new IllegalArgumentException("training set has " + train.classes() + " classes, the network "
                    + net.classes());
        }
        this.batches = new Batches(train, BatchConfig.training(config.batchSize(), config.seed())
                .withAugmentation(config.augmentation()));
        this.params = net.parameters().parameters();
        this.stats = net.parameters().statisticsParams();
        if (config.ema() == null) {
            emaParams = null;
            emaStats = null;
        } else {
            emaParams = GpuEma.create(net.backend(), params, config.ema());
            try {
                emaStats = GpuEma.create(net.backend(), stats, config.ema());
            } catch (RuntimeException e) {
                emaParams.close();
                throw e;
            }
        }
    }

    /** Adds a callback for the end of every epoch. */
    public Trainer onEpoch(TrainingCallback callback) {
        callbacks.add(Objects.requireNonNull(callback, "callback"));
        return this;
    }

    /**
     * Saves the EMA's power-function shadows ({@link dev.ema4j.DecaySchedule#powerFunction}) every
     * {@link SnapshotConfig#every()} optimizer steps from now on, and at the end of the last epoch, for a post-hoc
     * rebuild of other averages ({@link dev.ema4j.posthoc.SnapshotSet}). A failed write stops training with an
     * {@link UncheckedIOException}.
     *
     * @throws IllegalStateException if this trainer keeps no EMA
     * @throws IllegalArgumentException if no EMA has a power-function schedule, or the period is not a multiple of
     *     the EMA's
     * @throws IOException if the snapshot directory cannot be created
     */
    public Trainer snapshotPowerEmas(SnapshotConfig snapshots) throws IOException {
        if (emaParams == null) {
            throw new IllegalStateException("this trainer keeps no EMA; snapshots need power-function EMAs");
        }
        snapshotter = new EmaSnapshotter(emaParams, Objects.requireNonNull(snapshots, "snapshots"));
        return this;
    }

    /** Trains from the current position to the end of the last epoch; returns the reports of the epochs it ended. */
    public List<EpochReport> run() {
        return runSteps(Long.MAX_VALUE);
    }

    /**
     * Trains at most {@code steps} optimizer steps from the current position (stopping early at the end of the
     * last epoch); returns the reports of the epochs it ended.
     *
     * @throws NonFiniteLossException when a loss is NaN or infinite; the run stops before that step's update
     */
    public List<EpochReport> runSteps(long steps) {
        List<EpochReport> reports = new ArrayList<>();
        for (long done = 0; done < steps && position.epoch() < config.epochs(); done++) {
            trainStep();
            if (position.batch() == batches.batchCount()) {
                reports.add(endEpoch());
                if (snapshotter != null && position.epoch() == config.epochs()) {
                    snapshot(snapshotter::snapshot);  // the end of training, whatever the period
                }
            }
        }
        return reports;
    }

    private void trainStep() {
        Checkpoint.Position p = position;
        Batch b = batches.batch(p.epoch(), p.batch());
        lastLr = config.lr().at(p.step());
        double loss;
        try {
            loss = emaParams == null ? net.trainStep(b.x(), b.y(), config.sgd(), lastLr) : trainStepWithEma(b);
        } catch (NonFiniteLossException e) {
            throw new NonFiniteLossException("epoch " + p.epoch() + ", batch " + p.batch() + ", step " + p.step()
                    + ": " + e.getMessage());
        }
        int[] predictions = Classification.top1(net.lastProbabilities(), net.classes());
        long correct = 0;
        for (int i = 0; i < predictions.length; i++) {
            correct += predictions[i] == b.y()[i] ? 1 : 0;
        }
        position = new Checkpoint.Position(p.epoch(), p.batch() + 1, p.step() + 1, p.epochLoss() + loss * b.size(),
                p.epochCorrect() + correct, p.epochSeen() + b.size());
    }

    /** Backward, then the SGD step fused with the EMA update of the weights; then the EMA of the statistics. */
    private double trainStepWithEma(Batch b) {
        double loss = net.gradients(b.x(), b.y(), lastLr);
        ParameterStore store = net.parameters();
        emaParams.stepAndUpdate(store.parameters(), net.sgdStep(config.sgd(), lastLr));
        emaStats.update(stats);
        if (snapshotter != null) {
            snapshot(snapshotter::afterStep);
        }
        return loss;
    }

    /** A snapshot action that may fail with an {@link IOException}. */
    private interface SnapshotAction {
        boolean run() throws IOException;
    }

    private void snapshot(SnapshotAction action) {
        try {
            action.run();
        } catch (IOException e) {
            throw new UncheckedIOException("snapshot after step " + emaParams.steps() + " failed", e);
        }
    }

    private EpochReport endEpoch() {
        Checkpoint.Position p = position;
        boolean evaluate = (p.epoch() + 1) % config.evaluation().everyEpochs() == 0 || p.epoch() + 1 == config.epochs();
        EpochReport report = new EpochReport(p.epoch(), p.step(), lastLr, p.epochLoss() / p.epochSeen(),
                (double) p.epochCorrect() / p.epochSeen(), evaluate ? evaluate() : List.of());
        position = new Checkpoint.Position(p.epoch() + 1, 0, p.step(), 0, 0, 0);
        callbacks.forEach(c -> c.onEpoch(report));
        return report;
    }

    /**
     * Evaluates the live model (with its running BatchNorm statistics, and with statistics recomputed for its weights
     * when recomputed statistics are configured) and every EMA model (as configured) on every evaluation set; the
     * network is left as it was, live weights and statistics included.
     */
    public List<ModelEvaluation> evaluate() {
        List<ModelEvaluation> out = new ArrayList<>(variant("sgd", -1, "live"));
        EvaluationConfig ec = config.evaluation();
        if (ec.recomputedStats()) {
            out.addAll(withLiveRecomputed(() -> variant("sgd", -1, "recomputed")));
        }
        if (emaParams == null) {
            return out;
        }
        for (int k = 0; k < config.ema().shadowCount(); k++) {
            int shadow = k;
            if (ec.averagedStats()) {
                out.addAll(withEmaModel(k, false, () -> variant("ema", shadow, "averaged")));
            }
            if (ec.recomputedStats()) {
                out.addAll(withEmaModel(k, true, () -> variant("ema", shadow, "recomputed")));
            }
        }
        return out;
    }

    /**
     * Runs {@code action} with EMA model {@code shadow} in the network: its weights, and BatchNorm statistics either
     * recomputed for them ({@link #recomputeStatistics}, over the configured number of batches) or the EMA of the
     * statistics; then puts the live weights and statistics back.
     */
    public <T> T withEmaModel(int shadow, boolean recomputeStats, java.util.function.Supplier<T> action) {
        if (emaParams == null) {
            throw new IllegalStateException("this trainer keeps no EMA");
        }
        if (!recomputeStats) {
            try (SwapScope w = emaParams.swapInto(params, shadow); SwapScope s = emaStats.swapInto(stats, shadow)) {
                return action.get();
            }
        }
        float[] live = readStatistics();
        try (SwapScope w = emaParams.swapInto(params, shadow)) {
            recomputeStatistics(config.evaluation().recomputeBatches());
            return action.get();
        } finally {
            net.backend().write(live, 0, net.parameters().statistics(), 0, live.length);
        }
    }

    /**
     * Replaces the live weights by EMA shadow {@code shadow} (the paper's "copy the EMA back into training"
     * ablation); momentum, BatchNorm statistics and the EMAs are unchanged.
     */
    public void copyEmaIntoLiveWeights(int shadow) {
        if (emaParams == null) {
            throw new IllegalStateException("this trainer keeps no EMA");
        }
        emaParams.copyTo(params, shadow);
    }

    /**
     * Evaluates {@code weights} (the network's parameter layout, e.g. an average of live weights kept by the caller)
     * with BatchNorm statistics recomputed for them, on every evaluation set, as variant {@code model + "/recomputed"};
     * the network is left as it was.
     *
     * @throws IllegalArgumentException if {@code weights} is not as long as the network's parameters
     */
    public List<ModelEvaluation> evaluateWeights(String model, float[] weights) {
        Objects.requireNonNull(model, "model");
        DeviceBuffer values = net.parameters().values();
        if (weights.length != values.length()) {
            throw new IllegalArgumentException("weights has " + weights.length + " floats, the network's parameters "
                    + values.length());
        }
        float[] live = new float[weights.length];
        net.backend().read(values, 0, live, 0, live.length);
        try {
            net.backend().write(weights, 0, values, 0, weights.length);
            return withLiveRecomputed(() -> variant(model, -1, "recomputed"));
        } finally {
            net.backend().write(live, 0, values, 0, live.length);
        }
    }

    /**
     * The weights of a state dict (one tensor per trained parameter, under its name and shape, as
     * {@link GpuEma#exportStateDict} and {@link dev.ema4j.posthoc.SnapshotSet#rebuild} give them) in the network's
     * parameter layout, for {@link #evaluateWeights}; other tensors are ignored.
     *
     * @throws IllegalArgumentException if a parameter is missing or has another shape
     * @throws IOException if a tensor's values cannot be read
     */
    public float[] weightsOf(List<FloatTensor> stateDict) throws IOException {
        Map<String, FloatTensor> byName = new LinkedHashMap<>();
        for (FloatTensor t : stateDict) {
            byName.put(t.name(), t);
        }
        float[] w = new float[Math.toIntExact(net.parameters().values().length())];
        for (ParameterStore.Slot slot : net.parameters().slots()) {
            if (slot.statistic()) {
                continue;
            }
            FloatTensor t = byName.get(slot.name());
            if (t == null) {
                throw new IllegalArgumentException("the state dict has no tensor \"" + slot.name() + "\"");
            }
            if (!t.shape().equals(slot.dims())) {
                throw new IllegalArgumentException("tensor \"" + slot.name() + "\" has shape " + t.shape()
                        + ", the network's parameter " + slot.dims());
            }
            t.source().read(0, w, Math.toIntExact(slot.offset()), Math.toIntExact(t.elementCount()));
        }
        return w;
    }

    /** The live weights, in the network's parameter layout. */
    public float[] liveWeights() {
        DeviceBuffer values = net.parameters().values();
        float[] w = new float[Math.toIntExact(values.length())];
        net.backend().read(values, 0, w, 0, w.length);
        return w;
    }

    /**
     * Runs {@code action} with the live weights and BatchNorm statistics recomputed for them (the running statistics
     * lag the weights when the learning rate is large); then puts the running statistics back.
     */
    public <T> T withLiveRecomputed(java.util.function.Supplier<T> action) {
        float[] live = readStatistics();
        try {
            recomputeStatistics(config.evaluation().recomputeBatches());
            return action.get();
        } finally {
            net.backend().write(live, 0, net.parameters().statistics(), 0, live.length);
        }
    }

    /**
     * Makes the running BatchNorm statistics the equal-weight average of the batch statistics of the current
     * weights over {@code batchLimit} training batches (0: all), without changing any weight.
     */
    public void recomputeStatistics(int batchLimit) {
        int count = batchLimit == 0 ? batches.batchCount() : Math.min(batchLimit, batches.batchCount());
        net.state().startRecompute();
        try {
            for (int i = 0; i < count; i++) {
                Batch b = batches.batch(0, i);
                net.forward(b.x(), b.size());
            }
        } finally {
            net.state().setMode(RunState.Mode.TRAIN);
        }
    }

    private float[] readStatistics() {
        float[] v = new float[(int) net.parameters().statistics().length()];
        net.backend().read(net.parameters().statistics(), 0, v, 0, v.length);
        return v;
    }

    private List<ModelEvaluation> variant(String model, int shadow, String statsKind) {
        List<ModelEvaluation> out = new ArrayList<>();
        EvaluationConfig ec = config.evaluation();
        for (Map.Entry<String, DatasetView> e : evalSets.entrySet()) {
            int[] labels = e.getValue().labels();
            float[] probs = predict(e.getValue());
            Evaluation metrics = Evaluation.of(probs, net.classes(), labels, ec.equalMassBins(), ec.equalWidthBins());
            out.add(new ModelEvaluation(model, shadow, statsKind, e.getKey(), metrics, probs, labels, null));
        }
        if (ec.memorizationSamples() > 0) {
            DatasetView subset = train.first(Math.min(ec.memorizationSamples(), train.size()));
            float[] probs = predict(subset);
            int[] labels = subset.labels();
            Evaluation metrics = Evaluation.of(probs, net.classes(), labels, ec.equalMassBins(), ec.equalWidthBins());
            out.add(new ModelEvaluation(model, shadow, statsKind, "train", metrics, probs, labels,
                    memorization(subset, Classification.top1(probs, net.classes()))));
        }
        return out;
    }

    private static Memorization memorization(DatasetView view, int[] predictions) {
        int clean = 0;
        int cleanRight = 0;
        int noisy = 0;
        int memorized = 0;
        int corrected = 0;
        for (int i = 0; i < predictions.length; i++) {
            if (view.isNoisy(i)) {
                noisy++;
                memorized += predictions[i] == view.label(i) ? 1 : 0;
                corrected += predictions[i] == view.cleanLabel(i) ? 1 : 0;
            } else {
                clean++;
                cleanRight += predictions[i] == view.label(i) ? 1 : 0;
            }
        }
        return new Memorization(clean == 0 ? Double.NaN : (double) cleanRight / clean,
                noisy == 0 ? Double.NaN : (double) memorized / noisy, noisy == 0 ? Double.NaN : (double) corrected / noisy,
                noisy);
    }

    /** Class probabilities of every sample of {@code view}, in view order, in eval mode. */
    public float[] predict(DatasetView view) {
        Batches eval = new Batches(view, BatchConfig.evaluation(net.maxBatch()));
        float[] out = new float[view.size() * net.classes()];
        int at = 0;
        for (Batch b : eval.epoch(0)) {
            float[] p = net.predict(b.x(), b.size());
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        net.state().setMode(RunState.Mode.TRAIN);
        return out;
    }

    /** Saves the whole run (weights, momentum, statistics, EMAs, position) atomically. */
    public void save(Path checkpoint) throws IOException {
        Checkpoint.write(Objects.requireNonNull(checkpoint, "checkpoint"), net.parameters(), emaParams, emaStats,
                position, config.seed());
    }

    /**
     * Resumes from a checkpoint of the same model and configuration.
     *
     * @throws IOException if the file is unreadable or not an ema4j checkpoint
     * @throws IllegalArgumentException if it was saved for another model, EMA configuration, seed, or a position
     *     outside this run; nothing changes then
     */
    public void load(Path checkpoint) throws IOException {
        position = Checkpoint.read(Objects.requireNonNull(checkpoint, "checkpoint"), net.parameters(), emaParams,
                emaStats, new Checkpoint.Run(config.seed(), config.epochs(), batches.batchCount()));
    }

    /** Optimizer steps done. */
    public long step() {
        return position.step();
    }

    /** The current epoch (0-based; equals the epoch count when training is done). */
    public int epoch() {
        return position.epoch();
    }

    /** The EMA of the weights, or null. */
    public GpuEma emaParams() {
        return emaParams;
    }

    /** The EMA of the BatchNorm statistics, or null. */
    public GpuEma emaStats() {
        return emaStats;
    }

    /** Batches per epoch. */
    public int batchesPerEpoch() {
        return batches.batchCount();
    }

    /** Frees the EMAs (the network belongs to the caller). */
    @Override
    public void close() {
        if (emaParams != null) {
            emaParams.close();
            emaStats.close();
        }
    }
}
