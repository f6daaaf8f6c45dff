package dev.ema4j.metrics;

import dev.ema4j.metrics.ReliabilityDiagram.Bin;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** How {@link Calibration} groups N samples into B bins by their top-1 confidence. */
public enum Binning {

    /**
     * Bin b covers confidences {@code [b/B, (b+1)/B)}; a confidence of exactly 1 goes to the last bin. Bins may be
     * empty.
     */
    EQUAL_WIDTH {
        @Override
        List<Bin> bin(float[] confidence, boolean[] correct, int bins) {
            int[] count = new int[bins];
            int[] hits = new int[bins];
            double[] sum = new double[bins];
            for (int i = 0; i < confidence.length; i++) {
                int b = Math.min((int) (confidence[i] * (double) bins), bins - 1);
                count[b]++;
                sum[b] += confidence[i];
                hits[b] += correct[i] ? 1 : 0;
            }
            List<Bin> out = new ArrayList<>(bins);
            for (int b = 0; b < bins; b++) {
                out.add(Bin.of((double) b / bins, (double) (b + 1) / bins, count[b], sum[b], hits[b]));
            }
            return out;
        }
    },

    /**
     * The samples, sorted by confidence with ties in sample-index order, are cut in that order into B runs: bin b
     * gets sorted positions {@code [⌊b·N/B⌋, ⌊(b+1)·N/B⌋)}, so bin counts differ by at most 1 (and bins are empty
     * only when N &lt; B). A bin's bounds are its smallest and largest confidence.
     */
    EQUAL_MASS {
        @Override
        List<Bin> bin(float[] confidence, boolean[] correct, int bins) {
            int n = confidence.length;
            // NOTE: [mass-sort-key] a confidence is a float in [0, 1], whose bit pattern orders like its value
            // (a −0 has the sign bit and sorts first), so (bits << 32 | index) sorts by confidence, then by sample
            // index, without boxing.
            long[] key = new long[n];
            for (int i = 0; i < n; i++) {
                key[i] = (long) Float.floatToIntBits(confidence[i]) << 32 | i;
            }
            Arrays.sort(key);
            List<Bin> out = new ArrayList<>(bins);
            for (int b = 0; b < bins; b++) {
                int from = (int) ((long) b * n / bins);
                int to = (int) ((long) (b + 1) * n / bins);
                double sum = 0;
                int hits = 0;
                for (int k = from; k < to; k++) {
                    int i = (int) key[k];
                    sum += confidence[i];
                    hits += correct[i] ? 1 : 0;
                }
                double lower = from < to ? confidence[(int) key[from]] : Double.NaN;
                double upper = from < to ? confidence[(int) key[to - 1]] : Double.NaN;
                out.add(Bin.of(lower, upper, to - from, sum, hits));
            }
            return out;
        }
    };

    /** The B bins of samples with these top-1 confidences and correctness, in increasing confidence. */
    abstract List<Bin> bin(float[] confidence, boolean[] correct, int bins);
}
