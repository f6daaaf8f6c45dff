package dev.ema4j.ops;

import dev.ema4j.backend.DeviceBuffer;
import dev.ema4j.optim.Sgd;
import java.util.List;

/**
 * The operations of training, on a {@link dev.ema4j.backend.Backend}'s fp32 tensors (NCHW). Each formula is written
 * here once; the CPU implementation (multithreaded Java, convolutions through OpenBLAS SGEMM) and the CUDA kernels
 * implement the same. Outputs are overwritten, never accumulated, unless stated. Shapes are checked before
 * anything runs ({@link IllegalArgumentException} quoting the shapes).
 */
public interface NnOps {

    /**
     * The matrix multiplication these operations use, for reports: the BLAS library and its kernels on the CPU,
     * cuBLAS or the tiled kernels (with the reason) on CUDA.
     */
    String gemm();

    /**
     * A pass these operations may record once and replay ({@link Replayable}); {@link Replayable#EAGER} unless the
     * backend replays (CUDA graphs).
     */
    default Replayable replayable() {
        return Replayable.EAGER;
    }

    /** How {@link #replayable()} passes run, for reports: {@code eager}, or the backend's graphs and their state. */
    default String replays() {
        return "eager";
    }

    /**
     * Convolution {@code y[n,k,p,q] = b[k] + Σ_{c,r,s} w[k,c,r,s]·x[n,c, p·stride + r − pad, q·stride + s − pad]}
     * (zero outside x); {@code x} (N,C,H,W), {@code w} (K,C,R,S), {@code y} (N,K,P,Q) with
     * {@code P = (H + 2·pad − R)/stride + 1}; {@code bias} (1,K) or null.
     */
    void conv2dForward(Tensor x, Tensor w, Tensor bias, Tensor y, int stride, int pad);

    /**
     * The gradients of {@link #conv2dForward}: {@code dw[k,c,r,s] = Σ_{n,p,q} dy[n,k,p,q]·x[n,c,…]},
     * {@code dbias[k] = Σ_{n,p,q} dy[n,k,p,q]}, and {@code dx} the transposed convolution of {@code dy} by {@code w}.
     * {@code dx} and {@code dbias} may be null.
     */
    void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor dbias, int stride, int pad);

    /**
     * BatchNorm with batch statistics: per channel, {@code mean} and biased {@code var} over (N,H,W),
     * {@code invStd = 1/sqrt(var + eps)}, {@code y = (x − mean)·invStd·gamma + beta}; saves {@code mean} and
     * {@code invStd} (1,C) for the backward pass and updates the running statistics
     * {@code running ← (1 − momentum)·running + momentum·stat} with the unbiased variance {@code var·M/(M−1)},
     * {@code M = N·H·W} (PyTorch's semantics; {@code momentum = 1/(k+1)} at the k-th batch gives an equal-weight
     * average, used to recompute statistics). With {@code relu}, {@code y = max(…, 0)} (BatchNorm and ReLU fused).
     */
    void batchNormForwardTrain(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean, Tensor saveInvStd,
                               Tensor runningMean, Tensor runningVar, double momentum, double eps, boolean relu);

    /**
     * BatchNorm with the running statistics: {@code y = (x − runningMean)/sqrt(runningVar + eps)·gamma + beta},
     * then {@code max(y, 0)} with {@code relu}.
     */
    void batchNormForwardEval(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor y,
                              double eps, boolean relu);

    /**
     * The gradients of {@link #batchNormForwardTrain} with {@code x̂ = (x − mean)·invStd} and {@code g} the
     * gradient at the BatchNorm output ({@code g = y > 0 ? dy : 0} when ReLU was fused, {@code relu} then being the
     * forward output {@code y}; else {@code g = dy} and {@code relu} null): {@code dbeta = Σ g},
     * {@code dgamma = Σ g·x̂}, {@code dx = gamma·invStd·(g − dbeta/M − x̂·dgamma/M)}.
     */
    void batchNormBackward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor relu, Tensor dy,
                           Tensor dx, Tensor dgamma, Tensor dbeta);

    /** {@code y = max(x, 0)}. */
    void reluForward(Tensor x, Tensor y);

    /** {@code dx = y > 0 ? dy : 0}, with {@code y} the forward output. */
    void reluBackward(Tensor y, Tensor dy, Tensor dx);

    /**
     * Max pooling over {@code k×k} windows with stride {@code k}: {@code y[n,c,p,q] = max x[n,c, p·k + i, q·k + j]};
     * {@code argmax} (same shape as {@code y}) receives the in-plane index {@code h·W + w} of the first maximum of
     * each window in row-major order, as a float.
     */
    void maxPoolForward(Tensor x, Tensor y, Tensor argmax, int k);

    /** The gradient of {@link #maxPoolForward}: {@code dx} is zero but at each window's argmax, which gets {@code dy}. */
    void maxPoolBackward(Tensor argmax, Tensor dy, Tensor dx, int k);

    /** {@code y[n,c] = mean_{h,w} x[n,c,h,w]}. */
    void globalAvgPoolForward(Tensor x, Tensor y);

    /** {@code dx[n,c,h,w] = dy[n,c]/(H·W)}. */
    void globalAvgPoolBackward(Tensor dy, Tensor dx);

    /** {@code y[n,o] = b[o] + Σ_i x[n,i]·w[o,i]}; {@code x} (N,I), {@code w} (O,I), {@code b} (1,O) or null. */
    void linearForward(Tensor x, Tensor w, Tensor b, Tensor y);

    /** {@code dx = dy·w}, {@code dw = dyᵀ·x}, {@code db = Σ_n dy}; {@code dx} and {@code db} may be null. */
    void linearBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db);

    /** {@code y = a + b}. */
    void add(Tensor a, Tensor b, Tensor y);

    /** {@code y ← y + x}. */
    void addTo(Tensor x, Tensor y);

    /**
     * Softmax cross-entropy, log-sum-exp stable: {@code probs = softmax(logits)} per sample,
     * {@code loss_n = logsumexp(logits_n) − logits_n[label_n]}, returns the mean loss; when {@code dlogits} is not
     * null, {@code dlogits = (probs − onehot(labels))/N}. {@code logits}, {@code probs}, {@code dlogits} are (N,C).
     *
     * @param lossesOut per-sample losses (length N) or null
     */
    double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor probs, Tensor dlogits, float[] lossesOut);

    /**
     * One {@link Sgd} step over flat buffers of equal length, in one pass (20 bytes per parameter): parameters and
     * momentum are updated, gradients only read.
     */
    default void sgdStep(DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum, Sgd sgd, double lr) {
        sgdEmaStep(params, grads, momentum, sgd, lr, List.of(), new float[0]);
    }

    /**
     * {@link #sgdStep} fused with an EMA update of the new parameters in the same pass: after the step, every
     * shadow {@code k} is updated toward {@code p} with weight {@code w_k} (NOTE: [lerp-torch] in
     * {@link dev.ema4j.backend.Backend#emaLerp}), bit for bit what {@code sgdStep} followed by {@code emaLerp}
     * computes, reading and writing each array once (20 + 8 bytes per parameter and shadow).
     *
     * @param shadows modified; 0 (a plain {@link #sgdStep}) to {@link dev.ema4j.backend.Backend#MAX_SHADOWS} F32
     *     buffers as long as params
     * @param weights {@code w_k = 1 − decay_k}, in [0, 1]
     */
    void sgdEmaStep(DeviceBuffer params, DeviceBuffer grads, DeviceBuffer momentum, Sgd sgd, double lr,
                    List<DeviceBuffer> shadows, float[] weights);

    /** {@code dst ← src}. */
    void copy(Tensor src, Tensor dst);

    /** Every element of {@code t} ← {@code value}. */
    void fill(Tensor t, float value);
}
