package dev.ema4j;

/**
 * What the clock {@code t} of a {@link DecaySchedule} counts when the EMA is updated every {@code k} optimizer
 * steps ({@link EmaConfig#every()}). The paper leaves this open for its warm-up; both are exact definitions.
 */
public enum EmaClock {
    /**
     * {@code t} counts optimizer steps. The update after steps {@code s−k … s−1} applies the product of their
     * decays, {@code decay(s−k)·…·decay(s−1)}: {@code α^k} for a constant decay, so updating every {@code k}
     * steps tracks the same average as updating every step.
     */
    OPTIMIZER_STEPS,
    /**
     * {@code t} counts EMA updates; each update applies {@code schedule.compounded(k).decay(u)}, where the target
     * decay {@code α} becomes {@code α^k} (for the paper's warm-up: {@code min(α^k, (u+1)/(u+10))}).
     */
    EMA_UPDATES
}
