package dev.ema4j.posthoc;

import dev.ema4j.EmaClock;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsException;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.io.TensorInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The snapshots of a run ({@link EmaSnapshotter}), from which the weights of other averages are rebuilt after
 * training: {@link #fit} finds the combination of snapshots whose profile is closest to the target's (least squares
 * over profiles, in double precision, the weights summing to 1), {@link #rebuild} streams the combined weights.
 *
 * <pre>{@code
 * try (SnapshotSet set = SnapshotSet.open(Path.of("run/snapshots"))) {
 *     Combination c = set.fit(Profile.sigmaRel(0.07, set.lastTime()));
 *     System.out.println(c);                                  // relative profile error, amplification
 *     set.write(Path.of("ema-0.07.safetensors"), c, TensorDType.F32);
 * }
 * }</pre>
 *
 * Every file is checked when the set opens, as untrusted input: the safetensors header, the snapshot metadata
 * ({@code ema4j.schedule} = {@code power_function}, {@code ema4j.gamma}, {@code ema4j.posthoc.t},
 * {@code ema4j.posthoc.clock}), float dtypes, the same tensor names and shapes in every file, one clock, no two
 * snapshots of the same profile and time. The files stay open, and a rebuild reads each in chunks: memory is a few
 * MB whatever the model's size. Not thread-safe; use after {@link #close()} throws {@link IllegalStateException}.
 */
public final class SnapshotSet implements AutoCloseable {

    private static final int CHUNK = 1 << 16;
    /** The largest exponent γ accepted (σ_rel about 1e-6); larger ones overflow the inner products. */
    static final double MAX_GAMMA = 1e6;
    /** The largest snapshot time accepted, and the largest step count (exact in a double). */
    static final double MAX_TIME = 0x1p53;
    private static final Set<TensorDType> FLOAT_TYPES = Set.of(TensorDType.F32, TensorDType.BF16, TensorDType.F16);

    private final List<Snapshot> snapshots;
    private final List<SafetensorsFile> files;
    private final List<TensorInfo> tensors;
    private boolean closed;

    private SnapshotSet(List<Snapshot> snapshots, List<SafetensorsFile> files) {
        this.snapshots = List.copyOf(snapshots);
        this.files = List.copyOf(files);
        this.tensors = files.get(0).tensors();
    }

    /**
     * Opens every {@code snapshot-<steps>-ema<k>.safetensors} file of {@code directory}.
     *
     * @throws IllegalArgumentException if the directory holds no snapshot file
     * @throws SafetensorsException if a file is not a valid snapshot, or the files disagree
     * @throws IOException if the directory or a file cannot be read
     */
    public static SnapshotSet open(Path directory) throws IOException {
        Objects.requireNonNull(directory, "directory");
        List<Path> found;
        try (Stream<Path> list = Files.list(directory)) {
            found = list.filter(f -> EmaSnapshotter.FILE_NAME.matcher(f.getFileName().toString()).matches())
                    .sorted().toList();
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException(directory + " holds no snapshot files (snapshot-<steps>-ema<k>"
                    + ".safetensors)");
        }
        return open(found);
    }

    /**
     * Opens the given snapshot files.
     *
     * @throws IllegalArgumentException if {@code files} is empty
     * @throws SafetensorsException if a file is not a valid snapshot, or the files disagree
     */
    public static SnapshotSet open(List<Path> paths) throws IOException {
        Objects.requireNonNull(paths, "paths");
        if (paths.isEmpty()) {
            throw new IllegalArgumentException("paths is empty; a snapshot set needs at least one file");
        }
        List<SafetensorsFile> opened = new ArrayList<>();
        try {
            List<Snapshot> snapshots = new ArrayList<>();
            Set<List<Double>> seen = new HashSet<>();
            for (Path path : paths) {
                SafetensorsFile file = SafetensorsFile.open(path);
                opened.add(file);
                Snapshot s = describe(path, file.metadata());
                checkTensors(path, file.tensors(), paths.get(0), opened.get(0).tensors());
                if (s.clock() != snapshots.stream().findFirst().map(Snapshot::clock).orElse(s.clock())) {
                    throw new SafetensorsException(path + ": clock " + s.clock() + ", but " + paths.get(0)
                            + " has " + snapshots.get(0).clock());
                }
                if (!seen.add(List.of(s.gamma(), s.t()))) {
                    throw new SafetensorsException(path + ": a second snapshot of gamma " + s.gamma() + " at t = "
                            + Snapshot.formatTime(s.t()));
                }
                snapshots.add(s);
            }
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < snapshots.size(); i++) {
                order.add(i);
            }
            order.sort(Comparator.<Integer>comparingDouble(i -> snapshots.get(i).t())
                    .thenComparingDouble(i -> snapshots.get(i).gamma()));
            return new SnapshotSet(order.stream().map(snapshots::get).toList(),
                    order.stream().map(opened::get).toList());
        } catch (IOException | RuntimeException e) {
            for (SafetensorsFile f : opened) {
                try {
                    f.close();
                } catch (IOException closeError) {
                    e.addSuppressed(closeError);
                }
            }
            throw e;
        }
    }

    private static Snapshot describe(Path path, Map<String, String> metadata) throws SafetensorsException {
        String schedule = metadata.get("ema4j.schedule");
        if (!"power_function".equals(schedule)) {
            throw new SafetensorsException(path + ": metadata \"ema4j.schedule\" is "
                    + (schedule == null ? "missing" : "\"" + schedule + "\"") + "; a snapshot is a power_function EMA");
        }
        double gamma = number(path, metadata, "ema4j.gamma");
        double t = number(path, metadata, EmaSnapshotter.T_KEY);
        double steps = number(path, metadata, "ema4j.steps");
        double skipped = metadata.containsKey("ema4j.skipped_updates")
                ? number(path, metadata, "ema4j.skipped_updates") : 0;
        if (!(gamma >= 0 && gamma <= MAX_GAMMA) || !(t >= 1 && t <= MAX_TIME) || !whole(steps) || !whole(skipped)) {
            throw new SafetensorsException(path + ": ema4j.gamma " + gamma + ", " + EmaSnapshotter.T_KEY + " " + t
                    + ", ema4j.steps " + steps + ", ema4j.skipped_updates " + skipped + "; need 0 <= gamma <= "
                    + MAX_GAMMA + ", 1 <= t <= 2^53, whole steps and skipped updates in [0, 2^53]");
        }
        String clock = metadata.get(EmaSnapshotter.CLOCK_KEY);
        EmaClock parsed;
        try {
            parsed = EmaClock.valueOf(String.valueOf(clock));
        } catch (IllegalArgumentException e) {
            throw new SafetensorsException(path + ": metadata \"" + EmaSnapshotter.CLOCK_KEY + "\" is \"" + clock
                    + "\"; expected one of " + List.of(EmaClock.values()));
        }
        return new Snapshot(path, gamma, t, parsed, (long) steps, (long) skipped);
    }

    private static boolean whole(double v) {
        return v >= 0 && v <= MAX_TIME && v == Math.rint(v);
    }

    private static double number(Path path, Map<String, String> metadata, String key) throws SafetensorsException {
        String value = metadata.get(key);
        if (value == null) {
            throw new SafetensorsException(path + ": metadata has no \"" + key + "\"; not an ema4j snapshot");
        }
        try {
            return Double.parseDouble(value);
        } catch (NumberFormatException e) {
            throw new SafetensorsException(path + ": metadata \"" + key + "\" is \"" + value + "\"; expected a number");
        }
    }

    private static void checkTensors(Path path, List<TensorInfo> tensors, Path first, List<TensorInfo> expected)
            throws SafetensorsException {
        if (tensors.isEmpty()) {
            throw new SafetensorsException(path + ": no tensors");
        }
        for (TensorInfo t : tensors) {
            if (!FLOAT_TYPES.contains(t.dtype())) {
                throw new SafetensorsException(path + ": tensor \"" + t.name() + "\" has dtype " + t.dtype()
                        + "; snapshots are F32, BF16 or F16");
            }
        }
        if (tensors.size() != expected.size()) {
            throw new SafetensorsException(path + " has " + tensors.size() + " tensors, " + first + " "
                    + expected.size());
        }
        for (int i = 0; i < tensors.size(); i++) {
            TensorInfo a = tensors.get(i);
            TensorInfo b = expected.get(i);
            if (!a.name().equals(b.name()) || !a.shape().equals(b.shape())) {
                throw new SafetensorsException(path + ": tensor " + i + " is \"" + a.name() + "\" " + a.shape()
                        + ", in " + first + " \"" + b.name() + "\" " + b.shape());
            }
        }
    }

    /** The snapshots, by time then exponent. */
    public List<Snapshot> snapshots() {
        checkOpen();
        return snapshots;
    }

    /** The latest snapshot time. */
    public double lastTime() {
        checkOpen();
        return snapshots.get(snapshots.size() - 1).t();
    }

    /** The distinct snapshot times, ascending. */
    public List<Double> times() {
        checkOpen();
        return snapshots.stream().map(Snapshot::t).distinct().toList();
    }

    /**
     * The combination of all snapshots closest to {@code target}: least squares over profiles with the weights
     * summing to 1 ({@code AffineLeastSquares}); read {@link Combination#relativeError()} before trusting it.
     *
     * @throws IllegalArgumentException if the set has fewer than 2 snapshots, or {@code target} is read outside the
     *     snapshots' times (an average cannot use weights it never saw, and before the first snapshot nothing
     *     pins it down)
     */
    public Combination fit(Profile target) {
        checkOpen();
        Objects.requireNonNull(target, "target");
        if (snapshots.size() < 2) {
            throw new IllegalArgumentException("the set has " + snapshots.size() + " snapshot; a rebuild needs at "
                    + "least 2");
        }
        double first = snapshots.get(0).t();
        double last = lastTime();
        if (target.t() < first || target.t() > last) {
            throw new IllegalArgumentException("target " + target + " is read at t = " + Snapshot.formatTime(target.t())
                    + ", outside the snapshots' times [" + Snapshot.formatTime(first) + ", "
                    + Snapshot.formatTime(last) + "]");
        }
        int n = snapshots.size();
        double[][] a = new double[n][n];
        double[] b = new double[n];
        for (int i = 0; i < n; i++) {
            Profile pi = snapshots.get(i).profile();
            for (int j = 0; j <= i; j++) {
                a[i][j] = pi.inner(snapshots.get(j).profile());
                a[j][i] = a[i][j];
            }
            b[i] = pi.inner(target);
        }
        double c = target.inner(target);
        AffineLeastSquares.Solution s = AffineLeastSquares.solve(a, b, c);
        List<Double> weights = new ArrayList<>();
        double amplification = 0;
        for (double w : s.x()) {
            weights.add(w);
            amplification += Math.abs(w);
        }
        if (!Double.isFinite(amplification) || !Double.isFinite(s.relativeError())) {
            throw new IllegalArgumentException("the profiles of " + target + " and of the snapshots give no finite "
                    + "fit (relative error " + s.relativeError() + ", amplification " + amplification + ")");
        }
        return new Combination(target, snapshots, weights, s.relativeError(), amplification);
    }

    /**
     * The rebuilt weights, one tensor per parameter (the snapshots' names and shapes), in {@code dtype}; each
     * chunk is computed when read, as {@code Σ weights[i]·snapshot_i} accumulated in double.
     *
     * @throws IllegalArgumentException if {@code combination} was fitted on another set
     */
    public List<FloatTensor> rebuild(Combination combination, TensorDType dtype) {
        checkOpen();
        Objects.requireNonNull(combination, "combination");
        Objects.requireNonNull(dtype, "dtype");
        if (!combination.snapshots().equals(snapshots)) {
            throw new IllegalArgumentException("the combination was fitted on other snapshots ("
                    + combination.snapshots().size() + " of them, this set has " + snapshots.size() + ")");
        }
        double[] weights = combination.weights().stream().mapToDouble(Double::doubleValue).toArray();
        List<FloatTensor> out = new ArrayList<>();
        for (int k = 0; k < tensors.size(); k++) {
            int tensor = k;
            TensorInfo info = tensors.get(k);
            out.add(new FloatTensor(info.name(), dtype, info.shape(),
                    (offset, dst, dstOffset, length) -> combine(tensor, weights, offset, dst, dstOffset, length)));
        }
        return out;
    }

    private void combine(int tensor, double[] weights, long offset, float[] dst, int dstOffset, int length)
            throws IOException {
        checkOpen();
        float[] values = new float[Math.min(length, CHUNK)];
        double[] sum = new double[values.length];
        for (int done = 0; done < length; ) {
            int n = Math.min(CHUNK, length - done);
            Arrays.fill(sum, 0, n, 0);
            for (int i = 0; i < files.size(); i++) {
                if (weights[i] == 0) {
                    continue;
                }
                SafetensorsFile file = files.get(i);
                file.readFloats(file.tensors().get(tensor), offset + done, values, 0, n);
                double w = weights[i];
                for (int j = 0; j < n; j++) {
                    sum[j] += w * values[j];
                }
            }
            for (int j = 0; j < n; j++) {
                dst[dstOffset + done + j] = (float) sum[j];
            }
            done += n;
        }
    }

    /**
     * Writes the rebuilt weights as a plain state dict ({@code safetensors.torch.load_file} reads it), atomically.
     * Metadata: {@code format} = {@code pt}, {@code ema4j.posthoc.target}, {@code ema4j.posthoc.relative_error},
     * {@code ema4j.posthoc.amplification}, {@code ema4j.posthoc.snapshots}.
     */
    public void write(Path path, Combination combination, TensorDType dtype) throws IOException {
        Objects.requireNonNull(path, "path");
        List<FloatTensor> rebuilt = rebuild(combination, dtype);
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "pt");
        metadata.put("ema4j.posthoc.target", combination.target().toString());
        metadata.put("ema4j.posthoc.relative_error", Double.toString(combination.relativeError()));
        metadata.put("ema4j.posthoc.amplification", Double.toString(combination.amplification()));
        metadata.put("ema4j.posthoc.snapshots", Integer.toString(snapshots.size()));
        SafetensorsWriter.write(path, metadata, rebuilt);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this snapshot set is closed");
        }
    }

    /** Closes every file. Idempotent. */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        IOException first = null;
        for (SafetensorsFile f : files) {
            try {
                f.close();
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
