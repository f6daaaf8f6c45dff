package dev.ema4j.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.FloatBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Parameter sets: which count as the same storage (this decides when a launch plan is reused), names and shapes. */
class ParamsTest {

    private static Params device(long address) {
        return Params.ofDevice(0, DType.F32, new long[] {address}, new long[] {100});
    }

    private static void assertMessage(Class<? extends Throwable> type, Runnable call, String expected) {
        Throwable e = assertThrows(type, call::run);
        assertTrue(String.valueOf(e.getMessage()).contains(expected), e.getMessage());
    }

    @Test
    void devicePointersCompareByAddressDtypeLengthAndDevice() {
        Params a = device(0x7f00_0000_1000L);
        assertTrue(a.sameStorage(device(0x7f00_0000_1000L)), "a new parameter set for the same address");
        assertFalse(a.sameStorage(device(0x7f00_0000_2000L)), "another address");
        assertEquals(0x7f00_0000_1000L, ((Params.DevicePointer) a.tensor(0).storage()).address());
        assertFalse(a.sameStorage(Params.ofDevice(0, DType.BF16, new long[] {0x7f00_0000_1000L}, new long[] {100})),
                "another dtype");
        assertFalse(a.sameStorage(Params.ofDevice(1, DType.F32, new long[] {0x7f00_0000_1000L}, new long[] {100})),
                "another device");
    }

    @Test
    void deviceAddressesAreCheckedForNullAlignmentAndLength() {
        assertMessage(IllegalArgumentException.class, () -> device(0), "null device pointer");
        assertMessage(IllegalArgumentException.class, () -> device(0x1002),
                "address 0x1002 is not aligned to 4 bytes, the size of a F32 element");
        Params.ofDevice(0, DType.BF16, new long[] {0x1002}, new long[] {1});  // 2-byte elements: aligned
        assertMessage(IllegalArgumentException.class,
                () -> Params.ofDevice(0, DType.BF16, new long[] {0x1000, 0x2003}, new long[] {1, 1}),
                "tensor \"1\": address 0x2003 is not aligned to 2 bytes, the size of a BF16 element");
        assertMessage(IllegalArgumentException.class,
                () -> Params.builder().addDevice("conv1.weight", 0, DType.F32, 0x1006, 9).build(),
                "tensor \"conv1.weight\": address 0x1006 is not aligned to 4 bytes");
        assertMessage(IllegalArgumentException.class,
                () -> Params.ofDevice(0, DType.F32, new long[] {0x1000}, new long[] {-1}), "length is -1");
        assertMessage(IllegalArgumentException.class,
                () -> Params.ofDevice(-1, DType.F32, new long[] {0x1000}, new long[] {1}), "device is -1");
        assertMessage(IllegalArgumentException.class,
                () -> Params.ofDevice(0, DType.F32, new long[] {0x1000}, new long[] {1, 2}),
                "addresses has 1 entries, lengths 2");
    }

    @Test
    void hostStorageComparesByIdentityAndRange() {
        float[] x = new float[10];
        assertTrue(Params.of(x).sameStorage(Params.of(x)));
        assertFalse(Params.of(x).sameStorage(Params.of(x.clone())));
        FloatBuffer b = FloatBuffer.allocate(10);
        Params whole = Params.of(b);
        assertFalse(whole.sameStorage(Params.of(b.position(2))), "another range of the same buffer");
        assertFalse(Params.ofBf16(new short[0]).sameStorage(Params.ofBf16(new short[0])), "distinct arrays");
    }

    @Test
    void aTensorIsOneSliceOfItsOwnNameUnlessShapedOrSliced() {
        Params p = Params.builder()
                .add("flat", new float[6])
                .add("conv.weight", new float[24], 2, 3, 2, 2)
                .addBf16("scalar", new short[1], new long[0])
                .add("all", new float[20]).slice("a.weight", 0, 2, 3).slice("a.bias", 8, 2).slice("b", 12, 8)
                .build();
        assertEquals(List.of(Params.Slice.of("flat", 0, 6)), p.tensor(0).slices());
        assertEquals(List.of(Params.Slice.of("conv.weight", 0, 2, 3, 2, 2)), p.tensor(1).slices());
        assertEquals(List.of(Params.Slice.of("scalar", 0, 1)), p.tensor(2).slices(), "no shape given: [length]");
        assertEquals(List.of(Params.Slice.of("a.weight", 0, 2, 3), Params.Slice.of("a.bias", 8, 2),
                Params.Slice.of("b", 12, 8)), p.tensor(3).slices());
        assertEquals(6, p.tensor(3).slices().get(0).length());
        assertEquals(1, Params.Slice.of("s", 0).length(), "a scalar has one element");
    }

    @Test
    void badShapesAndSlicesAreRejectedWithTheirNumbers() {
        assertMessage(IllegalArgumentException.class, () -> Params.builder().add("w", new float[6], 2, 2),
                "tensor \"w\" has 6 elements, its shape [2, 2] has 4");
        assertMessage(IllegalArgumentException.class,
                () -> Params.builder().add("w", new float[6]).slice("a", 0, 4).slice("b", 2, 2).build(),
                "slice \"b\" starts at 2, inside the slice before it (which ends at 4)");
        assertMessage(IllegalArgumentException.class,
                () -> Params.builder().add("w", new float[6]).slice("a", 4, 3).build(),
                "slice \"a\" [3] at offset 4 ends at 7, past its 6 elements");
        assertMessage(IllegalArgumentException.class,
                () -> Params.builder().add("w", new float[6]).slice("a", 0, 2, -1).build(), "negative size");
        assertMessage(IllegalArgumentException.class,
                () -> Params.builder().add("w", new float[6]).slice("a", 0, 3)
                        .add("v", new float[3]).slice("a", 0, 3).build(), "two slices named \"a\"");
        assertMessage(IllegalStateException.class, () -> Params.builder().slice("a", 0, 1),
                "add a tensor before naming its slices");
        assertMessage(IllegalArgumentException.class, () -> Params.builder().add("", new float[1]),
                "tensor name is empty");
        assertThrows(NullPointerException.class, () -> Params.builder().add("x", (float[]) null));
    }
}
