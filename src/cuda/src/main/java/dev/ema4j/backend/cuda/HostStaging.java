package dev.ema4j.backend.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;

/**
 * Host-to-device copies through two pinned (page-locked) staging buffers used in turn: the data is copied into a
 * slot on the host, then to the device asynchronously on the stream, and the call returns at once. Before a slot is
 * refilled, the host waits for that slot's previous copy (an event), so one copy can be in flight while the next
 * batch is staged and the kernels of the step run: double buffering, with no synchronization of the stream.
 */
final class HostStaging implements AutoCloseable {

    /** The largest piece one slot holds: 64 MiB of pinned memory. */
    static final int MAX_PIECE_BYTES = 1 << 26;

    private final Slot[] slots = {new Slot(), new Slot()};
    private int next;

    /** One pinned buffer and the event recorded after its last copy. */
    private static final class Slot {
        Pointer memory;
        long capacity;
        CUevent copied;
    }

    /**
     * Copies {@code src[offset, offset + length)} to {@code dst}, in stream order; src may change after the call.
     * Large copies go in pieces of {@link #MAX_PIECE_BYTES}, alternating slots, so a slot stays small.
     */
    void copy(float[] src, int offset, int length, CUdeviceptr dst, CUstream stream) {
        inPieces(length, Float.BYTES, dst, stream,
                (slot, from, count) -> slot.asFloatBuffer().put(src, offset + from, count));
    }

    /** Copies {@code src} to {@code dst}, in stream order; src may change after the call. */
    void copy(int[] src, CUdeviceptr dst, CUstream stream) {
        inPieces(src.length, Integer.BYTES, dst, stream, (slot, from, count) -> slot.asIntBuffer().put(src, from, count));
    }

    /** Copies the 16-bit values of {@code src} to {@code dst}, in stream order; src may change after the call. */
    void copy(short[] src, CUdeviceptr dst, CUstream stream) {
        inPieces(src.length, Short.BYTES, dst, stream,
                (slot, from, count) -> slot.asShortBuffer().put(src, from, count));
    }

    /**
     * Copies {@code src[offset, offset + length)} (absolute indices; the buffer's position is not used or changed) to
     * {@code dst}, in stream order; src may change after the call.
     */
    void copy(FloatBuffer src, int offset, int length, CUdeviceptr dst, CUstream stream) {
        inPieces(length, Float.BYTES, dst, stream,
                (slot, from, count) -> slot.asFloatBuffer().put(0, src, offset + from, count));
    }

    /** Puts {@code count} values of the source, from index {@code from}, into a slot. */
    @FunctionalInterface
    private interface Fill {
        void into(ByteBuffer slot, int from, int count);
    }

    private void inPieces(int length, int unit, CUdeviceptr dst, CUstream stream, Fill fill) {
        int perPiece = MAX_PIECE_BYTES / unit;
        for (int done = 0; done < length; done += perPiece) {
            int piece = Math.min(perPiece, length - done);
            long bytes = (long) unit * piece;
            Slot slot = slot(bytes);
            fill.into(slot.memory.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder()), done, piece);
            send(slot, dst.withByteOffset((long) unit * done), bytes, stream);
        }
    }

    /** The next slot, once its previous copy is done, with room for {@code bytes}. */
    private Slot slot(long bytes) {
        Slot slot = slots[next];
        next = 1 - next;
        if (slot.copied == null) {
            slot.copied = new CUevent();
            cuEventCreate(slot.copied, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        } else {
            cuEventSynchronize(slot.copied);
        }
        if (slot.capacity < bytes) {
            if (slot.memory != null) {
                cuMemFreeHost(slot.memory);
                slot.memory = null;
                slot.capacity = 0;
            }
            long capacity = Math.max(bytes, 1 << 16);
            Pointer memory = new Pointer();
            cuMemHostAlloc(memory, capacity, 0);
            slot.memory = memory;
            slot.capacity = capacity;
        }
        return slot;
    }

    private static void send(Slot slot, CUdeviceptr dst, long bytes, CUstream stream) {
        cuMemcpyHtoDAsync(dst, slot.memory, bytes, stream);
        cuEventRecord(slot.copied, stream);
    }

    /** Frees the pinned buffers; the caller has synchronized the stream. */
    @Override
    public void close() {
        for (Slot slot : slots) {
            if (slot.memory != null) {
                cuMemFreeHost(slot.memory);
                slot.memory = null;
            }
            if (slot.copied != null) {
                cuEventDestroy(slot.copied);
                slot.copied = null;
            }
        }
    }
}
