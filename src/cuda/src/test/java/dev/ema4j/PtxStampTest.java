package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The committed PTX matches its CUDA sources: each .ptx begins with {@code // ema4j-ptx-source: <path> sha256=<hex>}
 * lines (native/build-ptx.sh), and every named source must still hash to its stamp. Rebuild with
 * native/build-ptx.sh when this fails.
 */
class PtxStampTest {

    /** The repository root: tests run in the module's folder, src/cuda. */
    private static final Path ROOT = Path.of("../..");
    private static final Path PTX_DIR = Path.of("src/main/resources/dev/ema4j/backend/cuda");
    private static final Pattern STAMP = Pattern.compile("// ema4j-ptx-source: (\\S+) sha256=([0-9a-f]{64})");

    @Test
    void everyKernelSourceHasAStampedPtxThatMatchesIt() throws IOException, NoSuchAlgorithmException {
        List<Path> sources;
        try (Stream<Path> s = Files.list(ROOT.resolve("cuda"))) {
            sources = s.filter(p -> p.toString().endsWith(".cu")).sorted().toList();
        }
        assertFalse(sources.isEmpty(), "no cuda/*.cu");
        for (Path cu : sources) {
            String name = cu.getFileName().toString().replace(".cu", ".ptx");
            Path ptx = PTX_DIR.resolve(name);
            assertTrue(Files.exists(ptx), ptx + " is missing: run native/build-ptx.sh");
            List<String[]> stamps = stamps(ptx);
            assertFalse(stamps.isEmpty(), ptx + " has no ema4j-ptx-source stamp");
            assertEquals("cuda/" + cu.getFileName(), stamps.get(0)[0], ptx + ": first stamp names its .cu");
            for (String[] stamp : stamps) {
                Path source = ROOT.resolve(stamp[0]);
                assertTrue(Files.exists(source), ptx + " was built from " + source + ", which no longer exists");
                assertEquals(stamp[1], sha256(source), ptx + " is stale: " + source
                        + " changed since the PTX was built; run native/build-ptx.sh");
            }
        }
    }

    private static List<String[]> stamps(Path ptx) throws IOException {
        List<String[]> stamps = new ArrayList<>();
        for (String line : Files.readAllLines(ptx)) {
            Matcher m = STAMP.matcher(line);
            if (!m.matches()) {
                break;
            }
            stamps.add(new String[] {m.group(1), m.group(2)});
        }
        return stamps;
    }

    private static String sha256(Path file) throws IOException, NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
