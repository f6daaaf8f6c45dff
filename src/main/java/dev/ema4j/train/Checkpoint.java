package dev.ema4j.train;

import dev.ema4j.GpuEma;
import dev.ema4j.backend.Backend;
import dev.ema4j.io.F32Tensor;
import dev.ema4j.io.SafetensorsException;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.io.TensorInfo;
import dev.ema4j.nn.ParameterStore;
import dev.ema4j.nn.Shape;
import dev.ema4j.nn.Tensor;
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
        List<F32Tensor> tensors = new ArrayList<>();
        Backend backend = store.backend();
        for (ParameterStore.Slot s : store.slots()) {
            if (s.statistic()) {
                tensors.add(tensor("stats." + s.name(), store.value(s), backend));
            } else {
                tensors.add(tensor("params." + s.name(), store.value(s), backend));
                tensors.add(tensor("momentum." + s.name(), store.momentum(s), backend));
            }
        }
        if (emaParams != null) {
            meta.putAll(emaParams.stateMetadata("ema_params."));
            meta.putAll(emaStats.stateMetadata("ema_stats."));
            tensors.addAll(emaParams.stateTensors("ema_params."));
            tensors.addAll(emaStats.stateTensors("ema_stats."));
        }
        SafetensorsWriter.writeF32(path, meta, tensors);
    }

    /**
     * Reads a checkpoint into the store and the EMAs: checks the format and that every tensor matches the model
     * before changing anything, then installs the EMA states (each validated in full first) and the weights.
     */
    static Position read(Path path, ParameterStore store, GpuEma emaParams, GpuEma emaStats) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            Map<String, String> meta = file.metadata();
            if (!FORMAT.equals(meta.get("format")) || !VERSION.equals(meta.get("format_version"))) {
                throw new SafetensorsException(path + ": not an ema4j checkpoint (format " + meta.get("format")
                        + ", version " + meta.get("format_version") + ")");
            }
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
            Position position = new Position((int) count(path, meta, "epoch"), (int) count(path, meta, "batch"),
                    count(path, meta, "step"), number(path, meta, "epoch_loss_sum"), count(path, meta, "epoch_correct"),
                    count(path, meta, "epoch_seen"));
            if (emaParams != null) {
                emaParams.loadState(file, "ema_params.");
                emaStats.loadState(file, "ema_stats.");
            }
            Backend backend = store.backend();
            values.forEach((s, v) -> write(backend, store.value(s), v));
            momentum.forEach((s, v) -> write(backend, store.momentum(s), v));
            return position;
        }
    }

    private static float[] readSlot(SafetensorsFile file, Path path, String name, ParameterStore.Slot slot)
            throws IOException {
        TensorInfo t = file.tensor(name).orElseThrow(() -> new IllegalArgumentException(path + " has no tensor \""
                + name + "\": it was saved for another model"));
        if (t.dtype() != TensorDType.F32 || !t.shape().equals(dims(slot.shape()))) {
            throw new IllegalArgumentException(path + ": tensor \"" + name + "\" is " + t.dtype() + " " + t.shape()
                    + ", the model's is F32 " + dims(slot.shape()) + ": it was saved for another model");
        }
        float[] v = new float[slot.shape().size()];
        file.readF32(t, 0, v, 0, v.length);
        return v;
    }

    private static void write(Backend backend, Tensor t, float[] v) {
        backend.write(v, 0, t.buffer(), t.offset(), v.length);
    }

    private static F32Tensor tensor(String name, Tensor t, Backend backend) {
        return new F32Tensor(name, dims(t.shape()), (offset, dst, dstOffset, length) ->
                backend.read(t.buffer(), t.offset() + offset, dst, dstOffset, length));
    }

    /** PyTorch's shape of a slot: (C) for per-channel vectors, (O, I) for linear weights, (K, C, R, S) for convs. */
    static List<Long> dims(Shape s) {
        if (s.h() == 1 && s.w() == 1) {
            return s.n() == 1 ? List.of((long) s.c()) : List.of((long) s.n(), (long) s.c());
        }
        return List.of((long) s.n(), (long) s.c(), (long) s.h(), (long) s.w());
    }

    private static long count(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        String v = meta.get(key);
        try {
            long n = Long.parseLong(String.valueOf(v));
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SafetensorsException(path + ": metadata \"" + key + "\" is " + v + "; expected a count");
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
