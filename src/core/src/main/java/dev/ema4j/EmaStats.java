package dev.ema4j;

import dev.ema4j.backend.Params;

/**
 * Counters of a {@link GpuEma}.
 *
 * @param steps optimizer steps seen by {@link GpuEma#update(Params)}
 * @param updates EMA updates applied or skipped (scheduled and explicit)
 * @param skippedUpdates updates skipped because a parameter was NaN or infinite
 */
public record EmaStats(long steps, long updates, long skippedUpdates) {
}
