package dev.ema4j.dl4j;

/**
 * What a {@link Dl4jParams} does with the running statistics of DL4J's {@code BatchNormalization} layers.
 *
 * <p>DL4J keeps them in the model's flat {@code params()} beside the weights: per layer {@code <layer>_mean} and
 * either {@code <layer>_log10stdev} ({@code useLogStd(true)}, the default) or {@code <layer>_var}. DL4J updates them
 * only in {@code fit} (not in a forward pass), once per step:
 * {@code mean ← d·mean + (1 − d)·batchMean}, and the same for the biased batch variance, with the layer's
 * {@code decay} {@code d} (0.9 by default); with {@code useLogStd} it stores {@code log10(sqrt(var))} and evaluation
 * uses {@code var = (10^log10stdev)²}, then {@code sqrt(var + eps)}.
 */
public enum BatchNormStats {

    /**
     * The statistics are averaged like the weights, with the same decay (EMAN-like): swapping the EMA in
     * ({@code ema.swapInto(params)}) brings the averaged statistics with the averaged weights, and the scope's close
     * restores the live ones. With {@code useLogStd} the stored value is {@code log10 σ}, so its average is a
     * geometric average of {@code σ}, not an arithmetic average of the variance.
     */
    AVERAGE,

    /**
     * The statistics are left out: the parameter set holds the other parameters only (one tensor per run of them),
     * so the EMA never reads or writes the statistics. Swapping the EMA in leaves the live statistics in place: the
     * EMA weights are evaluated with the live model's statistics (what timm's {@code ModelEmaV3} does when it copies
     * buffers), unless they are recomputed for the EMA weights with {@link BatchNormRecompute}; recomputing then
     * overwrites the live statistics, which no swap scope restores.
     */
    EXCLUDE
}
