package dev.ema4j.optim;

import java.util.List;

/** The learning rate as a pure function of the optimizer step {@code t = 0, 1, 2, …}. */
public sealed interface LrSchedule {

    /** The learning rate of step {@code t}. */
    double at(long t);

    /** {@code lr}. */
    static LrSchedule constant(double lr) {
        return new Constant(lr);
    }

    /** {@code lr·factor^k} after the k-th milestone (steps, increasing), e.g. ÷5 at epochs 60, 120, 160. */
    static LrSchedule step(double lr, List<Long> milestones, double factor) {
        return new Step(lr, milestones, factor);
    }

    /**
     * Linear warm-up to {@code lr} over {@code warmup} steps ({@code lr·(t+1)/warmup}), then cosine annealing to 0 at
     * step {@code total}: {@code lr·(1 + cos(π·(t − warmup)/(total − warmup)))/2}.
     */
    static LrSchedule warmupCosine(double lr, long warmup, long total) {
        return new WarmupCosine(lr, warmup, total);
    }

    /** A constant rate. */
    record Constant(double lr) implements LrSchedule {
        public Constant {
            checkRate(lr);
        }

        @Override
        public double at(long t) {
            return lr;
        }
    }

    /** Piecewise constant, multiplied by {@code factor} at each milestone. */
    record Step(double lr, List<Long> milestones, double factor) implements LrSchedule {
        public Step {
            checkRate(lr);
            milestones = List.copyOf(milestones);
            for (int i = 1; i < milestones.size(); i++) {
                if (milestones.get(i) <= milestones.get(i - 1)) {
                    throw new IllegalArgumentException("milestones " + milestones + " must increase");
                }
            }
            if (!(factor > 0 && factor <= 1)) {
                throw new IllegalArgumentException("factor is " + factor + "; must be in (0, 1]");
            }
        }

        @Override
        public double at(long t) {
            int passed = 0;
            while (passed < milestones.size() && t >= milestones.get(passed)) {
                passed++;
            }
            return lr * Math.pow(factor, passed);
        }
    }

    /** Linear warm-up, then cosine annealing to zero. */
    record WarmupCosine(double lr, long warmup, long total) implements LrSchedule {
        public WarmupCosine {
            checkRate(lr);
            if (warmup < 0 || total <= warmup) {
                throw new IllegalArgumentException("warmup is " + warmup + ", total " + total
                        + "; need 0 <= warmup < total");
            }
        }

        @Override
        public double at(long t) {
            if (t < warmup) {
                return lr * (t + 1) / warmup;
            }
            double progress = Math.min(1.0, (double) (t - warmup) / (total - warmup));
            return lr * (1 + Math.cos(Math.PI * progress)) / 2;
        }
    }

    private static void checkRate(double lr) {
        if (!(lr >= 0 && lr < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("lr is " + lr + "; must be finite and >= 0");
        }
    }
}
