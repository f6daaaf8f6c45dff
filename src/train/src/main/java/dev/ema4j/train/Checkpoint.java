package dev.ema4j.train;

import dev.ema4j.GpuEma;
import dev.ema4j.backend.Backend;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsException;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.io.TensorInfo;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.ops.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training checkpoint as one safetensors file, written atomically (temporary file, then rename): the
 * parameters {@code params.<name>} (PyTorch's shapes, so Python can load them), the optimizer's momentum
 * {@code momentum.<name>}, the BatchNorm statistics {@code stats.<name>}, the EMA states under {@code ema_params.}
 * and {@code ema_stats.}, and the position (epoch, batch, step, epoch sums) as metadata. Shuffling and
 * augmentation derive from the seed and the position, so nothing else is needed to continue bit for bit.
 */
final class Checkpoint {

    static final String FORMAT = "ema4j.checkpoint";
    static final String VERSION = "1";

    /** Where a run stands. */
    record Position(int epoch, int batch, long step, double epochLoss, long epochCorrect, long epochSeen) {
    }

    /** What a checkpoint must agree with to continue this run: its seed and its epochs of {@code batches} steps. */
    record Run(long seed, int epochs, int batches) {
    }

    private Checkpoint() {
    }

    static void write(Path path, ParameterStore store, GpuEma emaParams, GpuEma emaStats, Position position,
                      long seed) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("format_version", VERSION);
        meta.put("epoch", String.valueOf(position.epoch()));
        meta.put("batch", String.valueOf(position.batch()));
        meta.put("step", String.valueOf(position.step()));
        meta.put("epoch_loss_sum", Double.toString(position.epochLoss()));
        meta.put("epoch_correct", String.valueOf(position.epochCorrect()));
        meta.put("epoch_seen", String.valueOf(position.epochSeen()));
        meta.put("seed", String.valueOf(seed));
        List<FloatTensor> tensors = new ArrayList<>();
        Backend backend = store.backend();
        for (ParameterStore.Slot s : store.slots()) {
            if (s.statistic()) {
                tensors.add(tensor("stats." + s.name(), s, store.value(s), backend));
            } else {
                tensors.add(tensor("params." + s.name(), s, store.value(s), backend));
                tensors.add(tensor("momentum." + s.name(), s, store.momentum(s), backend));
            }
        }
        if (emaParams != null) {
            meta.putAll(emaParams.stateMetadata("ema_params."));
            meta.putAll(emaStats.stateMetadata("ema_stats."));
            tensors.addAll(emaParams.stateTensors("ema_params."));
            tensors.addAll(emaStats.stateTensors("ema_stats."));
        }
        SafetensorsWriter.write(path, meta, tensors);
    }

    /**
     * Reads a checkpoint into the store and the EMAs. Everything is read and checked first (the format, the seed and
     * position against {@code run}, every tensor against the model, both EMA states in full, into new buffers);
     * only then are the EMA states and the weights installed, so a bad file changes nothing.
     */
    static Position read(Path path, ParameterStore store, GpuEma emaParams, GpuEma emaStats, Run run)
            throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            Map<String, String> meta = file.metadata();
            if (!FORMAT.equals(meta.get("format")) || !VERSION.equals(meta.get("format_version"))) {
                throw new SafetensorsException(path + ": not an ema4j checkpoint (format " + meta.get("format")
                        + ", version " + meta.get("format_version") + ")");
            }
            Position position = position(path, meta, run);
            Map<ParameterStore.Slot, float[]> values = new LinkedHashMap<>();
            Map<ParameterStore.Slot, float[]> momentum = new LinkedHashMap<>();
            for (ParameterStore.Slot s : store.slots()) {
                if (s.statistic()) {
                    values.put(s, readSlot(file, path, "stats." + s.name(), s));
                } else {
                    values.put(s, readSlot(file, path, "params." + s.name(), s));
                    momentum.put(s, readSlot(file, path, "momentum." + s.name(), s));
                }
            }
            if (emaParams == null) {
                install(store, values, momentum);
                return position;
            }
            try (GpuEma.LoadedState params = emaParams.readState(file, "ema_params.");
                 GpuEma.LoadedState stats = emaStats.readState(file, "ema_stats.")) {
                install(store, values, momentum);
                params.install();
                stats.install();
            }
            return position;
        }
    }

    private static void install(ParameterStore store, Map<ParameterStore.Slot, float[]> values,
                                Map<ParameterStore.Slot, float[]> momentum) {
        Backend backend = store.backend();
        values.forEach((s, v) -> write(backend, store.value(s), v));
        momentum.forEach((s, v) -> write(backend, store.momentum(s), v));
    }

    /** The position saved in {@code meta}, checked against the run: same seed, a batch and step inside it. */
    private static Position position(Path path, Map<String, String> meta, Run run) throws SafetensorsException {
        long seed = signed(path, meta, "seed");
        if (seed != run.seed()) {
            throw new IllegalArgumentException(path + " was saved by a run with seed " + seed + ", this run has seed "
                    + run.seed() + " (shuffling and augmentation would differ)");
        }
        long epoch = count(path, meta, "epoch");
        long batch = count(path, meta, "batch");
        long step = count(path, meta, "step");
        if (epoch > run.epochs() || batch >= run.batches() || (epoch == run.epochs() && batch != 0)
                || step != epoch * run.batches() + batch) {
            throw new IllegalArgumentException(path + ": position epoch " + epoch + ", batch " + batch + ", step "
                    + step + " does not fit this run of " + run.epochs() + " epochs of " + run.batches()
                    + " batches (step must be epoch × batches + batch)");
        }
        return new Position((int) epoch, (int) batch, step, number(path, meta, "epoch_loss_sum"),
                count(path, meta, "epoch_correct"), count(path, meta, "epoch_seen"));
    }

    private static float[] readSlot(SafetensorsFile file, Path path, String name, ParameterStore.Slot slot)
            throws IOException {
        TensorInfo t = file.tensor(name).orElseThrow(() -> new IllegalArgumentException(path + " has no tensor \""
                + name + "\": it was saved for another model"));
        if (t.dtype() != TensorDType.F32 || !t.shape().equals(slot.dims())) {
            throw new IllegalArgumentException(path + ": tensor \"" + name + "\" is " + t.dtype() + " " + t.shape()
                    + ", the model's is F32 " + slot.dims() + ": it was saved for another model");
        }
        float[] v = new float[slot.shape().size()];
        file.readF32(t, 0, v, 0, v.length);
        return v;
    }

    private static void write(Backend backend, Tensor t, float[] v) {
        backend.write(v, 0, t.buffer(), t.offset(), v.length);
    }

    private static FloatTensor tensor(String name, ParameterStore.Slot slot, Tensor t, Backend backend) {
        return new FloatTensor(name, slot.dims(), (offset, dst, dstOffset, length) ->
                backend.read(t.buffer(), t.offset() + offset, dst, dstOffset, length));
    }

    private static long count(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        long n = signed(path, meta, key);
        if (n < 0) {
            throw new SafetensorsException(path + ": metadata \"" + key + "\" is " + n + "; expected a count");
        }
        return n;
    }

    private static long signed(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        String v = meta.get(key);
        try {
            return Long.parseLong(String.valueOf(v));
        } catch (NumberFormatException e) {
            throw new SafetensorsException(path + ": metadata \"" + key + "\" is " + v + "; expected an integer");
        }
    }

    private static double number(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        String v = meta.get(key);
        try {
            return Double.parseDouble(String.valueOf(v));
        } catch (NumberFormatException e) {
            throw new SafetensorsException(path + ": metadata \"" + key + "\" is " + v + "; expected a number");
        }
    }
}
