package dev.ema4j.data;

import static dev.ema4j.data.TestData.patternPixel;
import static dev.ema4j.data.TestData.patterned;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@link Batches}: coverage, seeded order, resume, normalization and augmentation on hand-made images. */
class BatchesTest {

    private static final int H = 5;
    private static final int W = 6;
    private static final PixelStats STATS = new PixelStats(0.25, 0.5);

    /** 1,000 images of a 1,250-image dataset, so positions and dataset indices differ. */
    private static final DatasetView VIEW = patterned(1250, H, W).view().split(0.8, 3).train();

    private static List<Batch> pass(Batches batches, int epoch) {
        List<Batch> out = new ArrayList<>();
        for (Batch b : batches.epoch(epoch)) {
            out.add(b.copy());
        }
        return out;
    }

    private static void assertSameBatch(Batch expected, Batch actual) {
        assertArrayEquals(expected.indices(), actual.indices());
        assertArrayEquals(expected.positions(), actual.positions());
        assertArrayEquals(expected.y(), actual.y());
        assertArrayEquals(expected.x(), actual.x());
        assertEquals(expected.epoch(), actual.epoch());
        assertEquals(expected.number(), actual.number());
    }

    /** The normalized value of a pixel, computed as the spec says. */
    private static float norm(int pixel) {
        return (float) ((pixel / 255.0 - STATS.mean()) / STATS.std());
    }

    @Test
    void everySampleOncePerEpochKeepingTheLastPartialBatch() {
        Batches batches = new Batches(VIEW, BatchConfig.training(64, 1));
        assertEquals(16, batches.batchCount());
        List<Batch> epoch = pass(batches, 0);
        assertEquals(16, epoch.size());
        Set<Integer> seen = new HashSet<>();
        for (Batch b : epoch) {
            assertEquals(b.number() == 15 ? 1000 - 15 * 64 : 64, b.size());
            for (int s = 0; s < b.size(); s++) {
                int p = b.positions()[s];
                assertTrue(seen.add(p), "position " + p + " twice");
                assertEquals(VIEW.index(p), b.indices()[s]);
                assertEquals(VIEW.label(p), b.y()[s]);
            }
        }
        assertEquals(1000, seen.size());
    }

    @Test
    void dropLastDropsOnlyThePartialBatch() {
        Batches batches = new Batches(VIEW, BatchConfig.training(64, 1).withDropLast(true));
        assertEquals(15, batches.batchCount());
        Set<Integer> seen = new HashSet<>();
        for (Batch b : batches.epoch(2)) {
            assertEquals(64, b.size());
            for (int p : b.positions()) {
                assertTrue(seen.add(p), "position " + p + " twice");
            }
        }
        assertEquals(960, seen.size());
        int[] order = batches.order(2);
        for (int k = 0; k < 960; k++) {
            assertTrue(seen.contains(order[k]));
        }
    }

    @Test
    void orderDependsOnlyOnSeedAndEpoch() {
        Batches a = new Batches(VIEW, BatchConfig.training(100, 42));
        Batches b = new Batches(VIEW, BatchConfig.training(32, 42));
        assertArrayEquals(a.order(3), b.order(3));
        a.order(0);
        assertArrayEquals(a.order(3), b.order(3));
        assertFalse(Arrays.equals(a.order(3), a.order(4)));
        assertFalse(Arrays.equals(a.order(3), new Batches(VIEW, BatchConfig.training(100, 43)).order(3)));
        int[] sorted = a.order(5);
        Arrays.sort(sorted);
        assertArrayEquals(range(1000), sorted);
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        Arrays.setAll(r, i -> i);
        return r;
    }

    @Test
    void evaluationKeepsViewOrder() {
        Batches batches = new Batches(VIEW, BatchConfig.evaluation(300));
        assertArrayEquals(range(1000), batches.order(7));
        assertEquals(4, batches.batchCount());
        assertArrayEquals(new int[] {900, 901}, Arrays.copyOf(batches.batch(7, 3).positions(), 2));
        assertEquals(100, batches.batch(0, 3).size());
    }

    @Test
    void resumingAtBatchKGivesTheBatchesOfAFullPass() {
        BatchConfig config = BatchConfig.training(96, 5).withAugmentation(new Augmentation(2, true));
        List<Batch> full = pass(new Batches(VIEW, config), 4);
        Batches resumed = new Batches(VIEW, config);
        pass(resumed, 9);
        int k = 0;
        for (Batch b : resumed.epoch(4, 7)) {
            assertSameBatch(full.get(7 + k), b);
            k++;
        }
        assertEquals(full.size() - 7, k);
        assertSameBatch(full.get(3), new Batches(VIEW, config).batch(4, 3));
        assertFalse(resumed.epoch(4, resumed.batchCount()).iterator().hasNext());
    }

    @Test
    void reusesArraysUntilCopied() {
        Batches batches = new Batches(VIEW, BatchConfig.training(64, 1));
        Batch first = batches.batch(0, 0);
        Batch kept = first.copy();
        Batch second = batches.batch(0, 1);
        assertSame(first, second);
        assertNotSame(kept.x(), second.x());
        assertFalse(Arrays.equals(kept.indices(), second.indices()));
        assertSameBatch(kept, new Batches(VIEW, BatchConfig.training(64, 1)).batch(0, 0));
    }

    @Test
    void normalizationIsExactOnHandMadePixels() {
        byte[] pixels = {0, 1, 51, 127, (byte) 128, (byte) 200, (byte) 254, (byte) 255};
        ImageDataset d = ImageDataset.of(pixels, new int[] {0, 1}, 2, 2, 2);
        Batch b = new Batches(d.view(), BatchConfig.evaluation(2).withNormalization(STATS)).batch(0, 0);
        assertEquals(8, b.x().length);
        for (int i = 0; i < 8; i++) {
            assertEquals(norm(pixels[i] & 0xff), b.x()[i], 0f, "pixel " + (pixels[i] & 0xff));
        }
        assertEquals(-0.5f, b.x()[0], 0f);
        assertEquals(1.5f, b.x()[7], 0f);
        Batch fashion = new Batches(d.view(), BatchConfig.evaluation(2)).batch(0, 0);
        assertEquals((float) ((1 - 0.2860) / 0.3530), fashion.x()[7], 0f);
    }

    @Test
    void imagesAreCopiedWithoutAugmentation() {
        BatchConfig config = BatchConfig.training(50, 2).withNormalization(STATS);
        Batch b = new Batches(VIEW, config).batch(1, 3);
        for (int s = 0; s < b.size(); s++) {
            assertArrayEquals(expected(b.indices()[s], 0, 0, 0, false), image(b, s));
        }
    }

    /**
     * The image of dataset index {@code i} padded by {@code pad} zero pixels, cropped at {@code (oy, ox)} in
     * {@code [0, 2·pad]} and mirrored if {@code flip}, normalized.
     */
    private static float[] expected(int i, int pad, int oy, int ox, boolean flip) {
        int[][] padded = new int[H + 2 * pad][W + 2 * pad];
        for (int r = 0; r < H; r++) {
            for (int c = 0; c < W; c++) {
                padded[r + pad][c + pad] = patternPixel(i, r, c, W);
            }
        }
        float[] out = new float[H * W];
        for (int r = 0; r < H; r++) {
            for (int c = 0; c < W; c++) {
                out[r * W + c] = norm(padded[r + oy][(flip ? W - 1 - c : c) + ox]);
            }
        }
        return out;
    }

    private static float[] image(Batch b, int s) {
        return Arrays.copyOfRange(b.x(), s * H * W, (s + 1) * H * W);
    }

    /** The (oy, ox, flip) whose {@link #expected} image equals sample {@code s}, or null if none. */
    private static int[] match(Batch b, int s, int pad) {
        float[] actual = image(b, s);
        for (int oy = 0; oy <= 2 * pad; oy++) {
            for (int ox = 0; ox <= 2 * pad; ox++) {
                for (int flip = 0; flip < 2; flip++) {
                    if (Arrays.equals(expected(b.indices()[s], pad, oy, ox, flip == 1), actual)) {
                        return new int[] {oy, ox, flip};
                    }
                }
            }
        }
        return null;
    }

    /** Counts, over the whole epoch, how often each (oy, ox, flip) was chosen; fails on an unmatched image. */
    private static int[][][] choices(Augmentation aug, int epoch) {
        int pad = aug.padding();
        int[][][] counts = new int[2 * pad + 1][2 * pad + 1][2];
        BatchConfig config = BatchConfig.training(128, 8).withNormalization(STATS).withAugmentation(aug);
        for (Batch b : new Batches(VIEW, config).epoch(epoch)) {
            for (int s = 0; s < b.size(); s++) {
                int[] m = match(b, s, pad);
                assertTrue(m != null, "sample " + s + " of batch " + b.number() + " is no crop/flip of its image");
                counts[m[0]][m[1]][m[2]]++;
            }
        }
        return counts;
    }

    @Test
    void flipMirrorsRowsForAboutHalfTheSamples() {
        int[][][] counts = choices(new Augmentation(0, true), 0);
        assertEquals(1000, counts[0][0][0] + counts[0][0][1]);
        assertEquals(500, counts[0][0][1], 60, "flipped samples");
    }

    @Test
    void cropWithPaddingShiftsContentByEveryOffset() {
        int[][][] counts = choices(new Augmentation(2, false), 0);
        for (int oy = 0; oy <= 4; oy++) {
            for (int ox = 0; ox <= 4; ox++) {
                assertEquals(0, counts[oy][ox][1], "flips without flip enabled");
                assertEquals(40, counts[oy][ox][0], 25, "crops at offset (" + oy + ", " + ox + ")");
            }
        }
    }

    @Test
    void cropAndFlipTogether() {
        int[][][] counts = choices(new Augmentation(1, true), 3);
        int flipped = 0;
        for (int[][] row : counts) {
            for (int[] cell : row) {
                assertTrue(cell[0] > 0 && cell[1] > 0, "every crop offset with and without flip");
                flipped += cell[1];
            }
        }
        assertEquals(500, flipped, 60);
    }

    @Test
    void shiftedCropOfAHandMadeImage() {
        // A 3x3 image 1..9 padded by 1 and cropped at (0, 2) shows rows shifted down, columns left.
        byte[] pixels = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        ImageDataset d = ImageDataset.of(pixels, new int[] {0}, 3, 3, 1);
        Set<String> seen = new HashSet<>();
        for (int epoch = 0; epoch < 200; epoch++) {
            BatchConfig config = BatchConfig.training(1, 0).withNormalization(STATS)
                    .withAugmentation(new Augmentation(1, false));
            float[] x = new Batches(d.view(), config).batch(epoch, 0).x();
            seen.add(Arrays.toString(x));
        }
        float z = norm(0);
        String downLeft = Arrays.toString(new float[] {z, z, z, norm(2), norm(3), z, norm(5), norm(6), z});
        assertTrue(seen.contains(downLeft), "no crop at offset (0, 2) among " + seen.size());
        assertEquals(9, seen.size(), "one image per offset in [0, 2]^2");
    }

    /** The batch image of the sample at view position {@code p} in epoch {@code epoch}. */
    private static float[] imageAt(Batches batches, int epoch, int p) {
        int k = Arrays.stream(batches.order(epoch)).boxed().toList().indexOf(p);
        int size = batches.config().batchSize();
        return image(batches.batch(epoch, k / size), k % size);
    }

    @Test
    void augmentationIsDeterministicAndChangesWithEpoch() {
        BatchConfig config = BatchConfig.training(250, 6).withAugmentation(new Augmentation(3, true));
        Batches a = new Batches(VIEW, config);
        Batches b = new Batches(VIEW, config);
        assertSameBatch(a.batch(2, 1).copy(), b.batch(2, 1));
        int p = 17;
        float[] epoch2 = imageAt(a, 2, p);
        assertArrayEquals(epoch2, imageAt(b, 2, p));
        Set<String> images = new HashSet<>();
        for (int e = 0; e < 6; e++) {
            images.add(Arrays.toString(imageAt(b, e, p)));
        }
        assertTrue(images.size() > 1, "position " + p + " was augmented the same way in 6 epochs");
    }

    @Test
    void labelsAreTheViewsNoisyLabels() {
        DatasetView noisy = VIEW.symmetricNoise(0.5, 4);
        int mismatches = 0;
        for (Batch b : new Batches(noisy, BatchConfig.training(100, 1)).epoch(0)) {
            for (int s = 0; s < b.size(); s++) {
                int p = b.positions()[s];
                assertEquals(noisy.label(p), b.y()[s]);
                mismatches += b.y()[s] != noisy.cleanLabel(p) ? 1 : 0;
            }
        }
        assertEquals(noisy.noisyCount(), mismatches);
    }

    @Test
    void rejectsImpossibleBatching() {
        DatasetView ten = VIEW.first(10);
        assertEquals("view has 10 samples, fewer than batchSize 16; with dropLast there would be no batch",
                assertThrows(IllegalArgumentException.class,
                        () -> new Batches(ten, BatchConfig.training(16, 0).withDropLast(true))).getMessage());
        assertEquals(1, new Batches(ten, BatchConfig.training(16, 0)).batchCount());
        assertThrows(IllegalArgumentException.class, () -> new Batches(VIEW.first(0), BatchConfig.evaluation(1)));
        Batches b = new Batches(ten, BatchConfig.evaluation(4));
        assertEquals("number is 3; must be in [0, 3)",
                assertThrows(IndexOutOfBoundsException.class, () -> b.batch(0, 3)).getMessage());
        assertEquals("epoch is -1; must be >= 0",
                assertThrows(IllegalArgumentException.class, () -> b.batch(-1, 0)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.epoch(0, 4));
        assertEquals("batchSize is 0; must be >= 1",
                assertThrows(IllegalArgumentException.class, () -> BatchConfig.evaluation(0)).getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> BatchConfig.evaluation(1).withNormalization(new PixelStats(0.5, 0)));
    }
}
