package dev.ema4j.cli;

import dev.ema4j.Backends;
import dev.ema4j.backend.Backend;
import dev.ema4j.data.FashionMnist;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options every command shares: backend, data directory, quiet mode. */
final class CommonOptions {

    @Option(names = "--backend", defaultValue = "auto", description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--data", paramLabel = "DIR",
            description = "Fashion-MNIST directory (default: $EMA4J_DATA, else /usr/share/datasets/fashion-mnist)")
    Path data;

    @Option(names = {"-q", "--quiet"}, description = "one line per epoch, no progress bar")
    boolean quiet;

    /** The backend to train on: {@code auto} is CUDA when it is available, else the CPU. */
    Backend openBackend() {
        return switch (backend.toLowerCase(java.util.Locale.ROOT)) {
            case "cpu" -> Backends.cpu();
            case "cuda" -> Backends.cuda();
            case "auto" -> Backends.best();
            default -> throw new IllegalArgumentException("--backend is \"" + backend + "\"; must be cpu, cuda or auto");
        };
    }

    /** The data directory, checked before anything runs. */
    Path checkedData() throws IOException {
        Path dir = FashionMnist.directory(data);
        if (!Files.isRegularFile(dir.resolve("train-images-idx3-ubyte.gz"))) {
            throw new IOException("Fashion-MNIST not found in " + dir + ": install it with `sudo apt-get install -y "
                    + "dataset-fashion-mnist` (as root: `apt-get install -y dataset-fashion-mnist`), or pass --data DIR"
                    + " or set EMA4J_DATA to a directory holding the four IDX files");
        }
        return dir;
    }

    /** Creates {@code out} and checks it can be written, before anything runs. */
    static Path writableOutput(Path out) throws IOException {
        try {
            Files.createDirectories(out);
            Path probe = Files.createTempFile(out, ".write-check", ".tmp");
            Files.delete(probe);
            return out;
        } catch (IOException | SecurityException e) {
            throw new IOException("cannot write the output directory " + out + ": " + e, e);
        }
    }
}
