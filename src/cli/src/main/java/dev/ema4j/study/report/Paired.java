package dev.ema4j.study.report;

/**
 * Per-seed paired differences (the EMA's value minus the baseline's on the same seed, or a value minus a
 * threshold) and the 95% Student-t interval of their mean: {@code mean ± t(0.975, n − 1) · std / √n}.
 *
 * @param mean the mean difference
 * @param std the sample standard deviation of the differences (n − 1 in the denominator), 0 for one
 * @param n how many seeds
 * @param lo the interval's lower end ({@code NaN} for one seed: no interval)
 * @param hi the interval's upper end ({@code NaN} for one seed)
 */
record Paired(double mean, double std, int n, double lo, double hi) {

    /** t(0.975, df) for df = 1 … 30. */
    private static final double[] T975 = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042};

    private static final double Z975 = 1.959964;

    static Paired of(double... differences) {
        if (differences.length == 0) {
            throw new IllegalArgumentException("no differences: a paired interval needs at least one seed");
        }
        int n = differences.length;
        double mean = Stat.mean(differences);
        double std = Stat.std(differences);
        if (n < 2) {
            return new Paired(mean, std, n, Double.NaN, Double.NaN);
        }
        double half = t975(n - 1) * std / Math.sqrt(n);
        return new Paired(mean, std, n, mean - half, mean + half);
    }

    /**
     * The 97.5% quantile of Student's t with {@code df} degrees of freedom: tabulated to df = 30, beyond that the
     * Cornish–Fisher expansion in 1/df (within 0.001 of the exact value there).
     */
    static double t975(int df) {
        if (df < 1) {
            throw new IllegalArgumentException("degrees of freedom " + df + "; must be ≥ 1");
        }
        if (df <= T975.length) {
            return T975[df - 1];
        }
        double z = Z975;
        double z3 = z * z * z;
        double z5 = z3 * z * z;
        return z + (z3 + z) / (4.0 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96.0 * df * df);
    }

    /** Whether the interval exists (two seeds or more) and lies above {@code 0}. */
    boolean above0() {
        return n >= 2 && lo > 0;
    }

    /** Whether the interval exists and lies below {@code 0}. */
    boolean below0() {
        return n >= 2 && hi < 0;
    }
}
