// gemm.cu: the linear layer (fully connected, fp32) forward and backward for ema4j's training API, on the tiled
// SGEMM core of cuda/tiled_gemm.cuh. The formulas are those of dev.ema4j.nn.NnOps, with x (N, I), w (O, I),
// y and dy (N, O), all row-major:
//
//     y[n,o]  = b[o] + sum_i x[n,i] * w[o,i]        linear_forward_f32          M = N, N = O, depth I
//     dx[n,i] = sum_o dy[n,o] * w[o,i]              linear_backward_data_f32    M = N, N = I, depth O
//     dw[o,i] = sum_n dy[n,o] * x[n,i]              linear_backward_weight_f32  M = O, N = I, depth N
//     db[o]   = sum_n dy[n,o]                       linear_bias_grad_f32        one thread per o, n ascending
//     y[n,o] += b[o]                                linear_add_bias_f32         (after cuBLAS)
//
// When cuBLAS loads (libcublas.so.12), dev.ema4j.backend.cuda.CudaNnOps uses cublasSgemm for the three products
// instead; these kernels need only the driver. Numerics: see cuda/tiled_gemm.cuh (db sums n in ascending order in
// fp32, within the conformance suite's GEMM tolerance of the CPU's sums).
// Build: native/build-ptx.sh. Check: the NnOps conformance suite.

#include "tiled_gemm.cuh"

// A named namespace, not an anonymous one: the __shared__ tiles of gemm_tile<...> instantiated with types of an
// anonymous namespace get a symbol with a hash of the source path (_INTERNAL_<hash>), and the PTX would differ
// between checkouts (native/build-ptx.sh --check).
namespace gemm_operands {

// A row-major matrix read as (row, depth) = m[row * depth_count + depth]: contiguous along the depth.
struct RowsByDepth {
    static constexpr bool kDepthFastest = true;
    const float* m;
    int depth_count;
    __device__ float operator()(int row, int d) const { return m[row * depth_count + d]; }
};

// A row-major matrix read as (row, depth) = m[depth * row_count + row]: contiguous along the rows.
struct DepthByRows {
    static constexpr bool kDepthFastest = false;
    const float* m;
    int row_count;
    __device__ float operator()(int row, int d) const { return m[d * row_count + row]; }
};

struct StoreRows {
    float* out;
    const float* bias;  // per column, or null
    int cols;
    __device__ void operator()(int m, int n, float v) const { out[m * cols + n] = bias != nullptr ? v + bias[n] : v; }
};

}  // namespace gemm_operands

using namespace gemm_operands;

// y <- x w^T + b; b may be null. Grid (ceil(O / 64), ceil(N / 64)), block 256.
extern "C" __global__ void linear_forward_f32(const float* x, const float* w, const float* b, float* y, int n,
                                              int in, int out) {
    gemm_tile(RowsByDepth{x, in}, RowsByDepth{w, in}, StoreRows{y, b, out}, n, out, 0, in);
}

// dx <- dy w. Grid (ceil(I / 64), ceil(N / 64)), block 256.
extern "C" __global__ void linear_backward_data_f32(const float* dy, const float* w, float* dx, int n, int in,
                                                    int out) {
    gemm_tile(RowsByDepth{dy, out}, DepthByRows{w, in}, StoreRows{dx, nullptr, in}, n, in, 0, out);
}

// dw <- dy^T x. Grid (ceil(I / 64), ceil(O / 64)), block 256.
extern "C" __global__ void linear_backward_weight_f32(const float* dy, const float* x, float* dw, int n, int in,
                                                      int out) {
    gemm_tile(DepthByRows{dy, out}, DepthByRows{x, in}, StoreRows{dw, nullptr, in}, out, in, 0, n);
}

// db[o] <- sum over n ascending of dy[n, o]. Grid-stride over o.
extern "C" __global__ void linear_bias_grad_f32(const float* dy, float* db, int n, int out) {
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < out; o += gridDim.x * blockDim.x) {
        float sum = 0.f;
        for (int i = 0; i < n; ++i) {
            sum += dy[i * out + o];
        }
        db[o] = sum;
    }
}

// y[n, o] += b[o], after cuBLAS computed y = x w^T. Grid-stride over n * out.
extern "C" __global__ void linear_add_bias_f32(float* y, const float* b, int n, int out) {
    const long long count = static_cast<long long>(n) * out;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<long long>(gridDim.x) * blockDim.x) {
        y[i] += b[i % out];
    }
}
