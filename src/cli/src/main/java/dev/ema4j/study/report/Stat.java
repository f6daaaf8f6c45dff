package dev.ema4j.study.report;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.util.Locale;

/**
 * A number measured on one or more seeds (or seed pairs): printed as {@code mean ± std} when there are several
 * values, as the value alone otherwise.
 *
 * @param mean the mean of the values
 * @param std their sample standard deviation (n − 1 in the denominator), 0 for one value
 * @param n how many values
 * @param decimals decimals printed
 */
record Stat(double mean, double std, int n, @JsonIgnore int decimals) {

    /** The mean and standard deviation of {@code values}, printed with {@code decimals} decimals. */
    static Stat of(int decimals, double... values) {
        return new Stat(mean(values), std(values), values.length, decimals);
    }

    /** {@link #of} the fractions in percent, two decimals. */
    static Stat percent(double... fractions) {
        double[] p = new double[fractions.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = 100 * fractions[i];
        }
        return of(2, p);
    }

    /** {@code a[i] − b[i]}. */
    static double[] difference(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = a[i] - b[i];
        }
        return d;
    }

    static double mean(double... values) {
        double sum = 0;
        for (double v : values) {
            sum += v;
        }
        return sum / values.length;
    }

    /** Sample standard deviation; 0 for fewer than two values. */
    static double std(double... values) {
        if (values.length < 2) {
            return 0;
        }
        double m = mean(values);
        double sum = 0;
        for (double v : values) {
            sum += (v - m) * (v - m);
        }
        return Math.sqrt(sum / (values.length - 1));
    }

    @Override
    public String toString() {
        String f = "%." + decimals + "f";
        return n > 1 ? String.format(Locale.ROOT, f + " ± " + f, mean, std) : String.format(Locale.ROOT, f, mean);
    }
}
