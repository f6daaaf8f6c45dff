package dev.ema4j.io;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Builds raw safetensors bytes for tests, independently of {@link SafetensorsWriter}. */
final class TestFiles {

    private TestFiles() {}

    /** The 8-byte little-endian encoding of {@code value}. */
    static byte[] le64(long value) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array();
    }

    /** A file whose header is {@code headerJson} (UTF-8, unpadded) followed by {@code dataBytes} zero bytes. */
    static byte[] file(String headerJson, int dataBytes) {
        byte[] header = headerJson.getBytes(StandardCharsets.UTF_8);
        return concat(le64(header.length), header, new byte[dataBytes]);
    }

    /** A file with the given raw header bytes and no data. */
    static byte[] rawHeader(byte[] header) {
        return concat(le64(header.length), header);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
