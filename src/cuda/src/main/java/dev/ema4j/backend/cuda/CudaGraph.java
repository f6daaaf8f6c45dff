package dev.ema4j.backend.cuda;

import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.util.Objects;
import jcuda.CudaException;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;

/**
 * The work that a pass issues on a backend's stream, captured once into a CUDA graph and replayed with one launch.
 *
 * <pre>{@code
 * try (CudaGraph graph = CudaGraph.capture(backend, () -> body.backward(dlogits))) {   // records, runs nothing
 *     graph.launch();                                                                   // runs the recorded work
 * }
 * }</pre>
 *
 * <p>NOTE: [cuda-graphs]. {@link #capture} runs the pass's Java code once with the stream in capture mode
 * ({@code cuStreamBeginCapture}, thread-local): the kernels, device copies and memsets it issues are recorded, not
 * run, and {@link #launch} replays them on the stream with the arguments they had at the capture: the same kernels on
 * the same addresses with the same scalars, without the Java code. A graph therefore stays right only while the pass
 * would issue exactly the same work (same tensors, shapes and scalars) and no memory it uses is freed. Whatever
 * waits for the device, allocates or frees memory, or copies host memory makes the driver invalidate the capture
 * (cuBLAS calls are capturable); {@link #capture} then throws a {@link CudaException} naming the call that failed,
 * and nothing the pass issued runs. A backend in sync mode ({@link CudaBackend#syncMode()}) cannot be captured.
 */
public final class CudaGraph implements AutoCloseable {

    private final CudaBackend backend;
    private final CUgraphExec exec;
    private boolean closed;

    private CudaGraph(CudaBackend backend, CUgraphExec exec) {
        this.backend = backend;
        this.exec = exec;
    }

    /**
     * Captures the work {@code pass} issues on {@code backend}'s stream; nothing of it runs until {@link #launch}.
     *
     * @throws CudaException when the driver refuses the capture or invalidates it (the message names the call)
     * @throws IllegalStateException when the backend is closed or in sync mode
     * @throws RuntimeException whatever {@code pass} throws, after the capture was ended and discarded
     */
    public static CudaGraph capture(CudaBackend backend, Runnable pass) {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(pass, "pass");
        backend.makeCurrent();
        if (backend.syncMode()) {
            throw new IllegalStateException("cannot capture a CUDA graph in sync mode (-Dema4j.cuda.sync=true): every"
                    + " launch waits for the device");
        }
        CUstream stream = backend.stream();
        backend.driver("beginning a stream capture", () -> cuStreamBeginCapture(stream,
                CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
        CUgraph graph = new CUgraph();
        try {
            pass.run();
        } catch (RuntimeException | Error e) {
            try {
                cuStreamEndCapture(stream, graph);  // an invalidated capture ends with an error and no graph
                destroy(graph);
            } catch (CudaException ended) {
                e.addSuppressed(ended);
            }
            throw e;
        }
        backend.driver("ending the stream capture (the pass issued work that cannot be captured)",
                () -> cuStreamEndCapture(stream, graph));
        try {
            CUgraphExec exec = new CUgraphExec();
            backend.driver("instantiating the captured graph", () -> cuGraphInstantiate(exec, graph, 0));
            return new CudaGraph(backend, exec);
        } finally {
            backend.driver("destroying the captured graph after its instantiation", () -> destroy(graph));
        }
    }

    private static void destroy(CUgraph graph) {
        if (JCudaAddresses.of(graph) != 0) {
            cuGraphDestroy(graph);
        }
    }

    /** Queues the captured work on the backend's stream; returns at once. */
    public void launch() {
        if (closed) {
            throw new IllegalStateException("CUDA graph is closed");
        }
        backend.makeCurrent();
        backend.driver("launching a captured CUDA graph", () -> cuGraphLaunch(exec, backend.stream()));
    }

    /** Waits for the launched work, then destroys the graph; nothing to do once the backend is closed. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (!backend.isClosed()) {
            backend.makeCurrent();
            backend.driver("the synchronization before destroying a CUDA graph",
                    () -> cuStreamSynchronize(backend.stream()));
            backend.driver("destroying a CUDA graph", () -> cuGraphExecDestroy(exec));
        }
    }
}
