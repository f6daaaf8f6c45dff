package dev.ema4j.backend.cuda;

/**
 * Whether the CUDA backend can run here, and why not.
 *
 * @param available JCuda loaded, {@code cuInit} worked, a device exists and the driver runs ema4j's PTX
 * @param devices number of CUDA devices (0 when unknown)
 * @param driverVersion the driver's CUDA version as {@code 1000·major + 10·minor} (0 when unknown)
 * @param reason why it is unavailable, or a description of device 0 when available
 */
public record CudaAvailability(boolean available, int devices, int driverVersion, String reason) {
}
