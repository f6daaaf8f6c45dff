package dev.ema4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.ema4j.backend.DType;
import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.Params;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The work items of the CPU backend, for tensors up to its largest (no 8 GB array needed: the layout suffices). */
class CpuParamTableTest {

    private static ParamLayout layout(long... lengths) {
        List<Long> ls = java.util.Arrays.stream(lengths).boxed().toList();
        return new ParamLayout(ls.stream().map(String::valueOf).toList(),
                ls.stream().map(n -> List.of(Params.Slice.of("s" + n, 0, n))).toList(),
                ls.stream().map(n -> DType.F32).toList(), ls, ls.stream().map(n -> 0L).toList(), lengths[0]);
    }

    @Test
    void aTensorNearTheLargestLengthEndsExactly() {
        long max = CpuBackend.MAX_LENGTH;  // 2^31 - 9: the chunk position passes 2^31 in int arithmetic
        List<CpuParamTable.Item> items = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> CpuParamTable.items(layout(max)));
        assertEquals((max + CpuParamTable.GRAIN - 1) / CpuParamTable.GRAIN, items.size());
        CpuParamTable.Item last = items.get(items.size() - 1);
        assertEquals(max, last.to());
        assertEquals(max - max % CpuParamTable.GRAIN, last.from());
        long covered = items.stream().mapToLong(i -> i.to() - i.from()).sum();
        assertEquals(max, covered);
    }

    @Test
    void itemsCoverEveryTensorInGrainSizedPieces() {
        List<CpuParamTable.Item> items = CpuParamTable.items(layout(0, 1, CpuParamTable.GRAIN, CpuParamTable.GRAIN + 1));
        assertEquals(List.of(new CpuParamTable.Item(1, 0, 1), new CpuParamTable.Item(2, 0, CpuParamTable.GRAIN),
                new CpuParamTable.Item(3, 0, CpuParamTable.GRAIN),
                new CpuParamTable.Item(3, CpuParamTable.GRAIN, CpuParamTable.GRAIN + 1)), items);
    }
}
