package dev.ema4j.backend.cuda;

import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * A parameter set bound to the CUDA backend: the tensor table and chunk map the foreach kernels read (layouts
 * {@code EmaTensor} and {@code EmaChunk} in cuda/ema.cu), kept in device memory, plus device staging for tensors
 * in host memory. The tensor table is uploaded again only when a tensor's address changes (a
 * {@link dev.ema4j.backend.DeviceBuffer#swapStorage swap}).
 */
final class CudaParamTable implements ParamTable {

    /** Elements per chunk of a foreach launch; a multiple of every vector width. */
    static final int CHUNK = 16384;
    private static final int TENSOR_BYTES = 32;
    private static final int CHUNK_BYTES = 16;

    private final CudaBackend backend;
    private final Params params;
    private final ParamLayout layout;
    private final long[] pointerAddresses;
    private final CudaMemory[] staging;
    private final CudaMemory tensorTable;
    private final CudaMemory chunkMap;
    private final int chunks;
    private long[] uploaded;
    private boolean closed;

    /**
     * @param pointerAddresses raw addresses of the {@link Params.DevicePointer} tensors (0 for others)
     * @param staging device copies of the host tensors (null for others)
     */
    CudaParamTable(CudaBackend backend, Params params, long[] pointerAddresses, CudaMemory[] staging) {
        this.backend = backend;
        this.params = params;
        this.layout = ParamLayout.of(params);
        this.pointerAddresses = pointerAddresses;
        this.staging = staging;
        long count = 0;
        for (int i = 0; i < layout.size(); i++) {
            count += (layout.length(i) + CHUNK - 1) / CHUNK;
        }
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("params need " + count + " chunks of " + CHUNK
                    + " elements; at most " + Integer.MAX_VALUE);
        }
        this.chunks = (int) count;
        this.tensorTable = backend.allocateMemory((long) TENSOR_BYTES * layout.size());
        try {
            this.chunkMap = backend.allocateMemory((long) CHUNK_BYTES * chunks);
        } catch (RuntimeException e) {
            backend.free(tensorTable);
            throw e;
        }
        ByteBuffer map = ByteBuffer.allocate(CHUNK_BYTES * chunks).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < layout.size(); i++) {
            for (long begin = 0; begin < layout.length(i); begin += CHUNK) {
                map.putInt(i).putInt(0).putLong(begin);
            }
        }
        backend.upload(map.array(), chunkMap);
    }

    @Override
    public Params params() {
        return params;
    }

    @Override
    public ParamLayout layout() {
        return layout;
    }

    CudaBackend backend() {
        return backend;
    }

    int chunks() {
        return chunks;
    }

    long tensorTableAddress() {
        return tensorTable.address();
    }

    long chunkMapAddress() {
        return chunkMap.address();
    }

    /** The current device address of tensor {@code i}. */
    long address(int i) {
        if (staging[i] != null) {
            return staging[i].address();
        }
        if (params.tensor(i).storage() instanceof Params.Device d) {
            return ((CudaBuffer) d.buffer()).address();
        }
        return pointerAddresses[i];
    }

    /** The device pointer of tensor {@code i} (for copies). */
    CUdeviceptr pointer(int i) {
        if (staging[i] != null) {
            return staging[i].at(0);
        }
        if (params.tensor(i).storage() instanceof Params.Device d) {
            return ((CudaBuffer) d.buffer()).memory().at(0);
        }
        return CudaBackend.pointerAt(pointerAddresses[i]);
    }

    boolean isHost(int i) {
        return staging[i] != null;
    }

    /** Uploads the tensor table when any tensor's address changed since the last upload. */
    void refreshAddresses() {
        checkOpen();
        long[] now = new long[layout.size()];
        for (int i = 0; i < now.length; i++) {
            now[i] = address(i);
        }
        if (Arrays.equals(now, uploaded)) {
            return;
        }
        ByteBuffer table = ByteBuffer.allocate(TENSOR_BYTES * now.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < now.length; i++) {
            table.putLong(now[i]).putLong(layout.length(i)).putLong(layout.shadowOffset(i))
                    .putInt(layout.dtypes().get(i).code()).putInt(0);
        }
        backend.upload(table.array(), tensorTable);
        uploaded = now;
    }

    /**
     * Copies the host tensors into their device staging, in stream order through pinned memory, without waiting for
     * the device (NOTE: [stream-order] in CudaBackend).
     */
    void uploadHost() {
        for (int i = 0; i < staging.length; i++) {
            if (staging[i] != null) {
                backend.stage(params.tensor(i).storage(), staging[i]);
            }
        }
    }

    /** Copies the device staging back into the host tensors. */
    void downloadHost() {
        for (int i = 0; i < staging.length; i++) {
            if (staging[i] == null) {
                continue;
            }
            Params.Storage t = params.tensor(i).storage();
            if (t instanceof Params.Floats f && !isDirectCopy(f)) {
                float[] copy = new float[f.count()];
                backend.deviceToHost(staging[i], Pointer.to(copy), staging[i].bytes);
                f.buffer().put(f.offset(), copy, 0, copy.length);
            } else {
                backend.deviceToHost(staging[i], hostSource(t), staging[i].bytes);
            }
        }
    }

    /**
     * A pointer to the tensor's host memory, or to a copy of it. JCuda copies raw bytes from an array or a direct
     * buffer, so a FloatBuffer it cannot address in native order (read-only or a view of a heap ByteBuffer, or a
     * direct buffer in big-endian order) goes through a float[].
     */
    private static Pointer hostSource(Params.Storage tensor) {
        if (tensor instanceof Params.FloatArray t) {
            return Pointer.to(t.array());
        } else if (tensor instanceof Params.HalfArray t) {
            return Pointer.to(t.array());
        }
        Params.Floats f = (Params.Floats) tensor;
        if (isDirectCopy(f)) {
            return Pointer.toBuffer(f.buffer().duplicate().position(f.offset()));
        }
        float[] copy = new float[f.count()];
        f.buffer().get(f.offset(), copy, 0, copy.length);
        return Pointer.to(copy);
    }

    private static boolean isDirectCopy(Params.Floats f) {
        FloatBuffer b = f.buffer();
        return b.hasArray() || b.isDirect() && b.order() == ByteOrder.nativeOrder();
    }

    boolean isClosed() {
        return closed;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("parameter table is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            backend.free(tensorTable);
            backend.free(chunkMap);
            for (CudaMemory m : staging) {
                if (m != null) {
                    backend.free(m);
                }
            }
        }
    }
}
