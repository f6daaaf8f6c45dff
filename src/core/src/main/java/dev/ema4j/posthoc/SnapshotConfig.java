package dev.ema4j.posthoc;

import dev.ema4j.io.TensorDType;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where and how often {@link EmaSnapshotter} saves the power-function EMAs.
 *
 * <pre>{@code
 * SnapshotConfig.of(Path.of("run/snapshots"))                 // every 256 steps, at most 256 kept, fp32
 * SnapshotConfig.of(dir).withEvery(1000).withKeep(100).withDType(TensorDType.BF16)
 * }</pre>
 *
 * @param directory created if missing; holds nothing but snapshots
 * @param every a snapshot after every {@code every}-th optimizer step (a multiple of the EMA's update period)
 * @param keep the most snapshot times kept: when a new one would exceed it, the period doubles and the times that
 *     are not multiples of it are deleted, so the kept ones stay spread evenly over the run
 *     ({@link EmaSnapshotter})
 * @param dtype F32, or BF16/F16 (half the disk and read time; rounding error at most 2^-9 ≈ 0.2% or 2^-12 ≈ 0.02%
 *     relative, which the rebuild's weights amplify by at most their
 *     {@linkplain Combination#amplification() absolute sum})
 */
public record SnapshotConfig(Path directory, int every, int keep, TensorDType dtype) {

    /** Default snapshot period in optimizer steps. */
    public static final int DEFAULT_EVERY = 256;

    /** Default number of snapshot times kept. */
    public static final int DEFAULT_KEEP = 256;

    public SnapshotConfig {
        Objects.requireNonNull(directory, "directory");
        Objects.requireNonNull(dtype, "dtype");
        if (every < 1) {
            throw new IllegalArgumentException("every is " + every + "; must be >= 1");
        }
        if (keep < 2) {
            throw new IllegalArgumentException("keep is " + keep + "; must be >= 2 (a rebuild combines several)");
        }
        if (dtype != TensorDType.F32 && dtype != TensorDType.BF16 && dtype != TensorDType.F16) {
            throw new IllegalArgumentException("dtype is " + dtype + "; must be F32, BF16 or F16");
        }
    }

    /** Snapshots in {@code directory} every {@link #DEFAULT_EVERY} steps, {@link #DEFAULT_KEEP} kept, in fp32. */
    public static SnapshotConfig of(Path directory) {
        return new SnapshotConfig(directory, DEFAULT_EVERY, DEFAULT_KEEP, TensorDType.F32);
    }

    /** This configuration with a snapshot every {@code steps} optimizer steps. */
    public SnapshotConfig withEvery(int steps) {
        return new SnapshotConfig(directory, steps, keep, dtype);
    }

    /** This configuration keeping at most {@code count} snapshot times. */
    public SnapshotConfig withKeep(int count) {
        return new SnapshotConfig(directory, every, count, dtype);
    }

    /** This configuration storing values as {@code type}. */
    public SnapshotConfig withDType(TensorDType type) {
        return new SnapshotConfig(directory, every, keep, type);
    }
}
