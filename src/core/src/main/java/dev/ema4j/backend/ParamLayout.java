package dev.ema4j.backend;

import java.util.List;

/**
 * Where each tensor of a parameter set lives in a shadow buffer. Tensor {@code i} occupies elements
 * {@code [shadowOffset(i), shadowOffset(i) + length(i))}; offsets are multiples of 4 elements (16 bytes) so the
 * kernels can use vector loads, and the gaps between tensors are never read.
 *
 * @param names tensor names, unique
 * @param slices each tensor's named, shaped parts (see {@link Params.Slice}); elements outside every slice are
 *     padding, neither saved nor exported
 * @param dtypes parameter element types
 * @param lengths elements per tensor
 * @param shadowOffsets element offset of each tensor in a shadow buffer
 * @param shadowLength elements of one shadow buffer
 */
public record ParamLayout(List<String> names, List<List<Params.Slice>> slices, List<DType> dtypes,
                          List<Long> lengths, List<Long> shadowOffsets, long shadowLength) {

    /** Alignment of tensors in shadow buffers, in elements. */
    public static final int ALIGN = 4;

    public ParamLayout {
        names = List.copyOf(names);
        slices = slices.stream().map(List::copyOf).toList();
        dtypes = List.copyOf(dtypes);
        lengths = List.copyOf(lengths);
        shadowOffsets = List.copyOf(shadowOffsets);
    }

    /** The layout of {@code params}. */
    public static ParamLayout of(Params params) {
        int n = params.size();
        Long[] offsets = new Long[n];
        long next = 0;
        for (int i = 0; i < n; i++) {
            offsets[i] = next;
            long end = Math.addExact(next, params.tensor(i).length());
            next = i + 1 < n ? Math.addExact(end, ALIGN - 1) / ALIGN * ALIGN : end;
        }
        return new ParamLayout(
                params.tensors().stream().map(Params.Tensor::name).toList(),
                params.tensors().stream().map(Params.Tensor::slices).toList(),
                params.tensors().stream().map(Params.Tensor::dtype).toList(),
                params.tensors().stream().map(Params.Tensor::length).toList(),
                List.of(offsets),
                next);
    }

    /** Number of tensors. */
    public int size() {
        return names.size();
    }

    /** Elements of tensor {@code i}. */
    public long length(int i) {
        return lengths.get(i);
    }

    /** Offset of tensor {@code i} in a shadow buffer. */
    public long shadowOffset(int i) {
        return shadowOffsets.get(i);
    }

    /** Sum of the tensors' lengths. */
    public long totalLength() {
        return lengths.stream().mapToLong(Long::longValue).sum();
    }

    /**
     * Checks that {@code other} has the same number of tensors with the same lengths, so shadows built for this
     * layout can track it (dtypes and names may differ).
     *
     * @throws IllegalArgumentException naming the first difference
     */
    public void requireCompatible(ParamLayout other, String what) {
        if (other.size() != size()) {
            throw new IllegalArgumentException(
                    what + " has " + other.size() + " tensors, this EMA tracks " + size());
        }
        for (int i = 0; i < size(); i++) {
            if (other.length(i) != length(i)) {
                throw new IllegalArgumentException(what + " tensor " + i + " (" + other.names.get(i) + ") has "
                        + other.length(i) + " elements, this EMA tracks " + length(i));
            }
        }
    }
}
