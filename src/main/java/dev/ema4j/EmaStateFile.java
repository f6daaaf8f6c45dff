package dev.ema4j;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.io.F32Tensor;
import dev.ema4j.io.SafetensorsException;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.io.TensorInfo;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The safetensors form of a {@link GpuEma}'s state: tensors {@code ema.<k>.<name>} (fp32, shape
 * {@code [length]}) and string metadata {@code format}, {@code format_version}, {@code schedules} (JSON),
 * {@code every}, {@code clock}, {@code steps}, {@code updates}, {@code skipped_updates}.
 */
final class EmaStateFile {

    static final String FORMAT = "ema4j.ema-state";
    static final String VERSION = "1";
    private static final int CHUNK = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Shadows (new buffers, owned by the caller) and counters read from a file. */
    record State(List<DeviceBuffer> shadows, long steps, long updates, long skippedUpdates) {
    }

    private EmaStateFile() {
    }

    static void save(Path path, Backend backend, EmaConfig config, ParamLayout layout, List<DeviceBuffer> shadows,
                     EmaStats stats) throws IOException {
        SafetensorsWriter.writeF32(path, metadata("", config, stats), tensors("", backend, layout, shadows));
    }

    /** The metadata entries of a state, keys prefixed with {@code prefix}. */
    static Map<String, String> metadata(String prefix, EmaConfig config, EmaStats stats) {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put(prefix + "format", FORMAT);
        metadata.put(prefix + "format_version", VERSION);
        metadata.put(prefix + "schedules", schedulesJson(config.schedules()));
        metadata.put(prefix + "every", String.valueOf(config.every()));
        metadata.put(prefix + "clock", config.clock().name());
        metadata.put(prefix + "steps", String.valueOf(stats.steps()));
        metadata.put(prefix + "updates", String.valueOf(stats.updates()));
        metadata.put(prefix + "skipped_updates", String.valueOf(stats.skippedUpdates()));
        return metadata;
    }

    /** The shadow tensors {@code <prefix>ema.<k>.<name>}, read from the backend when written. */
    static List<F32Tensor> tensors(String prefix, Backend backend, ParamLayout layout, List<DeviceBuffer> shadows) {
        List<F32Tensor> tensors = new ArrayList<>();
        for (int k = 0; k < shadows.size(); k++) {
            DeviceBuffer shadow = shadows.get(k);
            for (int i = 0; i < layout.size(); i++) {
                long base = layout.shadowOffset(i);
                tensors.add(new F32Tensor(prefix + tensorName(k, layout.names().get(i)), List.of(layout.length(i)),
                        (offset, dst, dstOffset, length) -> backend.read(shadow, base + offset, dst, dstOffset, length)));
            }
        }
        return tensors;
    }

    static State load(Path path, Backend backend, EmaConfig config, ParamLayout layout) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            State state = read(file, "", path, backend, config, layout);
            checkNoOtherTensors(file, "", path, config.shadowCount(), layout);
            return state;
        }
    }

    /**
     * Reads the state stored under {@code prefix} in an open file: validates everything, then copies the shadows
     * into new buffers (owned by the caller).
     */
    static State read(SafetensorsFile file, String prefix, Path path, Backend backend, EmaConfig config,
                      ParamLayout layout) throws IOException {
        Map<String, String> meta = file.metadata();
        String format = meta.get(prefix + "format");
        if (!FORMAT.equals(format) || !VERSION.equals(meta.get(prefix + "format_version"))) {
            throw new SafetensorsException(path + ": no ema4j EMA state under \"" + prefix + "\" (format " + format
                    + ", version " + meta.get(prefix + "format_version") + "; expected " + FORMAT + " " + VERSION
                    + ")");
        }
        List<DecaySchedule> schedules = parseSchedules(path, require(path, meta, prefix + "schedules"));
        int every = (int) parseCount(path, meta, prefix + "every", true);
        String clock = require(path, meta, prefix + "clock");
        if (!schedules.equals(config.schedules()) || every != config.every()
                || !clock.equals(config.clock().name())) {
            throw new IllegalArgumentException(path + " was saved by an EMA with schedules " + schedules
                    + ", every " + every + ", clock " + clock + "; this EMA has " + config.schedules()
                    + ", every " + config.every() + ", clock " + config.clock());
        }
        long steps = parseCount(path, meta, prefix + "steps", false);
        long updates = parseCount(path, meta, prefix + "updates", false);
        long skipped = parseCount(path, meta, prefix + "skipped_updates", false);
        List<TensorInfo> tensors = expectedTensors(path, file, prefix, config.shadowCount(), layout);
        return new State(readShadows(file, backend, layout, tensors, config.shadowCount()), steps, updates, skipped);
    }

    private static List<TensorInfo> expectedTensors(Path path, SafetensorsFile file, String prefix, int shadowCount,
                                                    ParamLayout layout) {
        List<TensorInfo> tensors = new ArrayList<>();
        for (int k = 0; k < shadowCount; k++) {
            for (int i = 0; i < layout.size(); i++) {
                String name = prefix + tensorName(k, layout.names().get(i));
                TensorInfo t = file.tensor(name).orElseThrow(() -> new IllegalArgumentException(
                        path + " has no tensor \"" + name + "\"; it was saved for another layout or shadow count"));
                if (t.dtype() != TensorDType.F32 || t.elementCount() != layout.length(i)) {
                    throw new IllegalArgumentException(path + ": tensor \"" + name + "\" is " + t.dtype() + " "
                            + t.shape() + ", this EMA tracks F32 [" + layout.length(i) + "]");
                }
                tensors.add(t);
            }
        }
        return tensors;
    }

    /** A file holding only an EMA state must hold nothing else. */
    private static void checkNoOtherTensors(SafetensorsFile file, String prefix, Path path, int shadowCount,
                                            ParamLayout layout) {
        Set<String> expected = new HashSet<>();
        for (int k = 0; k < shadowCount; k++) {
            for (int i = 0; i < layout.size(); i++) {
                expected.add(prefix + tensorName(k, layout.names().get(i)));
            }
        }
        for (TensorInfo t : file.tensors()) {
            if (!expected.contains(t.name())) {
                throw new IllegalArgumentException(path + " holds tensor \"" + t.name()
                        + "\", which this EMA does not track; it was saved for another layout or shadow count");
            }
        }
    }

    private static List<DeviceBuffer> readShadows(SafetensorsFile file, Backend backend, ParamLayout layout,
                                                  List<TensorInfo> tensors, int shadowCount) throws IOException {
        List<DeviceBuffer> shadows = new ArrayList<>();
        try {
            float[] chunk = new float[(int) Math.min(CHUNK, Math.max(1, layout.totalLength()))];
            for (int k = 0; k < shadowCount; k++) {
                DeviceBuffer shadow = backend.allocate(DType.F32, layout.shadowLength());
                shadows.add(shadow);
                for (int i = 0; i < layout.size(); i++) {
                    TensorInfo t = tensors.get(k * layout.size() + i);
                    for (long at = 0; at < layout.length(i); at += chunk.length) {
                        int n = (int) Math.min(chunk.length, layout.length(i) - at);
                        file.readF32(t, at, chunk, 0, n);
                        backend.write(chunk, 0, shadow, layout.shadowOffset(i) + at, n);
                    }
                }
            }
            return shadows;
        } catch (IOException | RuntimeException e) {
            shadows.forEach(DeviceBuffer::close);
            throw e;
        }
    }

    static String tensorName(int shadow, String tensor) {
        return "ema." + shadow + "." + tensor;
    }

    private static String require(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        String value = meta.get(key);
        if (value == null) {
            throw new SafetensorsException(path + ": metadata has no \"" + key + "\"");
        }
        return value;
    }

    private static long parseCount(Path path, Map<String, String> meta, String key, boolean positiveInt)
            throws SafetensorsException {
        String value = require(path, meta, key);
        try {
            long n = Long.parseLong(value);
            if (n >= 0 && (!positiveInt || (n >= 1 && n <= Integer.MAX_VALUE))) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SafetensorsException(path + ": metadata \"" + key + "\" is \"" + value
                + "\"; expected a non-negative integer");
    }

    static String schedulesJson(List<DecaySchedule> schedules) {
        ArrayNode array = JSON.createArrayNode();
        for (DecaySchedule s : schedules) {
            ObjectNode o = array.addObject();
            if (s instanceof DecaySchedule.Constant c) {
                o.put("type", "constant").put("decay", c.decay());
            } else if (s instanceof DecaySchedule.PaperWarmup w) {
                o.put("type", "paper_warmup").put("decay", w.decay());
            } else if (s instanceof DecaySchedule.Timm t) {
                o.put("type", "timm").put("decay", t.decay()).put("gamma", t.gamma()).put("power", t.power());
            } else if (s instanceof DecaySchedule.BiasCorrected b) {
                o.put("type", "bias_corrected").put("decay", b.decay());
            } else {
                o.put("type", "power_function").put("gamma", ((DecaySchedule.PowerFunction) s).gamma());
            }
        }
        return array.toString();
    }

    static List<DecaySchedule> parseSchedules(Path path, String json) throws SafetensorsException {
        try {
            JsonNode array = JSON.readTree(json);
            if (array == null || !array.isArray()) {
                throw new SafetensorsException(path + ": metadata \"schedules\" is not a JSON array: " + json);
            }
            List<DecaySchedule> schedules = new ArrayList<>();
            for (JsonNode o : array) {
                String type = o.path("type").asText();
                schedules.add(switch (type) {
                    case "constant" -> DecaySchedule.constant(number(path, o, "decay"));
                    case "paper_warmup" -> DecaySchedule.paperWarmup(number(path, o, "decay"));
                    case "timm" -> DecaySchedule.timm(number(path, o, "decay"), number(path, o, "gamma"),
                            number(path, o, "power"));
                    case "bias_corrected" -> DecaySchedule.biasCorrected(number(path, o, "decay"));
                    case "power_function" -> DecaySchedule.powerFunction(number(path, o, "gamma"));
                    default -> throw new SafetensorsException(
                            path + ": metadata \"schedules\" has unknown type \"" + type + "\"");
                });
            }
            return schedules;
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw new SafetensorsException(path + ": metadata \"schedules\" is invalid: " + e.getMessage(), e);
        }
    }

    private static double number(Path path, JsonNode o, String field) throws SafetensorsException {
        JsonNode n = o.get(field);
        if (n == null || !n.isNumber()) {
            throw new SafetensorsException(path + ": schedule " + o + " has no number \"" + field + "\"");
        }
        return n.doubleValue();
    }
}
