/**
 * Image classification data for the EMA experiments: an IDX reader ({@link dev.ema4j.data.IdxReader}),
 * Fashion-MNIST loading ({@link dev.ema4j.data.FashionMnist}) into an immutable
 * {@link dev.ema4j.data.ImageDataset} of uint8 pixels, index views for splits, class subsets and label noise
 * ({@link dev.ema4j.data.DatasetView}), and seeded mini-batches ({@link dev.ema4j.data.Batches}).
 *
 * <p>Every random choice is a pure function of a seed and the coordinates of the choice (epoch, position,
 * dataset index), never of hidden generator state, so any run can be reproduced or resumed from
 * {@code (epoch, batch)} alone.
 */
package dev.ema4j.data;
