package dev.ema4j.ops.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;

import dev.ema4j.backend.Checks;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.ops.ConvGeometry;
import dev.ema4j.ops.NnChecks;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Replayable;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

/**
 * {@link NnOps} on CUDA: the kernels of {@code cuda/conv.cu}, {@code gemm.cu}, {@code batchnorm.cu},
 * {@code pool.cu}, {@code elementwise.cu}, {@code loss.cu} and {@code sgd.cu}, launched on the backend's stream.
 * Every argument is checked ({@link NnChecks}, ownership of every tensor) before the first launch. Nothing waits
 * for the device but {@link #softmaxCrossEntropy}, which returns the loss.
 *
 * <p>Linear layers use cuBLAS 13 ({@code libcublas.so.13} through JavaCPP) or else cuBLAS 12
 * ({@code libcublas.so.12} through JCublas), the first that loads and agrees with the tiled kernels on a self-check
 * at start-up, else the tiled kernels; {@code -Dema4j.cuda.gemm=cublas13|cublas12|tiled} forces one (NOTE:
 * [gemm-choice] in {@link GemmChoice}). {@link #gemm()} says which runs and why the others do not.
 */
public final class CudaNnOps implements NnOps, AutoCloseable {

    private static final int BLOCK = 256;
    private static final int TILE = 64;
    private static final int TILE_K = 16;
    /** Smallest depth slice of a split-K filter gradient: fewer would cost more in partial sums than it gains. */
    private static final int MIN_SPLIT_DEPTH = 512;
    /** Smallest chunk of a BatchNorm channel that one block reduces: 8 values per thread (NOTE: [bn-split]). */
    static final int BN_MIN_CHUNK = 2048;
    /** Most blocks per BatchNorm channel: the channel's partial sums are added by one block of 256 threads. */
    static final int BN_MAX_SPLITS = BLOCK;

    /** Whether passes are captured into CUDA graphs: {@code -Dema4j.cuda.graphs=false} turns it off. */
    public static final String GRAPHS_PROPERTY = "ema4j.cuda.graphs";

    private final CudaBackend backend;
    private final Kernels k;
    private final CublasGemm cublas;
    private final String gemm;
    private DeviceBuffer workspace;
    /** Counts replacements of {@link #workspace}: a graph captured before one uses freed memory. */
    private int scratchGeneration;
    private DeviceBuffer labels;
    private DeviceBuffer losses;
    /** Why passes run as they are, or null while they are captured (NOTE: [pass-graphs]). */
    private String graphsOff;
    private long captures;
    private long replays;

    private record Kernels(CUfunction convForward, CUfunction convBackwardData, CUfunction convBackwardFilter,
                           CUfunction convSumSplits, CUfunction convBiasGrad, CUfunction linearForward,
                           CUfunction linearBackwardData, CUfunction linearBackwardWeight, CUfunction linearBiasGrad,
                           CUfunction linearAddBias, CUfunction bnStats, CUfunction bnTrain, CUfunction bnEval,
                           CUfunction bnBackwardSums, CUfunction bnBackward,
                           CUfunction maxPoolForward, CUfunction maxPoolBackward, CUfunction avgPoolForward,
                           CUfunction avgPoolBackward, CUfunction reluForward, CUfunction reluBackward,
                           CUfunction add, CUfunction addTo, CUfunction softmaxXent, CUfunction sgdStep) {
    }

    /**
     * Loads the training kernels into {@code backend}'s context and chooses the GEMM of the linear layers (see the
     * class comment).
     *
     * @throws IllegalArgumentException when {@code -Dema4j.cuda.gemm} has an unknown value
     * @throws IllegalStateException when {@code -Dema4j.cuda.gemm} forces a cuBLAS that cannot be used, with the
     *     reason
     */
    public CudaNnOps(CudaBackend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
        CUmodule conv = backend.loadModule("conv");
        CUmodule gemmModule = backend.loadModule("gemm");
        CUmodule bn = backend.loadModule("batchnorm");
        CUmodule pool = backend.loadModule("pool");
        CUmodule elementwise = backend.loadModule("elementwise");
        CUmodule loss = backend.loadModule("loss");
        CUmodule sgd = backend.loadModule("sgd");
        k = new Kernels(f(conv, "conv2d_forward_f32"), f(conv, "conv2d_backward_data_f32"),
                f(conv, "conv2d_backward_filter_f32"), f(conv, "conv2d_sum_splits_f32"),
                f(conv, "conv2d_bias_grad_f32"), f(gemmModule, "linear_forward_f32"),
                f(gemmModule, "linear_backward_data_f32"), f(gemmModule, "linear_backward_weight_f32"),
                f(gemmModule, "linear_bias_grad_f32"), f(gemmModule, "linear_add_bias_f32"),
                f(bn, "batchnorm_stats_f32"), f(bn, "batchnorm_forward_train_f32"),
                f(bn, "batchnorm_forward_eval_f32"), f(bn, "batchnorm_backward_sums_f32"),
                f(bn, "batchnorm_backward_f32"), f(pool, "maxpool_forward_f32"), f(pool, "maxpool_backward_f32"),
                f(pool, "global_avg_pool_forward_f32"), f(pool, "global_avg_pool_backward_f32"),
                f(elementwise, "relu_forward_f32"), f(elementwise, "relu_backward_f32"), f(elementwise, "add_f32"),
                f(elementwise, "add_to_f32"), f(loss, "softmax_xent_f32"), f(sgd, "sgd_step_f32"));
        GemmChoice.Selected selected = GemmChoice.parse(System.getProperty(GemmChoice.PROPERTY)).select(List.of(
                new GemmChoice.Candidate(GemmChoice.CUBLAS13, "cuBLAS 13", () -> Cublas13Gemm.open(backend.stream())),
                new GemmChoice.Candidate(GemmChoice.CUBLAS12, "cuBLAS 12", () -> Cublas12Gemm.open(backend.stream()))),
                this::selfCheck);
        cublas = selected.gemm();
        gemm = selected.report();
        graphsOff = !Boolean.parseBoolean(System.getProperty(GRAPHS_PROPERTY, "true"))
                ? "turned off by -D" + GRAPHS_PROPERTY + "=false"
                : backend.syncMode() ? "sync mode (-Dema4j.cuda.sync=true) waits for every kernel" : null;
    }

    private static CUfunction f(CUmodule module, String name) {
        return CudaBackend.function(module, name);
    }

    /**
     * The GEMM of the linear layers, then why each cuBLAS binding is not used: {@code cuBLAS 13.1.0 (JavaCPP); cuBLAS
     * 12 not tried}, {@code tiled SGEMM (ema4j kernels); cuBLAS 13: UnsatisfiedLinkError: ...; cuBLAS 12: ...}
     * (NOTE: [gemm-choice]).
     */
    @Override
    public String gemm() {
        return gemm;
    }

    // --- pass graphs ----------------------------------------------------------------------------------------------

    /**
     * A pass captured into a CUDA graph at its second call and replayed at later calls (NOTE: [pass-graphs]).
     *
     * <p>NOTE: [pass-graphs]. A network's forward and backward passes launch dozens of small kernels whose host cost
     * (JCuda's argument packing and {@code cuLaunchKernel}, several microseconds each) can exceed the kernels' own
     * time on a fast GPU; a captured graph replays them with one launch (NOTE: [cuda-graphs] in {@code CudaGraph}).
     * The first call of a {@link Replayable} runs the pass as it is, which sizes the scratch of these operations, so
     * that the capture at the second call allocates nothing. A graph holds addresses: one captured before memory it
     * uses moved (the scratch was replaced because a larger problem grew it, or an EMA was swapped into the
     * parameters by exchanging buffers' memory) is captured again. Nothing in a pass reads back to the host or copies
     * from it; the loss (read by the host) and the SGD+EMA step (whose learning rate and EMA weights change every
     * step, and which must not run after a non-finite loss) run between and after the passes, one launch each. When a
     * capture fails (the driver refuses it, or a pass issues work that cannot be captured), these operations stop
     * using graphs, {@link #replays()} says why, and every pass runs as it is; so do they in sync mode and with
     * {@code -Dema4j.cuda.graphs=false}.
     */
    @Override
    public Replayable replayable() {
        backend.makeCurrent();
        return new CudaReplayable(this, backend);
    }

    /**
     * {@code CUDA graphs: 2 captured, 118 replays}, or {@code CUDA graphs off: <why>} (NOTE: [pass-graphs]).
     */
    @Override
    public String replays() {
        return graphsOff != null ? "CUDA graphs off: " + graphsOff
                : "CUDA graphs: " + captures + " captured, " + replays + " replays";
    }

    String graphsOff() {
        return graphsOff;
    }

    /**
     * Changes whenever memory that a captured pass may use has moved: the scratch of these operations was replaced,
     * or two buffers of the backend exchanged their memory (an EMA swapped into the parameters); a graph captured
     * before is captured again.
     */
    long memoryEpoch() {
        return scratchGeneration + backend.storageSwaps();
    }

    void stopGraphs(String why) {
        graphsOff = why;
    }

    void countCapture() {
        captures++;
    }

    void countReplay() {
        replays++;
    }

    // --- convolution ---------------------------------------------------------------------------------------------

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor bias, Tensor y, int stride, int pad) {
        backend.makeCurrent();
        ConvGeometry g = NnChecks.conv2dForward(x, w, bias, y, stride, pad);
        long xa = address(x);
        long wa = address(w);
        long ba = address(bias);
        long ya = address(y);
        int cols = g.n() * g.p() * g.q();
        if (cols == 0 || g.k() == 0) {
            return;
        }
        backend.launch(k.convForward(), tiles(cols), tiles(g.k()), 1, BLOCK, xa, wa, ba, ya, shape(g));
    }

    @Override
    public void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor dbias, int stride, int pad) {
        backend.makeCurrent();
        ConvGeometry g = NnChecks.conv2dBackward(x, w, dy, dx, dw, dbias, stride, pad);
        long xa = address(x);
        long wa = address(w);
        long dya = address(dy);
        long dxa = address(dx);
        long dwa = address(dw);
        long dba = address(dbias);
        byte[] shape = shape(g);
        int depth = g.n() * g.p() * g.q();
        int crs = g.rows();
        if (crs > 0 && g.k() > 0) {
            // split the depth (the batch's output positions) so the grid fills the device; partial products are
            // summed in a fixed order
            int tiles = tiles(crs) * tiles(g.k());
            int wanted = Math.max(1, Math.min(2 * backend.multiprocessors() / tiles, depth / MIN_SPLIT_DEPTH));
            int perSplit = roundUp(ceilDiv(Math.max(depth, 1), wanted), TILE_K);
            int splits = Math.max(1, ceilDiv(depth, perSplit));
            if (splits == 1) {
                backend.launch(k.convBackwardFilter(), tiles(crs), tiles(g.k()), 1, BLOCK, xa, dya, dwa, shape,
                        perSplit);
            } else {
                int count = g.k() * crs;
                long partial = workspace((long) splits * count);
                backend.launch(k.convBackwardFilter(), tiles(crs), tiles(g.k()), splits, BLOCK, xa, dya, partial,
                        shape, perSplit);
                backend.launch(k.convSumSplits(), backend.grid(k.convSumSplits(), ceilDiv(count, BLOCK)), 1, 1, BLOCK,
                        partial, dwa, count, splits);
            }
        }
        if (dx != null && g.c() > 0 && g.n() * g.h() * g.w() > 0) {
            backend.launch(k.convBackwardData(), tiles(g.n() * g.h() * g.w()), tiles(g.c()), 1, BLOCK, dya, wa, dxa,
                    shape);
        }
        if (dbias != null && g.k() > 0) {
            backend.launch(k.convBiasGrad(), g.k(), 1, 1, BLOCK, dya, dba, g.n(), g.k(), g.p() * g.q());
        }
    }

    /**
     * The kernels' {@code ConvShape} (cuda/conv.cu, 128 bytes): eleven ints, then the divisors S, R·S, Q, P·Q, W,
     * H·W and stride, each as {@code int value, unsigned mul, unsigned shift} (NOTE: [fast-division]).
     */
    static byte[] shape(ConvGeometry g) {
        ByteBuffer b = ByteBuffer.allocate(128).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : new int[] {g.n(), g.c(), g.h(), g.w(), g.k(), g.r(), g.s(), g.p(), g.q(), g.stride(), g.pad()}) {
            b.putInt(v);
        }
        for (int d : new int[] {g.s(), g.r() * g.s(), g.q(), g.p() * g.q(), g.w(), g.h() * g.w(), g.stride()}) {
            int[] divisor = divisor(d);
            b.putInt(d).putInt(divisor[0]).putInt(divisor[1]);
        }
        return b.array();
    }

    /**
     * The magic number {@code mul} and the {@code shift} with which the kernels divide an n in [0, 2^31) by
     * {@code d}: {@code n / d = (mulhi(n, mul) + n) >>> shift} (NOTE: [fast-division] in cuda/conv.cu);
     * {@code {0, 0}} for d ≤ 0, which the kernels never divide by.
     */
    static int[] divisor(int d) {
        if (d <= 0) {
            return new int[] {0, 0};
        }
        int shift = 32 - Integer.numberOfLeadingZeros(d - 1);  // ceil(log2 d)
        long mul = (((1L << shift) - d) << 32) / d + 1;  // < 2^32
        return new int[] {(int) mul, shift};
    }

    // --- batch norm ----------------------------------------------------------------------------------------------

    @Override
    public void batchNormForwardTrain(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean,
                                      Tensor saveInvStd, Tensor runningMean, Tensor runningVar, double momentum,
                                      double eps, boolean relu) {
        backend.makeCurrent();
        NnChecks.batchNormTrain(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, momentum, eps);
        Shape s = x.shape();
        long xa = address(x);
        long ga = address(gamma);
        long ba = address(beta);
        long ya = address(y);
        long meanA = address(saveMean);
        long invStdA = address(saveInvStd);
        long runMeanA = address(runningMean);
        long runVarA = address(runningVar);
        if (s.c() == 0) {
            return;
        }
        BnSplit b = bnSplit(s);
        backend.launch(k.bnStats(), s.c(), b.splits(), 1, BLOCK, xa, b.partial(), s.n(), s.c(), b.plane(), b.chunk());
        backend.launch(k.bnTrain(), s.c(), b.splits(), 1, BLOCK, xa, ga, ba, ya, meanA, invStdA, runMeanA, runVarA,
                b.partial(), s.n(), s.c(), b.plane(), b.chunk(), momentum, eps, relu ? 1 : 0);
    }

    @Override
    public void batchNormForwardEval(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                     Tensor y, double eps, boolean relu) {
        backend.makeCurrent();
        NnChecks.batchNormEval(x, gamma, beta, runningMean, runningVar, y, eps);
        Shape s = x.shape();
        Object[] args = {address(x), address(gamma), address(beta), address(runningMean), address(runningVar),
            address(y), s.c(), s.h() * s.w(), eps, relu ? 1 : 0};
        if (s.n() * s.c() > 0 && s.h() * s.w() > 0) {
            backend.launch(k.bnEval(), s.n() * s.c(), 1, 1, BLOCK, args);
        }
    }

    @Override
    public void batchNormBackward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor relu, Tensor dy,
                                  Tensor dx, Tensor dgamma, Tensor dbeta) {
        backend.makeCurrent();
        NnChecks.batchNormBackward(x, gamma, saveMean, saveInvStd, relu, dy, dx, dgamma, dbeta);
        Shape s = x.shape();
        long xa = address(x);
        long ga = address(gamma);
        long meanA = address(saveMean);
        long invStdA = address(saveInvStd);
        long ya = address(relu);
        long dya = address(dy);
        long dxa = address(dx);
        long dga = address(dgamma);
        long dba = address(dbeta);
        if (s.c() == 0) {
            return;
        }
        BnSplit b = bnSplit(s);
        backend.launch(k.bnBackwardSums(), s.c(), b.splits(), 1, BLOCK, xa, meanA, ya, dya, b.partial(), s.n(), s.c(),
                b.plane(), b.chunk());
        backend.launch(k.bnBackward(), s.c(), b.splits(), 1, BLOCK, xa, ga, meanA, invStdA, ya, dya, dxa, dga, dba,
                b.partial(), s.n(), s.c(), b.plane(), b.chunk());
    }

    /**
     * The values of a BatchNorm channel of {@code m} values that one block reduces (NOTE: [bn-split] in
     * cuda/batchnorm.cu): {@link #BN_MIN_CHUNK}, or more (a multiple of 256) when that would take more than
     * {@link #BN_MAX_SPLITS} blocks. A function of {@code m} alone, so the order of the sums, and the results, are
     * the same on every device.
     */
    static int bnChunk(int m) {
        return (int) Math.max(BN_MIN_CHUNK, ceilDiv(ceilDiv((long) m, BN_MAX_SPLITS), BLOCK) * BLOCK);
    }

    /** The blocks per BatchNorm channel of {@code m} values: at least 1, at most {@link #BN_MAX_SPLITS}. */
    static int bnSplits(int m) {
        return (int) Math.max(1, ceilDiv((long) m, bnChunk(m)));
    }

    /**
     * How the BatchNorm kernels split the channels of an (N, C, H, W) tensor: the plane H·W, the values per block
     * ({@link #bnChunk}), the blocks per channel ({@link #bnSplits}) and the scratch for the partial sums of every
     * channel's chunks, C·(2·splits + 1) doubles.
     */
    private record BnSplit(int plane, int chunk, int splits, long partial) {
    }

    private BnSplit bnSplit(Shape s) {
        int plane = s.h() * s.w();
        int m = s.n() * plane;
        int splits = bnSplits(m);
        return new BnSplit(plane, bnChunk(m), splits, workspace(2L * s.c() * (2L * splits + 1)));
    }

    // --- elementwise ---------------------------------------------------------------------------------------------

    @Override
    public void reluForward(Tensor x, Tensor y) {
        backend.makeCurrent();
        NnChecks.sameShape("y", y, "x", x);
        elementwise(k.reluForward(), x.size(), address(x), address(y));
    }

    @Override
    public void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        backend.makeCurrent();
        NnChecks.reluBackward(y, dy, dx);
        elementwise(k.reluBackward(), y.size(), address(y), address(dy), address(dx));
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor y) {
        backend.makeCurrent();
        NnChecks.add(a, b, y);
        elementwise(k.add(), a.size(), address(a), address(b), address(y));
    }

    @Override
    public void addTo(Tensor x, Tensor y) {
        backend.makeCurrent();
        NnChecks.sameShape("y", y, "x", x);
        elementwise(k.addTo(), x.size(), address(x), address(y));
    }

    /** A grid-stride kernel whose last argument is the element count (a long). */
    private void elementwise(CUfunction f, long n, Object... addresses) {
        if (n == 0) {
            return;
        }
        Object[] args = new Object[addresses.length + 1];
        System.arraycopy(addresses, 0, args, 0, addresses.length);
        args[addresses.length] = n;
        backend.launch(f, backend.grid(f, ceilDiv(n, BLOCK)), 1, 1, BLOCK, args);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        backend.makeCurrent();
        NnChecks.sameShape("dst", dst, "src", src);
        long from = address(src);
        long to = address(dst);
        long bytes = 4L * src.size();
        if (bytes == 0 || from == to) {
            return;
        }
        if (Math.abs(to - from) < bytes) {  // overlapping ranges: undefined for cuMemcpy, so through scratch
            try (DeviceBuffer scratch = backend.allocate(DType.F32, src.size())) {  // closing synchronizes first
                CUdeviceptr at = CudaBackend.pointerAt(backend.address(scratch));
                cuMemcpyDtoDAsync(at, CudaBackend.pointerAt(from), bytes, backend.stream());
                cuMemcpyDtoDAsync(CudaBackend.pointerAt(to), at, bytes, backend.stream());
            }
        } else {
            cuMemcpyDtoDAsync(CudaBackend.pointerAt(to), CudaBackend.pointerAt(from), bytes, backend.stream());
        }
    }

    @Override
    public void fill(Tensor t, float value) {
        backend.makeCurrent();
        long at = address(Objects.requireNonNull(t, "tensor"));
        if (t.size() > 0) {
            cuMemsetD32Async(CudaBackend.pointerAt(at), Float.floatToRawIntBits(value), t.size(), backend.stream());
        }
    }

    // --- pooling -------------------------------------------------------------------------------------------------

    @Override
    public void maxPoolForward(Tensor x, Tensor y, Tensor argmax, int size) {
        backend.makeCurrent();
        NnChecks.maxPool(x, y, argmax, size);
        Shape s = x.shape();
        Object[] args = {address(x), address(y), address(argmax), s.n() * s.c(), s.h(), s.w(), size};
        if (y.size() > 0) {
            backend.launch(k.maxPoolForward(), backend.grid(k.maxPoolForward(), ceilDiv(y.size(), BLOCK)), 1, 1, BLOCK,
                    args);
        }
    }

    @Override
    public void maxPoolBackward(Tensor argmax, Tensor dy, Tensor dx, int size) {
        backend.makeCurrent();
        NnChecks.maxPoolBackward(argmax, dy, dx, size);
        Shape s = dx.shape();
        Object[] args = {address(argmax), address(dy), address(dx), s.n() * s.c(), s.h(), s.w(), size};
        if (dx.size() > 0) {
            backend.launch(k.maxPoolBackward(), backend.grid(k.maxPoolBackward(), ceilDiv(dx.size(), BLOCK)), 1, 1,
                    BLOCK, args);
        }
    }

    @Override
    public void globalAvgPoolForward(Tensor x, Tensor y) {
        backend.makeCurrent();
        NnChecks.globalAvgPool(x, "y", y);
        Shape s = x.shape();
        Object[] args = {address(x), address(y), s.n() * s.c(), s.h() * s.w()};
        if (y.size() > 0) {
            backend.launch(k.avgPoolForward(), backend.grid(k.avgPoolForward(), ceilDiv(y.size(), BLOCK)), 1, 1, BLOCK,
                    args);
        }
    }

    @Override
    public void globalAvgPoolBackward(Tensor dy, Tensor dx) {
        backend.makeCurrent();
        NnChecks.globalAvgPool(dx, "dy", dy);
        Shape s = dx.shape();
        Object[] args = {address(dy), address(dx), s.n() * s.c(), s.h() * s.w()};
        if (dx.size() > 0) {
            backend.launch(k.avgPoolBackward(), backend.grid(k.avgPoolBackward(), ceilDiv(dx.size(), BLOCK)), 1, 1,
                    BLOCK, args);
        }
    }

    // --- linear and loss -----------------------------------------------------------------------------------------

    @Override
    public void linearForward(Tensor x, Tensor w, Tensor b, Tensor y) {
        backend.makeCurrent();
        NnChecks.linear(x, w, b, y);
        linearForward(cublas, address(x), address(w), address(b), address(y), x.shape().n(), x.shape().sampleSize(),
                w.shape().n());
    }

    private void linearForward(CublasGemm blas, long x, long w, long b, long y, int n, int in, int out) {
        if (n == 0 || out == 0) {
            return;
        }
        if (blas == null || in == 0) {  // cuBLAS refuses a leading dimension of 0
            backend.launch(k.linearForward(), tiles(out), tiles(n), 1, BLOCK, x, w, b, y, n, in, out);
        } else {
            blas.forward(x, w, y, n, in, out);
            if (b != 0) {
                backend.launch(k.linearAddBias(), backend.grid(k.linearAddBias(), ceilDiv((long) n * out, BLOCK)), 1,
                        1, BLOCK, y, b, n, out);
            }
        }
    }

    @Override
    public void linearBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db) {
        backend.makeCurrent();
        NnChecks.linearBackward(x, w, dy, dx, dw, db);
        int n = x.shape().n();
        int in = x.shape().sampleSize();
        int out = w.shape().n();
        long xa = address(x);
        long wa = address(w);
        long dya = address(dy);
        long dxa = address(dx);
        long dwa = address(dw);
        long dba = address(db);
        linearBackwardWeight(cublas, dya, xa, dwa, n, in, out);
        if (dx != null) {
            linearBackwardData(cublas, dya, wa, dxa, n, in, out);
        }
        if (db != null && out > 0) {
            backend.launch(k.linearBiasGrad(), backend.grid(k.linearBiasGrad(), ceilDiv(out, BLOCK)), 1, 1, BLOCK, dya,
                    dba, n, out);
        }
    }

    private void linearBackwardData(CublasGemm blas, long dy, long w, long dx, int n, int in, int out) {
        if (n == 0 || in == 0) {
            return;
        }
        if (out == 0) {
            cuMemsetD32Async(CudaBackend.pointerAt(dx), 0, (long) n * in, backend.stream());
        } else if (blas == null) {
            backend.launch(k.linearBackwardData(), tiles(in), tiles(n), 1, BLOCK, dy, w, dx, n, in, out);
        } else {
            blas.backwardData(dy, w, dx, n, in, out);
        }
    }

    private void linearBackwardWeight(CublasGemm blas, long dy, long x, long dw, int n, int in, int out) {
        if (out == 0 || in == 0) {
            return;
        }
        if (n == 0) {
            cuMemsetD32Async(CudaBackend.pointerAt(dw), 0, (long) out * in, backend.stream());
        } else if (blas == null) {
            backend.launch(k.linearBackwardWeight(), tiles(in), tiles(out), 1, BLOCK, dy, x, dw, n, in, out);
        } else {
            blas.backwardWeight(dy, x, dw, n, in, out);
        }
    }

    /**
     * Runs the three products through cuBLAS and through the tiled kernels on one random problem whose sizes cross
     * the tiles; returns null when they agree within fp32 rounding, else what differed.
     */
    private String selfCheck(CublasGemm blas) {
        int n = 37;
        int in = 70;
        int out = 13;
        Random random = new Random(1);
        List<DeviceBuffer> buffers = new ArrayList<>();
        try {
            DeviceBuffer x = random(random, n * in, buffers);
            DeviceBuffer w = random(random, out * in, buffers);
            DeviceBuffer dy = random(random, n * out, buffers);
            DeviceBuffer[] results = new DeviceBuffer[6];
            long[] r = new long[results.length];
            for (int i = 0; i < r.length; i++) {
                results[i] = backend.allocate(DType.F32, new int[] {n * out, n * in, out * in}[i / 2]);
                buffers.add(results[i]);
                r[i] = backend.address(results[i]);
            }
            long xa = backend.address(x);
            long wa = backend.address(w);
            long dya = backend.address(dy);
            linearForward(blas, xa, wa, 0, r[0], n, in, out);
            linearForward(null, xa, wa, 0, r[1], n, in, out);
            linearBackwardData(blas, dya, wa, r[2], n, in, out);
            linearBackwardData(null, dya, wa, r[3], n, in, out);
            linearBackwardWeight(blas, dya, xa, r[4], n, in, out);
            linearBackwardWeight(null, dya, xa, r[5], n, in, out);
            String[] names = {"forward", "backward data", "backward weight"};
            for (int i = 0; i < 3; i++) {
                String d = differ(results[2 * i], results[2 * i + 1]);
                if (d != null) {
                    return names[i] + ": " + d;
                }
            }
            return null;
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    private DeviceBuffer random(Random random, int n, List<DeviceBuffer> owner) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        DeviceBuffer b = backend.allocate(DType.F32, n);
        owner.add(b);
        backend.write(v, 0, b, 0, n);
        return b;
    }

    private String differ(DeviceBuffer a, DeviceBuffer b) {
        float[] av = new float[(int) a.length()];
        float[] bv = new float[av.length];
        backend.read(a, 0, av, 0, av.length);
        backend.read(b, 0, bv, 0, bv.length);
        for (int i = 0; i < av.length; i++) {
            if (!(Math.abs(av[i] - bv[i]) <= 1e-4f * (1 + Math.abs(bv[i])))) {
                return "element " + i + ": cuBLAS " + av[i] + ", tiled " + bv[i];
            }
        }
        return null;
    }

    @Override
    public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor probs, Tensor dlogits, float[] lossesOut) {
        backend.makeCurrent();
        NnChecks.softmaxCrossEntropy(logits, labels, probs, dlogits, lossesOut);
        long za = address(logits);
        long pa = address(probs);
        long da = address(dlogits);
        int n = logits.shape().n();
        if (n == 0) {
            return Double.NaN;
        }
        this.labels = atLeast(this.labels, n);
        losses = atLeast(losses, n);
        backend.writeInts(labels, this.labels);
        backend.launch(k.softmaxXent(), backend.grid(k.softmaxXent(), ceilDiv(n, BLOCK)), 1, 1, BLOCK, za,
                backend.address(this.labels), pa, da, backend.address(losses), n, logits.shape().sampleSize());
        float[] l = new float[n];
        backend.read(losses, 0, l, 0, n);  // NOTE: [stream-order] in CudaBackend: waits for the step's kernels
        double total = 0;
        for (float v : l) {
            total += v;
        }
        if (lossesOut != null) {
            System.arraycopy(l, 0, lossesOut, 0, n);
        }
        return total / n;
    }

    // --- optimizer -----------------------------------------------------------------------------------------------

    @Override
    public void sgdEmaStep(DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum, Sgd sgd, double lr,
                           List<DeviceBuffer> shadows, float[] weights) {
        backend.makeCurrent();
        Objects.requireNonNull(sgd, "sgd");
        NnChecks.sgdStep(backend, params, grads, momentum, lr, shadows, weights);
        ByteBuffer s = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        s.putFloat((float) sgd.weightDecay()).putFloat((float) sgd.momentum()).putFloat((float) lr)
                .putInt(sgd.nesterov() ? 1 : 0);
        byte[] struct = CudaBackend.shadowsArgument(shadows, weights);
        long n = params.length();
        if (n > 0) {
            backend.launch(k.sgdStep(), backend.grid(k.sgdStep(), ceilDiv(ceilDiv(n, 4), BLOCK)), 1, 1, BLOCK,
                    backend.address(params), backend.address(grads), backend.address(momentum), n, s.array(),
                    struct);
        }
    }

    // --- helpers -------------------------------------------------------------------------------------------------

    /** The device address of a tensor's first element after checking it is this backend's; 0 for null. */
    private long address(Tensor t) {
        if (t == null) {
            return 0;
        }
        Checks.owned(backend, t.buffer(), "tensor " + t.shape());
        return backend.address(t.buffer()) + 4 * t.offset();
    }

    /** Scratch for split-K partial products and BatchNorm partial sums, grown on demand; returns its address. */
    private long workspace(long floats) {
        DeviceBuffer grown = atLeast(workspace, floats);
        if (grown != workspace) {
            workspace = grown;
            scratchGeneration++;
        }
        return backend.address(workspace);
    }

    /**
     * {@code buffer} if it holds at least {@code floats} elements, else a new buffer of that many with the old one
     * freed after (if the allocation fails, the old one is still valid).
     */
    private DeviceBuffer atLeast(DeviceBuffer buffer, long floats) {
        if (buffer != null && buffer.length() >= floats) {
            return buffer;
        }
        DeviceBuffer grown = backend.allocate(DType.F32, floats);
        if (buffer != null) {
            buffer.close();
        }
        return grown;
    }

    private static int tiles(int n) {
        return ceilDiv(n, TILE);
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static int roundUp(int a, int multiple) {
        return ceilDiv(a, multiple) * multiple;
    }

    /** Destroys the cuBLAS handle; the backend frees the memory. */
    @Override
    public void close() {
        if (cublas != null) {
            cublas.close();
        }
    }
}
