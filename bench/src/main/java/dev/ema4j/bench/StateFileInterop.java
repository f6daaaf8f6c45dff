package dev.ema4j.bench;

import dev.ema4j.Backends;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.backend.Backend;
import dev.ema4j.backend.Params;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Writes a small EMA state file for bench/device/check_state_file.py, which reads it with Python's safetensors:
 * tensors w (1000 fp32, w[i] = i) and b (7 fp32, b[i] = −i), two shadows with decays 0.5 and 0.9, one update
 * toward the doubled parameters, so shadow k holds {@code (1 + w_k)·x} with {@code w_k = 1 − decay_k}.
 *
 * <pre>{@code java -cp ... dev.ema4j.bench.StateFileInterop out.safetensors}</pre>
 */
public final class StateFileInterop {

    private StateFileInterop() {
    }

    public static void main(String[] args) throws IOException {
        float[] w = new float[1000];
        float[] b = new float[7];
        for (int i = 0; i < w.length; i++) {
            w[i] = i;
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = -i;
        }
        Params params = Params.builder().add("w", w).add("b", b).build();
        try (Backend backend = Backends.best();
             GpuEma ema = GpuEma.create(backend, params, EmaConfig.constant(0.5, 0.9))) {
            for (int i = 0; i < w.length; i++) {
                w[i] *= 2;
            }
            for (int i = 0; i < b.length; i++) {
                b[i] *= 2;
            }
            ema.update(params);
            ema.save(Path.of(args[0]));
            System.out.println("wrote " + args[0] + " on " + backend.name());
        }
    }
}
