package dev.ema4j.study.report;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.List;
import java.util.function.DoubleFunction;
import java.util.function.Function;

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

    /** The direction of the paper's claim for a paired difference (EMA − baseline). */
    enum Expect {
        /** The claim is that the difference is positive (e.g. the EMA is more accurate). */
        ABOVE_0("> 0"),
        /** The claim is that the difference is negative (e.g. the EMA's calibration error is lower). */
        BELOW_0("< 0");

        private final String text;

        Expect(String text) {
            this.text = text;
        }
    }

    /** The rule of {@link #paired}, for a claim's rule text. */
    static final String PAIRED_RULE = "per-seed paired differences, mean ± std and the 95% Student-t interval of the "
            + "mean; reproduced if the interval excludes 0 in the paper's direction, not reproduced if it excludes 0 "
            + "the other way, else inconclusive; one seed is always inconclusive";

    /**
     * The verdict on per-seed paired differences ({@link #PAIRED_RULE}).
     *
     * @param what the difference, for the reason (e.g. "EMA − SGD test accuracy")
     * @param unit formats a difference (e.g. {@link Fmt#pp})
     */
    static Verdict paired(Claim claim, String ours, String what, Expect expect, DoubleFunction<String> unit,
                          double... differences) {
        return judge(claim, ours, what, unit, differences, p -> {
            boolean inDirection = expect == Expect.ABOVE_0 ? p.above0() : p.below0();
            boolean against = expect == Expect.ABOVE_0 ? p.below0() : p.above0();
            return inDirection ? new Judged(Outcome.REPRODUCED, "excludes 0, " + expect.text)
                    : against ? new Judged(Outcome.NOT_REPRODUCED, "excludes 0 the other way")
                    : new Judged(Outcome.INCONCLUSIVE, "contains 0");
        });
    }

    /** The rule of {@link #within}, for a claim's rule text. */
    static String withinRule(String margin) {
        return "per-seed paired differences and the 95% Student-t interval of their mean; reproduced if the interval "
                + "lies inside ±" + margin + " (equivalent within that margin), not reproduced if it lies entirely "
                + "outside it, else inconclusive; one seed is always inconclusive";
    }

    /**
     * The verdict that two things are equivalent: per-seed differences whose 95% interval lies inside
     * {@code ±margin} ({@link #withinRule}).
     */
    static Verdict within(Claim claim, String ours, String what, double margin, DoubleFunction<String> unit,
                          double... differences) {
        String band = "±" + unit.apply(margin).replace("+", "");
        return judge(claim, ours, what, unit, differences, p -> p.lo() > -margin && p.hi() < margin
                ? new Judged(Outcome.REPRODUCED, "inside " + band)
                : p.lo() >= margin || p.hi() <= -margin ? new Judged(Outcome.NOT_REPRODUCED, "outside " + band)
                : new Judged(Outcome.INCONCLUSIVE, "overlaps the edge of " + band));
    }

    /** The rule of {@link #atLeast}, for a claim's rule text. */
    static String atLeastRule(String margin) {
        return "per-seed paired differences and the 95% Student-t interval of their mean; reproduced (matches or "
                + "beats) if the interval lies above −" + margin + ", not reproduced if it lies entirely below −"
                + margin + ", else inconclusive; one seed is always inconclusive";
    }

    /**
     * The verdict that something matches or beats a baseline: per-seed differences (it − baseline) whose 95% interval
     * lies above {@code −margin} ({@link #atLeastRule}); the reason says "beats" when the interval is above 0.
     */
    static Verdict atLeast(Claim claim, String ours, String what, double margin, DoubleFunction<String> unit,
                           double... differences) {
        String edge = unit.apply(-margin);
        return judge(claim, ours, what, unit, differences, p -> p.lo() > 0
                ? new Judged(Outcome.REPRODUCED, "above 0: beats")
                : p.lo() > -margin ? new Judged(Outcome.REPRODUCED, "above " + edge + ": matches")
                : p.hi() < -margin ? new Judged(Outcome.NOT_REPRODUCED, "below " + edge)
                : new Judged(Outcome.INCONCLUSIVE, "reaches below " + edge));
    }

    /** An outcome and why, from an interval. */
    private record Judged(Outcome outcome, String why) {
    }

    /** Inconclusive with one seed; else {@code rule}'s outcome on the 95% interval of the differences. */
    private static Verdict judge(Claim claim, String ours, String what, DoubleFunction<String> unit,
                                 double[] differences, Function<Paired, Judged> rule) {
        Paired p = Paired.of(differences);
        if (p.n() < 2) {
            return of(claim, ours, Outcome.INCONCLUSIVE, what + " " + unit.apply(p.mean())
                    + " on one seed: no interval, so no verdict");
        }
        Judged j = rule.apply(p);
        return of(claim, ours, j.outcome(), describe(p, what, unit) + ": " + j.why());
    }

    /** "what mean ± std, 95% interval [lo, hi], n seeds". */
    private static String describe(Paired p, String what, DoubleFunction<String> unit) {
        return what + " " + unit.apply(p.mean()) + " ± " + unit.apply(p.std()).replace("+", "") + ", 95% interval ["
                + unit.apply(p.lo()) + ", " + unit.apply(p.hi()) + "], " + p.n() + " seeds";
    }

    /** The verdict as printed: the outcome, and the missing cells if any. */
    String label() {
        return missingCells.isEmpty() ? outcome.label()
                : outcome.label() + " (missing cells: " + String.join(", ", missingCells) + ")";
    }
}
