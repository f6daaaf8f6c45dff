package dev.ema4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.StringWriter;
import java.net.URI;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's Java snippets compile as pasted: each {@code ```java} block is a compilation unit (imports, checked
 * exceptions), compiled against the modules. Blocks that use the Deeplearning4j adapter are compiled by the dl4j
 * module's test of the same name.
 */
class ReadmeSnippetsTest {

    static final Path README = Path.of("../../README.md");
    private static final Pattern BLOCK = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL);
    private static final Pattern CLASS = Pattern.compile("(?m)^(?:public\\s+)?(?:final\\s+)?class\\s+(\\w+)");

    @Test
    void javaSnippetsCompile(@TempDir Path out) throws IOException {
        List<JavaFileObject> units = new ArrayList<>();
        Matcher m = BLOCK.matcher(Files.readString(README));
        while (m.find()) {
            String code = m.group(1);
            if (code.contains("dev.ema4j.dl4j")) {
                continue;
            }
            Matcher c = CLASS.matcher(code);
            assertTrue(c.find(), "a README snippet without a class:\n" + code);
            String name = c.group(1);
            units.add(new SimpleJavaFileObject(URI.create("string:///" + name + ".java"), JavaFileObject.Kind.SOURCE) {
                @Override
                public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                    return code;
                }
            });
        }
        assertTrue(units.size() >= 3, "the README has its snippets: " + units.size());
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StringWriter diagnostics = new StringWriter();
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> options = List.of("-classpath", classPath, "-d", out.toString(), "-Xlint:all,-try,-processing",
                "-Werror");
        boolean ok = javac.getTask(diagnostics, null, null, options, null, units).call();
        assertEquals("", diagnostics.toString(), "javac's messages");
        assertTrue(ok, "the README's snippets compile");
    }
}
