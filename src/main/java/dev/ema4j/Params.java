package dev.ema4j;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.cuda.JCudaAddresses;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import jcuda.driver.CUdeviceptr;

/**
 * A parameter set: the model weights an EMA tracks, as one flat buffer or a list of buffers. Each tensor is a
 * host array ({@code float[]}, bf16 or fp16 bits in a {@code short[]}), a {@link FloatBuffer} (its elements from
 * position to limit, direct or heap), a {@link DeviceBuffer} of a backend, or CUDA device memory given as a JCuda
 * {@link CUdeviceptr} with a length. A parameter set refers to the storage; it never copies it.
 *
 * <pre>{@code
 * Params flat = Params.of(weights);                                   // one float[]
 * Params model = Params.builder()
 *         .add("conv1.weight", conv1).addBf16("fc.weight", fcBits)     // named, mixed dtypes
 *         .build();
 * }</pre>
 *
 * Tensors are named {@code "0"}, {@code "1"}, ... unless named in the {@link Builder}; names appear in saved state.
 */
public final class Params {

    private final List<Tensor> tensors;

    private Params(List<Tensor> tensors) {
        if (tensors.isEmpty()) {
            throw new IllegalArgumentException("params must hold at least one tensor");
        }
        var names = new HashSet<String>();
        for (Tensor t : tensors) {
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("params has two tensors named \"" + t.name() + "\"");
            }
        }
        this.tensors = List.copyOf(tensors);
    }

    /** fp32 host arrays. */
    public static Params of(float[]... arrays) {
        Objects.requireNonNull(arrays, "arrays");
        Builder b = builder();
        for (int i = 0; i < arrays.length; i++) {
            b.add(String.valueOf(i), Objects.requireNonNull(arrays[i], "arrays[" + i + "]"));
        }
        return b.build();
    }

    /** bf16 host arrays (the upper 16 bits of each fp32 value). */
    public static Params ofBf16(short[]... arrays) {
        return ofHalf(DType.BF16, arrays);
    }

    /** fp16 host arrays (IEEE binary16 bits). */
    public static Params ofF16(short[]... arrays) {
        return ofHalf(DType.F16, arrays);
    }

    private static Params ofHalf(DType dtype, short[]... arrays) {
        Objects.requireNonNull(arrays, "arrays");
        Builder b = builder();
        for (int i = 0; i < arrays.length; i++) {
            b.addHalf(String.valueOf(i), dtype, Objects.requireNonNull(arrays[i], "arrays[" + i + "]"));
        }
        return b.build();
    }

    /** fp32 {@link FloatBuffer}s, each from its current position to its limit. */
    public static Params of(FloatBuffer... buffers) {
        Objects.requireNonNull(buffers, "buffers");
        Builder b = builder();
        for (int i = 0; i < buffers.length; i++) {
            b.add(String.valueOf(i), Objects.requireNonNull(buffers[i], "buffers[" + i + "]"));
        }
        return b.build();
    }

    /** Buffers of a backend. */
    public static Params of(DeviceBuffer... buffers) {
        Objects.requireNonNull(buffers, "buffers");
        Builder b = builder();
        for (int i = 0; i < buffers.length; i++) {
            b.add(String.valueOf(i), Objects.requireNonNull(buffers[i], "buffers[" + i + "]"));
        }
        return b.build();
    }

    /**
     * CUDA device memory: {@code pointers[i]} holds {@code lengths[i]} elements of {@code dtype}. The memory must
     * belong to the CUDA backend's device and be accessible from its primary context (as memory from the CUDA
     * runtime or PyTorch is).
     */
    public static Params ofDevice(DType dtype, CUdeviceptr[] pointers, long[] lengths) {
        Objects.requireNonNull(pointers, "pointers");
        Objects.requireNonNull(lengths, "lengths");
        if (pointers.length != lengths.length) {
            throw new IllegalArgumentException(
                    "pointers has " + pointers.length + " entries, lengths " + lengths.length);
        }
        Builder b = builder();
        for (int i = 0; i < pointers.length; i++) {
            b.addDevice(String.valueOf(i), dtype, Objects.requireNonNull(pointers[i], "pointers[" + i + "]"),
                    lengths[i]);
        }
        return b.build();
    }

    /** A builder for named tensors of mixed kinds and dtypes. */
    public static Builder builder() {
        return new Builder();
    }

    /** Number of tensors. */
    public int size() {
        return tensors.size();
    }

    /** Tensor {@code i}. */
    public Tensor tensor(int i) {
        return tensors.get(i);
    }

    /** All tensors, in order. */
    public List<Tensor> tensors() {
        return tensors;
    }

    /** Whether {@code other} refers to exactly the same storage, tensor by tensor. */
    public boolean sameStorage(Params other) {
        if (other == this) {
            return true;
        }
        if (other == null || other.size() != size()) {
            return false;
        }
        for (int i = 0; i < size(); i++) {
            if (!tensors.get(i).sameStorage(other.tensors.get(i))) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "Params" + tensors;
    }

    /** One tensor of a parameter set. */
    public sealed interface Tensor {
        /** Its name, unique in its parameter set. */
        String name();

        /** Its element type. */
        DType dtype();

        /** Its number of elements. */
        long length();

        /** Whether {@code other} refers to the same storage. */
        boolean sameStorage(Tensor other);
    }

    /** An fp32 host array. */
    public record FloatArray(String name, float[] array) implements Tensor {
        @Override
        public DType dtype() {
            return DType.F32;
        }

        @Override
        public long length() {
            return array.length;
        }

        @Override
        public boolean sameStorage(Tensor other) {
            return other instanceof FloatArray o && o.array == array;
        }

        @Override
        public String toString() {
            return name + ":float[" + array.length + "]";
        }
    }

    /** A bf16 or fp16 host array. */
    public record HalfArray(String name, DType dtype, short[] array) implements Tensor {
        public HalfArray {
            if (dtype == DType.F32) {
                throw new IllegalArgumentException("tensor \"" + name + "\": a short[] holds BF16 or F16, not F32");
            }
        }

        @Override
        public long length() {
            return array.length;
        }

        @Override
        public boolean sameStorage(Tensor other) {
            return other instanceof HalfArray o && o.array == array && o.dtype == dtype;
        }

        @Override
        public String toString() {
            return name + ":" + dtype + "[" + array.length + "]";
        }
    }

    /** The elements {@code [offset, offset + count)} of an fp32 {@link FloatBuffer} (absolute indices). */
    public record Floats(String name, FloatBuffer buffer, int offset, int count) implements Tensor {
        @Override
        public DType dtype() {
            return DType.F32;
        }

        @Override
        public long length() {
            return count;
        }

        @Override
        public boolean sameStorage(Tensor other) {
            return other instanceof Floats o && o.buffer == buffer && o.offset == offset && o.count == count;
        }

        @Override
        public String toString() {
            return name + ":FloatBuffer[" + offset + ".." + (offset + count) + "]";
        }
    }

    /** A buffer of a backend. */
    public record Device(String name, DeviceBuffer buffer) implements Tensor {
        @Override
        public DType dtype() {
            return buffer.dtype();
        }

        @Override
        public long length() {
            return buffer.length();
        }

        @Override
        public boolean sameStorage(Tensor other) {
            return other instanceof Device o && o.buffer == buffer;
        }

        @Override
        public String toString() {
            return name + ":" + buffer;
        }
    }

    /**
     * CUDA device memory given by a JCuda pointer; {@code address} is the pointer's raw address when the parameter
     * set was made, so reusing the pointer object for other memory makes a different parameter set.
     */
    public record DevicePointer(String name, DType dtype, CUdeviceptr pointer, long address, long length)
            implements Tensor {
        public DevicePointer {
            if (length < 0) {
                throw new IllegalArgumentException("tensor \"" + name + "\": length is " + length + "; must be >= 0");
            }
        }

        @Override
        public boolean sameStorage(Tensor other) {
            return other instanceof DevicePointer o && o.address == address && o.dtype == dtype && o.length == length;
        }

        @Override
        public String toString() {
            return name + ":" + dtype + "@0x" + Long.toHexString(address) + "[" + length + "]";
        }
    }

    /** Builds a parameter set of named tensors. */
    public static final class Builder {
        private final List<Tensor> tensors = new ArrayList<>();

        private Builder() {
        }

        /** Adds an fp32 host array. */
        public Builder add(String name, float[] array) {
            tensors.add(new FloatArray(checkName(name), Objects.requireNonNull(array, name)));
            return this;
        }

        /** Adds a bf16 host array. */
        public Builder addBf16(String name, short[] array) {
            return addHalf(name, DType.BF16, array);
        }

        /** Adds an fp16 host array. */
        public Builder addF16(String name, short[] array) {
            return addHalf(name, DType.F16, array);
        }

        private Builder addHalf(String name, DType dtype, short[] array) {
            tensors.add(new HalfArray(checkName(name), dtype, Objects.requireNonNull(array, name)));
            return this;
        }

        /** Adds the elements of an fp32 buffer from its current position to its limit. */
        public Builder add(String name, FloatBuffer buffer) {
            Objects.requireNonNull(buffer, name);
            tensors.add(new Floats(checkName(name), buffer, buffer.position(), buffer.remaining()));
            return this;
        }

        /** Adds a backend buffer. */
        public Builder add(String name, DeviceBuffer buffer) {
            tensors.add(new Device(checkName(name), Objects.requireNonNull(buffer, name)));
            return this;
        }

        /** Adds CUDA device memory holding {@code length} elements of {@code dtype}. */
        public Builder addDevice(String name, DType dtype, CUdeviceptr pointer, long length) {
            Objects.requireNonNull(pointer, name);
            tensors.add(new DevicePointer(checkName(name), Objects.requireNonNull(dtype, "dtype"), pointer,
                    JCudaAddresses.of(pointer), length));
            return this;
        }

        /** The parameter set. */
        public Params build() {
            return new Params(tensors);
        }

        private static String checkName(String name) {
            Objects.requireNonNull(name, "name");
            if (name.isEmpty()) {
                throw new IllegalArgumentException("tensor name is empty");
            }
            return name;
        }
    }
}
