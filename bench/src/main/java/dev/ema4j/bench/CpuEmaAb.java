package dev.ema4j.bench;

import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.IntConsumer;

/**
 * Two builds of ema4j-core in one JVM, one class loader each, timed call by call on the same 64 Mi fp32 parameters,
 * in an order that rotates every round: {@code GpuEma.update} with one shadow (decay 0.999) and with three (0.99,
 * 0.999, 0.9999) on each build's CPU backend, and {@link CpuEmaBenchmark#addBaseline}'s in-place add on the second
 * build's threads and work items. On a shared, noisy machine this compares two versions of the EMA loops more
 * closely than separate JMH runs: both see the same load, call by call. Prints the medians and their ratios.
 *
 * <pre>{@code java -Xmx6g -cp ema4j-bench.jar dev.ema4j.bench.CpuEmaAb OLD_CORE_JAR NEW_CORE_JAR [rounds]}</pre>
 */
public final class CpuEmaAb {

    private static final int N = CpuEmaBenchmark.N;
    private static final int GRAIN = 1 << 16;
    private static final double[] ONE = {0.999};
    private static final double[] THREE = {0.99, 0.999, 0.9999};

    private CpuEmaAb() {
    }

    /** One build of the core: its CPU backend and two EMAs of the shared parameters (reflection only). */
    private static final class Build {
        final Object backend;
        final Object params;
        final Object single;
        final Object fused;
        final Method update;

        Build(Path jar, float[] p) throws ReflectiveOperationException, java.net.MalformedURLException {
            ClassLoader l = new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
            Class<?> paramsClass = l.loadClass("dev.ema4j.backend.Params");
            Class<?> configClass = l.loadClass("dev.ema4j.EmaConfig");
            Class<?> policy = l.loadClass("dev.ema4j.NonFinitePolicy");
            Class<?> ema = l.loadClass("dev.ema4j.GpuEma");
            backend = l.loadClass("dev.ema4j.backend.cpu.CpuBackend").getConstructor().newInstance();
            params = paramsClass.getMethod("of", float[][].class).invoke(null, (Object) new float[][] {p});
            Object ignore = policy.getField("IGNORE").get(null);
            Method constant = configClass.getMethod("constant", double[].class);
            Method withNonFinite = configClass.getMethod("withNonFinite", policy);
            Method create = ema.getMethod("create", l.loadClass("dev.ema4j.backend.Backend"), paramsClass, configClass);
            single = create.invoke(null, backend, params, withNonFinite.invoke(constant.invoke(null, (Object) ONE), ignore));
            fused = create.invoke(null, backend, params, withNonFinite.invoke(constant.invoke(null, (Object) THREE), ignore));
            update = ema.getMethod("update", paramsClass, double[].class);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: CpuEmaAb OLD_CORE_JAR NEW_CORE_JAR [rounds]");
            System.exit(2);
        }
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 150;
        float[] p = new float[N];
        Random r = new Random(1);
        for (int i = 0; i < N; i++) {
            p[i] = (float) r.nextGaussian();
        }
        float[] e = p.clone();
        Build[] builds = {new Build(Path.of(args[0]), p), new Build(Path.of(args[1]), p)};
        Method parallelFor = builds[1].backend.getClass().getMethod("parallelFor", int.class, IntConsumer.class);
        IntConsumer add = item -> {
            int from = item * GRAIN;
            int to = Math.min(N, from + GRAIN);
            for (int i = from; i < to; i++) {
                e[i] += p[i];
            }
        };
        String[] names = {"old ema", "new ema", "old fusedK3", "new fusedK3", "addBaseline"};
        List<List<Double>> ms = new ArrayList<>();
        for (int v = 0; v < names.length; v++) {
            ms.add(new ArrayList<>());
        }
        for (int round = -20; round < rounds; round++) {  // 20 rounds of warm-up
            for (int j = 0; j < names.length; j++) {
                int v = Math.floorMod(j + round, names.length);
                long t0 = System.nanoTime();
                switch (v) {
                    case 0, 1 -> builds[v].update.invoke(builds[v].single, builds[v].params, ONE);
                    case 2, 3 -> builds[v - 2].update.invoke(builds[v - 2].fused, builds[v - 2].params, THREE);
                    default -> parallelFor.invoke(builds[1].backend, (N + GRAIN - 1) / GRAIN, add);
                }
                if (round >= 0) {
                    ms.get(v).add((System.nanoTime() - t0) / 1e6);
                }
            }
        }
        double[] median = new double[names.length];
        for (int v = 0; v < names.length; v++) {
            double[] a = ms.get(v).stream().mapToDouble(Double::doubleValue).sorted().toArray();
            median[v] = a[a.length / 2];
            System.out.printf("%-12s median %.2f ms (quartiles %.2f .. %.2f) over %d calls%n", names[v], median[v],
                    a[a.length / 4], a[3 * a.length / 4], a.length);
        }
        System.out.printf("addBaseline/ema: old %.3f, new %.3f; time old/new: ema %.3f, fusedK3 %.3f%n",
                median[4] / median[0], median[4] / median[1], median[0] / median[1], median[2] / median[3]);
    }
}
