package dev.ema4j;

import dev.ema4j.backend.BackendAvailability;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Disables a test class where CUDA is unavailable, giving the probe's reason as the skip message; with
 * {@code -Dema4j.requireCuda=true} (the GPU machine's run) an unavailable CUDA fails the class instead.
 */
public final class RequiresCuda implements ExecutionCondition {

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        BackendAvailability cuda = Backends.cudaAvailability();
        if (!cuda.available() && Boolean.getBoolean("ema4j.requireCuda")) {
            throw new IllegalStateException("-Dema4j.requireCuda is set but CUDA is unavailable: " + cuda.reason());
        }
        return cuda.available() ? ConditionEvaluationResult.enabled("CUDA: " + cuda.reason())
                : ConditionEvaluationResult.disabled("CUDA unavailable: " + cuda.reason());
    }
}
