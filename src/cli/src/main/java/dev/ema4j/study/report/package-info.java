/**
 * The study's report: reads the published cells of a study directory ({@code OUT/cells}), analyses each experiment
 * against the paper's claims and writes {@code OUT/report.md}, {@code OUT/plots/*.png}, {@code OUT/metrics.csv} and
 * {@code OUT/results.json}. Entry point: {@link dev.ema4j.study.report.StudyReport#write}. One {@code Section} per
 * experiment; a cell that is absent or was made from another spec makes the experiments that read it inconclusive.
 */
package dev.ema4j.study.report;
