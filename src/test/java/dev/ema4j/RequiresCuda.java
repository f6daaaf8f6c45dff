package dev.ema4j;

import dev.ema4j.backend.Backends;
import dev.ema4j.backend.cuda.CudaAvailability;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/** Disables a test class where CUDA is unavailable, giving the probe's reason as the skip message. */
final class RequiresCuda implements ExecutionCondition {

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        CudaAvailability cuda = Backends.cudaAvailability();
        return cuda.available() ? ConditionEvaluationResult.enabled("CUDA: " + cuda.reason())
                : ConditionEvaluationResult.disabled("CUDA unavailable: " + cuda.reason());
    }
}
