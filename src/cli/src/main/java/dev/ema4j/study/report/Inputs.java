package dev.ema4j.study.report;

import java.nio.file.Path;
import java.util.Map;

/**
 * What a {@link Section} analyses: the complete groups of the study, and where its plots go.
 *
 * @param groups by name; a section only runs when every group it reads is here and complete
 * @param plots the directory of the PNGs ({@code OUT/plots}), linked from report.md as {@code plots/<file>}
 */
record Inputs(Map<String, Group> groups, Path plots) {

    Group group(String name) {
        Group g = groups.get(name);
        if (g == null) {
            throw new IllegalStateException("group " + name + " is not loaded");
        }
        return g;
    }
}
