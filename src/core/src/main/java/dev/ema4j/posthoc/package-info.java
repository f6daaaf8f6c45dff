/**
 * Post-hoc EMA (Karras et al. 2024, EDM2): snapshots of power-function EMAs taken while training
 * ({@link dev.ema4j.posthoc.EmaSnapshotter}), from which the weights of other averages are rebuilt afterwards
 * ({@link dev.ema4j.posthoc.SnapshotSet}): any power-function profile ({@link dev.ema4j.posthoc.Profile.Power}) or
 * bias-corrected exponential ({@link dev.ema4j.posthoc.Profile.Exponential}) at a time within the snapshots', as the
 * least-squares combination of snapshots whose weights sum to 1 ({@link dev.ema4j.posthoc.Combination}).
 */
package dev.ema4j.posthoc;
