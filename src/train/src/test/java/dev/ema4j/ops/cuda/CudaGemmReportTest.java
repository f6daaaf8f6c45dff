package dev.ema4j.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.RequiresCuda;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.nn.TrainingOps;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What {@link CudaNnOps#gemm()} reports on a real (or emulated) device: which GEMM runs, then each cuBLAS binding
 * not used with its reason or "not tried" (NOTE: [gemm-choice]); a forced {@code -Dema4j.cuda.gemm} is obeyed.
 */
@Tag("cuda")
@ExtendWith(RequiresCuda.class)
class CudaGemmReportTest {

    private static final Pattern REPORT = Pattern.compile("(?<used>cuBLAS 13\\.\\d+\\.\\d+ \\(JavaCPP\\)"
            + "|cuBLAS 12\\.\\d+\\.\\d+ \\(JCublas\\)|tiled SGEMM \\(ema4j kernels\\))(?<forced>, forced by"
            + " -Dema4j\\.cuda\\.gemm=\\w+)?(?<others>(; cuBLAS 1[23](: .+| not tried))*)");

    @Test
    void gemmSaysWhichRunsAndWhyTheOthersDoNot() {
        try (CudaBackend backend = CudaBackend.open(0)) {
            String gemm = TrainingOps.of(backend).gemm();
            System.out.println("CUDA training GEMM: " + gemm);
            Matcher m = REPORT.matcher(gemm);
            assertTrue(m.matches(), gemm);
            String used = m.group("used");
            for (String library : new String[] {"cuBLAS 13", "cuBLAS 12"}) {
                int named = (used.startsWith(library) ? 1 : 0) + m.group("others").split("; " + library, -1).length - 1;
                assertEquals(1, named, library + " named once: " + gemm);
            }
            String forced = System.getProperty(GemmChoice.PROPERTY, "auto");
            switch (GemmChoice.parse(forced)) {
                case AUTO -> assertTrue(m.group("forced") == null, gemm);
                case TILED -> assertTrue(used.startsWith("tiled"), gemm);
                case CUBLAS13 -> assertTrue(used.startsWith("cuBLAS 13"), gemm);
                case CUBLAS12 -> assertTrue(used.startsWith("cuBLAS 12"), gemm);
            }
            if (used.startsWith("tiled") && m.group("forced") == null) {
                assertTrue(gemm.contains("; cuBLAS 13: ") && gemm.contains("; cuBLAS 12: "),
                        "both reasons: " + gemm);
            }
        }
    }
}
