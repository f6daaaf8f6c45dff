package dev.ema4j.cli;

import dev.ema4j.study.Progress;
import dev.ema4j.study.RunSpec;
import java.io.PrintStream;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** A progress bar over each run's optimizer steps, with ETA and images/s; in quiet mode only the epoch lines. */
final class CellProgress implements Progress {

    private final boolean quiet;
    private final PrintStream out;
    private ProgressBar bar;
    private int batch;
    private long start;

    CellProgress(boolean quiet, PrintStream out) {
        this.quiet = quiet;
        this.out = out;
    }

    @Override
    public void start(RunSpec spec, long steps) {
        batch = spec.batch();
        start = System.nanoTime();
        if (!quiet) {
            bar = new ProgressBarBuilder().setTaskName(spec.key()).setInitialMax(steps).setStyle(ProgressBarStyle.ASCII)
                    .setConsumer(new ConsoleProgressBarConsumer(out)).build();
        }
    }

    @Override
    public void step() {
        if (bar != null) {
            bar.step();
            double seconds = (System.nanoTime() - start) / 1e9;
            bar.setExtraMessage(String.format("%.0f img/s", bar.getCurrent() * batch / seconds));
        }
    }

    @Override
    public void line(String line) {
        if (bar != null) {
            bar.pause();
        }
        out.println(line);
        if (bar != null) {
            bar.resume();
        }
    }

    @Override
    public void done() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
