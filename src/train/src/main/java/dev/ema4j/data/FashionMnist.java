package dev.ema4j.data;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Loads Fashion-MNIST (60,000 training and 10,000 test images, 28x28, 10 classes) from the four gzip IDX files
 * of the Debian package {@code dataset-fashion-mnist}.
 *
 * <p>The directory is, in order: the explicit argument, else the environment variable {@value #ENV_VAR},
 * else {@link #DEFAULT_DIRECTORY}. A missing directory or file throws a {@link FileNotFoundException} that
 * says how to install the package or point elsewhere.
 */
public final class FashionMnist {

    /** Environment variable naming a directory that holds the four files. */
    public static final String ENV_VAR = "EMA4J_DATA";

    /** Where the Debian package installs the files. */
    public static final Path DEFAULT_DIRECTORY = Path.of("/usr/share/datasets/fashion-mnist");

    /** The command that installs the files into {@link #DEFAULT_DIRECTORY}. */
    public static final String INSTALL_COMMAND = "sudo apt-get install -y dataset-fashion-mnist";

    /** Number of classes. */
    public static final int CLASSES = 10;

    /** Pixel mean and standard deviation of the training images, scaled to [0, 1]. */
    public static final PixelStats STATS = new PixelStats(0.2860, 0.3530);

    private FashionMnist() {
    }

    /**
     * The 60,000 training images.
     *
     * @param directory the directory holding the files, or {@code null} for {@value #ENV_VAR} or the default
     * @throws FileNotFoundException if the directory or a file is missing (the message says how to install it)
     * @throws IdxFormatException if a file is malformed
     * @throws IOException if a file cannot be read
     */
    public static ImageDataset train(Path directory) throws IOException {
        return load(directory, "train");
    }

    /**
     * The 10,000 test images.
     *
     * @param directory the directory holding the files, or {@code null} for {@value #ENV_VAR} or the default
     * @throws FileNotFoundException if the directory or a file is missing (the message says how to install it)
     * @throws IdxFormatException if a file is malformed
     * @throws IOException if a file cannot be read
     */
    public static ImageDataset test(Path directory) throws IOException {
        return load(directory, "t10k");
    }

    /**
     * The directory the loaders read: {@code explicit} if not {@code null}, else {@value #ENV_VAR} if set and
     * not blank, else {@link #DEFAULT_DIRECTORY}.
     */
    public static Path directory(Path explicit) {
        return locate(explicit, System.getenv(ENV_VAR)).directory();
    }

    /** Where the files are and which setting said so. */
    record Location(Path directory, String origin) {
    }

    static Location locate(Path explicit, String env) {
        if (explicit != null) {
            return new Location(explicit, "given explicitly");
        }
        if (env != null && !env.isBlank()) {
            return new Location(Path.of(env), "from " + ENV_VAR);
        }
        return new Location(DEFAULT_DIRECTORY, "the default");
    }

    private static ImageDataset load(Path explicit, String prefix) throws IOException {
        Location at = locate(explicit, System.getenv(ENV_VAR));
        Path images = at.directory().resolve(prefix + "-images-idx3-ubyte.gz");
        Path labels = at.directory().resolve(prefix + "-labels-idx1-ubyte.gz");
        if (!Files.isDirectory(at.directory())) {
            throw missing(at, "directory " + at.directory() + " does not exist");
        }
        for (Path file : new Path[] {images, labels}) {
            if (!Files.isRegularFile(file)) {
                throw missing(at, "file " + file + " does not exist");
            }
        }
        return ImageDataset.fromIdx(images, labels, CLASSES);
    }

    private static FileNotFoundException missing(Location at, String problem) {
        return new FileNotFoundException("Fashion-MNIST not found: " + problem + " (directory " + at.origin()
                + "). Install it with `" + INSTALL_COMMAND + "` (as root: `apt-get install -y dataset-fashion-mnist`),"
                + " which puts the files in " + DEFAULT_DIRECTORY + ", or pass the directory holding the four files"
                + " (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,"
                + " t10k-labels-idx1-ubyte.gz) explicitly or in the environment variable " + ENV_VAR + ".");
    }
}
