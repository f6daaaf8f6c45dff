package dev.ema4j.posthoc;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.Test;

/** The profiles' inner products against their definitions, integrated numerically here. */
class ProfileProductsTest {

    /** The profile's density at τ, straight from its definition. */
    private static double density(Profile p, double tau) {
        if (tau < 0 || tau > p.t()) {
            return 0;
        }
        if (p instanceof Profile.Power w) {
            return (w.gamma() + 1) * Math.pow(tau, w.gamma()) / Math.pow(w.t(), w.gamma() + 1);
        }
        Profile.Exponential e = (Profile.Exponential) p;
        double l = e.rate();
        return l * Math.exp(-l * (e.t() - tau)) / (1 - Math.exp(-l * e.t()));
    }

    /** Composite Simpson's rule with {@code n} (even) intervals. */
    private static double simpson(DoubleUnaryOperator f, double lo, double hi, int n) {
        double h = (hi - lo) / n;
        double s = f.applyAsDouble(lo) + f.applyAsDouble(hi);
        for (int i = 1; i < n; i++) {
            s += (i % 2 == 1 ? 4 : 2) * f.applyAsDouble(lo + i * h);
        }
        return s * h / 3;
    }

    private static double numeric(Profile a, Profile b) {
        double m = Math.min(a.t(), b.t());
        return simpson(tau -> density(a, tau) * density(b, tau), 0, m, 400_000);
    }

    @Test
    void everyPairMatchesTheIntegralOfItsDefinitions() {
        Profile[] profiles = {
            Profile.power(16.97, 1000), Profile.power(6.94, 640), Profile.power(2, 1000), Profile.power(0, 300),
            Profile.exponential(0.99, 1000), Profile.exponential(0.999, 700), Profile.exponential(0.9, 50),
        };
        for (Profile a : profiles) {
            for (Profile b : profiles) {
                double expected = numeric(a, b);
                assertEquals(expected, a.inner(b), 1e-9 * expected + 1e-15, a + " · " + b);
                assertEquals(a.inner(b), b.inner(a), 1e-12 * expected, "symmetry " + a + " · " + b);
            }
        }
    }

    @Test
    void powerSelfProductIsClosedForm() {
        for (double gamma : new double[] {0, 0.5, 6.94, 16.97, 100}) {
            double t = 1234;
            assertEquals((gamma + 1) * (gamma + 1) / ((2 * gamma + 1) * t),
                    Profile.power(gamma, t).inner(Profile.power(gamma, t)), 1e-15);
        }
    }

    @Test
    void exponentialSelfProductIsClosedForm() {
        double l = -Math.log(0.998);
        double t = 5000;
        double q = Math.exp(-l * t);
        assertEquals(l * (1 + q) / (2 * (1 - q)), Profile.exponential(0.998, t).inner(Profile.exponential(0.998, t)),
                1e-15);
    }

    @Test
    void quadratureMatchesClosedFormsAtTheEndPoints() {
        for (double c : new double[] {1e-9, 0.3, 5, 80, 3000}) {
            assertEquals(-Math.expm1(-c) / c, ProfileProducts.decayingPower(0, c), 1e-14 / c, "gamma 0, c " + c);
            // γ = 2: ∫ (1−v)² e^(−cv) dv = 1/c − 2/c² + 2(1 − e^(−c))/c³
            double expected = 1 / c - 2 / (c * c) + 2 * -Math.expm1(-c) / (c * c * c);
            if (c > 1e-3) {
                assertEquals(expected, ProfileProducts.decayingPower(2, c), 1e-13 * Math.abs(expected), "c " + c);
            }
        }
        for (double gamma : new double[] {0.001, 0.5, 1, 16.97, 500}) {
            assertEquals(1 / (gamma + 1), ProfileProducts.decayingPower(gamma, 0), 1e-14, "gamma " + gamma);
        }
        // an algebraic end point: ∫ (1−v)^0.5 dv = 2/3 with c = 0; with c > 0 against Simpson on u = sqrt(1 − v)
        double c = 3;
        double substituted = simpson(u -> 2 * u * u * Math.exp(-c * (1 - u * u)), 0, 1, 200_000);
        assertEquals(substituted, ProfileProducts.decayingPower(0.5, c), 1e-13);
    }

    @Test
    void sigmaRelIsTheProfilesStandardDeviationOverT() {
        Profile[] profiles = {Profile.power(6.94, 800), Profile.exponential(0.99, 800), Profile.exponential(0.9999, 800)};
        for (Profile p : profiles) {
            double mean = simpson(tau -> tau * density(p, tau), 0, p.t(), 200_000);
            double square = simpson(tau -> tau * tau * density(p, tau), 0, p.t(), 200_000);
            double expected = Math.sqrt(square - mean * mean) / p.t();
            double actual = p.sigmaRel();
            assertEquals(expected, actual, 1e-7, p.toString());
        }
        assertEquals(0.10, Profile.sigmaRel(0.10, 5).sigmaRel(), 1e-12);
    }
}
