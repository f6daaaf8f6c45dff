package dev.ema4j.backend;

/** Element types of parameter buffers. EMA shadows are always {@link #F32}. */
public enum DType {
    /** IEEE 754 binary32. */
    F32(4),
    /** bfloat16: the upper 16 bits of a binary32, stored in a {@code short}. */
    BF16(2),
    /** IEEE 754 binary16, stored in a {@code short}. */
    F16(2);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The numeric code the CUDA kernels use for this type (see cuda/ema.cu). */
    public int code() {
        return ordinal();
    }
}
