package dev.ema4j.study;

import dev.ema4j.backend.Backend;
import dev.ema4j.nn.TrainingOps;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

/** What a result was measured with: ema4j's version, the backend, the BLAS (or GEMM), Java, the OS and the CPU. */
public final class Environment {

    private Environment() {
    }

    /** ema4j's version, from the build. */
    public static String version() {
        try (InputStream in = Environment.class.getResourceAsStream("/dev/ema4j/study/version.properties")) {
            Properties p = new Properties();
            if (in != null) {
                p.load(in);
            }
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** A description of the machine and software that {@code backend} runs on. */
    public static Map<String, String> describe(Backend backend) {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("ema4j", version());
        env.put("backend", backend.name());
        env.put("blas", TrainingOps.of(backend).gemm());
        env.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
        env.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch"));
        env.put("cpu", cpuModel() + ", " + Runtime.getRuntime().availableProcessors() + " processors");
        return env;
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch");
    }
}
