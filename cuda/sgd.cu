// sgd.cu: the optimizer step of ema4j's training API, fused with the EMA update of the weights. Formulas (those of
// dev.ema4j.nn.NnOps#sgdStep and #sgdEmaStep, PyTorch's SGD with dampening 0):
//
//     g <- fmaf(wd, p, g);  m <- fmaf(mu, m, g);  p <- p - lr * (nesterov ? fmaf(mu, m, g) : m)
//     then each shadow k is updated toward the new p as in ema_lerp_f32         (NOTE: [lerp-torch], cuda/ema.cu)
//
// (the gradient buffer is only read: the weight-decayed g lives in registers). One pass over memory: p, g and m
// are read once, p and m written once (20 bytes per parameter), and each shadow read and written once (+8 bytes).
// The multiplication lr * step and the subtraction are rounded separately (__fmul_rn, __fsub_rn: never contracted
// into an FMA), as Java evaluates them, so the result equals the CPU backend's, and equals sgd_step followed by
// ema_lerp_f32, bit for bit.
//
// Grid-stride over groups of 4 elements with 16-byte loads when every pointer is 16-byte aligned (whole buffers
// are), element by element otherwise; any grid works.
// Build: native/build-ptx.sh. Check: the NnOps conformance suite and SgdEmaStep tests.

#include <cstdint>

namespace {

constexpr int kMaxShadows = 8;

// The shadows of one update, passed by value (104 bytes, the layout of cuda/ema.cu's EmaShadows).
struct SgdShadows {
    float* e[kMaxShadows];
    float w[kMaxShadows];
    int k;
};

struct SgdParams {
    float wd;
    float mu;
    float lr;
    int nesterov;
};

#ifdef EMA4J_HOST_EMULATION
// The host build uses -ffp-contract=off: plain operators round each operation.
__device__ __forceinline__ float mul_rn(float a, float b) { return a * b; }
__device__ __forceinline__ float sub_rn(float a, float b) { return a - b; }
#else
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
#endif

// One element: updates p and m in place and returns the new p.
__device__ __forceinline__ float sgd(float& p, float g, float& m, const SgdParams& s) {
    const float gd = fmaf(s.wd, p, g);
    m = fmaf(s.mu, m, gd);
    p = sub_rn(p, mul_rn(s.lr, s.nesterov ? fmaf(s.mu, m, gd) : m));
    return p;
}

__device__ __forceinline__ float lerp(float w, float p, float e) {
    const float d = sub_rn(p, e);  // NOTE: [lerp-torch] in cuda/ema.cu
    const bool low = w < 0.5f;
    return fmaf(low ? w : -sub_rn(1.0f, w), d, low ? e : p);
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

// p, m updated; g read; shadows.k in [0, 8] shadows updated from the new p.
extern "C" __global__ void sgd_step_f32(float* p, const float* g, float* m, long long n, SgdParams s,
                                        SgdShadows shadows) {
    const long long first = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    bool vector = aligned16(p) && aligned16(g) && aligned16(m);
#pragma unroll
    for (int k = 0; k < kMaxShadows; ++k) {  // unrolled with constant indices: the struct stays in registers
        if (k < shadows.k) vector = vector && aligned16(shadows.e[k]);
    }
    long long done = 0;
    if (vector) {
        const long long groups = n / 4;
        for (long long v = first; v < groups; v += stride) {
            float4 pv = reinterpret_cast<float4*>(p)[v];
            const float4 gv = reinterpret_cast<const float4*>(g)[v];
            float4 mv = reinterpret_cast<float4*>(m)[v];
            sgd(pv.x, gv.x, mv.x, s);
            sgd(pv.y, gv.y, mv.y, s);
            sgd(pv.z, gv.z, mv.z, s);
            sgd(pv.w, gv.w, mv.w, s);
            reinterpret_cast<float4*>(p)[v] = pv;
            reinterpret_cast<float4*>(m)[v] = mv;
#pragma unroll
            for (int k = 0; k < kMaxShadows; ++k) {
                if (k >= shadows.k) break;
                const float w = shadows.w[k];
                float4 ev = reinterpret_cast<float4*>(shadows.e[k])[v];
                ev.x = lerp(w, pv.x, ev.x);
                ev.y = lerp(w, pv.y, ev.y);
                ev.z = lerp(w, pv.z, ev.z);
                ev.w = lerp(w, pv.w, ev.w);
                reinterpret_cast<float4*>(shadows.e[k])[v] = ev;
            }
        }
        done = groups * 4;
    }
    for (long long i = done + first; i < n; i += stride) {
        float pi = p[i];
        float mi = m[i];
        sgd(pi, g[i], mi, s);
        p[i] = pi;
        m[i] = mi;
#pragma unroll
        for (int k = 0; k < kMaxShadows; ++k) {
            if (k >= shadows.k) break;
            shadows.e[k][i] = lerp(shadows.w[k], pi, shadows.e[k][i]);
        }
    }
}
