package dev.ema4j;

/**
 * How an EMA's decay changes over time: a pure function {@code decay(t)} of a clock {@code t = 0, 1, 2, …}
 * (optimizer steps or EMA updates, see {@link EmaClock}). An update with decay {@code β} computes
 * {@code ema ← β·ema + (1 − β)·params}.
 *
 * <table>
 * <caption>Schedules</caption>
 * <tr><th>schedule</th><th>{@code decay(t)}</th></tr>
 * <tr><td>{@link Constant}</td><td>{@code α}</td></tr>
 * <tr><td>{@link PaperWarmup} (Morales-Brotons et al. 2024)</td><td>{@code min(α, (t+1)/(t+10))}</td></tr>
 * <tr><td>{@link Timm} (timm's ModelEmaV3 warm-up, ema-pytorch's)</td><td>{@code min(α, 1 − (1 + t/γ)^−p)};
 *     with {@code min_decay} m and {@code update_after_step} u: {@code 0} for {@code t ≤ u}, else
 *     {@code max(m, min(α, 1 − (1 + (t−u)/γ)^−p))}</td></tr>
 * <tr><td>{@link BiasCorrected} (Adam-style)</td><td>{@code α·(1 − α^t)/(1 − α^(t+1))}</td></tr>
 * <tr><td>{@link PowerFunction} (EDM2, Karras et al. 2024)</td><td>{@code (t/(t+1))^(γ+1)}</td></tr>
 * </table>
 *
 * {@link BiasCorrected} makes an EMA started from the first parameters equal to Adam's bias-corrected average
 * {@code m_t/(1 − α^t)} of a zero-initialized EMA; {@link PowerFunction} averages the parameters of updates
 * {@code 1..t} with weights proportional to {@code i^(γ+1) − (i−1)^(γ+1) ≈ (γ+1)·i^γ}. Both start with decay 0,
 * so the first update copies the parameters.
 */
public sealed interface DecaySchedule {

    /** The decay at clock value {@code t ≥ 0}, in [0, 1]. */
    double decay(long t);

    /**
     * This schedule for an EMA updated once every {@code k} steps and clocked in updates: the target decay
     * {@code α} becomes {@code α^k}; the warm-up shape, in updates, is unchanged.
     */
    DecaySchedule compounded(int k);

    /** {@code decay(t) = α}. */
    static DecaySchedule constant(double decay) {
        return new Constant(decay);
    }

    /** {@code decay(t) = min(α, (t+1)/(t+10))}, the warm-up of the paper. */
    static DecaySchedule paperWarmup(double decay) {
        return new PaperWarmup(decay);
    }

    /** {@code decay(t) = min(α, 1 − (1 + t/γ)^−p)}, timm's warm-up (γ = warmup_gamma, p = warmup_power). */
    static DecaySchedule timm(double decay, double gamma, double power) {
        return new Timm(decay, gamma, power, 0, 0);
    }

    /**
     * timm's {@code ModelEmaV3.get_decay} in full (and ema-pytorch's {@code get_current_decay}): decay 0, a copy of the
     * parameters, for {@code t ≤ u}, then {@code max(m, min(α, 1 − (1 + (t − u)/γ)^−p))}, with {@code m} = min_decay
     * (ema-pytorch's min_value) and {@code u} = update_after_step.
     */
    static DecaySchedule timm(double decay, double gamma, double power, double minDecay, long updateAfterStep) {
        return new Timm(decay, gamma, power, minDecay, updateAfterStep);
    }

    /** {@code decay(t) = α·(1 − α^t)/(1 − α^(t+1))}: Adam-style bias correction. */
    static DecaySchedule biasCorrected(double decay) {
        return new BiasCorrected(decay);
    }

    /** {@code decay(t) = (t/(t+1))^(γ+1)}: EDM2's power-function EMA with exponent γ. */
    static DecaySchedule powerFunction(double gamma) {
        return new PowerFunction(gamma);
    }

    /**
     * The power-function EMA of relative width {@code σ_rel = sqrt((γ+1)/((γ+2)²(γ+3)))}, with γ solved
     * numerically (0.05 → γ ≈ 16.97, 0.10 → γ ≈ 6.94).
     *
     * @throws IllegalArgumentException unless {@code 0 < σ_rel < sqrt(1/12)} (γ = 0)
     */
    static DecaySchedule powerFunctionSigmaRel(double sigmaRel) {
        return new PowerFunction(PowerFunction.gammaForSigmaRel(sigmaRel));
    }

    /** Constant decay {@code α}. */
    record Constant(double decay) implements DecaySchedule {
        public Constant {
            checkDecay(decay);
        }

        @Override
        public double decay(long t) {
            return decay;
        }

        @Override
        public DecaySchedule compounded(int k) {
            return new Constant(Math.pow(decay, k));
        }
    }

    /** {@code min(α, (t+1)/(t+10))}. */
    record PaperWarmup(double decay) implements DecaySchedule {
        public PaperWarmup {
            checkDecay(decay);
        }

        @Override
        public double decay(long t) {
            return Math.min(decay, (t + 1.0) / (t + 10.0));
        }

        @Override
        public DecaySchedule compounded(int k) {
            return new PaperWarmup(Math.pow(decay, k));
        }
    }

    /** {@code 0} for {@code t ≤ u}, else {@code max(m, min(α, 1 − (1 + (t − u)/γ)^−p))}, {@code m ≤ α}. */
    record Timm(double decay, double gamma, double power, double minDecay, long updateAfterStep)
            implements DecaySchedule {
        public Timm {
            checkDecay(decay);
            checkPositive("gamma", gamma);
            checkPositive("power", power);
            if (!(minDecay >= 0 && minDecay <= decay)) {
                throw new IllegalArgumentException("minDecay is " + minDecay + "; must be in [0, decay = " + decay + "]");
            }
            if (updateAfterStep < 0) {
                throw new IllegalArgumentException("updateAfterStep is " + updateAfterStep + "; must be >= 0");
            }
        }

        @Override
        public double decay(long t) {
            long s = t - updateAfterStep;
            if (s <= 0) {
                return 0.0;
            }
            return Math.max(minDecay, Math.min(decay, 1.0 - Math.pow(1.0 + s / gamma, -power)));
        }

        @Override
        public DecaySchedule compounded(int k) {
            return new Timm(Math.pow(decay, k), gamma, power, Math.pow(minDecay, k), updateAfterStep);
        }
    }

    /** {@code α·(1 − α^t)/(1 − α^(t+1))}, {@code 0 < α < 1}. */
    record BiasCorrected(double decay) implements DecaySchedule {
        public BiasCorrected {
            if (!(decay > 0.0 && decay < 1.0)) {
                throw new IllegalArgumentException("decay is " + decay + "; bias correction needs a decay in (0, 1)");
            }
        }

        @Override
        public double decay(long t) {
            // 1 − α^n computed as −expm1(n·ln α) keeps precision when α is close to 1
            double lnA = Math.log(decay);
            return decay * -Math.expm1(t * lnA) / -Math.expm1((t + 1) * lnA);
        }

        @Override
        public DecaySchedule compounded(int k) {
            return new BiasCorrected(Math.pow(decay, k));
        }
    }

    /** {@code (t/(t+1))^(γ+1)}, {@code γ ≥ 0}. */
    record PowerFunction(double gamma) implements DecaySchedule {
        public PowerFunction {
            if (!(gamma >= 0 && gamma < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("gamma is " + gamma + "; must be finite and >= 0");
            }
        }

        @Override
        public double decay(long t) {
            return Math.pow(t / (t + 1.0), gamma + 1.0);
        }

        /** The profile is the same in steps and in updates. */
        @Override
        public DecaySchedule compounded(int k) {
            return this;
        }

        /** {@code sqrt((γ+1)/((γ+2)²(γ+3)))}. */
        public double sigmaRel() {
            return Math.sqrt((gamma + 1) / ((gamma + 2) * (gamma + 2) * (gamma + 3)));
        }

        static double gammaForSigmaRel(double sigmaRel) {
            double max = new PowerFunction(0).sigmaRel();
            if (!(sigmaRel > 0 && sigmaRel < max)) {
                throw new IllegalArgumentException("sigmaRel is " + sigmaRel + "; must be in (0, " + max + ")");
            }
            double lo = 0;
            double hi = 1;
            while (new PowerFunction(hi).sigmaRel() > sigmaRel) {
                hi *= 2;
            }
            for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
                double mid = (lo + hi) / 2;
                if (new PowerFunction(mid).sigmaRel() > sigmaRel) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return (lo + hi) / 2;
        }
    }

    private static void checkDecay(double decay) {
        if (!(decay >= 0.0 && decay <= 1.0)) {
            throw new IllegalArgumentException("decay is " + decay + "; must be in [0, 1]");
        }
    }

    private static void checkPositive(String name, double value) {
        if (!(value > 0 && value < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(name + " is " + value + "; must be finite and > 0");
        }
    }
}
