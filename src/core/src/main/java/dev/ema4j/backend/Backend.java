package dev.ema4j.backend;

import java.util.List;
import java.util.function.Function;

/**
 * A device that stores buffers and runs the EMA operations: the CPU (multithreaded Java, {@code dev.ema4j.backend.cpu})
 * or a CUDA GPU (PTX kernels through JCuda, in the {@code ema4j-cuda} module). Both implement the same arithmetic and
 * give bit-identical shadows. This interface is the bottom layer of ema4j: it depends on nothing above it.
 *
 * <p>The backend owns its memory arena style: {@link #allocatedBytes()} counts every live buffer, parameter
 * table and guard, and {@link #close()} frees them all. Operations may run asynchronously on the device;
 * {@link #synchronize()} waits for them. Arguments are validated before anything runs; a backend is not
 * thread-safe. Use after close throws {@link IllegalStateException}.
 *
 * <h2>The EMA update</h2>
 * {@link #emaLerp} gives its formula: PyTorch's {@code e.lerp_(p, w)}, bit for bit. Narrowing fp32 to bf16/fp16
 * rounds to nearest even and turns NaN into a quiet NaN (NOTE: [half-conversions] in cuda/ema.cu,
 * {@link HalfFloats}).
 */
public interface Backend extends AutoCloseable {

    /** Most shadows one {@link #emaLerp} updates in one pass. */
    int MAX_SHADOWS = 8;

    /** A short human-readable name such as {@code cpu (2 threads)} or {@code cuda:0 NVIDIA H100}. */
    String name();

    /**
     * Allocates a zero-filled buffer.
     *
     * @throws IllegalArgumentException if {@code length} is negative or too large for this backend
     */
    DeviceBuffer allocate(DType dtype, long length);

    /** Copies {@code length} floats from {@code src[srcOffset..]} into the F32 buffer {@code dst} at {@code dstOffset}. */
    void write(float[] src, int srcOffset, DeviceBuffer dst, long dstOffset, int length);

    /** Copies {@code length} floats of the F32 buffer {@code src} from {@code srcOffset} into {@code dst[dstOffset..]}. */
    void read(DeviceBuffer src, long srcOffset, float[] dst, int dstOffset, int length);

    /**
     * Validates a parameter set for this backend and builds its launch plan (on CUDA: a tensor table and chunk
     * map in device memory, and device staging for host arrays), reusable while the set's storage is unchanged.
     *
     * @throws IllegalArgumentException if a tensor's storage cannot be used here (device memory on the CPU, a
     *     buffer of another backend, a CUDA pointer outside its allocation or of another device)
     */
    ParamTable bind(Params params);

    /**
     * One EMA update of {@code shadows} toward the parameters of {@code params}. Each shadow is an F32 buffer of
     * {@code params.layout().shadowLength()} elements; {@code weights[k]} is {@code w_k}.
     *
     * <p>NOTE: [lerp-torch]. For each shadow {@code k} with weight {@code w_k = 1 − decay_k} (computed in double,
     * rounded once to float), every parameter {@code p} (widened exactly from fp32, bf16 or fp16 to fp32) updates
     * its shadow element {@code e_k} (fp32), in fp32 arithmetic, as
     * <pre>{@code
     *   d = p − e_k                                    // rounded once
     *   e_k ← w_k < 0.5 ? fma(w_k, d, e_k)             // = e_k + w_k·(p − e_k), one rounding
     *                   : fma(−(1 − w_k), d, p)        // = p − (1 − w_k)·(p − e_k); 1 − w_k is exact
     * }</pre>
     * reading each parameter once for all shadows. This is what PyTorch's CPU {@code e.lerp_(p, w_k)} computes
     * for fp32 {@code e} (version 1.13 on x86-64 with AVX2; the golden vectors of bench/golden/README.md pin it
     * down and the conformance suites check every backend against them bit for bit), so shadows can be compared
     * with PyTorch's exactly. It is also more accurate than the two-FMA form {@code fma(w, p, fma(−w, e, e))} and
     * than {@code e·decay + p·w} (bench/RESULTS.md). The coefficient is {@code −(1 − w_k)}, not {@code w_k − 1}:
     * at {@code w_k = 1} they differ in the sign of zero, and so can the result. No flush to zero: subnormals are
     * kept; NaN and infinities propagate as the formula says (an overflowing {@code p − e} is used as it is).
     *
     * <p>With a guard, the parameters are first checked: if any is NaN or ±Inf, no shadow is touched, the guard is
     * raised and its skip count grows by one; all of this happens on the device, without host synchronization.
     *
     * @param shadows modified; 1 to {@link #MAX_SHADOWS} distinct buffers
     * @param guard {@code null} to update without checking
     */
    void emaLerp(ParamTable params, List<DeviceBuffer> shadows, float[] weights, NonFiniteGuard guard);

    /**
     * Clears the guard's flag, then raises it when any parameter is NaN or ±Inf; the skip counter is unchanged.
     * Runs on the device without host synchronization ({@link NonFiniteGuard#raised()} waits).
     */
    void checkFinite(ParamTable params, NonFiniteGuard guard);

    /** {@code shadow ← fp32(params)}, exactly. {@code shadow} is modified. */
    void toShadow(ParamTable params, DeviceBuffer shadow);

    /** {@code params ← round(shadow)} in each parameter's dtype. The parameters are modified. */
    void fromShadow(DeviceBuffer shadow, ParamTable params);

    /** A bit-exact copy of the parameters' current values, to {@linkplain ParamSnapshot#restore() restore} later. */
    ParamSnapshot snapshot(ParamTable params);

    /** A new non-finite guard (a flag and a skip counter in device memory). */
    NonFiniteGuard newGuard();

    /**
     * The service of type {@code type} attached to this backend, created by {@code factory} at the first request and
     * kept until the backend closes: modules above the core keep per-backend state this way (the training module
     * its operations and their scratch memory). A service that is {@link AutoCloseable} is closed when the backend
     * closes.
     */
    <T> T service(Class<T> type, Function<? super Backend, ? extends T> factory);

    /** Waits until every operation issued so far has finished, and reports its errors. */
    void synchronize();

    /** Bytes held by live buffers, tables, snapshots and guards of this backend. */
    long allocatedBytes();

    /** Frees everything this backend allocated. Idempotent. */
    @Override
    void close();
}
