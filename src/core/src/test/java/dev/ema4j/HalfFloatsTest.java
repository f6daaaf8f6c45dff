package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.ema4j.backend.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The library's 16-bit conversions against {@link EmaOracle}, written from the definitions of the formats. */
class HalfFloatsTest {

    @Test
    void widensEveryHalfExactly() {
        for (int h = 0; h < 1 << 16; h++) {
            short s = (short) h;
            assertEquals(Float.floatToRawIntBits(EmaOracle.f16(s)), Float.floatToRawIntBits(HalfFloats.f16ToFloat(s)),
                    "f16 0x" + Integer.toHexString(h));
            assertEquals(Float.floatToRawIntBits(EmaOracle.bf16(s)), Float.floatToRawIntBits(HalfFloats.bf16ToFloat(s)),
                    "bf16 0x" + Integer.toHexString(h));
        }
    }

    @Test
    void narrowsToNearestEven() {
        Random r = new Random(3);
        for (int i = 0; i < 2_000_000; i++) {
            float f = i < 1_000_000 ? Float.intBitsToFloat(r.nextInt()) : (float) (r.nextGaussian() * 100);
            check(f);
        }
        // ties, overflow, subnormals and their boundaries
        for (float f : new float[] {0f, -0f, 65504f, 65519.99f, 65520f, -65520f, 1e-8f, 2.98e-8f, 0x1p-25f,
                0x1.000002p-25f, 0x1.8p-24f, 0x1p-14f, 0x1.ffcp-15f, 1.0009765625f, 1.00048828125f,
                Float.MAX_VALUE, Float.MIN_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
                Float.intBitsToFloat(0xff800001), 0x1.0101p0f, 0x1.0181p0f, 0x1.0180p0f, 0x1.0080p0f}) {
            check(f);
        }
    }

    private static void check(float f) {
        String what = f + " (0x" + Integer.toHexString(Float.floatToRawIntBits(f)) + ")";
        assertEquals(EmaOracle.toF16(f), HalfFloats.floatToF16(f), "f16 of " + what);
        assertEquals(EmaOracle.toBf16(f), HalfFloats.floatToBf16(f), "bf16 of " + what);
    }
}
