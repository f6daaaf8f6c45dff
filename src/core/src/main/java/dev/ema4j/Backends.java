package dev.ema4j;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.BackendAvailability;
import dev.ema4j.backend.BackendProvider;
import dev.ema4j.backend.cpu.CpuBackend;
import java.util.Locale;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * Chooses a backend. {@link #best()} opens CUDA device 0 when the {@code ema4j-cuda} module is on the class path,
 * JCuda loads, {@code cuInit} works, a device exists and the driver can run ema4j's PTX, and the CPU backend
 * otherwise; the CUDA probe runs once per JVM and {@link #explain()} says what was chosen and why. The system
 * property {@code ema4j.backend} or, when it is unset, the environment variable {@code EMA4J_BACKEND} overrides the
 * choice: {@code cpu}, {@code cuda} (fails when CUDA is unavailable) or {@code auto}.
 */
public final class Backends {

    /** The system property that overrides the choice. */
    public static final String PROPERTY = "ema4j.backend";
    /** The environment variable that overrides the choice when the property is unset. */
    public static final String ENV = "EMA4J_BACKEND";

    private static final BackendAvailability NO_CUDA_MODULE = new BackendAvailability(false,
            "the ema4j-cuda module is not on the class path (add the dependency dev.ema4j:ema4j-cuda)");

    private Backends() {
    }

    /**
     * A new backend of the requested or best kind; the caller closes it.
     *
     * @throws IllegalStateException if CUDA is requested and unavailable
     * @throws IllegalArgumentException if the override names no backend
     */
    public static Backend best() {
        return switch (requested()) {
            case "cpu" -> cpu();
            case "cuda" -> cuda();
            default -> cudaAvailability().available() ? cuda() : cpu();
        };
    }

    /** A new CPU backend with one thread per processor (or {@code -Dema4j.cpu.threads=N}). */
    public static Backend cpu() {
        return new CpuBackend();
    }

    /**
     * A new CUDA backend on device 0.
     *
     * @throws IllegalStateException with the reason if CUDA is unavailable
     */
    public static Backend cuda() {
        return CudaModule.PROVIDER.map(BackendProvider::open)
                .orElseThrow(() -> new IllegalStateException("CUDA backend unavailable: " + NO_CUDA_MODULE.reason()));
    }

    /** Whether CUDA can be used here, and why not (probed once per JVM). */
    public static BackendAvailability cudaAvailability() {
        return CudaModule.AVAILABILITY;
    }

    /** One line saying which backend {@link #best()} opens and why. */
    public static String explain() {
        String requested = requested();
        BackendAvailability cuda = cudaAvailability();
        return switch (requested) {
            case "cpu" -> "cpu, requested by " + source();
            case "cuda" -> cuda.available() ? "cuda, requested by " + source() + ": " + cuda.reason()
                    : "cuda requested by " + source() + " but unavailable: " + cuda.reason();
            default -> cuda.available() ? "cuda: " + cuda.reason() : "cpu, because CUDA is unavailable: " + cuda.reason();
        };
    }

    private static String requested() {
        String value = System.getProperty(PROPERTY);
        if (value == null) {
            value = System.getenv(ENV);
        }
        if (value == null || value.isBlank()) {
            return "auto";
        }
        String v = value.trim().toLowerCase(Locale.ROOT);
        if (!v.equals("cpu") && !v.equals("cuda") && !v.equals("auto")) {
            throw new IllegalArgumentException(source() + " is \"" + value + "\"; must be cpu, cuda or auto");
        }
        return v;
    }

    private static String source() {
        return System.getProperty(PROPERTY) != null ? "-D" + PROPERTY : ENV;
    }

    /** The CUDA backend's provider and its availability, looked up and probed once. */
    private static final class CudaModule {
        static final Optional<BackendProvider> PROVIDER = ServiceLoader.load(BackendProvider.class,
                        Backends.class.getClassLoader()).stream()
                .map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("cuda"))
                .findFirst();
        static final BackendAvailability AVAILABILITY =
                PROVIDER.map(BackendProvider::availability).orElse(NO_CUDA_MODULE);
    }
}
