package dev.ema4j.posthoc;

import dev.ema4j.DecaySchedule;

/**
 * An averaging profile: the weight {@code p(τ)} an EMA read at time {@code t} gives to the parameters of time
 * {@code τ ∈ [0, t]}, normalized to {@code ∫ p = 1}. Time counts the snapshots' clock (optimizer steps by default,
 * see {@link Snapshot#t()}). An EMA read at {@code t} is {@code ∫ p(τ)·x(τ) dτ} exactly when {@code x(τ)} is the
 * parameters after the update that follows {@code τ} (a step function): the tracked EMAs below are such averages
 * with no approximation.
 *
 * <table>
 * <caption>Profiles</caption>
 * <tr><th>profile</th><th>{@code p(τ)} on {@code [0, t]}</th><th>tracked by</th></tr>
 * <tr><td>{@link Power}</td><td>{@code (γ+1)·τ^γ / t^(γ+1)}</td>
 *     <td>{@link DecaySchedule#powerFunction(double)}</td></tr>
 * <tr><td>{@link Exponential}</td><td>{@code λ·e^(−λ(t−τ)) / (1 − e^(−λt))}, {@code λ = −ln α}</td>
 *     <td>{@link DecaySchedule#biasCorrected(double)} with decay {@code α} per unit of time; a constant decay
 *     from a copy of the initial weights differs from it by {@code α^t·(x_0 − average)}</td></tr>
 * </table>
 *
 * Inner products {@code ⟨p_a, p_b⟩ = ∫ p_a·p_b} are what {@link SnapshotSet#fit} needs: for two power profiles,
 * {@code t_a ≤ t_b}, {@code (γa+1)(γb+1)·(t_a/t_b)^γb / ((γa+γb+1)·t_b)} (Karras et al. 2024, EDM2); the others
 * are in {@code ProfileProducts}.
 */
public sealed interface Profile {

    /** The time at which the average is read, {@code > 0}. */
    double t();

    /** The profile's standard deviation over {@code t}: how wide an average it is, relative to the run so far. */
    double sigmaRel();

    /** {@code ∫ p·q} over {@code [0, ∞)}. */
    default double inner(Profile other) {
        return ProfileProducts.inner(this, other);
    }

    /** The power-function profile of exponent {@code γ} read at {@code t}. */
    static Power power(double gamma, double t) {
        return new Power(gamma, t);
    }

    /**
     * The power-function profile of relative width {@code σ_rel} (the profile's standard deviation over {@code t})
     * read at {@code t}; {@code γ} as in {@link DecaySchedule#powerFunctionSigmaRel}.
     */
    static Power sigmaRel(double sigmaRel, double t) {
        return new Power(((DecaySchedule.PowerFunction) DecaySchedule.powerFunctionSigmaRel(sigmaRel)).gamma(), t);
    }

    /** The bias-corrected exponential profile of decay {@code α} per unit of time, read at {@code t}. */
    static Exponential exponential(double decay, double t) {
        return new Exponential(decay, t);
    }

    /** {@code (γ+1)·τ^γ / t^(γ+1)}, {@code γ ≥ 0}. */
    record Power(double gamma, double t) implements Profile {
        public Power {
            if (!(gamma >= 0 && gamma < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("gamma is " + gamma + "; must be finite and >= 0");
            }
            checkTime(t);
        }

        /** {@code sqrt((γ+1)/((γ+2)²(γ+3)))}. */
        @Override
        public double sigmaRel() {
            return new DecaySchedule.PowerFunction(gamma).sigmaRel();
        }

        @Override
        public String toString() {
            return String.format("power(σ_rel %.4f, γ %.3f) at t = %s", sigmaRel(), gamma, Snapshot.formatTime(t));
        }
    }

    /** {@code λ·e^(−λ(t−τ)) / (1 − e^(−λt))}, {@code λ = −ln α}, {@code 0 < α < 1}. */
    record Exponential(double decay, double t) implements Profile {
        public Exponential {
            if (!(decay > 0 && decay < 1)) {
                throw new IllegalArgumentException("decay is " + decay + "; must be in (0, 1)");
            }
            checkTime(t);
        }

        /** {@code λ = −ln α}. */
        public double rate() {
            return -Math.log(decay);
        }

        /**
         * The profile's standard deviation over {@code t}, comparable with {@link Power#sigmaRel()}: about
         * {@code sqrt(α)/((1 − α)·t)} when the window is short against {@code t}. Loses precision when
         * {@code λt < 1e-3} (an average over nearly uniform weights).
         */
        @Override
        public double sigmaRel() {
            double l = rate();
            double q = Math.exp(-l * t);
            double n = -Math.expm1(-l * t);
            double mean = 1 / l - t * q / n;
            double square = 2 / (l * l) - (t * t + 2 * t / l) * q / n;
            return Math.sqrt(Math.max(0, square - mean * mean)) / t;
        }

        @Override
        public String toString() {
            return "exponential(decay " + decay + ") at t = " + Snapshot.formatTime(t);
        }
    }

    private static void checkTime(double t) {
        if (!(t > 0 && t < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("t is " + t + "; must be finite and > 0");
        }
    }
}
