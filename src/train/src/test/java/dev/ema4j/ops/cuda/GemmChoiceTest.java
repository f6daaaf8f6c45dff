package dev.ema4j.ops.cuda;

import static dev.ema4j.ExceptionAssertions.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.ops.cuda.GemmChoice.Candidate;
import dev.ema4j.ops.cuda.GemmChoice.Selected;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * NOTE: [gemm-choice] without a GPU: the bindings are stand-ins that open, fail to load, fail or disagree on
 * demand, and record which were opened and closed.
 */
class GemmChoiceTest {

    private static final String LINK_13 = "UnsatisfiedLinkError: libjnicublas.so: libcublas.so.13: cannot open shared"
            + " object file: No such file or directory";
    private static final String LINK_12 = "UnsatisfiedLinkError: Error while loading native library"
            + " \"JCublas2-12.6.0-linux-x86_64\"";

    private final List<String> events = new ArrayList<>();

    /** A binding that records its life; {@code sgemm} is never called here. */
    private class Fake implements CublasGemm {
        final String description;

        Fake(String description) {
            this.description = description;
            events.add("open " + description);
        }

        @Override
        public String describe() {
            return description;
        }

        @Override
        public void sgemm(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb,
                          long c, int ldc) {
            throw new AssertionError("not called");
        }

        @Override
        public void close() {
            events.add("close " + description);
        }
    }

    private Supplier<CublasGemm> opens(String description) {
        return () -> new Fake(description);
    }

    private Supplier<CublasGemm> failsToLoad(String name, String reason) {
        return () -> {
            events.add("load " + name);
            throw new IllegalStateException(reason);
        };
    }

    private List<Candidate> candidates(Supplier<CublasGemm> cublas13, Supplier<CublasGemm> cublas12) {
        return List.of(new Candidate(GemmChoice.CUBLAS13, "cuBLAS 13", cublas13),
                new Candidate(GemmChoice.CUBLAS12, "cuBLAS 12", cublas12));
    }

    private Function<CublasGemm, String> agrees() {
        return g -> {
            events.add("check " + g.describe());
            return null;
        };
    }

    @Test
    void cublas13IsPreferredAndCublas12NotTried() {
        Selected s = GemmChoice.AUTO.select(candidates(opens("cuBLAS 13.1.0 (JavaCPP)"),
                opens("cuBLAS 12.6.4 (JCublas)")), agrees());
        assertEquals("cuBLAS 13.1.0 (JavaCPP); cuBLAS 12 not tried", s.report());
        assertEquals("cuBLAS 13.1.0 (JavaCPP)", s.gemm().describe());
        assertEquals(List.of("open cuBLAS 13.1.0 (JavaCPP)", "check cuBLAS 13.1.0 (JavaCPP)"), events);
    }

    @Test
    void cublas12WhenCublas13DoesNotLoad() {
        Selected s = GemmChoice.AUTO.select(candidates(failsToLoad("13", LINK_13), opens("cuBLAS 12.6.4 (JCublas)")),
                agrees());
        assertEquals("cuBLAS 12.6.4 (JCublas); cuBLAS 13: " + LINK_13, s.report());
        assertEquals("cuBLAS 12.6.4 (JCublas)", s.gemm().describe());
    }

    @Test
    void tiledWithBothReasonsWhenNeitherLoads() {
        Selected s = GemmChoice.AUTO.select(candidates(failsToLoad("13", LINK_13), failsToLoad("12", LINK_12)),
                agrees());
        assertNull(s.gemm());
        assertEquals("tiled SGEMM (ema4j kernels); cuBLAS 13: " + LINK_13 + "; cuBLAS 12: " + LINK_12, s.report());
        assertEquals(List.of("load 13", "load 12"), events);
    }

    @Test
    void aBindingThatDisagreesIsClosedAndTheNextTried() {
        Selected s = GemmChoice.AUTO.select(candidates(opens("cuBLAS 13.0.2 (JavaCPP)"),
                opens("cuBLAS 12.6.4 (JCublas)")), g -> g.describe().startsWith("cuBLAS 13")
                ? "forward: element 3: cuBLAS 1.5, tiled 2.5" : null);
        assertEquals("cuBLAS 12.6.4 (JCublas); cuBLAS 13: cuBLAS 13.0.2 (JavaCPP) disagreed with the tiled kernels at"
                + " start-up: forward: element 3: cuBLAS 1.5, tiled 2.5", s.report());
        assertEquals(List.of("open cuBLAS 13.0.2 (JavaCPP)", "close cuBLAS 13.0.2 (JavaCPP)",
                "open cuBLAS 12.6.4 (JCublas)"), events);
    }

    @Test
    void aBindingWhoseCheckThrowsIsClosedWithTheReason() {
        Selected s = GemmChoice.AUTO.select(candidates(opens("cuBLAS 13.0.2 (JavaCPP)"), failsToLoad("12", LINK_12)),
                g -> {
                    throw new IllegalStateException("cublasSgemm: CUBLAS_STATUS_ARCH_MISMATCH");
                });
        assertNull(s.gemm());
        assertEquals("tiled SGEMM (ema4j kernels); cuBLAS 13: cuBLAS 13.0.2 (JavaCPP) failed its start-up check:"
                + " cublasSgemm: CUBLAS_STATUS_ARCH_MISMATCH; cuBLAS 12: " + LINK_12, s.report());
        assertTrue(events.contains("close cuBLAS 13.0.2 (JavaCPP)"), events.toString());
    }

    @Test
    void aBindingThatFailsToCloseDoesNotStopTheChoice() {
        Supplier<CublasGemm> brokenClose = () -> new Fake("cuBLAS 13.0.2 (JavaCPP)") {
            @Override
            public void close() {
                throw new IllegalStateException("cublasDestroy: CUBLAS_STATUS_INTERNAL_ERROR");
            }
        };
        Selected s = GemmChoice.AUTO.select(candidates(brokenClose, opens("cuBLAS 12.6.4 (JCublas)")),
                g -> g.describe().startsWith("cuBLAS 13") ? "forward: element 0: cuBLAS NaN, tiled 1.0" : null);
        assertEquals("cuBLAS 12.6.4 (JCublas); cuBLAS 13: cuBLAS 13.0.2 (JavaCPP) disagreed with the tiled kernels at"
                + " start-up: forward: element 0: cuBLAS NaN, tiled 1.0, and closing it failed: cublasDestroy:"
                + " CUBLAS_STATUS_INTERNAL_ERROR", s.report());
    }

    @Test
    void linkageErrorsAreReasonsNotCrashes() {
        Supplier<CublasGemm> noClass = () -> {
            throw new NoClassDefFoundError("org/bytedeco/cuda/global/cublas");
        };
        Selected s = GemmChoice.AUTO.select(candidates(noClass, opens("cuBLAS 12.6.4 (JCublas)")), agrees());
        assertEquals("cuBLAS 12.6.4 (JCublas); cuBLAS 13: java.lang.NoClassDefFoundError:"
                + " org/bytedeco/cuda/global/cublas", s.report());
    }

    @Test
    void forcedTiledTriesNothing() {
        Selected s = GemmChoice.TILED.select(candidates(opens("13"), opens("12")), agrees());
        assertNull(s.gemm());
        assertEquals("tiled SGEMM (ema4j kernels), forced by -Dema4j.cuda.gemm=tiled; cuBLAS 13 not tried;"
                + " cuBLAS 12 not tried", s.report());
        assertEquals(List.of(), events);
    }

    @Test
    void forcedCublas12SkipsCublas13() {
        Selected s = GemmChoice.CUBLAS12.select(candidates(opens("cuBLAS 13.1.0 (JavaCPP)"),
                opens("cuBLAS 12.6.4 (JCublas)")), agrees());
        assertEquals("cuBLAS 12.6.4 (JCublas), forced by -Dema4j.cuda.gemm=cublas12; cuBLAS 13 not tried",
                s.report());
        assertEquals(List.of("open cuBLAS 12.6.4 (JCublas)", "check cuBLAS 12.6.4 (JCublas)"), events);
    }

    @Test
    void forcedCublas13() {
        Selected s = GemmChoice.CUBLAS13.select(candidates(opens("cuBLAS 13.1.0 (JavaCPP)"),
                opens("cuBLAS 12.6.4 (JCublas)")), agrees());
        assertEquals("cuBLAS 13.1.0 (JavaCPP), forced by -Dema4j.cuda.gemm=cublas13; cuBLAS 12 not tried",
                s.report());
    }

    @Test
    void aForcedBindingThatCannotBeUsedFailsInsteadOfFallingBack() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> GemmChoice.CUBLAS13.select(
                candidates(failsToLoad("13", LINK_13), opens("cuBLAS 12.6.4 (JCublas)")), agrees()));
        assertEquals("-Dema4j.cuda.gemm=cublas13 but cuBLAS 13 cannot be used: " + LINK_13, e.getMessage());
        assertEquals(List.of("load 13"), events);
        events.clear();
        assertMessage(IllegalStateException.class, () -> GemmChoice.CUBLAS12.select(candidates(opens("13"),
                opens("cuBLAS 12.6.4 (JCublas)")), g -> "backward data: element 0: cuBLAS NaN, tiled 1.0"),
                "-Dema4j.cuda.gemm=cublas12 but cuBLAS 12 cannot be used: cuBLAS 12.6.4 (JCublas) disagreed with the"
                        + " tiled kernels at start-up: backward data: element 0");
        assertEquals(List.of("open cuBLAS 12.6.4 (JCublas)", "close cuBLAS 12.6.4 (JCublas)"), events);
    }

    @Test
    void parsesTheProperty() {
        assertSame(GemmChoice.AUTO, GemmChoice.parse(null));
        assertSame(GemmChoice.AUTO, GemmChoice.parse(""));
        assertSame(GemmChoice.AUTO, GemmChoice.parse("auto"));
        assertSame(GemmChoice.TILED, GemmChoice.parse("tiled"));
        assertSame(GemmChoice.CUBLAS12, GemmChoice.parse("cublas12"));
        assertSame(GemmChoice.CUBLAS13, GemmChoice.parse(" cuBLAS13 "));
        assertMessage(IllegalArgumentException.class, () -> GemmChoice.parse("cublas"),
                "-Dema4j.cuda.gemm=cublas: expected auto, cublas13, cublas12 or tiled");
    }

    @Test
    void versionsReadAsMajorMinorPatch() {
        assertEquals("13.1.0", CublasGemm.version(130100));
        assertEquals("12.6.4", CublasGemm.version(120604));
    }
}
