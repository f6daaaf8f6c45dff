package dev.ema4j.nn;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.Params;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A model's parameters in one flat buffer, with views per layer (16-byte aligned); gradients and momentum mirror
 * that layout, so the optimizer step and the EMA update are each one pass. BatchNorm running statistics live in a
 * second flat buffer, {@link #statistics()}, so they can be averaged (EMAN) or recomputed separately.
 */
public final class ParameterStore implements AutoCloseable {

    /**
     * A named tensor of the store.
     *
     * @param name dotted name as in PyTorch's {@code state_dict}, e.g. {@code layer1.0.conv1.weight}
     * @param shape its shape for the operations (NCHW; vectors are {@code (1, C)})
     * @param dims its shape in a state dict, as PyTorch's equivalent module has it: {@code [C]} for vectors,
     *     {@code [O, I]} for linear weights, {@code [K, C, R, S]} for convolution weights
     * @param offset element offset in its buffer
     * @param statistic true for BatchNorm running statistics, false for trained parameters
     * @param init how it starts
     */
    public record Slot(String name, Shape shape, List<Long> dims, long offset, boolean statistic, Init init) {
        public Slot {
            dims = List.copyOf(dims);
        }
    }

    /** Collects the slots of a model, then allocates and initializes them. */
    public static final class Builder {
        private final List<Slot> slots = new ArrayList<>();
        private long parameterLength;
        private long statisticLength;

        /**
         * A trained parameter; its state-dict dims are {@code [C]} for a {@code (1, C)} shape, {@code [N, C]} for
         * {@code (N, C)}, else the four dimensions.
         */
        public Slot parameter(String name, Shape shape, Init init) {
            return parameter(name, shape, init, dims(shape));
        }

        /** A trained parameter with explicit state-dict dims (a 1×1 convolution's weight keeps four). */
        public Slot parameter(String name, Shape shape, Init init, List<Long> dims) {
            Slot s = new Slot(name, shape, dims, parameterLength, false, init);
            parameterLength = align(parameterLength + shape.size());
            slots.add(s);
            return s;
        }

        /** A running statistic (not trained, not decayed), with the dims of {@link #parameter(String, Shape, Init)}. */
        public Slot statistic(String name, Shape shape, Init init) {
            Slot s = new Slot(name, shape, dims(shape), statisticLength, true, init);
            statisticLength = align(statisticLength + shape.size());
            slots.add(s);
            return s;
        }

        private static List<Long> dims(Shape s) {
            if (s.h() == 1 && s.w() == 1) {
                return s.n() == 1 ? List.of((long) s.c()) : List.of((long) s.n(), (long) s.c());
            }
            return List.of((long) s.n(), (long) s.c(), (long) s.h(), (long) s.w());
        }

        private static long align(long n) {
            return (n + ParamLayout.ALIGN - 1) / ParamLayout.ALIGN * ParamLayout.ALIGN;
        }

        /** Allocates the buffers on {@code backend} and initializes every slot from {@code seed}, in order. */
        public ParameterStore build(Backend backend, long seed) {
            return new ParameterStore(backend, List.copyOf(slots), parameterLength, statisticLength, seed);
        }
    }

    private final Backend backend;
    private final List<Slot> slots;
    private final DeviceBuffer values;
    private final DeviceBuffer grads;
    private final DeviceBuffer momentum;
    private final DeviceBuffer statistics;

    private ParameterStore(Backend backend, List<Slot> slots, long parameterLength, long statisticLength, long seed) {
        this.backend = backend;
        this.slots = slots;
        List<DeviceBuffer> made = new ArrayList<>();
        try {
            values = track(made, backend.allocate(DType.F32, parameterLength));
            grads = track(made, backend.allocate(DType.F32, parameterLength));
            momentum = track(made, backend.allocate(DType.F32, parameterLength));
            statistics = track(made, backend.allocate(DType.F32, Math.max(statisticLength, 1)));
        } catch (RuntimeException e) {
            made.forEach(DeviceBuffer::close);
            throw e;
        }
        float[] v = new float[Math.toIntExact(parameterLength)];
        float[] s = new float[Math.toIntExact(Math.max(statisticLength, 1))];
        SplittableRandom random = new SplittableRandom(seed);
        for (Slot slot : slots) {
            slot.init().fill(slot.statistic() ? s : v, (int) slot.offset(), slot.shape().size(), random);
        }
        backend.write(v, 0, values, 0, v.length);
        backend.write(s, 0, statistics, 0, s.length);
    }

    private static DeviceBuffer track(List<DeviceBuffer> made, DeviceBuffer b) {
        made.add(b);
        return b;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The slots, in declaration order. */
    public List<Slot> slots() {
        return slots;
    }

    /** The value of a slot (in {@link #values()} or {@link #statistics()}). */
    public Tensor value(Slot slot) {
        return new Tensor(slot.statistic() ? statistics : values, slot.offset(), slot.shape());
    }

    /** The gradient of a trained parameter. */
    public Tensor grad(Slot slot) {
        if (slot.statistic()) {
            throw new IllegalArgumentException(slot.name() + " is a statistic and has no gradient");
        }
        return new Tensor(grads, slot.offset(), slot.shape());
    }

    /** The optimizer's momentum of a trained parameter. */
    public Tensor momentum(Slot slot) {
        if (slot.statistic()) {
            throw new IllegalArgumentException(slot.name() + " is a statistic and has no momentum");
        }
        return new Tensor(momentum, slot.offset(), slot.shape());
    }

    /** All trained parameters, flat. */
    public DeviceBuffer values() {
        return values;
    }

    /** Their gradients, same layout. */
    public DeviceBuffer grads() {
        return grads;
    }

    /** The optimizer's momentum, same layout. */
    public DeviceBuffer momentum() {
        return momentum;
    }

    /** The BatchNorm running statistics, flat. */
    public DeviceBuffer statistics() {
        return statistics;
    }

    /**
     * The trained parameters as one flat tensor, for {@link dev.ema4j.GpuEma}: one named, shaped slice per
     * parameter ({@code conv1.weight} {@code [16, 1, 3, 3]}, ...), so saved and exported EMAs carry PyTorch's
     * names and shapes.
     */
    public Params parameters() {
        return named("params", values, false);
    }

    /** The running statistics as one flat tensor, for an EMA of BatchNorm statistics (EMAN), named like {@link #parameters()}. */
    public Params statisticsParams() {
        return named("bn_stats", statistics, true);
    }

    private Params named(String name, DeviceBuffer buffer, boolean statistic) {
        Params.Builder b = Params.builder().add(name, buffer);
        for (Slot s : slots) {
            if (s.statistic() == statistic) {
                b.slice(s.name(), s.offset(), s.dims().stream().mapToLong(Long::longValue).toArray());
            }
        }
        return b.build();
    }

    /** Number of trained parameters (without alignment gaps). */
    public long parameterCount() {
        return slots.stream().filter(s -> !s.statistic()).mapToLong(s -> s.shape().size()).sum();
    }

    /** The backend holding the buffers. */
    public Backend backend() {
        return backend;
    }

    @Override
    public void close() {
        values.close();
        grads.close();
        momentum.close();
        statistics.close();
    }
}
