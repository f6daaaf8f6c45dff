package dev.ema4j.data;

import static dev.ema4j.data.TestData.cyclicLabels;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.BitSet;
import org.junit.jupiter.api.Test;

/** {@link DatasetView}: splits, subsets, samples and label noise, on synthetic datasets of 60,000 labels. */
class DatasetViewTest {

    private static final ImageDataset DATA = cyclicLabels(60_000, 10);

    private static void assertSortedDistinct(int[] a) {
        for (int i = 1; i < a.length; i++) {
            assertTrue(a[i - 1] < a[i], "not increasing at " + i);
        }
    }

    @Test
    void splitIsDisjointCompleteAndSized() {
        DatasetView.Split s = DATA.view().split(0.8, 1);
        assertEquals(48_000, s.train().size());
        assertEquals(12_000, s.validation().size());
        assertSortedDistinct(s.train().indices());
        assertSortedDistinct(s.validation().indices());
        BitSet seen = new BitSet();
        for (int d : s.train().indices()) {
            seen.set(d);
        }
        for (int d : s.validation().indices()) {
            assertFalse(seen.get(d), "index " + d + " in both parts");
            seen.set(d);
        }
        assertEquals(60_000, seen.cardinality());
        for (int p = 0; p < s.validation().size(); p++) {
            assertEquals(DATA.label(s.validation().index(p)), s.validation().label(p));
        }
    }

    @Test
    void splitIsDeterministicPerSeed() {
        DatasetView view = DATA.view();
        assertArrayEquals(view.split(0.8, 7).validation().indices(), view.split(0.8, 7).validation().indices());
        assertFalse(Arrays.equals(view.split(0.8, 7).validation().indices(),
                view.split(0.8, 8).validation().indices()));
    }

    @Test
    void splitRoundsAndRejectsBadFractions() {
        DatasetView small = cyclicLabels(7, 2).view();
        assertEquals(5, small.split(0.75, 0).train().size()); // round(5.25)
        for (double f : new double[] {0, 1, -0.1, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> small.split(f, 0));
            assertEquals("fraction is " + f + "; must be in (0, 1)", e.getMessage());
        }
    }

    @Test
    void subsetKeepsLabelsAndClassCount() {
        DatasetView s = DATA.view().subset(3, 1);
        assertEquals(12_000, s.size());
        assertEquals(10, s.classes());
        for (int p = 0; p < s.size(); p++) {
            assertEquals(DATA.label(s.index(p)), s.label(p));
            assertTrue(s.label(p) == 1 || s.label(p) == 3);
        }
        assertSortedDistinct(s.indices());
    }

    @Test
    void subsetRelabeledMapsClassesInTheGivenOrder() {
        DatasetView upper = DATA.view().subsetRelabeled(5, 6, 7, 8, 9);
        assertEquals(30_000, upper.size());
        assertEquals(5, upper.classes());
        for (int p = 0; p < upper.size(); p++) {
            assertEquals(DATA.label(upper.index(p)) - 5, upper.label(p));
            assertEquals(upper.label(p), upper.cleanLabel(p));
        }
        DatasetView swapped = DATA.view().subsetRelabeled(9, 2);
        for (int p = 0; p < swapped.size(); p++) {
            assertEquals(DATA.label(swapped.index(p)) == 9 ? 0 : 1, swapped.label(p));
        }
    }

    @Test
    void subsetRejectsBadClasses() {
        DatasetView v = DATA.view();
        assertEquals("keep[1] is 10; must be in [0, 10)",
                assertThrows(IllegalArgumentException.class, () -> v.subset(0, 10)).getMessage());
        assertEquals("keep[2] is 4, already keep[0]",
                assertThrows(IllegalArgumentException.class, () -> v.subsetRelabeled(4, 5, 4)).getMessage());
        assertThrows(IllegalArgumentException.class, v::subset);
        DatasetView noisy = v.symmetricNoise(0.5, 1);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> noisy.subset(1));
        assertTrue(e.getMessage().contains("select classes before adding label noise"), e.getMessage());
    }

    @Test
    void firstAndSample() {
        DatasetView v = DATA.view().subset(2);
        assertArrayEquals(new int[] {2, 12, 22}, v.first(3).indices());
        DatasetView a = v.sample(100, 5);
        assertEquals(100, a.size());
        assertSortedDistinct(a.indices());
        for (int p = 0; p < a.size(); p++) {
            assertEquals(2, a.label(p));
        }
        assertArrayEquals(a.indices(), v.sample(100, 5).indices());
        assertFalse(Arrays.equals(a.indices(), v.sample(100, 6).indices()));
        assertEquals(v.size(), v.sample(v.size(), 1).size());
        assertEquals("n is 6001; must be in [0, 6000]",
                assertThrows(IllegalArgumentException.class, () -> v.first(6001)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> v.sample(-1, 0));
    }

    @Test
    void symmetricNoiseHasTheRequestedRateAndNeverKeepsTheLabel() {
        DatasetView clean = DATA.view();
        DatasetView noisy = clean.symmetricNoise(0.4, 3);
        BitSet mask = noisy.noisyMask();
        int[][] confusion = new int[10][10];
        for (int p = 0; p < noisy.size(); p++) {
            assertEquals(clean.label(p), noisy.cleanLabel(p));
            assertEquals(noisy.label(p) != noisy.cleanLabel(p), mask.get(p));
            assertEquals(mask.get(p), noisy.isNoisy(p));
            confusion[noisy.cleanLabel(p)][noisy.label(p)]++;
        }
        assertEquals(0.4, mask.cardinality() / 60_000.0, 0.01);
        assertEquals(mask.cardinality(), noisy.noisyCount());
        for (int c = 0; c < 10; c++) {
            int flipped = 6000 - confusion[c][c];
            for (int o = 0; o < 10; o++) {
                if (o != c) {
                    assertEquals(flipped / 9.0, confusion[c][o], 60, "clean " + c + " -> noisy " + o);
                }
            }
        }
        assertArrayEquals(noisy.labels(), clean.symmetricNoise(0.4, 3).labels());
        assertFalse(Arrays.equals(noisy.labels(), clean.symmetricNoise(0.4, 4).labels()));
    }

    @Test
    void pairFlipNoiseMapsEachClassToTheNext() {
        DatasetView noisy = DATA.view().pairFlipNoise(0.3, 9);
        int[] flipsFrom = new int[10];
        for (int p = 0; p < noisy.size(); p++) {
            int c = noisy.cleanLabel(p);
            if (noisy.isNoisy(p)) {
                assertEquals((c + 1) % 10, noisy.label(p));
                flipsFrom[c]++;
            } else {
                assertEquals(c, noisy.label(p));
            }
        }
        assertEquals(0.3, noisy.noisyCount() / 60_000.0, 0.01);
        assertTrue(flipsFrom[9] > 1500, "class 9 wraps around to 0: " + flipsFrom[9] + " flips");
        assertArrayEquals(noisy.labels(), DATA.view().pairFlipNoise(0.3, 9).labels());
        assertFalse(Arrays.equals(noisy.labels(), DATA.view().pairFlipNoise(0.3, 10).labels()));
    }

    @Test
    void noiseDependsOnDatasetIndexSoSplittingCommutes() {
        DatasetView.Split noisyFirst = DATA.view().symmetricNoise(0.2, 11).split(0.8, 2);
        DatasetView splitFirst = DATA.view().split(0.8, 2).validation().symmetricNoise(0.2, 11);
        assertArrayEquals(noisyFirst.validation().indices(), splitFirst.indices());
        assertArrayEquals(noisyFirst.validation().labels(), splitFirst.labels());
        assertArrayEquals(noisyFirst.validation().cleanLabels(), splitFirst.cleanLabels());
        assertTrue(splitFirst.hasNoise());
    }

    @Test
    void extremeRatesAndInvalidNoise() {
        DatasetView v = DATA.view().first(1000);
        assertEquals(0, v.symmetricNoise(0, 1).noisyCount());
        assertFalse(v.pairFlipNoise(0, 1).hasNoise());
        assertEquals(1000, v.symmetricNoise(1, 1).noisyCount());
        assertEquals(1000, v.pairFlipNoise(1, 1).noisyCount());
        assertEquals("rate is 1.5; must be in [0, 1]",
                assertThrows(IllegalArgumentException.class, () -> v.pairFlipNoise(1.5, 0)).getMessage());
        DatasetView noisy = v.pairFlipNoise(0.5, 1);
        assertThrows(IllegalStateException.class, () -> noisy.symmetricNoise(0.1, 2));
        DatasetView oneClass = v.subsetRelabeled(3);
        assertEquals("label noise needs >= 2 classes; this view has 1",
                assertThrows(IllegalStateException.class, () -> oneClass.symmetricNoise(0.1, 0)).getMessage());
    }

    @Test
    void viewsShareTheDatasetAndReportThemselves() {
        DatasetView v = DATA.view().pairFlipNoise(1, 0).first(4);
        assertEquals(DATA, v.dataset());
        assertNotEquals(v.labels()[0], v.cleanLabels()[0]);
        assertEquals("DatasetView[4 of 60000 images, 10 classes, 4 noisy labels]", v.toString());
    }
}
