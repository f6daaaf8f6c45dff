package dev.ema4j.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * What {@link CudaNnOps} computes on the host for its kernels, checked without a GPU: the chunks of the BatchNorm
 * reductions (NOTE: [bn-split] in cuda/batchnorm.cu).
 */
class CudaNnOpsPlanTest {

    @Test
    void batchNormChunksCoverEachChannelWithAtMost256Blocks() {
        int[] sizes = {0, 1, 2, 255, 2048, 2049, 8448, 4100, 524_288, 524_289, 526_635, 1 << 24, Integer.MAX_VALUE - 1,
            Integer.MAX_VALUE};
        for (int m : sizes) {
            int chunk = CudaNnOps.bnChunk(m);
            int splits = CudaNnOps.bnSplits(m);
            String what = "M " + m + ": " + splits + " chunks of " + chunk;
            assertTrue(chunk >= CudaNnOps.BN_MIN_CHUNK && chunk % 256 == 0, what);
            assertTrue(splits >= 1 && splits <= CudaNnOps.BN_MAX_SPLITS, what);
            assertTrue((long) splits * chunk >= m, what + " cover the channel");
            assertTrue(m == 0 || (long) (splits - 1) * chunk < m, what + ": none is empty");
        }
        assertEquals(2048, CudaNnOps.bnChunk(8448));
        assertEquals(5, CudaNnOps.bnSplits(8448));
        assertEquals(2304, CudaNnOps.bnChunk(526_635));
        assertEquals(229, CudaNnOps.bnSplits(526_635));
    }
}
