package dev.ema4j.dl4j;

import dev.ema4j.backend.Params;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The parameters of a Deeplearning4j model ({@link MultiLayerNetwork}, {@link ComputationGraph}, or any
 * {@link Model}) as ema4j {@link Params}, without a copy: one fp32 tensor over the memory of the model's flat
 * {@code params()} (through {@code params().data().asNioFloat()}), with one named, shaped slice per entry of
 * {@code paramTable()} ({@code 0_W}, {@code 0_b}, {@code 1_gamma}, {@code 1_mean}, ...). An EMA update reads the
 * weights where DL4J keeps them, and {@code swapInto} and {@code copyTo} write where DL4J reads them.
 *
 * <pre>{@code
 * MultiLayerNetwork net = new MultiLayerNetwork(conf);
 * net.init();
 * Dl4jParams weights = Dl4jParams.of(net);
 * try (Backend backend = Backends.cpu();
 *      GpuEma ema = GpuEma.create(backend, weights.params(), EmaConfig.of(DecaySchedule.paperWarmup(0.99)))) {
 *     while (train.hasNext()) {
 *         net.fit(train.next());
 *         ema.update(weights.params());               // after every step
 *     }
 *     try (SwapScope s = ema.swapInto(weights.params())) {
 *         System.out.println(net.evaluate(test).accuracy());   // the EMA model; live weights restored on close
 *     }
 * }
 * }</pre>
 *
 * <h2>Names and shapes</h2>
 * Slices follow the order of the parameters in memory (a convolution's bias comes before its weights). Each slice's
 * shape is row-major, as ema4j's state files and exported state dicts need: a parameter that DL4J views in
 * {@code 'c'} order keeps its shape (convolution weights {@code [out, in, kH, kW]}, as PyTorch's), one in {@code 'f'}
 * order gets the reversed shape, which is the same memory read row-major (a dense layer's {@code W},
 * {@code [nIn, nOut]} in DL4J, is {@code [nOut, nIn]}, as PyTorch's {@code Linear.weight}).
 *
 * <h2>BatchNorm statistics</h2>
 * DL4J keeps the running mean and variance (or {@code log10} of the standard deviation) of its
 * {@code BatchNormalization} layers in {@code params()} too. By default ({@link BatchNormStats#AVERAGE}) the EMA
 * averages them with the same decay as the weights, and swapping the EMA in brings the averaged statistics along;
 * {@link BatchNormStats#EXCLUDE} leaves them out. {@link BatchNormRecompute} recomputes them for the weights in
 * place (the EMA's, inside a swap scope).
 *
 * <h2>When DL4J replaces its parameter memory</h2>
 * The {@code Params} point at the memory of the flat array, and this object keeps the array reachable so that ND4J
 * cannot free it while they do. DL4J writes that array in place in {@code fit}, {@code setParams},
 * {@code setParamTable} and a repeated {@code init()}; a clone, {@code convertDataType}, a restored or
 * transfer-learned network is another model, with its own memory, and needs its own {@code Dl4jParams} (a
 * {@code GpuEma} of the same layout accepts its parameters). Should the model's {@code params()} ever point at other
 * memory, {@link #params()} notices it (by address and length, checked on every call) and builds the parameter set
 * over the new memory, which {@code GpuEma} then binds on its next use. So call {@link #params()} for each use rather
 * than keeping its result, and keep DL4J from replacing the parameters inside a swap scope.
 *
 * <h2>Requirements</h2>
 * The model must be initialized ({@code init()}), hold its parameters as {@code FLOAT} (DL4J's default data type)
 * in one contiguous array of host memory outside any workspace, as ND4J's CPU backend ({@code nd4j-native}) does;
 * otherwise {@link #of} throws {@link IllegalArgumentException} saying which condition failed. On ND4J's CUDA
 * backend ({@code nd4j-cuda}) the parameters live in device memory and a host view would be a stale copy, so
 * {@link #of} refuses them: pass the device memory to ema4j's CUDA backend by its address instead
 * ({@link Params#ofDevice}, {@link Params.Builder#addDevice}), for example as below.
 * This sketch uses ND4J-CUDA's API ({@code AtomicAllocator}, {@code getPointer}, {@code tickDeviceWrite}) and has not
 * been run: this module is built and tested on the CPU backend only.
 * <pre>{@code
 * INDArray flat = net.params();
 * int device = Nd4j.getAffinityManager().getDeviceForArray(flat);
 * AtomicAllocator allocator = AtomicAllocator.getInstance();
 * long address = allocator.getPointer(flat, allocator.getDeviceContext()).address();   // device copy made current
 * Params params = Params.builder()                              // F16, BF16 for HALF, BFLOAT16 networks
 *         .addDevice("params", device, DType.F32, address, flat.length())
 *         .slice("0_W", 0, 256, 784).slice("0_b", 200704, 256)  // ... as Dl4jParams names them, or none
 *         .build();
 * Nd4j.getExecutioner().commit();                                // ND4J's kernels done before ema4j reads
 * ema.update(params);
 * try (SwapScope s = ema.swapInto(params)) {
 *     backend.synchronize();                                     // ema4j's writes done before ND4J reads
 *     allocator.tickDeviceWrite(flat);                           // the device copy is the current one
 *     evaluate(net);
 * }
 * backend.synchronize();                                         // the live weights are back
 * allocator.tickDeviceWrite(flat);
 * }</pre>
 * ema4j's CUDA backend checks that each address is aligned and lies inside one allocation of that device, and the
 * memory must be accessible from the device's primary context (as memory of the CUDA runtime, which ND4J uses, is).
 *
 * <p>Not thread-safe; use it from the thread that trains the model.
 */
public final class Dl4jParams {

    private static final int MAX_LENGTH = Integer.MAX_VALUE - 8;

    private final Model model;
    private final BatchNormStats stats;
    private Binding binding;
    private long rebinds;

    private Dl4jParams(Model model, BatchNormStats stats, Binding binding) {
        this.model = model;
        this.stats = stats;
        this.binding = binding;
    }

    /** The parameters of {@code model}, BatchNorm statistics included ({@link BatchNormStats#AVERAGE}). */
    public static Dl4jParams of(Model model) {
        return of(model, BatchNormStats.AVERAGE);
    }

    /**
     * The parameters of {@code model}, BatchNorm statistics included or not.
     *
     * @throws IllegalArgumentException if the model is not initialized, its parameters are not FLOAT, not one
     *     contiguous array, not in host memory (ND4J's CUDA backend) or in a workspace, a parameter lies outside the
     *     flat array, or {@link BatchNormStats#EXCLUDE} would leave nothing
     */
    public static Dl4jParams of(Model model, BatchNormStats stats) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(stats, "stats");
        return new Dl4jParams(model, stats, bind(model, stats));
    }

    /**
     * The parameter set over the model's current parameter memory: the same object as long as DL4J keeps its
     * parameters in the same memory, a new one over the new memory otherwise (see the class documentation).
     *
     * @throws IllegalArgumentException if the model's parameters were replaced by ones that cannot be viewed
     */
    public Params params() {
        INDArray flat = model.params();
        if (flat == null || flat.isEmpty() || address(flat) != binding.address || flat.length() != binding.length) {
            binding = bind(model, stats);
            rebinds++;
        }
        return binding.params;
    }

    /** The model. */
    public Model model() {
        return model;
    }

    /** Whether the BatchNorm statistics are averaged or left out. */
    public BatchNormStats batchNormStats() {
        return stats;
    }

    /**
     * The names of the model's BatchNorm statistics ({@code 1_mean}, {@code 1_log10stdev}, ...): slices of
     * {@link #params()} under {@link BatchNormStats#AVERAGE}, left out under {@link BatchNormStats#EXCLUDE}.
     * Found for {@link MultiLayerNetwork}, {@link ComputationGraph} and single layers.
     */
    public List<String> batchNormStatistics() {
        return binding.statistics;
    }

    /** How many times {@link #params()} found the model's parameters in other memory and rebuilt the set. */
    public long rebinds() {
        return rebinds;
    }

    @Override
    public String toString() {
        return "Dl4jParams[" + describe(model) + ", " + stats + ", " + binding.params + "]";
    }

    /** A parameter set over {@code flat} (kept reachable) at {@code address}. */
    private record Binding(INDArray flat, long address, long length, Params params, List<String> statistics) {
    }

    /** One entry of the parameter table: where it lies in the flat array and its row-major shape. */
    private record Part(String name, long offset, long[] shape, boolean statistic) {
        long length() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private static Binding bind(Model model, BatchNormStats stats) {
        String what = describe(model);
        INDArray flat = model.params();
        if (flat == null || flat.isEmpty() || flat.length() == 0) {
            throw new IllegalArgumentException(what + " has no parameters: it is not initialized (call init() "
                    + "first) or has no layer with parameters");
        }
        DataType dtype = flat.dataType();
        if (dtype != DataType.FLOAT) {
            throw new IllegalArgumentException(what + " holds its parameters as " + dtype + "; Dl4jParams views FLOAT "
                    + "(fp32) parameters only: build the network with dataType(DataType.FLOAT), DL4J's default, or "
                    + "convert it with convertDataType(DataType.FLOAT)");
        }
        if (!Nd4j.getEnvironment().isCPU()) {
            throw new IllegalArgumentException(what + ": ND4J's backend (" + Nd4j.getBackend().getClass().getName()
                    + ") keeps the parameters in device memory, of which a host view would be a stale copy; pass their "
                    + "device address to Params.ofDevice (see the Dl4jParams documentation)");
        }
        if (flat.data().isAttached()) {
            throw new IllegalArgumentException(what + ": params() is an array in an ND4J workspace, whose memory the "
                    + "workspace reuses; the parameters must be a detached array");
        }
        if (!isContiguousVector(flat)) {
            throw new IllegalArgumentException(what + ": params() is not one contiguous array (shape "
                    + Arrays.toString(flat.shape()) + ", strides " + Arrays.toString(flat.stride()) + ", order '"
                    + flat.ordering() + "'); it must be a dense vector over consecutive memory");
        }
        if (flat.length() > MAX_LENGTH) {
            throw new IllegalArgumentException(what + " has " + flat.length()
                    + " parameters; a host view holds at most " + MAX_LENGTH);
        }
        FloatBuffer buffer = flat.data().asNioFloat();
        int base = buffer.position();
        if (!buffer.isDirect() || buffer.limit() - base < flat.length()) {
            throw new IllegalArgumentException(what + ": params().data().asNioFloat() is not a direct view of the "
                    + flat.length() + " parameters (" + buffer + "), so writes through it would not reach the model");
        }
        long address = address(flat);
        List<Part> parts = parts(what, model, flat, address);
        List<String> statistics = parts.stream().filter(Part::statistic).map(Part::name).toList();
        Params params = stats == BatchNormStats.AVERAGE
                ? average(buffer, base, flat.length(), parts)
                : exclude(what, buffer, base, parts);
        return new Binding(flat, address, flat.length(), params, statistics);
    }

    /** One tensor over the whole flat array, a slice per parameter. */
    private static Params average(FloatBuffer buffer, int base, long length, List<Part> parts) {
        Params.Builder b = Params.builder().add("params", new Params.Floats(buffer, base, (int) length));
        for (Part p : parts) {
            b.slice(p.name, p.offset, p.shape);
        }
        return b.build();
    }

    /** One tensor per run of parameters between statistics. */
    private static Params exclude(String what, FloatBuffer buffer, int base, List<Part> parts) {
        Params.Builder b = Params.builder();
        int tensors = 0;
        for (int i = 0; i < parts.size(); ) {
            if (parts.get(i).statistic) {
                i++;
                continue;
            }
            int j = i;
            long end = parts.get(i).offset;
            while (j < parts.size() && !parts.get(j).statistic && parts.get(j).offset == end) {
                end += parts.get(j).length();
                j++;
            }
            long start = parts.get(i).offset;
            b.add("params." + tensors++, new Params.Floats(buffer, base + (int) start, (int) (end - start)));
            for (int k = i; k < j; k++) {
                b.slice(parts.get(k).name, parts.get(k).offset - start, parts.get(k).shape);
            }
            i = j;
        }
        if (tensors == 0) {
            throw new IllegalArgumentException(what + " has only BatchNorm statistics as parameters; "
                    + "BatchNormStats.EXCLUDE leaves nothing to average");
        }
        return b.build();
    }

    /** The entries of the parameter table in order of offset, checked to lie inside the flat array. */
    private static List<Part> parts(String what, Model model, INDArray flat, long address) {
        Set<Long> statistics = statisticAddresses(model);
        List<Part> parts = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : model.paramTable().entrySet()) {
            String name = e.getKey();
            INDArray view = e.getValue();
            if (view.dataType() != DataType.FLOAT) {
                throw new IllegalArgumentException(what + ": parameter " + name + " is " + view.dataType()
                        + ", params() is FLOAT");
            }
            long bytes = address(view) - address;
            long offset = bytes / Float.BYTES;
            if (bytes < 0 || bytes % Float.BYTES != 0 || offset + view.length() > flat.length()) {
                throw new IllegalArgumentException(what + ": parameter " + name + " " + Arrays.toString(view.shape())
                        + " does not lie inside params() (at byte " + bytes + " of " + flat.length() * Float.BYTES
                        + "); its view is not part of the flat parameter array");
            }
            if (!isContiguous(view)) {
                throw new IllegalArgumentException(what + ": parameter " + name + " is not contiguous (shape "
                        + Arrays.toString(view.shape()) + ", strides " + Arrays.toString(view.stride()) + ", order '"
                        + view.ordering() + "')");
            }
            long[] shape = view.shape().clone();
            if (view.ordering() == 'f') {
                reverse(shape);
            }
            parts.add(new Part(name, offset, shape, statistics.contains(address(view))));
        }
        parts.sort(Comparator.comparingLong(Part::offset));
        return parts;
    }

    /** Addresses of the running statistics of the model's BatchNormalization layers. */
    private static Set<Long> statisticAddresses(Model model) {
        Layer[] layers;
        if (model instanceof MultiLayerNetwork net) {
            layers = net.getLayers();
        } else if (model instanceof ComputationGraph graph) {
            layers = graph.getLayers();
        } else if (model instanceof Layer layer) {
            layers = new Layer[] {layer};
        } else {
            layers = new Layer[0];
        }
        Set<Long> addresses = new HashSet<>();
        for (Layer layer : layers == null ? new Layer[0] : layers) {
            if (BatchNormRecompute.batchNorm(layer) == null) {
                continue;
            }
            for (String key : List.of(BatchNormalizationParamInitializer.GLOBAL_MEAN,
                    BatchNormalizationParamInitializer.GLOBAL_VAR, BatchNormalizationParamInitializer.GLOBAL_LOG_STD)) {
                INDArray view = layer.paramTable().get(key);
                if (view != null) {
                    addresses.add(address(view));
                }
            }
        }
        return addresses;
    }

    /** The address of the array's first element. */
    private static long address(INDArray array) {
        return array.data().addressPointer().address();
    }

    /** Whether the array is a vector (one dimension larger than 1 at most) with unit stride. */
    private static boolean isContiguousVector(INDArray a) {
        int big = 0;
        for (int i = 0; i < a.rank(); i++) {
            if (a.size(i) > 1) {
                big++;
                if (a.stride(i) != 1) {
                    return false;
                }
            }
        }
        return big <= 1;
    }

    /** Whether the array's elements are consecutive in memory in its own order ('c' row-major, 'f' column-major). */
    private static boolean isContiguous(INDArray a) {
        long[] shape = a.shape();
        long[] stride = a.stride();
        boolean c = a.ordering() == 'c';
        long expected = 1;
        for (int k = 0; k < shape.length; k++) {
            int i = c ? shape.length - 1 - k : k;
            if (shape[i] != 1 && stride[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    private static void reverse(long[] a) {
        for (int i = 0, j = a.length - 1; i < j; i++, j--) {
            long t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    private static String describe(Model model) {
        return model.getClass().getSimpleName();
    }
}
