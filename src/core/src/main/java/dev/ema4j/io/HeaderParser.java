package dev.ema4j.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Parses and validates the JSON header of one untrusted safetensors file. */
final class HeaderParser {

    /** The header key that holds the string metadata. */
    static final String METADATA_KEY = "__metadata__";

    /** The JSON mapper shared by reader and writer: strict duplicates, no trailing tokens. */
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private static final List<String> TENSOR_KEYS = List.of("dtype", "shape", "data_offsets");
    private static final int MAX_QUOTED_CHARS = 200;

    /** A validated header: metadata in file order, tensors sorted by begin offset. */
    record Header(Map<String, String> metadata, List<TensorInfo> tensors) {}

    private final String file;
    private final long bufferSize;

    /**
     * @param file the file name used in error messages
     * @param bufferSize the size in bytes of the data buffer that follows the header
     */
    HeaderParser(String file, long bufferSize) {
        this.file = file;
        this.bufferSize = bufferSize;
    }

    /** Validates {@code bytes}, the whole header including any space padding; does not modify it. */
    Header parse(byte[] bytes) throws SafetensorsException {
        String text = decodeUtf8(bytes);
        if (bytes[0] != '{') {
            throw fail("header must start with '{' but starts with byte 0x" + hex(bytes[0]));
        }
        JsonNode root = readJson(text);
        Map<String, String> metadata = Map.of();
        List<TensorInfo> tensors = new ArrayList<>();
        for (Map.Entry<String, JsonNode> entry : root.properties()) {
            if (entry.getKey().equals(METADATA_KEY)) {
                metadata = metadata(entry.getValue());
            } else {
                tensors.add(tensor(entry.getKey(), entry.getValue()));
            }
        }
        tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        checkCoverage(tensors);
        return new Header(metadata, Collections.unmodifiableList(tensors));
    }

    private String decodeUtf8(byte[] bytes) throws SafetensorsException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) {
            result = decoder.flush(out);
        }
        if (result.isError()) {
            throw fail("header is not valid UTF-8: malformed sequence at byte " + in.position()
                    + " (0x" + hex(bytes[in.position()]) + ")");
        }
        return out.flip().toString();
    }

    private JsonNode readJson(String text) throws SafetensorsException {
        try {
            return MAPPER.readTree(text);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            throw new SafetensorsException(file + ": header is not valid JSON: " + e.getOriginalMessage() + where, e);
        }
    }

    private Map<String, String> metadata(JsonNode node) throws SafetensorsException {
        if (!node.isObject()) {
            throw fail("\"__metadata__\" must be an object of strings, got " + snippet(node));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> entry : node.properties()) {
            if (!entry.getValue().isTextual()) {
                throw fail("\"__metadata__\" value " + quote(entry.getKey()) + " must be a string, got "
                        + snippet(entry.getValue()));
            }
            metadata.put(entry.getKey(), entry.getValue().textValue());
        }
        return Collections.unmodifiableMap(metadata);
    }

    private TensorInfo tensor(String name, JsonNode node) throws SafetensorsException {
        String where = "tensor " + quote(name);
        if (!node.isObject()) {
            throw fail(where + " must be an object, got " + snippet(node));
        }
        for (String key : TENSOR_KEYS) {
            if (!node.has(key)) {
                throw fail(where + " is missing key " + quote(key));
            }
        }
        if (node.size() != TENSOR_KEYS.size()) {
            for (Map.Entry<String, JsonNode> entry : node.properties()) {
                if (!TENSOR_KEYS.contains(entry.getKey())) {
                    throw fail(where + " has unexpected key " + quote(entry.getKey())
                            + " (allowed: dtype, shape, data_offsets)");
                }
            }
        }
        JsonNode dtypeNode = node.get("dtype");
        if (!dtypeNode.isTextual()) {
            throw fail(where + " dtype must be a string, got " + snippet(dtypeNode));
        }
        TensorDType dtype;
        try {
            dtype = TensorDType.parse(dtypeNode.textValue());
        } catch (IllegalArgumentException e) {
            throw fail(where + " has unknown dtype " + quote(dtypeNode.textValue()));
        }
        List<Long> shape = longs(where + " shape", node.get("shape"));
        List<Long> offsets = longs(where + " data_offsets", node.get("data_offsets"));
        if (offsets.size() != 2) {
            throw fail(where + " data_offsets must hold exactly 2 integers, got " + offsets);
        }
        long begin = offsets.get(0);
        long end = offsets.get(1);
        if (begin > end) {
            throw fail(where + " data_offsets " + offsets + " begin after end");
        }
        long needed;
        try {
            needed = Math.multiplyExact(TensorInfo.product(shape), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw fail(where + " dtype " + dtype + " shape " + shape + " overflows a long byte count");
        }
        if (needed != end - begin) {
            throw fail(where + " data_offsets " + offsets + " hold " + (end - begin) + " bytes but dtype "
                    + dtype + " shape " + shape + " needs " + needed);
        }
        if (end > bufferSize) {
            throw fail(where + " data_offsets " + offsets + " end beyond the data buffer of " + bufferSize
                    + " bytes");
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private List<Long> longs(String where, JsonNode node) throws SafetensorsException {
        if (!node.isArray()) {
            throw fail(where + " must be an array of integers, got " + snippet(node));
        }
        List<Long> values = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            JsonNode item = node.get(i);
            if (!item.isIntegralNumber() || !item.canConvertToLong() || item.longValue() < 0) {
                throw fail(where + "[" + i + "] must be an integer from 0 to " + Long.MAX_VALUE + ", got "
                        + snippet(item));
            }
            values.add(item.longValue());
        }
        return values;
    }

    private void checkCoverage(List<TensorInfo> sorted) throws SafetensorsException {
        long covered = 0;
        TensorInfo previous = null;
        for (TensorInfo t : sorted) {
            String where = "tensor " + quote(t.name()) + " data_offsets [" + t.begin() + ", " + t.end() + "]";
            if (t.begin() > covered) {
                throw fail(where + " leaves a hole: bytes [" + covered + ", " + t.begin()
                        + ") belong to no tensor");
            }
            if (t.begin() < covered) {
                throw fail(where + " overlaps tensor " + quote(previous.name()) + ", which ends at byte " + covered);
            }
            covered = t.end();
            previous = t;
        }
        if (covered != bufferSize) {
            throw fail("the data buffer holds " + bufferSize + " bytes but the tensors cover only the first "
                    + covered);
        }
    }

    private SafetensorsException fail(String message) {
        return new SafetensorsException(file + ": " + message);
    }

    /** Quotes an untrusted string for a message: JSON-escaped and cut after 200 characters. */
    static String quote(String s) {
        String cut = s.length() > MAX_QUOTED_CHARS ? s.substring(0, MAX_QUOTED_CHARS) + "..." : s;
        return '"' + new String(JsonStringEncoder.getInstance().quoteAsString(cut)) + '"';
    }

    private static String snippet(JsonNode node) {
        String text = node.toString();
        return text.length() > MAX_QUOTED_CHARS ? text.substring(0, MAX_QUOTED_CHARS) + "..." : text;
    }

    private static String hex(byte b) {
        return String.format(Locale.ROOT, "%02x", b & 0xff);
    }
}
