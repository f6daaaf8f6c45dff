package dev.ema4j.dl4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringWriter;
import java.lang.reflect.Method;
import java.net.URI;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.ToolProvider;
import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;

/** The README's Deeplearning4j snippet compiles as pasted, and runs on a small network. */
class ReadmeSnippetTest {

    private static final Pattern BLOCK = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL);

    @Test
    void compilesAndRuns(@TempDir Path dir) throws Exception {
        String snippet = null;
        Matcher m = BLOCK.matcher(Files.readString(Path.of("../../README.md")));
        while (m.find()) {
            if (m.group(1).contains("dev.ema4j.dl4j")) {
                snippet = m.group(1);
            }
        }
        assertTrue(snippet != null, "the README has a Deeplearning4j snippet");
        String code = snippet;
        JavaFileObject unit = new SimpleJavaFileObject(URI.create("string:///Dl4jWithEma.java"),
                JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return code;
            }
        };
        Path classes = Files.createDirectories(dir.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StringWriter diagnostics = new StringWriter();
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> options = List.of("-classpath", classPath, "-d", classes.toString(),
                "-Xlint:all,-try,-processing", "-Werror");
        boolean ok = javac.getTask(diagnostics, null, null, options, null, List.of(unit)).call();
        assertEquals("", diagnostics.toString(), "javac's messages");
        assertTrue(ok, "the snippet compiles");

        MultiLayerNetwork net = Dl4jNets.cnn(21);
        List<DataSet> batches = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            batches.add(new DataSet(Dl4jNets.features(16, 210 + i), Dl4jNets.labels(16)));
        }
        DataSetIterator data = new ExistingDataSetIterator(batches);
        var live = net.params().dup();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()},
                getClass().getClassLoader())) {
            Method train = loader.loadClass("Dl4jWithEma").getDeclaredMethod("trainWithEma", MultiLayerNetwork.class,
                    DataSetIterator.class, DataSetIterator.class, int.class, Path.class);
            train.setAccessible(true);
            train.invoke(null, net, data, data, 2, dir.resolve("ema.safetensors"));
        }
        assertTrue(Files.size(dir.resolve("ema.safetensors")) > 4L * net.numParams());
        assertEquals(8, net.getIterationCount());
        assertNotEquals(live, net.params(), "trained");
    }
}
