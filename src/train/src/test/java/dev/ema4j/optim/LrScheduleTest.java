package dev.ema4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class LrScheduleTest {

    @Test
    void closedForms() {
        assertEquals(0.1, LrSchedule.constant(0.1).at(12345));
        LrSchedule step = LrSchedule.step(1.0, List.of(10L, 20L), 0.2);
        assertEquals(1.0, step.at(9));
        assertEquals(0.2, step.at(10), 1e-15);
        assertEquals(0.04, step.at(25), 1e-15);
        LrSchedule wc = LrSchedule.warmupCosine(0.8, 5, 105);
        assertEquals(0.16, wc.at(0), 1e-15);
        assertEquals(0.8, wc.at(4), 1e-15);
        assertEquals(0.8, wc.at(5), 1e-15);
        assertEquals(0.4, wc.at(55), 1e-12);
        assertEquals(0.0, wc.at(105), 1e-15);
        assertEquals(0.0, wc.at(1000), 1e-15);
    }

    @Test
    void badArguments() {
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(-1));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.step(1, List.of(5L, 5L), 0.1));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(1, 10, 10));
    }
}
