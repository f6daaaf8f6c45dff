package dev.ema4j.backend;

/**
 * Conversions between fp32 and the 16-bit float formats, bit for bit as in cuda/ema.cu (NOTE: [half-conversions]):
 * widening is exact; narrowing rounds to nearest even, overflows to infinity, and turns every NaN into the quiet
 * NaN {@code 0x7fc0} (bf16) or {@code 0x7e00} (fp16) carrying the input's sign.
 */
public final class HalfFloats {

    private static final float[] F16_TO_F32 = new float[1 << 16];

    static {
        for (int h = 0; h < F16_TO_F32.length; h++) {
            F16_TO_F32[h] = Float.intBitsToFloat(f16BitsToF32Bits(h));
        }
    }

    private HalfFloats() {
    }

    /** bf16 bits to fp32, exactly. */
    public static float bf16ToFloat(short h) {
        return Float.intBitsToFloat(h << 16);
    }

    /** fp16 bits to fp32, exactly. */
    public static float f16ToFloat(short h) {
        return F16_TO_F32[h & 0xffff];
    }

    /** fp32 to bf16 bits, rounding to nearest even. */
    public static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return (short) (((u >>> 16) & 0x8000) | 0x7fc0);
        }
        return (short) ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16);
    }

    /** fp32 to fp16 bits, rounding to nearest even. */
    public static short floatToF16(float f) {
        int u = Float.floatToRawIntBits(f);
        int sign = (u >>> 16) & 0x8000;
        int a = u & 0x7fffffff;
        if (a > 0x7f800000) {
            return (short) (sign | 0x7e00);
        }
        if (a >= 0x477ff000) {
            return (short) (sign | 0x7c00);
        }
        if (a < 0x38800000) {
            if (a <= 0x33000000) {
                return (short) sign;
            }
            int man = (a & 0x7fffff) | 0x800000;
            int shift = 126 - (a >>> 23);
            return (short) (sign | roundShift(man, shift));
        }
        int r = (a - 0x38000000) >>> 13;
        int rem = a & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (r & 1) != 0)) {
            r++;
        }
        return (short) (sign | r);
    }

    private static int roundShift(int man, int shift) {
        int r = man >>> shift;
        int rem = man & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        return rem > half || (rem == half && (r & 1) != 0) ? r + 1 : r;
    }

    private static int f16BitsToF32Bits(int h) {
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int man = h & 0x3ff;
        if (exp == 0x1f) {
            return sign | 0x7f800000 | (man << 13);
        }
        if (exp == 0) {
            return sign | Float.floatToRawIntBits(man * 0x1p-24f);
        }
        return sign | ((exp + 112) << 23) | (man << 13);
    }
}
