package dev.ema4j.backend.cpu;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.BackendServices;
import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.NonFiniteGuard;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.ParamSnapshot;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.IntConsumer;

/**
 * The CPU backend: buffers are Java arrays, and every operation is a multithreaded pass in plain Java whose inner
 * loops C2 compiles to SIMD code. Parameters in host memory ({@code float[]}, {@code short[]}, {@code FloatBuffer})
 * are used in place; CUDA device memory is refused.
 */
public final class CpuBackend implements Backend {

    /** Largest buffer, in elements (a Java array). */
    public static final long MAX_LENGTH = Integer.MAX_VALUE - 8;
    /**
     * Elements of a parameter block that every shadow reads while it is in cache (64 KiB of fp32); bf16, fp16 and
     * direct-buffer parameters are widened into a float[] block first.
     */
    private static final int BLOCK = 16384;

    private final CpuThreads threads;
    private final BackendServices services = new BackendServices();
    private final Set<CpuBuffer> buffers = Collections.newSetFromMap(new IdentityHashMap<>());
    private long snapshotBytes;
    private boolean closed;

    /** A CPU backend with one thread per available processor, or {@code -Dema4j.cpu.threads=N}. */
    public CpuBackend() {
        this(Integer.getInteger("ema4j.cpu.threads", Runtime.getRuntime().availableProcessors()));
    }

    /** A CPU backend running its operations on {@code threads} threads (the caller's included). */
    public CpuBackend(int threads) {
        this.threads = new CpuThreads(threads);
    }

    @Override
    public String name() {
        return "cpu (" + threads.threads() + (threads.threads() == 1 ? " thread)" : " threads)");
    }

    @Override
    public DeviceBuffer allocate(DType dtype, long length) {
        checkOpen();
        Checks.allocation(dtype, length, MAX_LENGTH);
        CpuBuffer b = new CpuBuffer(this, dtype, (int) length);
        buffers.add(b);
        return b;
    }

    /** The number of threads operations run on (the caller's included). */
    public int threadCount() {
        return threads.threads();
    }

    /**
     * Runs {@code body} for the items {@code 0 .. items-1} on this backend's threads (the caller's included, items
     * taken in turn) and returns when all are done; rethrows the first failure. For operations of other modules
     * (the training module's) that share these threads.
     */
    public void parallelFor(int items, IntConsumer body) {
        checkOpen();
        threads.forEach(items, body);
    }

    /**
     * The heap array behind an F32 buffer of this backend, without copying: valid until the buffer is closed or
     * its storage {@linkplain DeviceBuffer#swapStorage swapped}. For operations of other modules on these buffers.
     *
     * @throws IllegalArgumentException if the buffer belongs to another backend or is not F32
     * @throws IllegalStateException if the buffer is closed
     */
    public float[] floats(DeviceBuffer buffer) {
        checkOpen();
        Checks.owned(this, buffer, "buffer");
        if (buffer.dtype() != DType.F32) {
            throw new IllegalArgumentException("buffer is " + buffer.dtype() + "; only F32 buffers hold a float[]");
        }
        return ((CpuBuffer) buffer).floats();
    }

    void released(CpuBuffer buffer) {
        buffers.remove(buffer);
    }

    @Override
    public void write(float[] src, int srcOffset, DeviceBuffer dst, long dstOffset, int length) {
        checkOpen();
        Checks.copy(this, src, srcOffset, dst, dstOffset, length);
        System.arraycopy(src, srcOffset, ((CpuBuffer) dst).floats(), (int) dstOffset, length);
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, float[] dst, int dstOffset, int length) {
        checkOpen();
        Checks.copy(this, dst, dstOffset, src, srcOffset, length);
        System.arraycopy(((CpuBuffer) src).floats(), (int) srcOffset, dst, dstOffset, length);
    }

    @Override
    public ParamTable bind(Params params) {
        checkOpen();
        Objects.requireNonNull(params, "params");
        for (int i = 0; i < params.size(); i++) {
            Params.Tensor t = params.tensor(i);
            String what = "params tensor " + i + " (" + t.name() + ")";
            if (t.storage() instanceof Params.DevicePointer) {
                throw new IllegalArgumentException(what + " is CUDA device memory; backend " + name()
                        + " needs host memory or its own buffers");
            }
            if (t.storage() instanceof Params.Device d) {
                Checks.owned(this, d.buffer(), what);
            }
            if (t.length() > MAX_LENGTH) {
                throw new IllegalArgumentException(what + " has " + t.length() + " elements; at most " + MAX_LENGTH);
            }
        }
        ParamLayout layout = ParamLayout.of(params);
        if (layout.shadowLength() > MAX_LENGTH) {
            throw new IllegalArgumentException("params need shadows of " + layout.shadowLength()
                    + " floats; backend " + name() + " holds at most " + MAX_LENGTH + " per buffer");
        }
        return new CpuParamTable(this, params, layout);
    }

    @Override
    public void emaLerp(ParamTable params, List<DeviceBuffer> shadows, float[] weights, NonFiniteGuard guard) {
        checkOpen();
        CpuParamTable table = own(params);
        Checks.emaLerp(this, table, shadows, weights);
        CpuGuard g = guard == null ? null : own(guard);
        HostView[] views = table.views();
        float[][] e = shadows.stream().map(s -> ((CpuBuffer) s).floats()).toArray(float[][]::new);
        float[] w = weights.clone();
        if (g != null) {
            g.raised = !allFinite(table, views);
            if (g.raised) {
                g.skipped++;
                return;
            }
        }
        threads.forEach(table.items().size(), i -> {
            CpuParamTable.Item item = table.items().get(i);
            lerp(views[item.tensor()], item.from(), item.to(), e, (int) table.layout().shadowOffset(item.tensor()), w);
        });
    }

    private static void lerp(HostView p, int from, int to, float[][] e, int shadowOffset, float[] w) {
        float[] pa = p.floatArray();
        if (pa != null && p.arrayOffset() == shadowOffset) {
            Lerp.update(pa, e, w, shadowOffset + from, shadowOffset + to);  // NOTE: [same-index] in Lerp
            return;
        }
        float[] block = pa == null ? new float[Math.min(BLOCK, to - from)] : null;
        for (int b = from; b < to; b += BLOCK) {
            int n = Math.min(BLOCK, to - b);
            float[] src = pa;
            int srcOff = p.arrayOffset() + b;
            if (pa == null) {
                p.widen(b, block, n);
                src = block;
                srcOff = 0;
            }
            for (int k = 0; k < e.length; k++) {
                Lerp.lerp(src, srcOff, e[k], shadowOffset + b, n, w[k]);
            }
        }
    }

    private boolean allFinite(CpuParamTable table, HostView[] views) {
        AtomicBoolean bad = new AtomicBoolean();
        threads.forEach(table.items().size(), i -> {
            CpuParamTable.Item item = table.items().get(i);
            if (!bad.get() && !views[item.tensor()].allFinite(item.from(), item.to())) {
                bad.set(true);
            }
        });
        return !bad.get();
    }

    @Override
    public void checkFinite(ParamTable params, NonFiniteGuard guard) {
        checkOpen();
        CpuParamTable table = own(params);
        Objects.requireNonNull(guard, "guard");
        CpuGuard g = own(guard);
        g.raised = !allFinite(table, table.views());
    }

    @Override
    public void toShadow(ParamTable params, DeviceBuffer shadow) {
        checkOpen();
        CpuParamTable table = own(params);
        Checks.shadow(this, table.layout().shadowLength(), shadow, "shadow");
        HostView[] views = table.views();
        float[] e = ((CpuBuffer) shadow).floats();
        threads.forEach(table.items().size(), i -> {
            CpuParamTable.Item item = table.items().get(i);
            int offset = (int) table.layout().shadowOffset(item.tensor());
            float[] block = new float[item.to() - item.from()];
            views[item.tensor()].widen(item.from(), block, block.length);
            System.arraycopy(block, 0, e, offset + item.from(), block.length);
        });
    }

    @Override
    public void fromShadow(DeviceBuffer shadow, ParamTable params) {
        checkOpen();
        CpuParamTable table = own(params);
        Checks.shadow(this, table.layout().shadowLength(), shadow, "shadow");
        Checks.writable(table.params());
        HostView[] views = table.views();
        float[] e = ((CpuBuffer) shadow).floats();
        threads.forEach(table.items().size(), i -> {
            CpuParamTable.Item item = table.items().get(i);
            int offset = (int) table.layout().shadowOffset(item.tensor());
            views[item.tensor()].narrow(e, offset + item.from(), item.from(), item.to() - item.from());
        });
    }

    @Override
    public ParamSnapshot snapshot(ParamTable params) {
        checkOpen();
        CpuParamTable table = own(params);
        Checks.writable(table.params());
        HostView[] views = table.views();
        Object[] copies = new Object[views.length];
        long bytes = 0;
        for (int i = 0; i < views.length; i++) {
            copies[i] = views[i].copy();
            bytes += views[i].copyBytes();
        }
        snapshotBytes += bytes;
        long size = bytes;
        return new ParamSnapshot() {
            private boolean released;

            @Override
            public void restore() {
                checkOpen();
                if (released) {
                    throw new IllegalStateException("snapshot is closed");
                }
                HostView[] now = table.views();
                for (int i = 0; i < now.length; i++) {
                    now[i].restore(copies[i]);
                }
            }

            @Override
            public void close() {
                if (!released) {
                    released = true;
                    snapshotBytes -= size;
                }
            }
        };
    }

    @Override
    public NonFiniteGuard newGuard() {
        checkOpen();
        return new CpuGuard(this);
    }

    @Override
    public <T> T service(Class<T> type, Function<? super Backend, ? extends T> factory) {
        checkOpen();
        return services.get(this, type, factory);
    }

    @Override
    public void synchronize() {
        checkOpen();
    }

    @Override
    public long allocatedBytes() {
        long bytes = snapshotBytes;
        for (CpuBuffer b : buffers) {
            bytes += b.byteSize();
        }
        return bytes;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                services.close();
            } finally {
                buffers.forEach(CpuBuffer::invalidate);
                buffers.clear();
                snapshotBytes = 0;
                threads.close();
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("backend " + name() + " is closed");
        }
    }

    private CpuParamTable own(ParamTable params) {
        Objects.requireNonNull(params, "params");
        if (!(params instanceof CpuParamTable t) || t.backend() != this) {
            throw new IllegalArgumentException("params table was bound by another backend, not " + name());
        }
        if (t.isClosed()) {
            throw new IllegalStateException("params table is closed");
        }
        return t;
    }

    private CpuGuard own(NonFiniteGuard guard) {
        if (!(guard instanceof CpuGuard g) || g.backend != this) {
            throw new IllegalArgumentException("guard belongs to another backend, not " + name());
        }
        if (g.closed) {
            throw new IllegalStateException("guard is closed");
        }
        return g;
    }

    @Override
    public String toString() {
        return name();
    }

    /** The guard's flag and counter, in host memory. */
    private static final class CpuGuard implements NonFiniteGuard {
        private final CpuBackend backend;
        private boolean raised;
        private long skipped;
        private boolean closed;

        CpuGuard(CpuBackend backend) {
            this.backend = backend;
        }

        @Override
        public boolean raised() {
            check();
            return raised;
        }

        @Override
        public long skippedUpdates() {
            check();
            return skipped;
        }

        @Override
        public void setSkippedUpdates(long count) {
            check();
            if (count < 0) {
                throw new IllegalArgumentException("count is " + count + "; must be >= 0");
            }
            skipped = count;
        }

        private void check() {
            backend.checkOpen();
            if (closed) {
                throw new IllegalStateException("guard is closed");
            }
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
