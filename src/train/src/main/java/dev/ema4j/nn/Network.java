package dev.ema4j.nn;

import dev.ema4j.GpuEma;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Replayable;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A classifier bound to a backend: a body of layers ending in class logits, its {@link ParameterStore}, and the
 * buffers of its passes (for batches of up to {@code maxBatch} samples). Inputs are host {@code float[]} of
 * {@code n × sample} values, NCHW.
 *
 * <pre>{@code
 * try (Network net = Network.build(backend, Models.smallCnn(16, 10), new Shape(1, 1, 28, 28), 128, seed)) {
 *     double loss = net.trainStep(x, labels, Sgd.nesterov(5e-4), 0.05);   // forward, backward, SGD
 *     float[] probs = net.predict(x, n);                                   // eval mode
 * }
 * }</pre>
 */
public final class Network implements AutoCloseable {

    private final Backend backend;
    private final NnOps ops;
    private final Layer body;
    private final Shape sample;
    private final int classes;
    private final int maxBatch;
    private final ParameterStore parameters;
    private final RunState state = new RunState();
    /** By batch size (NOTE: [pass-graphs] in dev.ema4j.ops.cuda.CudaNnOps). */
    private final Map<Integer, TrainingPasses> trainingPasses = new HashMap<>();
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private final Tensor input;
    private final Tensor probs;
    private final Tensor dlogits;
    private Tensor logits;
    private boolean closed;

    private Network(Backend backend, NnOps ops, Layer body, Shape sample, int maxBatch, long seed) {
        this.backend = backend;
        this.ops = ops;
        this.body = body;
        this.sample = sample.withBatch(1);
        this.maxBatch = maxBatch;
        ParameterStore.Builder builder = ParameterStore.builder();
        Shape out = body.declare("", this.sample, builder);
        if (out.h() != 1 || out.w() != 1) {
            throw new IllegalArgumentException("the body must end in class logits (N, classes), it gives " + out);
        }
        this.classes = out.c();
        this.parameters = builder.build(backend, seed);
        try {
            Binding binding = new Binding(backend, ops, parameters, maxBatch, state, buffers);
            body.bind(binding);
            input = binding.activation(this.sample);
            probs = binding.activation(out);
            dlogits = binding.activation(out);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /**
     * Declares, allocates and initializes a network; parameters are drawn from {@code seed} in declaration order.
     *
     * @param sample the shape of one input sample, e.g. (1, 1, 28, 28)
     * @throws IllegalArgumentException when a layer does not fit its input (the message names both shapes)
     */
    public static Network build(Backend backend, Layer body, Shape sample, int maxBatch, long seed) {
        return build(backend, TrainingOps.of(backend), body, sample, maxBatch, seed);
    }

    /** {@link #build(Backend, Layer, Shape, int, long)} running {@code ops}, e.g. a profiling wrapper of the backend's. */
    public static Network build(Backend backend, NnOps ops, Layer body, Shape sample, int maxBatch, long seed) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(ops, "ops");
        Objects.requireNonNull(body, "body");
        Objects.requireNonNull(sample, "sample");
        if (maxBatch < 1) {
            throw new IllegalArgumentException("maxBatch is " + maxBatch + "; must be >= 1");
        }
        return new Network(backend, ops, body, sample, maxBatch, seed);
    }

    /** Runs the forward pass on {@code n} samples of {@code x} in the current {@link RunState} mode; returns logits. */
    public Tensor forward(float[] x, int n) {
        logits = body.forward(input(x, n));
        state.batchDone();
        return logits;
    }

    /** Copies {@code n} samples of {@code x} into the input tensor, after checking them; returns the tensor. */
    private Tensor input(float[] x, int n) {
        checkOpen();
        Objects.requireNonNull(x, "x");
        if (n < 1 || n > maxBatch) {
            throw new IllegalArgumentException("batch is " + n + "; must be 1 to " + maxBatch);
        }
        int size = n * sample.sampleSize();
        if (x.length < size) {
            throw new IllegalArgumentException("x has " + x.length + " values, " + n + " samples of " + sample
                    + " need " + size);
        }
        Tensor in = input.withBatch(n);
        backend.write(x, 0, in.buffer(), 0, size);
        return in;
    }

    /**
     * Softmax cross-entropy of the last forward pass against {@code labels}, then the backward pass, which writes
     * every parameter's gradient. Returns the mean loss.
     */
    public double backward(int[] labels) {
        checkOpen();
        if (logits == null) {
            throw new IllegalStateException("backward needs a forward pass first");
        }
        int n = logits.shape().n();
        Tensor d = dlogits.withBatch(n);
        double loss = ops.softmaxCrossEntropy(logits, labels, probs.withBatch(n), d, null);
        if (Double.isFinite(loss)) {
            body.backward(d);
        }
        return loss;
    }

    /**
     * One training step: forward in {@link RunState.Mode#TRAIN}, loss and backward, then one SGD step with
     * learning rate {@code lr}. Returns the mean loss.
     *
     * @throws NonFiniteLossException when the loss is NaN or infinite; no parameter is updated then
     */
    public double trainStep(float[] x, int[] labels, Sgd sgd, double lr) {
        double loss = gradients(x, labels, lr);
        ops.sgdStep(parameters.values(), parameters.grads(), parameters.momentum(), sgd, lr);
        return loss;
    }

    /**
     * {@link #trainStep(float[], int[], Sgd, double)} with the SGD step fused with an update of {@code ema}, which
     * tracks {@code parameters().parameters()}: the step and the update read and write each array once
     * ({@link GpuEma#stepAndUpdate}). Returns the mean loss.
     *
     * @throws NonFiniteLossException when the loss is NaN or infinite; no parameter is updated then
     */
    public double trainStep(float[] x, int[] labels, Sgd sgd, double lr, GpuEma ema) {
        Objects.requireNonNull(ema, "ema");
        double loss = gradients(x, labels, lr);
        ema.stepAndUpdate(parameters.parameters(), sgdStep(sgd, lr));
        return loss;
    }

    /** The SGD step of this network's parameters, fusable with an EMA update ({@link GpuEma#stepAndUpdate}). */
    public FusedSgdStep sgdStep(Sgd sgd, double lr) {
        checkOpen();
        return new FusedSgdStep(ops, parameters.values(), parameters.grads(), parameters.momentum(), sgd, lr);
    }

    /**
     * The first part of {@link #trainStep}: forward in {@link RunState.Mode#TRAIN}, loss and backward, leaving the
     * gradients in {@code parameters().grads()} for an optimizer step (e.g. {@link #sgdStep}, which
     * {@link GpuEma#stepAndUpdate} fuses with the EMA update). Returns the mean loss. The forward and the backward
     * pass of each batch size are {@link NnOps#replayable()} passes: on CUDA they are captured into CUDA graphs at
     * the second batch of a size and replayed after (NOTE: [pass-graphs] in {@code CudaNnOps}), with the same
     * results.
     *
     * @param lr the learning rate the step will use, for the message of a non-finite loss
     * @throws NonFiniteLossException when the loss is NaN or infinite
     */
    public double gradients(float[] x, int[] labels, double lr) {
        Objects.requireNonNull(labels, "labels");
        state.setMode(RunState.Mode.TRAIN);
        int n = labels.length;
        Tensor in = input(x, n);
        TrainingPasses passes = trainingPasses.computeIfAbsent(n, k -> new TrainingPasses(ops));
        passes.forward.run(() -> passes.logits = body.forward(in));
        logits = passes.logits;
        state.batchDone();
        Tensor d = dlogits.withBatch(n);
        double loss = ops.softmaxCrossEntropy(logits, labels, probs.withBatch(n), d, null);
        if (!Double.isFinite(loss)) {
            throw new NonFiniteLossException("loss is " + loss + " at learning rate " + lr
                    + "; parameters unchanged; parameter norms: " + parameterNorms());
        }
        passes.backward.run(() -> body.backward(d));
        return loss;
    }

    /**
     * The forward and backward passes of training batches of one size, which the backend may replay
     * ({@link NnOps#replayable()}: CUDA graphs); the loss between them and the optimizer step after them run as they
     * are. {@code logits} is the forward pass's output tensor, set when its Java code runs.
     */
    private static final class TrainingPasses implements AutoCloseable {
        final Replayable forward;
        final Replayable backward;
        Tensor logits;

        TrainingPasses(NnOps ops) {
            forward = ops.replayable();
            Replayable b;
            try {
                b = ops.replayable();
            } catch (RuntimeException e) {
                forward.close();
                throw e;
            }
            backward = b;
        }

        @Override
        public void close() {
            try {
                forward.close();
            } finally {
                backward.close();
            }
        }
    }

    /** Class probabilities of {@code n} samples in {@link RunState.Mode#EVAL}, {@code n × classes} row-major. */
    public float[] predict(float[] x, int n) {
        state.setMode(RunState.Mode.EVAL);
        forward(x, n);
        Tensor p = probs.withBatch(n);
        ops.softmaxCrossEntropy(logits, new int[n], p, null, null);
        float[] out = new float[n * classes];
        backend.read(p.buffer(), p.offset(), out, 0, out.length);
        return out;
    }

    /**
     * The input of the last layer (for a {@link Sequential} body), e.g. the pooled features a linear probe reads:
     * {@code n × features} in {@link RunState.Mode#EVAL}.
     *
     * @throws IllegalStateException if the body is not a {@link Sequential}
     */
    public float[] features(float[] x, int n) {
        if (!(body instanceof Sequential seq)) {
            throw new IllegalStateException("features need a Sequential body");
        }
        state.setMode(RunState.Mode.EVAL);
        checkOpen();
        Objects.requireNonNull(x, "x");
        if (n < 1 || n > maxBatch || x.length < n * sample.sampleSize()) {
            throw new IllegalArgumentException("x has " + x.length + " values for a batch of " + n + " (at most "
                    + maxBatch + ") samples of " + sample);
        }
        Tensor in = input.withBatch(n);
        backend.write(x, 0, in.buffer(), 0, n * sample.sampleSize());
        Tensor f = seq.forwardPrefix(in, seq.size() - 1);
        float[] out = new float[f.size()];
        backend.read(f.buffer(), f.offset(), out, 0, out.length);
        return out;
    }

    /** The class probabilities of the last {@link #backward} (train mode), {@code n × classes} row-major. */
    public float[] lastProbabilities() {
        checkOpen();
        if (logits == null) {
            throw new IllegalStateException("no forward pass yet");
        }
        Tensor p = probs.withBatch(logits.shape().n());
        float[] out = new float[p.size()];
        backend.read(p.buffer(), p.offset(), out, 0, out.length);
        return out;
    }

    /** The L2 norm of every parameter and statistic, by name (for diagnostics). */
    public Map<String, Double> parameterNorms() {
        Map<String, Double> norms = new LinkedHashMap<>();
        for (ParameterStore.Slot s : parameters.slots()) {
            Tensor t = parameters.value(s);
            float[] v = new float[t.size()];
            backend.read(t.buffer(), t.offset(), v, 0, v.length);
            double sum = 0;
            for (float f : v) {
                sum += (double) f * f;
            }
            norms.put(s.name(), Math.sqrt(sum));
        }
        return norms;
    }

    public ParameterStore parameters() {
        return parameters;
    }

    /**
     * Writes the network's current weights and BatchNorm statistics as a plain state dict: one tensor per parameter
     * and statistic, under the names and in the shapes of the equivalent PyTorch module's {@code state_dict()}
     * ({@code conv1.weight} {@code [16, 1, 3, 3]}, {@code bn1.running_mean} {@code [16]}, ...), in {@code dtype}
     * (F32, or BF16/F16 rounded to nearest even), with metadata {@code format} = {@code pt}. Python reads it with
     * {@code safetensors.torch.load_file} and {@code model.load_state_dict(..., strict=True)} (BatchNorm's
     * {@code num_batches_tracked} is not stored: PyTorch sets it to 0 when it is missing from a state dict without
     * version metadata). To export an EMA model, swap its shadows into the parameters (and, if kept, the statistics'
     * EMA into the statistics) and export inside the swap scopes. Written atomically.
     */
    public void exportStateDict(Path path, TensorDType dtype) throws IOException {
        checkOpen();
        Objects.requireNonNull(path, "path");
        Objects.requireNonNull(dtype, "dtype");
        List<FloatTensor> tensors = new ArrayList<>();
        for (ParameterStore.Slot slot : parameters.slots()) {
            Tensor t = parameters.value(slot);
            tensors.add(new FloatTensor(slot.name(), dtype, slot.dims(), (offset, dst, dstOffset, length) ->
                    backend.read(t.buffer(), t.offset() + offset, dst, dstOffset, length)));
        }
        SafetensorsWriter.write(path, Map.of("format", "pt"), tensors);
    }

    public RunState state() {
        return state;
    }

    public int classes() {
        return classes;
    }

    public int maxBatch() {
        return maxBatch;
    }

    /** The shape of one input sample. */
    public Shape sample() {
        return sample;
    }

    public Backend backend() {
        return backend;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("network is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                trainingPasses.values().forEach(TrainingPasses::close);
            } finally {
                buffers.forEach(DeviceBuffer::close);
                parameters.close();
            }
        }
    }
}
