package dev.ema4j.study.report;

/**
 * A claim of the paper that an experiment tests.
 *
 * @param text the claim
 * @param paper the paper's evidence for it (its numbers)
 * @param rule how our verdict is computed, with its threshold
 */
record Claim(String text, String paper, String rule) {
}
