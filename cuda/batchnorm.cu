// batchnorm.cu: BatchNorm2d (NCHW, fp32) for ema4j's training API. The formulas are those of dev.ema4j.nn.NnOps:
//
//   train:  per channel, M = N*H*W values; mean and biased var over them, invStd = 1 / sqrt(var + eps),
//           y = max(fma(x, scale, shift), floor) with scale = gamma * invStd, shift = beta - mean * scale and
//           floor = 0 with the fused ReLU, -inf without; saves mean and invStd for the backward pass and updates
//           running <- (1 - momentum) * running + momentum * stat with the unbiased variance var * M / (M - 1)
//           (PyTorch's semantics; momentum 1/(k+1) at the k-th batch gives the equal-weight average used to
//           recompute statistics)
//   eval:   the same affine map with the running statistics
//   backward: g = dy (times y > 0 with the fused ReLU, y the forward output), dbeta = sum g,
//           dgamma = invStd * sum g * (x - mean), dx = fma(a, g, fma(b, x, c0)) with a = gamma * invStd,
//           b = -a * invStd * dgamma / M, c0 = -a * dbeta / M - b * mean
//
// The statistics are one pass over the channel: each thread sums d = x - x0 and d^2 with x0 the channel's first
// value (so var = E[d^2] - E[d]^2 does not cancel catastrophically when the mean is large), the block adds the
// threads' sums in double in a fixed tree order: deterministic. The scalars of a channel (mean, var, running
// statistics) are computed in double by one thread, as the Java CPU backend does.
//
// Kernels: batchnorm_forward_train_f32 and batchnorm_backward_f32 run one block of 256 threads per channel
// (statistics, then the elementwise pass over the same channel); batchnorm_forward_eval_f32 one block per
// (sample, channel) plane.
// Build: native/build-ptx.sh. Check: the NnOps conformance suite.

namespace {

constexpr int kThreads = 256;

// Adds a and b over the block in a fixed order; the totals are in a[0] and b[0] afterwards.
__device__ __forceinline__ void block_sum2(double* a, double* b) {
    __syncthreads();
    for (unsigned int half = kThreads / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            a[threadIdx.x] += a[threadIdx.x + half];
            b[threadIdx.x] += b[threadIdx.x + half];
        }
        __syncthreads();
    }
}

// max(v, floor) that keeps NaN (as Java's Math.max): a NaN activation must not be hidden by the ReLU.
__device__ __forceinline__ float max_keep_nan(float v, float floor) { return v > floor || isnan(v) ? v : floor; }

__device__ __forceinline__ long long at(int sample, int channels, int channel, int plane, int i) {
    return (static_cast<long long>(sample) * channels + channel) * plane + i;
}

}  // namespace

// Grid C blocks of 256 threads. relu: 0 or 1.
extern "C" __global__ void batchnorm_forward_train_f32(const float* x, const float* gamma, const float* beta, float* y,
                                                       float* save_mean, float* save_inv_std, float* running_mean,
                                                       float* running_var, int n, int c, int plane, double momentum,
                                                       double eps, int relu) {
    __shared__ double sums[kThreads];
    __shared__ double squares[kThreads];
    __shared__ float affine[2];
    const int ch = blockIdx.x;
    const int m = n * plane;
    const float x0 = x[at(0, c, ch, plane, 0)];
    float s = 0.f;
    float q = 0.f;
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const int sample = i / plane;
        const float d = x[at(sample, c, ch, plane, i - sample * plane)] - x0;
        s += d;
        q = fmaf(d, d, q);
    }
    sums[threadIdx.x] = s;
    squares[threadIdx.x] = q;
    block_sum2(sums, squares);
    if (threadIdx.x == 0) {
        const double mean_shifted = sums[0] / m;
        const float mean = static_cast<float>(x0 + mean_shifted);
        const double var = fmax(0.0, squares[0] / m - mean_shifted * mean_shifted);
        const float inv_std = static_cast<float>(1.0 / sqrt(var + eps));
        save_mean[ch] = mean;
        save_inv_std[ch] = inv_std;
        running_mean[ch] = static_cast<float>((1 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = static_cast<float>((1 - momentum) * running_var[ch] + momentum * var * m / (m - 1));
        const float scale = gamma[ch] * inv_std;
        affine[0] = scale;
        affine[1] = beta[ch] - mean * scale;
    }
    __syncthreads();
    const float scale = affine[0];
    const float shift = affine[1];
    const float floor = relu ? 0.f : -INFINITY;
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const int sample = i / plane;
        const long long j = at(sample, c, ch, plane, i - sample * plane);
        y[j] = max_keep_nan(fmaf(x[j], scale, shift), floor);
    }
}

// Grid N*C blocks (one per plane), any block size.
extern "C" __global__ void batchnorm_forward_eval_f32(const float* x, const float* gamma, const float* beta,
                                                      const float* running_mean, const float* running_var, float* y,
                                                      int c, int plane, double eps, int relu) {
    const int ch = blockIdx.x % c;
    const float scale = static_cast<float>(gamma[ch] / sqrt(running_var[ch] + eps));
    const float shift = beta[ch] - running_mean[ch] * scale;
    const float floor = relu ? 0.f : -INFINITY;
    const long long base = static_cast<long long>(blockIdx.x) * plane;
    for (int i = threadIdx.x; i < plane; i += blockDim.x) {
        y[base + i] = max_keep_nan(fmaf(x[base + i], scale, shift), floor);
    }
}

// Grid C blocks of 256 threads. y: the forward output when the ReLU was fused, else null.
extern "C" __global__ void batchnorm_backward_f32(const float* x, const float* gamma, const float* save_mean,
                                                  const float* save_inv_std, const float* y, const float* dy,
                                                  float* dx, float* dgamma, float* dbeta, int n, int c, int plane) {
    __shared__ double sums[kThreads];
    __shared__ double dots[kThreads];
    __shared__ float coefficients[3];
    const int ch = blockIdx.x;
    const int m = n * plane;
    const float mean = save_mean[ch];
    const float inv_std = save_inv_std[ch];
    float s = 0.f;
    float t = 0.f;
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const int sample = i / plane;
        const long long j = at(sample, c, ch, plane, i - sample * plane);
        const float g = y == nullptr || y[j] > 0.f ? dy[j] : 0.f;
        s += g;
        t = fmaf(g, x[j] - mean, t);
    }
    sums[threadIdx.x] = s;
    dots[threadIdx.x] = t;
    block_sum2(sums, dots);
    if (threadIdx.x == 0) {
        const float d_beta = static_cast<float>(sums[0]);
        const float d_gamma = static_cast<float>(dots[0] * inv_std);
        dbeta[ch] = d_beta;
        dgamma[ch] = d_gamma;
        const float a = gamma[ch] * inv_std;
        const float b = -a * inv_std * d_gamma / m;
        coefficients[0] = a;
        coefficients[1] = b;
        coefficients[2] = -a * d_beta / m - b * mean;
    }
    __syncthreads();
    const float a = coefficients[0];
    const float b = coefficients[1];
    const float c0 = coefficients[2];
    for (int i = threadIdx.x; i < m; i += kThreads) {
        const int sample = i / plane;
        const long long j = at(sample, c, ch, plane, i - sample * plane);
        const float g = y == nullptr || y[j] > 0.f ? dy[j] : 0.f;
        dx[j] = fmaf(a, g, fmaf(b, x[j], c0));
    }
}
