package dev.ema4j.backend.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import java.nio.charset.StandardCharsets;
import jcuda.CudaException;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;

/** Probes CUDA once per JVM: loads JCuda's natives, calls {@code cuInit}, counts devices, checks the driver. */
public final class CudaProbe {

    /** The packaged PTX is ISA 9.0 (nvcc 13), which needs a CUDA 13 driver (R580 or newer). */
    static final int MIN_DRIVER_VERSION = 13000;

    private CudaProbe() {
    }

    /** The cached result of the probe. */
    public static CudaAvailability availability() {
        return Holder.AVAILABILITY;
    }

    private static final class Holder {
        static final CudaAvailability AVAILABILITY = probe();
    }

    private static CudaAvailability probe() {
        int driver = 0;
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] value = new int[1];
            cuDriverGetVersion(value);
            driver = value[0];
            cuDeviceGetCount(value);
            int devices = value[0];
            if (devices == 0) {
                return new CudaAvailability(false, 0, driver, "cuInit worked but no CUDA device is visible");
            }
            if (driver < MIN_DRIVER_VERSION) {
                return new CudaAvailability(false, devices, driver, "the driver supports CUDA " + version(driver)
                        + "; ema4j's PTX needs CUDA " + version(MIN_DRIVER_VERSION) + " (driver R580 or newer)");
            }
            return new CudaAvailability(true, devices, driver,
                    devices + " device(s), device 0: " + deviceName(0) + ", driver CUDA " + version(driver));
        } catch (LinkageError | CudaException e) {
            return new CudaAvailability(false, 0, driver, summary(e));
        }
    }

    /**
     * The line of a JCuda loading error that names the cause (JCuda's message holds whole nested stack traces):
     * the last nested {@code UnsatisfiedLinkError}, else the first line.
     */
    public static String summary(Throwable e) {
        String message = String.valueOf(e.getMessage());
        String line = message.lines().findFirst().orElse("");
        for (String l : message.lines().toList()) {
            if (l.startsWith("java.lang.UnsatisfiedLinkError: ")) {
                line = l.substring("java.lang.".length());
            }
        }
        if (!line.startsWith(e.getClass().getSimpleName())) {
            line = e.getClass().getSimpleName() + ": " + line;
        }
        return line.length() > 400 ? line.substring(0, 400) + "..." : line;
    }

    static String deviceName(int ordinal) {
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        int n = 0;
        while (n < name.length && name[n] != 0) {
            n++;
        }
        return new String(name, 0, n, StandardCharsets.UTF_8);
    }

    static String version(int v) {
        return v / 1000 + "." + (v % 1000) / 10;
    }
}
