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
// NOTE: [bn-split]. A channel's M = N*H*W values are cut into `splits` chunks of `chunk` values (a multiple of 256,
// at least 2048 and grown so that splits <= 256: dev.ema4j.ops.cuda.CudaNnOps#bnChunk, a function of M alone), and
// each pass over the data runs one block of 256 threads per (channel, chunk), a grid of (C, splits): even a layer
// of 16 channels then fills the GPU once M is large. The reductions take two kernels and a workspace of
// C * (2 * splits + 1) doubles, and are done in a fixed order:
//   1. batchnorm_stats_f32, batchnorm_backward_sums_f32: block (ch, z) sums its chunk (thread t takes the values
//      z*chunk + t, + 256, ... in order, in fp32; the block adds the 256 thread sums in double in a fixed tree) and
//      writes the chunk's two sums to partial[2 * (ch * splits + z) + {0, 1}]; the forward pass also keeps the
//      shift x0 in partial[2 * C * splits + ch].
//   2. batchnorm_forward_train_f32, batchnorm_backward_f32: every block (ch, z) adds the channel's `splits` partial
//      sums in the same fixed tree (thread t loads partial t; 0 past splits), computes the channel's scalars from
//      the totals (in double by one thread, as the Java CPU backend does), and applies the elementwise formula to
//      its own chunk; block (ch, 0) alone writes the per-channel outputs (saved and running statistics, dgamma,
//      dbeta). The scalars are recomputed by every block (splits <= 256 loads, no third launch); all blocks of a
//      channel compute them from the same partial sums in the same order, so they agree bit for bit.
// Every sum is thus a fixed expression of the inputs, with no atomics and no dependence on which block runs when or
// how many run at once: the results are bit-reproducible run to run, and, the chunk depending on M alone, the same
// on every GPU and in the driver emulator (NOTE: [no-contraction] in native/build-ptx.sh).
//
// The statistics are one pass over the channel: the threads sum d = x - x0 and d^2 with x0 the channel's first
// value (so var = E[d^2] - E[d]^2 does not cancel catastrophically when the mean is large).
//
// Numerics: the per-channel scalars and the elementwise formulas are the Java CPU backend's operations, rounded alike
// (fmaf where Java writes Math.fma, no contraction elsewhere: NOTE: [no-contraction] in native/build-ptx.sh); the
// sums alone differ in order (Java: per sample in double), which the conformance suite's REDUCTION tolerance covers.
//
// Kernels: batchnorm_stats_f32 then batchnorm_forward_train_f32, batchnorm_backward_sums_f32 then
// batchnorm_backward_f32, each a grid of (C, splits) blocks of 256 threads; batchnorm_forward_eval_f32 one block per
// (sample, channel) plane. The element indices of a chunk advance without a division (cuda/channel_walk.cuh).
// Build: native/build-ptx.sh. Check: the NnOps conformance suite.

#include "channel_walk.cuh"

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

// Block (ch, z) of a (C, splits) grid: thread 0 stores the block's sums a[0] and b[0] as partial sums z of channel ch.
__device__ __forceinline__ void store_partials(double* partial, const double* a, const double* b) {
    if (threadIdx.x == 0) {
        double* p = partial + 2 * (static_cast<long long>(blockIdx.x) * gridDim.y + blockIdx.y);
        p[0] = a[0];
        p[1] = b[0];
    }
}

// The totals of channel blockIdx.x's partial sums, added in the same fixed order by every block: in a[0] and b[0].
__device__ __forceinline__ void sum_partials(const double* partial, double* a, double* b) {
    a[threadIdx.x] = 0.0;
    b[threadIdx.x] = 0.0;
    if (threadIdx.x < gridDim.y) {
        const double* p = partial + 2 * (static_cast<long long>(blockIdx.x) * gridDim.y + threadIdx.x);
        a[threadIdx.x] = p[0];
        b[threadIdx.x] = p[1];
    }
    block_sum2(a, b);
}

// The values [begin, end) of the channel that block (ch, z) covers: chunk z of the channel's m values.
struct Range {
    int begin;
    int end;
};

__device__ __forceinline__ Range chunk_range(int m, int chunk) {
    const long long begin = static_cast<long long>(blockIdx.y) * chunk;
    return {static_cast<int>(begin < m ? begin : m), static_cast<int>(begin + chunk < m ? begin + chunk : m)};
}

// max(v, floor) that keeps NaN (as Java's Math.max): a NaN activation must not be hidden by the ReLU.
__device__ __forceinline__ float max_keep_nan(float v, float floor) { return v > floor || isnan(v) ? v : floor; }

}  // namespace

// Grid (C, splits) of 256 threads: partial[2 * (ch * splits + z) + {0, 1}] <- the sums of d = x - x0 and d^2 over
// chunk z of channel ch, x0 the channel's first value; partial[2 * C * splits + ch] <- x0 (NOTE: [bn-split]).
extern "C" __global__ void batchnorm_stats_f32(const float* x, double* partial, int n, int c, int plane, int chunk) {
    __shared__ double sums[kThreads];
    __shared__ double squares[kThreads];
    const int ch = blockIdx.x;
    const Range r = chunk_range(n * plane, chunk);
    const float x0 = x[static_cast<long long>(ch) * plane];
    float s = 0.f;
    float q = 0.f;
    for_each_in_channel(r.begin + threadIdx.x, r.end, kThreads, c, ch, plane, [&](long long j) {
        const float d = x[j] - x0;
        s += d;
        q = fmaf(d, d, q);
    });
    sums[threadIdx.x] = s;
    squares[threadIdx.x] = q;
    block_sum2(sums, squares);
    store_partials(partial, sums, squares);
    if (threadIdx.x == 0 && blockIdx.y == 0) {
        partial[2 * static_cast<long long>(c) * gridDim.y + ch] = x0;
    }
}

// Grid (C, splits) of 256 threads, after batchnorm_stats_f32 on the same x and partial. relu: 0 or 1. y may be x.
extern "C" __global__ void batchnorm_forward_train_f32(const float* x, const float* gamma, const float* beta, float* y,
                                                       float* save_mean, float* save_inv_std, float* running_mean,
                                                       float* running_var, const double* partial, int n, int c,
                                                       int plane, int chunk, double momentum, double eps, int relu) {
    __shared__ double sums[kThreads];
    __shared__ double squares[kThreads];
    __shared__ float affine[2];
    const int ch = blockIdx.x;
    const int m = n * plane;
    sum_partials(partial, sums, squares);
    if (threadIdx.x == 0) {
        const double x0 = partial[2 * static_cast<long long>(c) * gridDim.y + ch];
        const double mean_shifted = sums[0] / m;
        const float mean = static_cast<float>(x0 + mean_shifted);
        const double var = fmax(0.0, squares[0] / m - mean_shifted * mean_shifted);
        const float inv_std = static_cast<float>(1.0 / sqrt(var + eps));
        if (blockIdx.y == 0) {
            save_mean[ch] = mean;
            save_inv_std[ch] = inv_std;
            running_mean[ch] = static_cast<float>((1 - momentum) * running_mean[ch] + momentum * mean);
            running_var[ch] = static_cast<float>((1 - momentum) * running_var[ch] + momentum * var * m / (m - 1));
        }
        const float scale = gamma[ch] * inv_std;
        affine[0] = scale;
        affine[1] = beta[ch] - mean * scale;
    }
    __syncthreads();
    const float scale = affine[0];
    const float shift = affine[1];
    const float floor = relu ? 0.f : -INFINITY;
    const Range r = chunk_range(m, chunk);
    for_each_in_channel(r.begin + threadIdx.x, r.end, kThreads, c, ch, plane, [&](long long j) {
        y[j] = max_keep_nan(fmaf(x[j], scale, shift), floor);
    });
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

// Grid (C, splits) of 256 threads: partial[2 * (ch * splits + z) + {0, 1}] <- the sums of g and g * (x - mean) over
// chunk z of channel ch (NOTE: [bn-split]). y: the forward output when the ReLU was fused, else null.
extern "C" __global__ void batchnorm_backward_sums_f32(const float* x, const float* save_mean, const float* y,
                                                       const float* dy, double* partial, int n, int c, int plane,
                                                       int chunk) {
    __shared__ double sums[kThreads];
    __shared__ double dots[kThreads];
    const int ch = blockIdx.x;
    const float mean = save_mean[ch];
    const Range r = chunk_range(n * plane, chunk);
    float s = 0.f;
    float t = 0.f;
    for_each_in_channel(r.begin + threadIdx.x, r.end, kThreads, c, ch, plane, [&](long long j) {
        const float g = y == nullptr || y[j] > 0.f ? dy[j] : 0.f;
        s += g;
        t = fmaf(g, x[j] - mean, t);
    });
    sums[threadIdx.x] = s;
    dots[threadIdx.x] = t;
    block_sum2(sums, dots);
    store_partials(partial, sums, dots);
}

// Grid (C, splits) of 256 threads, after batchnorm_backward_sums_f32 on the same inputs and partial. y: the forward
// output when the ReLU was fused, else null. dx may be x, y or dy.
extern "C" __global__ void batchnorm_backward_f32(const float* x, const float* gamma, const float* save_mean,
                                                  const float* save_inv_std, const float* y, const float* dy,
                                                  float* dx, float* dgamma, float* dbeta, const double* partial,
                                                  int n, int c, int plane, int chunk) {
    __shared__ double sums[kThreads];
    __shared__ double dots[kThreads];
    __shared__ float coefficients[3];
    const int ch = blockIdx.x;
    const int m = n * plane;
    sum_partials(partial, sums, dots);
    if (threadIdx.x == 0) {
        const float mean = save_mean[ch];
        const float inv_std = save_inv_std[ch];
        const float d_beta = static_cast<float>(sums[0]);
        const float d_gamma = static_cast<float>(dots[0] * inv_std);
        if (blockIdx.y == 0) {
            dbeta[ch] = d_beta;
            dgamma[ch] = d_gamma;
        }
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
    const Range r = chunk_range(m, chunk);
    for_each_in_channel(r.begin + threadIdx.x, r.end, kThreads, c, ch, plane, [&](long long j) {
        const float g = y == nullptr || y[j] > 0.f ? dy[j] : 0.f;
        dx[j] = fmaf(a, g, fmaf(b, x[j], c0));
    });
}
