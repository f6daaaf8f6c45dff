package dev.ema4j.dl4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.Backends;
import dev.ema4j.DecaySchedule;
import dev.ema4j.EmaConfig;
import dev.ema4j.GpuEma;
import dev.ema4j.SwapScope;
import dev.ema4j.backend.Backend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;

/** The README's DL4J snippet, compiled and run on a small network. */
class ReadmeSnippetTest {

    // README: begin
    @SuppressWarnings("try") // the swap scopes are used for their close()
    static void trainWithEma(MultiLayerNetwork net, DataSetIterator train, DataSetIterator test, int epochs,
                             Path emaFile) throws IOException {
        Dl4jParams weights = Dl4jParams.of(net);                 // net.params() as ema4j Params, zero-copy
        try (Backend backend = Backends.cpu();
             GpuEma ema = GpuEma.create(backend, weights.params(), EmaConfig.of(DecaySchedule.paperWarmup(0.999)))) {
            for (int epoch = 0; epoch < epochs; epoch++) {
                train.reset();
                while (train.hasNext()) {
                    net.fit(train.next());
                    ema.update(weights.params());                // after every optimizer step
                }
            }
            test.reset();
            System.out.println("live " + net.evaluate(test).accuracy());
            try (SwapScope s = ema.swapInto(weights.params())) {  // EMA weights and EMA-averaged BN statistics
                test.reset();
                System.out.println("EMA  " + net.evaluate(test).accuracy());
                train.reset();
                BatchNormRecompute.recompute(net, train, 50);    // or: BN statistics recomputed for the EMA weights
                test.reset();
                System.out.println("EMA, recomputed BN statistics " + net.evaluate(test).accuracy());
            }                                                    // live weights and statistics back, bit for bit
            ema.save(emaFile);                                   // named like net.paramTable(): 0_W, 1_mean, ...
        }
    }
    // README: end

    @Test
    void runs(@TempDir Path dir) throws IOException {
        MultiLayerNetwork net = Dl4jNets.cnn(21);
        List<DataSet> batches = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            batches.add(new DataSet(Dl4jNets.features(16, 210 + i), Dl4jNets.labels(16)));
        }
        DataSetIterator data = new ExistingDataSetIterator(batches);
        var live = net.params().dup();
        trainWithEma(net, data, data, 2, dir.resolve("ema.safetensors"));
        assertTrue(Files.size(dir.resolve("ema.safetensors")) > 4L * net.numParams());
        assertEquals(8, net.getIterationCount());
        assertNotEquals(live, net.params(), "trained");
    }
}
