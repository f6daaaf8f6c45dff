package dev.ema4j.ops.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.ops.ConvGeometry;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * What {@link CudaNnOps} computes on the host for its kernels, checked without a GPU: the magic numbers of the
 * convolutions' divisions (NOTE: [fast-division] in cuda/conv.cu) and the chunks of the BatchNorm reductions (NOTE:
 * [bn-split] in cuda/batchnorm.cu).
 */
class CudaNnOpsPlanTest {

    /** The kernels' {@code Divisor::divide}: {@code (mulhi(n, mul) + n) >>> shift} in unsigned 32-bit arithmetic. */
    private static int divide(int n, int[] divisor) {
        long high = (Integer.toUnsignedLong(n) * Integer.toUnsignedLong(divisor[0])) >>> 32;
        return (int) ((high + n) >>> divisor[1]);
    }

    @Test
    void fastDivisionEqualsIntegerDivisionForDividendsBelow2To31() {
        Random random = new Random(7);
        IntStream divisors = IntStream.concat(IntStream.rangeClosed(1, 20_000),
                IntStream.of(3 * 3, 7 * 7, 56 * 56, 112 * 112, 224 * 224, 65_535, 65_536, 65_537, (1 << 30) - 1,
                        1 << 30, (1 << 30) + 1, Integer.MAX_VALUE - 1, Integer.MAX_VALUE));
        divisors.forEach(d -> {
            int[] divisor = CudaNnOps.divisor(d);
            assertTrue(divisor[1] >= 0 && divisor[1] <= 31, "shift of " + d);
            int[] dividends = {0, 1, d - 1, d, d + 1, 2 * d - 1, Integer.MAX_VALUE, Integer.MAX_VALUE - 1,
                Integer.MAX_VALUE / d * d, Integer.MAX_VALUE / d * d - 1};
            for (int n : dividends) {
                if (n >= 0) {
                    assertEquals(n / d, divide(n, divisor), n + " / " + d);
                }
            }
            for (int i = 0; i < 50; i++) {
                int n = random.nextInt(Integer.MAX_VALUE);
                assertEquals(n / d, divide(n, divisor), n + " / " + d);
            }
        });
        for (int d : new int[] {1, 2, 3, 9, 49, 3136}) {  // every 101st dividend up to 2^31 - 1
            int[] divisor = CudaNnOps.divisor(d);
            for (int n = 0; n >= 0; n += 101) {
                if (n / d != divide(n, divisor)) {
                    assertEquals(n / d, divide(n, divisor), n + " / " + d);
                }
            }
        }
    }

    @Test
    void theConvolutionShapeCarriesEachDivisorWithItsMagicNumber() {
        ConvGeometry g = new ConvGeometry(2, 3, 10, 9, 8, 3, 3, 4, 4, 2, 0);
        ByteBuffer b = ByteBuffer.wrap(CudaNnOps.shape(g)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(128, b.capacity());
        for (int v : new int[] {2, 3, 10, 9, 8, 3, 3, 4, 4, 2, 0}) {
            assertEquals(v, b.getInt());
        }
        for (int d : new int[] {3, 9, 4, 16, 9, 90, 2}) {  // S, R·S, Q, P·Q, W, H·W, stride
            int[] divisor = CudaNnOps.divisor(d);
            assertEquals(d, b.getInt());
            assertEquals(divisor[0], b.getInt());
            assertEquals(divisor[1], b.getInt());
        }
    }

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
