package dev.ema4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.GpuEma;
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.train.Trainer;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The layers of ema4j, read from the compiled classes with {@code jdeps}: no package cycles anywhere; the core depends
 * on no other module; the {@code Backend} contract ({@code dev.ema4j.backend}) on no other ema4j package; the CUDA
 * module only on the core; the training module not on the command-line program; no package split across modules.
 */
class PackageDependenciesTest {

    private static final Pattern EDGE = Pattern.compile("^\\s+(dev\\.ema4j[\\w.]*)\\s+->\\s+(dev\\.ema4j[\\w.]*)\\s");

    /** Module name → the classes of that module (a directory in the build, or a jar). */
    private static final Map<String, Path> MODULES = new LinkedHashMap<>();
    /** Package → the packages it uses. */
    private static final Map<String, Set<String>> USES = new TreeMap<>();
    /** Package → its module. */
    private static final Map<String, String> MODULE_OF = new TreeMap<>();

    @BeforeAll
    static void readDependencies() throws URISyntaxException, IOException {
        MODULES.put("core", location(GpuEma.class));
        MODULES.put("cuda", location(CudaBackend.class));
        MODULES.put("train", location(Trainer.class));
        MODULES.put("cli", location(Ema4jCommand.class));
        ToolProvider jdeps = ToolProvider.findFirst("jdeps").orElseThrow();
        List<String> args = new ArrayList<>(List.of("-verbose:package", "-e", "dev\\.ema4j.*"));
        MODULES.values().forEach(p -> args.add(p.toString()));
        StringWriter out = new StringWriter();
        int code = jdeps.run(new PrintWriter(out), new PrintWriter(out), args.toArray(String[]::new));
        assertEquals(0, code, out.toString());
        for (String line : out.toString().lines().toList()) {
            Matcher e = EDGE.matcher(line);
            if (e.find()) {
                USES.computeIfAbsent(e.group(1), k -> new TreeSet<>()).add(e.group(2));
                USES.computeIfAbsent(e.group(2), k -> new TreeSet<>());
            }
        }
        Map<String, Set<String>> packages = new LinkedHashMap<>();
        for (Map.Entry<String, Path> m : MODULES.entrySet()) {
            packages.put(m.getKey(), packagesOf(m.getValue()));
        }
        for (String pkg : USES.keySet()) {
            List<String> holders = packages.entrySet().stream().filter(m -> m.getValue().contains(pkg))
                    .map(Map.Entry::getKey).toList();
            assertEquals(1, holders.size(), "package " + pkg + " is in modules " + holders);
            MODULE_OF.put(pkg, holders.get(0));
        }
        assertTrue(USES.size() > 10, "jdeps found the packages: " + USES);
    }

    private static Path location(Class<?> type) throws URISyntaxException {
        return Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    @Test
    void noPackageCycles() {
        List<List<String>> cycles = new ArrayList<>();
        for (String start : USES.keySet()) {
            for (String next : USES.get(start)) {
                List<String> back = path(next, start, new TreeSet<>());
                if (back != null) {
                    List<String> cycle = new ArrayList<>(List.of(start));
                    cycle.addAll(back);
                    cycles.add(cycle);
                }
            }
        }
        assertEquals(List.of(), cycles, "package cycles");
    }

    /** A path of uses from {@code from} to {@code to}, or null. */
    private static List<String> path(String from, String to, Set<String> seen) {
        if (from.equals(to)) {
            return new ArrayList<>(List.of(to));
        }
        if (!seen.add(from)) {
            return null;
        }
        for (String next : USES.getOrDefault(from, Set.of())) {
            List<String> rest = path(next, to, seen);
            if (rest != null) {
                rest.add(0, from);
                return rest;
            }
        }
        return null;
    }

    @Test
    void layersPointDown() {
        List<String> wrong = new ArrayList<>();
        List<String> order = List.of("core", "cuda", "train", "cli");
        USES.forEach((pkg, uses) -> {
            for (String used : uses) {
                String from = MODULE_OF.get(pkg);
                String to = MODULE_OF.get(used);
                if (order.indexOf(to) > order.indexOf(from)) {
                    wrong.add(pkg + " (" + from + ") -> " + used + " (" + to + ")");
                }
                if (pkg.equals("dev.ema4j.backend")) {
                    wrong.add("the Backend contract uses " + used);
                }
            }
        });
        assertEquals(List.of(), wrong);
    }

    /** The packages that hold classes in a classes directory (the build's) or a jar (the reactor's). */
    private static Set<String> packagesOf(Path classes) throws IOException {
        List<String> names = new ArrayList<>();
        if (Files.isDirectory(classes)) {
            try (Stream<Path> files = Files.walk(classes)) {
                files.forEach(f -> names.add(classes.relativize(f).toString().replace(java.io.File.separatorChar, '/')));
            }
        } else {
            try (ZipFile jar = new ZipFile(classes.toFile())) {
                jar.stream().forEach(e -> names.add(e.getName()));
            }
        }
        Set<String> packages = new TreeSet<>();
        for (String name : names) {
            if (name.endsWith(".class") && name.contains("/")) {
                packages.add(name.substring(0, name.lastIndexOf('/')).replace('/', '.'));
            }
        }
        return packages;
    }
}
