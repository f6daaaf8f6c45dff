package dev.ema4j.study.report;

import java.util.ArrayList;
import java.util.List;

/**
 * A titled table, printed as Markdown and written to {@code results.json} as is. Cells are strings or
 * {@link Stat}s; columns holding a {@link Stat} are right-aligned.
 *
 * @param title a caption
 * @param columns the column headings, with units
 * @param rows the rows, each with one cell per column (filled by {@link #row})
 */
record Table(String title, List<String> columns, List<List<Object>> rows) {

    static Table of(String title, String... columns) {
        return new Table(title, List.of(columns), new ArrayList<>());
    }

    /** Appends a row; returns this table. */
    Table row(Object... cells) {
        if (cells.length != columns.size()) {
            throw new IllegalArgumentException("row of " + cells.length + " cells for " + columns.size()
                    + " columns " + columns);
        }
        rows.add(List.of(cells));
        return this;
    }

    String markdown() {
        StringBuilder sb = new StringBuilder("|");
        columns.forEach(c -> sb.append(' ').append(escape(c)).append(" |"));
        sb.append("\n|");
        for (int c = 0; c < columns.size(); c++) {
            int column = c;
            sb.append(rows.stream().anyMatch(r -> r.get(column) instanceof Stat) ? "---:|" : "---|");
        }
        sb.append('\n');
        for (List<Object> r : rows) {
            sb.append('|');
            r.forEach(cell -> sb.append(' ').append(escape(String.valueOf(cell))).append(" |"));
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String escape(String s) {
        return s.replace("|", "\\|").replace("\n", " ");
    }
}
