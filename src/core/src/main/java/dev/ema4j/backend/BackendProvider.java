package dev.ema4j.backend;

/**
 * A backend in another module, found with {@link java.util.ServiceLoader}: {@code ema4j-cuda} registers the CUDA
 * backend this way, so {@code Backends} can use it when it is on the class path without the core depending on it.
 */
public interface BackendProvider {

    /** The name that selects it in {@code -Dema4j.backend}, e.g. {@code cuda}. */
    String name();

    /** Whether it can run here, and why not; probed once per JVM. */
    BackendAvailability availability();

    /**
     * Opens its device 0.
     *
     * @throws IllegalStateException with the reason when it is unavailable
     */
    Backend open();
}
