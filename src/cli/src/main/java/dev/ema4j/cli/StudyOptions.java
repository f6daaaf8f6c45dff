package dev.ema4j.cli;

import dev.ema4j.study.Scale;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Option;

/** The options that name a study, shared by {@code reproduce} and {@code report}: scale, seeds, directory. */
final class StudyOptions {

    @Option(names = "--scale", defaultValue = "quick", description = "quick or full (default: ${DEFAULT-VALUE})")
    String scale;

    @Option(names = "--seeds", defaultValue = "3",
            description = "seeds of every run group, 1..N (default: ${DEFAULT-VALUE}); a verdict needs at least 2")
    int seeds;

    @Option(names = "--out", paramLabel = "DIR", description = "the study's directory (default: results/<scale>)")
    Path out;

    Scale scale() {
        return scale(scale);
    }

    /** {@code --out}, else {@code results/<scale>}. */
    Path dir() {
        return out != null ? out : Path.of("results", scale().name().toLowerCase(Locale.ROOT));
    }

    static Scale scale(String name) {
        return switch (name) {
            case "quick" -> Scale.QUICK;
            case "full" -> Scale.FULL;
            default -> throw new IllegalArgumentException("--scale is \"" + name + "\"; must be quick or full");
        };
    }
}
