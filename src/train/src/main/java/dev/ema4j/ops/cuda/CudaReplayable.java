package dev.ema4j.ops.cuda;

import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.backend.cuda.CudaGraph;
import dev.ema4j.ops.Replayable;
import jcuda.CudaException;

/**
 * A {@link Replayable} of {@link CudaNnOps}: the first call runs the pass (it sizes the operations' scratch, so the
 * capture allocates nothing), the second captures it into a {@link CudaGraph} and launches the graph, later calls
 * launch the graph (NOTE: [pass-graphs] in {@link CudaNnOps}). When memory the graph uses has moved
 * ({@link CudaNnOps#memoryEpoch()}), it is captured again; when a capture fails, the operations stop using graphs
 * and every pass runs as it is.
 */
final class CudaReplayable implements Replayable {

    private final CudaNnOps ops;
    private final CudaBackend backend;
    private CudaGraph graph;
    private long epoch;
    private boolean warm;
    private boolean closed;

    CudaReplayable(CudaNnOps ops, CudaBackend backend) {
        this.ops = ops;
        this.backend = backend;
    }

    @Override
    public void run(Runnable pass) {
        if (closed) {
            throw new IllegalStateException("replayable pass is closed");
        }
        if (graph != null && (ops.graphsOff() != null || epoch != ops.memoryEpoch())) {
            drop();
        }
        if (ops.graphsOff() != null || !warm) {
            pass.run();
            warm = true;
            return;
        }
        if (graph == null) {
            long memory = ops.memoryEpoch();
            try {
                graph = CudaGraph.capture(backend, pass);
            } catch (CudaException e) {
                ops.stopGraphs("a capture failed: " + e.getMessage());
                pass.run();
                return;
            }
            epoch = memory;
            ops.countCapture();
        }
        graph.launch();
        ops.countReplay();
    }

    private void drop() {
        CudaGraph g = graph;
        graph = null;
        g.close();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (graph != null) {
                drop();
            }
        }
    }
}
