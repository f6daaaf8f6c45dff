package dev.ema4j.bench;

import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.NonFinitePolicy;
import dev.ema4j.backend.Params;
import dev.ema4j.backend.cpu.CpuBackend;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Replays an EMA whose parameters another program streams in, through {@link GpuEma} on the CPU backend, for
 * bench/golden/lerp_accuracy.py {@code --ema4j}: reads from stdin {@code n} little-endian fp32 values (the initial
 * shadow), then {@code steps} times {@code n} values (the parameters of one update), updates with {@code decay}
 * after each, and writes the final shadow to stdout ({@code n} little-endian fp32).
 *
 * <pre>{@code java -cp ... dev.ema4j.bench.LerpReplay n steps decay}</pre>
 */
public final class LerpReplay {

    private LerpReplay() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: LerpReplay n steps decay  (fp32 little-endian on stdin and stdout)");
            System.exit(2);
        }
        int n = Integer.parseInt(args[0]);
        int steps = Integer.parseInt(args[1]);
        double decay = Double.parseDouble(args[2]);
        DataInputStream in = new DataInputStream(new BufferedInputStream(System.in, 1 << 20));
        byte[] bytes = new byte[4 * n];
        float[] p = new float[n];
        read(in, bytes, p);
        EmaConfig config = EmaConfig.constant(decay).withNonFinite(NonFinitePolicy.IGNORE);
        try (CpuBackend backend = new CpuBackend();
             GpuEma ema = GpuEma.create(backend, Params.of(p), config)) {
            for (int t = 0; t < steps; t++) {
                read(in, bytes, p);
                ema.update(Params.of(p), decay);
            }
            ema.copyTo(Params.of(p));
        }
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(p);
        try (OutputStream out = new BufferedOutputStream(System.out)) {
            out.write(bytes);
        }
    }

    private static void read(DataInputStream in, byte[] bytes, float[] into) throws IOException {
        in.readFully(bytes);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(into);
    }
}
