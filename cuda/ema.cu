// ema.cu: exponential moving average of weights (the "EMA lerp") for ema4j.
//
// Formula, NOTE: [lerp-torch]. For each shadow k with weight w_k = 1 - decay_k (computed in double on the host,
// rounded once to fp32), in fp32 arithmetic:
//
//     d = p - e_k                                        (rounded once: __fsub_rn, never contracted)
//     e_k <- w_k < 0.5f ? fmaf(w_k, d, e_k)              (= e_k + w_k * (p - e_k))
//                       : fmaf(-(1.0f - w_k), d, p)      (= p - (1 - w_k) * (p - e_k); 1 - w_k is exact)
//
// which is, bit for bit, PyTorch's CPU e.lerp_(p, w_k) for fp32 e (torch 1.13, x86-64 with AVX2; golden vectors
// in bench/golden). The coefficient is -(1 - w_k), not w_k - 1: at w_k = 1 they differ in the sign of zero. No
// flush to zero (compute_75 PTX without fast math keeps subnormals); NaN and infinities follow the formula.
// p is read once per element (fp32, bf16 or fp16, widened to fp32 in registers) and up to K = 8 fp32 shadows
// are updated in the same pass. The Java CPU backend (dev.ema4j.backend.cpu.Lerp) evaluates the same operations,
// so both backends produce bit-identical shadows.
//
// NOTE: [half-conversions]. bf16/fp16 <-> fp32 conversions are integer code written the same way in Java
// (dev.ema4j.backend.HalfFloats): widening is exact; narrowing rounds to nearest even, overflows to infinity,
// and turns every NaN into the quiet NaN 0x7fc0 (bf16) / 0x7e00 (fp16) with the input's sign.
//
// Kernels, named <op>_<variant>_<dtype>:
//   ema_lerp_{f32,bf16,f16}    one flat parameter buffer, grid-stride, 16-byte vectors (NOTE: [vector-peeling])
//   ema_lerp_foreach           many parameter buffers of any mix of dtypes in one launch, driven by a tensor
//                              table and a chunk map that stay on the device while the buffer set is unchanged
//   ema_check_foreach          non-finite guard: raises guard[0] when any parameter is NaN or +-Inf; 16-byte
//                              vectors with a scalar head and tail, so it costs one read of the parameters
//   ema_to_shadow_foreach      shadow <- fp32(params)          (ema_0 = x_0, and loads)
//   ema_from_shadow_foreach    params <- round_rn(shadow)      (copyTo, swapInto)
//
// Guard protocol (no host synchronization): the host clears guard[0], launches ema_check_foreach, then the lerp
// kernel. A lerp kernel given a guard returns at once when guard[0] != 0, leaving every shadow untouched, and
// its thread (0, 0) adds 1 to guard[1], the count of skipped updates.
//
// NOTE: [vector-peeling]. Pointers are element-aligned (4 bytes for fp32 and the shadows, 2 for bf16/fp16: the Java
// side refuses others), not necessarily 16-byte aligned (a user's device pointer into a flat buffer, a chunk of a
// table). Each range [begin, end) that a thread group updates is split into a scalar head, a body of 16-byte
// vectors and a scalar tail; every element is computed by the same per-element arithmetic whichever part it falls
// in, so the split never changes a bit of the result (NOTE: [lerp-torch]).
//   - The shadows decide the split: they are read and written, 8 bytes per element each, against 2 or 4 bytes of
//     parameters read, and a store cannot be shifted. The head ends where every shadow reaches a 16-byte boundary;
//     shadows that are not co-aligned with each other (never in ema4j: they are allocations with one layout) leave
//     the whole range scalar.
//   - Parameters co-aligned with the shadows are read with 16-byte loads. Otherwise (a parameter pointer 4, 8 or 12
//     bytes past a boundary while the shadows are aligned, or any odd multiple of 2 bytes for bf16/fp16) each vector
//     of parameters is assembled from the two aligned 16-byte blocks that hold it, with a funnel shift in registers.
//     Per warp that is two fully coalesced 512-byte loads, the second one mostly an L1 hit (the next thread's
//     first block), instead of kVec scalar loads 16 bytes apart that touch 4 cache lines each: DRAM traffic is the
//     same as for aligned parameters, and the shadows keep their vector loads and stores.
//   - No byte outside [begin, end) is read: the head is lengthened so that the first block of a shifted body
//     starts at or after `begin`, and the body is shortened so that its last block ends at or before `end`.
// ema_check_foreach reads parameters only: its head ends at the parameters' own 16-byte boundary.
//
// Build: native/build-ptx.sh (nvcc -ptx for compute_75, no fast math). Check: native/ema_check.cu.

#include <cstdint>

// NOTE: [lerp-registers]. The lerp kernels are capped at 48 registers per thread (ptxas assembles them without
// spills for sm_80 and sm_90: native/ptxas-check.sh). Left alone, ptxas keeps every shadow pointer and weight of
// the three loops (head, vector body, tail) and the shifted loads in registers, up to 72 per thread: 3 blocks of
// 256 threads per multiprocessor, and fewer loads in flight. With 48, 5 blocks fit (62.5% occupancy), as for the
// foreach and bf16/fp16 kernels before the head peeling; ema_lerp_f32 had 34 registers, 6 blocks.
#ifdef EMA4J_HOST_EMULATION
#define EMA4J_MAX_REGISTERS(n)
#else
#define EMA4J_MAX_REGISTERS(n) __maxnreg__(n)
#endif

namespace {

constexpr int kMaxShadows = 8;
enum DType : int { F32 = 0, BF16 = 1, F16 = 2 };

// The shadows of one update, passed by value: up to 8 fp32 buffers and their weights.
struct EmaShadows {
    float* e[kMaxShadows];
    float w[kMaxShadows];
    int k;
};

// One parameter buffer of a foreach launch (32 bytes, mirrored by CudaParamTable).
struct EmaTensor {
    const void* param;
    long long length;        // elements
    long long shadow_offset; // elements into each shadow buffer
    int dtype;
    int unused;
};

// One chunk of a foreach launch: elements [begin, min(begin + chunk_size, length)) of tensor `tensor`.
struct EmaChunk {
    int tensor;
    int unused;
    long long begin;
};

// NOTE: [lerp-torch], written with selects: the coefficient is hoisted out of the loops, and no branch remains.
__device__ __forceinline__ float lerp(float w, float p, float e) {
    const float d = __fsub_rn(p, e);
    const bool low = w < 0.5f;
    return fmaf(low ? w : -__fsub_rn(1.0f, w), d, low ? e : p);
}

// --- NOTE: [half-conversions] -------------------------------------------------------------------------------
__device__ __forceinline__ float bf16_to_f32(uint32_t h) { return __uint_as_float(h << 16); }

__device__ __forceinline__ float f16_to_f32(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (man << 13));
    if (exp == 0u) return __uint_as_float(sign | __float_as_uint(static_cast<float>(man) * 5.9604644775390625e-8f));
    return __uint_as_float(sign | ((exp + 112u) << 23) | (man << 13));
}

__device__ __forceinline__ uint32_t f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) & 0x8000u) | 0x7fc0u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

__device__ __forceinline__ uint32_t f32_to_f16(float f) {
    uint32_t u = __float_as_uint(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
    if (a < 0x38800000u) {                         // below 2^-14: fp16 subnormal or zero
        if (a <= 0x33000000u) return sign;         // <= 2^-25 rounds to zero (the tie goes to even 0)
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - (a >> 23);         // 14 ..= 24
        uint32_t r = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) ++r;
        return sign | r;
    }
    uint32_t r = (a - 0x38000000u) >> 13;
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
    return sign | r;
}

// --- loading parameters --------------------------------------------------------------------------------------
template <int DT> struct Param;

template <> struct Param<F32> {
    static constexpr int kVec = 4;  // elements per 16-byte load
    static constexpr int kBytes = 4;
    static __device__ __forceinline__ float load(const void* p, long long i) {
        return static_cast<const float*>(p)[i];
    }
    static __device__ __forceinline__ void unpack(uint4 v, float* out) {
        out[0] = __uint_as_float(v.x); out[1] = __uint_as_float(v.y);
        out[2] = __uint_as_float(v.z); out[3] = __uint_as_float(v.w);
    }
    static __device__ __forceinline__ bool finite(uint32_t bits) { return (bits & 0x7f800000u) != 0x7f800000u; }
    // 1 when any of the 4 elements of v is NaN or +-Inf
    static __device__ __forceinline__ uint32_t nonfinite(uint4 v) {
        return !finite(v.x) | !finite(v.y) | !finite(v.z) | !finite(v.w);
    }
    static __device__ __forceinline__ uint32_t bits(const void* p, long long i) {
        return static_cast<const uint32_t*>(p)[i];
    }
    static __device__ __forceinline__ void store(void* p, long long i, float v) { static_cast<float*>(p)[i] = v; }
};

template <int DT> struct HalfParam {
    static constexpr int kVec = 8;
    static constexpr int kBytes = 2;
    static __device__ __forceinline__ float widen(uint32_t h) { return DT == BF16 ? bf16_to_f32(h) : f16_to_f32(h); }
    static __device__ __forceinline__ float load(const void* p, long long i) {
        return widen(static_cast<const uint16_t*>(p)[i]);
    }
    static __device__ __forceinline__ void unpack(uint4 v, float* out) {
        uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            out[2 * j] = widen(words[j] & 0xffffu);
            out[2 * j + 1] = widen(words[j] >> 16);
        }
    }
    static __device__ __forceinline__ bool finite(uint32_t h) {
        uint32_t mask = DT == BF16 ? 0x7f80u : 0x7c00u;
        return (h & mask) != mask;
    }
    // 1 when any of the 8 elements of v is NaN or +-Inf
    static __device__ __forceinline__ uint32_t nonfinite(uint4 v) {
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
        uint32_t bad = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) bad |= !finite(words[j] & 0xffffu) | !finite(words[j] >> 16);
        return bad;
    }
    static __device__ __forceinline__ uint32_t bits(const void* p, long long i) {
        return static_cast<const uint16_t*>(p)[i];
    }
    static __device__ __forceinline__ void store(void* p, long long i, float v) {
        static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(DT == BF16 ? f32_to_bf16(v) : f32_to_f16(v));
    }
};

template <> struct Param<BF16> : HalfParam<BF16> {};
template <> struct Param<F16> : HalfParam<F16> {};

// The offset of p past the 16-byte boundary below it (0 to 15 bytes).
__device__ __forceinline__ unsigned misalignment(const void* p) {
    return static_cast<unsigned>(reinterpret_cast<uintptr_t>(p) & 15u);
}

// The 16 bytes at `a`, which lies `shift` bytes (1 to 15) past a 16-byte boundary: two aligned 16-byte loads of
// the blocks that hold them, then a funnel shift in registers (little-endian: the byte at the lowest address is the
// lowest byte of a word). The selects keep w in registers (an index computed at run time would put it in local
// memory). NOTE: [vector-peeling].
__device__ __forceinline__ uint4 load_shifted(const char* a, unsigned shift) {
    const uint4* blocks = reinterpret_cast<const uint4*>(a - shift);
    const uint4 lo = blocks[0];
    const uint4 hi = blocks[1];
    const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    const unsigned words = shift >> 2;
    const unsigned bits = (shift & 3u) * 8u;
    uint32_t o[5];
#pragma unroll
    for (int j = 0; j < 5; ++j) o[j] = words == 0 ? w[j] : words == 1 ? w[j + 1] : words == 2 ? w[j + 2] : w[j + 3];
    uint32_t r[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        r[j] = static_cast<uint32_t>(((static_cast<unsigned long long>(o[j + 1]) << 32) | o[j]) >> bits);
    }
    return uint4{r[0], r[1], r[2], r[3]};
}

// How a range [begin, end) splits into a scalar head [begin, body), a body of `vectors` vectors of kVec elements
// whose parameters lie `shift` bytes past a 16-byte boundary, and a scalar tail (NOTE: [vector-peeling]).
struct Split {
    long long body;
    long long vectors;
    unsigned shift;
};

template <int DT>
__device__ __forceinline__ Split lerp_split(const void* p, long long shadow_offset, long long begin, long long end,
                                            const EmaShadows& s) {
    using P = Param<DT>;
    const unsigned pa = misalignment(static_cast<const char*>(p) + begin * P::kBytes);
    const unsigned sa = s.k > 0 ? misalignment(s.e[0] + shadow_offset + begin) : 0u;
    bool vec = (sa & 3u) == 0 && pa % P::kBytes == 0;
#pragma unroll
    for (int k = 1; k < kMaxShadows; ++k) {
        if (k < s.k) vec = vec && misalignment(s.e[k] + shadow_offset + begin) == sa;
    }
    // h = elements before the shadows' boundary, plus multiples of 4 (which keep them aligned): for bf16/fp16 one
    // of h and h + 4 may align the parameters too; a shifted body must not read before `begin`.
    long long h = ((16u - sa) & 15u) / 4u;
    unsigned shift = (pa + h * P::kBytes) & 15u;
    if (P::kVec == 8 && shift == 8u) {
        h += 4;
        shift = 0;
    }
    while (shift != 0 && h * P::kBytes < shift) {
        h += 4;
        shift = (shift + 4u * P::kBytes) & 15u;
    }
    const long long n = end - begin;
    // a shifted body reads (16 - shift) bytes past its last vector: they must lie in the range
    const long long room = n - h - (shift == 0 ? 0 : (16 - shift) / P::kBytes);
    if (!vec || room < P::kVec) return Split{end, 0, 0};
    return Split{begin + h, room / P::kVec, shift};
}

// Elements [from, to) one by one, indices relative to p and to the shadow pointers e (from may be negative).
template <int DT>
__device__ __forceinline__ void lerp_scalar(const void* p, float* const* e, const EmaShadows& s, long long from,
                                            long long to, long long first, long long step) {
    for (long long i = from + first; i < to; i += step) {
        const float x = Param<DT>::load(p, i);
#pragma unroll
        for (int k = 0; k < kMaxShadows; ++k) {
            if (k >= s.k) break;
            e[k][i] = lerp(s.w[k], x, e[k][i]);
        }
    }
}

// --- the update over one range of one tensor -----------------------------------------------------------------
// Updates elements [begin, end) of a tensor whose shadow starts at `shadow_offset`; this thread takes the
// elements (or vectors of kVec elements) first, first + step, ... of each part of the split. Every address is
// taken relative to the start of the body, so that one set of shadow pointers serves the three loops.
template <int DT>
__device__ void lerp_range(const void* p, long long shadow_offset, long long begin, long long end,
                           const EmaShadows& s, long long first, long long step) {
    using P = Param<DT>;
    const Split sp = lerp_split<DT>(p, shadow_offset, begin, end, s);
    const char* params = static_cast<const char*>(p) + sp.body * P::kBytes;
    float* e[kMaxShadows];
#pragma unroll
    for (int k = 0; k < kMaxShadows; ++k) e[k] = k < s.k ? s.e[k] + shadow_offset + sp.body : nullptr;
    lerp_scalar<DT>(params, e, s, begin - sp.body, 0, first, step);
    const long long body_end = sp.vectors * P::kVec;
    for (long long i = first * P::kVec; i < body_end; i += step * P::kVec) {
        const char* a = params + i * P::kBytes;
        float x[P::kVec];
        P::unpack(sp.shift == 0 ? *reinterpret_cast<const uint4*>(a) : load_shifted(a, sp.shift), x);
#pragma unroll
        for (int k = 0; k < kMaxShadows; ++k) {
            if (k >= s.k) break;
            float4* e4 = reinterpret_cast<float4*>(e[k] + i);
            const float w = s.w[k];
#pragma unroll
            for (int j = 0; j < P::kVec / 4; ++j) {
                float4 v = e4[j];
                v.x = lerp(w, x[4 * j], v.x);
                v.y = lerp(w, x[4 * j + 1], v.y);
                v.z = lerp(w, x[4 * j + 2], v.z);
                v.w = lerp(w, x[4 * j + 3], v.w);
                e4[j] = v;
            }
        }
    }
    lerp_scalar<DT>(params, e, s, body_end, end - sp.body, first, step);
}

// True when the guard is raised: this update is skipped (and counted once, by thread (0, 0)).
__device__ __forceinline__ bool skip_update(int* guard) {
    if (guard == nullptr || guard[0] == 0) return false;
    if (blockIdx.x == 0 && threadIdx.x == 0) atomicAdd(guard + 1, 1);
    return true;
}

template <int DT>
__device__ void lerp_flat(const void* p, long long n, const EmaShadows& s, int* guard) {
    if (skip_update(guard)) return;
    long long first = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    long long step = static_cast<long long>(gridDim.x) * blockDim.x;
    lerp_range<DT>(p, 0, 0, n, s, first, step);
}

__device__ __forceinline__ long long chunk_end(const EmaChunk& c, const EmaTensor& t, int chunk_size) {
    return min(c.begin + chunk_size, t.length);
}

// True when elements [begin, end) are finite: a scalar head up to the parameters' 16-byte boundary, 16-byte
// vectors, a scalar tail; nothing outside the range is read. Every load is issued (no early exit).
template <int DT>
__device__ bool range_finite(const void* p, long long begin, long long end, long long first, long long step) {
    using P = Param<DT>;
    const char* params = static_cast<const char*>(p);
    const unsigned pa = misalignment(params + begin * P::kBytes);
    long long h = ((16u - pa) & 15u) / P::kBytes;
    if (pa % P::kBytes != 0 || h > end - begin) h = end - begin;
    const long long body = begin + h;
    const long long vectors = (end - body) / P::kVec;
    const long long tail = body + vectors * P::kVec;
    uint32_t bad = 0;
    const uint4* v4 = reinterpret_cast<const uint4*>(params + body * P::kBytes);
    for (long long v = first; v < vectors; v += step) bad |= P::nonfinite(v4[v]);
    for (long long i = begin + first; i < body; i += step) bad |= !P::finite(P::bits(p, i));
    for (long long i = tail + first; i < end; i += step) bad |= !P::finite(P::bits(p, i));
    return bad == 0;
}

template <int DT>
__device__ void to_shadow_range(const void* p, float* e, long long begin, long long end, long long first,
                                long long step) {
    for (long long i = begin + first; i < end; i += step) e[i] = Param<DT>::load(p, i);
}

template <int DT>
__device__ void from_shadow_range(const float* e, void* p, long long begin, long long end, long long first,
                                  long long step) {
    for (long long i = begin + first; i < end; i += step) Param<DT>::store(p, i, e[i]);
}

}  // namespace

extern "C" __global__ void EMA4J_MAX_REGISTERS(48)
ema_lerp_f32(const void* p, long long n, EmaShadows s, int* guard) {
    lerp_flat<F32>(p, n, s, guard);
}

extern "C" __global__ void EMA4J_MAX_REGISTERS(48)
ema_lerp_bf16(const void* p, long long n, EmaShadows s, int* guard) {
    lerp_flat<BF16>(p, n, s, guard);
}

extern "C" __global__ void EMA4J_MAX_REGISTERS(48)
ema_lerp_f16(const void* p, long long n, EmaShadows s, int* guard) {
    lerp_flat<F16>(p, n, s, guard);
}

extern "C" __global__ void EMA4J_MAX_REGISTERS(48)
ema_lerp_foreach(const EmaTensor* tensors, const EmaChunk* chunks, int n_chunks, int chunk_size, EmaShadows s,
                 int* guard) {
    if (skip_update(guard)) return;
    for (int c = blockIdx.x; c < n_chunks; c += gridDim.x) {
        EmaChunk chunk = chunks[c];
        EmaTensor t = tensors[chunk.tensor];
        long long end = chunk_end(chunk, t, chunk_size);
        switch (t.dtype) {
            case F32: lerp_range<F32>(t.param, t.shadow_offset, chunk.begin, end, s, threadIdx.x, blockDim.x); break;
            case BF16: lerp_range<BF16>(t.param, t.shadow_offset, chunk.begin, end, s, threadIdx.x, blockDim.x); break;
            default: lerp_range<F16>(t.param, t.shadow_offset, chunk.begin, end, s, threadIdx.x, blockDim.x); break;
        }
    }
}

// The chunks are taken from the last to the first: the parameters read last, the first chunks, are those the lerp
// kernel launched next reads first, so they may still be in L2.
extern "C" __global__ void ema_check_foreach(const EmaTensor* tensors, const EmaChunk* chunks, int n_chunks,
                                             int chunk_size, int* guard) {
    bool ok = true;
    for (int c = blockIdx.x; c < n_chunks; c += gridDim.x) {
        EmaChunk chunk = chunks[n_chunks - 1 - c];
        EmaTensor t = tensors[chunk.tensor];
        long long end = chunk_end(chunk, t, chunk_size);
        switch (t.dtype) {
            case F32: ok = range_finite<F32>(t.param, chunk.begin, end, threadIdx.x, blockDim.x) && ok; break;
            case BF16: ok = range_finite<BF16>(t.param, chunk.begin, end, threadIdx.x, blockDim.x) && ok; break;
            default: ok = range_finite<F16>(t.param, chunk.begin, end, threadIdx.x, blockDim.x) && ok; break;
        }
    }
    if (!ok) guard[0] = 1;
}

extern "C" __global__ void ema_to_shadow_foreach(const EmaTensor* tensors, const EmaChunk* chunks, int n_chunks,
                                                 int chunk_size, float* shadow) {
    for (int c = blockIdx.x; c < n_chunks; c += gridDim.x) {
        EmaChunk chunk = chunks[c];
        EmaTensor t = tensors[chunk.tensor];
        long long end = chunk_end(chunk, t, chunk_size);
        float* e = shadow + t.shadow_offset;
        switch (t.dtype) {
            case F32: to_shadow_range<F32>(t.param, e, chunk.begin, end, threadIdx.x, blockDim.x); break;
            case BF16: to_shadow_range<BF16>(t.param, e, chunk.begin, end, threadIdx.x, blockDim.x); break;
            default: to_shadow_range<F16>(t.param, e, chunk.begin, end, threadIdx.x, blockDim.x); break;
        }
    }
}

extern "C" __global__ void ema_from_shadow_foreach(const EmaTensor* tensors, const EmaChunk* chunks, int n_chunks,
                                                   int chunk_size, const float* shadow) {
    for (int c = blockIdx.x; c < n_chunks; c += gridDim.x) {
        EmaChunk chunk = chunks[c];
        EmaTensor t = tensors[chunk.tensor];
        long long end = chunk_end(chunk, t, chunk_size);
        const float* e = shadow + t.shadow_offset;
        void* p = const_cast<void*>(t.param);
        switch (t.dtype) {
            case F32: from_shadow_range<F32>(e, p, chunk.begin, end, threadIdx.x, blockDim.x); break;
            case BF16: from_shadow_range<BF16>(e, p, chunk.begin, end, threadIdx.x, blockDim.x); break;
            default: from_shadow_range<F16>(e, p, chunk.begin, end, threadIdx.x, blockDim.x); break;
        }
    }
}
