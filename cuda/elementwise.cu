// elementwise.cu: ReLU and additions (fp32) for ema4j's training API, bit for bit the Java CPU backend's results:
//
//   relu_forward_f32    y = max(x, 0) as Java's Math.max: NaN stays NaN, -0 becomes +0
//   relu_backward_f32   dx = fma(dy, mask(y), 0) with mask(y) = min(y * 2^127 * 2^22, 1): 1 for y > 0 (the
//                       smallest positive float is 2^-149), 0 for y = 0; the + 0 turns -0 into +0
//   add_f32             y = a + b
//   add_to_f32          y = y + x
//
// Grid-stride over n elements: any grid works. The tensors are views at any element offset, so the loads are scalar
// (coalesced across the warp).
// Build: native/build-ptx.sh. Check: the NnOps conformance suite.

namespace {

__device__ __forceinline__ long long first() { return blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ long long step() { return static_cast<long long>(gridDim.x) * blockDim.x; }

// Java's Math.min(v, 1f) for v >= 0 or NaN.
__device__ __forceinline__ float min_keep_nan(float v, float bound) { return v < bound || isnan(v) ? v : bound; }

}  // namespace

extern "C" __global__ void relu_forward_f32(const float* x, float* y, long long n) {
    for (long long i = first(); i < n; i += step()) {
        const float v = x[i];
        y[i] = v > 0.f || isnan(v) ? v : 0.f;
    }
}

extern "C" __global__ void relu_backward_f32(const float* y, const float* dy, float* dx, long long n) {
    for (long long i = first(); i < n; i += step()) {
        const float mask = min_keep_nan(y[i] * 0x1p127f * 0x1p22f, 1.f);
        dx[i] = fmaf(dy[i], mask, 0.f);
    }
}

extern "C" __global__ void add_f32(const float* a, const float* b, float* y, long long n) {
    for (long long i = first(); i < n; i += step()) {
        y[i] = a[i] + b[i];
    }
}

extern "C" __global__ void add_to_f32(const float* x, float* y, long long n) {
    for (long long i = first(); i < n; i += step()) {
        y[i] += x[i];
    }
}
