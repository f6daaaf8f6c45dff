package dev.ema4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writes tensors with {@link SafetensorsWriter} and reads them back bit for bit with {@link SafetensorsFile}. */
class SafetensorsRoundTripTest {

    private static final int CHUNK = 1 << 20;
    private static final int BIG = 1_048_583;

    private static final float[] SPECIAL = {
        Float.intBitsToFloat(0x7fc00000), // canonical quiet NaN
        Float.intBitsToFloat(0x7fc12345), // quiet NaN with payload
        Float.intBitsToFloat(0xffc00001), // negative quiet NaN with payload
        Float.intBitsToFloat(0x7f800001), // signaling NaN
        Float.intBitsToFloat(0xffbfffff), // negative signaling NaN, all payload bits
        -0.0f, 0.0f,
        Float.MIN_VALUE, -Float.MIN_VALUE, // smallest subnormals
        Float.intBitsToFloat(0x007fffff), // largest subnormal
        Float.MIN_NORMAL,
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
        Float.MAX_VALUE, -Float.MAX_VALUE, 1.0f, -2.5f, (float) Math.PI
    };

    @TempDir
    Path dir;

    @Test
    void roundTripIsBitExact() throws IOException {
        float[] big = randomBits(BIG, 42);
        System.arraycopy(SPECIAL, 0, big, CHUNK - 11, SPECIAL.length); // straddles the chunk boundary, ends the tensor
        float[] cube = randomBits(2 * 3 * 4, 7);
        float[] scalar = {Float.intBitsToFloat(0x7fa0beef)};
        float[] special = SPECIAL.clone();
        Map<String, float[]> values = new LinkedHashMap<>();
        values.put("layer.0.weight", cube);
        values.put("empty", new float[0]);
        values.put("big", big);
        values.put("scalar", scalar);
        values.put("special", special);
        values.put("zero.dim", new float[0]);
        Map<String, List<Long>> shapes = Map.of(
                "layer.0.weight", List.of(2L, 3L, 4L),
                "empty", List.of(0L),
                "big", List.of(1L, (long) BIG),
                "scalar", List.of(),
                "special", List.of(3L, 6L),
                "zero.dim", List.of(5L, 0L, 7L));
        List<long[]> bigRequests = new ArrayList<>();
        List<FloatTensor> tensors = new ArrayList<>();
        for (Map.Entry<String, float[]> e : values.entrySet()) {
            float[] src = e.getValue();
            FloatSource source = (offset, dst, dstOffset, length) -> {
                if (src == big) {
                    bigRequests.add(new long[] {offset, length});
                }
                System.arraycopy(src, Math.toIntExact(offset), dst, dstOffset, length);
            };
            tensors.add(new FloatTensor(e.getKey(), shapes.get(e.getKey()), source));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "pt");
        metadata.put("décroissance", "0.999 — EMA ✓ 指数移动平均 🚀");
        metadata.put("empty", "");
        metadata.put("quote\"and\\slash", "line\nbreak\ttab");
        Path path = dir.resolve("ema.safetensors");

        SafetensorsWriter.write(path, metadata, tensors);

        assertEquals(List.of(List.of(0L, (long) CHUNK), List.of((long) CHUNK, (long) (BIG - CHUNK))),
                bigRequests.stream().map(r -> List.of(r[0], r[1])).toList(), "chunked pulls of the big tensor");
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertEquals(new ArrayList<>(metadata.entrySet()), new ArrayList<>(f.metadata().entrySet()));
            assertEquals(new ArrayList<>(values.keySet()), f.tensors().stream().map(TensorInfo::name).toList());
            long expectedBegin = 0;
            for (TensorInfo t : f.tensors()) {
                float[] expected = values.get(t.name());
                assertEquals(TensorDType.F32, t.dtype());
                assertEquals(shapes.get(t.name()), t.shape());
                assertEquals(expectedBegin, t.begin(), t.name());
                assertEquals(expected.length, t.elementCount(), t.name());
                assertEquals(f.tensor(t.name()).orElseThrow(), t);
                float[] actual = new float[expected.length];
                f.readF32(t, 0, actual, 0, actual.length);
                assertArrayEquals(rawBits(expected), rawBits(actual), t.name());
                expectedBegin = t.end();
            }
            TensorInfo bigInfo = f.tensor("big").orElseThrow();
            float[] window = new float[40];
            f.readF32(bigInfo, BIG - window.length, window, 0, window.length);
            for (int i = 0; i < window.length; i++) {
                assertEquals(Float.floatToRawIntBits(big[BIG - window.length + i]), Float.floatToRawIntBits(window[i]));
            }
            long headerSize = Files.size(path) - 8 - expectedBegin;
            assertEquals(0, headerSize % 8, "header padded to a multiple of 8");
        }
    }

    @Test
    void writesEmptyFileThatReadsBack() throws IOException {
        Path path = dir.resolve("none.safetensors");
        SafetensorsWriter.write(path, Map.of(), List.of());
        assertEquals("{}      ", Files.readString(path).substring(8));
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            assertTrue(f.tensors().isEmpty());
            assertTrue(f.metadata().isEmpty());
        }
    }

    private static float[] randomBits(int n, long seed) {
        Random random = new Random(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = Float.intBitsToFloat(random.nextInt());
        }
        return out;
    }

    private static int[] rawBits(float[] values) {
        int[] bits = new int[values.length];
        for (int i = 0; i < values.length; i++) {
            bits[i] = Float.floatToRawIntBits(values[i]);
        }
        return bits;
    }
}
