package dev.ema4j.backend.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemGetAddressRange;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuMemsetD8Async;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadDataJIT;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static jcuda.driver.JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor;
import static jcuda.driver.JCudaDriver.cuPointerGetAttribute;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.BackendServices;
import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.NonFiniteGuard;
import dev.ema4j.backend.ParamSnapshot;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUjit_option;
import jcuda.driver.CUmodule;
import jcuda.driver.CUpointer_attribute;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JITOptions;

/**
 * The CUDA backend: the kernels of cuda/ema.cu, loaded from the packaged PTX into the device's primary context
 * (the one the CUDA runtime and PyTorch use) and launched on one stream through the JCuda driver API.
 *
 * <p>Other modules run their own kernels on the same device and stream through the public methods of the section
 * "for other modules" ({@link #loadModule}, {@link #launch}, {@link #address}, ...): the training module's
 * operations do.
 *
 * <p>NOTE: [stream-order]. Every operation of a backend runs on one stream: its own blocking stream
 * ({@link #open}), or a stream the caller gives ({@link #openOnStream}: another library's stream, blocking or not,
 * which the backend never destroys). Nothing relies on the legacy default stream: copies to the device run on the
 * stream ({@link #write}, host parameters and labels through the pinned double buffer of {@link HostStaging}, which
 * returns at once and only waits for a slot's previous copy; small tables with {@code cuMemcpyHtoDAsync}), and a
 * copy to the host first waits for the stream, then copies. So the host waits for the device only when it reads:
 * {@link #read}, {@link #synchronize}, a guard's {@link NonFiniteGuard#raised()}/{@code skippedUpdates()} (and so
 * {@code NonFinitePolicy.THROW}, {@code GpuEma.stats()}), copies of shadows into host parameters, and freeing memory.
 * To order the backend's work with another stream, {@link #waitFor} makes the backend's stream wait for an event
 * recorded there, and {@link #record} records an event after the backend's work. Set {@code -Dema4j.cuda.sync=true}
 * to synchronize after every launch, so asynchronous errors surface at the launch that caused them.
 *
 * <p>NOTE: [cuda-errors]. A CUDA error is thrown as a {@link CudaException} whose message names what failed: a
 * launch gives its kernel, module, grid, block and arguments ({@code relu_forward_f32<<<(1,1,1), (2048,1,1)>>>(0x...,
 * 0x..., 24) of cuda/elementwise.cu failed: CUDA_ERROR_INVALID_VALUE}); a module load gives the module and the JIT
 * compiler's error log; other calls say which copy, allocation or synchronization failed. An error that a kernel
 * left behind ({@code CUDA_ERROR_ILLEGAL_ADDRESS}, {@code CUDA_ERROR_LAUNCH_FAILED}, ...) surfaces at a later call;
 * the message then says so, and, without sync mode, that the failing operation is unknown and how to find it.
 */
public final class CudaBackend implements Backend {

    private static final int BLOCK = 256;
    private static final int SHADOWS_STRUCT_BYTES = 104;
    /** Bytes of each log buffer (error, info) that the JIT compiler fills while it loads a module. */
    private static final int JIT_LOG_BYTES = 16 * 1024;
    private static final Pattern PTX_ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_$][\\w$]*)");
    /**
     * Errors of kernels that ran (sticky errors of the context): they surface at a later call that reaches the
     * device, not at the launch (NOTE: [cuda-errors]).
     */
    private static final Set<String> ASYNCHRONOUS_ERRORS = IntStream.of(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS,
                    CUresult.CUDA_ERROR_LAUNCH_FAILED, CUresult.CUDA_ERROR_LAUNCH_TIMEOUT,
                    CUresult.CUDA_ERROR_MISALIGNED_ADDRESS, CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION,
                    CUresult.CUDA_ERROR_INVALID_ADDRESS_SPACE, CUresult.CUDA_ERROR_INVALID_PC,
                    CUresult.CUDA_ERROR_HARDWARE_STACK_ERROR, CUresult.CUDA_ERROR_ASSERT,
                    CUresult.CUDA_ERROR_ECC_UNCORRECTABLE)
            .mapToObj(CUresult::stringFor).collect(Collectors.toUnmodifiableSet());

    private final int ordinal;
    private final String name;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final CUstream stream;
    /** Whether the stream is the backend's own (destroyed on close) rather than the caller's. */
    private final boolean ownsStream;
    private final CUmodule module;
    private final List<CUmodule> extraModules = new ArrayList<>();
    private final Kernels kernels;
    /** Every kernel of the modules loaded here, by handle (JCuda compares {@link CUfunction}s by handle). */
    private final Map<CUfunction, Kernel> kernelsByHandle = new HashMap<>();
    /** Blocks of a kernel that a multiprocessor holds at once, per block size (cuOccupancy...). */
    private final Map<Occupancy, Integer> residentBlocks = new HashMap<>();
    private final int multiprocessors;
    private final HostStaging staging = new HostStaging();
    private final BackendServices services = new BackendServices();
    private final boolean syncEachLaunch;
    private final Set<CudaMemory> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private long liveBytes;
    private boolean closed;
    private long storageSwaps;

    private record Kernels(CUfunction lerpF32, CUfunction lerpBf16, CUfunction lerpF16, CUfunction lerpForeach,
                           CUfunction checkForeach, CUfunction toShadowForeach, CUfunction fromShadowForeach) {
        CUfunction flat(DType dtype) {
            return switch (dtype) {
                case F32 -> lerpF32;
                case BF16 -> lerpBf16;
                case F16 -> lerpF16;
            };
        }
    }

    /** A kernel of a module this backend loaded: its name and source file (for messages) and its handle. */
    record Kernel(String name, String source, CUfunction function) {
    }

    private record Occupancy(CUfunction function, int blockSize) {
    }

    /** A CUDA error whose message already names the operation that failed (NOTE: [cuda-errors]). */
    private static final class Failure extends CudaException {
        Failure(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private CudaBackend(int ordinal, boolean syncEachLaunch, CUstream givenStream) {
        this.ordinal = ordinal;
        this.syncEachLaunch = syncEachLaunch;
        this.ownsStream = givenStream == null;
        this.stream = ownsStream ? new CUstream() : givenStream;
        cuDeviceGet(device, ordinal);
        cuDevicePrimaryCtxRetain(context, device);
        boolean streamCreated = false;
        CUmodule loaded = null;
        try {
            cuCtxSetCurrent(context);
            if (ownsStream) {
                cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT);
                streamCreated = true;
            }
            loaded = loadPtx("ema", readPtx("ema"));
            module = loaded;
            kernels = new Kernels(function(module, "ema_lerp_f32"), function(module, "ema_lerp_bf16"),
                    function(module, "ema_lerp_f16"), function(module, "ema_lerp_foreach"),
                    function(module, "ema_check_foreach"), function(module, "ema_to_shadow_foreach"),
                    function(module, "ema_from_shadow_foreach"));
            int[] value = new int[1];
            cuDeviceGetAttribute(value, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
            multiprocessors = value[0];
            name = "cuda:" + ordinal + " " + CudaProbe.deviceName(ordinal);
        } catch (RuntimeException e) {
            if (loaded != null) {
                CUmodule m = loaded;
                cleanUp(e, () -> cuModuleUnload(m));
            }
            if (streamCreated) {
                cleanUp(e, () -> cuStreamDestroy(stream));
            }
            cleanUp(e, () -> cuDevicePrimaryCtxRelease(device));
            throw e;
        }
    }

    /** Runs a clean-up step, adding its failure to {@code failure} instead of hiding it. */
    private static void cleanUp(RuntimeException failure, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
    }

    /**
     * Opens device {@code ordinal}.
     *
     * @throws IllegalStateException with the reason when CUDA is unavailable ({@link CudaProbe#availability()})
     * @throws IllegalArgumentException when no device has that ordinal
     */
    public static CudaBackend open(int ordinal) {
        return open(ordinal, Boolean.getBoolean("ema4j.cuda.sync"));
    }

    /** {@link #open(int)}, with sync mode ({@code -Dema4j.cuda.sync}) given. */
    static CudaBackend open(int ordinal, boolean syncEachLaunch) {
        checkOrdinal(ordinal);
        return new CudaBackend(ordinal, syncEachLaunch, null);
    }

    /**
     * Opens device {@code ordinal} with every operation on the caller's stream {@code stream} (a raw
     * {@code CUstream}/{@code cudaStream_t} handle of the device's primary context, as another library hands it out,
     * e.g. PyTorch's {@code torch.cuda.current_stream().cuda_stream}; 0 is the legacy default stream). The backend's
     * work is then ordered with the caller's on that stream, blocking or non-blocking (NOTE: [stream-order]); the
     * backend never destroys it, and the stream must outlive the backend.
     *
     * @throws IllegalStateException with the reason when CUDA is unavailable
     * @throws IllegalArgumentException when no device has that ordinal
     */
    public static CudaBackend openOnStream(int ordinal, long stream) {
        checkOrdinal(ordinal);
        return new CudaBackend(ordinal, Boolean.getBoolean("ema4j.cuda.sync"), JCudaAddresses.stream(stream));
    }

    private static void checkOrdinal(int ordinal) {
        CudaAvailability a = CudaProbe.availability();
        if (!a.available()) {
            throw new IllegalStateException("CUDA backend unavailable: " + a.reason());
        }
        if (ordinal < 0 || ordinal >= a.devices()) {
            throw new IllegalArgumentException("ordinal is " + ordinal + "; this machine has " + a.devices()
                    + " CUDA device(s)");
        }
    }

    /**
     * Makes this backend's stream wait, on the device, for the event {@code event} (a raw {@code CUevent} handle):
     * its next operations start after the work recorded before the event on any stream. The host does not wait.
     */
    public void waitFor(long event) {
        makeCurrent();
        CUevent e = JCudaAddresses.event(event);
        driver("waiting for event 0x" + Long.toHexString(event), () -> cuStreamWaitEvent(stream, e, 0));
    }

    /**
     * Records the event {@code event} (a raw {@code CUevent} handle) on this backend's stream, after every operation
     * issued so far: another stream can wait for it ({@code cuStreamWaitEvent}), the host can
     * ({@code cuEventSynchronize}).
     */
    public void record(long event) {
        makeCurrent();
        CUevent e = JCudaAddresses.event(event);
        driver("recording event 0x" + Long.toHexString(event), () -> cuEventRecord(e, stream));
    }

    /** The packaged PTX built from {@code cuda/<name>.cu}, NUL-terminated. */
    static byte[] readPtx(String name) {
        String resource = name + ".ptx";  // beside this class: dev/ema4j/backend/cuda/
        try (InputStream in = CudaBackend.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + resource + "; rebuild with native/build-ptx.sh");
            }
            byte[] text = in.readAllBytes();
            byte[] terminated = new byte[text.length + 1];
            System.arraycopy(text, 0, terminated, 0, text.length);
            return terminated;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource, e);
        }
    }

    /**
     * Loads NUL-terminated PTX as module {@code name} (built from {@code cuda/<name>.cu}) into the current context and
     * registers its kernels by name. A failure names the module and carries the JIT compiler's logs.
     */
    private CUmodule loadPtx(String name, byte[] ptx) {
        JITOptions jit = new JITOptions();
        jit.putBytes(CUjit_option.CU_JIT_ERROR_LOG_BUFFER, new byte[JIT_LOG_BYTES]);
        jit.putInt(CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, JIT_LOG_BYTES);
        jit.putBytes(CUjit_option.CU_JIT_INFO_LOG_BUFFER, new byte[JIT_LOG_BYTES]);
        jit.putInt(CUjit_option.CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, JIT_LOG_BYTES);
        CUmodule m = new CUmodule();
        int result = cuModuleLoadDataJIT(m, Pointer.to(ptx), jit);  // cuModuleLoadDataEx; returns its code
        if (result != CUresult.CUDA_SUCCESS) {
            String errors = jit.getString(CUjit_option.CU_JIT_ERROR_LOG_BUFFER).strip();
            String info = jit.getString(CUjit_option.CU_JIT_INFO_LOG_BUFFER).strip();
            throw failure("loading module " + name + " (" + name + ".ptx, built from cuda/" + name + ".cu)",
                    CUresult.stringFor(result),
                    (errors.isEmpty() ? "; the JIT compiler wrote no error log" : "; JIT error log:\n" + errors)
                            + (info.isEmpty() ? "" : "\nJIT info log:\n" + info), null);
        }
        try {
            Matcher entry = PTX_ENTRY.matcher(new String(ptx, StandardCharsets.US_ASCII));
            while (entry.find()) {
                CUfunction f = function(m, entry.group(1));
                kernelsByHandle.put(f, new Kernel(entry.group(1), "cuda/" + name + ".cu", f));
            }
        } catch (RuntimeException e) {
            cleanUp(e, () -> cuModuleUnload(m));
            throw e;
        }
        return m;
    }

    /**
     * Loads the packaged PTX built from {@code cuda/<name>.cu} (the training kernels: {@code conv}, {@code gemm},
     * {@code batchnorm}, {@code pool}, {@code elementwise}, {@code loss}, {@code sgd}) into this backend's context;
     * it is unloaded when the backend closes. Launch failures of its kernels name them (NOTE: [cuda-errors]).
     *
     * @throws CudaException naming the module, with the JIT compiler's error log, if the driver refuses it
     */
    public CUmodule loadModule(String name) {
        return loadModule(name, readPtx(name));
    }

    /** {@link #loadModule(String)} of the given NUL-terminated PTX (tests load corrupted modules with it). */
    CUmodule loadModule(String name, byte[] ptx) {
        makeCurrent();
        CUmodule m = loadPtx(name, ptx);
        extraModules.add(m);
        return m;
    }

    /** The kernel {@code kernel} of a loaded module. */
    public static CUfunction function(CUmodule module, String kernel) {
        CUfunction f = new CUfunction();
        cuModuleGetFunction(f, module, kernel);
        return f;
    }

    /** The kernel of handle {@code f}: one of a module loaded here, or one named by its handle. */
    Kernel kernel(CUfunction f) {
        Kernel k = kernelsByHandle.get(f);
        return k != null ? k : new Kernel("kernel " + f, "a module that this backend did not load", f);
    }

    @Override
    public String name() {
        return name;
    }

    /** The device ordinal. */
    public int ordinal() {
        return ordinal;
    }

    // --- memory --------------------------------------------------------------------------------------------------

    @Override
    public DeviceBuffer allocate(DType dtype, long length) {
        makeCurrent();
        Checks.allocation(dtype, length, Long.MAX_VALUE / 8);
        return new CudaBuffer(this, dtype, length, allocateMemory(length * dtype.byteSize()));
    }

    /**
     * The device address of the first element of {@code buffer}.
     *
     * @throws IllegalArgumentException if the buffer belongs to another backend
     * @throws IllegalStateException if it is closed
     */
    public long address(DeviceBuffer buffer) {
        Checks.owned(this, buffer, "buffer");
        return ((CudaBuffer) buffer).address();
    }

    /**
     * Copies {@code src} into the buffer {@code dst} of 4-byte elements ({@link DType#F32}), bit for bit, in stream
     * order and without waiting (through pinned staging): for integer data of kernels, such as labels.
     */
    public void writeInts(int[] src, DeviceBuffer dst) {
        makeCurrent();
        Objects.requireNonNull(src, "src");
        Checks.owned(this, dst, "dst");
        if (dst.dtype().byteSize() != 4 || dst.length() < src.length) {
            throw new IllegalArgumentException("dst is " + dst + "; " + src.length + " ints need as many 4-byte elements");
        }
        if (src.length > 0) {
            CUdeviceptr to = ((CudaBuffer) dst).memory().at(0);
            driver("copying " + src.length + " ints to the device", () -> staging.copy(src, to, stream));
        }
    }

    /** A zero-filled allocation of at least one byte, owned by this backend's arena. */
    CudaMemory allocateMemory(long bytes) {
        makeCurrent();
        CudaMemory m = new CudaMemory(bytes);
        driver("allocating " + bytes + " bytes of device memory", () -> cuMemAlloc(m.pointer, Math.max(bytes, 16)));
        live.add(m);
        liveBytes += bytes;
        driver("clearing " + bytes + " new bytes of device memory",
                () -> cuMemsetD8Async(m.pointer, (byte) 0, Math.max(bytes, 16), stream));
        return m;
    }

    void free(CudaMemory memory) {
        if (closed || !live.contains(memory)) {
            return;
        }
        makeCurrent();
        try {
            driver("the synchronization before freeing " + memory.bytes + " bytes of device memory",
                    () -> cuStreamSynchronize(stream));
        } finally {
            live.remove(memory);
            liveBytes -= memory.bytes;
            memory.markFreed();
            cuMemFree(memory.pointer);
        }
    }

    /**
     * Copies a small host array to the device in stream order (NOTE: [stream-order]): the driver copies the pageable
     * source before returning, so the array may change afterwards.
     */
    void upload(byte[] bytes, CudaMemory dst) {
        if (bytes.length > 0) {
            CUdeviceptr to = dst.at(0);
            driver("copying " + bytes.length + " bytes to the device",
                    () -> cuMemcpyHtoDAsync(to, Pointer.to(bytes), bytes.length, stream));
        }
    }

    /** Copies a host tensor of a parameter set into its device staging, through pinned memory, in stream order. */
    void stage(Params.Storage host, CudaMemory dst) {
        if (dst.bytes == 0) {
            return;
        }
        CUdeviceptr to = dst.at(0);
        driver("copying " + dst.bytes + " bytes of host parameters to the device", () -> {
            if (host instanceof Params.FloatArray t) {
                staging.copy(t.array(), 0, t.array().length, to, stream);
            } else if (host instanceof Params.HalfArray t) {
                staging.copy(t.array(), to, stream);
            } else {
                Params.Floats t = (Params.Floats) host;
                staging.copy(t.buffer(), t.offset(), t.count(), to, stream);
            }
        });
    }

    /** Copies device memory to the host once the stream's work is done (NOTE: [stream-order]). */
    void deviceToHost(CudaMemory src, Pointer dst, long bytes) {
        if (bytes > 0) {
            CUdeviceptr from = src.at(0);
            driver("the synchronization before copying " + bytes + " bytes to the host",
                    () -> cuStreamSynchronize(stream));
            driver("copying " + bytes + " bytes to the host", () -> cuMemcpyDtoH(dst, from, bytes));
        }
    }

    @Override
    public void write(float[] src, int srcOffset, DeviceBuffer dst, long dstOffset, int length) {
        makeCurrent();
        Checks.copy(this, src, srcOffset, dst, dstOffset, length);
        if (length > 0) {
            CUdeviceptr to = ((CudaBuffer) dst).memory().at(4 * dstOffset);
            driver("copying " + length + " floats to the device",
                    () -> staging.copy(src, srcOffset, length, to, stream));
        }
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, float[] dst, int dstOffset, int length) {
        makeCurrent();
        Checks.copy(this, dst, dstOffset, src, srcOffset, length);
        if (length > 0) {
            CUdeviceptr from = ((CudaBuffer) src).memory().at(4 * srcOffset);
            driver("the synchronization before copying " + length + " floats to the host",
                    () -> cuStreamSynchronize(stream));  // NOTE: [stream-order]
            driver("copying " + length + " floats to the host",
                    () -> cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOffset), from, 4L * length));
        }
    }

    // --- parameter tables ----------------------------------------------------------------------------------------

    @Override
    public ParamTable bind(Params params) {
        makeCurrent();
        Objects.requireNonNull(params, "params");
        long[] addresses = new long[params.size()];
        for (int i = 0; i < params.size(); i++) {
            Params.Tensor t = params.tensor(i);
            String what = "params tensor " + i + " (" + t.name() + ")";
            if (t.storage() instanceof Params.Device d) {
                Checks.owned(this, d.buffer(), what);
            } else if (t.storage() instanceof Params.DevicePointer p) {
                addresses[i] = deviceAddress(p, what);
            }
        }
        CudaMemory[] staging = new CudaMemory[params.size()];
        try {
            for (int i = 0; i < params.size(); i++) {
                Params.Tensor t = params.tensor(i);
                if (!(t.storage() instanceof Params.Device) && !(t.storage() instanceof Params.DevicePointer)) {
                    staging[i] = allocateMemory(t.length() * t.dtype().byteSize());
                }
            }
            return new CudaParamTable(this, params, addresses, staging);
        } catch (RuntimeException e) {
            for (CudaMemory m : staging) {
                if (m != null) {
                    free(m);
                }
            }
            throw e;
        }
    }

    /**
     * The address of a user's device pointer, after checking that it is declared for this device and is memory of
     * this device in its primary context (a context reported as none, as for some pool allocations, is accepted),
     * and that the tensor lies inside one allocation. Element alignment is checked when the pointer is made
     * ({@link Params.DevicePointer}); every other address a kernel gets is an allocation of this backend (256-byte
     * aligned) or a multiple of 16 bytes into one (shadow offsets, {@link dev.ema4j.backend.ParamLayout#ALIGN}), so
     * kernels see element-aligned pointers only. 16-byte alignment is not needed: cuda/ema.cu peels a scalar head
     * (NOTE: [vector-peeling]).
     */
    private long deviceAddress(Params.DevicePointer p, String what) {
        if (p.device() != ordinal) {
            throw new IllegalArgumentException(what + " is declared as memory of CUDA device " + p.device()
                    + ", this backend is " + name);
        }
        CUdeviceptr pointer = pointerAt(p.address());
        try {
            int[] deviceOrdinal = new int[1];
            cuPointerGetAttribute(Pointer.to(deviceOrdinal), CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                    pointer);
            if (deviceOrdinal[0] != ordinal) {
                throw new IllegalArgumentException(what + " is memory of CUDA device " + deviceOrdinal[0]
                        + ", not of " + name);
            }
            long[] owner = new long[1];
            cuPointerGetAttribute(Pointer.to(owner), CUpointer_attribute.CU_POINTER_ATTRIBUTE_CONTEXT, pointer);
            if (owner[0] != 0 && owner[0] != JCudaAddresses.of(context)) {
                throw new IllegalArgumentException(what + " belongs to another CUDA context than the primary context"
                        + " of " + name + "; allocate it in the primary context (as the CUDA runtime does)");
            }
            CUdeviceptr base = new CUdeviceptr();
            long[] size = new long[1];
            cuMemGetAddressRange(base, size, pointer);
            long offset = p.address() - JCudaAddresses.of(base);
            long bytes = p.length() * p.dtype().byteSize();
            if (offset + bytes > size[0]) {
                throw new IllegalArgumentException(what + ": " + p.length() + " " + p.dtype() + " elements ("
                        + bytes + " bytes) at offset " + offset + " overrun its allocation of " + size[0] + " bytes");
            }
            return p.address();
        } catch (CudaException e) {
            if (ASYNCHRONOUS_ERRORS.contains(e.getMessage())) {
                throw failure("checking " + what, e);
            }
            throw new IllegalArgumentException(what + " is not CUDA device memory usable by " + name + ": "
                    + e.getMessage(), e);
        }
    }

    /** A JCuda pointer to a raw device address. */
    public static CUdeviceptr pointerAt(long address) {
        return new CUdeviceptr().withByteOffset(address);
    }

    // --- operations ----------------------------------------------------------------------------------------------

    @Override
    public void emaLerp(ParamTable params, List<DeviceBuffer> shadows, float[] weights, NonFiniteGuard guard) {
        makeCurrent();
        CudaParamTable table = own(params);
        Checks.emaLerp(this, table, shadows, weights);
        CudaGuard g = guard == null ? null : own(guard);
        byte[] struct = shadowsArgument(shadows, weights);
        table.refreshAddresses();
        table.uploadHost();
        long guardAddress = 0;
        if (g != null) {
            guardAddress = g.memory.address();
            launchCheck(table, g);
        }
        if (table.chunks() == 0) {
            return;
        }
        if (table.layout().size() == 1) {
            DType dtype = table.layout().dtypes().get(0);
            long n = table.layout().length(0);
            long vectors = (n + 16 / dtype.byteSize() - 1) / (16 / dtype.byteSize());
            launchStrided(kernels.flat(dtype), (vectors + BLOCK - 1) / BLOCK, table.address(0), n, struct,
                    guardAddress);
        } else {
            launchStrided(kernels.lerpForeach(), table.chunks(), table.tensorTableAddress(), table.chunkMapAddress(),
                    table.chunks(), CudaParamTable.CHUNK, struct, guardAddress);
        }
    }

    /** Clears the guard's flag, then launches the check that raises it (cuda/ema.cu's guard protocol). */
    private void launchCheck(CudaParamTable table, CudaGuard guard) {
        CUdeviceptr flag = guard.memory.at(0);
        driver("clearing the non-finite guard", () -> cuMemsetD32Async(flag, 0, 1, stream));
        if (table.chunks() > 0) {
            launchStrided(kernels.checkForeach(), table.chunks(), table.tensorTableAddress(), table.chunkMapAddress(),
                    table.chunks(), CudaParamTable.CHUNK, guard.memory.address());
        }
    }

    @Override
    public void checkFinite(ParamTable params, NonFiniteGuard guard) {
        makeCurrent();
        CudaParamTable table = own(params);
        Objects.requireNonNull(guard, "guard");
        CudaGuard g = own(guard);
        table.refreshAddresses();
        table.uploadHost();
        launchCheck(table, g);
    }

    /**
     * The kernels' {@code EmaShadows} argument (cuda/ema.cu): 8 shadow addresses, 8 weights {@code w_k}, the count.
     * For fused kernels of other modules that update the shadows of an EMA (the SGD step of cuda/sgd.cu).
     */
    public static byte[] shadowsArgument(List<DeviceBuffer> shadows, float[] weights) {
        ByteBuffer b = ByteBuffer.allocate(SHADOWS_STRUCT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (int k = 0; k < MAX_SHADOWS; k++) {
            b.putLong(k < shadows.size() ? ((CudaBuffer) shadows.get(k)).address() : 0);
        }
        for (int k = 0; k < MAX_SHADOWS; k++) {
            b.putFloat(k < weights.length ? weights[k] : 0f);
        }
        b.putInt(shadows.size());
        return b.array();
    }

    @Override
    public void toShadow(ParamTable params, DeviceBuffer shadow) {
        makeCurrent();
        CudaParamTable table = own(params);
        Checks.shadow(this, table.layout().shadowLength(), shadow, "shadow");
        table.refreshAddresses();
        table.uploadHost();
        if (table.chunks() > 0) {
            launchStrided(kernels.toShadowForeach(), table.chunks(), table.tensorTableAddress(),
                    table.chunkMapAddress(), table.chunks(), CudaParamTable.CHUNK, ((CudaBuffer) shadow).address());
        }
    }

    @Override
    public void fromShadow(DeviceBuffer shadow, ParamTable params) {
        makeCurrent();
        CudaParamTable table = own(params);
        Checks.shadow(this, table.layout().shadowLength(), shadow, "shadow");
        Checks.writable(table.params());
        table.refreshAddresses();
        if (table.chunks() > 0) {
            launchStrided(kernels.fromShadowForeach(), table.chunks(), table.tensorTableAddress(),
                    table.chunkMapAddress(), table.chunks(), CudaParamTable.CHUNK, ((CudaBuffer) shadow).address());
        }
        table.downloadHost();
    }

    @Override
    public ParamSnapshot snapshot(ParamTable params) {
        makeCurrent();
        CudaParamTable table = own(params);
        Checks.writable(table.params());
        table.refreshAddresses();
        int n = table.layout().size();
        long[] offsets = new long[n + 1];
        for (int i = 0; i < n; i++) {
            long bytes = table.isHost(i) ? 0 : table.layout().length(i) * table.layout().dtypes().get(i).byteSize();
            offsets[i + 1] = offsets[i] + bytes;
        }
        CudaMemory copy = allocateMemory(offsets[n]);
        Object[] hostCopies = new Object[n];
        for (int i = 0; i < n; i++) {
            if (table.isHost(i)) {
                hostCopies[i] = hostCopy(table.params().tensor(i));
            } else if (offsets[i + 1] > offsets[i]) {
                CUdeviceptr to = copy.at(offsets[i]);
                CUdeviceptr from = table.pointer(i);
                long bytes = offsets[i + 1] - offsets[i];
                driver("copying tensor " + i + " into a snapshot", () -> cuMemcpyDtoDAsync(to, from, bytes, stream));
            }
        }
        return new ParamSnapshot() {
            @Override
            public void restore() {
                makeCurrent();
                if (copy.isFreed()) {
                    throw new IllegalStateException("snapshot is closed");
                }
                table.refreshAddresses();
                for (int i = 0; i < n; i++) {
                    if (table.isHost(i)) {
                        restoreHost(table.params().tensor(i), hostCopies[i]);
                    } else if (offsets[i + 1] > offsets[i]) {
                        CUdeviceptr to = table.pointer(i);
                        CUdeviceptr from = copy.at(offsets[i]);
                        long bytes = offsets[i + 1] - offsets[i];
                        driver("restoring tensor " + i + " from a snapshot",
                                () -> cuMemcpyDtoDAsync(to, from, bytes, stream));
                    }
                }
            }

            @Override
            public void close() {
                free(copy);
            }
        };
    }

    private static Object hostCopy(Params.Tensor tensor) {
        if (tensor.storage() instanceof Params.FloatArray t) {
            return t.array().clone();
        } else if (tensor.storage() instanceof Params.HalfArray t) {
            return t.array().clone();
        }
        Params.Floats t = (Params.Floats) tensor.storage();
        float[] c = new float[t.count()];
        t.buffer().get(t.offset(), c, 0, c.length);
        return c;
    }

    private static void restoreHost(Params.Tensor tensor, Object copy) {
        if (tensor.storage() instanceof Params.FloatArray t) {
            System.arraycopy((float[]) copy, 0, t.array(), 0, t.array().length);
        } else if (tensor.storage() instanceof Params.HalfArray t) {
            System.arraycopy((short[]) copy, 0, t.array(), 0, t.array().length);
        } else {
            Params.Floats t = (Params.Floats) tensor.storage();
            t.buffer().put(t.offset(), (float[]) copy, 0, t.count());
        }
    }

    @Override
    public NonFiniteGuard newGuard() {
        makeCurrent();
        return new CudaGuard(allocateMemory(8));
    }

    @Override
    public <T> T service(Class<T> type, Function<? super Backend, ? extends T> factory) {
        makeCurrent();
        return services.get(this, type, factory);
    }

    @Override
    public void synchronize() {
        makeCurrent();
        driver("synchronize", () -> cuStreamSynchronize(stream));
    }

    @Override
    public long allocatedBytes() {
        return liveBytes;
    }

    /** Frees everything, even after a device error; the first failure is thrown with the others suppressed. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = new IllegalStateException("closing " + name + " failed");
        cleanUp(failure, () -> cuCtxSetCurrent(context));
        cleanUp(failure, () -> driver("the synchronization before closing", () -> cuStreamSynchronize(stream)));
        cleanUp(failure, services::close);
        for (CudaMemory m : live) {
            m.markFreed();
            cleanUp(failure, () -> cuMemFree(m.pointer));
        }
        live.clear();
        liveBytes = 0;
        cleanUp(failure, staging::close);
        for (CUmodule m : extraModules) {
            cleanUp(failure, () -> cuModuleUnload(m));
        }
        cleanUp(failure, () -> cuModuleUnload(module));
        if (ownsStream) {
            cleanUp(failure, () -> cuStreamDestroy(stream));
        }
        cleanUp(failure, () -> cuDevicePrimaryCtxRelease(device));
        if (failure.getSuppressed().length > 0) {
            throw failure;
        }
    }

    // --- for other modules: kernels of their own on this device and stream ---------------------------------------

    /**
     * A grid-stride grid of 256-thread blocks for {@code blocks} blocks of work on {@code kernel}: at most the blocks
     * of that kernel the device holds at once (its occupancy, which its registers and shared memory decide, times
     * the multiprocessors), at least 1. The occupancy is asked once per kernel and block size.
     */
    public int grid(CUfunction kernel, long blocks) {
        return grid(kernel, BLOCK, blocks);
    }

    /** {@link #grid(CUfunction, long)} for blocks of {@code blockSize} threads. */
    public int grid(CUfunction kernel, int blockSize, long blocks) {
        Objects.requireNonNull(kernel, "kernel");
        Integer perMultiprocessor = residentBlocks.get(new Occupancy(kernel, blockSize));
        if (perMultiprocessor == null) {
            int[] value = new int[1];
            driver("the occupancy of " + kernel(kernel).name() + " with " + blockSize + " threads per block",
                    () -> cuOccupancyMaxActiveBlocksPerMultiprocessor(value, kernel, blockSize, 0));
            perMultiprocessor = Math.max(1, value[0]);  // 0: the launch fails and says why
            residentBlocks.put(new Occupancy(kernel, blockSize), perMultiprocessor);
        }
        return (int) Math.max(1, Math.min((long) multiprocessors * perMultiprocessor, blocks));
    }

    /** The device's number of multiprocessors. */
    public int multiprocessors() {
        return multiprocessors;
    }

    /**
     * Whether the backend waits for every kernel it launches ({@code -Dema4j.cuda.sync=true}); its work cannot be
     * captured into a {@link CudaGraph} then.
     */
    public boolean syncMode() {
        return syncEachLaunch;
    }

    boolean isClosed() {
        return closed;
    }

    /**
     * How many times two buffers of this backend exchanged their memory ({@code DeviceBuffer.swapStorage}, e.g. an
     * EMA swapped into the parameters): a {@link CudaGraph} captured before holds the old addresses.
     */
    public long storageSwaps() {
        return storageSwaps;
    }

    void storageSwapped() {
        storageSwaps++;
    }

    /** The stream every operation of this backend runs on (NOTE: [stream-order]). */
    public CUstream stream() {
        return stream;
    }

    /** Launches {@code f} on a grid-stride grid for {@code blocks} blocks of 256 threads. */
    private void launchStrided(CUfunction f, long blocks, Object... args) {
        launch(f, grid(f, blocks), 1, 1, BLOCK, args);
    }

    /**
     * Launches {@code f} on the stream with a {@code (gridX, gridY, gridZ)} grid of {@code block} threads; arguments
     * are Long (64-bit, addresses too), Integer, Float, Double or byte[] (a struct, little-endian). With
     * {@code -Dema4j.cuda.sync=true} it waits for the kernel, so an error surfaces at the launch that caused it.
     *
     * @throws CudaException naming the kernel, its module, the grid, the block, the arguments and the CUDA error
     *     (NOTE: [cuda-errors])
     */
    public void launch(CUfunction f, int gridX, int gridY, int gridZ, int block, Object... args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            params[i] = a instanceof Long l ? Pointer.to(new long[] {l})
                    : a instanceof Integer n ? Pointer.to(new int[] {n})
                    : a instanceof Float x ? Pointer.to(new float[] {x})
                    : a instanceof Double d ? Pointer.to(new double[] {d})
                    : Pointer.to((byte[]) a);
        }
        try {
            cuLaunchKernel(f, gridX, gridY, gridZ, block, 1, 1, 0, stream, Pointer.to(params), null);
        } catch (CudaException e) {
            throw failure(launchText(f, gridX, gridY, gridZ, block, args), e);
        }
        if (syncEachLaunch) {
            try {
                cuStreamSynchronize(stream);
            } catch (CudaException e) {
                throw new Failure(launchText(f, gridX, gridY, gridZ, block, args) + " failed while it ran: "
                        + e.getMessage() + " (from the synchronization after the launch, -Dema4j.cuda.sync=true)", e);
            }
        }
    }

    /** {@code name<<<(x,y,z), (block,1,1)>>>(arguments) of cuda/<module>.cu}: addresses in hex, structs by size. */
    private String launchText(CUfunction f, int gridX, int gridY, int gridZ, int block, Object... args) {
        Kernel k = kernel(f);
        StringBuilder b = new StringBuilder(k.name()).append("<<<(").append(gridX).append(',').append(gridY)
                .append(',').append(gridZ).append("), (").append(block).append(",1,1)>>>(");
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            b.append(i == 0 ? "" : ", ").append(a instanceof Long l && l >= 1L << 32 ? "0x" + Long.toHexString(l)
                    : a instanceof byte[] struct ? "struct of " + struct.length + " bytes"
                    : String.valueOf(a));
        }
        return b.append(") of ").append(k.source()).toString();
    }

    /** Runs a driver call of {@code operation}; its CUDA error is thrown as {@link #failure}. */
    void driver(String operation, Runnable call) {
        try {
            call.run();
        } catch (CudaException e) {
            throw failure(operation, e);
        }
    }

    /** The exception for JCuda's exception {@code e} (its message: the CUresult name) of {@code operation}. */
    private CudaException failure(String operation, CudaException e) {
        return e instanceof Failure ? e : failure(operation, e.getMessage(), "", e);
    }

    /**
     * The exception for the CUDA error {@code error} (a CUresult name) of {@code operation}, with {@code detail}
     * after it. An error that a kernel left behind says that it surfaced here and, without sync mode, how to find
     * the operation that failed (NOTE: [cuda-errors]).
     */
    private CudaException failure(String operation, String error, String detail, Throwable cause) {
        String origin = !ASYNCHRONOUS_ERRORS.contains(error) ? ""
                : syncEachLaunch ? " (an error of an earlier asynchronous operation that surfaced here; with"
                        + " -Dema4j.cuda.sync=true a kernel of this backend that failed was named by the exception of"
                        + " its launch; if none was, the failing operation is a copy or work that another library"
                        + " queued on the device)"
                : " (an error of an earlier asynchronous operation, most likely a kernel, that surfaced here; which"
                        + " operation failed is unknown without sync mode: rerun with -Dema4j.cuda.sync=true to"
                        + " synchronize after every launch and name the kernel that fails)";
        return new Failure(operation + " failed: " + error + origin + detail, cause);
    }

    /**
     * Makes this backend's context current on the calling thread (every operation does so first).
     *
     * @throws IllegalStateException if the backend is closed
     */
    public void makeCurrent() {
        if (closed) {
            throw new IllegalStateException("backend " + name + " is closed");
        }
        cuCtxSetCurrent(context);
    }

    private CudaParamTable own(ParamTable params) {
        Objects.requireNonNull(params, "params");
        if (!(params instanceof CudaParamTable t) || t.backend() != this) {
            throw new IllegalArgumentException("params table was bound by another backend, not " + name);
        }
        if (t.isClosed()) {
            throw new IllegalStateException("params table is closed");
        }
        return t;
    }

    private CudaGuard own(NonFiniteGuard guard) {
        if (!(guard instanceof CudaGuard g) || g.backend() != this) {
            throw new IllegalArgumentException("guard belongs to another backend, not " + name);
        }
        if (g.memory.isFreed()) {
            throw new IllegalStateException("guard is closed");
        }
        return g;
    }

    @Override
    public String toString() {
        return name;
    }

    /** The guard in device memory: {@code int flag, int skipped} (the kernels' {@code guard[0]}, {@code guard[1]}). */
    private final class CudaGuard implements NonFiniteGuard {
        private final CudaMemory memory;

        CudaGuard(CudaMemory memory) {
            this.memory = memory;
        }

        CudaBackend backend() {
            return CudaBackend.this;
        }

        private int[] read() {
            makeCurrent();
            if (memory.isFreed()) {
                throw new IllegalStateException("guard is closed");
            }
            int[] v = new int[2];
            deviceToHost(memory, Pointer.to(v), 8);
            return v;
        }

        @Override
        public boolean raised() {
            return read()[0] != 0;
        }

        @Override
        public long skippedUpdates() {
            return Integer.toUnsignedLong(read()[1]);
        }

        @Override
        public void setSkippedUpdates(long count) {
            makeCurrent();
            if (count < 0 || count > 0xffffffffL) {
                throw new IllegalArgumentException("count is " + count + "; must be in [0, 2^32)");
            }
            CUdeviceptr to = memory.at(4);
            int[] value = {(int) count};
            driver("writing the count of skipped updates",
                    () -> cuMemcpyHtoDAsync(to, Pointer.to(value), 4, stream));  // NOTE: [stream-order]
        }

        @Override
        public void close() {
            free(memory);
        }
    }
}
