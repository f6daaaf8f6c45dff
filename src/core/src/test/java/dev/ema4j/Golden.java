package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

/**
 * The golden vectors of PyTorch's {@code e.lerp_(p, w)} in the test resources {@code dev/ema4j/golden/} (made by
 * bench/golden/make_lerp_golden.py; the format is in bench/golden/README.md). Every file is checked against
 * {@code SHA256SUMS} when read. The resources live in the core module's tests and reach other modules through its
 * test-jar, so they are loaded from the class path.
 */
final class Golden {

    static final String DIR = "/dev/ema4j/golden/";
    /** Param dtypes of the trajectory files, by their code in the header. */
    static final String[] DTYPES = {"fp32", "bf16", "fp16"};
    /** Decays of the trajectory files, as their names spell them. */
    static final String[] DECAYS = {"0p3", "0p5", "0p9", "0p999", "0p9999"};

    private static Map<String, String> sums;

    private Golden() {
    }

    /** One trajectory: {@code shadows[t]} is the shadow after update {@code t} toward {@code params[t]}. */
    record Trajectory(String name, int dtype, double decay, int weightBits, int[] initial, int[][] params,
                      int[][] shadows) {
        int n() {
            return initial.length;
        }

        int steps() {
            return params.length;
        }
    }

    /** Single updates {@code result[i] = lerp(e[i], p[i], w[i])}, fp32 bits. */
    record EdgePairs(int[] e, int[] p, int[] w, int[] result) {
    }

    static Trajectory trajectory(String dtype, String decay) {
        String name = "lerp_" + dtype + "_" + decay + ".bin";
        ByteBuffer b = ByteBuffer.wrap(read(name)).order(ByteOrder.LITTLE_ENDIAN);
        magic(b, "EMA4JLRP", name);
        assertEquals(1, b.getInt(), name + ": version");
        int code = b.getInt();
        assertEquals(dtype, DTYPES[code], name + ": param dtype");
        double d = b.getDouble();
        int weightBits = b.getInt();
        assertEquals(Float.floatToRawIntBits((float) (1.0 - d)), weightBits, name + ": weight = (float) (1 - decay)");
        int n = b.getInt();
        int steps = b.getInt();
        int paramBytes = b.getInt();
        assertEquals(code == 0 ? 4 : 2, paramBytes, name + ": bytes per param");
        assertEquals(40L + 4L * n + (long) steps * n * (paramBytes + 4), b.capacity(), name + ": file size");
        int[] initial = ints(b, n);
        int[][] params = new int[steps][];
        int[][] shadows = new int[steps][];
        for (int t = 0; t < steps; t++) {
            params[t] = new int[n];
            for (int i = 0; i < n; i++) {
                params[t][i] = paramBytes == 4 ? b.getInt() : b.getShort() & 0xffff;
            }
            shadows[t] = ints(b, n);
        }
        return new Trajectory(name, code, d, weightBits, initial, params, shadows);
    }

    static EdgePairs edgePairs() {
        String name = "lerp_edge_pairs.bin";
        ByteBuffer b = ByteBuffer.wrap(read(name)).order(ByteOrder.LITTLE_ENDIAN);
        magic(b, "EMA4JLEP", name);
        assertEquals(1, b.getInt(), name + ": version");
        int count = b.getInt();
        assertEquals(16L + 16L * count, b.capacity(), name + ": file size");
        EdgePairs pairs = new EdgePairs(new int[count], new int[count], new int[count], new int[count]);
        for (int i = 0; i < count; i++) {
            pairs.e[i] = b.getInt();
            pairs.p[i] = b.getInt();
            pairs.w[i] = b.getInt();
            pairs.result[i] = b.getInt();
        }
        return pairs;
    }

    /** Whether {@code a} and {@code b} are the same fp32 bits, or both NaN (torch's NaNs have either sign). */
    static boolean same(int a, int b) {
        return a == b || Float.isNaN(Float.intBitsToFloat(a)) && Float.isNaN(Float.intBitsToFloat(b));
    }

    private static int[] ints(ByteBuffer b, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = b.getInt();
        }
        return out;
    }

    private static void magic(ByteBuffer b, String magic, String name) {
        byte[] m = new byte[8];
        b.get(m);
        assertEquals(magic, new String(m, StandardCharsets.US_ASCII), name + ": magic");
    }

    private static byte[] read(String name) {
        byte[] bytes = resource(name);
        String expected = checksums().get(name);
        assertNotNull(expected, name + " is not listed in " + DIR + "SHA256SUMS");
        try {
            String actual = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
            assertEquals(expected, actual, name + ": sha256 (a damaged or regenerated golden file?)");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
        return bytes;
    }

    private static synchronized Map<String, String> checksums() {
        if (sums == null) {
            Map<String, String> m = new HashMap<>();
            for (String line : new String(resource("SHA256SUMS"), StandardCharsets.US_ASCII).split("\n")) {
                String[] f = line.trim().split("\\s+\\*?");
                if (f.length == 2) {
                    m.put(f[1], f[0]);
                }
            }
            sums = m;
        }
        return sums;
    }

    private static byte[] resource(String name) {
        try (InputStream in = Golden.class.getResourceAsStream(DIR + name)) {
            assertNotNull(in, "test resource " + DIR + name + " is not on the class path (the core test-jar?)");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
