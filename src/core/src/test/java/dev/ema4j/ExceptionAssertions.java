package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.function.Executable;

/** Assertions on the exceptions of bad input, shared by the conformance suites. */
public final class ExceptionAssertions {

    private ExceptionAssertions() {
    }

    /** {@code call} throws {@code type} with a message containing {@code fragment}. */
    public static <T extends Throwable> void assertMessage(Class<T> type, Executable call, String fragment) {
        T e = assertThrows(type, call);
        assertTrue(e.getMessage() != null && e.getMessage().contains(fragment),
                "message \"" + e.getMessage() + "\" should contain \"" + fragment + "\"");
    }
}
