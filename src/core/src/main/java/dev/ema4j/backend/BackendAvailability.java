package dev.ema4j.backend;

/**
 * Whether a backend can run here.
 *
 * @param available whether it can be opened
 * @param reason why it is unavailable, or what it would run on
 */
public record BackendAvailability(boolean available, String reason) {
}
