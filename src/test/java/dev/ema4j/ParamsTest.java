package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.backend.DType;
import java.nio.FloatBuffer;
import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

/** Which parameter sets count as the same storage (this decides when a bound launch plan is reused). */
class ParamsTest {

    private static Params device(CUdeviceptr p) {
        return Params.ofDevice(DType.F32, new CUdeviceptr[] {p}, new long[] {100});
    }

    @Test
    void devicePointersCompareByAddressIncludingJCudasByteOffset() {
        CUdeviceptr base = new CUdeviceptr();
        Params a = device(base.withByteOffset(4096));
        assertTrue(a.sameStorage(device(base.withByteOffset(4096))), "a new object for the same address");
        assertFalse(a.sameStorage(device(base.withByteOffset(8192))), "another address");
        assertEquals(4096, ((Params.DevicePointer) a.tensor(0)).address());
        assertFalse(a.sameStorage(Params.ofDevice(DType.BF16, new CUdeviceptr[] {base.withByteOffset(4096)},
                new long[] {100})), "another dtype");
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
    void badArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> Params.ofDevice(DType.F32, new CUdeviceptr[] {new CUdeviceptr()}, new long[] {-1}));
        assertThrows(IllegalArgumentException.class,
                () -> Params.ofDevice(DType.F32, new CUdeviceptr[] {new CUdeviceptr()}, new long[] {1, 2}));
        assertThrows(IllegalArgumentException.class, () -> Params.builder().add("", new float[1]));
        assertThrows(NullPointerException.class, () -> Params.builder().add("x", (float[]) null));
    }
}
