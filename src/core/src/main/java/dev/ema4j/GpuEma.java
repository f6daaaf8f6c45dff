package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.NonFiniteGuard;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.ParamSnapshot;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Exponential moving averages of model weights, kept in fp32 "shadow" buffers on a {@link Backend}:
 * <pre>{@code   ema ← decay·ema + (1 − decay)·params          (one pass over memory for all shadows)}</pre>
 * in fp32 exactly as PyTorch's {@code ema.lerp_(params, 1 − decay)} (NOTE: [lerp-torch] in
 * {@link Backend#emaLerp}), starting from a copy of the initial parameters. Several decays are tracked at once, one shadow each; one
 * update reads the parameters once and updates every shadow in the same pass (one kernel launch on CUDA, without
 * host synchronization). The parameters may be fp32, bf16 or fp16, in host or device memory (see {@link Params}).
 *
 * <pre>{@code
 * try (Backend backend = Backends.best();
 *      GpuEma ema = GpuEma.create(backend, Params.of(weights), EmaConfig.constant(0.999, 0.9999))) {
 *     for (int step = 0; step < steps; step++) {
 *         optimizerStep(weights);
 *         ema.update(Params.of(weights));             // scheduled decays, or: ema.update(params, 0.999, 0.9999)
 *     }
 *     try (SwapScope s = ema.swapInto(Params.of(weights), 0)) {
 *         evaluate(weights);                          // the EMA weights; live weights restored on close
 *     }
 *     ema.save(Path.of("ema.safetensors"));
 * }
 * }</pre>
 *
 * Invalid arguments throw {@link NullPointerException}, {@link IllegalArgumentException} or
 * {@link IndexOutOfBoundsException} before anything runs, on every backend alike. Not thread-safe. Use after
 * {@link #close()} throws {@link IllegalStateException}.
 */
public final class GpuEma implements AutoCloseable {

    private final Backend backend;
    private final EmaConfig config;
    private final ParamLayout layout;
    private final NonFiniteGuard guard;
    private List<DeviceBuffer> shadows;
    private ParamTable bound;
    private long steps;
    private long updates;
    private Swap swap;
    private boolean closed;

    private GpuEma(Backend backend, EmaConfig config, ParamTable bound, List<DeviceBuffer> shadows,
                   NonFiniteGuard guard) {
        this.backend = backend;
        this.config = config;
        this.layout = bound.layout();
        this.bound = bound;
        this.shadows = shadows;
        this.guard = guard;
    }

    /**
     * An EMA of {@code initial} on {@code backend}: every shadow starts as a copy of the parameters.
     *
     * @throws IllegalArgumentException if the parameters cannot be used on this backend
     * @throws NonFiniteParametersException if a parameter is NaN or infinite and the policy is not
     *     {@link NonFinitePolicy#IGNORE} (an average cannot start from such values; nothing is kept)
     */
    public static GpuEma create(Backend backend, Params initial, EmaConfig config) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(initial, "initial");
        Objects.requireNonNull(config, "config");
        ParamTable table = backend.bind(initial);
        List<DeviceBuffer> shadows = new ArrayList<>();
        NonFiniteGuard guard = null;
        try {
            if (config.nonFinite() != NonFinitePolicy.IGNORE) {
                guard = backend.newGuard();
                backend.checkFinite(table, guard);
                if (guard.raised()) {
                    throw new NonFiniteParametersException("the initial parameters hold NaN or infinite values; an "
                            + "EMA cannot start from them (NonFinitePolicy." + config.nonFinite()
                            + "; IGNORE would copy them)");
                }
            }
            for (int k = 0; k < config.shadowCount(); k++) {
                DeviceBuffer shadow = backend.allocate(DType.F32, table.layout().shadowLength());
                shadows.add(shadow);
                backend.toShadow(table, shadow);
            }
            return new GpuEma(backend, config, table, shadows, guard);
        } catch (RuntimeException e) {
            shadows.forEach(DeviceBuffer::close);
            if (guard != null) {
                guard.close();
            }
            table.close();
            throw e;
        }
    }

    /** An EMA with constant {@code decays} (one shadow each), updated every step. */
    public static GpuEma create(Backend backend, Params initial, double... decays) {
        return create(backend, initial, EmaConfig.constant(decays));
    }

    /**
     * Counts one optimizer step and, after every {@link EmaConfig#every() k}-th, updates every shadow toward
     * {@code params} with its scheduled decay ({@link EmaConfig#decays}).
     *
     * @throws IllegalArgumentException if {@code params} does not match the tracked layout
     * @throws NonFiniteParametersException under {@link NonFinitePolicy#THROW}, when the update was skipped
     */
    public void update(Params params) {
        checkUsable();
        Objects.requireNonNull(params, "params");
        ParamTable table = bind(params);
        long step = steps + 1;
        if (step % config.every() == 0) {
            apply(table, config.decays(step, updates));
        }
        steps = step;
    }

    /**
     * Updates every shadow now, shadow {@code k} with {@code decays[k]}, ignoring the schedules; the optimizer-step
     * count is unchanged.
     *
     * @param decays one per shadow, each in [0, 1]
     * @throws IllegalArgumentException if a decay is NaN or outside [0, 1], their count differs from the number of
     *     shadows, or {@code params} does not match the tracked layout
     * @throws NonFiniteParametersException under {@link NonFinitePolicy#THROW}, when the update was skipped
     */
    public void update(Params params, double... decays) {
        checkUsable();
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(decays, "decays");
        if (decays.length != shadows.size()) {
            throw new IllegalArgumentException(
                    "decays has " + decays.length + " values, this EMA tracks " + shadows.size() + " shadows");
        }
        for (int k = 0; k < decays.length; k++) {
            if (!(decays[k] >= 0.0 && decays[k] <= 1.0)) {
                throw new IllegalArgumentException("decays[" + k + "] is " + decays[k] + "; must be in [0, 1]");
            }
        }
        apply(bind(params), decays.clone());
    }

    /**
     * Counts one optimizer step that {@code step} performs on {@code params} (this EMA's parameters) and, when an EMA
     * update is due, lets the step fold the update into its own pass over memory
     * ({@link FusedStep#stepAndUpdate}): bit for bit what {@code step.step()} then {@link #update(Params)} give.
     * With the non-finite guard on ({@link NonFinitePolicy#SKIP}, {@link NonFinitePolicy#THROW}) the parameters must
     * be checked before the shadows change, so the step runs alone and the update follows as a second pass.
     *
     * @param params modified by the step; must match the tracked layout
     * @throws NonFiniteParametersException under {@link NonFinitePolicy#THROW}, when the update was skipped
     */
    public void stepAndUpdate(Params params, FusedStep step) {
        checkUsable();
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(step, "step");
        bind(params);
        long next = steps + 1;
        if (next % config.every() != 0 || guard != null) {
            step.step();
            update(params);
            return;
        }
        float[] weights = weights(config.decays(next, updates));
        step.stepAndUpdate(Collections.unmodifiableList(shadows), weights);
        steps = next;
        updates++;
    }

    private static float[] weights(double[] decays) {
        float[] weights = new float[decays.length];
        for (int k = 0; k < decays.length; k++) {
            weights[k] = (float) (1.0 - decays[k]);
        }
        return weights;
    }

    /** One update; the update counter advances only when it returns normally. */
    private void apply(ParamTable table, double[] decays) {
        backend.emaLerp(table, shadows, weights(decays), guard);
        if (config.nonFinite() == NonFinitePolicy.THROW && guard.raised()) {
            throw new NonFiniteParametersException("update skipped: a parameter is NaN or infinite; the shadows, "
                    + "steps and updates are unchanged, skipped_updates counts it (now " + guard.skippedUpdates() + ")");
        }
        updates++;
    }

    /**
     * Writes shadow {@code shadow} into {@code target}, rounded to each tensor's dtype.
     *
     * @param target modified; must match the tracked layout
     */
    public void copyTo(Params target, int shadow) {
        checkUsable();
        Objects.requireNonNull(target, "target");
        checkShadowIndex(shadow);
        if (bound.bindsSameStorage(target)) {
            backend.fromShadow(shadows.get(shadow), bound);
            return;
        }
        layout.requireCompatible(ParamLayout.of(target), "target");
        try (ParamTable table = backend.bind(target)) {
            backend.fromShadow(shadows.get(shadow), table);
        }
    }

    /** {@link #copyTo(Params, int)} for an EMA with one shadow. */
    public void copyTo(Params target) {
        copyTo(target, singleShadow());
    }

    /**
     * Puts shadow {@code shadow} into {@code params} (for evaluating the EMA model) until the returned scope is
     * closed, which restores the live weights bit for bit. When {@code params} is a single F32 buffer of this
     * backend, the two buffers exchange their memory in O(1); otherwise the live weights are saved and copied
     * back. Until the scope closes, this EMA refuses every other operation but {@link #stats()} and {@link #close()}
     * (which closes the scope first).
     *
     * @param params modified until the scope closes; must match the tracked layout
     */
    public SwapScope swapInto(Params params, int shadow) {
        checkUsable();
        Objects.requireNonNull(params, "params");
        checkShadowIndex(shadow);
        ParamTable table = bind(params);
        DeviceBuffer shadowBuffer = shadows.get(shadow);
        if (params.size() == 1 && params.tensor(0).storage() instanceof Params.Device d && d.buffer().backend() == backend
                && d.buffer().dtype() == DType.F32 && d.buffer().length() == shadowBuffer.length()) {
            d.buffer().swapStorage(shadowBuffer);
            swap = new Swap(shadow, () -> d.buffer().swapStorage(shadowBuffer));
        } else {
            ParamSnapshot saved = backend.snapshot(table);
            try {
                backend.fromShadow(shadowBuffer, table);
            } catch (RuntimeException e) {
                saved.close();
                throw e;
            }
            swap = new Swap(shadow, () -> {
                try (saved) {
                    saved.restore();
                }
            });
        }
        return swap;
    }

    /** {@link #swapInto(Params, int)} for an EMA with one shadow. */
    public SwapScope swapInto(Params params) {
        return swapInto(params, singleShadow());
    }

    /**
     * Saves the shadows and the state needed to resume exactly (steps, updates, skips, schedules, every, clock) as
     * a safetensors file that Python tools can read: tensor {@code ema.<k>.<slice>} is shadow {@code k} of the
     * named, shaped parameter slice {@code slice} ({@link Params.Slice}), in fp32; the metadata are plain strings
     * (format in {@code EmaStateFile}'s documentation, listed in the README). Written to a temporary file and renamed
     * over {@code path}, so a crash never leaves a half-written file.
     */
    public void save(Path path) throws IOException {
        checkUsable();
        Objects.requireNonNull(path, "path");
        SafetensorsWriter.write(path, stateMetadata(""), stateTensors(""));
    }

    /**
     * Writes shadow {@code shadow} as a plain state dict: one tensor per named slice of the parameters, under its
     * own name and shape ({@code conv1.weight}, {@code [16, 1, 3, 3]}), in {@code dtype} (F32, or BF16/F16 rounded
     * to nearest even), which {@code safetensors.torch.load_file} and {@code load_state_dict} read directly.
     * Metadata: {@code format} = {@code pt} (as PyTorch's {@code save_file} writes) and
     * {@code ema4j.schedule}, {@code ema4j.decay} (or {@code ema4j.gamma}, ...), {@code ema4j.steps},
     * {@code ema4j.updates}. Written atomically like {@link #save}.
     */
    public void exportStateDict(Path path, int shadow, TensorDType dtype) throws IOException {
        checkUsable();
        Objects.requireNonNull(path, "path");
        SafetensorsWriter.write(path, stateDictMetadata(shadow), stateDictTensors(shadow, dtype));
    }

    /**
     * The tensors of {@link #exportStateDict} (for a file that combines them with others, such as a model's
     * BatchNorm statistics); the shadow is read when they are written.
     */
    public List<FloatTensor> stateDictTensors(int shadow, TensorDType dtype) {
        checkUsable();
        checkShadowIndex(shadow);
        Objects.requireNonNull(dtype, "dtype");
        return EmaStateFile.sliceTensors("", dtype, backend, layout, shadows.get(shadow));
    }

    /** The metadata of {@link #exportStateDict}. */
    public Map<String, String> stateDictMetadata(int shadow) {
        checkOpen();
        checkShadowIndex(shadow);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        EmaStateFile.scheduleMetadata(config.schedules().get(shadow)).forEach((k, v) -> meta.put("ema4j." + k, v));
        meta.put("ema4j.every", String.valueOf(config.every()));
        meta.put("ema4j.steps", String.valueOf(steps));
        meta.put("ema4j.updates", String.valueOf(updates));
        return meta;
    }

    /**
     * Replaces the shadows and counters with those saved in {@code path}. The file is validated completely before
     * anything is allocated or changed; on any failure this EMA is left as it was and nothing stays allocated.
     *
     * @throws java.io.IOException if the file is unreadable or not a valid ema4j state file
     * @throws IllegalArgumentException if the file was saved by an EMA with another layout, another number of
     *     shadows, other schedules, another {@code every} or another clock
     */
    public void load(Path path) throws IOException {
        checkUsable();
        Objects.requireNonNull(path, "path");
        try (SafetensorsFile file = SafetensorsFile.open(path);
             LoadedState state = read(file, "", path, true)) {
            state.install();
        }
    }

    /**
     * This EMA's state as entries of a larger safetensors file (a training checkpoint): the shadow tensors of
     * {@link #save}, every name prefixed with {@code prefix}. The shadows are read when written.
     */
    public List<FloatTensor> stateTensors(String prefix) {
        checkUsable();
        return EmaStateFile.tensors(Objects.requireNonNull(prefix, "prefix"), backend, layout, shadows);
    }

    /** The metadata of {@link #save}, every key prefixed with {@code prefix}. */
    public Map<String, String> stateMetadata(String prefix) {
        checkUsable();
        return EmaStateFile.metadata(Objects.requireNonNull(prefix, "prefix"), config, stats());
    }

    /**
     * Reads the state stored under {@code prefix} in an open file ({@link #stateTensors}) into new buffers, after
     * validating all of it, without changing this EMA: {@link LoadedState#install()} puts it in place,
     * {@link LoadedState#close()} frees it if it was not installed. A caller that loads several parts (a checkpoint
     * with two EMAs and the weights) reads them all before installing any, so a bad part changes nothing.
     *
     * @throws java.io.IOException if the file is unreadable or the state invalid
     * @throws IllegalArgumentException if the state was saved by an EMA of another configuration or layout
     */
    public LoadedState readState(SafetensorsFile file, String prefix) throws IOException {
        checkUsable();
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(prefix, "prefix");
        return read(file, prefix, Path.of(file.toString()), false);
    }

    private LoadedState read(SafetensorsFile file, String prefix, Path path, boolean whole) throws IOException {
        EmaStateFile.Validated valid = EmaStateFile.validate(file, prefix, path, config, layout, whole);
        List<DeviceBuffer> read = EmaStateFile.readShadows(file, valid, backend, layout, config.shadowCount());
        return new LoadedState(read, valid.steps(), valid.updates(), valid.skippedUpdates());
    }

    /**
     * A state read by {@link #readState} and not yet installed: it owns its shadow buffers until
     * {@link #install()} hands them to the EMA; {@link #close()} frees them otherwise.
     */
    public final class LoadedState implements AutoCloseable {
        private List<DeviceBuffer> read;
        private final long steps;
        private final long updates;
        private final long skipped;

        private LoadedState(List<DeviceBuffer> read, long steps, long updates, long skipped) {
            this.read = read;
            this.steps = steps;
            this.updates = updates;
            this.skipped = skipped;
        }

        /**
         * Replaces the EMA's shadows and counters with this state (cannot fail once the EMA is usable).
         *
         * @throws IllegalStateException if already installed or closed, or the EMA is closed or swapped in
         */
        public void install() {
            checkUsable();
            if (read == null) {
                throw new IllegalStateException("this state was already installed or closed");
            }
            if (guard != null) {
                guard.setSkippedUpdates(skipped);
            }
            shadows.forEach(DeviceBuffer::close);
            shadows = read;
            read = null;
            GpuEma.this.steps = steps;
            GpuEma.this.updates = updates;
        }

        /** Frees the shadows read, unless they were installed. Idempotent. */
        @Override
        public void close() {
            if (read != null) {
                read.forEach(DeviceBuffer::close);
                read = null;
            }
        }
    }

    /** The counters; reading the skip count waits for the device. */
    public EmaStats stats() {
        checkOpen();
        return new EmaStats(steps, updates, guard == null ? 0 : guard.skippedUpdates());
    }

    /** Optimizer steps seen ({@link EmaStats#steps()}), without waiting for the device. */
    public long steps() {
        checkOpen();
        return steps;
    }

    /** The configuration. */
    public EmaConfig config() {
        return config;
    }

    /** Where each parameter tensor lives in the shadows. */
    public ParamLayout layout() {
        return layout;
    }

    /** The backend holding the shadows. */
    public Backend backend() {
        return backend;
    }

    /** Restores the live weights if a shadow is swapped in, then frees the shadows. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (swap != null) {
                swap.close();
            }
        } finally {
            shadows.forEach(DeviceBuffer::close);
            if (guard != null) {
                guard.close();
            }
            bound.close();
        }
    }

    private ParamTable bind(Params params) {
        if (bound.bindsSameStorage(params)) {
            return bound;
        }
        layout.requireCompatible(ParamLayout.of(params), "params");
        ParamTable table = backend.bind(params);
        bound.close();
        bound = table;
        return table;
    }

    private int singleShadow() {
        if (shadows.size() != 1) {
            throw new IllegalArgumentException(
                    "this EMA tracks " + shadows.size() + " shadows; name one (0 to " + (shadows.size() - 1) + ")");
        }
        return 0;
    }

    private void checkShadowIndex(int shadow) {
        if (shadow < 0 || shadow >= shadows.size()) {
            throw new IndexOutOfBoundsException(
                    "shadow is " + shadow + "; this EMA tracks " + shadows.size() + " shadows");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this GpuEma is closed");
        }
    }

    private void checkUsable() {
        checkOpen();
        if (swap != null) {
            throw new IllegalStateException(
                    "shadow " + swap.shadow + " is swapped into the parameters; close its SwapScope first");
        }
    }

    /** The open swap: closing it runs {@code restore} once. */
    private final class Swap implements SwapScope {
        private final int shadow;
        private final Runnable restore;

        Swap(int shadow, Runnable restore) {
            this.shadow = shadow;
            this.restore = restore;
        }

        @Override
        public void close() {
            if (swap == this) {
                swap = null;
                restore.run();
            }
        }
    }
}
