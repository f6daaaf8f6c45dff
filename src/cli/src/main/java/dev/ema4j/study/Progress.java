package dev.ema4j.study;

/** Where a run reports its progress. */
public interface Progress {

    /** The run starts {@code steps} optimizer steps. */
    void start(RunSpec spec, long steps);

    /** One optimizer step is done. */
    void step();

    /** A line of news, e.g. an epoch's summary. */
    void line(String line);

    /** The run is done. */
    void done();
}
