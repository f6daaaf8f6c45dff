package dev.ema4j.backend;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * A parameter set: the model weights an EMA tracks, as one flat buffer or a list of buffers. Each tensor's
 * {@linkplain Storage storage} is a host array ({@code float[]}, bf16 or fp16 bits in a {@code short[]}), a
 * {@link FloatBuffer} (its elements from position to limit, direct or heap), a {@link DeviceBuffer} of a backend,
 * or CUDA device memory given by its raw address. A parameter set refers to the storage; it never copies it.
 *
 * <p>Each tensor has a name and one or more named, shaped {@linkplain Slice slices}, the names and shapes that
 * saved state and exported state dicts carry (PyTorch's {@code state_dict} style, e.g. {@code conv1.weight} of
 * shape {@code [16, 1, 3, 3]}). By default a tensor is one 1-D slice named like the tensor. A flat buffer that
 * holds a whole model gets one slice per layer parameter; elements outside every slice are padding, neither saved
 * nor exported.
 *
 * <pre>{@code
 * Params flat = Params.of(weights);                                   // one float[], slice "0" of shape [n]
 * Params model = Params.builder()
 *         .add("conv1.weight", conv1, 16, 1, 3, 3)                    // named and shaped
 *         .addBf16("fc.weight", fcBits, 10, 64)                        // mixed dtypes
 *         .build();
 * Params net = Params.builder()
 *         .add("params", all)                                          // one flat buffer of a whole model
 *         .slice("conv1.weight", 0, 16, 1, 3, 3).slice("fc.bias", 144, 10)
 *         .build();
 * }</pre>
 *
 * Tensors are named {@code "0"}, {@code "1"}, ... by the static factories. Tensor names are unique, and so are slice
 * names across the whole set.
 */
public final class Params {

    private final List<Tensor> tensors;

    private Params(List<Tensor> tensors) {
        if (tensors.isEmpty()) {
            throw new IllegalArgumentException("params must hold at least one tensor");
        }
        Set<String> names = new HashSet<>();
        Set<String> sliceNames = new HashSet<>();
        for (Tensor t : tensors) {
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("params has two tensors named \"" + t.name() + "\"");
            }
            for (Slice s : t.slices()) {
                if (!sliceNames.add(s.name())) {
                    throw new IllegalArgumentException("params has two slices named \"" + s.name() + "\"");
                }
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
     * CUDA device memory of device {@code device}: {@code addresses[i]} holds {@code lengths[i]} elements of
     * {@code dtype}. Any framework's device tensors can be passed this way (PyTorch through JavaCPP, ND4J-CUDA, DJL,
     * JCuda): the memory must be accessible from the device's primary context (as memory of the CUDA runtime is).
     * Each address must be a multiple of the element size; the CUDA backend also checks that each tensor lies inside
     * one allocation of that device.
     */
    public static Params ofDevice(int device, DType dtype, long[] addresses, long[] lengths) {
        Objects.requireNonNull(addresses, "addresses");
        Objects.requireNonNull(lengths, "lengths");
        if (addresses.length != lengths.length) {
            throw new IllegalArgumentException(
                    "addresses has " + addresses.length + " entries, lengths " + lengths.length);
        }
        Builder b = builder();
        for (int i = 0; i < addresses.length; i++) {
            b.addDevice(String.valueOf(i), device, dtype, addresses[i], lengths[i]);
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
            if (!tensors.get(i).storage().sameStorage(other.tensors.get(i).storage())) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "Params" + tensors;
    }

    /**
     * One tensor of a parameter set.
     *
     * @param name unique in its parameter set
     * @param storage where its elements are
     * @param slices its named, shaped parts, in order of offset and not overlapping
     */
    public record Tensor(String name, Storage storage, List<Slice> slices) {
        public Tensor {
            Objects.requireNonNull(name, "name");
            if (name.isEmpty()) {
                throw new IllegalArgumentException("tensor name is empty");
            }
            Objects.requireNonNull(storage, name);
            slices = List.copyOf(slices);
            if (slices.isEmpty()) {
                throw new IllegalArgumentException("tensor \"" + name + "\" has no slice");
            }
            long end = 0;
            for (Slice s : slices) {
                if (s.offset() < end) {
                    throw new IllegalArgumentException("tensor \"" + name + "\": slice \"" + s.name() + "\" starts at "
                            + s.offset() + ", inside the slice before it (which ends at " + end + ")");
                }
                end = s.offset() + s.length();
                if (end > storage.length()) {
                    throw new IllegalArgumentException("tensor \"" + name + "\": slice \"" + s.name() + "\" "
                            + s.shape() + " at offset " + s.offset() + " ends at " + end + ", past its "
                            + storage.length() + " elements");
                }
            }
        }

        /** The element type. */
        public DType dtype() {
            return storage.dtype();
        }

        /** The number of elements. */
        public long length() {
            return storage.length();
        }

        @Override
        public String toString() {
            return name + ":" + storage;
        }
    }

    /**
     * A named, shaped part of a tensor: elements {@code [offset, offset + length())}, row-major.
     *
     * @param name unique in its parameter set, e.g. {@code layer1.0.conv1.weight}
     * @param offset its first element in the tensor
     * @param shape its dimensions, each {@code >= 0}; {@code []} for a scalar
     */
    public record Slice(String name, long offset, List<Long> shape) {
        public Slice {
            Objects.requireNonNull(name, "name");
            if (name.isEmpty()) {
                throw new IllegalArgumentException("slice name is empty");
            }
            if (offset < 0) {
                throw new IllegalArgumentException("slice \"" + name + "\": offset is " + offset + "; must be >= 0");
            }
            shape = List.copyOf(shape);
            long n = 1;
            for (long d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException("slice \"" + name + "\": shape " + shape + " has a negative size");
                }
                n = Math.multiplyExact(n, d);
            }
        }

        /** A slice of {@code shape} at {@code offset}. */
        public static Slice of(String name, long offset, long... shape) {
            Objects.requireNonNull(shape, "shape");
            return new Slice(name, offset, java.util.Arrays.stream(shape).boxed().toList());
        }

        /** The number of elements: the product of the shape. */
        public long length() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** Where a tensor's elements are. */
    public sealed interface Storage {
        /** The element type. */
        DType dtype();

        /** The number of elements. */
        long length();

        /** Whether {@code other} is the same storage. */
        boolean sameStorage(Storage other);
    }

    /** An fp32 host array. */
    public record FloatArray(float[] array) implements Storage {
        @Override
        public DType dtype() {
            return DType.F32;
        }

        @Override
        public long length() {
            return array.length;
        }

        @Override
        public boolean sameStorage(Storage other) {
            return other instanceof FloatArray o && o.array == array;
        }

        @Override
        public String toString() {
            return "float[" + array.length + "]";
        }
    }

    /** A bf16 or fp16 host array. */
    public record HalfArray(DType dtype, short[] array) implements Storage {
        public HalfArray {
            if (dtype == DType.F32) {
                throw new IllegalArgumentException("a short[] holds BF16 or F16, not F32");
            }
        }

        @Override
        public long length() {
            return array.length;
        }

        @Override
        public boolean sameStorage(Storage other) {
            return other instanceof HalfArray o && o.array == array && o.dtype == dtype;
        }

        @Override
        public String toString() {
            return dtype + "[" + array.length + "]";
        }
    }

    /** The elements {@code [offset, offset + count)} of an fp32 {@link FloatBuffer} (absolute indices). */
    public record Floats(FloatBuffer buffer, int offset, int count) implements Storage {
        @Override
        public DType dtype() {
            return DType.F32;
        }

        @Override
        public long length() {
            return count;
        }

        @Override
        public boolean sameStorage(Storage other) {
            return other instanceof Floats o && o.buffer == buffer && o.offset == offset && o.count == count;
        }

        @Override
        public String toString() {
            return "FloatBuffer[" + offset + ".." + (offset + count) + "]";
        }
    }

    /** A buffer of a backend. */
    public record Device(DeviceBuffer buffer) implements Storage {
        @Override
        public DType dtype() {
            return buffer.dtype();
        }

        @Override
        public long length() {
            return buffer.length();
        }

        @Override
        public boolean sameStorage(Storage other) {
            return other instanceof Device o && o.buffer == buffer;
        }

        @Override
        public String toString() {
            return buffer.toString();
        }
    }

    /**
     * CUDA device memory given by its raw address: {@code length} elements of {@code dtype} on CUDA device
     * {@code device}.
     */
    public record DevicePointer(int device, DType dtype, long address, long length) implements Storage {
        public DevicePointer {
            Objects.requireNonNull(dtype, "dtype");
            if (device < 0) {
                throw new IllegalArgumentException("device is " + device + "; must be >= 0");
            }
            if (address == 0) {
                throw new IllegalArgumentException("address is 0 (a null device pointer)");
            }
            if (Long.remainderUnsigned(address, dtype.byteSize()) != 0) {
                throw new IllegalArgumentException("address 0x" + Long.toHexString(address) + " is not aligned to "
                        + dtype.byteSize() + " bytes, the size of a " + dtype + " element (the kernels need"
                        + " element-aligned pointers; 16-byte alignment is not required)");
            }
            if (length < 0 || length > Long.MAX_VALUE / dtype.byteSize()) {
                throw new IllegalArgumentException("length is " + length + "; must be in [0, "
                        + Long.MAX_VALUE / dtype.byteSize() + "]");
            }
        }

        @Override
        public boolean sameStorage(Storage other) {
            return other instanceof DevicePointer o && o.address == address && o.dtype == dtype && o.length == length
                    && o.device == device;
        }

        @Override
        public String toString() {
            return "cuda:" + device + " " + dtype + "@0x" + Long.toHexString(address) + "[" + length + "]";
        }
    }

    /** Builds a parameter set of named tensors. */
    public static final class Builder {
        private final List<String> names = new ArrayList<>();
        private final List<Storage> storages = new ArrayList<>();
        private final List<List<Slice>> slices = new ArrayList<>();
        private boolean defaultSlice;

        private Builder() {
        }

        /** Adds an fp32 host array: one slice named {@code name} of shape {@code shape} ({@code [length]} if none). */
        public Builder add(String name, float[] array, long... shape) {
            return add(name, new FloatArray(Objects.requireNonNull(array, name)), shape);
        }

        /** Adds a bf16 host array, shaped like {@link #add(String, float[], long...)}. */
        public Builder addBf16(String name, short[] array, long... shape) {
            return addHalf(name, DType.BF16, array, shape);
        }

        /** Adds an fp16 host array, shaped like {@link #add(String, float[], long...)}. */
        public Builder addF16(String name, short[] array, long... shape) {
            return addHalf(name, DType.F16, array, shape);
        }

        private Builder addHalf(String name, DType dtype, short[] array, long... shape) {
            return add(name, new HalfArray(dtype, Objects.requireNonNull(array, name)), shape);
        }

        /**
         * Adds the elements of an fp32 buffer from its current position to its limit, shaped like
         * {@link #add(String, float[], long...)}.
         */
        public Builder add(String name, FloatBuffer buffer, long... shape) {
            Objects.requireNonNull(buffer, name);
            return add(name, new Floats(buffer, buffer.position(), buffer.remaining()), shape);
        }

        /** Adds a backend buffer, shaped like {@link #add(String, float[], long...)}. */
        public Builder add(String name, DeviceBuffer buffer, long... shape) {
            return add(name, new Device(Objects.requireNonNull(buffer, name)), shape);
        }

        /**
         * Adds CUDA device memory: {@code length} elements of {@code dtype} at {@code address} on CUDA device
         * {@code device} (see {@link Params#ofDevice}), shaped like {@link #add(String, float[], long...)}.
         */
        public Builder addDevice(String name, int device, DType dtype, long address, long length, long... shape) {
            DevicePointer storage;
            try {
                storage = new DevicePointer(device, dtype, address, length);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("tensor \"" + name + "\": " + e.getMessage(), e);
            }
            return add(name, storage, shape);
        }

        /** Adds a tensor of any storage: one slice named {@code name} of {@code shape} ({@code [length]} if none). */
        public Builder add(String name, Storage storage, long... shape) {
            Objects.requireNonNull(name, "name");
            if (name.isEmpty()) {
                throw new IllegalArgumentException("tensor name is empty");
            }
            Objects.requireNonNull(storage, name);
            Objects.requireNonNull(shape, "shape");
            Slice whole = shape.length == 0 ? Slice.of(name, 0, storage.length()) : Slice.of(name, 0, shape);
            if (whole.length() != storage.length()) {
                throw new IllegalArgumentException("tensor \"" + name + "\" has " + storage.length()
                        + " elements, its shape " + whole.shape() + " has " + whole.length());
            }
            names.add(name);
            storages.add(storage);
            slices.add(new ArrayList<>(List.of(whole)));
            defaultSlice = true;
            return this;
        }

        /**
         * Names a part of the tensor added last: {@code shape} elements (row-major) from {@code offset}. The first
         * call replaces the tensor's default slice; slices must follow each other in order of offset.
         *
         * @throws IllegalStateException if no tensor was added yet
         */
        public Builder slice(String name, long offset, long... shape) {
            if (storages.isEmpty()) {
                throw new IllegalStateException("add a tensor before naming its slices");
            }
            List<Slice> last = slices.get(slices.size() - 1);
            if (defaultSlice) {
                last.clear();
                defaultSlice = false;
            }
            last.add(Slice.of(name, offset, shape));
            return this;
        }

        /** The parameter set. */
        public Params build() {
            List<Tensor> tensors = new ArrayList<>();
            for (int i = 0; i < storages.size(); i++) {
                tensors.add(new Tensor(names.get(i), storages.get(i), slices.get(i)));
            }
            return new Params(tensors);
        }
    }
}
