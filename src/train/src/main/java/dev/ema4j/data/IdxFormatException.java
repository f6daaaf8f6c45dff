package dev.ema4j.data;

import java.io.IOException;

/**
 * Thrown when a file violates the IDX format or does not fit the dataset it should hold. The message names
 * the file, the problem and the values involved.
 */
public class IdxFormatException extends IOException {

    /**
     * Creates an exception with the given message.
     *
     * @param message the description, naming file, problem and values
     */
    public IdxFormatException(String message) {
        super(message);
    }

    /**
     * Creates an exception with the given message and cause.
     *
     * @param message the description, naming file, problem and values
     * @param cause the underlying error
     */
    public IdxFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
