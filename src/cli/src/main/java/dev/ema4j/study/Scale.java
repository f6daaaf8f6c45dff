package dev.ema4j.study;

/** How big a study is. */
public enum Scale {
    /** Small subsets, two epochs: every experiment end to end in about a minute (CI). */
    QUICK,
    /** The study of docs/results: all of Fashion-MNIST, hours on two CPU cores. */
    FULL
}
