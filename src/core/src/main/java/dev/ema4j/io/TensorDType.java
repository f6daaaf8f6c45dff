package dev.ema4j.io;

/**
 * Element types of the safetensors format, each with its size in bytes.
 *
 * <p>The constant names are exactly the {@code dtype} strings of the format.
 */
public enum TensorDType {
    /** IEEE 754 binary64. */
    F64(8),
    /** IEEE 754 binary32. */
    F32(4),
    /** IEEE 754 binary16. */
    F16(2),
    /** bfloat16. */
    BF16(2),
    /** Signed 64-bit integer. */
    I64(8),
    /** Signed 32-bit integer. */
    I32(4),
    /** Signed 16-bit integer. */
    I16(2),
    /** Signed 8-bit integer. */
    I8(1),
    /** Unsigned 64-bit integer. */
    U64(8),
    /** Unsigned 32-bit integer. */
    U32(4),
    /** Unsigned 16-bit integer. */
    U16(2),
    /** Unsigned 8-bit integer. */
    U8(1),
    /** Boolean stored in one byte. */
    BOOL(1),
    /** 8-bit float with 4 exponent and 3 mantissa bits. */
    F8_E4M3(1),
    /** 8-bit float with 5 exponent and 2 mantissa bits. */
    F8_E5M2(1);

    private final int byteSize;

    TensorDType(int byteSize) {
        this.byteSize = byteSize;
    }

    /**
     * Returns the size of one element in bytes.
     *
     * @return the element size in bytes, 1 to 8
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * Returns the type with the given format name (case-sensitive, e.g. {@code "F32"}).
     *
     * @param name the {@code dtype} string of a header
     * @return the matching type
     * @throws IllegalArgumentException if no type has that name
     * @throws NullPointerException if {@code name} is null
     */
    public static TensorDType parse(String name) {
        for (TensorDType type : values()) {
            if (type.name().equals(name)) {
                return type;
            }
        }
        throw new IllegalArgumentException("unknown dtype " + HeaderParser.quote(name));
    }
}
