package dev.ema4j.optim;

/**
 * Stochastic gradient descent with momentum, Nesterov momentum and weight decay, with PyTorch's semantics
 * ({@code torch.optim.SGD}, dampening 0). For each parameter {@code p}, gradient {@code g} and momentum buffer
 * {@code m} (zero before the first step):
 * <pre>{@code
 *   g ← g + weightDecay·p
 *   m ← momentum·m + g
 *   p ← p − lr·(nesterov ? g + momentum·m : m)
 * }</pre>
 *
 * @param momentum μ in [0, 1)
 * @param weightDecay L2 penalty ≥ 0, applied to every parameter
 * @param nesterov Nesterov momentum (needs μ > 0)
 */
public record Sgd(double momentum, double weightDecay, boolean nesterov) {

    public Sgd {
        if (!(momentum >= 0 && momentum < 1)) {
            throw new IllegalArgumentException("momentum is " + momentum + "; must be in [0, 1)");
        }
        if (!(weightDecay >= 0 && weightDecay < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("weightDecay is " + weightDecay + "; must be finite and >= 0");
        }
        if (nesterov && momentum == 0) {
            throw new IllegalArgumentException("nesterov needs a momentum > 0");
        }
    }

    /** The paper's optimizer: Nesterov momentum 0.9, weight decay {@code weightDecay}. */
    public static Sgd nesterov(double weightDecay) {
        return new Sgd(0.9, weightDecay, true);
    }
}
