package dev.ema4j.io;

import java.io.IOException;

/**
 * Thrown when a file violates the safetensors format. The message names the file, the offending field
 * and its values.
 */
public class SafetensorsException extends IOException {

    /**
     * Creates an exception with the given message.
     *
     * @param message the description, naming file, field and values
     */
    public SafetensorsException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the given message and cause.
     *
     * @param message the description, naming file, field and values
     * @param cause the underlying error
     */
    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
