package dev.ema4j.data;

import static dev.ema4j.data.TestData.gzip;
import static dev.ema4j.data.TestData.idx;
import static dev.ema4j.data.TestData.ramp;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ImageDataset}: construction, validation, IDX loading and pixel statistics. */
class ImageDatasetTest {

    @TempDir
    Path dir;

    @Test
    void holdsCopiesOfItsArrays() {
        byte[] pixels = ramp(12);
        int[] labels = {0, 2, 1};
        ImageDataset d = ImageDataset.of(pixels, labels, 2, 2, 3);
        pixels[5] = 99;
        labels[1] = 0;
        assertEquals(3, d.count());
        assertEquals(2, d.height());
        assertEquals(2, d.width());
        assertEquals(3, d.classes());
        assertEquals(2, d.label(1));
        assertEquals(5, d.pixel(1, 0, 1));
        assertEquals(11, d.pixel(2, 1, 1));
    }

    @Test
    void pixelsAreUnsigned() {
        ImageDataset d = ImageDataset.of(new byte[] {(byte) 255, (byte) 128}, new int[] {0, 0}, 1, 1, 1);
        assertEquals(255, d.pixel(0, 0, 0));
        assertEquals(128, d.pixel(1, 0, 0));
    }

    @Test
    void rejectsLabelOutOfRangeNamingIndexAndValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ImageDataset.of(new byte[3], new int[] {0, 9, 10}, 1, 1, 10));
        assertEquals("labels[2] is 10; must be in [0, 10)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> ImageDataset.of(new byte[2], new int[] {-1, 0}, 1, 1, 10));
        assertEquals("labels[0] is -1; must be in [0, 10)", e.getMessage());
    }

    @Test
    void rejectsPixelCountThatDisagreesWithLabels() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ImageDataset.of(new byte[7], new int[2], 2, 2, 1));
        assertEquals("pixels has 7 bytes; 2 labels of 2x2 images need 8", e.getMessage());
    }

    @Test
    void loadsIdxPair() throws IOException {
        Path images = Files.write(dir.resolve("images.gz"), gzip(idx(new int[] {3, 2, 2}, ramp(12))));
        Path labels = Files.write(dir.resolve("labels"), idx(new int[] {3}, new byte[] {4, 0, 2}));
        ImageDataset d = ImageDataset.fromIdx(images, labels, 5);
        assertEquals("ImageDataset[3 images of 2x2, 5 classes]", d.toString());
        assertEquals(4, d.label(0));
        assertEquals(7, d.pixel(1, 1, 1));
    }

    @Test
    void rejectsMismatchedCounts() throws IOException {
        Path images = Files.write(dir.resolve("images"), idx(new int[] {3, 2, 2}, ramp(12)));
        Path labels = Files.write(dir.resolve("labels"), idx(new int[] {2}, new byte[2]));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> ImageDataset.fromIdx(images, labels, 5));
        assertEquals(images + " holds 3 images but " + labels + " holds 2 labels", e.getMessage());
    }

    @Test
    void rejectsLabelFileWithOutOfRangeLabel() throws IOException {
        Path images = Files.write(dir.resolve("images"), idx(new int[] {3, 1, 1}, ramp(3)));
        Path labels = Files.write(dir.resolve("labels"), idx(new int[] {3}, new byte[] {0, 1, (byte) 200}));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> ImageDataset.fromIdx(images, labels, 10));
        assertEquals(labels + ": label 2 is 200; must be in [0, 10)", e.getMessage());
    }

    @Test
    void rejectsWrongRanks() throws IOException {
        Path flat = Files.write(dir.resolve("flat"), idx(new int[] {3, 4}, ramp(12)));
        Path labels = Files.write(dir.resolve("labels"), idx(new int[] {3}, new byte[3]));
        IdxFormatException e = assertThrows(IdxFormatException.class, () -> ImageDataset.fromIdx(flat, labels, 10));
        assertTrue(e.getMessage().contains("shape 3x4 has 2 dimensions; images need 3"), e.getMessage());
        e = assertThrows(IdxFormatException.class, () -> ImageDataset.fromIdx(labels, flat, 10));
        assertTrue(e.getMessage().contains("shape 3 has 1 dimensions; images need 3"), e.getMessage());
        Path images = Files.write(dir.resolve("images"), idx(new int[] {3, 2, 2}, ramp(12)));
        e = assertThrows(IdxFormatException.class, () -> ImageDataset.fromIdx(images, flat, 10));
        assertTrue(e.getMessage().contains("shape 3x4 has 2 dimensions; labels need 1"), e.getMessage());
    }

    @Test
    void pixelStatsAreExactOnHandMadePixels() {
        // Pixels 0 and 255 in equal numbers: mean 1/2, standard deviation 1/2.
        ImageDataset half = ImageDataset.of(new byte[] {0, (byte) 255, (byte) 255, 0}, new int[2], 1, 2, 1);
        PixelStats s = half.view().pixelStats();
        assertEquals(0.5, s.mean(), 1e-15);
        assertEquals(0.5, s.std(), 1e-15);
        // Only the view's images count: image 1 alone is {51, 102} -> mean 0.3, std 0.1.
        ImageDataset d = ImageDataset.of(new byte[] {0, 0, 51, 102}, new int[] {0, 1}, 1, 2, 2);
        PixelStats second = d.view().subset(1).pixelStats();
        assertEquals(0.3, second.mean(), 1e-12);
        assertEquals(0.1, second.std(), 1e-12);
    }
}
