/**
 * An EMA of a Deeplearning4j network's weights with ema4j: {@link dev.ema4j.dl4j.Dl4jParams} views the network's
 * flat parameter array, zero-copy, as ema4j {@link dev.ema4j.backend.Params} with DL4J's parameter names and shapes;
 * {@link dev.ema4j.dl4j.BatchNormStats} chooses whether the BatchNorm running statistics, which DL4J keeps among the
 * parameters, are averaged too; {@link dev.ema4j.dl4j.BatchNormRecompute} recomputes them for the EMA weights.
 *
 * <pre>{@code
 * Dl4jParams weights = Dl4jParams.of(net);                       // net: an initialized MultiLayerNetwork
 * try (Backend backend = Backends.cpu();
 *      GpuEma ema = GpuEma.create(backend, weights.params(), 0.999)) {
 *     for (DataSet batch : batches) {
 *         net.fit(batch);
 *         ema.update(weights.params());
 *     }
 *     try (SwapScope s = ema.swapInto(weights.params())) {
 *         evaluate(net);                                         // the EMA weights and averaged statistics
 *     }
 * }
 * }</pre>
 *
 * This module depends on ema4j-core and, with {@code provided} scope, on {@code deeplearning4j-nn}: bring your own
 * DL4J and ND4J backend ({@code nd4j-native} for the zero-copy host view).
 */
package dev.ema4j.dl4j;
