package dev.ema4j.nn;

/** A training step produced a NaN or infinite loss; it stopped before updating any parameter. */
public class NonFiniteLossException extends ArithmeticException {

    private static final long serialVersionUID = 1L;

    public NonFiniteLossException(String message) {
        super(message);
    }
}
