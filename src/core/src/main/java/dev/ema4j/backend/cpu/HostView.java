package dev.ema4j.backend.cpu;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.HalfFloats;
import java.nio.FloatBuffer;

/**
 * Element access to one parameter tensor in host memory, whatever holds it: a {@code float[]}, a {@code short[]}
 * of bf16/fp16 bits, or a {@link FloatBuffer}. Indices are relative to the tensor's first element.
 */
abstract sealed class HostView {

    /** The backing fp32 array when the tensor is one (then {@link #arrayOffset()} locates element 0), else null. */
    float[] floatArray() {
        return null;
    }

    int arrayOffset() {
        return 0;
    }

    /** {@code dst[0 .. n) ← fp32(element[from .. from + n))}. */
    abstract void widen(int from, float[] dst, int n);

    /** {@code element[from .. from + n) ← round(src[srcOff .. srcOff + n))}. */
    abstract void narrow(float[] src, int srcOff, int from, int n);

    /** Whether {@code element[from .. to)} holds no NaN or infinity. */
    abstract boolean allFinite(int from, int to);

    /** A copy of all elements, for {@link #restore}. */
    abstract Object copy();

    /** Writes back a {@link #copy()}. */
    abstract void restore(Object copy);

    /** Bytes a {@link #copy()} takes. */
    abstract long copyBytes();

    static HostView of(float[] a) {
        return new FloatArrayView(a, 0, a.length);
    }

    static HostView of(short[] a, DType dtype) {
        return new ShortArrayView(a, dtype);
    }

    static HostView of(FloatBuffer b, int offset, int length) {
        return b.hasArray() ? new FloatArrayView(b.array(), b.arrayOffset() + offset, length)
                : new FloatBufferView(b, offset, length);
    }

    static final class FloatArrayView extends HostView {
        private final float[] a;
        private final int offset;
        private final int length;

        FloatArrayView(float[] a, int offset, int length) {
            this.a = a;
            this.offset = offset;
            this.length = length;
        }

        @Override
        float[] floatArray() {
            return a;
        }

        @Override
        int arrayOffset() {
            return offset;
        }

        @Override
        void widen(int from, float[] dst, int n) {
            System.arraycopy(a, offset + from, dst, 0, n);
        }

        @Override
        void narrow(float[] src, int srcOff, int from, int n) {
            System.arraycopy(src, srcOff, a, offset + from, n);
        }

        @Override
        boolean allFinite(int from, int to) {
            return Lerp.allFinite(a, offset + from, offset + to);
        }

        @Override
        Object copy() {
            float[] c = new float[length];
            System.arraycopy(a, offset, c, 0, length);
            return c;
        }

        @Override
        void restore(Object copy) {
            System.arraycopy((float[]) copy, 0, a, offset, length);
        }

        @Override
        long copyBytes() {
            return 4L * length;
        }
    }

    static final class ShortArrayView extends HostView {
        private final short[] a;
        private final boolean bf16;

        ShortArrayView(short[] a, DType dtype) {
            this.a = a;
            this.bf16 = dtype == DType.BF16;
        }

        @Override
        void widen(int from, float[] dst, int n) {
            if (bf16) {
                for (int i = 0; i < n; i++) {
                    dst[i] = Float.intBitsToFloat(a[from + i] << 16);
                }
            } else {
                for (int i = 0; i < n; i++) {
                    dst[i] = HalfFloats.f16ToFloat(a[from + i]);
                }
            }
        }

        @Override
        void narrow(float[] src, int srcOff, int from, int n) {
            for (int i = 0; i < n; i++) {
                a[from + i] = bf16 ? HalfFloats.floatToBf16(src[srcOff + i]) : HalfFloats.floatToF16(src[srcOff + i]);
            }
        }

        @Override
        boolean allFinite(int from, int to) {
            return Lerp.allFinite(a, from, to, bf16 ? 0x7f80 : 0x7c00);
        }

        @Override
        Object copy() {
            return a.clone();
        }

        @Override
        void restore(Object copy) {
            System.arraycopy((short[]) copy, 0, a, 0, a.length);
        }

        @Override
        long copyBytes() {
            return 2L * a.length;
        }
    }

    static final class FloatBufferView extends HostView {
        private static final int BLOCK = 4096;
        private final FloatBuffer b;
        private final int offset;
        private final int length;

        FloatBufferView(FloatBuffer b, int offset, int length) {
            this.b = b;
            this.offset = offset;
            this.length = length;
        }

        @Override
        void widen(int from, float[] dst, int n) {
            b.get(offset + from, dst, 0, n);
        }

        @Override
        void narrow(float[] src, int srcOff, int from, int n) {
            b.put(offset + from, src, srcOff, n);
        }

        @Override
        boolean allFinite(int from, int to) {
            float[] block = new float[Math.min(BLOCK, to - from)];
            for (int i = from; i < to; i += BLOCK) {
                int n = Math.min(BLOCK, to - i);
                widen(i, block, n);
                if (!Lerp.allFinite(block, 0, n)) {
                    return false;
                }
            }
            return true;
        }

        @Override
        Object copy() {
            float[] c = new float[length];
            b.get(offset, c, 0, length);
            return c;
        }

        @Override
        void restore(Object copy) {
            b.put(offset, (float[]) copy, 0, length);
        }

        @Override
        long copyBytes() {
            return 4L * length;
        }
    }
}
