package dev.ema4j.study.report;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.List;

/**
 * Our verdict on a claim.
 *
 * @param claim the claim
 * @param ours our number(s)
 * @param outcome reproduced, not reproduced or inconclusive
 * @param reason one line: why
 * @param missingCells the cells whose absence made the verdict inconclusive; empty when the claim was analysed
 */
record Verdict(Claim claim, String ours, Outcome outcome, String reason, List<String> missingCells) {

    enum Outcome {
        REPRODUCED("reproduced"), NOT_REPRODUCED("not reproduced"), INCONCLUSIVE("inconclusive");

        private final String label;

        Outcome(String label) {
            this.label = label;
        }

        @JsonValue
        String label() {
            return label;
        }
    }

    static Verdict of(Claim claim, String ours, Outcome outcome, String reason) {
        return new Verdict(claim, ours, outcome, reason, List.of());
    }

    /** Inconclusive because {@code keys} are missing: nothing was analysed. */
    static Verdict missing(Claim claim, List<String> keys) {
        return new Verdict(claim, "—", Outcome.INCONCLUSIVE, "cells missing or made from another spec", keys);
    }

    /**
     * A "better" verdict on per-seed gains (in fractions): reproduced if the mean gain exceeds one standard error
     * of the gains (0 with one seed), not reproduced if it is ≤ 0, inconclusive in between.
     */
    static Verdict gain(Claim claim, String ours, double... gains) {
        double mean = Stat.mean(gains);
        double se = Stat.std(gains) / Math.sqrt(gains.length);
        String seeds = gains.length == 1 ? "one seed" : gains.length + " seeds";
        if (mean <= 0) {
            return of(claim, ours, Outcome.NOT_REPRODUCED, "mean gain " + Fmt.pp(mean) + " ≤ 0 (" + seeds + ")");
        }
        if (mean <= se) {
            return of(claim, ours, Outcome.INCONCLUSIVE, "mean gain " + Fmt.pp(mean) + " within one standard error ("
                    + Fmt.pp(se) + ", " + seeds + ")");
        }
        return of(claim, ours, Outcome.REPRODUCED, "mean gain " + Fmt.pp(mean) + " > one standard error ("
                + Fmt.pp(se) + ", " + seeds + ")");
    }

    /** The verdict as printed: the outcome, and the missing cells if any. */
    String label() {
        return missingCells.isEmpty() ? outcome.label()
                : outcome.label() + " (missing cells: " + String.join(", ", missingCells) + ")";
    }
}
