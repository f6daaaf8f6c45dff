package dev.ema4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link FashionMnist}: the directory lookup, the install hint, and the real files when installed. */
class FashionMnistTest {

    @TempDir
    Path dir;

    private static void assumeInstalled() {
        assumeTrue(Files.isDirectory(FashionMnist.DEFAULT_DIRECTORY), FashionMnist.DEFAULT_DIRECTORY
                + " is absent; install it with `" + FashionMnist.INSTALL_COMMAND + "` to run this test");
    }

    private static void assertShape(ImageDataset d, int count) {
        assertEquals(count, d.count());
        assertEquals(28, d.height());
        assertEquals(28, d.width());
        assertEquals(10, d.classes());
        int[] perClass = new int[10];
        for (int i = 0; i < d.count(); i++) {
            perClass[d.label(i)]++;
        }
        for (int c = 0; c < 10; c++) {
            assertEquals(count / 10, perClass[c], "images of class " + c);
        }
    }

    @Test
    void realTrainingSetHasShapesLabelsAndKnownStatistics() throws IOException {
        assumeInstalled();
        ImageDataset train = FashionMnist.train(FashionMnist.DEFAULT_DIRECTORY);
        assertShape(train, 60_000);
        PixelStats s = train.view().pixelStats();
        assertEquals(FashionMnist.STATS.mean(), s.mean(), 1e-3);
        assertEquals(FashionMnist.STATS.std(), s.std(), 1e-3);
    }

    @Test
    void realTestSetHasShapesAndLabels() throws IOException {
        assumeInstalled();
        assertShape(FashionMnist.test(FashionMnist.DEFAULT_DIRECTORY), 10_000);
    }

    @Test
    void missingDirectorySaysHowToInstall() {
        Path absent = dir.resolve("absent");
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> FashionMnist.train(absent));
        String m = e.getMessage();
        assertTrue(m.contains("directory " + absent + " does not exist (directory given explicitly)"), m);
        assertTrue(m.contains("`sudo apt-get install -y dataset-fashion-mnist`"), m);
        assertTrue(m.contains("(as root: `apt-get install -y dataset-fashion-mnist`)"), m);
        assertTrue(m.contains("environment variable EMA4J_DATA"), m);
    }

    @Test
    void missingFileIsNamed() throws IOException {
        Files.write(dir.resolve("t10k-images-idx3-ubyte.gz"), new byte[0]);
        FileNotFoundException e = assertThrows(FileNotFoundException.class, () -> FashionMnist.test(dir));
        assertTrue(e.getMessage().contains("file " + dir.resolve("t10k-labels-idx1-ubyte.gz") + " does not exist"),
                e.getMessage());
        assertTrue(e.getMessage().contains("apt-get install -y dataset-fashion-mnist"), e.getMessage());
    }

    @Test
    void directoryIsExplicitElseEnvironmentElseDefault() {
        Path explicit = Path.of("/data/explicit");
        assertEquals(explicit, FashionMnist.locate(explicit, "/data/env").directory());
        assertEquals(Path.of("/data/env"), FashionMnist.locate(null, "/data/env").directory());
        assertEquals("from EMA4J_DATA", FashionMnist.locate(null, "/data/env").origin());
        assertEquals(FashionMnist.DEFAULT_DIRECTORY, FashionMnist.locate(null, null).directory());
        assertEquals(FashionMnist.DEFAULT_DIRECTORY, FashionMnist.locate(null, " ").directory());
        assertEquals(explicit, FashionMnist.directory(explicit));
    }
}
