package dev.ema4j.backend.cuda;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.BackendAvailability;
import dev.ema4j.backend.BackendProvider;

/** Registers the CUDA backend with {@code dev.ema4j.Backends} (through {@link java.util.ServiceLoader}). */
public final class CudaBackendProvider implements BackendProvider {

    /** Instantiated by the service loader. */
    public CudaBackendProvider() {
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public BackendAvailability availability() {
        CudaAvailability a = CudaProbe.availability();
        return new BackendAvailability(a.available(), a.reason());
    }

    @Override
    public Backend open() {
        return CudaBackend.open(0);
    }
}
