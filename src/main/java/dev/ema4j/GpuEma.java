package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.NonFiniteGuard;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.ParamSnapshot;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.io.F32Tensor;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Exponential moving averages of model weights, kept in fp32 "shadow" buffers on a {@link Backend}:
 * <pre>{@code   ema ← decay·ema + (1 − decay)·params          (one pass over memory for all shadows)}</pre>
 * starting from a copy of the initial parameters. Several decays are tracked at once, one shadow each; one
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
     */
    public static GpuEma create(Backend backend, Params initial, EmaConfig config) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(initial, "initial");
        Objects.requireNonNull(config, "config");
        ParamTable table = backend.bind(initial);
        List<DeviceBuffer> shadows = new ArrayList<>();
        NonFiniteGuard guard = null;
        try {
            for (int k = 0; k < config.shadowCount(); k++) {
                DeviceBuffer shadow = backend.allocate(DType.F32, table.layout().shadowLength());
                shadows.add(shadow);
                backend.toShadow(table, shadow);
            }
            if (config.nonFinite() != NonFinitePolicy.IGNORE) {
                guard = backend.newGuard();
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
        steps = step;
        if (step % config.every() == 0) {
            apply(table, config.decays(step, updates));
        }
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
     * One SGD step of {@code params} (the flat buffer this EMA tracks) counted as an optimizer step like
     * {@link #update(Params)}; when the step is due for an EMA update, the update reads the new parameters in the
     * same pass ({@link dev.ema4j.nn.NnOps#sgdEmaStep}), bit for bit what {@code sgdStep} then {@code update} give.
     * With the non-finite guard on ({@link NonFinitePolicy#SKIP}, {@link NonFinitePolicy#THROW}) the parameters
     * must be checked before the shadows change, so the step and the update run as two passes.
     *
     * @param params modified: the F32 buffer of this EMA's parameter set (one tensor)
     * @param momentum modified
     */
    public void sgdStepAndUpdate(DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum, Sgd sgd, double lr) {
        checkUsable();
        Objects.requireNonNull(params, "params");
        Params tracked = Params.of(params);
        bind(tracked);  // checks the layout: one flat buffer of the tracked length
        long step = steps + 1;
        boolean due = step % config.every() == 0;
        if (!due || guard != null) {
            backend.nn().sgdStep(params, grads, momentum, sgd, lr);
            update(tracked);
            return;
        }
        double[] decays = config.decays(step, updates);
        backend.nn().sgdEmaStep(params, grads, momentum, sgd, lr, shadows, weights(decays));
        steps = step;
        updates++;
    }

    private static float[] weights(double[] decays) {
        float[] weights = new float[decays.length];
        for (int k = 0; k < decays.length; k++) {
            weights[k] = (float) (1.0 - decays[k]);
        }
        return weights;
    }

    private void apply(ParamTable table, double[] decays) {
        backend.emaLerp(table, shadows, weights(decays), guard);
        updates++;
        if (config.nonFinite() == NonFinitePolicy.THROW && guard.raised()) {
            throw new NonFiniteParametersException("update " + updates + " (optimizer step " + steps
                    + ") skipped: a parameter is NaN or infinite; the shadows are unchanged");
        }
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
        if (params.size() == 1 && params.tensor(0) instanceof Params.Device d && d.buffer().backend() == backend
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
     * a safetensors file that Python tools can read: tensor {@code ema.<k>.<name>} is shadow {@code k} of the
     * parameter tensor {@code name}, in fp32. Written to a temporary file and renamed over {@code path}, so a crash
     * never leaves a half-written file.
     */
    public void save(Path path) throws IOException {
        checkUsable();
        Objects.requireNonNull(path, "path");
        EmaStateFile.save(path, backend, config, layout, shadows, stats());
    }

    /**
     * Replaces the shadows and counters with those saved in {@code path}. The file is validated completely before
     * anything changes; on any failure this EMA is left as it was.
     *
     * @throws java.io.IOException if the file is unreadable or not a valid ema4j state file
     * @throws IllegalArgumentException if the file was saved by an EMA with another layout, another number of
     *     shadows, other schedules, another {@code every} or another clock
     */
    public void load(Path path) throws IOException {
        checkUsable();
        Objects.requireNonNull(path, "path");
        install(EmaStateFile.load(path, backend, config, layout));
    }

    private void install(EmaStateFile.State state) {
        if (guard != null) {
            guard.setSkippedUpdates(state.skippedUpdates());
        }
        shadows.forEach(DeviceBuffer::close);
        shadows = state.shadows();
        steps = state.steps();
        updates = state.updates();
    }

    /**
     * This EMA's state as entries of a larger safetensors file (a training checkpoint): the shadow tensors and
     * the metadata of {@link #save}, every key prefixed with {@code prefix}. The shadows are read when written.
     */
    public List<F32Tensor> stateTensors(String prefix) {
        checkUsable();
        return EmaStateFile.tensors(Objects.requireNonNull(prefix, "prefix"), backend, layout, shadows);
    }

    /** The metadata part of {@link #stateTensors}. */
    public Map<String, String> stateMetadata(String prefix) {
        checkUsable();
        return EmaStateFile.metadata(Objects.requireNonNull(prefix, "prefix"), config, stats());
    }

    /**
     * {@link #load} from the entries under {@code prefix} of an open file ({@link #stateTensors}); validates
     * everything first and changes nothing on failure.
     */
    public void loadState(SafetensorsFile file, String prefix) throws IOException {
        checkUsable();
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(prefix, "prefix");
        install(EmaStateFile.read(file, prefix, Path.of(file.toString()), backend, config, layout));
    }

    /** The counters; reading the skip count waits for the device. */
    public EmaStats stats() {
        checkOpen();
        return new EmaStats(steps, updates, guard == null ? 0 : guard.skippedUpdates());
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
