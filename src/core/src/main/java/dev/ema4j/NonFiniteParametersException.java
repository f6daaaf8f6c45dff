package dev.ema4j;

/** Thrown by an update under {@link NonFinitePolicy#THROW} when a parameter is NaN or infinite; no shadow changed. */
public class NonFiniteParametersException extends ArithmeticException {

    private static final long serialVersionUID = 1L;

    public NonFiniteParametersException(String message) {
        super(message);
    }
}
