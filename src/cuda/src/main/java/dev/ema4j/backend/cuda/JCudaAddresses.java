package dev.ema4j.backend.cuda;

import java.lang.reflect.Field;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUstream;

/**
 * The raw address behind a JCuda handle. JCuda keeps it in two private fields, {@code nativePointer} and (for
 * pointers) {@code byteOffset}, and its {@code equals} ignores the offset, so {@code base.withByteOffset(a)} and
 * {@code base.withByteOffset(b)} compare equal; ema4j reads the fields instead (JCuda's packages are open: it is
 * on the class path or an automatic module).
 */
public final class JCudaAddresses {

    private static final Field NATIVE_POINTER = field(NativePointerObject.class, "nativePointer");
    private static final Field BYTE_OFFSET = field(Pointer.class, "byteOffset");

    private JCudaAddresses() {
    }

    /** {@code nativePointer + byteOffset}: the address the driver sees for {@code handle}. */
    public static long of(NativePointerObject handle) {
        try {
            long address = NATIVE_POINTER.getLong(handle);
            return handle instanceof Pointer ? address + BYTE_OFFSET.getLong(handle) : address;
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot read JCuda's pointer fields", e);
        }
    }

    /** A JCuda stream handle for the raw {@code CUstream} {@code address} (0: the legacy default stream). */
    static CUstream stream(long address) {
        return withAddress(new CUstream(), address);
    }

    /**
     * A JCuda event handle for the raw {@code CUevent} {@code address}.
     *
     * @throws IllegalArgumentException if the address is 0 (no event)
     */
    static CUevent event(long address) {
        if (address == 0) {
            throw new IllegalArgumentException("event is 0: not a CUevent");
        }
        return withAddress(new CUevent(), address);
    }

    private static <T extends NativePointerObject> T withAddress(T handle, long address) {
        try {
            NATIVE_POINTER.setLong(handle, address);
            return handle;
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot set JCuda's pointer field", e);
        }
    }

    private static Field field(Class<?> type, String name) {
        try {
            Field f = type.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ExceptionInInitializerError("JCuda " + type.getName() + "." + name + " is not readable: " + e);
        }
    }
}
