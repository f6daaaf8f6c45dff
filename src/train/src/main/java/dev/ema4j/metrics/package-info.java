/**
 * Classifier metrics used to compare a model with its weight EMA: accuracy and NLL ({@link
 * dev.ema4j.metrics.Classification}), expected calibration error with reliability diagrams ({@link
 * dev.ema4j.metrics.Calibration}), prediction consistency between two models ({@link
 * dev.ema4j.metrics.Consistency}), temperature scaling ({@link dev.ema4j.metrics.TemperatureScaling}) and a
 * one-call summary ({@link dev.ema4j.metrics.Evaluation}).
 *
 * <p>Shapes: predictions are flat row-major {@code float[]} arrays of shape (N, C), {@code probs[n·C + c]} being
 * the probability (or logit) of class c for sample n; {@code labels} has N entries in [0, C). Probability rows are
 * expected to sum to about 1, which is not checked; every value must lie in [0, 1] (NaN is rejected) and logits
 * must be finite. No method modifies its arguments; all sums are in double precision. Bad shapes or values throw
 * {@link java.lang.IllegalArgumentException} and null arrays {@link java.lang.NullPointerException}, both naming the
 * argument.
 */
package dev.ema4j.metrics;
