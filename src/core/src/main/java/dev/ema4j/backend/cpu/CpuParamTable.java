package dev.ema4j.backend.cpu;

import dev.ema4j.backend.ParamLayout;
import dev.ema4j.backend.ParamTable;
import dev.ema4j.backend.Params;
import java.util.ArrayList;
import java.util.List;

/**
 * A parameter set bound to the CPU backend, with its work items: pieces of at most {@link #GRAIN} elements of one
 * tensor, which the worker threads take in turn.
 */
final class CpuParamTable implements ParamTable {

    static final int GRAIN = 1 << 16;

    private final CpuBackend backend;
    private final Params params;
    private final ParamLayout layout;
    private final List<Item> items;
    private boolean closed;

    record Item(int tensor, int from, int to) {
    }

    CpuParamTable(CpuBackend backend, Params params, ParamLayout layout) {
        this.backend = backend;
        this.params = params;
        this.layout = layout;
        this.items = items(layout);
    }

    /**
     * The work items of {@code layout}: each tensor cut into pieces of {@link #GRAIN} elements. Positions are
     * counted in {@code long}, so a tensor of up to {@link CpuBackend#MAX_LENGTH} elements ends exactly.
     */
    static List<Item> items(ParamLayout layout) {
        var list = new ArrayList<Item>();
        for (int t = 0; t < layout.size(); t++) {
            long length = layout.length(t);
            for (long from = 0; from < length; from += GRAIN) {
                list.add(new Item(t, (int) from, (int) Math.min(length, from + GRAIN)));
            }
        }
        return List.copyOf(list);
    }

    @Override
    public Params params() {
        return params;
    }

    @Override
    public ParamLayout layout() {
        return layout;
    }

    List<Item> items() {
        return items;
    }

    CpuBackend backend() {
        return backend;
    }

    /** Views of the tensors' current storage. */
    HostView[] views() {
        if (closed) {
            throw new IllegalStateException("parameter table is closed");
        }
        HostView[] views = new HostView[params.size()];
        for (int i = 0; i < views.length; i++) {
            views[i] = view(params.tensor(i));
        }
        return views;
    }

    private static HostView view(Params.Tensor tensor) {
        if (tensor.storage() instanceof Params.FloatArray t) {
            return HostView.of(t.array());
        } else if (tensor.storage() instanceof Params.HalfArray t) {
            return HostView.of(t.array(), t.dtype());
        } else if (tensor.storage() instanceof Params.Floats t) {
            return HostView.of(t.buffer(), t.offset(), t.count());
        }
        return ((CpuBuffer) ((Params.Device) tensor.storage()).buffer()).view();
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        closed = true;
    }
}
