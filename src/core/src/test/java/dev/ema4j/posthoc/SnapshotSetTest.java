package dev.ema4j.posthoc;

import static dev.ema4j.ExceptionAssertions.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.Backends;
import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaClock;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsException;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Snapshot writing, the checks on snapshot files, and requests the snapshots cannot answer. */
class SnapshotSetTest {

    @TempDir
    Path dir;

    private static final Backend CPU = Backends.cpu();

    /** Snapshots of a short run every {@code every} steps. */
    private List<Path> run(Path into, int steps, SnapshotConfig config) throws IOException {
        float[] w = new float[40];
        Params params = Params.builder().add("w", w, 5, 8).build();
        try (GpuEma ema = GpuEma.create(CPU, params, EmaConfig.of(DecaySchedule.powerFunctionSigmaRel(0.05),
                DecaySchedule.powerFunctionSigmaRel(0.10), DecaySchedule.constant(0.9)))) {
            EmaSnapshotter snapshotter = new EmaSnapshotter(ema, config);
            assertEquals(List.of(0, 1), snapshotter.shadows());
            for (int s = 1; s <= steps; s++) {
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) Math.sin(i * 0.1 + s * 0.05);
                }
                ema.update(params);
                snapshotter.afterStep();
            }
        }
        try (Stream<Path> files = Files.list(into)) {
            return files.sorted().toList();
        }
    }

    @Test
    void snapshotsAreNamedShapedStateDictsWithTheirProfileTime() throws IOException {
        List<Path> files = run(dir, 30, SnapshotConfig.of(dir).withEvery(10));
        assertEquals(6, files.size());
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("snapshot-0000000020-ema1.safetensors"))) {
            assertEquals(List.of(5L, 8L), f.tensor("w").orElseThrow().shape());
            assertEquals("power_function", f.metadata().get("ema4j.schedule"));
            assertEquals("20", f.metadata().get("ema4j.posthoc.t"));
            assertEquals("OPTIMIZER_STEPS", f.metadata().get("ema4j.posthoc.clock"));
            assertEquals("pt", f.metadata().get("format"));
        }
        try (SnapshotSet set = SnapshotSet.open(dir)) {
            assertEquals(List.of(10.0, 20.0, 30.0), set.times());
            assertEquals(30.0, set.lastTime());
            Snapshot first = set.snapshots().get(0);
            assertEquals(10, first.steps());
            assertEquals(EmaClock.OPTIMIZER_STEPS, first.clock());
        }
    }

    @Test
    void beyondKeepThePeriodDoublesAndTheKeptTimesSpreadOverTheRun() throws IOException {
        // every 5, keep 3: 5 10 15, then 20 thins to 10 20 (period 10), 30, then 40 thins to 20 40 (period 20)
        List<Path> files = run(dir, 50, SnapshotConfig.of(dir).withEvery(5).withKeep(3));
        assertEquals(List.of("snapshot-0000000020-ema0.safetensors", "snapshot-0000000020-ema1.safetensors",
                "snapshot-0000000040-ema0.safetensors", "snapshot-0000000040-ema1.safetensors"),
                files.stream().map(f -> f.getFileName().toString()).toList());
    }

    @Test
    void anExplicitSnapshotAtTheEndIsTakenOncePerProfileTime() throws IOException {
        float[] w = new float[8];
        Params params = Params.of(w);
        try (GpuEma ema = GpuEma.create(CPU, params, EmaConfig.of(DecaySchedule.powerFunction(7)).withEvery(2))) {
            EmaSnapshotter s = new EmaSnapshotter(ema, SnapshotConfig.of(dir).withEvery(4));
            for (int step = 1; step <= 9; step++) {
                w[0] = step;
                ema.update(params);
                s.afterStep();
            }
            // step 9: the last update was after step 8, already snapshotted: nothing new to save
            assertFalse(s.snapshot());
            w[0] = 10;
            ema.update(params);
            assertTrue(s.snapshot(), "step 10 updated the EMA");
            assertFalse(s.snapshot());
            assertEquals(4, s.period());
        }
        try (SnapshotSet set = SnapshotSet.open(dir)) {
            assertEquals(List.of(4.0, 8.0, 10.0), set.times());
        }
    }

    @Test
    void halfPrecisionSnapshotsRebuildWithinTheirRounding() throws IOException {
        Path f32 = Files.createDirectory(dir.resolve("f32"));
        Path bf16 = Files.createDirectory(dir.resolve("bf16"));
        run(f32, 60, SnapshotConfig.of(f32).withEvery(6));
        run(bf16, 60, SnapshotConfig.of(bf16).withEvery(6).withDType(TensorDType.BF16));
        try (SnapshotSet exact = SnapshotSet.open(f32); SnapshotSet rounded = SnapshotSet.open(bf16)) {
            Combination c = exact.fit(Profile.sigmaRel(0.07, 60));
            Combination r = rounded.fit(Profile.sigmaRel(0.07, 60));
            assertEquals(c.weights(), r.weights(), "the same times and profiles give the same weights");
            float[] x = SnapshotRebuildTest.read(exact.rebuild(c, TensorDType.F32));
            float[] y = SnapshotRebuildTest.read(rounded.rebuild(r, TensorDType.F32));
            // values are at most 1 in magnitude; bf16 rounds to 2^-9 relative, amplified by at most Σ|w|
            double bound = r.amplification() * Math.pow(2, -9);
            double worst = SnapshotRebuildTest.maxDifference(x, y);
            assertTrue(worst <= bound, worst + " > " + bound);
            assertTrue(worst > 0, "bf16 rounding should show");
        }
    }

    @Test
    void requestsTheSnapshotsCannotAnswerAreRefusedOrStateTheirError() throws IOException {
        run(dir, 40, SnapshotConfig.of(dir).withEvery(10));
        try (SnapshotSet set = SnapshotSet.open(dir)) {
            assertMessage(IllegalArgumentException.class, () -> set.fit(Profile.sigmaRel(0.07, 41)),
                    "outside the snapshots' times [10, 40]");
            assertMessage(IllegalArgumentException.class, () -> set.fit(Profile.sigmaRel(0.07, 5)),
                    "outside the snapshots' times [10, 40]");
            // far narrower than the tracked profiles: the fit says how far off it is
            Combination narrow = set.fit(Profile.sigmaRel(0.005, 40));
            assertTrue(narrow.relativeError() > 0.3, narrow.toString());
            assertEquals(1, narrow.weightSum(), 1e-9);
            Combination tracked = set.fit(Profile.sigmaRel(0.10, 40));
            assertTrue(tracked.relativeError() < 1e-6, tracked.toString());
            assertEquals(1, tracked.amplification(), 1e-6);
        }
        try (SnapshotSet one = SnapshotSet.open(List.of(dir.resolve("snapshot-0000000040-ema0.safetensors")))) {
            assertMessage(IllegalArgumentException.class, () -> one.fit(Profile.sigmaRel(0.05, 40)),
                    "needs at least 2");
        }
    }

    @Test
    void aCombinationFromAnotherSetOrAClosedSetIsRefused() throws IOException {
        Path other = Files.createDirectory(dir.resolve("other"));
        Path mine = Files.createDirectory(dir.resolve("mine"));
        run(other, 20, SnapshotConfig.of(other).withEvery(10));
        run(mine, 30, SnapshotConfig.of(mine).withEvery(10));
        try (SnapshotSet a = SnapshotSet.open(other); SnapshotSet b = SnapshotSet.open(mine)) {
            Combination c = a.fit(Profile.sigmaRel(0.07, 20));
            assertMessage(IllegalArgumentException.class, () -> b.rebuild(c, TensorDType.F32), "other snapshots");
        }
        SnapshotSet closed = SnapshotSet.open(mine);
        closed.close();
        closed.close();
        assertThrows(IllegalStateException.class, () -> closed.fit(Profile.sigmaRel(0.07, 20)));
    }

    @Test
    void snapshotterArgumentsAreChecked() throws IOException {
        float[] w = new float[4];
        Params params = Params.of(w);
        try (GpuEma constant = GpuEma.create(CPU, params, 0.99);
             GpuEma every4 = GpuEma.create(CPU, params, EmaConfig.of(DecaySchedule.powerFunction(7)).withEvery(4))) {
            assertMessage(IllegalArgumentException.class, () -> new EmaSnapshotter(constant, SnapshotConfig.of(dir)),
                    "no power-function shadow");
            assertMessage(IllegalArgumentException.class,
                    () -> new EmaSnapshotter(every4, SnapshotConfig.of(dir).withEvery(6)), "multiple");
            EmaSnapshotter s = new EmaSnapshotter(every4, SnapshotConfig.of(dir).withEvery(8));
            assertMessage(IllegalStateException.class, s::snapshot, "not been updated");
        }
        assertMessage(IllegalArgumentException.class, () -> SnapshotConfig.of(dir).withKeep(1), "keep is 1");
        assertMessage(IllegalArgumentException.class, () -> SnapshotConfig.of(dir).withDType(TensorDType.I32),
                "dtype is I32");
        assertMessage(IllegalArgumentException.class, () -> SnapshotSet.open(dir), "holds no snapshot files");
    }

    // ---- untrusted files ----

    private Path snapshotFile(String name, Map<String, String> metadata, List<FloatTensor> tensors)
            throws IOException {
        Path p = dir.resolve(name);
        SafetensorsWriter.write(p, metadata, tensors);
        return p;
    }

    private static Map<String, String> meta(double gamma, String t) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("ema4j.schedule", "power_function");
        m.put("ema4j.gamma", Double.toString(gamma));
        m.put("ema4j.steps", "100");
        m.put("ema4j.posthoc.t", t);
        m.put("ema4j.posthoc.clock", "OPTIMIZER_STEPS");
        return m;
    }

    private static FloatTensor tensor(String name, long... shape) {
        return new FloatTensor(name, java.util.Arrays.stream(shape).boxed().toList(),
                (offset, dst, at, length) -> java.util.Arrays.fill(dst, at, at + length, 1f));
    }

    @Test
    void badSnapshotFilesAreRefusedAndNothingStaysOpen() throws IOException {
        Path good = snapshotFile("snapshot-0000000100-ema0.safetensors", meta(7, "100"), List.of(tensor("w", 3, 2)));
        Path noMeta = snapshotFile("a.safetensors", Map.of(), List.of(tensor("w", 3, 2)));
        Path wrongSchedule = snapshotFile("b.safetensors",
                Map.of("ema4j.schedule", "constant", "ema4j.decay", "0.9"), List.of(tensor("w", 3, 2)));
        Map<String, String> badNumber = meta(7, "soon");
        Path notANumber = snapshotFile("c.safetensors", badNumber, List.of(tensor("w", 3, 2)));
        Path negative = snapshotFile("d.safetensors", meta(7, "-5"), List.of(tensor("w", 3, 2)));
        Map<String, String> badClock = meta(7, "50");
        badClock.put("ema4j.posthoc.clock", "WALL");
        Path clock = snapshotFile("e.safetensors", badClock, List.of(tensor("w", 3, 2)));
        Path shape = snapshotFile("f.safetensors", meta(7, "50"), List.of(tensor("w", 2, 3)));
        Path name = snapshotFile("g.safetensors", meta(7, "50"), List.of(tensor("v", 3, 2)));
        Path extra = snapshotFile("h.safetensors", meta(7, "50"), List.of(tensor("w", 3, 2), tensor("v", 1)));
        Path duplicate = snapshotFile("i.safetensors", meta(7, "100"), List.of(tensor("w", 3, 2)));
        Path truncated = dir.resolve("j.safetensors");
        byte[] bytes = Files.readAllBytes(good);
        Files.write(truncated, java.util.Arrays.copyOf(bytes, bytes.length - 4));

        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(noMeta)), "ema4j.schedule");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(wrongSchedule)), "\"constant\"");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(notANumber)), "\"soon\"");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(negative)), "1 <= t");
        Path huge = snapshotFile("k.safetensors", meta(1e300, "50"), List.of(tensor("w", 3, 2)));
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(huge)), "gamma <= 1000000");
        Map<String, String> infinite = meta(7, "50");
        infinite.put("ema4j.steps", "Infinity");
        Path steps = snapshotFile("l.safetensors", infinite, List.of(tensor("w", 3, 2)));
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(steps)), "ema4j.steps Infinity");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(clock)), "\"WALL\"");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(good, shape)), "[2, 3]");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(good, name)), "\"v\"");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(good, extra)), "2 tensors");
        assertMessage(SafetensorsException.class, () -> SnapshotSet.open(List.of(good, duplicate)),
                "a second snapshot");
        assertThrows(SafetensorsException.class, () -> SnapshotSet.open(List.of(good, truncated)));
        try (SnapshotSet set = SnapshotSet.open(List.of(good))) {
            assertEquals(1, set.snapshots().size());
        }
    }
}
