// conv.cu: 2-D convolution (NCHW, fp32) forward and backward for ema4j's training API, as implicit GEMMs on the
// tiled SGEMM core of cuda/tiled_gemm.cuh. The formulas are those of dev.ema4j.nn.NnOps:
//
//     y[n,k,p,q]  = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n,c, p*stride + r - pad, q*stride + s - pad]   (0 outside x)
//     dx[n,c,h,w] = sum_{k,r,s} w[k,c,r,s] * dy[n,k,p,q]   over (p, q) with p*stride + r - pad = h, q*stride + s - pad = w
//     dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c, p*stride + r - pad, q*stride + s - pad]
//     db[k]       = sum_{n,p,q} dy[n,k,p,q]
//
// As GEMMs (depth index d, "col" a flattened output or input position):
//   conv2d_forward_f32          M = K, N = batch*P*Q, depth C*R*S:  A = w (K x CRS), B = im2col(x), gathered
//   conv2d_backward_data_f32    M = C, N = batch*H*W, depth K*R*S:  A = w transposed, B = dy scattered back
//   conv2d_backward_filter_f32  M = K, N = C*R*S, depth batch*P*Q:  A = dy, B = im2col(x); split-K over the depth
//                               into a workspace of gridDim.z partial products (or straight into dw when
//                               gridDim.z = 1), summed in split order by conv2d_sum_splits_f32: deterministic
//   conv2d_bias_grad_f32        one block per k, a fixed-order tree reduction
// ReLU is not fused here: ema4j's models follow every convolution by BatchNorm, which fuses it.
//
// Index math: every gathered element splits a depth index and a row or column index into their coordinates, e.g.
// col -> (n, p, q). The divisors (S, R*S, Q, P*Q, W, H*W, stride) are fixed at launch, so the host passes each with
// its magic number and the kernels divide by a multiply-high, an add and a shift (NOTE: [fast-division]) instead
// of an integer division (about 20 instructions each on the GPU, 4 to 8 per element here). What the elements a
// thread loads share is computed once: the tile loader unrolls its loads (cuda/tiled_gemm.cuh), so the compiler keeps
// the coordinates of the thread's fixed rows or columns out of the depth loop, e.g. (n, p, q) of its im2col column in
// conv2d_forward_f32, which then does 2 fast divisions per gathered element, conv2d_backward_filter_f32 2 per tile.
//
// Sizes are int: a tensor holds fewer than 2^31 elements (dev.ema4j.nn.Tensor).
// Build: native/build-ptx.sh. Check: the NnOps conformance suite (src/train/src/test/.../nn), on the GPU or under the
// driver emulator (native/emulated-cuda-tests.sh).

#include "channel_walk.cuh"
#include "tiled_gemm.cuh"

// A named namespace, not an anonymous one: the __shared__ tiles of gemm_tile<...> instantiated with types of an
// anonymous namespace get a symbol with a hash of the source path (_INTERNAL_<hash>), and the PTX would differ
// between checkouts (native/build-ptx.sh --check).
namespace conv_operands {

// NOTE: [fast-division]. Division of n in [0, 2^31) by a divisor d >= 1 fixed at launch (Granlund and Montgomery,
// "Division by invariant integers using multiplication", 1994, section 4): with l = ceil(log2 d) and
// mul = floor(2^32 * (2^l - d) / d) + 1 (which fits in 32 bits), n / d = (mulhi(n, mul) + n) >> l, exact for every
// n < 2^32 when the sum is taken in 33 bits; for n < 2^31 it fits in 32. d = 1 gives mul = 1, l = 0. The host
// computes mul and l (dev.ema4j.ops.cuda.CudaNnOps#divisor); a divisor of 0 (an empty dimension) has mul = 0 and
// is never used.
struct Divisor {
    int value;
    unsigned int mul;
    unsigned int shift;
    __device__ __forceinline__ int divide(int n) const {
        const unsigned int u = static_cast<unsigned int>(n);
        const unsigned int high = static_cast<unsigned int>((static_cast<unsigned long long>(u) * mul) >> 32);
        return static_cast<int>((high + u) >> shift);
    }
};

// The geometry of one convolution and its divisors (128 bytes, mirrored by dev.ema4j.ops.cuda.CudaNnOps#shape).
struct ConvShape {
    int n, c, h, w;   // input (N, C, H, W)
    int k, r, s;      // weights (K, C, R, S)
    int p, q;         // output (N, K, P, Q)
    int stride, pad;
    Divisor by_s, by_rs, by_q, by_pq, by_w, by_hw, by_stride;
};

// im2col(x)[d = (c, r, s), col = (n, p, q)], read as B(col, d); contiguous along q, so along col.
struct Im2col {
    static constexpr bool kDepthFastest = false;
    const float* x;
    ConvShape g;
    __device__ float operator()(int col, int d) const {
        const int c = g.by_rs.divide(d);
        const int rs = d - c * g.by_rs.value;
        const int r = g.by_s.divide(rs);
        const int s = rs - r * g.s;
        const int n = g.by_pq.divide(col);
        const int pq = col - n * g.by_pq.value;
        const int p = g.by_q.divide(pq);
        const int q = pq - p * g.q;
        const int h = p * g.stride - g.pad + r;
        const int w = q * g.stride - g.pad + s;
        return h >= 0 && h < g.h && w >= 0 && w < g.w ? x[((n * g.c + c) * g.h + h) * g.w + w] : 0.f;
    }
};

// The same matrix read as A(d, col) with the depth running over (n, p, q): contiguous along the depth.
struct Im2colByDepth {
    static constexpr bool kDepthFastest = true;
    Im2col im2col;
    __device__ float operator()(int d, int col) const { return im2col(col, d); }
};

// w as A(k, d = (c, r, s)): row-major K x CRS.
struct Weights {
    static constexpr bool kDepthFastest = true;
    const float* w;
    int crs;
    __device__ float operator()(int k, int d) const { return w[k * crs + d]; }
};

// w transposed, A(c, d = (k, r, s)) = w[k, c, r, s].
struct WeightsTransposed {
    static constexpr bool kDepthFastest = true;
    const float* w;
    ConvShape g;
    __device__ float operator()(int c, int d) const {
        const int rs = g.by_rs.value;
        const int k = g.by_rs.divide(d);
        return w[(k * g.c + c) * rs + (d - k * rs)];
    }
};

// dy as B(col = (n, h, w), d = (k, r, s)): dy[n, k, p, q] where (h, w) is reached from (p, q) through tap (r, s),
// 0 where no output position maps there (stride gaps, borders).
struct OutputGradAtInput {
    static constexpr bool kDepthFastest = false;
    const float* dy;
    ConvShape g;
    __device__ float operator()(int col, int d) const {
        const int k = g.by_rs.divide(d);
        const int rs = d - k * g.by_rs.value;
        const int r = g.by_s.divide(rs);
        const int s = rs - r * g.s;
        const int n = g.by_hw.divide(col);
        const int hw = col - n * g.by_hw.value;
        const int h = g.by_w.divide(hw);
        const int w = hw - h * g.w;
        const int ph = h + g.pad - r;
        const int qw = w + g.pad - s;
        if (ph < 0 || qw < 0) {
            return 0.f;
        }
        const int p = g.by_stride.divide(ph);
        const int q = g.by_stride.divide(qw);
        if (p * g.stride != ph || q * g.stride != qw) {
            return 0.f;
        }
        return p < g.p && q < g.q ? dy[((n * g.k + k) * g.p + p) * g.q + q] : 0.f;
    }
};

// dy as A(k, d = (n, p, q)): contiguous along the depth within each (n, k) plane.
struct OutputGrad {
    static constexpr bool kDepthFastest = true;
    const float* dy;
    ConvShape g;
    __device__ float operator()(int k, int d) const {
        const int pq = g.by_pq.value;
        const int n = g.by_pq.divide(d);
        return dy[(n * g.k + k) * pq + (d - n * pq)];
    }
};

struct StoreOutput {
    float* y;
    const float* bias;
    ConvShape g;
    __device__ void operator()(int k, int col, float v) const {
        const int pq = g.by_pq.value;
        const int n = g.by_pq.divide(col);
        y[(n * g.k + k) * pq + (col - n * pq)] = bias != nullptr ? v + bias[k] : v;
    }
};

struct StoreInputGrad {
    float* dx;
    ConvShape g;
    __device__ void operator()(int c, int col, float v) const {
        const int hw = g.by_hw.value;
        const int n = g.by_hw.divide(col);
        dx[(n * g.c + c) * hw + (col - n * hw)] = v;
    }
};

// Row-major M x N into slice blockIdx.z of an array of gridDim.z such matrices.
struct StoreSlice {
    float* out;
    int cols;
    int slice;  // M * N
    __device__ void operator()(int m, int n, float v) const {
        out[static_cast<int>(blockIdx.z) * slice + m * cols + n] = v;
    }
};

}  // namespace conv_operands

using namespace conv_operands;

// y <- conv(x, w) + bias. bias may be null. Grid (ceil(N*P*Q / 64), ceil(K / 64)), block 256.
extern "C" __global__ void conv2d_forward_f32(const float* x, const float* w, const float* bias, float* y,
                                              ConvShape g) {
    const int crs = g.c * g.r * g.s;
    gemm_tile(Weights{w, crs}, Im2col{x, g}, StoreOutput{y, bias, g}, g.k, g.n * g.p * g.q, 0, crs);
}

// dx <- the input gradient. Grid (ceil(N*H*W / 64), ceil(C / 64)), block 256.
extern "C" __global__ void conv2d_backward_data_f32(const float* dy, const float* w, float* dx, ConvShape g) {
    gemm_tile(WeightsTransposed{w, g}, OutputGradAtInput{dy, g}, StoreInputGrad{dx, g}, g.c, g.n * g.h * g.w, 0,
              g.k * g.r * g.s);
}

// out[z] <- the filter gradient over depth slice z ((n, p, q) in [z * per_split, (z + 1) * per_split)); with one
// slice, out is dw itself. Grid (ceil(C*R*S / 64), ceil(K / 64), slices), block 256.
extern "C" __global__ void conv2d_backward_filter_f32(const float* x, const float* dy, float* out, ConvShape g,
                                                      int per_split) {
    const int crs = g.c * g.r * g.s;
    int begin;
    int end;
    gemm_split(g.n * g.p * g.q, per_split, &begin, &end);
    gemm_tile(OutputGrad{dy, g}, Im2colByDepth{Im2col{x, g}}, StoreSlice{out, crs, g.k * crs}, g.k, crs, begin, end);
}

// dw[i] <- sum over z in order of partial[z * count + i]. Grid-stride, any grid.
extern "C" __global__ void conv2d_sum_splits_f32(const float* partial, float* dw, int count, int splits) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        float sum = partial[i];
        for (int z = 1; z < splits; ++z) {
            sum += partial[z * count + i];
        }
        dw[i] = sum;
    }
}

// db[k] <- sum over (n, p, q) of dy[n, k, p, q]. Grid K blocks of 256 threads.
extern "C" __global__ void conv2d_bias_grad_f32(const float* dy, float* db, int n, int k, int plane) {
    __shared__ float partial[256];
    const int ch = blockIdx.x;
    float sum = 0.f;
    for_each_in_channel(threadIdx.x, n * plane, 256, k, ch, plane, [&](long long j) { sum += dy[j]; });
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned int half = 128; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            partial[threadIdx.x] += partial[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        db[ch] = partial[0];
    }
}
