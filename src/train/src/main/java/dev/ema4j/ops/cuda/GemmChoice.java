package dev.ema4j.ops.cuda;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Which GEMM the linear layers of {@link CudaNnOps} use, and the sentence {@link CudaNnOps#gemm()} reports.
 *
 * <p>NOTE: [gemm-choice]. By default ({@code -Dema4j.cuda.gemm=auto}) the first cuBLAS binding that opens and agrees
 * with the tiled kernels on a self-check is used, in this order: cuBLAS 13 ({@code libcublas.so.13}, JavaCPP), then
 * cuBLAS 12 ({@code libcublas.so.12}, JCublas); else the tiled kernels. A binding that opens but fails or disagrees
 * is closed. {@code -Dema4j.cuda.gemm=cublas13}, {@code cublas12} or {@code tiled} forces one: nothing else is
 * tried, and a forced binding that does not open or disagrees throws {@link IllegalStateException} with the reason
 * rather than falling back, so a test or benchmark run asking for it cannot silently measure another GEMM.
 *
 * <p>The report names what runs first, then each binding not used with the reason: {@code cuBLAS 13.1.0 (JavaCPP);
 * cuBLAS 12 not tried}, {@code cuBLAS 12.6.4 (JCublas); cuBLAS 13: UnsatisfiedLinkError: ...}, {@code tiled SGEMM
 * (ema4j kernels); cuBLAS 13: ...; cuBLAS 12: ...}; a forced choice adds {@code , forced by -Dema4j.cuda.gemm=...}
 * to the first part.
 */
enum GemmChoice {
    /** The first binding that works, else the tiled kernels. */
    AUTO,
    /** cuBLAS 13 through JavaCPP's CUDA presets. */
    CUBLAS13,
    /** cuBLAS 12 through JCublas. */
    CUBLAS12,
    /** The tiled SGEMM kernels of {@code cuda/tiled_gemm.cuh}. */
    TILED;

    /** The system property that forces a choice. */
    static final String PROPERTY = "ema4j.cuda.gemm";

    /** What the tiled kernels are called in the report. */
    static final String TILED_NAME = "tiled SGEMM (ema4j kernels)";

    /**
     * The choice a value of {@value #PROPERTY} names; null or blank is {@link #AUTO}.
     *
     * @throws IllegalArgumentException for another value, listing the valid ones
     */
    static GemmChoice parse(String value) {
        if (value == null || value.isBlank()) {
            return AUTO;
        }
        for (GemmChoice c : values()) {
            if (c.property().equals(value.trim().toLowerCase(Locale.ROOT))) {
                return c;
            }
        }
        throw new IllegalArgumentException("-D" + PROPERTY + "=" + value + ": expected auto, cublas13, cublas12 or"
                + " tiled");
    }

    /** The value of {@value #PROPERTY} that names this choice. */
    String property() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** A cuBLAS binding to try: the choice that forces it, its name in reports ({@code cuBLAS 13}), how to open it. */
    record Candidate(GemmChoice choice, String name, Supplier<CublasGemm> open) {
    }

    /** The binding chosen (null for the tiled kernels) and the report. */
    record Selected(CublasGemm gemm, String report) {
    }

    /**
     * Applies NOTE: [gemm-choice] to {@code candidates}, in order of preference. {@code open} may throw any
     * {@link RuntimeException} or {@link LinkageError} (its message is the reason); {@code check} returns null when
     * the binding agrees with the tiled kernels, else what differed, and may throw. Only the candidates tried are
     * opened; every binding opened and not chosen is closed.
     *
     * @throws IllegalStateException when the forced binding cannot be used
     */
    Selected select(List<Candidate> candidates, Function<CublasGemm, String> check) {
        String forced = this == AUTO ? "" : ", forced by -D" + PROPERTY + "=" + property();
        StringBuilder others = new StringBuilder();
        CublasGemm chosen = null;
        for (Candidate c : candidates) {
            if (chosen != null || (this != AUTO && this != c.choice())) {
                others.append("; ").append(c.name()).append(" not tried");
                continue;
            }
            String failure = null;
            CublasGemm opened = null;
            try {
                opened = c.open().get();
                String mismatch = check.apply(opened);
                if (mismatch != null) {
                    failure = opened.describe() + " disagreed with the tiled kernels at start-up: " + mismatch;
                }
            } catch (RuntimeException | LinkageError e) {
                failure = opened == null ? reason(e) : opened.describe() + " failed its start-up check: " + reason(e);
            }
            if (failure == null) {
                chosen = opened;
                continue;
            }
            if (opened != null) {
                try {
                    opened.close();
                } catch (RuntimeException e) {
                    failure += ", and closing it failed: " + reason(e);
                }
            }
            if (this != AUTO) {
                throw new IllegalStateException("-D" + PROPERTY + "=" + property() + " but " + c.name()
                        + " cannot be used: " + failure);
            }
            others.append("; ").append(c.name()).append(": ").append(failure);
        }
        return new Selected(chosen, (chosen == null ? TILED_NAME : chosen.describe()) + forced + others);
    }

    private static String reason(Throwable e) {
        return e instanceof IllegalStateException && e.getMessage() != null ? e.getMessage() : String.valueOf(e);
    }
}
