package dev.ema4j.nn;

import static dev.ema4j.ExceptionAssertions.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.nn.Expect.Tolerance;
import dev.ema4j.nn.Workspace.Layout;
import dev.ema4j.ops.NnOps;
import dev.ema4j.ops.Shape;
import dev.ema4j.ops.Tensor;
import dev.ema4j.optim.Sgd;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The conformance suite of the training operations ({@link NnOps}) that every backend passes: each operation,
 * forward and backward, against the double-precision oracle {@link Reference} (itself checked by finite differences
 * in {@link ReferenceTest}); every layer's gradients against finite differences; tensors placed at offsets inside
 * larger buffers, with the memory around them checked ({@link Workspace}); and every bad input, which must throw the
 * same exception type on every backend before anything is written.
 *
 * <p>Sizes cross the boundaries of the CUDA kernels: GEMM tiles of 64×64 with depth 16 (convolution as an implicit
 * GEMM of M = K, N = batch·P·Q and depth C·R·S forward, N·P·Q for the filter gradient, K·R·S for the data
 * gradient; linear layers likewise), thread blocks of 256 for elementwise operations, BatchNorm channels cut into
 * chunks of 2048 values (more past 256 chunks) that one block of 256 threads each reduces (NOTE: [bn-split] in
 * cuda/batchnorm.cu); and the CPU convolution's SGEMMs in slices of columns (NOTE: [gemm-slices] in CpuConv) that
 * cut image rows. Oracle results are computed once per case and shared by the layouts and backends.
 *
 * <p>Elementwise operations with a float formula (add, addTo, copy, fill, max pooling, the average pool's gradient,
 * the SGD and EMA steps) must match bit for bit, ReLU and pooled maxima up to the sign of a zero; reductions within
 * {@link Tolerance}s.
 */
abstract class NnConformanceSuite {

    /*
     * Tolerances, |ref − out| ≤ atolPerRms·rms(ref) + rtol·|ref| (Expect.Tolerance). A correct fp32 reduction of
     * depth D errs by about eps·√D times the size of its terms (eps = 6e-8): below 1e-5 of the output's RMS for
     * every depth here (CPU: worst 1.2e-6 for GEMMs; -Dema4j.test.margins=true prints each check's error over its
     * bound). The bounds leave room for other summation orders (tiles, split-K, tree reductions), while a term
     * dropped or counted twice (1.5% of the RMS even at depth 4160) or a wrong index fails.
     *
     * They need no room for FMA contraction: the CUDA kernels are built with -fmad=false (NOTE: [no-contraction] in
     * native/build-ptx.sh), so the GPU rounds every operation the source writes, as Java does, and fuses a
     * multiply-add only where both write fma. Had nvcc contracted a·b + c, the result would move by up to one
     * rounding of the product, 2⁻²⁴·|a·b| in fp32 (2⁻⁵³ in double): of the order of the rounding already in each
     * result, so inside these bounds, but for an a·b + c that cancels to far less than a·b, where only a tolerance
     * scaled by the terms rather than the result would cover it. Equal arithmetic makes that case analysis
     * unnecessary: what differs between the backends is the order of the sums (and, for softmax, CUDA's exp and log).
     */

    /** Convolution and linear outputs: fp32 dot products of depth up to 4160 against double. */
    static final Tolerance GEMM = new Tolerance(5e-4, 5e-4);
    /**
     * BatchNorm outputs, statistics and gradients, and average pooling. Looser than GEMM because the saved mean and
     * inverse deviation are floats: channel 1 of every case has a mean 1000 times its spread (100 and 0.1), where
     * rounding the mean and x − mean costs up to 1.6e-4 of y's RMS, and 3e-4 of the size of the terms dx cancels
     * from, on the CPU. A variance taken as E[x²] − E[x]² with fp32 sums fails every BatchNorm case.
     */
    static final Tolerance REDUCTION = new Tolerance(1e-3, 1e-3);
    /** Softmax probabilities, losses and their gradient: exp and log of fp32 logits, ulp-level errors. */
    static final Tolerance SOFTMAX = new Tolerance(1e-5, 1e-4);

    static final int[] ELEMENTWISE_SIZES = {1, 3, 255, 256, 257, 4097, 70_001};

    private static final Map<Object, Object> ORACLE = new ConcurrentHashMap<>();

    protected Backend backend;
    protected NnOps ops;

    /** A new backend under test. */
    protected abstract Backend newBackend();

    @BeforeEach
    void openBackend() {
        backend = newBackend();
        ops = TrainingOps.of(backend);
    }

    @AfterEach
    void closeBackend() {
        backend.close();
    }

    Workspace workspace(Layout layout) {
        return new Workspace(backend, layout);
    }

    // --- convolution ---------------------------------------------------------------------------------------------

    /** A convolution to check: its geometry, whether it has a bias, and why it is here. */
    record ConvCase(String why, Reference.Conv g, boolean bias) {
        @Override
        public String toString() {
            return why + ": " + g + (bias ? ", bias" : "");
        }
    }

    static ConvCase conv(String why, int n, int c, int h, int w, int k, int r, int s, int stride, int pad,
                         boolean bias) {
        return new ConvCase(why, new Reference.Conv(n, c, h, w, k, r, s, stride, pad), bias);
    }

    static final List<ConvCase> CONV_CASES = List.of(
            conv("small, odd sizes", 2, 3, 7, 9, 4, 3, 3, 1, 1, true),
            conv("every dimension 1", 1, 1, 1, 1, 1, 1, 1, 1, 0, true),
            conv("K 65, depth C·R·S 567 = 63·9, data-gradient depth 585", 3, 63, 5, 5, 65, 3, 3, 1, 1, true),
            conv("1x1, K 64, depth 64, N·P·Q 128", 2, 64, 8, 8, 64, 1, 1, 1, 0, false),
            conv("1x1 stride 2, K 63, depth 65", 2, 65, 9, 9, 63, 1, 1, 2, 0, true),
            conv("N·P·Q 3380: filter-gradient depth 3380", 5, 2, 26, 26, 17, 3, 3, 1, 1, true),
            conv("K 130, stride 2, depth 63, data-gradient depth 1170", 2, 7, 11, 11, 130, 3, 3, 2, 1, false),
            conv("stride 2, pad 0", 3, 5, 10, 9, 8, 3, 3, 2, 0, true),
            conv("K 1, N·P·Q 64, depth 144, data-gradient depth 9", 1, 16, 8, 8, 1, 3, 3, 1, 1, false),
            conv("depth 153, no padding", 4, 17, 8, 8, 16, 3, 3, 1, 0, true),
            conv("N·P·Q 256", 1, 4, 16, 16, 64, 3, 3, 1, 1, false),
            conv("N·P·Q 257 of 1x1 images, depth 3", 257, 3, 1, 1, 65, 1, 1, 1, 0, true),
            conv("N·P·Q 4160 in one image", 1, 1, 64, 65, 2, 3, 3, 1, 1, true),
            conv("K 130, N·P·Q 512, depth 72", 2, 8, 16, 16, 130, 3, 3, 1, 1, false),
            conv("1x1 with pad 1 > R − 1", 2, 3, 6, 5, 5, 1, 1, 1, 1, true),
            conv("5x5, stride 2, pad 2", 2, 2, 9, 7, 3, 5, 5, 2, 2, true),
            conv("input smaller than the kernel, padded", 1, 2, 2, 2, 3, 3, 3, 1, 1, true),
            conv("3x1 kernel", 2, 3, 6, 7, 4, 3, 1, 1, 0, true),
            conv("1x3 kernel, pad 1", 2, 3, 5, 6, 4, 1, 3, 1, 1, false),
            conv("2x3 kernel, stride 2, pad 1", 1, 2, 6, 5, 2, 2, 3, 2, 1, true),
            conv("CPU SGEMM slices of 96 columns cut 30-wide rows (depth 288, 900 columns)", 2, 32, 30, 30, 5, 3, 3, 1, 1,
                    false),
            conv("CPU SGEMM slices across rows of 21, stride 2 (depth 360)", 1, 40, 41, 41, 3, 3, 3, 2, 1, true),
            conv("CPU SGEMM slices across rows of 28, no padding (depth 360)", 1, 40, 30, 30, 3, 3, 3, 1, 0, false));

    /** The inputs of a convolution case and the oracle's results for them. */
    record ConvData(float[] x, float[] w, float[] b, float[] dy, double[] y, double[] dx, double[] dw, double[] db) {
    }

    static ConvData convData(ConvCase c) {
        return oracle(c, () -> {
            Reference.Conv g = c.g();
            Random random = new Random(c.toString().hashCode());
            float[] x = gaussian(random, g.x().size(), 1);
            float[] w = gaussian(random, g.weights().size(), 1 / Math.sqrt(g.c() * g.r() * g.s()));
            float[] b = c.bias() ? gaussian(random, g.k(), 1) : null;
            float[] dy = gaussian(random, g.y().size(), 1);
            double[] wd = Reference.toDouble(w);
            return new ConvData(x, w, b, dy,
                    Reference.convForward(g, Reference.toDouble(x), wd, b == null ? null : Reference.toDouble(b)),
                    Reference.convBackwardData(g, wd, Reference.toDouble(dy)),
                    Reference.convBackwardFilter(g, Reference.toDouble(x), Reference.toDouble(dy)),
                    Reference.convBackwardBias(g, Reference.toDouble(dy)));
        });
    }

    static Stream<Arguments> convCases() {
        return withLayouts(CONV_CASES);
    }

    @ParameterizedTest(name = "{0}; {1}")
    @MethodSource("convCases")
    void conv2dForwardAndBackward(ConvCase c, Layout layout) throws Throwable {
        Reference.Conv g = c.g();
        ConvData d = convData(c);
        String where = c + ", " + layout;
        try (Workspace ws = workspace(layout)) {
            Tensor x = ws.in("x", g.x(), d.x());
            Tensor w = ws.in("w", g.weights(), d.w());
            Tensor b = c.bias() ? ws.in("bias", Shape.of(1, g.k()), d.b()) : null;
            Tensor y = ws.out("y", g.y());
            ops.conv2dForward(x, w, b, y, g.stride(), g.pad());
            ws.verify("conv2dForward");
            Expect.close("conv2dForward y, " + where, d.y(), ws.read(y), GEMM, g.y());

            Tensor dy = ws.in("dy", g.y(), d.dy());
            Tensor dwOnly = ws.out("dw without dx and dbias", g.weights());
            ops.conv2dBackward(x, w, dy, null, dwOnly, null, g.stride(), g.pad());
            ws.verify("conv2dBackward without dx and dbias");
            Expect.close("conv2dBackward dw without dx and dbias, " + where, d.dw(), ws.read(dwOnly), GEMM,
                    g.weights());

            Tensor dx = ws.out("dx", g.x());
            Tensor dw = ws.out("dw", g.weights());
            Tensor db = ws.out("dbias", Shape.of(1, g.k()));
            ops.conv2dBackward(x, w, dy, dx, dw, db, g.stride(), g.pad());
            ws.verify("conv2dBackward");
            Expect.close("conv2dBackward dx, " + where, d.dx(), ws.read(dx), GEMM, g.x());
            Expect.close("conv2dBackward dw, " + where, d.dw(), ws.read(dw), GEMM, g.weights());
            Expect.close("conv2dBackward dbias, " + where, d.db(), ws.read(db), GEMM, Shape.of(1, g.k()));
        }
    }

    // --- batch norm ----------------------------------------------------------------------------------------------

    /** A BatchNorm shape (M = N·H·W values per channel) with its momentum and epsilon. */
    record BnCase(String why, Shape x, double momentum, double eps) {
        int m() {
            return x.n() * x.h() * x.w();
        }

        @Override
        public String toString() {
            return why + ": x " + x + ", momentum " + momentum + ", eps " + eps;
        }
    }

    static final List<BnCase> BN_CASES = List.of(
            new BnCase("M 2, the fewest", new Shape(2, 3, 1, 1), 0.1, 1e-5),
            new BnCase("M 255", new Shape(1, 5, 3, 85), 0.1, 1e-5),
            new BnCase("M 256", new Shape(4, 2, 8, 8), 0.1, 1e-5),
            new BnCase("M 257", new Shape(1, 3, 257, 1), 0.1, 1e-5),
            new BnCase("M 1156", new Shape(4, 6, 17, 17), 1.0, 1e-5),
            new BnCase("M 8448", new Shape(8, 2, 32, 33), 0.1, 1e-5),
            new BnCase("65 channels of M 12", new Shape(3, 65, 2, 2), 0.0, 1e-3),
            new BnCase("257 channels of M 4", new Shape(2, 257, 2, 1), 0.5, 1e-5),
            new BnCase("M 4100 in 1x1 planes: 3 chunks per channel, a sample per thread", new Shape(4100, 3, 1, 1),
                    0.1, 1e-5),
            new BnCase("M 526635: 229 chunks of 2304 per channel, samples ending mid-chunk", new Shape(3, 2, 415, 423),
                    0.1, 1e-5));

    /**
     * The mean and spread of BatchNorm input channel c: row {@code c % 6}. Channel 1 of every case has a mean 1000
     * times its spread, where a variance taken as E[x²] − E[x]² in fp32 cancels.
     */
    private static final double[][] CHANNELS = {{0, 1}, {100, 0.1}, {2, 5}, {-30, 1}, {100, 1}, {0, 0.1}};

    /** The inputs of a BatchNorm case and the oracle's results for them (ReLU applied by the user of y). */
    record BnData(float[] x, float[] gamma, float[] beta, float[] runningMean, float[] runningVar, float[] dy,
                  double[] mean, double[] invStd, double[] newRunningMean, double[] newRunningVar, double[] y,
                  double[] yEval) {
    }

    static BnData bnData(BnCase c) {
        return oracle(c, () -> {
            Shape s = c.x();
            int hw = s.h() * s.w();
            Random random = new Random(c.toString().hashCode());
            float[] x = new float[s.size()];
            for (int n = 0; n < s.n(); n++) {
                for (int ch = 0; ch < s.c(); ch++) {
                    for (int i = 0; i < hw; i++) {
                        double[] meanAndSpread = CHANNELS[ch % CHANNELS.length];
                        x[(n * s.c() + ch) * hw + i] = (float) (meanAndSpread[0]
                                + meanAndSpread[1] * random.nextGaussian());
                    }
                }
            }
            float[] gamma = new float[s.c()];
            float[] runningVar = new float[s.c()];
            for (int ch = 0; ch < s.c(); ch++) {
                gamma[ch] = (float) (1 + 0.5 * random.nextGaussian());
                runningVar[ch] = (float) (0.5 + 1.5 * random.nextDouble());
            }
            float[] beta = gaussian(random, s.c(), 1);
            float[] runningMean = gaussian(random, s.c(), 1);
            float[] dy = gaussian(random, s.size(), 1);
            double[] xd = Reference.toDouble(x);
            Reference.Moments m = Reference.moments(xd, s.n(), s.c(), hw);
            double[] invStd = new double[s.c()];
            double[] unbiased = new double[s.c()];
            for (int ch = 0; ch < s.c(); ch++) {
                invStd[ch] = 1 / Math.sqrt(m.var()[ch] + c.eps());
                unbiased[ch] = m.var()[ch] * c.m() / (c.m() - 1);
            }
            double[] rmd = Reference.toDouble(runningMean);
            double[] rvd = Reference.toDouble(runningVar);
            return new BnData(x, gamma, beta, runningMean, runningVar, dy, m.mean(), invStd,
                    Reference.runningUpdate(rmd, m.mean(), c.momentum()),
                    Reference.runningUpdate(rvd, unbiased, c.momentum()),
                    Reference.batchNormAffine(xd, s.n(), s.c(), hw, m.mean(), m.var(), Reference.toDouble(gamma),
                            Reference.toDouble(beta), c.eps(), false),
                    Reference.batchNormAffine(xd, s.n(), s.c(), hw, rmd, rvd, Reference.toDouble(gamma),
                            Reference.toDouble(beta), c.eps(), false));
        });
    }

    static Stream<Arguments> bnCases() {
        return BN_CASES.stream().flatMap(c -> Stream.of(false, true).flatMap(relu ->
                Stream.of(Layout.values()).map(layout -> Arguments.of(c, relu, layout))));
    }

    @ParameterizedTest(name = "{0}; relu {1}; {2}")
    @MethodSource("bnCases")
    void batchNormForwardTrain(BnCase c, boolean relu, Layout layout) {
        BnData d = bnData(c);
        Shape s = c.x();
        Shape ch = Shape.of(1, s.c());
        String where = c + (relu ? ", relu, " : ", ") + layout;
        try (Workspace ws = workspace(layout)) {
            Tensor x = ws.in("x", s, d.x());
            Tensor gamma = ws.in("gamma", ch, d.gamma());
            Tensor beta = ws.in("beta", ch, d.beta());
            Tensor y = ws.out("y", s);
            Tensor saveMean = ws.out("saveMean", ch);
            Tensor saveInvStd = ws.out("saveInvStd", ch);
            Tensor runningMean = ws.inOut("runningMean", ch, d.runningMean());
            Tensor runningVar = ws.inOut("runningVar", ch, d.runningVar());
            ops.batchNormForwardTrain(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, c.momentum(),
                    c.eps(), relu);
            ws.verify("batchNormForwardTrain");
            Expect.close("batchNormForwardTrain y, " + where, relu ? Reference.relu(d.y()) : d.y(), ws.read(y),
                    REDUCTION, s);
            Expect.close("batchNormForwardTrain saveMean, " + where, d.mean(), ws.read(saveMean), REDUCTION, ch);
            Expect.close("batchNormForwardTrain saveInvStd, " + where, d.invStd(), ws.read(saveInvStd), REDUCTION,
                    ch);
            Expect.close("batchNormForwardTrain runningMean, " + where, d.newRunningMean(), ws.read(runningMean),
                    REDUCTION, ch);
            Expect.close("batchNormForwardTrain runningVar (unbiased), " + where, d.newRunningVar(),
                    ws.read(runningVar), REDUCTION, ch);
        }
    }

    @ParameterizedTest(name = "{0}; relu {1}; {2}")
    @MethodSource("bnCases")
    void batchNormForwardEval(BnCase c, boolean relu, Layout layout) {
        BnData d = bnData(c);
        Shape s = c.x();
        Shape ch = Shape.of(1, s.c());
        try (Workspace ws = workspace(layout)) {
            Tensor x = ws.in("x", s, d.x());
            Tensor gamma = ws.in("gamma", ch, d.gamma());
            Tensor beta = ws.in("beta", ch, d.beta());
            Tensor runningMean = ws.in("runningMean", ch, d.runningMean());
            Tensor runningVar = ws.in("runningVar", ch, d.runningVar());
            Tensor y = ws.out("y", s);
            ops.batchNormForwardEval(x, gamma, beta, runningMean, runningVar, y, c.eps(), relu);
            ws.verify("batchNormForwardEval");
            Expect.close("batchNormForwardEval y, " + c + (relu ? ", relu, " : ", ") + layout,
                    relu ? Reference.relu(d.yEval()) : d.yEval(), ws.read(y), REDUCTION, s);
        }
    }

    /**
     * The backward pass given the saved statistics (the batch's, rounded to float as the forward pass saves them)
     * and, with the fused ReLU, its output (the batch-norm output rounded to float, then ReLU): the oracle masks by
     * the same floats, so the mask is exact.
     */
    @ParameterizedTest(name = "{0}; relu {1}; {2}")
    @MethodSource("bnCases")
    void batchNormBackward(BnCase c, boolean relu, Layout layout) throws Throwable {
        BnData d = bnData(c);
        Shape s = c.x();
        Shape ch = Shape.of(1, s.c());
        float[] mean = Reference.toFloat(d.mean());
        float[] invStd = Reference.toFloat(d.invStd());
        float[] y = Reference.toFloat(Reference.relu(d.y()));
        Reference.BatchNormGrads expected = Reference.batchNormBackward(Reference.toDouble(d.x()), s.n(), s.c(),
                s.h() * s.w(), Reference.toDouble(d.gamma()), Reference.toDouble(mean), Reference.toDouble(invStd),
                relu ? Reference.toDouble(y) : null, Reference.toDouble(d.dy()));
        String where = c + (relu ? ", relu, " : ", ") + layout;
        // dx = gamma·invStd·(g − dbeta/M − x̂·dgamma/M) cancels to nearly 0 where M is small (exactly 0 for M = 2
        // without eps): its error is relative to the size of gamma·invStd·g, not of dx
        double[] dxTerms = new double[s.size()];
        for (int i = 0; i < dxTerms.length; i++) {
            int channel = i / (s.h() * s.w()) % s.c();
            dxTerms[i] = d.gamma()[channel] * (double) invStd[channel] * d.dy()[i];
        }
        double dxScale = Expect.rms(dxTerms);
        try (Workspace ws = workspace(layout)) {
            Tensor x = ws.in("x", s, d.x());
            Tensor gamma = ws.in("gamma", ch, d.gamma());
            Tensor saveMean = ws.in("saveMean", ch, mean);
            Tensor saveInvStd = ws.in("saveInvStd", ch, invStd);
            Tensor yRelu = relu ? ws.in("relu (the forward output)", s, y) : null;
            Tensor dy = ws.in("dy", s, d.dy());
            Tensor dx = ws.out("dx", s);
            Tensor dgamma = ws.out("dgamma", ch);
            Tensor dbeta = ws.out("dbeta", ch);
            ops.batchNormBackward(x, gamma, saveMean, saveInvStd, yRelu, dy, dx, dgamma, dbeta);
            ws.verify("batchNormBackward");
            Expect.close("batchNormBackward dx, " + where, expected.dx(), ws.read(dx), REDUCTION, s, dxScale);
            Expect.close("batchNormBackward dgamma, " + where, expected.dgamma(), ws.read(dgamma), REDUCTION, ch);
            Expect.close("batchNormBackward dbeta, " + where, expected.dbeta(), ws.read(dbeta), REDUCTION, ch);
        }
    }

    static Stream<BnCase> multiChunkBnCases() {
        return BN_CASES.stream().filter(c -> c.m() > 2048);
    }

    /**
     * BatchNorm forward (with the fused ReLU) and backward twice on the same inputs give the same bits: each of their
     * sums is a fixed expression of the inputs, however a device schedules the blocks of a channel (NOTE:
     * [bn-split] in cuda/batchnorm.cu).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("multiChunkBnCases")
    void batchNormRepeatsBitForBit(BnCase c) {
        BnData d = bnData(c);
        Shape s = c.x();
        Shape ch = Shape.of(1, s.c());
        String[] names = {"y", "saveMean", "saveInvStd", "runningMean", "runningVar", "dx", "dgamma", "dbeta"};
        float[][] first = null;
        for (int run = 0; run < 2; run++) {
            try (Workspace ws = workspace(Layout.SEPARATE)) {
                Tensor x = ws.in("x", s, d.x());
                Tensor gamma = ws.in("gamma", ch, d.gamma());
                Tensor beta = ws.in("beta", ch, d.beta());
                Tensor y = ws.out("y", s);
                Tensor saveMean = ws.out("saveMean", ch);
                Tensor saveInvStd = ws.out("saveInvStd", ch);
                Tensor runningMean = ws.inOut("runningMean", ch, d.runningMean());
                Tensor runningVar = ws.inOut("runningVar", ch, d.runningVar());
                ops.batchNormForwardTrain(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar,
                        c.momentum(), c.eps(), true);
                Tensor dy = ws.in("dy", s, d.dy());
                Tensor dx = ws.out("dx", s);
                Tensor dgamma = ws.out("dgamma", ch);
                Tensor dbeta = ws.out("dbeta", ch);
                ops.batchNormBackward(x, gamma, saveMean, saveInvStd, y, dy, dx, dgamma, dbeta);
                ws.verify("batchNorm forward and backward");
                float[][] out = {ws.read(y), ws.read(saveMean), ws.read(saveInvStd), ws.read(runningMean),
                    ws.read(runningVar), ws.read(dx), ws.read(dgamma), ws.read(dbeta)};
                if (first == null) {
                    first = out;
                } else {
                    for (int i = 0; i < out.length; i++) {
                        Expect.bits("batchNorm " + names[i] + " of a second run, " + c, first[i], out[i],
                                out[i].length == s.size() ? s : ch);
                    }
                }
            }
        }
    }

    @Test
    void batchNormNeedsMoreThanOneValuePerChannel() {
        Shape s = new Shape(1, 2, 1, 1);
        Shape ch = Shape.of(1, 2);
        try (Workspace ws = workspace(Layout.SEPARATE)) {
            Tensor x = ws.in("x", s, new float[] {1, 2});
            Tensor gamma = ws.in("gamma", ch, new float[] {1, 1});
            Tensor beta = ws.in("beta", ch, new float[] {0, 0});
            Tensor y = ws.out("y", s);
            Tensor saveMean = ws.out("saveMean", ch);
            Tensor saveInvStd = ws.out("saveInvStd", ch);
            Tensor runningMean = ws.in("runningMean", ch, new float[] {0, 0});
            Tensor runningVar = ws.in("runningVar", ch, new float[] {1, 1});
            ws.freeze();
            assertMessage(IllegalArgumentException.class, () -> ops.batchNormForwardTrain(x, gamma, beta, y, saveMean,
                    saveInvStd, runningMean, runningVar, 0.1, 1e-5, false), s.toString());
            ws.verify("batchNormForwardTrain of one value per channel");
            for (double momentum : new double[] {-0.1, 1.5, Double.NaN}) {
                Tensor x2 = ws.in("x of two values", new Shape(2, 2, 1, 1), new float[] {1, 2, 3, 4});
                Tensor y2 = ws.out("y of two values", new Shape(2, 2, 1, 1));
                ws.freeze();
                assertMessage(IllegalArgumentException.class, () -> ops.batchNormForwardTrain(x2, gamma, beta, y2,
                        saveMean, saveInvStd, runningMean, runningVar, momentum, 1e-5, false), "momentum");
                ws.verify("batchNormForwardTrain with momentum " + momentum);
            }
        }
    }

    // --- elementwise ---------------------------------------------------------------------------------------------

    static Stream<Arguments> elementwiseSizes() {
        return Arrays.stream(ELEMENTWISE_SIZES).boxed().flatMap(n -> Stream.of(Layout.values())
                .map(layout -> Arguments.of(n, layout)));
    }

    @ParameterizedTest(name = "{0} elements; {1}")
    @MethodSource("elementwiseSizes")
    void relu(int n, Layout layout) {
        Shape s = Shape.of(1, n);
        float[] x = specials(new Random(n), n);
        float[] dy = specials(new Random(n + 1), n);
        float[] y = new float[n];
        float[] dx = new float[n];
        for (int i = 0; i < n; i++) {
            y[i] = x[i] > 0 ? x[i] : 0f;
            dx[i] = y[i] > 0 ? dy[i] : 0f;
        }
        try (Workspace ws = workspace(layout)) {
            Tensor xt = ws.in("x", s, x);
            Tensor yt = ws.out("y", s);
            ops.reluForward(xt, yt);
            ws.verify("reluForward");
            Expect.values("reluForward y, " + layout, y, ws.read(yt), s);
            Tensor dyt = ws.in("dy", s, dy);
            Tensor dxt = ws.out("dx", s);
            ops.reluBackward(yt, dyt, dxt);
            ws.verify("reluBackward");
            Expect.values("reluBackward dx, " + layout, dx, ws.read(dxt), s);
        }
    }

    @ParameterizedTest(name = "{0} elements; {1}")
    @MethodSource("elementwiseSizes")
    void addAndAddTo(int n, Layout layout) {
        Shape s = new Shape(1, 1, 1, n);
        float[] a = specials(new Random(n + 2), n);
        float[] b = specials(new Random(n + 3), n);
        float[] sum = new float[n];
        for (int i = 0; i < n; i++) {
            sum[i] = a[i] + b[i];
        }
        try (Workspace ws = workspace(layout)) {
            Tensor at = ws.in("a", s, a);
            Tensor bt = ws.in("b", s, b);
            Tensor y = ws.out("y", s);
            ops.add(at, bt, y);
            ws.verify("add");
            Expect.bits("add y, " + layout, sum, ws.read(y), s);
            Tensor target = ws.inOut("y of addTo", s, b);
            ops.addTo(at, target);
            ws.verify("addTo");
            Expect.bits("addTo y, " + layout, sum, ws.read(target), s);
        }
    }

    @ParameterizedTest(name = "{0} elements; {1}")
    @MethodSource("elementwiseSizes")
    void copyAndFill(int n, Layout layout) {
        Shape s = new Shape(1, 1, n, 1);
        float[] src = specials(new Random(n + 4), n);
        try (Workspace ws = workspace(layout)) {
            Tensor srcT = ws.in("src", s, src);
            Tensor dst = ws.out("dst", s);
            ops.copy(srcT, dst);
            ws.verify("copy");
            Expect.bits("copy dst, " + layout, src, ws.read(dst), s);
            for (float value : new float[] {0f, -0f, 1.5f, Float.MIN_VALUE, -3e38f}) {
                Tensor t = ws.out("filled with " + value, s);
                ops.fill(t, value);
                ws.verify("fill");
                float[] expected = new float[n];
                Arrays.fill(expected, value);
                Expect.bits("fill " + value + ", " + layout, expected, ws.read(t), s);
            }
        }
    }

    @ParameterizedTest(name = "{0} elements, shifted by {1}")
    @MethodSource("overlappingCopies")
    void copyBetweenOverlappingViewsOfOneBufferMovesTheValues(int n, int shift) {
        float[] values = specials(new Random(n * 31L + shift), n + Math.abs(shift));
        float[] expected = values.clone();
        int from = shift > 0 ? 0 : -shift;
        int to = shift > 0 ? shift : 0;
        System.arraycopy(values, from, expected, to, n);  // memmove semantics
        try (DeviceBuffer b = backend.allocate(DType.F32, values.length)) {
            backend.write(values, 0, b, 0, values.length);
            Shape s = new Shape(1, 1, n, 1);
            ops.copy(new Tensor(b, from, s), new Tensor(b, to, s));
            float[] got = new float[values.length];
            backend.read(b, 0, got, 0, got.length);
            Expect.bits("copy shifted by " + shift, expected, got, new Shape(1, 1, values.length, 1));
        }
    }

    static Stream<Arguments> overlappingCopies() {
        return Stream.of(Arguments.of(1, 1), Arguments.of(1000, 3), Arguments.of(1000, -3), Arguments.of(4099, 1),
                Arguments.of(4099, -4096));
    }

    // --- pooling -------------------------------------------------------------------------------------------------

    /** A max-pooling case; {@code ties} draws small integers and signed zeros, so windows hold equal maxima. */
    record PoolCase(String why, Shape x, int k, boolean ties) {
        Shape y() {
            return new Shape(x.n(), x.c(), x.h() / k, x.w() / k);
        }

        @Override
        public String toString() {
            return why + ": x " + x + ", " + k + "x" + k + (ties ? ", ties" : "");
        }
    }

    static final List<PoolCase> POOL_CASES = List.of(
            new PoolCase("every dimension 1", new Shape(1, 1, 1, 1), 1, false),
            new PoolCase("2x2, odd sizes cut off", new Shape(3, 5, 9, 11), 2, true),
            new PoolCase("2x2, 25088 outputs", new Shape(2, 64, 28, 28), 2, false),
            new PoolCase("3x3", new Shape(2, 3, 7, 8), 3, true),
            new PoolCase("2x2 of ties and signed zeros", new Shape(1, 2, 4, 6), 2, true),
            new PoolCase("257 planes", new Shape(1, 257, 2, 2), 2, true),
            new PoolCase("4x4, rows and columns cut off", new Shape(1, 3, 9, 10), 4, true));

    static Stream<Arguments> poolCases() {
        return withLayouts(POOL_CASES);
    }

    @ParameterizedTest(name = "{0}; {1}")
    @MethodSource("poolCases")
    void maxPoolForwardAndBackward(PoolCase c, Layout layout) {
        Shape xs = c.x();
        Shape ys = c.y();
        Random random = new Random(c.toString().hashCode());
        float[] x = new float[xs.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = c.ties() ? (random.nextInt(8) == 0 ? -0f : random.nextInt(5) - 2) : (float) random.nextGaussian();
        }
        Reference.MaxPool pool = Reference.maxPool(Reference.toDouble(x), xs.n() * xs.c(), xs.h(), xs.w(), c.k());
        float[] argmax = new float[ys.size()];
        for (int i = 0; i < argmax.length; i++) {
            argmax[i] = pool.argmax()[i];
        }
        float[] dy = gaussian(random, ys.size(), 1);
        float[] dx = new float[xs.size()];
        int plane = xs.h() * xs.w();
        for (int i = 0; i < argmax.length; i++) {
            dx[i / (ys.h() * ys.w()) * plane + pool.argmax()[i]] = dy[i];
        }
        String where = c + ", " + layout;
        try (Workspace ws = workspace(layout)) {
            Tensor xt = ws.in("x", xs, x);
            Tensor y = ws.out("y", ys);
            Tensor am = ws.out("argmax", ys);
            ops.maxPoolForward(xt, y, am, c.k());
            ws.verify("maxPoolForward");
            Expect.bits("maxPoolForward argmax (first maximum, row-major), " + where, argmax, ws.read(am), ys);
            Expect.values("maxPoolForward y, " + where, Reference.toFloat(pool.y()), ws.read(y), ys);
            Tensor dyt = ws.in("dy", ys, dy);
            Tensor dxt = ws.out("dx", xs);
            ops.maxPoolBackward(am, dyt, dxt, c.k());
            ws.verify("maxPoolBackward");
            Expect.bits("maxPoolBackward dx, " + where, dx, ws.read(dxt), xs);
        }
    }

    static final List<Shape> AVG_POOL_SHAPES = List.of(new Shape(1, 1, 1, 1), new Shape(2, 3, 7, 7),
            new Shape(4, 64, 4, 4), new Shape(1, 257, 16, 16), new Shape(2, 5, 17, 17), new Shape(3, 2, 28, 28));

    static Stream<Arguments> avgPoolShapes() {
        return withLayouts(AVG_POOL_SHAPES);
    }

    @ParameterizedTest(name = "x {0}; {1}")
    @MethodSource("avgPoolShapes")
    void globalAvgPoolForwardAndBackward(Shape xs, Layout layout) {
        Shape ys = Shape.of(xs.n(), xs.c());
        int plane = xs.h() * xs.w();
        Random random = new Random(xs.toString().hashCode());
        float[] x = gaussian(random, xs.size(), 1);
        for (int i = 0; i < x.length; i++) {
            x[i] += i / plane % 3;
        }
        float[] dy = specials(random, ys.size());
        float[] dx = new float[xs.size()];
        for (int i = 0; i < dx.length; i++) {
            dx[i] = dy[i / plane] / plane;
        }
        try (Workspace ws = workspace(layout)) {
            Tensor xt = ws.in("x", xs, x);
            Tensor y = ws.out("y", ys);
            ops.globalAvgPoolForward(xt, y);
            ws.verify("globalAvgPoolForward");
            Expect.close("globalAvgPoolForward y, x " + xs + ", " + layout,
                    Reference.globalAvgPool(Reference.toDouble(x), ys.size(), plane), ws.read(y), REDUCTION, ys);
            Tensor dyt = ws.in("dy", ys, dy);
            Tensor dxt = ws.out("dx", xs);
            ops.globalAvgPoolBackward(dyt, dxt);
            ws.verify("globalAvgPoolBackward");
            Expect.bits("globalAvgPoolBackward dx = dy/(H·W), x " + xs + ", " + layout, dx, ws.read(dxt), xs);
        }
    }

    // --- linear --------------------------------------------------------------------------------------------------

    /** A linear layer x (N, I) → y (N, O). */
    record LinearCase(String why, int n, int in, int out, boolean bias) {
        @Override
        public String toString() {
            return why + ": N " + n + ", I " + in + ", O " + out + (bias ? ", bias" : "");
        }
    }

    static final List<LinearCase> LINEAR_CASES = List.of(
            new LinearCase("every dimension 1", 1, 1, 1, true),
            new LinearCase("I 64", 3, 64, 10, true),
            new LinearCase("N 65, I 63, O 130", 65, 63, 130, true),
            new LinearCase("N 128, I 65, O 64", 128, 65, 64, false),
            new LinearCase("I 1000", 2, 1000, 3, true),
            new LinearCase("N 257, O 1", 257, 16, 1, true));

    static Stream<Arguments> linearCases() {
        return withLayouts(LINEAR_CASES);
    }

    @ParameterizedTest(name = "{0}; {1}")
    @MethodSource("linearCases")
    void linearForwardAndBackward(LinearCase c, Layout layout) {
        Shape xs = Shape.of(c.n(), c.in());
        Shape wShape = Shape.of(c.out(), c.in());
        Shape ys = Shape.of(c.n(), c.out());
        Shape bs = Shape.of(1, c.out());
        Random random = new Random(c.toString().hashCode());
        float[] x = gaussian(random, xs.size(), 1);
        float[] w = gaussian(random, wShape.size(), 1 / Math.sqrt(c.in()));
        float[] b = gaussian(random, c.out(), 1);
        float[] dy = gaussian(random, ys.size(), 1);
        double[] xd = Reference.toDouble(x);
        double[] wd = Reference.toDouble(w);
        double[] expectedY = Reference.linear(xd, c.n(), c.in(), wd, c.bias() ? Reference.toDouble(b) : null, c.out());
        Reference.LinearGrads grads = Reference.linearBackward(xd, c.n(), c.in(), wd, c.out(), Reference.toDouble(dy));
        String where = c + ", " + layout;
        try (Workspace ws = workspace(layout)) {
            Tensor xt = ws.in("x", xs, x);
            Tensor wt = ws.in("w", wShape, w);
            Tensor bt = c.bias() ? ws.in("b", bs, b) : null;
            Tensor y = ws.out("y", ys);
            ops.linearForward(xt, wt, bt, y);
            ws.verify("linearForward");
            Expect.close("linearForward y, " + where, expectedY, ws.read(y), GEMM, ys);
            Tensor dyt = ws.in("dy", ys, dy);
            Tensor dx = ws.out("dx", xs);
            Tensor dw = ws.out("dw", wShape);
            Tensor db = ws.out("db", bs);
            ops.linearBackward(xt, wt, dyt, dx, dw, db);
            ws.verify("linearBackward");
            Expect.close("linearBackward dx, " + where, grads.dx(), ws.read(dx), GEMM, xs);
            Expect.close("linearBackward dw, " + where, grads.dw(), ws.read(dw), GEMM, wShape);
            Expect.close("linearBackward db, " + where, grads.db(), ws.read(db), GEMM, bs);
            Tensor dwOnly = ws.out("dw without dx and db", wShape);
            ops.linearBackward(xt, wt, dyt, null, dwOnly, null);
            ws.verify("linearBackward without dx and db");
            Expect.close("linearBackward dw without dx and db, " + where, grads.dw(), ws.read(dwOnly), GEMM, wShape);
        }
    }

    // --- loss ----------------------------------------------------------------------------------------------------

    /** A softmax cross-entropy batch; {@code extreme} logits reach ±80 and ±500. */
    record SoftmaxCase(int n, int classes, boolean extreme) {
        @Override
        public String toString() {
            return "N " + n + ", " + classes + " classes" + (extreme ? ", extreme logits" : "");
        }
    }

    static Stream<Arguments> softmaxCases() {
        return withLayouts(List.of(new SoftmaxCase(1, 1, false), new SoftmaxCase(3, 2, false),
                new SoftmaxCase(64, 10, false), new SoftmaxCase(257, 10, false), new SoftmaxCase(2, 1000, false),
                new SoftmaxCase(6, 5, true)));
    }

    @ParameterizedTest(name = "{0}; {1}")
    @MethodSource("softmaxCases")
    void softmaxCrossEntropy(SoftmaxCase c, Layout layout) {
        Shape s = Shape.of(c.n(), c.classes());
        Random random = new Random(c.toString().hashCode());
        float[] logits = gaussian(random, s.size(), 3);
        int[] labels = new int[c.n()];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = random.nextInt(c.classes());
        }
        if (c.extreme()) {
            float[][] rows = {{80, -80, 0, 1, 2}, {-80, 80, 80, -80, 0}, {500, -500, 0, 0, 0},
                {-500, -500, -500, -500, 500}, {-80, -80, -80, -80, -80}, {88, 89, 90, -88, 0}};
            for (int i = 0; i < rows.length; i++) {
                System.arraycopy(rows[i], 0, logits, i * 5, 5);
            }
            labels = new int[] {1, 0, 1, 0, 2, 3};
        }
        Reference.CrossEntropy expected = Reference.softmaxCrossEntropy(Reference.toDouble(logits), c.n(),
                c.classes(), labels);
        String where = c + ", " + layout;
        try (Workspace ws = workspace(layout)) {
            Tensor z = ws.in("logits", s, logits);
            Tensor probs = ws.out("probs", s);
            Tensor d = ws.out("dlogits", s);
            float[] losses = new float[c.n() + 1];
            losses[c.n()] = 42f;
            double loss = ops.softmaxCrossEntropy(z, labels, probs, d, losses);
            ws.verify("softmaxCrossEntropy");
            Expect.close("softmaxCrossEntropy mean loss, " + where, new double[] {expected.mean()},
                    new float[] {(float) loss}, SOFTMAX, null);
            Expect.close("softmaxCrossEntropy probs, " + where, expected.probs(), ws.read(probs), SOFTMAX, s);
            Expect.close("softmaxCrossEntropy dlogits, " + where, expected.dlogits(), ws.read(d), SOFTMAX, s);
            Expect.close("softmaxCrossEntropy losses, " + where, expected.losses(), Arrays.copyOf(losses, c.n()),
                    SOFTMAX, Shape.of(c.n(), 1));
            assertEquals(42f, losses[c.n()], "softmaxCrossEntropy wrote past the N losses");
            assertTrue(Double.isFinite(loss), "mean loss " + loss + " of " + where);

            Tensor probsOnly = ws.out("probs without dlogits", s);
            double again = ops.softmaxCrossEntropy(z, labels, probsOnly, null, null);
            ws.verify("softmaxCrossEntropy without dlogits and losses");
            assertEquals(loss, again, 0.0, "the same loss without dlogits and losses, " + where);
            Expect.bits("softmaxCrossEntropy probs without dlogits, " + where, ws.read(probs), ws.read(probsOnly), s);
        }
    }

    // --- optimizer -----------------------------------------------------------------------------------------------

    static final Sgd[] SGDS = {new Sgd(0.9, 5e-4, true), new Sgd(0.9, 1e-2, false), new Sgd(0, 0, false)};
    static final int[] SGD_SIZES = {1, 255, 256, 257, 70_001};
    static final double[] LRS = {0.1, 0.05, 0.2};

    /**
     * The float formula of one SGD step, the {@link Sgd} update with weight decay and momentum as FMAs (as the
     * EMA update's NOTE: [lerp-torch]) and the coefficients rounded to float once: {@code g' = fma(wd, p, g)},
     * {@code m = fma(μ, m, g')}, {@code p = p − lr·(nesterov ? fma(μ, m, g') : m)}.
     */
    static void sgdFloat(float[] p, float[] m, float[] g, Sgd sgd, double lr) {
        float wd = (float) sgd.weightDecay();
        float mu = (float) sgd.momentum();
        float rate = (float) lr;
        for (int i = 0; i < p.length; i++) {
            float gi = Math.fma(wd, p[i], g[i]);
            float mi = Math.fma(mu, m[i], gi);
            m[i] = mi;
            p[i] = p[i] - rate * (sgd.nesterov() ? Math.fma(mu, mi, gi) : mi);
        }
    }

    /**
     * The EMA update of the {@link Backend} contract, PyTorch's {@code e.lerp_(p, w)}: {@code fma(w, p − e, e)} below
     * {@code w = 0.5}, {@code fma(−(1 − w), p − e, p)} from there on.
     */
    static void lerpFloat(float[] e, float[] p, float w) {
        for (int i = 0; i < e.length; i++) {
            float d = p[i] - e[i];
            e[i] = w < 0.5f ? Math.fma(w, d, e[i]) : Math.fma(-(1f - w), d, p[i]);
        }
    }

    static Stream<Arguments> sgdCases() {
        return Stream.of(SGDS).flatMap(sgd -> Arrays.stream(SGD_SIZES).mapToObj(n -> Arguments.of(sgd, n)));
    }

    @ParameterizedTest(name = "{0}; {1} parameters")
    @MethodSource("sgdCases")
    void sgdStepMatchesTorchSemanticsAndItsFloatFormula(Sgd sgd, int n) {
        Random random = new Random(n);
        float[] p = gaussian(random, n, 1);
        float[] m = new float[n];
        double[] pd = Reference.toDouble(p);
        double[] md = new double[n];
        try (Buffers b = new Buffers()) {
            DeviceBuffer params = b.upload(p);
            DeviceBuffer grads = b.upload(new float[n]);
            DeviceBuffer momentum = b.upload(m);
            for (double lr : LRS) {
                float[] g = gaussian(random, n, 1);
                backend.write(g, 0, grads, 0, n);
                ops.sgdStep(params, grads, momentum, sgd, lr);
                sgdFloat(p, m, g, sgd, lr);
                Reference.sgd(pd, md, g, sgd.momentum(), sgd.weightDecay(), sgd.nesterov(), lr);
                String where = sgd + ", " + n + " parameters, lr " + lr;
                Expect.bits("sgdStep params (float formula), " + where, p, b.read(params), null);
                Expect.bits("sgdStep momentum (float formula), " + where, m, b.read(momentum), null);
                Expect.bits("sgdStep leaves grads, " + where, g, b.read(grads), null);
                Expect.close("sgdStep params (torch.optim.SGD in double), " + where, pd, b.read(params),
                        new Tolerance(1e-5, 1e-5), null);
            }
        }
    }

    static Stream<Arguments> sgdEmaCases() {
        return Stream.of(1, 3, 5, Backend.MAX_SHADOWS).flatMap(k -> Stream.of(1, 7, 257, 4099, 70_001)
                .map(n -> Arguments.of(k, n)));
    }

    @ParameterizedTest(name = "{0} shadows; {1} parameters")
    @MethodSource("sgdEmaCases")
    void sgdEmaStepEqualsSgdStepThenEmaLerpBitForBit(int shadows, int n) {
        Sgd sgd = SGDS[0];
        Random random = new Random(31L * n + shadows);
        float[] p = gaussian(random, n, 1);
        float[] m = gaussian(random, n, 1);
        float[] g = gaussian(random, n, 1);
        float[][] e = new float[shadows][];
        float[] weights = new float[shadows];
        for (int k = 0; k < shadows; k++) {
            e[k] = gaussian(random, n, 1);
            // both branches of the formula, mixed: 0.5, 0.25, 0.875, 0.0625, ..., and w = 1 last
            double half = Math.pow(0.5, k + 1);
            weights[k] = k == shadows - 1 && k > 0 ? 1f : (float) (k % 2 == 0 ? 1 - half : half);
        }
        try (Buffers b = new Buffers()) {
            DeviceBuffer fusedP = b.upload(p);
            DeviceBuffer fusedM = b.upload(m);
            DeviceBuffer fusedG = b.upload(g);
            List<DeviceBuffer> fusedE = new ArrayList<>();
            DeviceBuffer sepP = b.upload(p);
            DeviceBuffer sepM = b.upload(m);
            DeviceBuffer sepG = b.upload(g);
            List<DeviceBuffer> sepE = new ArrayList<>();
            for (float[] shadow : e) {
                fusedE.add(b.upload(shadow));
                sepE.add(b.upload(shadow));
            }
            ops.sgdEmaStep(fusedP, fusedG, fusedM, sgd, 0.1, fusedE, weights);
            ops.sgdStep(sepP, sepG, sepM, sgd, 0.1);
            try (ParamTable table = backend.bind(Params.of(sepP))) {
                backend.emaLerp(table, sepE, weights, null);
            }
            sgdFloat(p, m, g, sgd, 0.1);
            String where = shadows + " shadows, " + n + " parameters";
            Expect.bits("sgdEmaStep params vs sgdStep, " + where, b.read(sepP), b.read(fusedP), null);
            Expect.bits("sgdEmaStep params vs the formula, " + where, p, b.read(fusedP), null);
            Expect.bits("sgdEmaStep momentum vs sgdStep, " + where, b.read(sepM), b.read(fusedM), null);
            for (int k = 0; k < shadows; k++) {
                lerpFloat(e[k], p, weights[k]);
                Expect.bits("sgdEmaStep shadow " + k + " vs sgdStep then emaLerp, " + where, b.read(sepE.get(k)),
                        b.read(fusedE.get(k)), null);
                Expect.bits("sgdEmaStep shadow " + k + " vs the formula, " + where, e[k], b.read(fusedE.get(k)),
                        null);
            }
        }
    }

    @Test
    void sgdBadArgumentsThrowBeforeAnythingChanges() {
        float[] ones = {1, 1, 1, 1};
        Sgd sgd = SGDS[0];
        try (Buffers b = new Buffers(); Backend other = newBackend()) {
            DeviceBuffer p = b.upload(ones);
            DeviceBuffer g = b.upload(ones);
            DeviceBuffer m = b.upload(ones);
            DeviceBuffer e = b.upload(ones);
            DeviceBuffer five = b.upload(new float[5]);
            DeviceBuffer half = b.track(backend.allocate(DType.F16, 4));
            DeviceBuffer closed = b.upload(ones);
            closed.close();
            DeviceBuffer foreign = other.allocate(DType.F32, 4);
            List<DeviceBuffer> one = List.of(e);
            float[] w = {0.5f};
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, five, m, sgd, 0.1),
                    "SGD buffers differ in length: params 4, grads 5, momentum 4");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, g, m, sgd, Double.NaN), "lr is NaN");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, g, m, sgd, -0.1), "lr is -0.1");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, g, m, sgd, Double.POSITIVE_INFINITY),
                    "lr is Infinity");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, p, m, sgd, 0.1),
                    "grads is the same buffer as params");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, half, m, sgd, 0.1),
                    "grads is F16; SGD buffers must be F32");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdStep(p, g, foreign, sgd, 0.1),
                    "momentum belongs to backend");
            assertThrows(IllegalStateException.class, () -> ops.sgdStep(p, closed, m, sgd, 0.1));
            assertThrows(NullPointerException.class, () -> ops.sgdStep(p, g, m, null, 0.1));
            assertThrows(NullPointerException.class, () -> ops.sgdStep(null, g, m, sgd, 0.1));
            assertThrows(NullPointerException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, null, w));
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, List.of(p), w),
                    "shadows[0] is the same buffer as params");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, List.of(e, e),
                    new float[] {0.5f, 0.5f}), "shadows[1] appears twice");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, one,
                    new float[] {0.5f, 1}), "weights has 2 values, shadows 1 buffers");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, one,
                    new float[] {1.5f}), "weights[0] is 1.5");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, List.of(five), w),
                    "shadows[0] has 5 floats, params need 4");
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1,
                    List.of(foreign), w), "shadows[0] belongs to backend");
            List<DeviceBuffer> nine = new ArrayList<>();
            for (int k = 0; k < Backend.MAX_SHADOWS + 1; k++) {
                nine.add(b.upload(ones));
            }
            assertMessage(IllegalArgumentException.class, () -> ops.sgdEmaStep(p, g, m, sgd, 0.1, nine,
                    new float[nine.size()]), "shadows has 9 buffers");
            for (DeviceBuffer buffer : List.of(p, g, m, e)) {
                Expect.bits("SGD buffers after rejected steps", ones, b.read(buffer), null);
            }
        }
    }

    // --- layers: forward against the oracle, gradients against finite differences -------------------------------

    private static final double H = 1e-4;

    /** A reference forward pass of one layer given its input and parameters by name. */
    @FunctionalInterface
    interface Ref {
        double[] apply(double[] x, Map<String, double[]> p);
    }

    @Test
    void conv2dLayerGradients() {
        for (int stride : new int[] {1, 2}) {
            Reference.Conv g = new Reference.Conv(2, 3, 6, 7, 4, 3, 3, stride, 1);
            checkLayer(new Conv2d(3, 4, 3, stride, 1, true), new Shape(1, 3, 6, 7), 2,
                    (x, p) -> Reference.convForward(g, x, p.get("l.weight"), p.get("l.bias")));
        }
        Reference.Conv g = new Reference.Conv(3, 2, 5, 5, 3, 1, 1, 2, 0);
        checkLayer(new Conv2d(2, 3, 1, 2, 0, false), new Shape(1, 2, 5, 5), 3,
                (x, p) -> Reference.convForward(g, x, p.get("l.weight"), null));
    }

    @Test
    void batchNormLayerGradientsInTrainMode() {
        checkLayer(new BatchNorm2d(3), new Shape(1, 3, 4, 5), 4,
                (x, p) -> Reference.batchNorm(x, 4, 3, 20, p.get("l.weight"), p.get("l.bias"), 1e-5));
        checkLayer(BatchNorm2d.withRelu(3), new Shape(1, 3, 4, 5), 4,
                (x, p) -> Reference.relu(Reference.batchNorm(x, 4, 3, 20, p.get("l.weight"), p.get("l.bias"), 1e-5)));
    }

    @Test
    void reluMaxPoolGlobalAvgPoolFlattenLinearLayerGradients() {
        checkLayer(new Relu(), new Shape(1, 2, 3, 4), 2, (x, p) -> Reference.relu(x));
        checkLayer(new MaxPool2d(2), new Shape(1, 2, 6, 4), 2, (x, p) -> Reference.maxPool(x, 4, 6, 4, 2).y());
        checkLayer(new GlobalAvgPool(), new Shape(1, 3, 4, 4), 2, (x, p) -> Reference.globalAvgPool(x, 6, 16));
        checkLayer(new Flatten(), new Shape(1, 2, 3, 3), 2, (x, p) -> x.clone());
        checkLayer(new Linear(12, 5), Shape.of(1, 12), 3,
                (x, p) -> Reference.linear(x, 3, 12, p.get("l.weight"), p.get("l.bias"), 5));
    }

    @Test
    void residualBlockGradients() {
        checkLayer(new BasicBlock(3, 3, 1), new Shape(1, 3, 5, 5), 2, (x, p) -> block(x, p, 2, 3, 3, 5, 1, false));
        checkLayer(new BasicBlock(2, 4, 2), new Shape(1, 2, 6, 6), 2, (x, p) -> block(x, p, 2, 2, 4, 6, 2, true));
    }

    private static double[] block(double[] x, Map<String, double[]> p, int n, int in, int out, int size, int stride,
                                  boolean projection) {
        int half = (size + 2 - 3) / stride + 1;
        Reference.Conv first = new Reference.Conv(n, in, size, size, out, 3, 3, stride, 1);
        Reference.Conv second = new Reference.Conv(n, out, half, half, out, 3, 3, 1, 1);
        double[] a = Reference.convForward(first, x, p.get("l.conv1.weight"), null);
        a = Reference.relu(Reference.batchNorm(a, n, out, half * half, p.get("l.bn1.weight"), p.get("l.bn1.bias"),
                1e-5));
        a = Reference.convForward(second, a, p.get("l.conv2.weight"), null);
        a = Reference.batchNorm(a, n, out, half * half, p.get("l.bn2.weight"), p.get("l.bn2.bias"), 1e-5);
        double[] s = x;
        if (projection) {
            Reference.Conv shortcut = new Reference.Conv(n, in, size, size, out, 1, 1, stride, 0);
            s = Reference.convForward(shortcut, x, p.get("l.shortcut.0.weight"), null);
            s = Reference.batchNorm(s, n, out, half * half, p.get("l.shortcut.1.weight"), p.get("l.shortcut.1.bias"),
                    1e-5);
        }
        return Reference.relu(Reference.add(a, s));
    }

    @Test
    void softmaxCrossEntropyGradientByFiniteDifferences() {
        int n = 4;
        int classes = 5;
        float[] z = gaussian(new Random(3), n * classes, 3);
        int[] labels = {0, 4, 2, 2};
        try (Workspace ws = workspace(Layout.SEPARATE)) {
            Tensor logits = ws.in("logits", Shape.of(n, classes), z);
            Tensor probs = ws.out("probs", Shape.of(n, classes));
            Tensor d = ws.out("dlogits", Shape.of(n, classes));
            ops.softmaxCrossEntropy(logits, labels, probs, d, null);
            float[] grad = ws.read(d);
            double[] zd = Reference.toDouble(z);
            for (int i = 0; i < z.length; i++) {
                double[] plus = zd.clone();
                double[] minus = zd.clone();
                plus[i] += H;
                minus[i] -= H;
                double numeric = (Reference.crossEntropy(plus, n, classes, labels)
                        - Reference.crossEntropy(minus, n, classes, labels)) / (2 * H);
                assertGradient(numeric, grad[i], "dlogits[" + i + "]");
            }
        }
    }

    /**
     * One layer's forward pass against {@code ref}, and its backward pass (input and parameter gradients) against
     * central differences of {@code ref} in double, for the loss {@code L = Σ r·y} with a random {@code r}.
     */
    private void checkLayer(Layer layer, Shape sample, int n, Ref ref) {
        ParameterStore.Builder builder = ParameterStore.builder();
        Shape out = layer.declare("l", sample, builder);
        Random random = new Random(7);
        List<DeviceBuffer> buffers = new ArrayList<>();
        String name = layer.getClass().getSimpleName() + " of " + sample.withBatch(n);
        try (ParameterStore store = builder.build(backend, 11)) {
            layer.bind(new Binding(backend, ops, store, n, new RunState(), buffers));
            Map<String, double[]> params = randomize(store, random);
            float[] x = gaussian(random, n * sample.sampleSize(), 1);
            DeviceBuffer xb = backend.allocate(DType.F32, x.length);
            buffers.add(xb);
            backend.write(x, 0, xb, 0, x.length);
            Tensor y = layer.forward(Tensor.of(xb, sample.withBatch(n)));
            assertEquals(out.withBatch(n), y.shape(), name + ": output shape");
            double[] xd = Reference.toDouble(x);
            double[] expected = ref.apply(xd, params);
            float[] actual = read(y);
            for (int i = 0; i < actual.length; i++) {
                assertGradient(expected[i], actual[i], name + " forward[" + i + "]");
            }
            float[] r = gaussian(random, y.size(), 1);
            DeviceBuffer rb = backend.allocate(DType.F32, r.length);
            buffers.add(rb);
            backend.write(r, 0, rb, 0, r.length);
            float[] dx = read(layer.backward(Tensor.of(rb, y.shape())));
            for (int i = 0; i < xd.length; i++) {
                assertGradient(numeric(ref, xd, params, r, xd, i), dx[i], name + " dx[" + i + "]");
            }
            for (ParameterStore.Slot s : store.slots()) {
                if (!s.statistic()) {
                    float[] grad = read(store.grad(s));
                    double[] values = params.get(s.name());
                    for (int i = 0; i < values.length; i++) {
                        assertGradient(numeric(ref, xd, params, r, values, i), grad[i], name + " " + s.name() + "["
                                + i + "]");
                    }
                }
            }
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    /** {@code ∂(Σ r·ref(x, p))/∂v[i]} by central differences, where {@code v} is x or one of the parameters. */
    private static double numeric(Ref ref, double[] x, Map<String, double[]> p, float[] r, double[] v, int i) {
        double saved = v[i];
        v[i] = saved + H;
        double plus = dot(r, ref.apply(x, p));
        v[i] = saved - H;
        double minus = dot(r, ref.apply(x, p));
        v[i] = saved;
        return (plus - minus) / (2 * H);
    }

    private static double dot(float[] r, double[] y) {
        double s = 0;
        for (int i = 0; i < y.length; i++) {
            s += r[i] * y[i];
        }
        return s;
    }

    /** Random trained parameters (BatchNorm scales around 1); returns every slot's values as doubles. */
    private Map<String, double[]> randomize(ParameterStore store, Random random) {
        Map<String, double[]> params = new HashMap<>();
        for (ParameterStore.Slot s : store.slots()) {
            Tensor t = store.value(s);
            float[] v;
            if (s.statistic()) {
                v = read(t);
            } else {
                boolean scale = s.name().endsWith("weight") && s.shape().n() == 1;  // a BatchNorm scale
                v = new float[t.size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (scale ? 0.5 + random.nextDouble() : random.nextGaussian() * 0.5);
                }
                backend.write(v, 0, t.buffer(), t.offset(), v.length);
            }
            params.put(s.name(), Reference.toDouble(v));
        }
        return params;
    }

    /** {@code |expected − actual| ≤ 2e-3 + 2e-3·|expected|}: float passes against double finite differences. */
    private static void assertGradient(double expected, float actual, String what) {
        if (!(Math.abs(expected - actual) <= 2e-3 + 2e-3 * Math.abs(expected))) {
            fail(what + ": expected " + expected + ", got " + actual);
        }
    }

    // --- bad input -----------------------------------------------------------------------------------------------

    /** What an argument of an operation is: read, written, or both. */
    enum Role { IN, OUT, IN_OUT }

    /**
     * One tensor argument in the bad-input checks: a valid shape, its role, whether null is allowed, and its values
     * (null: random).
     */
    record Arg(String name, Shape shape, Role role, boolean optional, float[] values) {
    }

    static Arg in(String name, Shape shape) {
        return new Arg(name, shape, Role.IN, false, null);
    }

    static Arg out(String name, Shape shape) {
        return new Arg(name, shape, Role.OUT, false, null);
    }

    /** An operation of {@link NnOps} called with tensors in the order of its arguments. */
    @FunctionalInterface
    interface Call {
        void run(NnOps ops, Tensor[] t);
    }

    /** A valid call of an operation; {@code anyShape} means the shape of its only tensor is free ({@code fill}). */
    record OpCall(String op, List<Arg> args, Call call, boolean anyShape) {
        @Override
        public String toString() {
            return op;
        }
    }

    static OpCall op(String op, Call call, Arg... args) {
        return new OpCall(op, List.of(args), call, false);
    }

    static Arg optional(Arg a) {
        return new Arg(a.name(), a.shape(), a.role(), true, a.values());
    }

    static Arg values(Arg a, float[] values) {
        return new Arg(a.name(), a.shape(), a.role(), a.optional(), values);
    }

    static List<OpCall> opCalls() {
        Shape x = new Shape(2, 3, 5, 5);
        Shape w = new Shape(4, 3, 3, 3);
        Shape y = new Shape(2, 4, 5, 5);
        Shape k = Shape.of(1, 4);
        Shape bn = new Shape(2, 3, 4, 4);
        Shape ch = Shape.of(1, 3);
        Shape pooled = new Shape(2, 3, 2, 2);
        float[] argmax = new float[pooled.size()];
        for (int i = 0; i < argmax.length; i++) {
            argmax[i] = (i % 4 / 2) * 8 + (i % 2) * 2 + i % 3 % 2;
        }
        float[] reluOutput = new float[bn.size()];
        for (int i = 0; i < reluOutput.length; i++) {
            reluOutput[i] = Math.max(0, (i * 7919 % 13) - 5);
        }
        Shape flat = Shape.of(3, 5);
        Shape lw = Shape.of(4, 5);
        Shape ly = Shape.of(3, 4);
        return List.of(
                op("conv2dForward", (o, t) -> o.conv2dForward(t[0], t[1], t[2], t[3], 1, 1),
                        in("x", x), in("w", w), optional(in("bias", k)), out("y", y)),
                op("conv2dBackward", (o, t) -> o.conv2dBackward(t[0], t[1], t[2], t[3], t[4], t[5], 1, 1),
                        in("x", x), in("w", w), in("dy", y), optional(out("dx", x)), out("dw", w),
                        optional(out("dbias", k))),
                op("batchNormForwardTrain", (o, t) -> o.batchNormForwardTrain(t[0], t[1], t[2], t[3], t[4], t[5], t[6],
                        t[7], 0.1, 1e-5, true), in("x", bn), in("gamma", ch), in("beta", ch), out("y", bn),
                        out("saveMean", ch), out("saveInvStd", ch), new Arg("runningMean", ch, Role.IN_OUT, false,
                                null), new Arg("runningVar", ch, Role.IN_OUT, false, new float[] {1, 2, 3})),
                op("batchNormForwardEval", (o, t) -> o.batchNormForwardEval(t[0], t[1], t[2], t[3], t[4], t[5], 1e-5,
                        true), in("x", bn), in("gamma", ch), in("beta", ch), in("runningMean", ch),
                        values(in("runningVar", ch), new float[] {1, 2, 3}), out("y", bn)),
                op("batchNormBackward", (o, t) -> o.batchNormBackward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7],
                        t[8]), in("x", bn), in("gamma", ch), in("saveMean", ch), values(in("saveInvStd", ch),
                        new float[] {1, 2, 3}), optional(values(in("relu", bn), reluOutput)), in("dy", bn),
                        out("dx", bn),
                        out("dgamma", ch), out("dbeta", ch)),
                op("reluForward", (o, t) -> o.reluForward(t[0], t[1]), in("x", bn), out("y", bn)),
                op("reluBackward", (o, t) -> o.reluBackward(t[0], t[1], t[2]), values(in("y", bn), reluOutput),
                        in("dy", bn), out("dx", bn)),
                op("maxPoolForward", (o, t) -> o.maxPoolForward(t[0], t[1], t[2], 2), in("x", bn),
                        out("y", pooled), out("argmax", pooled)),
                op("maxPoolBackward", (o, t) -> o.maxPoolBackward(t[0], t[1], t[2], 2),
                        values(in("argmax", pooled), argmax), in("dy", pooled), out("dx", bn)),
                op("globalAvgPoolForward", (o, t) -> o.globalAvgPoolForward(t[0], t[1]), in("x", bn),
                        out("y", Shape.of(2, 3))),
                op("globalAvgPoolBackward", (o, t) -> o.globalAvgPoolBackward(t[0], t[1]), in("dy", Shape.of(2, 3)),
                        out("dx", bn)),
                op("linearForward", (o, t) -> o.linearForward(t[0], t[1], t[2], t[3]), in("x", flat), in("w", lw),
                        optional(in("b", k)), out("y", ly)),
                op("linearBackward", (o, t) -> o.linearBackward(t[0], t[1], t[2], t[3], t[4], t[5]), in("x", flat),
                        in("w", lw), in("dy", ly), optional(out("dx", flat)), out("dw", lw), optional(out("db", k))),
                op("add", (o, t) -> o.add(t[0], t[1], t[2]), in("a", bn), in("b", bn), out("y", bn)),
                op("addTo", (o, t) -> o.addTo(t[0], t[1]), in("x", bn), new Arg("y", bn, Role.IN_OUT, false, null)),
                op("copy", (o, t) -> o.copy(t[0], t[1]), in("src", bn), out("dst", bn)),
                new OpCall("fill", List.of(out("t", bn)), (o, t) -> o.fill(t[0], 2f), true),
                op("softmaxCrossEntropy", (o, t) -> o.softmaxCrossEntropy(t[0], new int[] {0, 4, 2}, t[1], t[2],
                        new float[3]), in("logits", flat), out("probs", flat), optional(out("dlogits", flat))));
    }

    /** The tensors of a valid call of {@code call}, in {@code ws}. */
    private static Tensor[] place(Workspace ws, OpCall call) {
        Tensor[] t = new Tensor[call.args().size()];
        for (int i = 0; i < t.length; i++) {
            Arg a = call.args().get(i);
            float[] values = a.values() != null ? a.values()
                    : gaussian(new Random(call.op().hashCode() + i), a.shape().size(), 1);
            t[i] = switch (a.role()) {
                case IN -> ws.in(a.name(), a.shape(), values);
                case OUT -> ws.out(a.name(), a.shape());
                case IN_OUT -> ws.inOut(a.name(), a.shape(), values);
            };
        }
        return t;
    }

    /** The shape with one more channel: wrong for every argument of every call in {@link #opCalls()}. */
    private static Shape widened(Shape s) {
        return new Shape(s.n(), s.c() + 1, s.h(), s.w());
    }

    static Stream<OpCall> calls() {
        return opCalls().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("calls")
    void theValidCallOfTheBadInputChecksRuns(OpCall call) {
        try (Workspace ws = workspace(Layout.SEPARATE)) {
            Tensor[] t = place(ws, call);
            call.call().run(ops, t);
            ws.verify(call.op());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("calls")
    void mismatchedShapesThrowBeforeAnythingIsWritten(OpCall call) {
        if (call.anyShape()) {
            return;
        }
        for (int i = 0; i < call.args().size(); i++) {
            Arg a = call.args().get(i);
            Shape wrong = widened(a.shape());
            try (Workspace ws = workspace(Layout.SEPARATE)) {
                Tensor[] t = place(ws, call);
                t[i] = ws.in(a.name() + " of a wrong shape", wrong, new float[wrong.size()]);
                ws.freeze();
                String what = call.op() + " with " + a.name() + " " + wrong + " for " + a.shape();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> call.call().run(ops, t),
                        what);
                assertTrue(e.getMessage() != null && e.getMessage().contains(wrong.toString()),
                        what + ": the message \"" + e.getMessage() + "\" should name " + wrong);
                ws.verify(what);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("calls")
    void nullRequiredArgumentsThrowBeforeAnythingIsWritten(OpCall call) {
        for (int i = 0; i < call.args().size(); i++) {
            Arg a = call.args().get(i);
            if (a.optional()) {
                continue;
            }
            try (Workspace ws = workspace(Layout.SEPARATE)) {
                Tensor[] t = place(ws, call);
                t[i] = null;
                ws.freeze();
                assertThrows(NullPointerException.class, () -> call.call().run(ops, t), call.op() + " with "
                        + a.name() + " null");
                ws.verify(call.op() + " with " + a.name() + " null");
            }
        }
    }

    /**
     * A tensor of another backend instance, of the same kind and of the CPU, in each argument: refused with
     * {@link IllegalArgumentException} before anything is written.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("calls")
    void tensorsOfAnotherBackendAreRefused(OpCall call) throws Throwable {
        List<String> wrote = new ArrayList<>();
        try (Backend sameKind = newBackend(); Backend cpu = new CpuBackend(1)) {
            for (Backend other : List.of(sameKind, cpu)) {
                for (int i = 0; i < call.args().size(); i++) {
                    Arg a = call.args().get(i);
                    try (Workspace ws = workspace(Layout.SEPARATE)) {
                        Tensor[] t = place(ws, call);
                        t[i] = Tensor.of(other.allocate(DType.F32, a.shape().size()), a.shape());
                        ws.freeze();
                        assertMessage(IllegalArgumentException.class, () -> call.call().run(ops, t),
                                "belongs to backend");
                        unchanged(ws, call.op() + " with " + a.name() + " of " + other.name(), wrote);
                    }
                }
            }
        }
        assertTrue(wrote.isEmpty(), String.join("; ", wrote));
    }

    /** A closed buffer in each argument: refused with {@link IllegalStateException} before anything is written. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("calls")
    void closedBuffersAreRefused(OpCall call) throws Throwable {
        List<String> wrote = new ArrayList<>();
        for (int i = 0; i < call.args().size(); i++) {
            Arg a = call.args().get(i);
            try (Workspace ws = workspace(Layout.SEPARATE)) {
                Tensor[] t = place(ws, call);
                DeviceBuffer b = backend.allocate(DType.F32, a.shape().size());
                b.close();
                t[i] = Tensor.of(b, a.shape());
                ws.freeze();
                assertThrows(IllegalStateException.class, () -> call.call().run(ops, t), call.op() + " with a closed "
                        + a.name());
                unchanged(ws, call.op() + " with a closed " + a.name(), wrote);
            }
        }
        assertTrue(wrote.isEmpty(), String.join("; ", wrote));
    }

    /** Verifies {@code ws}, adding the failure's message to {@code failures} instead of throwing it. */
    private static void unchanged(Workspace ws, String what, List<String> failures) {
        try {
            ws.verify(what);
        } catch (AssertionError e) {
            failures.add(e.getMessage());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("calls")
    void useAfterTheBackendClosesThrowsIllegalState(OpCall call) {
        Workspace ws = workspace(Layout.SEPARATE);  // not closed: closing the backend frees its buffers
        Tensor[] t = place(ws, call);
        backend.close();
        assertThrows(IllegalStateException.class, () -> call.call().run(ops, t), call.op() + " after close");
        assertThrows(IllegalStateException.class, () -> TrainingOps.of(backend));
    }

    @Test
    void badScalarArgumentsThrowBeforeAnythingIsWritten() {
        try (Workspace ws = workspace(Layout.SEPARATE)) {
            Shape xs = new Shape(2, 3, 6, 6);
            Tensor x = ws.in("x", xs, gaussian(new Random(1), xs.size(), 1));
            Tensor w = ws.in("w", new Shape(4, 3, 3, 3), gaussian(new Random(2), 108, 1));
            Tensor y = ws.out("y", new Shape(2, 4, 6, 6));
            Tensor pooled = ws.out("pooled", new Shape(2, 3, 3, 3));
            Tensor argmax = ws.out("argmax", new Shape(2, 3, 3, 3));
            Tensor logits = ws.in("logits", Shape.of(2, 3), new float[] {1, 2, 3, 4, 5, 6});
            Tensor probs = ws.out("probs", Shape.of(2, 3));
            ws.freeze();
            assertMessage(IllegalArgumentException.class, () -> ops.conv2dForward(x, w, null, y, 0, 1), "stride");
            assertMessage(IllegalArgumentException.class, () -> ops.conv2dForward(x, w, null, y, 1, -1), "pad");
            assertMessage(IllegalArgumentException.class, () -> ops.maxPoolForward(x, pooled, argmax, 0),
                    "pool size is 0");
            assertMessage(IllegalArgumentException.class, () -> ops.maxPoolForward(x, pooled, argmax, 3), "2x3x2x2");
            assertMessage(IllegalArgumentException.class,
                    () -> ops.softmaxCrossEntropy(logits, new int[] {0}, probs, null, null), "labels");
            assertMessage(IllegalArgumentException.class,
                    () -> ops.softmaxCrossEntropy(logits, new int[] {0, 3}, probs, null, null), "labels[1] is 3");
            assertMessage(IllegalArgumentException.class,
                    () -> ops.softmaxCrossEntropy(logits, new int[] {-1, 0}, probs, null, null), "labels[0] is -1");
            assertMessage(IllegalArgumentException.class,
                    () -> ops.softmaxCrossEntropy(logits, new int[] {0, 1}, probs, null, new float[1]), "lossesOut");
            assertThrows(NullPointerException.class, () -> ops.softmaxCrossEntropy(logits, null, probs, null, null));
            Shape ch = Shape.of(1, 3);
            Tensor gamma = ws.in("gamma", ch, new float[] {1, 1, 1});
            Tensor beta = ws.in("beta", ch, new float[] {0, 0, 0});
            Tensor mean = ws.in("runningMean", ch, new float[] {0, 0, 0});
            Tensor var = ws.in("runningVar", ch, new float[] {1, 1, 1});
            Tensor saveMean = ws.out("saveMean", ch);
            Tensor saveInvStd = ws.out("saveInvStd", ch);
            Tensor bnOut = ws.out("batch norm y", xs);
            ws.freeze();
            for (double eps : new double[] {0, -1e-5, Double.NaN, Double.POSITIVE_INFINITY}) {
                assertMessage(IllegalArgumentException.class, () -> ops.batchNormForwardTrain(x, gamma, beta, bnOut,
                        saveMean, saveInvStd, mean, var, 0.1, eps, false), "eps");
                assertMessage(IllegalArgumentException.class, () -> ops.batchNormForwardEval(x, gamma, beta, mean, var,
                        bnOut, eps, true), "eps");
            }
            ws.verify("rejected calls");
        }
    }

    /** The input and the weights of a linear layer must agree on I, also in the backward pass without dx. */
    @Test
    void linearBackwardChecksTheInputAgainstTheWeights() throws Throwable {
        Shape wrongX = Shape.of(3, 6);
        Shape lw = Shape.of(4, 5);
        for (boolean withDx : new boolean[] {true, false}) {
            try (Workspace ws = workspace(Layout.SHARED)) {
                Tensor x = ws.in("x", wrongX, gaussian(new Random(3), wrongX.size(), 1));
                Tensor w = ws.in("w", lw, gaussian(new Random(4), lw.size(), 1));
                Tensor dy = ws.in("dy", Shape.of(3, 4), gaussian(new Random(5), 12, 1));
                Tensor dx = withDx ? ws.out("dx", wrongX) : null;
                Tensor dw = ws.out("dw", lw);
                Tensor db = ws.out("db", Shape.of(1, 4));
                ws.freeze();
                assertMessage(IllegalArgumentException.class, () -> ops.linearBackward(x, w, dy, dx, dw, db),
                        wrongX.toString());
                ws.verify("linearBackward of x " + wrongX + " by w " + lw);
            }
        }
    }

    // --- helpers -------------------------------------------------------------------------------------------------

    @SuppressWarnings("unchecked")
    static <T> T oracle(Object key, Supplier<T> compute) {
        return (T) ORACLE.computeIfAbsent(key, k -> compute.get());
    }

    static <T> Stream<Arguments> withLayouts(List<T> cases) {
        return cases.stream().flatMap(c -> Stream.of(Layout.values()).map(layout -> Arguments.of(c, layout)));
    }

    static float[] gaussian(Random random, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextGaussian() * scale);
        }
        return v;
    }

    /** Random values with some signed zeros, subnormals and large magnitudes (sums of two stay finite). */
    static float[] specials(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (random.nextInt(32)) {
                case 0 -> -0f;
                case 1 -> 0f;
                case 2 -> Float.MIN_VALUE * (random.nextInt(2001) - 1000);
                case 3 -> (float) (random.nextGaussian() * 1e30);
                default -> (float) random.nextGaussian();
            };
        }
        return v;
    }

    private float[] read(Tensor t) {
        float[] v = new float[t.size()];
        backend.read(t.buffer(), t.offset(), v, 0, v.length);
        return v;
    }

    /** Device buffers of a test, freed together. */
    private final class Buffers implements AutoCloseable {
        private final List<DeviceBuffer> all = new ArrayList<>();

        DeviceBuffer upload(float[] values) {
            DeviceBuffer b = track(backend.allocate(DType.F32, values.length));
            backend.write(values, 0, b, 0, values.length);
            return b;
        }

        DeviceBuffer track(DeviceBuffer b) {
            all.add(b);
            return b;
        }

        float[] read(DeviceBuffer b) {
            float[] v = new float[(int) b.length()];
            backend.read(b, 0, v, 0, v.length);
            return v;
        }

        @Override
        public void close() {
            all.forEach(DeviceBuffer::close);
        }
    }
}
