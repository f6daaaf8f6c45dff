package dev.ema4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link TensorDType} and {@link TensorInfo}. */
class TensorTypesTest {

    @Test
    void dtypeSizesMatchTheFormat() {
        Map<String, Integer> expected = new LinkedHashMap<>();
        expected.put("F64", 8);
        expected.put("F32", 4);
        expected.put("F16", 2);
        expected.put("BF16", 2);
        expected.put("I64", 8);
        expected.put("I32", 4);
        expected.put("I16", 2);
        expected.put("I8", 1);
        expected.put("U64", 8);
        expected.put("U32", 4);
        expected.put("U16", 2);
        expected.put("U8", 1);
        expected.put("BOOL", 1);
        expected.put("F8_E4M3", 1);
        expected.put("F8_E5M2", 1);
        Map<String, Integer> actual = new LinkedHashMap<>();
        for (TensorDType type : TensorDType.values()) {
            actual.put(type.name(), type.byteSize());
            assertEquals(type, TensorDType.parse(type.name()));
        }
        assertEquals(expected, actual);
    }

    @Test
    void parseRejectsUnknownNames() {
        for (String name : List.of("f32", "F128", "", " F32", "FLOAT")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TensorDType.parse(name));
            assertTrue(e.getMessage().contains("\"" + name + "\""), e.getMessage());
        }
    }

    @Test
    void tensorInfoCountsElementsAndCopiesShape() {
        List<Long> shape = new ArrayList<>(List.of(2L, 3L, 4L));
        TensorInfo info = new TensorInfo("w", TensorDType.F32, shape, 0, 96);
        shape.set(0, 100L);
        assertEquals(List.of(2L, 3L, 4L), info.shape());
        assertEquals(24, info.elementCount());
        assertEquals(1, new TensorInfo("s", TensorDType.I8, List.of(), 0, 1).elementCount());
        assertEquals(0, new TensorInfo("z", TensorDType.I8, List.of(3L, 0L), 5, 5).elementCount());
    }

    @Test
    void tensorInfoRejectsInvalidComponents() {
        assertThrows(IllegalArgumentException.class, () -> new TensorInfo("w", TensorDType.F32, List.of(-1L), 0, 0));
        IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
                () -> new TensorInfo("w", TensorDType.F32, List.of(1L), 8, 4));
        assertTrue(range.getMessage().contains("[8, 4]"), range.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new TensorInfo("w", TensorDType.F32, List.of(1L), -4, 0));
        assertThrows(NullPointerException.class, () -> new TensorInfo(null, TensorDType.F32, List.of(), 0, 4));
        assertThrows(NullPointerException.class, () -> new TensorInfo("w", null, List.of(), 0, 4));
    }
}
