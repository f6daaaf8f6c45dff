package dev.ema4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaConfig;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.data.Augmentation;
import dev.ema4j.data.DatasetView;
import dev.ema4j.data.FashionMnist;
import dev.ema4j.data.ImageDataset;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorInfo;
import dev.ema4j.nn.BatchNorm2d;
import dev.ema4j.nn.Conv2d;
import dev.ema4j.nn.GlobalAvgPool;
import dev.ema4j.nn.Linear;
import dev.ema4j.nn.Models;
import dev.ema4j.nn.Network;
import dev.ema4j.nn.NonFiniteLossException;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.nn.Sequential;
import dev.ema4j.ops.Shape;
import dev.ema4j.optim.LrSchedule;
import dev.ema4j.optim.Sgd;
import dev.ema4j.posthoc.Profile;
import dev.ema4j.posthoc.SnapshotConfig;
import dev.ema4j.posthoc.SnapshotSet;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {

    private static final Shape MNIST = new Shape(1, 1, 28, 28);

    /** Two epochs of SmallCnn(16) on 10k Fashion-MNIST images reach 80% on the 10k test images, live and EMA. */
    @Test
    void trainsFashionMnist() throws IOException {
        assumeTrue(Files.isDirectory(FashionMnist.directory(null)), "Fashion-MNIST missing: "
                + FashionMnist.INSTALL_COMMAND);
        DatasetView train = FashionMnist.train(null).view().sample(10_000, 1);
        DatasetView test = FashionMnist.test(null).view();
        int steps = 2 * (train.size() / 32 + 1);
        TrainingConfig config = new TrainingConfig(2, 32, 3, Sgd.nesterov(5e-4),
                LrSchedule.warmupCosine(0.1, steps / 20, steps), EmaConfig.constant(0.9, 0.97), Augmentation.NONE,
                EvaluationConfig.defaults().withRecomputeBatches(50).withEveryEpochs(2));
        try (Backend backend = new CpuBackend();
             Network net = Network.build(backend, Models.smallCnn(16, 10), MNIST, 32, 7);
             Trainer trainer = new Trainer(net, train, Map.of("test", test), config)) {
            List<EpochReport> reports = trainer.run();
            assertEquals(2, reports.size());
            assertTrue(reports.get(0).evaluations().isEmpty(), "evaluated every 2 epochs only");
            List<ModelEvaluation> last = reports.get(1).evaluations();
            assertEquals(List.of("sgd", "sgd/recomputed", "ema0/averaged", "ema0/recomputed", "ema1/averaged",
                    "ema1/recomputed"), last.stream().map(ModelEvaluation::variant).toList(),
                    "the live model with running and recomputed statistics, two EMAs with averaged and recomputed");
            for (ModelEvaluation e : last) {
                assertTrue(e.metrics().accuracy() >= 0.80, e.variant() + " reached " + e.metrics().accuracy());
                assertEquals(10_000 * 10, e.probabilities().length);
            }
            assertTrue(reports.get(1).trainLoss() < reports.get(0).trainLoss());
        }
    }

    /**
     * The live model is also evaluated with BatchNorm statistics recomputed for its weights, and evaluating leaves
     * the weights, momentum, running statistics and EMAs as they were, bit for bit.
     */
    @Test
    void evaluatingTheLiveModelWithRecomputedStatisticsChangesNothing() {
        DatasetView train = synthetic(640, 4, 11);
        TrainingConfig config = new TrainingConfig(1, 32, 5, Sgd.nesterov(1e-3), LrSchedule.warmupCosine(0.05, 5, 20),
                EmaConfig.of(DecaySchedule.biasCorrected(0.9), DecaySchedule.biasCorrected(0.99)), Augmentation.NONE,
                EvaluationConfig.defaults().withRecomputeBatches(4));
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, train, Map.of("test", synthetic(128, 4, 12)), config)) {
            trainer.run();
            List<float[]> before = state(backend, trainer, net);
            List<ModelEvaluation> evaluations = trainer.evaluate();
            List<float[]> after = state(backend, trainer, net);
            for (int i = 0; i < before.size(); i++) {
                assertArrayEquals(before.get(i), after.get(i), "state " + i);
            }
            assertEquals(1, evaluations.stream().filter(e -> e.variant().equals("sgd/recomputed")).count());
        }
    }

    /**
     * evaluateWeights scores given weights with statistics recomputed for them and restores the network; the live
     * weights scored that way are the sgd/recomputed variant; copying an EMA into the live weights replaces them.
     */
    @Test
    void evaluatesGivenWeightsAndCopiesAnEmaBack() {
        TrainingConfig config = new TrainingConfig(1, 32, 5, Sgd.nesterov(1e-3), LrSchedule.warmupCosine(0.05, 5, 20),
                EmaConfig.of(DecaySchedule.biasCorrected(0.9), DecaySchedule.biasCorrected(0.99)), Augmentation.NONE,
                EvaluationConfig.defaults().withRecomputeBatches(4));
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, synthetic(640, 4, 11), Map.of("test", synthetic(128, 4, 12)), config)) {
            List<ModelEvaluation> live = trainer.run().get(0).evaluations();
            List<float[]> before = state(backend, trainer, net);
            List<ModelEvaluation> same = trainer.evaluateWeights("swa", trainer.liveWeights());
            assertEquals("swa/recomputed", same.get(0).variant());
            assertArrayEquals(live.get(1).probabilities(), same.get(0).probabilities(), "sgd/recomputed");
            List<float[]> after = state(backend, trainer, net);
            for (int i = 0; i < before.size(); i++) {
                assertArrayEquals(before.get(i), after.get(i), "state " + i);
            }
            assertThrows(IllegalArgumentException.class, () -> trainer.evaluateWeights("swa", new float[3]));

            float[] ema = new float[(int) net.parameters().values().length()];
            trainer.emaParams().copyTo(Params.of(ema), 0);
            trainer.copyEmaIntoLiveWeights(0);
            assertArrayEquals(ema, trainer.liveWeights());
        }
    }

    /**
     * A trainer snapshots its power-function EMAs as it trains; a snapshot read back through {@code weightsOf} is the
     * EMA's weights in the network's layout; the rebuilt tracked width is that EMA; bad arguments are refused.
     */
    @Test
    void snapshotsPowerEmasForAPostHocRebuild(@TempDir Path dir) throws IOException {
        TrainingConfig config = new TrainingConfig(1, 32, 5, Sgd.nesterov(1e-3), LrSchedule.warmupCosine(0.05, 5, 20),
                EmaConfig.of(DecaySchedule.biasCorrected(0.9), DecaySchedule.powerFunctionSigmaRel(0.05),
                        DecaySchedule.powerFunctionSigmaRel(0.10)), Augmentation.NONE,
                EvaluationConfig.defaults().withRecomputeBatches(2));
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, synthetic(640, 4, 11), Map.of("test", synthetic(128, 4, 12)), config)) {
            trainer.snapshotPowerEmas(SnapshotConfig.of(dir).withEvery(5));
            trainer.run();
            try (SnapshotSet set = SnapshotSet.open(dir)) {
                assertEquals(List.of(5.0, 10.0, 15.0, 20.0), set.times());
                assertEquals(8, set.snapshots().size(), "shadows 1 and 2 (the power functions) at four times");
                float[] expected = new float[(int) net.parameters().values().length()];
                trainer.emaParams().copyTo(Params.of(expected), 2);
                assertArrayEquals(expected, trainer.weightsOf(trainer.emaParams().stateDictTensors(2,
                        dev.ema4j.io.TensorDType.F32)));
                float[] rebuilt = trainer.weightsOf(set.rebuild(set.fit(Profile.sigmaRel(0.10, 20)),
                        dev.ema4j.io.TensorDType.F32));
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], rebuilt[i], 1e-6, "parameter " + i);
                }
            }
            assertThrows(IllegalArgumentException.class, () -> trainer.weightsOf(List.of()));
        }
        TrainingConfig classic = new TrainingConfig(1, 32, 5, Sgd.nesterov(1e-3), LrSchedule.constant(0.05),
                EmaConfig.constant(0.9), Augmentation.NONE, EvaluationConfig.defaults());
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, synthetic(64, 4, 11), Map.of(), classic)) {
            assertThrows(IllegalArgumentException.class, () -> trainer.snapshotPowerEmas(SnapshotConfig.of(dir)));
        }
    }

    /** A network without BatchNorm trains with EMAs and is evaluated, recompute passes included (nothing to do). */
    @Test
    void networkWithoutBatchNormKeepsAndEvaluatesEmas() {
        TrainingConfig config = new TrainingConfig(1, 32, 5, Sgd.nesterov(1e-3), LrSchedule.warmupCosine(0.05, 5, 20),
                EmaConfig.of(DecaySchedule.biasCorrected(0.9)), Augmentation.NONE,
                EvaluationConfig.defaults().withRecomputeBatches(2));
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnnNoBatchNorm(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, synthetic(640, 4, 11), Map.of("test", synthetic(128, 4, 12)), config)) {
            List<ModelEvaluation> e = trainer.run().get(0).evaluations();
            assertEquals(List.of("sgd", "sgd/recomputed", "ema0/averaged", "ema0/recomputed"),
                    e.stream().map(ModelEvaluation::variant).toList());
            // with no statistics, recomputing changes nothing: the same predictions
            assertArrayEquals(e.get(0).probabilities(), e.get(1).probabilities());
            assertArrayEquals(e.get(2).probabilities(), e.get(3).probabilities());
        }
    }

    /** Saving after any step and resuming in a fresh network gives bit-identical weights, EMAs and reports. */
    @Test
    void resumingIsBitIdentical(@TempDir Path dir) throws IOException {
        DatasetView train = synthetic(640, 4, 11);
        DatasetView test = synthetic(128, 4, 12);
        TrainingConfig config = new TrainingConfig(3, 32, 5, Sgd.nesterov(1e-3), LrSchedule.warmupCosine(0.05, 5, 60),
                EmaConfig.of(DecaySchedule.paperWarmup(0.99), DecaySchedule.biasCorrected(0.9)).withEvery(3),
                new Augmentation(2, true), EvaluationConfig.defaults().withRecomputeBatches(4));
        Path checkpoint = dir.resolve("run.safetensors");
        List<EpochReport> straight;
        List<float[]> expected;
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, train, Map.of("test", test), config)) {
            straight = trainer.run();
            expected = state(backend, trainer, net);
        }
        List<EpochReport> resumed = new ArrayList<>();
        try (Backend backend = new CpuBackend(2)) {
            try (Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
                 Trainer trainer = new Trainer(net, train, Map.of("test", test), config)) {
                resumed.addAll(trainer.runSteps(27));  // one epoch is 20 steps: stop inside the second
                trainer.save(checkpoint);
            }
            try (Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 999);
                 Trainer trainer = new Trainer(net, train, Map.of("test", test), config)) {
                trainer.load(checkpoint);
                assertEquals(27, trainer.step());
                resumed.addAll(trainer.run());
                List<float[]> actual = state(backend, trainer, net);
                for (int i = 0; i < expected.size(); i++) {
                    assertArrayEquals(expected.get(i), actual.get(i), "buffer " + i);
                }
            }
        }
        assertEquals(straight.size(), resumed.size());
        for (int e = 0; e < straight.size(); e++) {
            assertEquals(straight.get(e).trainLoss(), resumed.get(e).trainLoss(), "train loss of epoch " + e);
            for (int v = 0; v < straight.get(e).evaluations().size(); v++) {
                assertArrayEquals(straight.get(e).evaluations().get(v).probabilities(),
                        resumed.get(e).evaluations().get(v).probabilities(), "epoch " + e + " variant " + v);
            }
        }
    }

    /** Weights, momentum, statistics, and both EMAs' shadows, read back through the public API. */
    private static List<float[]> state(Backend backend, Trainer trainer, Network net) {
        ParameterStore p = net.parameters();
        List<float[]> out = new ArrayList<>();
        for (DeviceBuffer b : new DeviceBuffer[] {p.values(), p.momentum(), p.statistics()}) {
            float[] v = new float[(int) b.length()];
            backend.read(b, 0, v, 0, v.length);
            out.add(v);
        }
        for (int k = 0; k < 2; k++) {
            float[] w = new float[(int) p.values().length()];
            trainer.emaParams().copyTo(Params.of(w), k);
            out.add(w);
            float[] s = new float[(int) p.statistics().length()];
            trainer.emaStats().copyTo(Params.of(s), k);
            out.add(s);
        }
        return out;
    }

    /**
     * Recomputed BatchNorm statistics are the full-data mean and the equal-weight average of the batches' unbiased
     * variances; with one batch holding every sample, the full-data unbiased variance.
     */
    @Test
    void recomputedStatisticsAreFullDataStatistics() {
        DatasetView data = synthetic(96, 3, 21);
        for (int batch : new int[] {32, 96}) {
            TrainingConfig config = new TrainingConfig(1, batch, 1, Sgd.nesterov(0), LrSchedule.constant(0.1), null,
                    Augmentation.NONE, EvaluationConfig.defaults());
            try (Backend backend = new CpuBackend(2);
                 Network net = Network.build(backend, new Sequential(List.of(new BatchNorm2d(1), new GlobalAvgPool(),
                         new Linear(1, 3))), MNIST, batch, 1);
                 Trainer trainer = new Trainer(net, data, Map.of(), config)) {
                trainer.recomputeStatistics(0);
                float[] stats = new float[2];
                backend.read(net.parameters().statistics(), 0, stats, 0, 1);
                backend.read(net.parameters().statistics(), 4, stats, 1, 1);  // running_var follows after alignment
                // the recompute pass reads epoch 0 of the trainer's batches: the same batches here
                dev.ema4j.data.Batches batches = new dev.ema4j.data.Batches(data,
                        dev.ema4j.data.BatchConfig.training(batch, 1));
                double mean = 0;
                double averagedVar = 0;
                for (int b = 0; b < batches.batchCount(); b++) {
                    float[] x = batches.batch(0, b).x();
                    double bm = 0;
                    for (float v : x) {
                        bm += (double) v / x.length;
                    }
                    double ss = 0;
                    for (float v : x) {
                        ss += (v - bm) * (v - bm);
                    }
                    mean += bm / batches.batchCount();
                    averagedVar += ss / (x.length - 1) / batches.batchCount();
                }
                assertEquals(mean, stats[0], 1e-5, "running mean with batch " + batch);
                assertEquals(averagedVar, stats[1], 1e-4 * averagedVar, "running var with batch " + batch);
            }
        }
    }

    /** With 40% symmetric noise, the trainer measures memorization on the noisy training samples. */
    @Test
    void measuresMemorizationOfNoisyLabels() {
        DatasetView noisy = synthetic(512, 4, 51).symmetricNoise(0.4, 3);
        TrainingConfig config = new TrainingConfig(1, 32, 1, Sgd.nesterov(0), LrSchedule.constant(0.05),
                EmaConfig.constant(0.9), Augmentation.NONE,
                EvaluationConfig.defaults().withStats(false, true).withRecomputeBatches(2).withMemorizationSamples(256));
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, noisy, Map.of(), config)) {
            List<ModelEvaluation> evaluations = trainer.run().get(0).evaluations();
            assertEquals(List.of("sgd", "sgd/recomputed", "ema0/recomputed"),
                    evaluations.stream().map(ModelEvaluation::variant).toList());
            int noisySamples = 0;
            for (int i = 0; i < 256; i++) {
                noisySamples += noisy.isNoisy(i) ? 1 : 0;
            }
            for (ModelEvaluation e : evaluations) {
                Memorization m = e.memorization();
                assertEquals("train", e.set());
                assertEquals(noisySamples, m.noisySamples());
                assertTrue(m.memorized() >= 0 && m.memorized() + m.corrected() <= 1, m.toString());
                assertTrue(m.cleanAccuracy() >= 0 && m.cleanAccuracy() <= 1, m.toString());
            }
        }
    }

    @Test
    void nonFiniteLossStopsBeforeTheUpdate() {
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 8, 1)) {
            float[] before = values(backend, net);
            float[] x = new float[8 * 784];
            x[100] = Float.NaN;
            NonFiniteLossException e = assertThrows(NonFiniteLossException.class,
                    () -> net.trainStep(x, new int[8], Sgd.nesterov(0), 0.1));
            assertTrue(e.getMessage().contains("learning rate 0.1") && e.getMessage().contains("conv1.weight"),
                    e.getMessage());
            assertArrayEquals(before, values(backend, net), "parameters unchanged");
        }
        DatasetView train = synthetic(256, 4, 31);
        TrainingConfig exploding = new TrainingConfig(1, 32, 1, new Sgd(0.9, 0, false), LrSchedule.constant(1e30),
                EmaConfig.constant(0.9), Augmentation.NONE, EvaluationConfig.defaults());
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
             Trainer trainer = new Trainer(net, train, Map.of(), exploding)) {
            NonFiniteLossException e = assertThrows(NonFiniteLossException.class, trainer::run);
            assertTrue(e.getMessage().matches("epoch 0, batch \\d+, step \\d+: loss is .*"), e.getMessage());
        }
    }

    @Test
    void checkpointsOfAnotherModelAreRejectedAndChangeNothing(@TempDir Path dir) throws IOException {
        DatasetView train = synthetic(64, 4, 41);
        TrainingConfig config = new TrainingConfig(1, 32, 1, Sgd.nesterov(0), LrSchedule.constant(0.1),
                EmaConfig.constant(0.9), Augmentation.NONE, EvaluationConfig.defaults());
        Path small = dir.resolve("small.safetensors");
        try (Backend backend = new CpuBackend(2)) {
            try (Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
                 Trainer trainer = new Trainer(net, train, Map.of(), config)) {
                trainer.runSteps(1);
                trainer.save(small);
            }
            try (Network net = Network.build(backend, Models.smallCnn(8, 4), MNIST, 32, 1);
                 Trainer trainer = new Trainer(net, train, Map.of(), config)) {
                float[] before = values(backend, net);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainer.load(small));
                assertTrue(e.getMessage().contains("saved for another model"), e.getMessage());
                Path notCheckpoint = dir.resolve("ema.safetensors");
                trainer.emaParams().save(notCheckpoint);
                assertThrows(IOException.class, () -> trainer.load(notCheckpoint));
                assertArrayEquals(before, values(backend, net));
                assertEquals(0, trainer.step());
            }
        }
    }

    /**
     * A checkpoint whose second EMA state is invalid is refused as a whole: the weights, momentum and the first EMA
     * are not replaced before the second is found bad, and nothing stays allocated.
     */
    @Test
    void aCheckpointWithAnInvalidEmaPartChangesNothing(@TempDir Path dir) throws IOException {
        DatasetView train = synthetic(64, 4, 43);
        TrainingConfig config = new TrainingConfig(2, 32, 1, Sgd.nesterov(0), LrSchedule.constant(0.1),
                EmaConfig.constant(0.9, 0.99), Augmentation.NONE, EvaluationConfig.defaults());
        Path saved = dir.resolve("run.safetensors");
        Path broken = dir.resolve("broken.safetensors");
        try (Backend backend = new CpuBackend(2)) {
            try (Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1);
                 Trainer trainer = new Trainer(net, train, Map.of(), config)) {
                trainer.runSteps(3);
                trainer.save(saved);
            }
            rewrite(saved, broken, "ema_stats.shadow.0.decay", "0.5");
            try (Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 2);
                 Trainer trainer = new Trainer(net, train, Map.of(), config)) {
                trainer.runSteps(1);
                List<float[]> before = state(backend, trainer, net);
                long allocated = backend.allocatedBytes();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainer.load(broken));
                assertTrue(e.getMessage().contains("0.5"), e.getMessage());
                List<float[]> after = state(backend, trainer, net);
                for (int i = 0; i < before.size(); i++) {
                    assertArrayEquals(before.get(i), after.get(i), "buffer " + i + " unchanged");
                }
                assertEquals(1, trainer.step());
                assertEquals(allocated, backend.allocatedBytes(), "the EMA states read are freed");
                trainer.load(saved);
                assertEquals(3, trainer.step());
            }
        }
    }

    /** A checkpoint of another seed, or with a position outside this run, is refused with the numbers. */
    @Test
    void checkpointMetadataMustFitTheRun(@TempDir Path dir) throws IOException {
        DatasetView train = synthetic(320, 4, 44);
        TrainingConfig config = new TrainingConfig(2, 32, 1, Sgd.nesterov(0), LrSchedule.constant(0.1), null,
                Augmentation.NONE, EvaluationConfig.defaults());
        Path saved = dir.resolve("run.safetensors");
        try (Backend backend = new CpuBackend(2);
             Network net = Network.build(backend, Models.smallCnn(4, 4), MNIST, 32, 1)) {
            try (Trainer trainer = new Trainer(net, train, Map.of(), config)) {
                trainer.runSteps(13);  // 10 batches per epoch: epoch 1, batch 3
                trainer.save(saved);
            }
            TrainingConfig otherSeed = new TrainingConfig(2, 32, 7, Sgd.nesterov(0), LrSchedule.constant(0.1), null,
                    Augmentation.NONE, EvaluationConfig.defaults());
            try (Trainer trainer = new Trainer(net, train, Map.of(), otherSeed)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainer.load(saved));
                assertTrue(e.getMessage().contains("seed 1, this run has seed 7"), e.getMessage());
            }
            try (Trainer trainer = new Trainer(net, synthetic(160, 4, 44), Map.of(), config)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainer.load(saved));
                assertTrue(e.getMessage().contains("position epoch 1, batch 3, step 13 does not fit this run of 2 "
                        + "epochs of 5 batches"), e.getMessage());
                assertEquals(0, trainer.step());
            }
            rewrite(saved, dir.resolve("shorter.safetensors"), "batch", "12");
            try (Trainer trainer = new Trainer(net, train, Map.of(), config)) {
                assertThrows(IllegalArgumentException.class, () -> trainer.load(dir.resolve("shorter.safetensors")));
                trainer.load(saved);
                assertEquals(13, trainer.step());
            }
        }
    }

    /** Copies a safetensors file, replacing one metadata value. */
    private static void rewrite(Path from, Path to, String key, String value) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(from)) {
            Map<String, String> meta = new LinkedHashMap<>(f.metadata());
            assertTrue(meta.containsKey(key), key);
            meta.put(key, value);
            List<FloatTensor> tensors = new ArrayList<>();
            for (TensorInfo t : f.tensors()) {
                tensors.add(new FloatTensor(t.name(), t.shape(), (offset, dst, dstOffset, length) ->
                        f.readF32(t, offset, dst, dstOffset, length)));
            }
            SafetensorsWriter.write(to, meta, tensors);
        }
    }

    @Test
    void layerShapeMismatchesNameBothShapes() {
        try (Backend backend = new CpuBackend(1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Network.build(backend,
                    new Sequential(List.of(new Conv2d(1, 4, 3, 1, 1, false), new GlobalAvgPool(), new Linear(8, 2))),
                    MNIST, 4, 1));
            assertEquals("2: linear expects 1x8, input is 1x4", e.getMessage());
            IllegalArgumentException c = assertThrows(IllegalArgumentException.class, () -> Network.build(backend,
                    new Sequential(List.of(new Conv2d(3, 4, 3, 1, 1, false))), MNIST, 4, 1));
            assertTrue(c.getMessage().contains("expects 3 input channels, input is 1x1x28x28"), c.getMessage());
        }
    }

    @Test
    void labelsOutOfRangeAreRejectedBeforeTheUpdate() {
        try (Backend backend = new CpuBackend(1);
             Network net = Network.build(backend, Models.smallCnn(4, 10), MNIST, 2, 1)) {
            float[] before = values(backend, net);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> net.trainStep(new float[2 * 784], new int[] {3, 10}, Sgd.nesterov(0), 0.1));
            assertEquals("labels[1] is 10; must be in [0, 10)", e.getMessage());
            assertArrayEquals(before, values(backend, net));
        }
    }

    private static float[] values(Backend backend, Network net) {
        float[] v = new float[(int) net.parameters().values().length()];
        backend.read(net.parameters().values(), 0, v, 0, v.length);
        return v;
    }

    /** A random labelled set of 28×28 images whose class shifts the pixel intensity, so it can be learned. */
    static DatasetView synthetic(int n, int classes, long seed) {
        Random r = new Random(seed);
        byte[] pixels = new byte[n * 784];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = r.nextInt(classes);
            for (int j = 0; j < 784; j++) {
                pixels[i * 784 + j] = (byte) Math.min(255, r.nextInt(128) + 30 * labels[i] * ((j / 28) % 2));
            }
        }
        return ImageDataset.of(pixels, labels, 28, 28, classes).view();
    }
}
