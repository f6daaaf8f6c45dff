package dev.ema4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ema4j.backend.Backend;
import dev.ema4j.backend.BackendAvailability;
import dev.ema4j.backend.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.ResourceLock;

/** Backend selection: the override, the fallback and its reason. */
@ResourceLock("system-properties")
class BackendsTest {

    @AfterEach
    void clearOverride() {
        System.clearProperty(Backends.PROPERTY);
    }

    @Test
    void propertySelectsTheCpu() {
        System.setProperty(Backends.PROPERTY, " CPU ");
        try (Backend b = Backends.best()) {
            assertInstanceOf(CpuBackend.class, b);
        }
        assertTrue(Backends.explain().startsWith("cpu, requested by -Dema4j.backend"), Backends.explain());
    }

    @Test
    void unknownOverrideIsRejected() {
        System.setProperty(Backends.PROPERTY, "tpu");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Backends::best);
        assertTrue(e.getMessage().contains("\"tpu\"; must be cpu, cuda or auto"), e.getMessage());
    }

    @Test
    void probeIsCachedAndExplained() {
        BackendAvailability a = Backends.cudaAvailability();
        assertSame(a, Backends.cudaAvailability());
        assertFalse(a.reason().isBlank());
        if (!a.available()) {
            System.setProperty(Backends.PROPERTY, "cuda");
            IllegalStateException e = assertThrows(IllegalStateException.class, Backends::best);
            assertTrue(e.getMessage().contains(a.reason()), e.getMessage());
            System.clearProperty(Backends.PROPERTY);
            try (Backend b = Backends.best()) {
                assertInstanceOf(CpuBackend.class, b);
            }
            assertEquals("cpu, because CUDA is unavailable: " + a.reason(), Backends.explain());
        }
    }
}
