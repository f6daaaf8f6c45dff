package dev.ema4j.study.report;

import java.util.Locale;

/** Number formatting of the report, locale-independent. */
final class Fmt {

    private Fmt() {
    }

    static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }

    /** A fraction in percent: {@code 0.9123 → "91.23"}. */
    static String pct(double fraction) {
        return f("%.2f", 100 * fraction);
    }

    /** A difference of fractions in percentage points, signed: {@code 0.0065 → "+0.65 pp"}. */
    static String pp(double difference) {
        return f("%+.2f pp", 100 * difference);
    }

    /** A decay as written in the specs: {@code 0.968}. */
    static String decay(double decay) {
        return Double.toString(decay);
    }
}
