package dev.ema4j;

import static dev.ema4j.ExceptionAssertions.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.DType;
import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import dev.ema4j.io.FloatTensor;
import dev.ema4j.io.SafetensorsFile;
import dev.ema4j.io.SafetensorsWriter;
import dev.ema4j.io.TensorDType;
import dev.ema4j.io.TensorInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The conformance suite every backend passes: each operation against {@link EmaOracle}, bit for bit, at sizes
 * that cross block, vector and chunk boundaries, for every kind of parameter storage; and every bad input, which
 * must throw the same exception type on every backend and change nothing.
 */
abstract class EmaConformanceSuite {

    static final int[] SIZES = {0, 1, 3, 255, 256, 257, 65535, 65537, 1_000_003};

    protected Backend backend;

    /** A new backend under test. */
    protected abstract Backend newBackend();

    /** A device pointer of this backend's kind that is not usable memory, or null where device memory is refused. */
    protected abstract Params foreignDeviceParams(int length);

    @BeforeEach
    void openBackend() {
        backend = newBackend();
    }

    @AfterEach
    void closeBackend() {
        backend.close();
    }

    /**
     * Where fp32 parameters live: an array, a heap FloatBuffer with an offset, a native-order direct buffer, a
     * big-endian direct buffer, a float view of a heap ByteBuffer (no accessible array), a backend buffer.
     */
    enum Storage { ARRAY, HEAP_BUFFER, DIRECT_BUFFER, BIG_ENDIAN_BUFFER, BYTE_VIEW, DEVICE }

    // --- fp32 --------------------------------------------------------------------------------------------------

    static Stream<Arguments> storagesAndSizes() {
        return Stream.of(Storage.values()).flatMap(s -> java.util.Arrays.stream(SIZES).mapToObj(n -> Arguments.of(s, n)));
    }

    @ParameterizedTest
    @MethodSource("storagesAndSizes")
    void fp32UpdatesMatchOracleBitExactly(Storage storage, int n) {
        float[] values = values(n, 1);
        Params params = fp32(storage, values);
        float[] expected = values.clone();
        try (GpuEma ema = GpuEma.create(backend, params, 0.9)) {
            double[] decays = {0.9, 0.999, 0.5, 0.0, 1.0};
            for (int step = 0; step < decays.length; step++) {
                values = values(n, 10 + step);
                refill(storage, params, values);
                ema.update(params, decays[step]);
                EmaOracle.lerp(expected, values, decays[step]);
            }
            assertBits(expected, shadow(ema, 0)[0], storage + " n=" + n);
        }
    }

    @Test
    void readOnlyBuffersCanBeAveragedButNotWritten() {
        float[] values = values(1001, 21);
        FloatBuffer heap = FloatBuffer.wrap(values.clone()).asReadOnlyBuffer();
        FloatBuffer direct = ByteBuffer.allocateDirect(4 * 1001).order(ByteOrder.nativeOrder()).asFloatBuffer()
                .put(values).flip().asReadOnlyBuffer();
        for (FloatBuffer b : new FloatBuffer[] {heap, direct}) {
            Params params = Params.of(b);
            try (GpuEma ema = GpuEma.create(backend, Params.of(new float[1001]), 0.75)) {
                ema.update(params);
                float[] expected = new float[1001];
                EmaOracle.lerp(expected, values, 0.75);
                assertBits(expected, shadow(ema, 0)[0], (b.isDirect() ? "direct" : "heap") + " read-only buffer");
                assertMessage(IllegalArgumentException.class, () -> ema.copyTo(params), "read-only");
                assertMessage(IllegalArgumentException.class, () -> ema.swapInto(params), "read-only");
            }
        }
    }

    @Test
    void fusedShadowsEqualSingleUpdatesBitExactly() {
        double[] all = {0.9, 0.99, 0.999, 0.5, 0.75, 0.9999, 0.1, 0.0};
        for (int shadows : new int[] {2, 3, 5, 8}) {
            double[] decays = java.util.Arrays.copyOf(all, shadows);
            for (int n : new int[] {257, 65537}) {
                float[] values = values(n, 2);
                for (Storage storage : new Storage[] {Storage.DEVICE, Storage.HEAP_BUFFER}) {
                    Params params = fp32(storage, values);
                    List<GpuEma> singles = new ArrayList<>();
                    try (GpuEma fused = GpuEma.create(backend, params, decays)) {
                        for (double d : decays) {
                            singles.add(GpuEma.create(backend, params, d));
                        }
                        for (int step = 0; step < 3; step++) {
                            refill(storage, params, values(n, 20 + step));
                            fused.update(params);
                            for (GpuEma single : singles) {
                                single.update(params);
                            }
                        }
                        for (int k = 0; k < decays.length; k++) {
                            assertBits(shadow(singles.get(k), 0)[0], shadow(fused, k)[0],
                                    "shadow " + k + " of " + shadows + ", " + storage + " n=" + n);
                        }
                    } finally {
                        singles.forEach(GpuEma::close);
                    }
                }
            }
        }
    }

    // --- bf16 / fp16 -------------------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void halfPrecisionParamsWidenExactly(DType dtype) {
        for (int n : new int[] {0, 1, 7, 8, 9, 255, 257, 65537, 1_000_003}) {
            short[] bits = halfValues(dtype, n, 3);
            Params params = dtype == DType.BF16 ? Params.ofBf16(bits) : Params.ofF16(bits);
            float[] expected = widen(dtype, bits);
            try (GpuEma ema = GpuEma.create(backend, params, 0.99, 0.5)) {
                float[] expected2 = expected.clone();
                for (int step = 0; step < 2; step++) {
                    short[] next = halfValues(dtype, n, 30 + step);
                    System.arraycopy(next, 0, bits, 0, n);
                    ema.update(params);
                    EmaOracle.lerp(expected, widen(dtype, next), 0.99);
                    EmaOracle.lerp(expected2, widen(dtype, next), 0.5);
                }
                assertBits(expected, shadow(ema, 0)[0], dtype + " n=" + n);
                assertBits(expected2, shadow(ema, 1)[0], dtype + " n=" + n + " shadow 1");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void halfPrecisionDeviceBuffersAndCopyToRoundToNearestEven(DType dtype) {
        int n = 65537;
        float[] values = values(n, 4);
        if (dtype == DType.F16) {
            for (int i = 0; i < n; i++) {
                values[i] = Math.max(-60000f, Math.min(60000f, values[i]));  // finite in fp16
            }
        }
        DeviceBuffer half = backend.allocate(dtype, n);
        Params params = Params.of(half);
        try (GpuEma ema = GpuEma.create(backend, Params.of(values), 0.9)) {
            ema.copyTo(params);  // half ← round(values)
            float[] rounded = new float[n];
            short[] expectedBits = new short[n];
            for (int i = 0; i < n; i++) {
                expectedBits[i] = dtype == DType.BF16 ? EmaOracle.toBf16(values[i]) : EmaOracle.toF16(values[i]);
                rounded[i] = dtype == DType.BF16 ? EmaOracle.bf16(expectedBits[i]) : EmaOracle.f16(expectedBits[i]);
            }
            try (GpuEma fromHalf = GpuEma.create(backend, params, 0.5)) {
                assertBits(rounded, shadow(fromHalf, 0)[0], "widened " + dtype + " device buffer");
                float[] expected = rounded.clone();
                fromHalf.update(params);
                EmaOracle.lerp(expected, rounded, 0.5);
                assertBits(expected, shadow(fromHalf, 0)[0], "updated from " + dtype + " device buffer");
            }
            short[] host = new short[n];
            ema.copyTo(dtype == DType.BF16 ? Params.ofBf16(host) : Params.ofF16(host));
            for (int i = 0; i < n; i++) {
                if (host[i] != expectedBits[i]) {
                    fail(dtype + " copyTo element " + i + " of " + values[i] + ": expected 0x"
                            + Integer.toHexString(expectedBits[i] & 0xffff) + ", got 0x"
                            + Integer.toHexString(host[i] & 0xffff));
                }
            }
        }
    }

    // --- PyTorch's lerp_, bit for bit (golden vectors, NOTE: [lerp-torch]) ------------------------------------

    static Stream<Arguments> goldenTrajectories() {
        return Stream.of(Golden.DTYPES).flatMap(t -> Stream.of(Golden.DECAYS).map(d -> Arguments.of(t, d)));
    }

    /**
     * Each of torch's 15 trajectories (67 lanes: random walks, subnormals, signed zeros, huge values whose difference
     * overflows, and the infinities and NaNs that follow) replayed one update at a time: every shadow after every
     * update equals torch's bit for bit (any NaN equals any NaN). fp32 parameters come as an array, a buffer at an
     * offset and a backend buffer (the CPU backend's two loops), bf16 and fp16 parameters as short arrays.
     */
    @ParameterizedTest(name = "{0}, decay {1}")
    @MethodSource("goldenTrajectories")
    void goldenTrajectoriesMatchTorchLerpBitForBit(String dtype, String decay) {
        Golden.Trajectory g = Golden.trajectory(dtype, decay);
        Storage[] storages = g.dtype() == 0 ? new Storage[] {Storage.ARRAY, Storage.HEAP_BUFFER, Storage.DEVICE}
                : new Storage[] {Storage.ARRAY};
        for (Storage storage : storages) {
            replayGolden(List.of(g), storage, g.name() + ", " + storage);
        }
    }

    /** The trajectories of several decays as shadows of one EMA: each fused update equals torch's single updates. */
    @ParameterizedTest
    @ValueSource(strings = {"fp32", "bf16", "fp16"})
    void goldenTrajectoriesFusedInOneUpdate(String name) {
        List<Golden.Trajectory> all = Stream.of(Golden.DECAYS).map(d -> Golden.trajectory(name, d)).toList();
        for (Golden.Trajectory g : all) {  // one initial shadow and one parameter trajectory for every decay
            assertTrue(Arrays.equals(all.get(0).initial(), g.initial()), g.name() + ": initial shadow");
            assertTrue(Arrays.deepEquals(all.get(0).params(), g.params()), g.name() + ": params");
        }
        // decays 0.9999, 0.3, 0.9; and 8 shadows: five with w < 0.5 and three with w >= 0.5, interleaved
        for (int[] pick : new int[][] {{4, 0, 2}, {4, 0, 3, 1, 2, 0, 4, 2}}) {
            List<Golden.Trajectory> shadows = Arrays.stream(pick).mapToObj(all::get).toList();
            replayGolden(shadows, Storage.ARRAY, name + " fused, " + shadows.size() + " shadows");
        }
    }

    /**
     * Torch's single updates of every ordered pair of 29 special fp32 values (±0, subnormals, the normal limits,
     * ±FLT_MAX, ±inf, NaN, ...) at 10 weights (0, 1e-7, 0.5 − 2^−25, 0.5, 1, ...), each pair one element of an
     * update: alone, and with the 10 weights as shadows of fused updates (8 and 2).
     */
    @Test
    void goldenEdgePairsMatchTorchLerpBitForBit() {
        Golden.EdgePairs g = Golden.edgePairs();
        Map<Integer, List<Integer>> byWeight = new LinkedHashMap<>();
        for (int i = 0; i < g.w().length; i++) {
            byWeight.computeIfAbsent(g.w()[i], w -> new ArrayList<>()).add(i);
        }
        List<Integer> weights = new ArrayList<>(byWeight.keySet());
        List<Integer> first = byWeight.get(weights.get(0));
        float[] e = new float[first.size()];
        float[] p = new float[first.size()];
        for (int j = 0; j < e.length; j++) {
            e[j] = Float.intBitsToFloat(g.e()[first.get(j)]);
            p[j] = Float.intBitsToFloat(g.p()[first.get(j)]);
        }
        double[] decays = new double[weights.size()];
        int[][] expected = new int[weights.size()][];
        for (int k = 0; k < decays.length; k++) {
            List<Integer> at = byWeight.get(weights.get(k));
            assertEquals(e.length, at.size(), "pairs of weight " + k);
            expected[k] = new int[e.length];
            for (int j = 0; j < e.length; j++) {
                int r = at.get(j);
                assertEquals(Float.floatToRawIntBits(e[j]), g.e()[r], "weight " + k + " pair " + j + ": e");
                assertEquals(Float.floatToRawIntBits(p[j]), g.p()[r], "weight " + k + " pair " + j + ": p");
                expected[k][j] = g.result()[r];
            }
            float w = Float.intBitsToFloat(weights.get(k));
            decays[k] = 1.0 - w;  // exact for these weights: 1 − (1 − w) = w again
            assertEquals(weights.get(k), Float.floatToRawIntBits(EmaOracle.weight(decays[k])), "weight " + w);
        }
        EmaConfig ignore = EmaConfig.constant(0.5).withNonFinite(NonFinitePolicy.IGNORE);
        for (Storage storage : new Storage[] {Storage.ARRAY, Storage.HEAP_BUFFER, Storage.DEVICE}) {
            Params params = fp32(storage, p);
            for (int k = 0; k < decays.length; k++) {
                try (GpuEma ema = GpuEma.create(backend, Params.of(e.clone()), ignore)) {
                    ema.update(params, decays[k]);
                    assertGolden(expected[k], shadow(ema, 0)[0], "edge pairs, w = " + (float) (1 - decays[k])
                            + ", " + storage);
                }
            }
        }
        for (int from = 0; from < decays.length; from += Backend.MAX_SHADOWS) {
            double[] fused = Arrays.copyOfRange(decays, from, Math.min(decays.length, from + Backend.MAX_SHADOWS));
            try (GpuEma ema = GpuEma.create(backend, Params.of(e.clone()),
                    EmaConfig.constant(fused).withNonFinite(NonFinitePolicy.IGNORE))) {
                ema.update(Params.of(p.clone()), fused);
                for (int k = 0; k < fused.length; k++) {
                    assertGolden(expected[from + k], shadow(ema, k)[0], "edge pairs, shadow " + k + " of "
                            + fused.length + " fused, w = " + (float) (1 - fused[k]));
                }
            }
        }
    }

    /**
     * Replays trajectories of one parameter sequence, one shadow each, through one EMA with {@link
     * NonFinitePolicy#IGNORE}, comparing every shadow after every update with torch's.
     */
    private void replayGolden(List<Golden.Trajectory> shadows, Storage storage, String what) {
        Golden.Trajectory g = shadows.get(0);
        int n = g.n();
        double[] decays = shadows.stream().mapToDouble(Golden.Trajectory::decay).toArray();
        float[] initial = new float[n];
        for (int i = 0; i < n; i++) {
            initial[i] = Float.intBitsToFloat(g.initial()[i]);
        }
        short[] half = new short[n];
        float[] floats = new float[n];
        Params params = switch (g.dtype()) {
            case 0 -> fp32(storage, floats);
            case 1 -> Params.builder().addBf16("p", half).build();
            default -> Params.builder().addF16("p", half).build();
        };
        EmaConfig config = EmaConfig.constant(decays).withNonFinite(NonFinitePolicy.IGNORE);
        try (GpuEma ema = GpuEma.create(backend, Params.of(initial), config)) {
            for (int t = 0; t < g.steps(); t++) {
                for (int i = 0; i < n; i++) {
                    floats[i] = Float.intBitsToFloat(g.params()[t][i]);
                    half[i] = (short) g.params()[t][i];
                }
                if (g.dtype() == 0) {
                    refill(storage, params, floats);
                }
                ema.update(params, decays);
                for (int k = 0; k < decays.length; k++) {
                    assertGolden(shadows.get(k).shadows()[t], shadow(ema, k)[0],
                            what + ", shadow " + k + " (decay " + decays[k] + "), update " + t);
                }
            }
        }
    }

    /** Bit equality with torch's result, where any NaN equals any NaN. */
    static void assertGolden(int[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            int a = Float.floatToRawIntBits(actual[i]);
            if (!Golden.same(expected[i], a)) {
                fail(what + ": element " + i + ": torch " + Float.intBitsToFloat(expected[i]) + " (0x"
                        + Integer.toHexString(expected[i]) + "), got " + actual[i] + " (0x" + Integer.toHexString(a)
                        + ")");
            }
        }
    }

    // --- many tensors ------------------------------------------------------------------------------------------

    @Test
    void manyOddSizedTensorsOfMixedKindsInOneUpdate() {
        Random r = new Random(5);
        List<float[]> hostValues = new ArrayList<>();
        Params.Builder b = Params.builder();
        int[] sizes = new int[41];
        for (int i = 0; i < sizes.length; i++) {
            sizes[i] = i == 7 ? 70001 : i == 20 ? 16384 : i == 30 ? 0 : r.nextInt(3000);
        }
        for (int i = 0; i < sizes.length; i++) {
            int n = sizes[i];
            String name = "layer" + i + ".weight";
            float[] v = values(n, 100 + i);
            switch (i % 5) {
                case 0 -> b.add(name, v.clone());
                case 1 -> {
                    short[] h = new short[n];
                    for (int j = 0; j < n; j++) {
                        h[j] = EmaOracle.toBf16(v[j]);
                        v[j] = EmaOracle.bf16(h[j]);
                    }
                    b.addBf16(name, h);
                }
                case 2 -> {
                    short[] h = new short[n];
                    for (int j = 0; j < n; j++) {
                        h[j] = EmaOracle.toF16(Math.max(-60000f, Math.min(60000f, v[j])));
                        v[j] = EmaOracle.f16(h[j]);
                    }
                    b.addF16(name, h);
                }
                case 3 -> {
                    FloatBuffer fb = ByteBuffer.allocateDirect(4 * (n + 3)).order(ByteOrder.nativeOrder()).asFloatBuffer();
                    fb.position(3);
                    fb.put(v).position(3);
                    b.add(name, fb);
                }
                default -> b.add(name, deviceF32(v));
            }
            hostValues.add(v);
        }
        Params params = b.build();
        float[][] zeros = new float[sizes.length][];
        for (int i = 0; i < sizes.length; i++) {
            zeros[i] = new float[sizes[i]];
        }
        try (GpuEma ema = GpuEma.create(backend, Params.of(zeros), 0.9, 0.999)) {
            List<float[]> e0 = hostValues.stream().map(v -> new float[v.length]).toList();
            List<float[]> e1 = hostValues.stream().map(v -> new float[v.length]).toList();
            ema.update(params);
            ema.update(params, 0.5, 0.25);
            for (int i = 0; i < sizes.length; i++) {
                EmaOracle.lerp(e0.get(i), hostValues.get(i), 0.9);
                EmaOracle.lerp(e0.get(i), hostValues.get(i), 0.5);
                EmaOracle.lerp(e1.get(i), hostValues.get(i), 0.999);
                EmaOracle.lerp(e1.get(i), hostValues.get(i), 0.25);
            }
            float[][] s0 = shadow(ema, 0);
            float[][] s1 = shadow(ema, 1);
            for (int i = 0; i < sizes.length; i++) {
                assertBits(e0.get(i), s0[i], "tensor " + i + " shadow 0");
                assertBits(e1.get(i), s1[i], "tensor " + i + " shadow 1");
            }
        }
    }

    // --- non-finite guard --------------------------------------------------------------------------------------

    @Test
    void nonFiniteParametersSkipTheUpdateAndAreCounted() {
        float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int where : new int[] {0, 128, 70000}) {
            for (float x : bad) {
                float[] a = values(70001, 6);
                short[] h = new short[300];
                Params params = Params.builder().add("a", a).addBf16("h", h).build();
                try (GpuEma ema = GpuEma.create(backend, params, 0.9, 0.99)) {
                    float[][] before0 = shadow(ema, 0);
                    float[][] before1 = shadow(ema, 1);
                    a[where] = x;
                    ema.update(params);
                    assertBits(before0[0], shadow(ema, 0)[0], "skip with " + x + " at " + where);
                    assertBits(before1[1], shadow(ema, 1)[1], "skip, second tensor");
                    assertEquals(new EmaStats(1, 1, 1), ema.stats());
                    a[where] = 1f;
                    ema.update(params);
                    assertEquals(new EmaStats(2, 2, 1), ema.stats());
                    float[] expected = before0[0].clone();
                    EmaOracle.lerp(expected, a, 0.9);
                    assertBits(expected, shadow(ema, 0)[0], "update after the skip");
                }
            }
        }
        for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
            short[] h = new short[1000];
            Params params = dtype == DType.BF16 ? Params.ofBf16(h) : Params.ofF16(h);
            try (GpuEma ema = GpuEma.create(backend, params, 0.9)) {
                h[999] = (short) (dtype == DType.BF16 ? 0x7f80 : 0x7c00);
                ema.update(params);
                assertEquals(1, ema.stats().skippedUpdates(), dtype + " infinity");
                h[999] = (short) (dtype == DType.BF16 ? 0xffc1 : 0xfe01);
                ema.update(params);
                assertEquals(2, ema.stats().skippedUpdates(), dtype + " NaN");
                assertBits(new float[1000], shadow(ema, 0)[0], dtype + " shadows untouched");
            }
        }
    }

    @Test
    void nonFiniteParametersThrowUnderThrowPolicy() {
        float[] a = values(5000, 7);
        Params params = Params.of(a);
        EmaConfig config = EmaConfig.constant(0.9).withNonFinite(NonFinitePolicy.THROW);
        try (GpuEma ema = GpuEma.create(backend, params, config)) {
            float[] before = shadow(ema, 0)[0];
            a[4999] = Float.NaN;
            assertThrows(NonFiniteParametersException.class, () -> ema.update(params));
            assertBits(before, shadow(ema, 0)[0], "shadows unchanged");
            assertEquals(new EmaStats(0, 0, 1), ema.stats(), "a failed update advances no counter but the skips");
            assertThrows(NonFiniteParametersException.class, () -> ema.update(params, 0.5));
            assertEquals(new EmaStats(0, 0, 2), ema.stats());
            a[4999] = 1f;
            ema.update(params);
            assertEquals(new EmaStats(1, 1, 2), ema.stats());
        }
    }

    @Test
    void nonFiniteInitialParametersAreRefusedUnlessIgnored() {
        float[] a = values(70001, 9);
        a[65536] = Float.NaN;
        short[] h = new short[33];
        h[32] = (short) 0xfc00;  // fp16 -Inf
        long before = backend.allocatedBytes();
        for (NonFinitePolicy policy : new NonFinitePolicy[] {NonFinitePolicy.SKIP, NonFinitePolicy.THROW}) {
            EmaConfig config = EmaConfig.constant(0.9, 0.99).withNonFinite(policy);
            assertMessage(NonFiniteParametersException.class, () -> GpuEma.create(backend, Params.of(a), config),
                    "the initial parameters hold NaN or infinite values");
            assertMessage(NonFiniteParametersException.class,
                    () -> GpuEma.create(backend, Params.builder().add("a", new float[5]).addF16("h", h).build(),
                            config), "NonFinitePolicy." + policy);
            assertEquals(before, backend.allocatedBytes(), policy + ": nothing stays allocated");
        }
        EmaConfig ignore = EmaConfig.constant(0.9).withNonFinite(NonFinitePolicy.IGNORE);
        try (GpuEma ema = GpuEma.create(backend, Params.of(a), ignore)) {
            assertTrue(Float.isNaN(shadow(ema, 0)[0][65536]), "IGNORE copies them");
        }
    }

    @Test
    void nonFiniteParametersPropagateUnderIgnorePolicy() {
        float[] a = values(5000, 8);
        Params params = Params.of(a);
        try (GpuEma ema = GpuEma.create(backend, params, EmaConfig.constant(0.9).withNonFinite(NonFinitePolicy.IGNORE))) {
            float[] expected = a.clone();
            a[17] = Float.NaN;
            ema.update(params);
            EmaOracle.lerp(expected, a, 0.9);
            float[] actual = shadow(ema, 0)[0];
            assertTrue(Float.isNaN(actual[17]));
            actual[17] = expected[17];
            assertBits(expected, actual, "other elements");
            assertEquals(0, ema.stats().skippedUpdates());
        }
    }

    // --- schedules and every-k ---------------------------------------------------------------------------------

    @Test
    void updatingEveryKStepsAppliesTheCompensatedDecay() {
        int n = 1001;
        float[] a = values(n, 9);
        Params params = Params.of(a);
        double alpha = 0.99;
        try (GpuEma every4 = GpuEma.create(backend, params, EmaConfig.constant(alpha).withEvery(4))) {
            float[] expected = a.clone();
            for (int step = 1; step <= 12; step++) {
                System.arraycopy(values(n, 40 + step), 0, a, 0, n);
                every4.update(params);
                if (step % 4 == 0) {
                    EmaOracle.lerp(expected, a, alpha * alpha * alpha * alpha);  // the product of 4 step decays
                }
                assertBits(expected, shadow(every4, 0)[0], "after step " + step);
            }
            assertEquals(new EmaStats(12, 3, 0), every4.stats());
        }
    }

    @Test
    void scheduledUpdatesUseTheScheduleOfEachShadow() {
        int n = 300;
        float[] a = values(n, 10);
        Params params = Params.of(a);
        EmaConfig config = EmaConfig.of(DecaySchedule.paperWarmup(0.999), DecaySchedule.powerFunction(6.94))
                .withEvery(2);
        try (GpuEma ema = GpuEma.create(backend, params, config)) {
            float[] warm = a.clone();
            float[] power = a.clone();
            for (int step = 1; step <= 10; step++) {
                System.arraycopy(values(n, 60 + step), 0, a, 0, n);
                ema.update(params);
                if (step % 2 == 0) {
                    // the decays of steps t = step-2 and step-1 (0-based), multiplied
                    double w = Math.min(0.999, (step - 1.0) / (step + 8.0)) * Math.min(0.999, step / (step + 9.0));
                    double p = Math.pow((step - 2.0) / (step - 1.0), 6.94 + 1.0)
                            * Math.pow((step - 1.0) / step, 6.94 + 1.0);
                    EmaOracle.lerp(warm, a, w);
                    EmaOracle.lerp(power, a, p);
                }
            }
            assertBits(warm, shadow(ema, 0)[0], "paper warm-up");
            assertBits(power, shadow(ema, 1)[0], "power function");
        }
    }

    // --- swap ----------------------------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(Storage.class)
    void swapPutsTheShadowInAndRestoresLiveWeightsBitExactly(Storage storage) {
        int n = 65537;
        float[] live = values(n, 11);
        live[5] = Float.intBitsToFloat(0x7fa00001);  // a signalling NaN payload must survive the round trip
        live[6] = -0.0f;
        Params params = fp32(storage, live);
        EmaConfig unchecked = EmaConfig.constant(0.5).withNonFinite(NonFinitePolicy.IGNORE);  // the NaN is live
        try (GpuEma ema = GpuEma.create(backend, params, unchecked)) {
            refill(storage, params, values(n, 12));
            ema.update(params);
            refill(storage, params, live);
            float[] shadow = shadow(ema, 0)[0];
            try (SwapScope scope = ema.swapInto(params)) {
                assertBits(shadow, read(storage, params, n), storage + " holds the shadow");
                assertThrows(IllegalStateException.class, () -> ema.update(params));
                assertThrows(IllegalStateException.class, () -> ema.swapInto(params));
                assertThrows(IllegalStateException.class, () -> ema.copyTo(Params.of(new float[n])));
                scope.close();
                scope.close();
            }
            assertBits(live, read(storage, params, n), storage + " restored");
            assertBits(shadow, shadow(ema, 0)[0], "shadow unchanged by the swap");
            ema.swapInto(params);
        }
        assertBits(live, read(storage, params, n), storage + " restored by close()");
    }

    @Test
    void swapIntoHalfPrecisionParamsRestoresNaNPayloads() {
        short[] h = new short[1000];
        for (int i = 0; i < h.length; i++) {
            h[i] = EmaOracle.toBf16(i * 0.37f - 100f);
        }
        h[3] = (short) 0x7f81;
        h[4] = (short) 0xff80;
        short[] live = h.clone();
        Params params = Params.ofBf16(h);
        try (GpuEma ema = GpuEma.create(backend, Params.of(values(1000, 13)), 0.9)) {
            float[] shadow = shadow(ema, 0)[0];
            try (SwapScope ignored = ema.swapInto(params)) {
                for (int i = 0; i < h.length; i++) {
                    assertEquals(EmaOracle.toBf16(shadow[i]), h[i], "element " + i);
                }
            }
            for (int i = 0; i < h.length; i++) {
                assertEquals(live[i], h[i], "restored element " + i);
            }
        }
    }

    // --- state files ---------------------------------------------------------------------------------------------

    @Test
    void saveLoadResumesExactly(@TempDir Path dir) throws IOException {
        int n = 3000;
        EmaConfig config = EmaConfig.of(DecaySchedule.paperWarmup(0.99), DecaySchedule.biasCorrected(0.9))
                .withEvery(3).withClock(EmaClock.EMA_UPDATES);
        float[] a = values(n, 14);
        short[] h = new short[77];
        Params params = Params.builder().add("w", a).addF16("b", h).build();
        Path file = dir.resolve("ema.safetensors");
        try (GpuEma straight = GpuEma.create(backend, params, config);
             GpuEma first = GpuEma.create(backend, params, config)) {
            for (int step = 1; step <= 20; step++) {
                System.arraycopy(values(n, 200 + step), 0, a, 0, n);
                h[0] = step == 3 ? (short) 0x7c00 : EmaOracle.toF16(step);  // +Inf: the update after step 3 is skipped
                straight.update(params);
                if (step <= 11) {
                    first.update(params);
                }
                if (step == 11) {
                    first.save(file);
                    try (SafetensorsFile f = SafetensorsFile.open(file)) {
                        assertEquals("11", f.metadata().get("steps"));
                        assertTrue(f.tensor("ema.1.b").isPresent());
                        assertEquals(4, f.tensors().size());
                    }
                }
            }
            try (GpuEma resumed = GpuEma.create(backend, Params.builder().add("w", new float[n])
                    .addF16("b", new short[77]).build(), config)) {
                resumed.load(file);
                assertEquals(first.stats(), resumed.stats());
                for (int step = 12; step <= 20; step++) {
                    System.arraycopy(values(n, 200 + step), 0, a, 0, n);
                    h[0] = EmaOracle.toF16(step);
                    resumed.update(params);
                }
                assertEquals(straight.stats(), resumed.stats());
                assertEquals(1, resumed.stats().skippedUpdates());
                for (int k = 0; k < 2; k++) {
                    float[][] expected = shadow(straight, k);
                    float[][] actual = shadow(resumed, k);
                    for (int i = 0; i < 2; i++) {
                        assertBits(expected[i], actual[i], "shadow " + k + " tensor " + i);
                    }
                }
            }
        }
    }

    @Test
    void stateFilesCarryNamesShapesAndPlainMetadata(@TempDir Path dir) throws IOException {
        float[] flat = values(40, 18);  // a model in one buffer: conv.weight [2, 3, 2, 2] at 0, fc.bias [5] at 28
        short[] h = new short[6];
        Params params = Params.builder()
                .add("params", flat).slice("conv.weight", 0, 2, 3, 2, 2).slice("fc.bias", 28, 5)
                .addBf16("emb", h, 2, 3)
                .build();
        EmaConfig config = EmaConfig.of(DecaySchedule.paperWarmup(0.998), DecaySchedule.timm(0.9999, 1, 0.75),
                DecaySchedule.powerFunctionSigmaRel(0.05)).withEvery(2);
        Path file = dir.resolve("state.safetensors");
        try (GpuEma ema = GpuEma.create(backend, params, config)) {
            ema.update(params);
            ema.update(params);
            ema.save(file);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertEquals(List.of("ema.0.conv.weight", "ema.0.fc.bias", "ema.0.emb", "ema.1.conv.weight",
                        "ema.1.fc.bias", "ema.1.emb", "ema.2.conv.weight", "ema.2.fc.bias", "ema.2.emb"),
                        f.tensors().stream().map(TensorInfo::name).toList());
                assertEquals(List.of(2L, 3L, 2L, 2L), f.tensor("ema.1.conv.weight").orElseThrow().shape());
                assertEquals(List.of(5L), f.tensor("ema.2.fc.bias").orElseThrow().shape());
                assertEquals(List.of(2L, 3L), f.tensor("ema.0.emb").orElseThrow().shape());
                Map<String, String> meta = f.metadata();
                assertEquals("3", meta.get("shadows"));
                assertEquals("paper_warmup", meta.get("shadow.0.schedule"));
                assertEquals("0.998", meta.get("shadow.0.decay"));
                assertEquals("timm", meta.get("shadow.1.schedule"));
                assertEquals("0.75", meta.get("shadow.1.power"));
                assertEquals("power_function", meta.get("shadow.2.schedule"));
                assertEquals("2", meta.get("every"));
                assertEquals("OPTIMIZER_STEPS", meta.get("clock"));
                assertEquals("2", meta.get("steps"));
                assertEquals("1", meta.get("updates"));
                float[] bias = new float[5];
                f.readF32(f.tensor("ema.0.fc.bias").orElseThrow(), 0, bias, 0, 5);
                assertBits(Arrays.copyOfRange(shadow(ema, 0)[0], 28, 33), bias, "slice bytes");
            }
            try (GpuEma copy = GpuEma.create(backend, params, config)) {
                copy.load(file);
                float[] saved = shadow(ema, 2)[0];
                float[] loaded = shadow(copy, 2)[0];
                assertBits(Arrays.copyOfRange(saved, 0, 24), Arrays.copyOfRange(loaded, 0, 24), "conv.weight loaded");
                assertBits(Arrays.copyOfRange(saved, 28, 33), Arrays.copyOfRange(loaded, 28, 33), "fc.bias loaded");
                assertBits(new float[4], Arrays.copyOfRange(loaded, 24, 28), "padding between slices loads as 0");
                assertBits(new float[7], Arrays.copyOfRange(loaded, 33, 40), "padding after the last slice too");
            }
        }
    }

    @Test
    void exportStateDictWritesOneShadowUnderItsNamesAndShapes(@TempDir Path dir) throws IOException {
        float[] flat = values(40, 19);
        Params params = Params.builder().add("params", flat).slice("a.weight", 0, 4, 7).slice("a.bias", 32, 4)
                .build();
        try (GpuEma ema = GpuEma.create(backend, params, 0.9, 0.5)) {
            ema.update(Params.of(values(40, 20)));
            float[] shadow = shadow(ema, 1)[0];
            Path f32 = dir.resolve("f32.safetensors");
            Path bf16 = dir.resolve("bf16.safetensors");
            ema.exportStateDict(f32, 1, TensorDType.F32);
            ema.exportStateDict(bf16, 1, TensorDType.BF16);
            try (SafetensorsFile f = SafetensorsFile.open(f32)) {
                assertEquals(List.of("a.weight", "a.bias"), f.tensors().stream().map(TensorInfo::name).toList());
                assertEquals(List.of(4L, 7L), f.tensor("a.weight").orElseThrow().shape());
                assertEquals("pt", f.metadata().get("format"));
                assertEquals("constant", f.metadata().get("ema4j.schedule"));
                assertEquals("0.5", f.metadata().get("ema4j.decay"));
                assertEquals("1", f.metadata().get("ema4j.updates"));
                float[] weight = new float[28];
                f.readF32(f.tensor("a.weight").orElseThrow(), 0, weight, 0, 28);
                assertBits(Arrays.copyOfRange(shadow, 0, 28), weight, "F32 export");
            }
            byte[] bytes = Files.readAllBytes(bf16);
            try (SafetensorsFile f = SafetensorsFile.open(bf16)) {
                TensorInfo bias = f.tensor("a.bias").orElseThrow();
                assertEquals(TensorDType.BF16, bias.dtype());
                ByteBuffer data = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
                long start = bytes.length - (28 + 4) * 2L + bias.begin();
                for (int i = 0; i < 4; i++) {
                    assertEquals(EmaOracle.toBf16(shadow[32 + i]), data.getShort((int) start + 2 * i),
                            "BF16 element " + i + " rounds to nearest even");
                }
            }
            assertThrows(IndexOutOfBoundsException.class, () -> ema.exportStateDict(f32, 2, TensorDType.F32));
            assertMessage(IllegalArgumentException.class, () -> ema.exportStateDict(f32, 0, TensorDType.I64),
                    "float values are stored as F32, BF16 or F16");
        }
    }

    @Test
    void failedLoadsLeaveTheEmaAsItWas(@TempDir Path dir) throws IOException {
        float[] a = values(100, 15);
        Path other = dir.resolve("other.safetensors");
        try (GpuEma longer = GpuEma.create(backend, Params.of(new float[101]), 0.9)) {
            longer.save(other);
        }
        Path otherDecay = dir.resolve("decay.safetensors");
        try (GpuEma e = GpuEma.create(backend, Params.of(a), 0.8)) {
            e.save(otherDecay);
        }
        Path good = dir.resolve("good.safetensors");
        try (GpuEma e = GpuEma.create(backend, Params.of(a), 0.9)) {
            e.save(good);
        }
        Path truncated = dir.resolve("truncated.safetensors");
        byte[] bytes = Files.readAllBytes(good);
        Files.write(truncated, java.util.Arrays.copyOf(bytes, bytes.length - 4));
        Path notEma = dir.resolve("not-ema.safetensors");
        Files.write(notEma, bytes.clone());
        replaceInFile(notEma, "ema4j.ema-state", "ema4j.xxx-state");

        Path extra = dir.resolve("extra.safetensors");
        try (GpuEma e = GpuEma.create(backend, Params.of(a), 0.9)) {
            List<FloatTensor> tensors = new ArrayList<>(e.stateTensors(""));
            tensors.add(new FloatTensor("ema.0.unknown", List.of(3L), (o, dst, off, len) -> { }));
            SafetensorsWriter.write(extra, e.stateMetadata(""), tensors);
        }

        try (GpuEma ema = GpuEma.create(backend, Params.of(a), 0.9)) {
            ema.update(Params.of(values(100, 16)));
            float[] before = shadow(ema, 0)[0];
            EmaStats stats = ema.stats();
            long allocated = backend.allocatedBytes();
            IllegalArgumentException layout = assertThrows(IllegalArgumentException.class, () -> ema.load(other));
            assertTrue(layout.getMessage().contains("F32 [101], this EMA tracks F32 [100]"), layout.getMessage());
            IllegalArgumentException decay = assertThrows(IllegalArgumentException.class, () -> ema.load(otherDecay));
            assertTrue(decay.getMessage().contains("0.8"), decay.getMessage());
            assertMessage(IllegalArgumentException.class, () -> ema.load(extra),
                    "holds tensor \"ema.0.unknown\", which this EMA does not track");
            assertThrows(IOException.class, () -> ema.load(truncated));
            assertThrows(IOException.class, () -> ema.load(notEma));
            assertThrows(IOException.class, () -> ema.load(dir.resolve("missing.safetensors")));
            IOException directory = assertThrows(IOException.class, () -> ema.load(dir));
            assertTrue(directory.getMessage().contains(dir + ": not a regular file"), directory.getMessage());
            assertEquals(allocated, backend.allocatedBytes(), "a failed load keeps nothing allocated");
            assertBits(before, shadow(ema, 0)[0], "shadows unchanged");
            assertEquals(stats, ema.stats());
            ema.load(good);
            assertBits(a, shadow(ema, 0)[0], "good file loaded");
            assertEquals(new EmaStats(0, 0, 0), ema.stats());
        }
    }

    private static void replaceInFile(Path file, String from, String to) throws IOException {
        byte[] b = Files.readAllBytes(file);
        String s = new String(b, java.nio.charset.StandardCharsets.ISO_8859_1);
        Files.write(file, s.replace(from, to).getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
    }

    // --- bad input -----------------------------------------------------------------------------------------------

    @Test
    void badArgumentsThrowBeforeAnythingChanges() {
        float[] a = values(100, 17);
        Params params = Params.of(a);
        try (GpuEma ema = GpuEma.create(backend, params, 0.9, 0.99)) {
            float[] before = shadow(ema, 0)[0];
            assertThrows(NullPointerException.class, () -> ema.update(null));
            assertThrows(NullPointerException.class, () -> ema.update(params, (double[]) null));
            assertMessage(IllegalArgumentException.class, () -> ema.update(Params.of(new float[99])),
                    "params tensor 0 (0) has 99 elements, this EMA tracks 100");
            assertMessage(IllegalArgumentException.class, () -> ema.update(Params.of(a, a.clone())),
                    "params has 2 tensors, this EMA tracks 1");
            assertMessage(IllegalArgumentException.class, () -> ema.update(params, 1.5, 0.9), "decays[0] is 1.5");
            assertMessage(IllegalArgumentException.class, () -> ema.update(params, 0.9, Double.NaN), "decays[1] is NaN");
            assertMessage(IllegalArgumentException.class, () -> ema.update(params, -0.1, 0.9), "decays[0] is -0.1");
            assertMessage(IllegalArgumentException.class, () -> ema.update(params, 0.9),
                    "decays has 1 values, this EMA tracks 2 shadows");
            assertMessage(IndexOutOfBoundsException.class, () -> ema.copyTo(Params.of(new float[100]), 2),
                    "shadow is 2; this EMA tracks 2 shadows");
            assertMessage(IllegalArgumentException.class, () -> ema.copyTo(Params.of(new float[100])),
                    "this EMA tracks 2 shadows");
            assertMessage(IllegalArgumentException.class, () -> ema.copyTo(Params.of(new float[101]), 0),
                    "target tensor 0 (0) has 101 elements, this EMA tracks 100");
            FloatBuffer readOnly = FloatBuffer.allocate(100).asReadOnlyBuffer();
            assertMessage(IllegalArgumentException.class, () -> ema.copyTo(Params.of(readOnly), 0), "read-only");
            try (Backend other = new CpuBackend(1)) {
                DeviceBuffer foreign = other.allocate(DType.F32, 100);
                assertMessage(IllegalArgumentException.class, () -> ema.update(Params.of(foreign)),
                        "belongs to backend cpu");
            }
            assertEquals(new EmaStats(0, 0, 0), ema.stats());
            assertBits(before, shadow(ema, 0)[0], "nothing changed");
        }
        assertMessage(IllegalArgumentException.class, () -> new Params.HalfArray(DType.F32, new short[3]),
                "a short[] holds BF16 or F16, not F32");
        assertMessage(IllegalArgumentException.class, () -> EmaConfig.constant(0.9).withEvery(0), "every is 0");
        assertMessage(IllegalArgumentException.class, () -> EmaConfig.constant(new double[9]), "schedules has 9");
        assertMessage(IllegalArgumentException.class, () -> EmaConfig.constant(1.01), "decay is 1.01");
        assertMessage(IllegalArgumentException.class, () -> Params.of(new float[0][]), "at least one tensor");
        assertMessage(IllegalArgumentException.class, () -> Params.builder().add("w", a).add("w", a).build(),
                "two tensors named \"w\"");
        assertThrows(NullPointerException.class, () -> GpuEma.create(null, params, 0.9));
        assertThrows(NullPointerException.class, () -> GpuEma.create(backend, null, 0.9));
        assertThrows(NullPointerException.class, () -> Params.of((float[]) null));
    }

    @Test
    void unusableDeviceMemoryIsRefused() {
        Params foreign = foreignDeviceParams(64);
        long before = backend.allocatedBytes();
        assertThrows(IllegalArgumentException.class, () -> GpuEma.create(backend, foreign, 0.9));
        assertThrows(IllegalArgumentException.class, () -> backend.bind(foreign));
        assertEquals(before, backend.allocatedBytes(), "nothing allocated");
    }

    @Test
    void useAfterCloseThrowsIllegalState() {
        float[] a = values(10, 18);
        Params params = Params.of(a);
        GpuEma ema = GpuEma.create(backend, params, 0.9);
        ema.close();
        ema.close();
        assertThrows(IllegalStateException.class, () -> ema.update(params));
        assertThrows(IllegalStateException.class, () -> ema.stats());
        GpuEma live = GpuEma.create(backend, params, 0.9);
        DeviceBuffer buffer = backend.allocate(DType.F32, 10);
        ParamTable table = backend.bind(params);
        backend.close();
        assertThrows(IllegalStateException.class, () -> live.update(params));
        assertTrue(buffer.isClosed());
        assertThrows(IllegalStateException.class, () -> backend.allocate(DType.F32, 1));
        assertThrows(IllegalStateException.class, () -> backend.bind(params));
        assertThrows(IllegalStateException.class, () -> backend.toShadow(table, buffer));
    }

    @Test
    void allocatedBytesCountShadowsAndCloseFreesThem() {
        long base = backend.allocatedBytes();
        float[] a = values(1000, 19);
        GpuEma ema = GpuEma.create(backend, Params.of(a), 0.9, 0.99, 0.999);
        assertTrue(backend.allocatedBytes() >= base + 3 * 4000, "three shadows of 4000 bytes");
        ema.close();
        assertEquals(base, backend.allocatedBytes());
        DeviceBuffer b = backend.allocate(DType.BF16, 10);
        assertEquals(base + 20, backend.allocatedBytes());
        b.close();
        assertThrows(IllegalStateException.class, () -> backend.write(new float[1], 0, b, 0, 1));
        assertEquals(base, backend.allocatedBytes());
    }

    @Test
    void hostCopiesCheckRanges() {
        DeviceBuffer b = backend.allocate(DType.F32, 10);
        backend.write(new float[] {1, 2, 3}, 1, b, 8, 2);
        float[] out = new float[4];
        backend.read(b, 7, out, 1, 3);
        assertBits(new float[] {0, 0, 2, 3}, out, "partial copies");
        assertThrows(IndexOutOfBoundsException.class, () -> backend.write(new float[3], 0, b, 9, 2));
        assertThrows(IndexOutOfBoundsException.class, () -> backend.read(b, 0, new float[3], 2, 2));
        DeviceBuffer half = backend.allocate(DType.BF16, 10);
        assertMessage(IllegalArgumentException.class, () -> backend.write(new float[1], 0, half, 0, 1),
                "host copies need F32");
        assertSame(backend, half.backend());
    }

    @Test
    void largeHostCopiesArriveWhole() {
        int n = (1 << 24) + 1029;  // more than one 64 MiB staging piece of the CUDA backend, at an odd offset
        float[] src = new float[n + 3];
        for (int i = 0; i < src.length; i++) {
            src[i] = i * 0.5f - 7;
        }
        DeviceBuffer b = backend.allocate(DType.F32, n + 1);
        backend.write(src, 3, b, 1, n);
        float[] out = new float[n];
        backend.read(b, 1, out, 0, n);
        assertBits(Arrays.copyOfRange(src, 3, n + 3), out, "a copy of " + n + " floats");
        b.close();
    }

    @Test
    void swapStorageExchangesMemoryAndChecksItsArguments() {
        DeviceBuffer a = deviceF32(new float[] {1, 2, 3});
        DeviceBuffer b = deviceF32(new float[] {4, 5, 6});
        a.swapStorage(b);
        float[] out = new float[3];
        backend.read(a, 0, out, 0, 3);
        assertBits(new float[] {4, 5, 6}, out, "a after the swap");
        backend.read(b, 0, out, 0, 3);
        assertBits(new float[] {1, 2, 3}, out, "b after the swap");
        assertMessage(IllegalArgumentException.class, () -> a.swapStorage(backend.allocate(DType.F32, 4)),
                "dtype and length must match");
        assertMessage(IllegalArgumentException.class, () -> a.swapStorage(backend.allocate(DType.BF16, 3)),
                "dtype and length must match");
        try (Backend other = new CpuBackend(1)) {
            assertMessage(IllegalArgumentException.class, () -> a.swapStorage(other.allocate(DType.F32, 3)),
                    "belongs to backend cpu");
        }
        b.close();
        assertThrows(IllegalStateException.class, () -> a.swapStorage(b));
    }

    // --- helpers -------------------------------------------------------------------------------------------------

    /** Random fp32 values with a few specials: ±0, subnormals, large magnitudes. */
    static float[] values(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (r.nextInt(64)) {
                case 0 -> -0.0f;
                case 1 -> Float.MIN_VALUE * r.nextInt(1000);
                case 2 -> (float) (r.nextGaussian() * 1e30);
                default -> (float) r.nextGaussian();
            };
        }
        return v;
    }

    static short[] halfValues(DType dtype, int n, long seed) {
        float[] v = values(n, seed);
        short[] h = new short[n];
        for (int i = 0; i < n; i++) {
            float x = dtype == DType.F16 ? Math.max(-60000f, Math.min(60000f, v[i])) : v[i];
            h[i] = dtype == DType.BF16 ? EmaOracle.toBf16(x) : EmaOracle.toF16(x);
        }
        return h;
    }

    static float[] widen(DType dtype, short[] bits) {
        float[] f = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            f[i] = dtype == DType.BF16 ? EmaOracle.bf16(bits[i]) : EmaOracle.f16(bits[i]);
        }
        return f;
    }

    Params fp32(Storage storage, float[] values) {
        return switch (storage) {
            case ARRAY -> Params.of(values.clone());
            case HEAP_BUFFER -> {
                FloatBuffer b = FloatBuffer.allocate(values.length + 5);
                b.position(5);
                b.put(values).position(5);
                yield Params.of(b);
            }
            case DIRECT_BUFFER, BIG_ENDIAN_BUFFER, BYTE_VIEW -> {
                ByteBuffer bytes = storage == Storage.BYTE_VIEW ? ByteBuffer.allocate(4 * values.length)
                        : ByteBuffer.allocateDirect(4 * values.length);
                FloatBuffer b = (storage == Storage.DIRECT_BUFFER ? bytes.order(ByteOrder.nativeOrder())
                        : bytes.order(ByteOrder.BIG_ENDIAN)).asFloatBuffer();
                b.put(values).position(0);
                yield Params.of(b);
            }
            case DEVICE -> Params.of(deviceF32(values));
        };
    }

    DeviceBuffer deviceF32(float[] values) {
        DeviceBuffer b = backend.allocate(DType.F32, values.length);
        backend.write(values, 0, b, 0, values.length);
        return b;
    }

    void refill(Storage storage, Params params, float[] values) {
        Params.Storage t = params.tensor(0).storage();
        switch (storage) {
            case ARRAY -> System.arraycopy(values, 0, ((Params.FloatArray) t).array(), 0, values.length);
            case HEAP_BUFFER, DIRECT_BUFFER, BIG_ENDIAN_BUFFER, BYTE_VIEW -> {
                Params.Floats f = (Params.Floats) t;
                f.buffer().put(f.offset(), values, 0, values.length);
            }
            case DEVICE -> backend.write(values, 0, ((Params.Device) t).buffer(), 0, values.length);
        }
    }

    float[] read(Storage storage, Params params, int n) {
        float[] out = new float[n];
        Params.Storage t = params.tensor(0).storage();
        switch (storage) {
            case ARRAY -> System.arraycopy(((Params.FloatArray) t).array(), 0, out, 0, n);
            case HEAP_BUFFER, DIRECT_BUFFER, BIG_ENDIAN_BUFFER, BYTE_VIEW -> {
                Params.Floats f = (Params.Floats) t;
                f.buffer().get(f.offset(), out, 0, n);
            }
            case DEVICE -> backend.read(((Params.Device) t).buffer(), 0, out, 0, n);
        }
        return out;
    }

    /** Shadow {@code k} of {@code ema}, one fp32 array per tensor, read through copyTo. */
    static float[][] shadow(GpuEma ema, int k) {
        int size = ema.layout().size();
        float[][] out = new float[size][];
        for (int i = 0; i < size; i++) {
            out[i] = new float[(int) ema.layout().length(i)];
        }
        ema.copyTo(Params.of(out), k);
        return out;
    }

    static void assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            int e = Float.floatToRawIntBits(expected[i]);
            int a = Float.floatToRawIntBits(actual[i]);
            if (e != a) {
                fail(what + ": element " + i + " of " + expected.length + ": expected " + expected[i] + " (0x"
                        + Integer.toHexString(e) + "), got " + actual[i] + " (0x" + Integer.toHexString(a) + ")");
            }
        }
    }
}
