package dev.ema4j.dl4j;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;

/**
 * Runs {@link Dl4jEmaExample} on Fashion-MNIST ({@value Dl4jEmaExample#STEPS} steps, about 15 s on two cores;
 * {@code -Dema4j.dl4j.steps=N} changes it) and checks what it measured. Skipped without the data (Debian package
 * {@code dataset-fashion-mnist}).
 */
class Dl4jEmaExampleTest {

    @Test
    void emaOfADl4jNetworkTrainedOnFashionMnist() throws Exception {
        assumeTrue(FashionMnistIdx.available(FashionMnistIdx.DEBIAN_DIR),
                "Fashion-MNIST not in " + FashionMnistIdx.DEBIAN_DIR + " (apt-get install dataset-fashion-mnist)");
        int steps = Integer.getInteger("ema4j.dl4j.steps", Dl4jEmaExample.STEPS);
        long start = System.nanoTime();
        Dl4jEmaExample.Result r = Dl4jEmaExample.run(FashionMnistIdx.DEBIAN_DIR, steps, 42);
        System.out.print(r.table());
        System.out.printf("whole run %.1f s%n", (System.nanoTime() - start) / 1e9);

        assertTrue(r.restoredBitForBit(), "closing the swap scopes restored the live weights bit for bit");
        assertTrue(r.maxParameterDifference() > 1e-3, "the EMA differs from the live weights");
        assertTrue(r.live() > 0.80, "the network learned: " + r.live());
        for (double ema : new double[] {r.emaAveragedStats(), r.emaRecomputedStats(), r.emaLiveStats()}) {
            assertTrue(ema > 0.84, "EMA test accuracy " + ema);
            assertTrue(ema > r.live() - 0.01, "EMA " + ema + " not worse than live " + r.live());
        }
    }
}
