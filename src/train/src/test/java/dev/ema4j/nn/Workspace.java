package dev.ema4j.nn;

import static org.junit.jupiter.api.Assertions.fail;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The tensors of one conformance check on a backend, placed in device memory by a {@link Layout}, with what each
 * must hold afterwards. Memory around the tensors holds {@link #GUARD}; outputs start as {@link #UNWRITTEN}. After
 * every operation {@link #verify} checks that the guards are intact and that every tensor the operation did not
 * own (inputs, and the outputs of earlier operations) still holds its bits, then takes the new outputs' values as
 * what they must keep holding.
 */
final class Workspace implements AutoCloseable {

    /** Where the tensors live. */
    enum Layout {
        /** Each tensor is a whole buffer of its own (offset 0): the common case. */
        SEPARATE,
        /** Each tensor in a buffer of its own at offset 5, between guards: equal offsets, not a multiple of 4. */
        OFFSET,
        /**
         * All tensors of a check in one buffer, as parameters live in a flat store, at offsets 1, 2, 3 mod 4
         * with three guard floats between neighbours.
         */
        SHARED
    }

    /** A quiet NaN with a payload, around the tensors: any change is a write outside a view. */
    static final float GUARD = Float.intBitsToFloat(0x7fc0_6a5d);
    /** A quiet NaN with another payload, in outputs before the operation: what remains was not written. */
    static final float UNWRITTEN = Float.intBitsToFloat(0x7fc0_0bad);

    private static final int OFFSET = 5;
    private static final int GAP = 3;
    private static final int CHUNK = 1 << 18;

    private final Backend backend;
    private final Layout layout;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private final List<Placed> placed = new ArrayList<>();
    private DeviceBuffer chunk;
    private long cursor;

    /** A tensor and the bits it must hold, or null while it is an output not yet verified. */
    private static final class Placed {
        final Tensor tensor;
        final String name;
        float[] expected;

        Placed(Tensor tensor, String name, float[] expected) {
            this.tensor = tensor;
            this.name = name;
            this.expected = expected;
        }
    }

    Workspace(Backend backend, Layout layout) {
        this.backend = backend;
        this.layout = layout;
    }

    /** An input holding {@code values}; it must not change. */
    Tensor in(String name, Shape shape, float[] values) {
        if (values.length != shape.size()) {
            throw new IllegalArgumentException(name + ": " + values.length + " values for " + shape);
        }
        Tensor t = place(shape);
        backend.write(values, 0, t.buffer(), t.offset(), values.length);
        placed.add(new Placed(t, name, values.clone()));
        return t;
    }

    /** An output, filled with {@link #UNWRITTEN}; after the next operation it must hold what that one wrote. */
    Tensor out(String name, Shape shape) {
        Tensor t = place(shape);
        float[] fill = new float[shape.size()];
        Arrays.fill(fill, UNWRITTEN);
        backend.write(fill, 0, t.buffer(), t.offset(), fill.length);
        placed.add(new Placed(t, name, null));
        return t;
    }

    /** A tensor the next operation reads and updates (running statistics, {@code addTo}'s target). */
    Tensor inOut(String name, Shape shape, float[] values) {
        Tensor t = in(name, shape, values);
        placed.get(placed.size() - 1).expected = null;
        return t;
    }

    /** The tensor's elements. */
    float[] read(Tensor t) {
        float[] v = new float[t.size()];
        backend.read(t.buffer(), t.offset(), v, 0, v.length);
        return v;
    }

    /**
     * After operation {@code op}: the guards hold, every tensor with expected bits still has them, and the tensors
     * the operation wrote now have expected bits (their current values), so later operations must leave them.
     */
    void verify(String op) {
        for (Placed p : placed) {
            if (p.expected != null) {
                float[] now = read(p.tensor);
                for (int i = 0; i < now.length; i++) {
                    if (Float.floatToRawIntBits(now[i]) != Float.floatToRawIntBits(p.expected[i])) {
                        fail(op + " changed " + p.name + " " + p.tensor.shape() + ", which it does not own, at element "
                                + i + ": " + describe(p.expected[i]) + " became " + describe(now[i]) + " (" + layout
                                + " layout)");
                    }
                }
            }
        }
        verifyGuards(op);
        for (Placed p : placed) {
            if (p.expected == null) {
                p.expected = read(p.tensor);
            }
        }
    }

    /** The guards around every tensor hold. */
    void verifyGuards(String op) {
        for (DeviceBuffer b : buffers) {
            float[] all = new float[(int) b.length()];
            backend.read(b, 0, all, 0, all.length);
            boolean[] covered = new boolean[all.length];
            for (Placed p : placed) {
                if (p.tensor.buffer() == b) {
                    Arrays.fill(covered, (int) p.tensor.offset(), (int) p.tensor.offset() + p.tensor.size(), true);
                }
            }
            for (int i = 0; i < all.length; i++) {
                if (!covered[i] && Float.floatToRawIntBits(all[i]) != Float.floatToRawIntBits(GUARD)) {
                    fail(op + " wrote outside its tensors: element " + i + " of a " + layout + " buffer of "
                            + all.length + " holds " + describe(all[i]) + neighbours(b, i));
                }
            }
        }
    }

    /** Marks every tensor's current bits as what it must keep (after an operation that must change nothing). */
    void freeze() {
        for (Placed p : placed) {
            p.expected = read(p.tensor);
        }
    }

    /** A float, naming the marker NaNs and giving the bits of any other NaN. */
    private static String describe(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (bits == Float.floatToRawIntBits(GUARD)) {
            return "GUARD";
        }
        if (bits == Float.floatToRawIntBits(UNWRITTEN)) {
            return "UNWRITTEN";
        }
        return Float.isNaN(v) ? "NaN (0x" + Integer.toHexString(bits) + ")" : Float.toString(v);
    }

    private String neighbours(DeviceBuffer b, int index) {
        StringBuilder s = new StringBuilder();
        for (Placed p : placed) {
            if (p.tensor.buffer() == b) {
                s.append(s.length() == 0 ? "; tensors there: " : ", ").append(p.name).append(" [")
                        .append(p.tensor.offset()).append(", ").append(p.tensor.offset() + p.tensor.size()).append(')');
            }
        }
        return s.toString();
    }

    private Tensor place(Shape shape) {
        int size = shape.size();
        switch (layout) {
            case SEPARATE -> {
                return Tensor.of(allocate(size), shape);
            }
            case OFFSET -> {
                DeviceBuffer b = allocate(OFFSET + size + 7);
                guard(b);
                return new Tensor(b, OFFSET, shape);
            }
            default -> {
                int residue = 1 + placed.size() % 3;
                long at = cursor + GAP;
                at += Math.floorMod(residue - at, 4);
                if (chunk == null || at + size + GAP > chunk.length()) {
                    chunk = allocate(Math.max(CHUNK, size + 2 * GAP + 8));
                    guard(chunk);
                    at = GAP + Math.floorMod(residue - GAP, 4);
                }
                cursor = at + size;
                return new Tensor(chunk, at, shape);
            }
        }
    }

    private DeviceBuffer allocate(long length) {
        DeviceBuffer b = backend.allocate(DType.F32, length);
        buffers.add(b);
        return b;
    }

    private void guard(DeviceBuffer b) {
        float[] fill = new float[(int) b.length()];
        Arrays.fill(fill, GUARD);
        backend.write(fill, 0, b, 0, fill.length);
    }

    @Override
    public void close() {
        buffers.forEach(DeviceBuffer::close);
    }
}
