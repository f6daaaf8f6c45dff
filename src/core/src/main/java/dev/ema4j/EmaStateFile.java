package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.Params;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsException;
import dev.ema4j.io.SafetensorsFile;
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
 * The safetensors form of a {@link GpuEma}'s state. Tensors: {@code ema.<k>.<slice>}, shadow {@code k} of each
 * named slice of the parameters ({@link Params.Slice}), fp32, in the slice's shape; padding between slices is not
 * stored (it loads as zeros). Metadata, all plain strings:
 * <table>
 * <caption>State metadata</caption>
 * <tr><th>key</th><th>value</th></tr>
 * <tr><td>{@code format}, {@code format_version}</td><td>{@code ema4j.ema-state}, {@code 2}</td></tr>
 * <tr><td>{@code shadows}</td><td>the number of shadows K</td></tr>
 * <tr><td>{@code shadow.<k>.schedule}</td><td>{@code constant}, {@code paper_warmup}, {@code timm},
 *     {@code bias_corrected} or {@code power_function} ({@link DecaySchedule})</td></tr>
 * <tr><td>{@code shadow.<k>.decay}</td><td>its target decay α (all but {@code power_function})</td></tr>
 * <tr><td>{@code shadow.<k>.gamma}, {@code shadow.<k>.power}, {@code shadow.<k>.min_decay},
 *     {@code shadow.<k>.update_after_step}</td><td>timm's γ, p, min_decay and update_after_step; the power
 *     function's γ (and its {@code shadow.<k>.sigma_rel}, informative)</td></tr>
 * <tr><td>{@code every}, {@code clock}</td><td>{@link EmaConfig#every()}, {@link EmaClock} name</td></tr>
 * <tr><td>{@code steps}, {@code updates}, {@code skipped_updates}</td><td>the counters ({@link EmaStats})</td></tr>
 * </table>
 * Numbers are written with {@link Double#toString} and {@link Long#toString}, so they read back exactly.
 */
final class EmaStateFile {

    static final String FORMAT = "ema4j.ema-state";
    static final String VERSION = "2";
    private static final int CHUNK = 1 << 20;

    /** A state that passed every check: the file's tensors for each shadow and slice, and the counters. */
    record Validated(List<TensorInfo> tensors, long steps, long updates, long skippedUpdates) {
    }

    private EmaStateFile() {
    }

    /** The metadata entries of a state, keys prefixed with {@code prefix}. */
    static Map<String, String> metadata(String prefix, EmaConfig config, EmaStats stats) {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put(prefix + "format", FORMAT);
        metadata.put(prefix + "format_version", VERSION);
        metadata.put(prefix + "shadows", String.valueOf(config.shadowCount()));
        for (int k = 0; k < config.shadowCount(); k++) {
            String shadow = prefix + "shadow." + k + ".";
            scheduleMetadata(config.schedules().get(k)).forEach((key, value) -> metadata.put(shadow + key, value));
        }
        metadata.put(prefix + "every", String.valueOf(config.every()));
        metadata.put(prefix + "clock", config.clock().name());
        metadata.put(prefix + "steps", String.valueOf(stats.steps()));
        metadata.put(prefix + "updates", String.valueOf(stats.updates()));
        metadata.put(prefix + "skipped_updates", String.valueOf(stats.skippedUpdates()));
        return metadata;
    }

    /** A schedule as plain keys ({@code schedule}, {@code decay}, {@code gamma}, {@code power}, {@code sigma_rel}). */
    static Map<String, String> scheduleMetadata(DecaySchedule schedule) {
        Map<String, String> m = new LinkedHashMap<>();
        if (schedule instanceof DecaySchedule.Constant c) {
            m.put("schedule", "constant");
            m.put("decay", Double.toString(c.decay()));
        } else if (schedule instanceof DecaySchedule.PaperWarmup w) {
            m.put("schedule", "paper_warmup");
            m.put("decay", Double.toString(w.decay()));
        } else if (schedule instanceof DecaySchedule.Timm t) {
            m.put("schedule", "timm");
            m.put("decay", Double.toString(t.decay()));
            m.put("gamma", Double.toString(t.gamma()));
            m.put("power", Double.toString(t.power()));
            m.put("min_decay", Double.toString(t.minDecay()));
            m.put("update_after_step", Long.toString(t.updateAfterStep()));
        } else if (schedule instanceof DecaySchedule.BiasCorrected b) {
            m.put("schedule", "bias_corrected");
            m.put("decay", Double.toString(b.decay()));
        } else {
            DecaySchedule.PowerFunction p = (DecaySchedule.PowerFunction) schedule;
            m.put("schedule", "power_function");
            m.put("gamma", Double.toString(p.gamma()));
            m.put("sigma_rel", Double.toString(p.sigmaRel()));
        }
        return m;
    }

    /** The shadow tensors {@code <prefix>ema.<k>.<slice>}, read from the backend when written. */
    static List<FloatTensor> tensors(String prefix, Backend backend, ParamLayout layout, List<DeviceBuffer> shadows) {
        List<FloatTensor> tensors = new ArrayList<>();
        for (int k = 0; k < shadows.size(); k++) {
            tensors.addAll(sliceTensors(prefix + "ema." + k + ".", TensorDType.F32, backend, layout, shadows.get(k)));
        }
        return tensors;
    }

    /** One tensor {@code <prefix><slice name>} per slice of {@code layout}, read from {@code shadow} when written. */
    static List<FloatTensor> sliceTensors(String prefix, TensorDType dtype, Backend backend, ParamLayout layout,
                                          DeviceBuffer shadow) {
        List<FloatTensor> tensors = new ArrayList<>();
        for (int i = 0; i < layout.size(); i++) {
            for (Params.Slice s : layout.slices().get(i)) {
                long base = layout.shadowOffset(i) + s.offset();
                tensors.add(new FloatTensor(prefix + s.name(), dtype, s.shape(),
                        (offset, dst, dstOffset, length) -> backend.read(shadow, base + offset, dst, dstOffset, length)));
            }
        }
        return tensors;
    }

    /**
     * Checks the state stored under {@code prefix} in an open file against this EMA's configuration and layout,
     * without reading any shadow: the format, the schedules, {@code every}, the clock, the counters, and every
     * tensor's presence, dtype and shape. With {@code whole}, the file must hold nothing but this state.
     */
    static Validated validate(SafetensorsFile file, String prefix, Path path, EmaConfig config, ParamLayout layout,
                              boolean whole) throws IOException {
        Map<String, String> meta = file.metadata();
        String format = meta.get(prefix + "format");
        String version = meta.get(prefix + "format_version");
        if (!FORMAT.equals(format) || !VERSION.equals(version)) {
            throw new SafetensorsException(path + ": no ema4j EMA state under \"" + prefix + "\" (format " + format
                    + ", version " + version + "; expected " + FORMAT + " " + VERSION + ")");
        }
        long shadowCount = parseCount(path, meta, prefix + "shadows", true);
        List<DecaySchedule> schedules = new ArrayList<>();
        for (int k = 0; k < shadowCount && k <= config.shadowCount(); k++) {
            schedules.add(parseSchedule(path, meta, prefix + "shadow." + k + "."));
        }
        int every = (int) parseCount(path, meta, prefix + "every", true);
        String clock = require(path, meta, prefix + "clock");
        if (!schedules.equals(config.schedules()) || every != config.every()
                || !clock.equals(config.clock().name())) {
            throw new IllegalArgumentException(path + " was saved by an EMA with " + shadowCount + " shadows, schedules "
                    + schedules + ", every " + every + ", clock " + clock + "; this EMA has " + config.schedules()
                    + ", every " + config.every() + ", clock " + config.clock());
        }
        long steps = parseCount(path, meta, prefix + "steps", false);
        long updates = parseCount(path, meta, prefix + "updates", false);
        long skipped = parseCount(path, meta, prefix + "skipped_updates", false);
        if (skipped > updates) {
            throw new SafetensorsException(path + ": counters are inconsistent: " + skipped
                    + " skipped_updates of " + updates + " updates");
        }
        List<TensorInfo> tensors = new ArrayList<>();
        Set<String> expected = new HashSet<>();
        for (int k = 0; k < config.shadowCount(); k++) {
            for (List<Params.Slice> slices : layout.slices()) {
                for (Params.Slice s : slices) {
                    String name = prefix + "ema." + k + "." + s.name();
                    TensorInfo t = file.tensor(name).orElseThrow(() -> new IllegalArgumentException(path
                            + " has no tensor \"" + name + "\"; it was saved for another layout or shadow count"));
                    if (t.dtype() != TensorDType.F32 || !t.shape().equals(s.shape())) {
                        throw new IllegalArgumentException(path + ": tensor \"" + name + "\" is " + t.dtype() + " "
                                + t.shape() + ", this EMA tracks F32 " + s.shape());
                    }
                    tensors.add(t);
                    expected.add(name);
                }
            }
        }
        if (whole) {
            for (TensorInfo t : file.tensors()) {
                if (!expected.contains(t.name())) {
                    throw new IllegalArgumentException(path + " holds tensor \"" + t.name()
                            + "\", which this EMA does not track; it was saved for another layout or shadow count");
                }
            }
        }
        return new Validated(tensors, steps, updates, skipped);
    }

    /**
     * Copies the shadows of a validated state into new buffers, owned by the caller; on failure, frees whatever it
     * allocated. Padding between slices is zero.
     */
    static List<DeviceBuffer> readShadows(SafetensorsFile file, Validated state, Backend backend, ParamLayout layout,
                                          int shadowCount) throws IOException {
        List<DeviceBuffer> shadows = new ArrayList<>();
        try {
            float[] chunk = new float[(int) Math.min(CHUNK, Math.max(1, layout.totalLength()))];
            int next = 0;
            for (int k = 0; k < shadowCount; k++) {
                DeviceBuffer shadow = backend.allocate(DType.F32, layout.shadowLength());
                shadows.add(shadow);
                for (int i = 0; i < layout.size(); i++) {
                    for (Params.Slice s : layout.slices().get(i)) {
                        TensorInfo t = state.tensors().get(next++);
                        long base = layout.shadowOffset(i) + s.offset();
                        for (long at = 0; at < s.length(); at += chunk.length) {
                            int n = (int) Math.min(chunk.length, s.length() - at);
                            file.readF32(t, at, chunk, 0, n);
                            backend.write(chunk, 0, shadow, base + at, n);
                        }
                    }
                }
            }
            return shadows;
        } catch (IOException | RuntimeException e) {
            shadows.forEach(DeviceBuffer::close);
            throw e;
        }
    }

    private static DecaySchedule parseSchedule(Path path, Map<String, String> meta, String prefix)
            throws SafetensorsException {
        String type = require(path, meta, prefix + "schedule");
        try {
            return switch (type) {
                case "constant" -> DecaySchedule.constant(number(path, meta, prefix + "decay"));
                case "paper_warmup" -> DecaySchedule.paperWarmup(number(path, meta, prefix + "decay"));
                case "timm" -> DecaySchedule.timm(number(path, meta, prefix + "decay"),
                        number(path, meta, prefix + "gamma"), number(path, meta, prefix + "power"),
                        number(path, meta, prefix + "min_decay"),
                        parseCount(path, meta, prefix + "update_after_step", false));
                case "bias_corrected" -> DecaySchedule.biasCorrected(number(path, meta, prefix + "decay"));
                case "power_function" -> DecaySchedule.powerFunction(number(path, meta, prefix + "gamma"));
                default -> throw new SafetensorsException(
                        path + ": metadata \"" + prefix + "schedule\" is \"" + type + "\", not a known schedule");
            };
        } catch (IllegalArgumentException e) {
            throw new SafetensorsException(path + ": metadata \"" + prefix + "*\" is invalid: " + e.getMessage(), e);
        }
    }

    private static String require(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        String value = meta.get(key);
        if (value == null) {
            throw new SafetensorsException(path + ": metadata has no \"" + key + "\"");
        }
        return value;
    }

    private static double number(Path path, Map<String, String> meta, String key) throws SafetensorsException {
        String value = require(path, meta, key);
        try {
            return Double.parseDouble(value);
        } catch (NumberFormatException e) {
            throw new SafetensorsException(path + ": metadata \"" + key + "\" is \"" + value + "\"; expected a number");
        }
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
        throw new SafetensorsException(path + ": metadata \"" + key + "\" is \"" + value + "\"; expected "
                + (positiveInt ? "a positive integer" : "a non-negative integer"));
    }
}
