package dev.ema4j.study.report;

import java.io.IOException;
import java.util.List;

/** The analysis of one experiment of {@link dev.ema4j.study.StudyPlan#EXPERIMENTS} (or the demo). */
interface Section {

    /** The experiment's name, as in {@link dev.ema4j.study.StudyPlan#groups}. */
    String name();

    /** A heading. */
    String title();

    /** The claims it tests, in order; {@link #render} returns one verdict for each. */
    List<Claim> claims();

    /** Analyses the experiment's groups (all complete), writes its plots and returns its text, tables, verdicts. */
    Rendered render(Inputs in) throws IOException;
}
