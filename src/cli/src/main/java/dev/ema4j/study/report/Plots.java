package dev.ema4j.study.report;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.knowm.xchart.BitmapEncoder.BitmapFormat;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.AxesChartStyler;
import org.knowm.xchart.style.Styler.LegendPosition;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** PNG charts of the report (XChart, 800×500, white background, legend outside the plot on the right). */
public final class Plots {

    static final int WIDTH = 800;
    static final int HEIGHT = 500;

    private Plots() {
    }

    /**
     * One line of a line chart.
     *
     * @param name its legend entry
     * @param x abscissae
     * @param y ordinates, as many
     * @param err error bars, ± this much at each point (the standard deviation over seeds), or null
     * @param reference drawn as a grey dashed line without markers (e.g. perfect calibration)
     */
    public record Line(String name, double[] x, double[] y, double[] err, boolean reference) {

        public Line(String name, double[] x, double[] y) {
            this(name, x, y, null, false);
        }

        public Line(String name, double[] x, double[] y, double[] err) {
            this(name, x, y, err, false);
        }

        /** A grey dashed reference line. */
        public static Line reference(String name, double[] x, double[] y) {
            return new Line(name, x, y, null, true);
        }
    }

    /** A line chart with markers of {@code lines}; a logarithmic x axis if {@code logX}. */
    public static void lines(Path file, String title, String xTitle, String yTitle, boolean logX, List<Line> lines)
            throws IOException {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xTitle)
                .yAxisTitle(yTitle).build();
        style(chart.getStyler());
        chart.getStyler().setXAxisLogarithmic(logX);
        chart.getStyler().setXAxisLogarithmicDecadeOnly(false);
        for (Line l : lines) {
            XYSeries s = l.err() == null ? chart.addSeries(l.name(), l.x(), l.y())
                    : chart.addSeries(l.name(), l.x(), l.y(), l.err());
            if (l.reference()) {
                s.setMarker(SeriesMarkers.NONE);
                s.setLineColor(Color.GRAY);
                s.setLineStyle(SeriesLines.DASH_DASH);
            }
        }
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapFormat.PNG);
    }

    /** A bar chart, one bar per category, with error bars {@code errors}. */
    static void bars(Path file, String title, String yTitle, List<String> categories, double[] values,
                     double[] errors) throws IOException {
        CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title).yAxisTitle(yTitle)
                .build();
        style(chart.getStyler());
        chart.getStyler().setLegendVisible(false);
        chart.addSeries(yTitle, categories, boxed(values), boxed(errors));
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapFormat.PNG);
    }

    private static void style(AxesChartStyler s) {
        s.setYAxisDecimalPattern("0.##");
        s.setXAxisDecimalPattern("#,##0.##");
        s.setXAxisTickMarkSpacingHint(90);
        s.setYAxisTickMarkSpacingHint(60);
        s.setChartBackgroundColor(Color.WHITE);
        s.setLegendPosition(LegendPosition.OutsideE);
        s.setMarkerSize(6);
    }

    private static List<Double> boxed(double[] values) {
        return Arrays.stream(values).boxed().toList();
    }
}
