package dev.ema4j.posthoc;

import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaClock;
import dev.ema4j.EmaConfig;
import dev.ema4j.EmaStats;
import dev.ema4j.GpuEma;
import dev.ema4j.io.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Saves the power-function EMAs of a {@link GpuEma} ({@link DecaySchedule#powerFunction} shadows) every
 * {@link SnapshotConfig#every()} optimizer steps, for {@link SnapshotSet} to rebuild other averages from after
 * training (post-hoc EMA, Karras et al. 2024).
 *
 * <pre>{@code
 * EmaConfig config = EmaConfig.of(DecaySchedule.powerFunctionSigmaRel(0.05), DecaySchedule.powerFunctionSigmaRel(0.10));
 * try (GpuEma ema = GpuEma.create(backend, params, config)) {
 *     EmaSnapshotter snapshots = new EmaSnapshotter(ema, SnapshotConfig.of(Path.of("run/snapshots")));
 *     for (int step = 0; step < steps; step++) {
 *         optimizerStep(weights);
 *         ema.update(params);
 *         snapshots.afterStep();
 *     }
 * }
 * }</pre>
 *
 * Each snapshot is one file per power-function shadow, {@code snapshot-<steps>-ema<k>.safetensors}: the shadow as a
 * plain state dict ({@link GpuEma#exportStateDict}: every parameter under its name and shape, in the configured
 * dtype), its metadata plus {@code ema4j.posthoc.t} (the profile's time, {@link Snapshot#t()}),
 * {@code ema4j.posthoc.clock} and {@code ema4j.skipped_updates}. Files are written atomically (a crash leaves the
 * previous snapshots intact). At most {@link SnapshotConfig#keep()} snapshot times stay on disk: when a new one would
 * exceed that, the period doubles and the times that are not multiples of it are deleted (the newest stays), so the
 * kept times stay evenly spread over the whole run, between {@code keep/2} and {@code keep} of them. A snapshotter
 * made for a directory that holds snapshots (a resumed run) goes on from them.
 * Updates with explicit decays ({@link GpuEma#update(dev.ema4j.backend.Params, double...)}) leave the power-function
 * profile, so snapshots of such an EMA do not describe its weights.
 */
public final class EmaSnapshotter {

    static final String FILE_PREFIX = "snapshot-";
    static final Pattern FILE_NAME = Pattern.compile("snapshot-(\\d{10,})-ema(\\d+)\\.safetensors");
    static final String T_KEY = "ema4j.posthoc.t";
    static final String CLOCK_KEY = "ema4j.posthoc.clock";

    private final GpuEma ema;
    private final SnapshotConfig config;
    private final List<Integer> shadows = new ArrayList<>();
    private long period;
    private long lastTime = -1;

    /**
     * @throws IllegalArgumentException if {@code ema} has no power-function shadow, or the snapshot period is not a
     *     multiple of its update period
     * @throws IOException if the directory cannot be created
     */
    public EmaSnapshotter(GpuEma ema, SnapshotConfig config) throws IOException {
        this.ema = Objects.requireNonNull(ema, "ema");
        this.config = Objects.requireNonNull(config, "config");
        EmaConfig emaConfig = ema.config();
        for (int k = 0; k < emaConfig.shadowCount(); k++) {
            if (emaConfig.schedules().get(k) instanceof DecaySchedule.PowerFunction) {
                shadows.add(k);
            }
        }
        if (shadows.isEmpty()) {
            throw new IllegalArgumentException("the EMA has no power-function shadow (schedules "
                    + emaConfig.schedules() + "); post-hoc snapshots need DecaySchedule.powerFunction EMAs");
        }
        if (config.every() % emaConfig.every() != 0) {
            throw new IllegalArgumentException("snapshot every is " + config.every() + " steps; must be a multiple "
                    + "of the EMA's update period, every = " + emaConfig.every());
        }
        Files.createDirectories(config.directory());
        period = config.every();
    }

    /** The shadows saved, those with a power-function schedule. */
    public List<Integer> shadows() {
        return List.copyOf(shadows);
    }

    /** The current snapshot period in optimizer steps: {@link SnapshotConfig#every()}, doubled at each thinning. */
    public long period() {
        return period;
    }

    /**
     * Takes a snapshot if the EMA's step count is a positive multiple of the period; call it after every
     * {@link GpuEma#update}.
     *
     * @return whether a snapshot was written
     */
    public boolean afterStep() throws IOException {
        long steps = ema.steps();
        return steps != 0 && steps % period == 0 && snapshot();
    }

    /**
     * Writes a snapshot of every power-function shadow now (at the end of training, say), unless one of the same
     * profile time was written already; then thins the snapshots on disk to the configured number.
     *
     * @return whether a snapshot was written (false: the EMA has not been updated since the last)
     * @throws IllegalStateException if the EMA has not been updated yet (its profile has no time), or is closed
     */
    public boolean snapshot() throws IOException {
        EmaStats stats = ema.stats();
        EmaConfig emaConfig = ema.config();
        long t = emaConfig.clock() == EmaClock.EMA_UPDATES
                ? stats.updates() : stats.steps() - stats.steps() % emaConfig.every();
        if (t == 0) {
            throw new IllegalStateException("the EMA has not been updated yet; a snapshot needs at least one update");
        }
        if (t == lastTime) {
            return false;
        }
        for (int k : shadows) {
            Map<String, String> metadata = new LinkedHashMap<>(ema.stateDictMetadata(k));
            metadata.put(T_KEY, Long.toString(t));
            metadata.put(CLOCK_KEY, emaConfig.clock().name());
            metadata.put("ema4j.skipped_updates", Long.toString(stats.skippedUpdates()));
            SafetensorsWriter.write(config.directory().resolve(fileName(stats.steps(), k)), metadata,
                    ema.stateDictTensors(k, config.dtype()));
        }
        lastTime = t;
        thin(stats.steps());
        return true;
    }

    static String fileName(long steps, int shadow) {
        return String.format("%s%010d-ema%d.safetensors", FILE_PREFIX, steps, shadow);
    }

    /** Doubles the period and deletes the times that are not multiples of it (but {@code newest}) while too many. */
    private void thin(long newest) throws IOException {
        TreeMap<Long, List<Path>> byStep = new TreeMap<>();
        try (Stream<Path> files = Files.list(config.directory())) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Matcher m = FILE_NAME.matcher(f.getFileName().toString());
                if (m.matches()) {
                    byStep.computeIfAbsent(Long.parseLong(m.group(1)), s -> new ArrayList<>()).add(f);
                }
            }
        }
        while (byStep.size() > config.keep()) {
            period *= 2;
            for (var it = byStep.entrySet().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey() % period != 0 && e.getKey() != newest) {
                    for (Path f : e.getValue()) {
                        Files.deleteIfExists(f);
                    }
                    it.remove();
                }
            }
        }
    }
}
