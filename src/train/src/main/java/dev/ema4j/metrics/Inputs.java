package dev.ema4j.metrics;

import java.util.Objects;

/** Argument checks shared by the metrics, so every entry point rejects the same input with the same message. */
final class Inputs {

    private Inputs() {
    }

    /** Checks an unlabelled (N, C) probability array and returns N. */
    static int probabilities(String name, float[] probs, int classes) {
        int n = rows(name, probs, classes);
        for (int i = 0; i < probs.length; i++) {
            float p = probs[i];
            if (!(p >= 0f && p <= 1f)) {
                throw new IllegalArgumentException(name + "[" + i + "] is " + p + " (sample " + i / classes
                        + ", class " + i % classes + "); probabilities must be in [0, 1]");
            }
        }
        return n;
    }

    /** Checks a labelled (N, C) probability array and returns N. */
    static int probabilities(float[] probs, int classes, int[] labels) {
        Objects.requireNonNull(probs, "probs");
        labels(labels, probs.length, classes, "probs");
        return probabilities("probs", probs, classes);
    }

    /** Checks a labelled (N, C) array of finite logits and returns N. */
    static int logits(float[] logits, int classes, int[] labels) {
        Objects.requireNonNull(logits, "logits");
        labels(labels, logits.length, classes, "logits");
        return logits(logits, classes);
    }

    /** Checks an unlabelled (N, C) array of finite logits and returns N. */
    static int logits(float[] logits, int classes) {
        int n = rows("logits", logits, classes);
        for (int i = 0; i < logits.length; i++) {
            if (!Float.isFinite(logits[i])) {
                throw new IllegalArgumentException("logits[" + i + "] is " + logits[i] + " (sample " + i / classes
                        + ", class " + i % classes + "); logits must be finite");
            }
        }
        return n;
    }

    /** Checks that array {@code nameB} has as many values as array {@code nameA}. */
    static void sameLength(String nameA, int lengthA, String nameB, int lengthB) {
        if (lengthA != lengthB) {
            throw new IllegalArgumentException(nameB + " has " + lengthB + " values, expected " + nameA
                    + ".length (" + lengthA + ")");
        }
    }

    /** Checks a bin count. */
    static void bins(String name, int bins) {
        if (bins < 1) {
            throw new IllegalArgumentException(name + " is " + bins + ", expected >= 1");
        }
    }

    private static int rows(String name, float[] values, int classes) {
        Objects.requireNonNull(values, name);
        classes(classes);
        if (values.length == 0 || values.length % classes != 0) {
            throw new IllegalArgumentException(name + " has " + values.length
                    + " values, expected a positive multiple of classes (" + classes + ")");
        }
        return values.length / classes;
    }

    private static void classes(int classes) {
        if (classes < 2) {
            throw new IllegalArgumentException("classes is " + classes + ", expected >= 2");
        }
    }

    private static void labels(int[] labels, int valuesLength, int classes, String valuesName) {
        Objects.requireNonNull(labels, "labels");
        classes(classes);
        if (labels.length == 0) {
            throw new IllegalArgumentException("labels is empty");
        }
        if ((long) labels.length * classes != valuesLength) {
            throw new IllegalArgumentException(valuesName + " has " + valuesLength + " values, expected labels.length ("
                    + labels.length + ") x classes (" + classes + ")");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException("labels[" + i + "] is " + labels[i] + ", expected 0 <= label < classes ("
                        + classes + ")");
            }
        }
    }
}
