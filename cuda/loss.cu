// loss.cu: softmax cross-entropy (fp32 logits, double arithmetic) for ema4j's training API. The formula is that of
// dev.ema4j.nn.NnOps, evaluated as the Java CPU backend does:
//
//   max = max_c z[c];  lse = max + log(sum_c exp(z[c] - max))        (z[c] - max in fp32, the rest in double)
//   probs[c] = exp(z[c] - lse);  loss = lse - z[label]
//   dlogits[c] = (probs[c] - (c == label)) / N                        (fp32)
//
// One thread per sample, grid-stride. The per-sample losses go to `losses`; the host reads them back and averages
// them (that read is the training step's one synchronization, and it is where the trainer wants the loss).
// Labels were checked to lie in [0, classes) on the host. The arithmetic is Java's operation for operation (no
// contraction: NOTE: [no-contraction] in native/build-ptx.sh) but for exp and log, CUDA's (within 1 ulp in double)
// instead of Java's; the suite's SOFTMAX tolerance covers that.
// Build: native/build-ptx.sh. Check: the NnOps conformance suite.

// dlogits may be null.
extern "C" __global__ void softmax_xent_f32(const float* logits, const int* labels, float* probs, float* dlogits,
                                            float* losses, int n, int classes) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float* z = logits + static_cast<long long>(i) * classes;
        float* p = probs + static_cast<long long>(i) * classes;
        float max = -INFINITY;
        for (int c = 0; c < classes; ++c) {
            max = fmaxf(max, z[c]);
        }
        double sum = 0;
        for (int c = 0; c < classes; ++c) {
            sum += exp(static_cast<double>(z[c] - max));
        }
        const double lse = max + log(sum);
        for (int c = 0; c < classes; ++c) {
            p[c] = static_cast<float>(exp(z[c] - lse));
        }
        losses[i] = static_cast<float>(lse - z[labels[i]]);
        if (dlogits != nullptr) {
            float* d = dlogits + static_cast<long long>(i) * classes;
            for (int c = 0; c < classes; ++c) {
                d[c] = (p[c] - (c == labels[i] ? 1.f : 0.f)) / n;
            }
        }
    }
}
