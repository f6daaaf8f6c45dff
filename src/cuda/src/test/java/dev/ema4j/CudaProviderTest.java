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
import dev.ema4j.backend.cuda.CudaBackend;
import dev.ema4j.backend.cuda.CudaProbe;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.ResourceLock;

/** With this module on the class path, Backends finds the CUDA backend and reports the probe's own reason. */
@ResourceLock("system-properties")
class CudaProviderTest {

    @AfterEach
    void clearOverride() {
        System.clearProperty(Backends.PROPERTY);
    }

    @Test
    void backendsUseTheCudaModulesProbe() {
        BackendAvailability a = Backends.cudaAvailability();
        assertSame(a, Backends.cudaAvailability(), "probed once");
        assertEquals(CudaProbe.availability().available(), a.available());
        assertEquals(CudaProbe.availability().reason(), a.reason());
        assertFalse(a.reason().contains("not on the class path"), a.reason());
        System.setProperty(Backends.PROPERTY, "cuda");
        if (a.available()) {
            try (Backend b = Backends.best()) {
                assertInstanceOf(CudaBackend.class, b);
            }
        } else {
            IllegalStateException e = assertThrows(IllegalStateException.class, Backends::best);
            assertTrue(e.getMessage().contains(a.reason()), e.getMessage());
            System.setProperty(Backends.PROPERTY, "auto");
            try (Backend b = Backends.best()) {
                assertInstanceOf(CpuBackend.class, b);
            }
        }
    }
}
