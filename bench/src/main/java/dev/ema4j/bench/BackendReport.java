package dev.ema4j.bench;

import dev.ema4j.backend.Backends;

/** Prints which backend {@link Backends#best()} picks and why, for device reports. */
public final class BackendReport {

    private BackendReport() {
    }

    public static void main(String[] args) {
        System.out.println("ema4j backend: " + Backends.explain());
    }
}
