package dev.ema4j.study.report;

import java.util.ArrayList;
import java.util.List;

/** A section's output: its Markdown body (text, tables, plot links), its tables and its verdicts. */
final class Rendered {

    private final StringBuilder markdown = new StringBuilder();
    private final List<Table> tables = new ArrayList<>();
    private final List<Verdict> verdicts = new ArrayList<>();

    /** Appends a paragraph. */
    Rendered text(String paragraph) {
        markdown.append(paragraph).append("\n\n");
        return this;
    }

    /** Appends a table under its title. */
    Rendered table(Table t) {
        markdown.append("**").append(t.title()).append("**\n\n").append(t.markdown()).append('\n');
        tables.add(t);
        return this;
    }

    /** Appends a link to {@code plots/<file>}. */
    Rendered plot(String file, String caption) {
        markdown.append("![").append(caption).append("](plots/").append(file).append(")\n\n");
        return this;
    }

    Rendered verdict(Verdict v) {
        verdicts.add(v);
        return this;
    }

    String markdown() {
        return markdown.toString();
    }

    List<Table> tables() {
        return tables;
    }

    List<Verdict> verdicts() {
        return verdicts;
    }
}
