package dev.ema4j.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.format.ResultFormatType;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs a group of benchmarks and prints a Markdown table with the ratios against the baselines of the same run:
 * {@code cpu} and {@code gpu}, the EMA (time per update, bandwidth); {@code train}, the CPU training step;
 * {@code gpu-train}, the CUDA training operations (fused SGD step, convolution) and training steps.
 *
 * <pre>{@code java -cp ... dev.ema4j.bench.BenchMain cpu|gpu|train|gpu-train [--quick] [--out table.md] [--json results.json]}</pre>
 */
public final class BenchMain {

    private BenchMain() {
    }

    public static void main(String[] args) throws RunnerException, IOException {
        List<String> a = new ArrayList<>(Arrays.asList(args));
        String group = a.isEmpty() ? "" : a.get(0);
        List<Class<?>> benchmarks = switch (group) {
            case "cpu" -> List.of(CpuEmaBenchmark.class);
            case "gpu" -> List.of(GpuEmaBenchmark.class);
            case "train" -> List.of(TrainStepBenchmark.class);
            case "gpu-train" -> List.of(GpuOpsBenchmark.class, GpuTrainBenchmark.class);
            default -> {
                System.err.println("usage: BenchMain cpu|gpu|train|gpu-train [--quick] [--out table.md]"
                        + " [--json results.json]");
                System.exit(2);
                yield List.of();
            }
        };
        ChainedOptionsBuilder options = new OptionsBuilder().shouldFailOnError(true);
        for (Class<?> benchmark : benchmarks) {
            options.include(benchmark.getName() + "\\.");
        }
        if (a.contains("--quick")) {
            options.warmupIterations(1).warmupTime(TimeValue.seconds(1)).measurementIterations(3)
                    .measurementTime(TimeValue.seconds(1));
        }
        String json = option(a, "--json");
        if (json != null) {
            options.resultFormat(ResultFormatType.JSON).result(json);
        }
        Collection<RunResult> results = new Runner(options.build()).run();
        String table = switch (group) {
            case "cpu" -> cpuTable(results);
            case "gpu" -> gpuTable(results);
            case "train" -> trainTable(results);
            default -> gpuTrainTable(results);
        };
        System.out.println(table);
        String out = option(a, "--out");
        if (out != null) {
            Files.writeString(Path.of(out), table);
        }
    }

    private static String option(List<String> args, String name) {
        int i = args.indexOf(name);
        return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : null;
    }

    /** Milliseconds per operation, keyed by "method" or "method shape". */
    private static Map<String, Double> scores(Collection<RunResult> results) {
        Map<String, Double> scores = new HashMap<>();
        for (RunResult r : results) {
            String method = r.getParams().getBenchmark().replaceAll(".*\\.", "");
            String shape = r.getParams().getParam("shape");
            scores.put(shape == null ? method : method + " " + shape, r.getPrimaryResult().getScore());
        }
        return scores;
    }

    private static double gbPerSecond(double bytes, double ms) {
        return bytes / (ms * 1e6);
    }

    static String cpuTable(Collection<RunResult> results) {
        Map<String, Double> ms = scores(results);
        StringBuilder sb = new StringBuilder("| benchmark (64 Mi fp32 params) | ms/update | GB/s |\n|---|---:|---:|\n");
        for (String m : List.of("ema", "emaGuarded", "fusedK3", "threeSingles", "addBaseline",
                "naiveSingleThread", "sgdThenEma", "sgdEmaFused")) {
            if (ms.containsKey(m)) {
                double bytes = (double) CpuEmaBenchmark.BYTES_PER_PARAM.get(m) * CpuEmaBenchmark.N;
                sb.append(String.format("| %s | %.2f | %.2f |%n", m, ms.get(m), gbPerSecond(bytes, ms.get(m))));
            }
        }
        ratio(sb, ms, "ema", "addBaseline", "EMA bandwidth / in-place add bandwidth (target >= 0.9)");
        ratio(sb, ms, "fusedK3", "threeSingles", "fused K=3 speed-up over three single updates (target >= 1.3)");
        ratio(sb, ms, "ema", "naiveSingleThread", "EMA speed-up over the naive single-threaded loop");
        ratio(sb, ms, "emaGuarded", "ema", "guarded update speed / unguarded (cost of the non-finite check)");
        ratio(sb, ms, "sgdEmaFused", "sgdThenEma", "SGD step fused with the EMA update, speed-up over the two passes");
        return sb.toString();
    }

    static String trainTable(Collection<RunResult> results) {
        StringBuilder sb = new StringBuilder("| benchmark | ms/step | images/s |\n|---|---:|---:|\n");
        for (RunResult r : results) {
            double ms = r.getPrimaryResult().getScore();
            sb.append(String.format("| SmallCnn(16) train step, batch %d (forward, backward, SGD, EMA x3) | %.2f | %.0f |%n",
                    TrainStepBenchmark.BATCH, ms, TrainStepBenchmark.BATCH / ms * 1000));
        }
        return sb.toString();
    }

    static String gpuTable(Collection<RunResult> results) {
        Map<String, Double> ms = scores(results);
        StringBuilder sb = new StringBuilder("GB/s counts 12 bytes per parameter for one fp32 shadow (the guarded"
                + " update's second read of the parameters is not counted), 28 for three, 10 for bf16 parameters,"
                + " 8 for the copy.\n\n| shape | benchmark | ms/update | GB/s | vs copy |\n|---|---|---:|---:|---:|\n");
        for (String shape : List.of("flat25M", "resnet50", "flat1G")) {
            double n = Arrays.stream(GpuEmaBenchmark.sizes(shape)).sum();
            Double copy = ms.get("copy " + shape);
            for (String m : List.of("copy", "ema", "emaGuarded", "fusedK3", "bf16")) {
                Double t = ms.get(m + " " + shape);
                if (t != null) {
                    double gbs = gbPerSecond(GpuEmaBenchmark.BYTES_PER_PARAM.get(m) * n, t);
                    String vs = copy == null ? "" : String.format("%.3f", gbs / gbPerSecond(8 * n, copy));
                    sb.append(String.format("| %s | %s | %.4f | %.1f | %s |%n", shape, m, t, gbs, vs));
                }
            }
        }
        return sb.toString();
    }

    static String gpuTrainTable(Collection<RunResult> results) {
        Map<String, Double> ms = scores(results);
        StringBuilder sb = new StringBuilder("| benchmark | ms | throughput | vs bandwidth floor at the copy's GB/s |\n"
                + "|---|---:|---:|---:|\n");
        Double copy = ms.get("copy");
        for (String m : List.of("copy", "sgd", "sgdEma1", "sgdEma3")) {
            Double t = ms.get(m);
            if (t != null) {
                double gbs = gbPerSecond((double) GpuOpsBenchmark.BYTES_PER_PARAM.get(m) * GpuOpsBenchmark.N, t);
                String floor = copy == null ? "" : String.format("%.3f",
                        gbs / gbPerSecond(8.0 * GpuOpsBenchmark.N, copy));
                sb.append(String.format("| %s (2.5e7 fp32 params) | %.4f | %.1f GB/s | %s |%n", m, t, gbs, floor));
            }
        }
        for (String m : List.of("convForward", "convBackward")) {
            Double t = ms.get(m);
            if (t != null) {
                double flops = GpuOpsBenchmark.CONV_FLOPS * (m.equals("convBackward") ? 2 : 1);
                sb.append(String.format("| %s %s -> %d ch, 3x3 | %.4f | %.0f GFLOP/s | |%n", m,
                        GpuOpsBenchmark.CONV_INPUT, GpuOpsBenchmark.CONV_K, t, flops / (t * 1e6)));
            }
        }
        for (RunResult r : results) {
            if (r.getParams().getBenchmark().endsWith(".trainStep")) {
                double t = r.getPrimaryResult().getScore();
                sb.append(String.format("| train step %s, batch %d (fwd, loss, bwd, SGD+EMA) | %.3f | %.0f images/s | |%n",
                        r.getParams().getParam("model"), GpuTrainBenchmark.BATCH, t, GpuTrainBenchmark.BATCH / t * 1000));
            }
        }
        return sb.toString();
    }

    /** Appends {@code time(baseline) / time(subject)}: a speed-up, or a bandwidth ratio when both move the same bytes. */
    private static void ratio(StringBuilder sb, Map<String, Double> ms, String subject, String baseline, String what) {
        if (ms.containsKey(subject) && ms.containsKey(baseline)) {
            sb.append(String.format("%n%s: %.3f", what, ms.get(baseline) / ms.get(subject)));
        }
    }
}
