// ema_check.cu: standalone check (and, on a GPU, benchmark) of the kernels in cuda/ema.cu, in the style of
// karpathy/llm.c's dev/cuda files. Every kernel's output is compared bit for bit with a plain CPU reference written
// here, independently of ema.cu (NaN compares equal to NaN in fp32 shadows; everything else is bit-exact).
//
// GPU:             nvcc -O3 -std=c++17 -arch=native native/ema_check.cu -o ema_check && ./ema_check
// host emulation:  g++ -O2 -std=c++17 -ffp-contract=off -Wno-unknown-pragmas -x c++
//                      -include native/cuda_host_shim.h native/ema_check.cu -o ema_check_host && ./ema_check_host
//                  (each launch runs every block and thread sequentially on the CPU; see cuda_host_shim.h)
// native/check.sh does both (the GPU build only when nvidia-smi finds a GPU).
//
// usage: ema_check [--quick] [--no-bench] [--bench-only] [--verbose] [--seed N]
//   --quick       fewer sizes and launch configurations (the sanitizer build of native/check.sh uses it)
//   --no-bench    skip the timings (GPU only; there are none in host emulation)
//   --bench-only  skip the checks (GPU only)
//   --verbose     print every launch, not only one line per case
// Exits 0 when every case passes, 1 when any fails, 2 on a setup error.
// Built with -fsanitize=address (native/check.sh, step 2), each launch also runs behind read fences (struct Fence):
// a kernel that reads outside the ranges it may touch stops the run.

#include "../cuda/ema.cu"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifdef __CUDACC__
#include <cuda_runtime.h>
static constexpr bool kEmulated = false;
#define CUDA_CHECK(call)                                                                                      \
    do {                                                                                                      \
        cudaError_t err_ = (call);                                                                            \
        if (err_ != cudaSuccess) {                                                                            \
            std::fprintf(stderr, "CUDA error: %s at %s:%d: %s\n", #call, __FILE__, __LINE__,                  \
                         cudaGetErrorString(err_));                                                           \
            std::exit(2);                                                                                     \
        }                                                                                                     \
    } while (0)
// The one place a check launches a kernel: <<<>>> on the GPU, a sequential loop over blocks and threads on the host.
#define LAUNCH(kernel, grid, block, ...)                                                                      \
    do {                                                                                                      \
        auto kernel_ = (kernel);                                                                              \
        kernel_<<<static_cast<unsigned int>(grid), static_cast<unsigned int>(block)>>>(__VA_ARGS__);          \
        CUDA_CHECK(cudaGetLastError());                                                                       \
        CUDA_CHECK(cudaDeviceSynchronize());                                                                  \
    } while (0)
#else
#ifndef EMA4J_HOST_EMULATION
#error "host build: compile with -include native/cuda_host_shim.h (see the header of this file)"
#endif
static constexpr bool kEmulated = true;
#define LAUNCH(kernel, grid, block, ...) \
    ema_emulate_launch(dim3(static_cast<unsigned int>(grid)), dim3(static_cast<unsigned int>(block)), kernel, __VA_ARGS__)
#endif

// ===================================================================================================================
// Options, bookkeeping
// ===================================================================================================================
static bool g_quick = false;
static bool g_verbose = false;
static uint64_t g_seed = 0x5eed5eedULL;
static int g_cases = 0;
static int g_failed = 0;
static long long g_launches = 0;

// One PASS/FAIL line: a case runs many launches and element checks and reports the first few failures.
struct Case {
    std::string name;
    long long checks = 0;
    long long launches = 0;
    long long failures = 0;
    std::vector<std::string> first;
    explicit Case(std::string n) : name(std::move(n)) {}
    void fail(const std::string& what) {
        ++failures;
        if (first.size() < 5) first.push_back(what);
    }
    bool expect(bool ok, const std::string& what) {
        ++checks;
        if (!ok) fail(what);
        return ok;
    }
    ~Case() {
        ++g_cases;
        if (failures == 0) {
            std::printf("PASS  %-62s (%lld launches, %lld checks)\n", name.c_str(), launches, checks);
        } else {
            ++g_failed;
            std::printf("FAIL  %-62s (%lld launches, %lld checks, %lld failed)\n", name.c_str(), launches, checks,
                        failures);
            for (const std::string& f : first) std::printf("        %s\n", f.c_str());
        }
        std::fflush(stdout);
    }
};

static std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
static std::string fmt(const char* f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

// Deterministic generator (splitmix64), identical on every compiler.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    uint32_t u32() { return static_cast<uint32_t>(next() >> 32); }
    uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
    bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
};

// ===================================================================================================================
// The reference, written independently of ema.cu
// ===================================================================================================================
static inline uint32_t bits_of(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static inline float float_of(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// NOTE: [lerp-torch] in ema.cu, PyTorch's lerp: d = p - e rounded to fp32 (no product here that a compiler could
// contract into an FMA), then one fmaf: e + w*d below w = 0.5, p - (1 - w)*d from there on.
static inline float ref_lerp(float w, float p, float e) {
    float d = p - e;
    if (w < 0.5f) return std::fmaf(w, d, e);
    float v = 1.0f - w;
    return std::fmaf(-v, d, p);
}

// Widening from the definition of the formats (sign, biased exponent, fraction), computed in double.
static float ref_widen_f16(uint16_t h) {
    int sign = h >> 15, ex = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (ex == 0x1f) {
        if (man != 0) return float_of((sign ? 0xffc00000u : 0x7fc00000u) | (static_cast<uint32_t>(man) << 13));
        v = INFINITY;
    } else if (ex == 0) {
        v = std::ldexp(static_cast<double>(man), -24);
    } else {
        v = std::ldexp(static_cast<double>(1024 + man), ex - 25);
    }
    return static_cast<float>(sign ? -v : v);
}

static float ref_widen_bf16(uint16_t h) {
    int sign = h >> 15, ex = (h >> 7) & 0xff, man = h & 0x7f;
    double v;
    if (ex == 0xff) {
        if (man != 0) return float_of((sign ? 0xffc00000u : 0x7fc00000u) | (static_cast<uint32_t>(man) << 16));
        v = INFINITY;
    } else if (ex == 0) {
        v = std::ldexp(static_cast<double>(man), -133);
    } else {
        v = std::ldexp(static_cast<double>(128 + man), ex - 134);
    }
    return static_cast<float>(sign ? -v : v);
}

// Narrowing by search: the positive finite values of a 16-bit format increase with their bit pattern, so binary
// search the largest pattern not above |f| and take the nearer of it and its successor, the tie going to the even
// pattern. The infinity pattern stands for 2^(emax+1) (IEEE rounding with an unbounded exponent, then overflow).
// NaN becomes the quiet NaN 0x7fc0 / 0x7e00 with the input's sign (NOTE: [half-conversions]).
static uint16_t ref_narrow(float f, bool bf16) {
    uint32_t u = bits_of(f);
    uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    if (std::isnan(f)) return sign | (bf16 ? 0x7fc0 : 0x7e00);
    const uint16_t inf = bf16 ? 0x7f80 : 0x7c00;
    const double limit = bf16 ? 0x1.0p128 : 0x1.0p16;
    auto value = [&](uint32_t h) -> double {
        if (h == inf) return limit;
        return std::fabs(static_cast<double>(bf16 ? ref_widen_bf16(static_cast<uint16_t>(h))
                                                  : ref_widen_f16(static_cast<uint16_t>(h))));
    };
    double a = std::fabs(static_cast<double>(f));
    if (a >= limit) return sign | inf;
    uint32_t lo = 0, hi = inf;  // value(lo) <= a < value(hi)
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (value(mid) <= a) lo = mid; else hi = mid;
    }
    double below = a - value(lo), above = value(hi) - a;  // exact in double
    uint32_t r = below < above ? lo : above < below ? hi : ((lo & 1u) ? hi : lo);
    return static_cast<uint16_t>(sign | r);
}
static inline uint16_t ref_to_bf16(float f) { return ref_narrow(f, true); }
static inline uint16_t ref_to_f16(float f) { return ref_narrow(f, false); }

static const char* dtype_name(int dt) { return dt == F32 ? "f32" : dt == BF16 ? "bf16" : "f16"; }
static size_t esize(int dt) { return dt == F32 ? 4 : 2; }

static inline float ldf(const uint8_t* p) { float f; std::memcpy(&f, p, 4); return f; }
static inline void stf(uint8_t* p, float f) { std::memcpy(p, &f, 4); }
static inline uint16_t ldh(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return h; }
static inline void sth(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

// The fp32 value of the parameter element at p.
static inline float ref_param(int dt, const uint8_t* p) {
    return dt == F32 ? ldf(p) : dt == BF16 ? ref_widen_bf16(ldh(p)) : ref_widen_f16(ldh(p));
}
static inline void ref_store_param(int dt, uint8_t* p, float v) {
    if (dt == F32) stf(p, v); else sth(p, dt == BF16 ? ref_to_bf16(v) : ref_to_f16(v));
}

// ===================================================================================================================
// Device memory: buffers with red zones
// ===================================================================================================================
namespace devmem {
static void* alloc(size_t bytes) {
#ifdef __CUDACC__
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
#else
    void* p = nullptr;
    if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) {  // cudaMalloc's alignment
        std::fprintf(stderr, "out of host memory (%zu bytes)\n", bytes);
        std::exit(2);
    }
    return p;
#endif
}
static void release(void* p) {
#ifdef __CUDACC__
    CUDA_CHECK(cudaFree(p));
#else
    std::free(p);
#endif
}
static void h2d(void* d, const void* h, size_t n) {
#ifdef __CUDACC__
    CUDA_CHECK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
#else
    std::memcpy(d, h, n);
#endif
}
static void d2h(void* h, const void* d, size_t n) {
#ifdef __CUDACC__
    CUDA_CHECK(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost));
#else
    std::memcpy(h, d, n);
#endif
}
}  // namespace devmem

// A device buffer of `bytes` data bytes between two 256-byte red zones. `img` is the host image of the whole
// allocation (red zones included); d() points at the first data byte (256-byte aligned) on the device.
constexpr size_t kPad = 256;
struct Buf {
    size_t bytes;
    uint8_t* dev;
    std::vector<uint8_t> img;
    Buf(size_t b, uint8_t pad_byte) : bytes(b), dev(nullptr), img(b + 2 * kPad, pad_byte) {
        dev = static_cast<uint8_t*>(devmem::alloc(img.size()));
    }
    ~Buf() { devmem::release(dev); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    uint8_t* h(size_t byte_off = 0) { return img.data() + kPad + byte_off; }
    void* d(size_t byte_off = 0) const { return dev + kPad + byte_off; }
    void upload() const { devmem::h2d(dev, img.data(), img.size()); }
    std::vector<uint8_t> download() const {
        std::vector<uint8_t> out(img.size());
        devmem::d2h(out.data(), dev, img.size());
        return out;
    }
};

// Compares a downloaded image with the expected one: every byte, except that a 4-byte word of the data area that
// holds NaN in both passes when `floats` (fp32 shadows: the NaN a GPU computes is 0x7fffffff, the host's keeps the
// input's payload). Returns true when equal; otherwise describes the first difference in `err`.
static bool same_image(const std::vector<uint8_t>& want, const std::vector<uint8_t>& got, size_t data_bytes,
                       bool floats, long long* n_diff, std::string* err) {
    long long diffs = 0;
    size_t first = SIZE_MAX;
    if (std::memcmp(want.data(), got.data(), want.size()) == 0) return true;
    for (size_t i = 0; i < want.size();) {
        bool in_data = i >= kPad && i < kPad + data_bytes;
        if (floats && in_data && (i - kPad) % 4 == 0 && i + 4 <= kPad + data_bytes) {
            float a = ldf(&want[i]), b = ldf(&got[i]);
            if (std::memcmp(&want[i], &got[i], 4) != 0 && !(std::isnan(a) && std::isnan(b))) {
                if (first == SIZE_MAX) first = i;
                ++diffs;
            }
            i += 4;
        } else {
            if (want[i] != got[i]) {
                if (first == SIZE_MAX) first = i;
                ++diffs;
            }
            ++i;
        }
    }
    if (diffs == 0) return true;
    if (n_diff) *n_diff = diffs;
    if (err) {
        long long off = static_cast<long long>(first) - static_cast<long long>(kPad);
        const char* where = first < kPad ? "front red zone" : first >= kPad + data_bytes ? "back red zone" : "data";
        size_t w = floats && first >= kPad && first < kPad + data_bytes ? first - (first - kPad) % 4 : first;
        if (floats && w >= kPad && w + 4 <= kPad + data_bytes) {
            *err = fmt("%lld differing %s; first at byte %lld (%s, float #%lld): want 0x%08x (%.9g) got 0x%08x (%.9g)",
                       diffs, floats ? "words/bytes" : "bytes", off, where, (off - off % 4) / 4, bits_of(ldf(&want[w])),
                       static_cast<double>(ldf(&want[w])), bits_of(ldf(&got[w])), static_cast<double>(ldf(&got[w])));
        } else {
            *err = fmt("%lld differing bytes; first at byte %lld (%s): want 0x%02x got 0x%02x", diffs, off, where,
                       want[first], got[first]);
        }
    }
    return false;
}

// Read fences. In the AddressSanitizer build (native/check.sh, step 2) the bytes of an allocation outside the ranges
// a launch may touch are poisoned while it runs, so that an access outside them stops the run: a read, which the red
// zones cannot show (NOTE: [vector-peeling] in ema.cu: no byte outside a range is read, not even in the 16-byte
// block that holds its first or last element). ASan tracks 8-byte granules: the bytes before a range that share
// its first granule stay readable. Elsewhere a fence does nothing.
struct Fence {
#ifdef __SANITIZE_ADDRESS__
    const Buf* buf;
    // allowed: [begin, end) byte ranges of the data area (offsets from d())
    Fence(const Buf& b, std::vector<std::pair<size_t, size_t>> allowed) : buf(&b) {
        std::sort(allowed.begin(), allowed.end());
        size_t pos = 0;  // offsets in the whole allocation, red zones included
        for (const auto& range : allowed) {
            const size_t lo = kPad + range.first, hi = kPad + range.second;
            if (lo > pos) ASAN_POISON_MEMORY_REGION(b.dev + pos, lo - pos);
            pos = std::max(pos, hi);
        }
        if (b.img.size() > pos) ASAN_POISON_MEMORY_REGION(b.dev + pos, b.img.size() - pos);
    }
    ~Fence() { ASAN_UNPOISON_MEMORY_REGION(buf->dev, buf->img.size()); }
    Fence(const Fence&) = delete;
    Fence& operator=(const Fence&) = delete;
#else
    Fence(const Buf&, const std::vector<std::pair<size_t, size_t>>&) {}
#endif
};

// ===================================================================================================================
// Test data
// ===================================================================================================================
// A finite fp32 of moderate magnitude: +-(1 + m) * 2^[-9, 3].
static float rand_moderate(Rng& r) {
    uint32_t u = r.u32();
    uint32_t ex = 127 - 9 + static_cast<uint32_t>(r.below(13));
    return float_of((u & 0x80000000u) | (ex << 23) | (u & 0x7fffffu));
}

static const uint32_t kSpecialF32[] = {
    0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u, 0x007fffffu, 0x807fffffu, 0x00800000u, 0x80800000u,
    0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u,
    0x7fbfffffu, 0xffffffffu, 0x3f800000u, 0xbf800000u, 0x477fe000u, 0x477ff000u, 0x33000000u, 0x38800000u,
};

// fp32 special (when allowed) or moderate; "finite_only" keeps +-0, subnormals and extremes but no Inf/NaN.
static float rand_shadow_value(Rng& r, bool specials) {
    if (specials && r.chance(0.05)) return float_of(kSpecialF32[r.below(sizeof kSpecialF32 / 4)]);
    return rand_moderate(r);
}

// Writes one random parameter element of dtype dt at p: moderate values, finite specials when `edges`, and
// non-finite values when `nonfinite`.
static void rand_param(Rng& r, int dt, uint8_t* p, bool edges, bool nonfinite) {
    if (dt == F32) {
        float v = rand_moderate(r);
        if (edges && r.chance(0.05)) {
            static const uint32_t fin[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00800000u,
                                           0x7f7fffffu, 0xff7fffffu, 0x3f800000u};
            v = float_of(fin[r.below(8)]);
        }
        if (nonfinite && r.chance(0.02)) {
            static const uint32_t nf[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xffffffffu};
            v = float_of(nf[r.below(6)]);
        }
        stf(p, v);
        return;
    }
    uint16_t h;
    if (dt == BF16) {
        h = static_cast<uint16_t>(bits_of(rand_moderate(r)) >> 16);
        if (edges && r.chance(0.05)) {
            static const uint16_t fin[] = {0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f, 0x3f80};
            h = fin[r.below(8)];
        }
        if (nonfinite && r.chance(0.02)) {
            static const uint16_t nf[] = {0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0xffff};
            h = nf[r.below(6)];
        }
    } else {
        uint32_t u = r.u32();
        h = static_cast<uint16_t>((u & 0x8000u) | ((6u + static_cast<uint32_t>(r.below(18))) << 10) | (u & 0x3ffu));
        if (edges && r.chance(0.05)) {
            static const uint16_t fin[] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff, 0xfbff, 0x3c00};
            h = fin[r.below(8)];
        }
        if (nonfinite && r.chance(0.02)) {
            static const uint16_t nf[] = {0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0xffff};
            h = nf[r.below(6)];
        }
    }
    sth(p, h);
}

// w_k = 1 - decay_k, in double on the host, rounded once to fp32 (as the Java side does).
static float weight(int k) {
    static const double decays[] = {0.999, 0.9999, 0.5, 0.9, 0.99, 0.0, 1.0, 0.123456789};
    return static_cast<float>(1.0 - decays[k % 8]);
}

struct LaunchCfg {
    int block;
    long long grid;
};

static long long cdiv(long long a, long long b) { return (a + b - 1) / b; }

static std::vector<LaunchCfg> dedup_cfgs(std::vector<LaunchCfg> v, long long max_threads) {
    std::vector<LaunchCfg> out;
    for (LaunchCfg c : v) {
        if (c.grid < 1) c.grid = 1;
        if (c.grid > 2147483647LL) c.grid = 2147483647LL;
        if (static_cast<long long>(c.block) * c.grid > max_threads) c.grid = std::max(1LL, max_threads / c.block);
        bool seen = false;
        for (const LaunchCfg& o : out) seen = seen || (o.block == c.block && o.grid == c.grid);
        if (!seen) out.push_back(c);
    }
    return out;
}

// Emulated launches cost one call per thread: keep grid * block bounded there.
static long long max_threads() { return kEmulated ? (g_quick ? (1LL << 18) : (1LL << 21)) : (1LL << 40); }

static const int kBlocks[] = {64, 128, 256, 512, 1024};

// ===================================================================================================================
// ABI and reference self-checks
// ===================================================================================================================
static void test_abi() {
    Case c("abi: struct layouts mirrored by the Java side");
    c.expect(sizeof(EmaShadows) == 104, fmt("sizeof(EmaShadows) = %zu, want 104", sizeof(EmaShadows)));
    c.expect(offsetof(EmaShadows, e) == 0 && offsetof(EmaShadows, w) == 64 && offsetof(EmaShadows, k) == 96,
             "EmaShadows offsets e/w/k != 0/64/96");
    c.expect(alignof(EmaShadows) == 8, "alignof(EmaShadows) != 8");
    c.expect(sizeof(EmaTensor) == 32, fmt("sizeof(EmaTensor) = %zu, want 32", sizeof(EmaTensor)));
    c.expect(offsetof(EmaTensor, param) == 0 && offsetof(EmaTensor, length) == 8 &&
                 offsetof(EmaTensor, shadow_offset) == 16 && offsetof(EmaTensor, dtype) == 24,
             "EmaTensor offsets param/length/shadow_offset/dtype != 0/8/16/24");
    c.expect(sizeof(EmaChunk) == 16, fmt("sizeof(EmaChunk) = %zu, want 16", sizeof(EmaChunk)));
    c.expect(offsetof(EmaChunk, tensor) == 0 && offsetof(EmaChunk, begin) == 8, "EmaChunk offsets tensor/begin != 0/8");
    c.expect(kMaxShadows == 8 && F32 == 0 && BF16 == 1 && F16 == 2, "kMaxShadows / dtype codes changed");
}

static void test_reference() {
    Case c("reference self-check (fused fmaf, conversions)");
    // fmaf must round once: (1 + 2^-12)^2 - (1 + 2^-11) = 2^-24 exactly, but 0 when the product is rounded first.
    volatile float a = 1.0f + 0x1.0p-12f, b = -(1.0f + 0x1.0p-11f);
    c.expect(std::fmaf(a, a, b) == 0x1.0p-24f, "std::fmaf is not a fused multiply-add");
    c.expect(fmaf(a, a, b) == 0x1.0p-24f, "fmaf (as the kernels see it) is not a fused multiply-add");
    // Every non-NaN 16-bit pattern survives widen -> narrow; NaNs come back as the signed canonical NaN.
    for (uint32_t h = 0; h < 65536; ++h) {
        uint16_t hb = ref_to_bf16(ref_widen_bf16(static_cast<uint16_t>(h)));
        uint16_t hf = ref_to_f16(ref_widen_f16(static_cast<uint16_t>(h)));
        bool bnan = (h & 0x7f80u) == 0x7f80u && (h & 0x7fu);
        bool fnan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
        c.expect(hb == (bnan ? ((h & 0x8000u) | 0x7fc0u) : h), fmt("ref bf16 round trip 0x%04x -> 0x%04x", h, hb));
        c.expect(hf == (fnan ? ((h & 0x8000u) | 0x7e00u) : h), fmt("ref f16 round trip 0x%04x -> 0x%04x", h, hf));
        // widening matches the bit-level definition (exact, sign-preserving)
        if (!bnan) c.expect(bits_of(ref_widen_bf16(static_cast<uint16_t>(h))) == h << 16, fmt("ref bf16 widen 0x%04x", h));
    }
    // Known roundings.
    struct K { uint32_t f; uint16_t bf, hf; };
    static const K known[] = {
        {0x3f800000u, 0x3f80, 0x3c00}, {0x477fe000u, 0x4780, 0x7bff},
        {0x477ff000u, 0x4780, 0x7c00}, {0x477fefffu, 0x4780, 0x7bff}, {0x33000000u, 0x3300, 0x0000},
        {0x33000001u, 0x3300, 0x0001}, {0x33c00000u, 0x33c0, 0x0002}, {0x7f7f8000u, 0x7f80, 0x7c00},
        {0x7f7f7fffu, 0x7f7f, 0x7c00}, {0x3f808000u, 0x3f80, 0x3c04}, {0x3f818000u, 0x3f82, 0x3c0c},
        {0x00000001u, 0x0000, 0x0000}, {0x80000001u, 0x8000, 0x8000}, {0x7fa00000u, 0x7fc0, 0x7e00},
        {0xff800001u, 0xffc0, 0xfe00}, {0x387fc000u, 0x3880, 0x03ff}, {0x387fe000u, 0x3880, 0x0400},
    };
    for (const K& k : known) {
        uint32_t u = k.f;
        uint16_t want_bf = k.bf;
        c.expect(ref_to_bf16(float_of(u)) == want_bf,
                 fmt("ref bf16(0x%08x) = 0x%04x, want 0x%04x", u, ref_to_bf16(float_of(u)), want_bf));
        c.expect(ref_to_f16(float_of(u)) == k.hf,
                 fmt("ref f16(0x%08x) = 0x%04x, want 0x%04x", u, ref_to_f16(float_of(u)), k.hf));
    }
#if !defined(__CUDACC__) && defined(__FLT16_MAX__)
    // A third opinion for fp16: the compiler's own _Float16 conversion (round to nearest even).
    Rng r(g_seed ^ 0xf16);
    long long n = g_quick ? 200000 : 2000000;
    for (long long i = 0; i < n; ++i) {
        float f = float_of(r.u32());
        if (std::isnan(f)) continue;
        _Float16 h = static_cast<_Float16>(f);
        uint16_t hb;
        std::memcpy(&hb, &h, 2);
        if (!c.expect(ref_to_f16(f) == hb, fmt("ref f16(0x%08x) = 0x%04x, _Float16 says 0x%04x", bits_of(f),
                                                  ref_to_f16(f), hb)))
            break;
    }
#endif
}

// ===================================================================================================================
// Flat kernels: ema_lerp_{f32,bf16,f16}
// ===================================================================================================================
using FlatKernel = void (*)(const void*, long long, EmaShadows, int*);
static FlatKernel flat_kernel(int dt) { return dt == F32 ? ema_lerp_f32 : dt == BF16 ? ema_lerp_bf16 : ema_lerp_f16; }
static const char* flat_name(int dt) { return dt == F32 ? "ema_lerp_f32" : dt == BF16 ? "ema_lerp_bf16" : "ema_lerp_f16"; }

struct FlatAlign {
    std::string name;
    int p_off;        // param offset in elements (-1: 16 bytes)
    int e_off;        // shadow offset in floats, every shadow
    int e_last;       // more floats for the last shadow (not 0 mod 4: shadows that are not co-aligned)
};
static const FlatAlign kFlatAligns[] = {
    {"aligned", 0, 0, 0},
    {"p+1", 1, 0, 0},
    {"e[last]+1", 0, 0, 1},
    {"p+1 e+1", 1, 1, 0},
    {"p+16B e+16B", -1, 4, 0},
};

static std::vector<LaunchCfg> flat_cfgs(long long n, int vec) {
    std::vector<LaunchCfg> v;
    bool big = n > (kEmulated ? 70000 : 300000);
    if (big || g_quick) {
        v = {{64, 1}, {256, cdiv(n, 256LL * vec)}, {1024, 3}, {128, cdiv(n, 128) + 1}, {512, 132}};
        if (big && g_quick) v.resize(2);
    } else {
        for (int b : kBlocks) {
            v.push_back({b, 1});
            v.push_back({b, 3});
            v.push_back({b, cdiv(n, static_cast<long long>(b) * vec)});
            v.push_back({b, cdiv(n, b) + 1});
        }
    }
    return dedup_cfgs(v, max_threads());
}

// One (dtype, K, n, alignment): random data, the reference result once, then every launch configuration (those of
// flat_cfgs unless `cfgs` is given).
static void flat_run(Case& c, int dt, int K, long long n, const FlatAlign& al, Rng& r, bool specials,
                     const std::vector<LaunchCfg>* cfgs = nullptr) {
    const size_t es = esize(dt);
    const long long p_off = al.p_off < 0 ? static_cast<long long>(16 / es) : al.p_off;
    const int vec = dt == F32 ? 4 : 8;
    Buf P(static_cast<size_t>(n + p_off) * es, 0xff);  // red zones and slack hold NaN in every dtype
    for (long long i = 0; i < n; ++i) rand_param(r, dt, P.h((p_off + i) * es), true, specials);
    std::vector<std::unique_ptr<Buf>> E;
    std::vector<long long> e_off(K);
    EmaShadows s;
    std::memset(&s, 0, sizeof s);
    for (int k = 0; k < kMaxShadows; ++k) s.w[k] = NAN;  // unused slots: null pointers, NaN weights
    s.k = K;
    for (int k = 0; k < K; ++k) {
        e_off[k] = al.e_off + (k == K - 1 ? al.e_last : 0);
        E.emplace_back(new Buf(static_cast<size_t>(n + e_off[k] + 4) * 4, 0x7f));
        for (long long i = 0; i < n + e_off[k] + 4; ++i) stf(E[k]->h(i * 4), rand_shadow_value(r, specials));
        s.e[k] = static_cast<float*>(E[k]->d(e_off[k] * 4));
        s.w[k] = weight(k + static_cast<int>(n % 3));
    }
    // reference
    std::vector<std::vector<uint8_t>> want(K);
    for (int k = 0; k < K; ++k) {
        want[k] = E[k]->img;
        for (long long i = 0; i < n; ++i) {
            uint8_t* e = want[k].data() + kPad + (e_off[k] + i) * 4;
            stf(e, ref_lerp(s.w[k], ref_param(dt, P.h((p_off + i) * es)), ldf(e)));
        }
    }
    Buf G(8, 0x00);
    const int guard_init[2] = {0, 5};
    P.upload();
    int idx = 0;
    for (const LaunchCfg& cfg : cfgs ? *cfgs : flat_cfgs(n, vec)) {
        bool with_guard = (idx++ % 2) == 0;
        for (int k = 0; k < K; ++k) E[k]->upload();
        std::memcpy(G.h(), guard_init, 8);
        G.upload();
        {
            Fence fp(P, {{p_off * es, (p_off + n) * es}});
            std::vector<std::unique_ptr<Fence>> fe;
            for (int k = 0; k < K; ++k) fe.emplace_back(new Fence(*E[k], {{e_off[k] * 4, (e_off[k] + n) * 4}}));
            LAUNCH(flat_kernel(dt), cfg.grid, cfg.block, P.d(p_off * es), n, s,
                   with_guard ? static_cast<int*>(G.d()) : nullptr);
        }
        ++c.launches;
        ++g_launches;
        std::string where = fmt("%s n=%lld K=%d %s block=%d grid=%lld guard=%s", flat_name(dt), n, K, al.name.c_str(),
                                cfg.block, cfg.grid, with_guard ? "{0,5}" : "null");
        if (g_verbose) std::printf("      %s\n", where.c_str());
        for (int k = 0; k < K; ++k) {
            std::string err;
            long long nd = 0;
            c.expect(same_image(want[k], E[k]->download(), E[k]->bytes, true, &nd, &err),
                     fmt("%s: shadow %d: %s", where.c_str(), k, err.c_str()));
        }
        std::string err;
        c.expect(same_image(P.img, P.download(), P.bytes, false, nullptr, &err),
                 fmt("%s: parameters changed: %s", where.c_str(), err.c_str()));
        c.expect(same_image(G.img, G.download(), 8, false, nullptr, &err),
                 fmt("%s: guard changed: %s", where.c_str(), err.c_str()));
    }
}

static void test_flat() {
    std::vector<long long> sizes = {0, 1, 3, 7, 8, 9, 255, 256, 257, 4095, 65535, 65537, 1000003};
    if (g_quick) sizes = {0, 1, 3, 7, 8, 9, 255, 257, 4095, 65537};
    const int Ks[] = {1, 3, 8};
    for (int dt : {F32, BF16, F16}) {
        for (int K : Ks) {
            Case c(fmt("%s K=%d: sizes 0..%lld, blocks 64..1024, 5 alignments", flat_name(dt), K, sizes.back()));
            Rng r(g_seed ^ (static_cast<uint64_t>(dt) << 40) ^ (static_cast<uint64_t>(K) << 32));
            for (long long n : sizes) {
                for (const FlatAlign& al : kFlatAligns) {
                    // the largest size: every alignment on the GPU, two in emulation
                    const std::string& a = al.name;
                    if (kEmulated && n > 70000 && a != "aligned" && a != "p+1 e+1") continue;
                    flat_run(c, dt, K, n, al, r, /*specials=*/(n % 2) == 1);
                }
            }
        }
    }
}

// Head peeling (NOTE: [vector-peeling]): every parameter misalignment (each multiple of the element size below 16
// bytes) against every shadow misalignment (0 to 3 floats), with co-aligned shadows and with a last shadow one
// float further (no common vector path), for every size up to 40 and sizes around the vector multiples, so that
// the head, the body and the tail each take every length they can.
static void test_flat_alignment() {
    std::vector<long long> sizes;
    for (long long n = 0; n <= (g_quick ? 24 : 40); ++n) sizes.push_back(n);
    for (long long n : {47LL, 63LL, 64LL, 65LL, 127LL, 129LL, 1000LL, 4097LL}) sizes.push_back(n);
    if (g_quick) sizes.resize(sizes.size() - 2);
    const std::vector<LaunchCfg> one_warp = {{32, 1}};
    for (int dt : {F32, BF16, F16}) {
        const int es = static_cast<int>(esize(dt));
        Case c(fmt("%s: every param x shadow misalignment, sizes 0..%lld", flat_name(dt), sizes.back()));
        Rng r(g_seed ^ 0xa11 ^ (static_cast<uint64_t>(dt) << 36));
        for (int p_bytes = 0; p_bytes < 16; p_bytes += es) {
            for (int e_off = 0; e_off < 4; ++e_off) {
                for (int e_last : {0, 1}) {
                    const int K = e_last ? 3 : 1 + (p_bytes / es + e_off) % 3;
                    FlatAlign al{fmt("p+%dB e+%dB%s", p_bytes, 4 * e_off, e_last ? " e[last]+4B" : ""), p_bytes / es,
                                 e_off, e_last};
                    for (long long n : sizes) {
                        // one warp, and a grid with more threads than vectors
                        const int vec = dt == F32 ? 4 : 8;
                        const std::vector<LaunchCfg> cfgs =
                            dedup_cfgs({{32, 1}, {64, cdiv(n, 64LL * vec) + 1}}, max_threads());
                        flat_run(c, dt, K, n, al, r, /*specials=*/(n % 3) == 1, n < 8 ? &one_warp : &cfgs);
                    }
                }
            }
        }
    }
}

// ===================================================================================================================
// foreach kernels: tensor tables and chunk maps
// ===================================================================================================================
struct FeSet {
    std::string name;
    std::vector<int> dtype;
    std::vector<long long> len;
    std::vector<size_t> pbyte;      // byte offset of each tensor's parameters in the parameter arena
    std::vector<long long> soff;    // shadow_offset (elements)
    size_t param_bytes = 0;
    long long shadow_len = 0;
    long long elements = 0;
};

enum ParamLayout { kParamsAligned, kParamsMixed };
enum ShadowLayout { kShadowPacked, kShadowAlign4, kShadowGaps };
static const char* shadow_layout_name(ShadowLayout s) {
    return s == kShadowPacked ? "packed" : s == kShadowAlign4 ? "align4" : "gaps";
}

static FeSet make_set(const std::string& name, const std::vector<std::pair<int, long long>>& specs, ParamLayout pl,
                      ShadowLayout sl, Rng& r) {
    FeSet S;
    S.name = name + (pl == kParamsAligned ? ", params aligned" : ", params mixed") + ", shadows " +
             shadow_layout_name(sl);
    size_t pos = 0;
    long long spos = 0;
    for (const auto& sp : specs) {
        int dt = sp.first;
        long long n = sp.second;
        size_t es = esize(dt);
        int mode = pl == kParamsAligned ? 0 : static_cast<int>(r.below(4));
        if (mode == 0) pos = (pos + 255) / 256 * 256;              // own allocation
        else if (mode == 1) pos = (pos + 15) / 16 * 16;            // 16-byte aligned
        else if (mode == 2) pos = (pos + 15) / 16 * 16 + es;       // one element past 16-byte alignment
        else pos = (pos + es - 1) / es * es;                       // packed after the previous tensor
        if (sl == kShadowAlign4) spos = (spos + 3) / 4 * 4;
        if (sl == kShadowGaps) spos += static_cast<long long>(r.below(10));
        S.dtype.push_back(dt);
        S.len.push_back(n);
        S.pbyte.push_back(pos);
        S.soff.push_back(spos);
        pos += static_cast<size_t>(n) * es;
        spos += n;
        S.elements += n;
    }
    S.param_bytes = pos + 8;
    S.shadow_len = spos + 8;
    return S;
}

// The byte ranges a kernel may touch: the tensors' parameters, and their shadows (shadow pointer e_off floats in).
static std::vector<std::pair<size_t, size_t>> param_ranges(const FeSet& S) {
    std::vector<std::pair<size_t, size_t>> v;
    for (size_t t = 0; t < S.len.size(); ++t) v.push_back({S.pbyte[t], S.pbyte[t] + S.len[t] * esize(S.dtype[t])});
    return v;
}
static std::vector<std::pair<size_t, size_t>> shadow_ranges(const FeSet& S, long long e_off) {
    std::vector<std::pair<size_t, size_t>> v;
    for (size_t t = 0; t < S.len.size(); ++t)
        v.push_back({static_cast<size_t>(e_off + S.soff[t]) * 4, static_cast<size_t>(e_off + S.soff[t] + S.len[t]) * 4});
    return v;
}

// One tensor for each parameter misalignment (each multiple of the element size below 16 bytes) and shadow
// misalignment (0 to 3 floats), in every dtype, of lengths that run from 1 to 100 (NOTE: [vector-peeling]).
static FeSet make_alignment_set(Rng& r) {
    static const long long lens[] = {1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 23, 31, 33, 40, 64, 65, 100};
    FeSet S;
    S.name = "every param x shadow misalignment";
    size_t pos = 0;
    long long spos = 0;
    int j = static_cast<int>(r.below(18));
    for (int dt : {F32, BF16, F16}) {
        for (size_t p_bytes = 0; p_bytes < 16; p_bytes += esize(dt)) {
            for (long long e_off = 0; e_off < 4; ++e_off) {
                const long long n = lens[j++ % 18];
                pos = (pos + 255) / 256 * 256 + p_bytes;
                spos = (spos + 3) / 4 * 4 + e_off;
                S.dtype.push_back(dt);
                S.len.push_back(n);
                S.pbyte.push_back(pos);
                S.soff.push_back(spos);
                pos += static_cast<size_t>(n) * esize(dt);
                spos += n;
                S.elements += n;
            }
        }
    }
    S.param_bytes = pos + 8;
    S.shadow_len = spos + 8;
    return S;
}

static std::vector<EmaChunk> make_chunks(const FeSet& S, int chunk_size, bool empty_chunks, bool shuffle, Rng& r) {
    std::vector<EmaChunk> ch;
    for (size_t t = 0; t < S.len.size(); ++t) {
        if (S.len[t] == 0 && empty_chunks) ch.push_back(EmaChunk{static_cast<int>(t), 0, 0});
        for (long long b = 0; b < S.len[t]; b += chunk_size) ch.push_back(EmaChunk{static_cast<int>(t), 0, b});
    }
    if (shuffle)
        for (size_t i = ch.size(); i > 1; --i) std::swap(ch[i - 1], ch[r.below(i)]);
    return ch;
}

// Device tables for one parameter arena and chunk map.
struct Tables {
    std::unique_ptr<Buf> T, C;
    int n_chunks = 0;
    Tables(const FeSet& S, const Buf& params, const std::vector<EmaChunk>& chunks) {
        T.reset(new Buf(std::max<size_t>(1, S.len.size()) * sizeof(EmaTensor), 0xa5));
        for (size_t t = 0; t < S.len.size(); ++t) {
            EmaTensor et;
            std::memset(&et, 0, sizeof et);
            et.param = params.d(S.pbyte[t]);
            et.length = S.len[t];
            et.shadow_offset = S.soff[t];
            et.dtype = S.dtype[t];
            et.unused = 0x5a5a5a5a;
            std::memcpy(T->h(t * sizeof(EmaTensor)), &et, sizeof et);
        }
        C.reset(new Buf(std::max<size_t>(1, chunks.size()) * sizeof(EmaChunk), 0xa5));
        for (size_t i = 0; i < chunks.size(); ++i) {
            EmaChunk ec = chunks[i];
            ec.unused = 0x5a5a5a5a;
            std::memcpy(C->h(i * sizeof(EmaChunk)), &ec, sizeof ec);
        }
        n_chunks = static_cast<int>(chunks.size());
        T->upload();
        C->upload();
    }
    const EmaTensor* t() const { return static_cast<const EmaTensor*>(T->d()); }
    const EmaChunk* c() const { return static_cast<const EmaChunk*>(C->d()); }
};

static std::vector<LaunchCfg> fe_cfgs(int n_chunks, int chunk_size) {
    long long nc = std::max(1, n_chunks);
    std::vector<LaunchCfg> v = {{64, 1}, {1024, 1}, {128, 3}, {256, nc}, {512, nc + 7}, {1024, nc / 2 + 1}, {64, 2 * nc + 1}};
    if (g_quick) v = {{64, 1}, {256, nc}, {1024, nc / 3 + 1}};
    // chunk_size 1 gives one chunk per element: do not launch a block per chunk in emulation
    if (kEmulated && chunk_size < 64) v = {{64, 1}, {1024, 3}, {128, std::min<long long>(nc, 97)}};
    return dedup_cfgs(v, max_threads());
}

// Fills the data area of a parameter arena: NaN (0xff bytes) everywhere outside the tensors, random values inside.
static void fill_params(const FeSet& S, Buf& P, Rng& r, bool edges, bool nonfinite) {
    std::memset(P.h(), 0xff, P.bytes);
    for (size_t t = 0; t < S.len.size(); ++t)
        for (long long i = 0; i < S.len[t]; ++i)
            rand_param(r, S.dtype[t], P.h(S.pbyte[t] + i * esize(S.dtype[t])), edges, nonfinite);
}

static std::vector<std::pair<int, long long>> odd_specs(Rng& r, int count, bool one_dtype, int dt0) {
    static const long long lens[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 256,
                                     257, 1000, 1001, 1023, 1025, 4095, 4096, 4097, 10007};
    std::vector<std::pair<int, long long>> v;
    for (int i = 0; i < count; ++i) {
        int dt = one_dtype ? dt0 : static_cast<int>(r.below(3));
        v.push_back({dt, lens[r.below(sizeof lens / sizeof lens[0])]});
    }
    return v;
}

static std::vector<FeSet> fe_sets(Rng& r) {
    std::vector<FeSet> sets;
    int many = g_quick ? 24 : 60;
    sets.push_back(make_set("mixed odd sizes", odd_specs(r, many, false, 0), kParamsMixed, kShadowPacked, r));
    sets.push_back(make_set("mixed odd sizes", odd_specs(r, many, false, 0), kParamsMixed, kShadowAlign4, r));
    sets.push_back(make_set("mixed odd sizes", odd_specs(r, many, false, 0), kParamsAligned, kShadowGaps, r));
    for (int dt : {F32, BF16, F16})
        sets.push_back(make_set(std::string("all ") + dtype_name(dt), odd_specs(r, 12, true, dt), kParamsMixed,
                                kShadowAlign4, r));
    std::vector<std::pair<int, long long>> big = {{F32, 65537}, {BF16, 65535}, {F16, 65536}, {F32, 3}, {BF16, 257}};
    if (!kEmulated) big.insert(big.begin(), {F32, 1000003});
    if (!g_quick) sets.push_back(make_set("large tensors", big, kParamsMixed, kShadowPacked, r));
    sets.push_back(make_set("one tensor", {{BF16, 4097}}, kParamsMixed, kShadowPacked, r));
    sets.push_back(make_alignment_set(r));
    sets.push_back(make_set("empty table", {}, kParamsAligned, kShadowPacked, r));
    return sets;
}

static std::vector<int> fe_chunk_sizes(const FeSet& S) {
    std::vector<int> cs = {3, 64, 1000, 1001, 4096, 65536};
    if (g_quick) cs = {7, 1001, 4096};
    if (S.elements <= (kEmulated ? 20000 : 2000000)) cs.insert(cs.begin(), 1);
    return cs;
}

static void fe_lerp_run(Case& c, const FeSet& S, int K, bool shadow_off1, bool nonfinite, Rng& r) {
    Buf P(S.param_bytes, 0xff);
    fill_params(S, P, r, true, nonfinite);
    P.upload();
    const long long e_off = shadow_off1 ? 1 : 0;
    std::vector<std::unique_ptr<Buf>> E;
    EmaShadows s;
    std::memset(&s, 0, sizeof s);
    for (int k = 0; k < kMaxShadows; ++k) s.w[k] = NAN;
    s.k = K;
    for (int k = 0; k < K; ++k) {
        E.emplace_back(new Buf(static_cast<size_t>(S.shadow_len + 1) * 4, 0x7f));
        for (long long i = 0; i < S.shadow_len + 1; ++i) stf(E[k]->h(i * 4), rand_shadow_value(r, nonfinite));
        s.e[k] = static_cast<float*>(E[k]->d(e_off * 4));
        s.w[k] = weight(k + 3);
    }
    std::vector<std::vector<uint8_t>> want(K);
    for (int k = 0; k < K; ++k) {
        want[k] = E[k]->img;
        for (size_t t = 0; t < S.len.size(); ++t)
            for (long long i = 0; i < S.len[t]; ++i) {
                uint8_t* e = want[k].data() + kPad + (e_off + S.soff[t] + i) * 4;
                stf(e, ref_lerp(s.w[k], ref_param(S.dtype[t], P.h(S.pbyte[t] + i * esize(S.dtype[t]))), ldf(e)));
            }
    }
    Buf G(8, 0x00);
    const int guard_init[2] = {0, 3};
    int idx = 0;
    for (int cs : fe_chunk_sizes(S)) {
        std::vector<EmaChunk> chunks = make_chunks(S, cs, (cs % 2) == 1, cs == 1000, r);
        Tables tb(S, P, chunks);
        for (const LaunchCfg& cfg : fe_cfgs(tb.n_chunks, cs)) {
            bool with_guard = (idx++ % 2) == 1;
            for (int k = 0; k < K; ++k) E[k]->upload();
            std::memcpy(G.h(), guard_init, 8);
            G.upload();
            {
                Fence fp(P, param_ranges(S));
                std::vector<std::unique_ptr<Fence>> fe;
                for (int k = 0; k < K; ++k) fe.emplace_back(new Fence(*E[k], shadow_ranges(S, e_off)));
                LAUNCH(ema_lerp_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs, s,
                       with_guard ? static_cast<int*>(G.d()) : nullptr);
            }
            ++c.launches;
            ++g_launches;
            std::string where = fmt("ema_lerp_foreach [%s, %zu tensors%s] K=%d chunk=%d (%d chunks) block=%d grid=%lld",
                                    S.name.c_str(), S.len.size(), shadow_off1 ? ", shadow+1" : "", K, cs, tb.n_chunks,
                                    cfg.block, cfg.grid);
            if (g_verbose) std::printf("      %s\n", where.c_str());
            for (int k = 0; k < K; ++k) {
                std::string err;
                c.expect(same_image(want[k], E[k]->download(), E[k]->bytes, true, nullptr, &err),
                         fmt("%s: shadow %d: %s", where.c_str(), k, err.c_str()));
            }
            std::string err;
            c.expect(same_image(P.img, P.download(), P.bytes, false, nullptr, &err),
                     fmt("%s: parameters changed: %s", where.c_str(), err.c_str()));
            c.expect(same_image(G.img, G.download(), 8, false, nullptr, &err),
                     fmt("%s: guard changed: %s", where.c_str(), err.c_str()));
        }
    }
}

static void test_foreach_lerp(const std::vector<FeSet>& sets) {
    for (int K : {1, 3, 8}) {
        Case c(fmt("ema_lerp_foreach K=%d: %zu tensor sets, chunk sizes 1..65536", K, sets.size()));
        Rng r(g_seed ^ 0xfe00 ^ static_cast<uint64_t>(K));
        int i = 0;
        for (const FeSet& S : sets) {
            bool off1 = (i % 3) == 2;
            fe_lerp_run(c, S, K, off1, /*nonfinite=*/(i % 2) == 1, r);
            if (i == 0) fe_lerp_run(c, S, K, /*shadow_off1=*/true, false, r);  // everything unaligned
            ++i;
        }
    }
}

// to_shadow: shadow <- fp32(params) over the tensor ranges; nothing else changes.
static void fe_to_shadow_run(Case& c, const FeSet& S, bool shadow_off1, Rng& r) {
    Buf P(S.param_bytes, 0xff);
    fill_params(S, P, r, true, true);
    P.upload();
    const long long e_off = shadow_off1 ? 1 : 0;
    Buf E(static_cast<size_t>(S.shadow_len + 1) * 4, 0x7f);
    for (long long i = 0; i < S.shadow_len + 1; ++i) stf(E.h(i * 4), rand_shadow_value(r, true));
    std::vector<uint8_t> want = E.img;
    for (size_t t = 0; t < S.len.size(); ++t)
        for (long long i = 0; i < S.len[t]; ++i)
            stf(want.data() + kPad + (e_off + S.soff[t] + i) * 4,
                ref_param(S.dtype[t], P.h(S.pbyte[t] + i * esize(S.dtype[t]))));
    for (int cs : fe_chunk_sizes(S)) {
        Tables tb(S, P, make_chunks(S, cs, (cs % 2) == 1, cs == 1001, r));
        for (const LaunchCfg& cfg : fe_cfgs(tb.n_chunks, cs)) {
            E.upload();
            {
                Fence fp(P, param_ranges(S)), fe(E, shadow_ranges(S, e_off));
                LAUNCH(ema_to_shadow_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs,
                       static_cast<float*>(E.d(e_off * 4)));
            }
            ++c.launches;
            ++g_launches;
            std::string where = fmt("ema_to_shadow_foreach [%s%s] chunk=%d block=%d grid=%lld", S.name.c_str(),
                                    shadow_off1 ? ", shadow+1" : "", cs, cfg.block, cfg.grid);
            std::string err;
            c.expect(same_image(want, E.download(), E.bytes, true, nullptr, &err), where + ": " + err);
            c.expect(same_image(P.img, P.download(), P.bytes, false, nullptr, &err),
                     where + ": parameters changed: " + err);
        }
    }
}

// from_shadow: params <- round_rn(shadow) over the tensor ranges; gaps and red zones keep their bytes.
static void fe_from_shadow_run(Case& c, const FeSet& S, bool shadow_off1, Rng& r) {
    Buf P(S.param_bytes, 0xff);
    fill_params(S, P, r, true, true);
    P.upload();
    const long long e_off = shadow_off1 ? 1 : 0;
    Buf E(static_cast<size_t>(S.shadow_len + 1) * 4, 0x7f);
    for (long long i = 0; i < S.shadow_len + 1; ++i) stf(E.h(i * 4), rand_shadow_value(r, true));
    E.upload();
    std::vector<uint8_t> want = P.img;
    for (size_t t = 0; t < S.len.size(); ++t)
        for (long long i = 0; i < S.len[t]; ++i)
            ref_store_param(S.dtype[t], want.data() + kPad + S.pbyte[t] + i * esize(S.dtype[t]),
                            ldf(E.h((e_off + S.soff[t] + i) * 4)));
    for (int cs : fe_chunk_sizes(S)) {
        Tables tb(S, P, make_chunks(S, cs, (cs % 2) == 1, cs == 64, r));
        for (const LaunchCfg& cfg : fe_cfgs(tb.n_chunks, cs)) {
            P.upload();
            {
                Fence fp(P, param_ranges(S)), fe(E, shadow_ranges(S, e_off));
                LAUNCH(ema_from_shadow_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs,
                       static_cast<const float*>(E.d(e_off * 4)));
            }
            ++c.launches;
            ++g_launches;
            std::string where = fmt("ema_from_shadow_foreach [%s%s] chunk=%d block=%d grid=%lld", S.name.c_str(),
                                    shadow_off1 ? ", shadow+1" : "", cs, cfg.block, cfg.grid);
            std::string err;
            c.expect(same_image(want, P.download(), P.bytes, false, nullptr, &err), where + ": " + err);
            c.expect(same_image(E.img, E.download(), E.bytes, false, nullptr, &err), where + ": shadow changed: " + err);
        }
    }
}

static void test_foreach_shadow_copies(const std::vector<FeSet>& sets) {
    {
        Case c(fmt("ema_to_shadow_foreach: %zu tensor sets", sets.size()));
        Rng r(g_seed ^ 0x705);
        int i = 0;
        for (const FeSet& S : sets) fe_to_shadow_run(c, S, (i++ % 2) == 1, r);
    }
    {
        Case c(fmt("ema_from_shadow_foreach: %zu tensor sets", sets.size()));
        Rng r(g_seed ^ 0xf705);
        int i = 0;
        for (const FeSet& S : sets) fe_from_shadow_run(c, S, (i++ % 2) == 0, r);
    }
}

// Every bf16/fp16 pattern, fp32 specials: params -> to_shadow -> from_shadow into a second arena.
static void test_round_trip() {
    Case c("to_shadow/from_shadow round trip: all 2^16 bf16 and fp16 patterns, fp32 specials");
    Rng r(g_seed ^ 0x7277);
    std::vector<uint32_t> f32s(kSpecialF32, kSpecialF32 + sizeof kSpecialF32 / 4);
    for (int i = 0; i < 4000; ++i) f32s.push_back(r.u32());
    // the patterns split over tensors with different alignments
    std::vector<std::pair<int, long long>> specs = {{BF16, 1}, {BF16, 40000}, {BF16, 25535},
                                                    {F16, 30001}, {F16, 35535}, {F32, static_cast<long long>(f32s.size())}};
    FeSet S = make_set("round trip", specs, kParamsMixed, kShadowGaps, r);
    Buf P(S.param_bytes, 0xff), Q(S.param_bytes, 0x5a);
    std::memset(P.h(), 0xff, P.bytes);
    std::memset(Q.h(), 0x5a, Q.bytes);
    uint32_t next_b = 0, next_f = 0;
    for (size_t t = 0; t < S.len.size(); ++t)
        for (long long i = 0; i < S.len[t]; ++i) {
            uint8_t* p = P.h(S.pbyte[t] + i * esize(S.dtype[t]));
            if (S.dtype[t] == BF16) sth(p, static_cast<uint16_t>(next_b++));
            else if (S.dtype[t] == F16) sth(p, static_cast<uint16_t>(next_f++));
            else std::memcpy(p, &f32s[i], 4);
        }
    c.expect(next_b == 65536 && next_f == 65536, "test setup: not every pattern placed");
    P.upload();
    Q.upload();
    Buf E(static_cast<size_t>(S.shadow_len) * 4, 0x7f);
    std::memset(E.h(), 0x11, E.bytes);
    E.upload();
    std::vector<uint8_t> want_e = E.img, want_q = Q.img;
    for (size_t t = 0; t < S.len.size(); ++t)
        for (long long i = 0; i < S.len[t]; ++i) {
            size_t pb = S.pbyte[t] + i * esize(S.dtype[t]);
            float v = ref_param(S.dtype[t], P.h(pb));
            stf(want_e.data() + kPad + (S.soff[t] + i) * 4, v);
            if (S.dtype[t] == F32) {
                std::memcpy(want_q.data() + kPad + pb, P.h(pb), 4);  // bit-exact copy, NaN payloads included
            } else {
                uint16_t h = ldh(P.h(pb));
                bool nan = S.dtype[t] == BF16 ? ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) : ((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
                uint16_t back = nan ? static_cast<uint16_t>((h & 0x8000) | (S.dtype[t] == BF16 ? 0x7fc0 : 0x7e00)) : h;
                c.expect(back == (S.dtype[t] == BF16 ? ref_to_bf16(v) : ref_to_f16(v)), "reference disagrees");
                sth(want_q.data() + kPad + pb, back);
            }
        }
    for (int cs : {4096, 1001}) {
        Tables tb(S, P, make_chunks(S, cs, false, false, r));
        Tables tq(S, Q, make_chunks(S, cs, false, true, r));
        for (const LaunchCfg& cfg : dedup_cfgs({{256, tb.n_chunks}, {1024, 5}}, max_threads())) {
            E.upload();
            Q.upload();
            LAUNCH(ema_to_shadow_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs, static_cast<float*>(E.d()));
            LAUNCH(ema_from_shadow_foreach, cfg.grid, cfg.block, tq.t(), tq.c(), tq.n_chunks, cs,
                   static_cast<const float*>(E.d()));
            c.launches += 2;
            g_launches += 2;
            std::string where = fmt("chunk=%d block=%d grid=%lld", cs, cfg.block, cfg.grid);
            std::string err;
            std::vector<uint8_t> got_e = E.download();
            c.expect(same_image(want_e, got_e, E.bytes, true, nullptr, &err), where + ": shadow: " + err);
            // the sign of a widened NaN survives
            for (size_t i = 0; i < E.bytes; i += 4)
                if (std::isnan(ldf(&want_e[kPad + i])) &&
                    !c.expect(std::signbit(ldf(&want_e[kPad + i])) == std::signbit(ldf(&got_e[kPad + i])),
                              where + fmt(": NaN sign lost at shadow float %zu", i / 4)))
                    break;
            c.expect(same_image(want_q, Q.download(), Q.bytes, false, nullptr, &err), where + ": params back: " + err);
        }
    }
}

// Narrowing: ties (every fp16 and bf16 midpoint, and its neighbours), boundaries, random fp32 patterns. Three
// tensors (bf16, fp16, fp32) read the same shadow range.
static void test_narrowing() {
    Rng r(g_seed ^ 0x4a77);
    std::vector<uint32_t> v(kSpecialF32, kSpecialF32 + sizeof kSpecialF32 / 4);
    for (uint32_t h = 0; h < 0x7c00; ++h) {  // fp16 midpoints (h, h + 1), exactly representable in fp32
        double lo = ref_widen_f16(static_cast<uint16_t>(h)), hi = h + 1 == 0x7c00 ? 65536.0 : ref_widen_f16(static_cast<uint16_t>(h + 1));
        uint32_t m = bits_of(static_cast<float>((lo + hi) / 2));
        for (uint32_t x : {m - 1, m, m + 1}) { v.push_back(x); v.push_back(x | 0x80000000u); }
    }
    for (uint32_t h = 0; h < 0x7f80; ++h) {  // bf16 midpoints
        uint32_t m = (h << 16) | 0x8000u;
        for (uint32_t x : {m - 1, m, m + 1}) { v.push_back(x); v.push_back(x | 0x80000000u); }
    }
    for (uint32_t x : {0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu, 0x477fefffu, 0x477ff000u, 0x477ff001u, 0x33000001u,
                       0x32ffffffu, 0x33400000u, 0x387fffffu, 0x387fe000u, 0x387fdfffu, 0x00000001u, 0x007fffffu})
        { v.push_back(x); v.push_back(x | 0x80000000u); }
    long long nrand = kEmulated ? (g_quick ? 100000 : 1000000) : (1 << 22);
    for (long long i = 0; i < nrand; ++i) v.push_back(r.u32());
    const long long n = static_cast<long long>(v.size());
    Case c(fmt("from_shadow narrowing: %lld values (all midpoints +-1ulp, edges, random)", n));
    // three tensors over shadow [0, n): bf16 and f16 (one unaligned), f32
    FeSet S;
    S.name = "narrowing";
    S.dtype = {BF16, F16, F32};
    S.len = {n, n, n};
    S.pbyte = {0, static_cast<size_t>(2 * n + 256 + 2), static_cast<size_t>(4 * n + 1024)};
    S.soff = {0, 0, 0};
    S.param_bytes = static_cast<size_t>(8 * n + 1024);
    S.shadow_len = n;
    S.elements = 3 * n;
    Buf P(S.param_bytes, 0xff);
    std::memset(P.h(), 0xee, P.bytes);
    P.upload();
    Buf E(static_cast<size_t>(n) * 4, 0x7f);
    std::memcpy(E.h(), v.data(), E.bytes);
    E.upload();
    std::vector<uint8_t> want = P.img;
    for (long long i = 0; i < n; ++i) {
        float f = float_of(v[i]);
        sth(want.data() + kPad + S.pbyte[0] + 2 * i, ref_to_bf16(f));
        sth(want.data() + kPad + S.pbyte[1] + 2 * i, ref_to_f16(f));
        std::memcpy(want.data() + kPad + S.pbyte[2] + 4 * i, &v[i], 4);
    }
    for (int cs : {65536, 999}) {
        Tables tb(S, P, make_chunks(S, cs, false, cs == 999, r));
        for (const LaunchCfg& cfg : dedup_cfgs({{256, tb.n_chunks}, {512, 17}}, max_threads())) {
            P.upload();
            LAUNCH(ema_from_shadow_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs,
                   static_cast<const float*>(E.d()));
            ++c.launches;
            ++g_launches;
            std::vector<uint8_t> got = P.download();
            std::string err;
            if (!c.expect(same_image(want, got, P.bytes, false, nullptr, &err),
                          fmt("chunk=%d block=%d grid=%lld: %s", cs, cfg.block, cfg.grid, err.c_str()))) {
                for (long long i = 0, shown = 0; i < n && shown < 4; ++i)
                    for (int t = 0; t < 2; ++t) {
                        uint16_t w = ldh(&want[kPad + S.pbyte[t] + 2 * i]), g = ldh(&got[kPad + S.pbyte[t] + 2 * i]);
                        if (w != g && shown++ < 4)
                            c.fail(fmt("  %s(0x%08x): want 0x%04x got 0x%04x", t ? "f16" : "bf16", v[i], w, g));
                    }
            }
        }
    }
}

// ===================================================================================================================
// The guard protocol
// ===================================================================================================================
static void test_check_kernel(const std::vector<FeSet>& sets) {
    Case c("ema_check_foreach: NaN/Inf in any dtype raises guard[0], only then");
    Rng r(g_seed ^ 0xc4ec);
    static const uint32_t nf32[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu, 0xffffffffu};
    static const uint16_t nfbf[] = {0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0x7fff, 0xffff};
    static const uint16_t nfhf[] = {0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0x7fff, 0xffff};
    for (const FeSet& S : sets) {
        Buf P(S.param_bytes, 0xff);  // gaps and red zones hold NaN: reading them would raise the guard
        fill_params(S, P, r, true, false);
        std::vector<size_t> nonempty;
        for (size_t t = 0; t < S.len.size(); ++t)
            if (S.len[t] > 0) nonempty.push_back(t);
        Buf G(8, 0x00);
        for (int cs : {1001, 4096}) {
            Tables tb(S, P, make_chunks(S, cs, true, false, r));
            std::vector<LaunchCfg> cfgs = fe_cfgs(tb.n_chunks, cs);
            // trial 0: all finite; then one non-finite element at the first, last, or a random place
            int trials = nonempty.empty() ? 1 : (g_quick ? 8 : 24);
            for (int trial = 0; trial < trials; ++trial) {
                size_t t = 0;
                long long i = 0;
                std::vector<uint8_t> saved;
                if (trial > 0) {
                    t = trial == 1 ? nonempty.front() : trial == 2 ? nonempty.back() : nonempty[r.below(nonempty.size())];
                    i = trial == 1 ? 0 : trial == 2 ? S.len[t] - 1 : static_cast<long long>(r.below(S.len[t]));
                    uint8_t* p = P.h(S.pbyte[t] + i * esize(S.dtype[t]));
                    saved.assign(p, p + esize(S.dtype[t]));
                    int pick = static_cast<int>(r.below(7));
                    if (S.dtype[t] == F32) stf(p, float_of(nf32[pick]));
                    else sth(p, S.dtype[t] == BF16 ? nfbf[pick] : nfhf[pick]);
                }
                P.upload();
                const LaunchCfg& cfg = cfgs[trial % cfgs.size()];
                const int g0[2] = {0, 7};
                std::memcpy(G.h(), g0, 8);
                G.upload();
                {
                    Fence fp(P, param_ranges(S));
                    LAUNCH(ema_check_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs,
                           static_cast<int*>(G.d()));
                }
                ++c.launches;
                ++g_launches;
                std::vector<uint8_t> g = G.download();
                int got[2];
                std::memcpy(got, g.data() + kPad, 8);
                int want0 = trial > 0 ? 1 : 0;
                c.expect(got[0] == want0 && got[1] == 7,
                         fmt("[%s] chunk=%d block=%d grid=%lld: %s: guard {%d,%d}, want {%d,7}", S.name.c_str(), cs,
                             cfg.block, cfg.grid,
                             trial ? fmt("%s tensor %zu element %lld non-finite", dtype_name(S.dtype[t]), t, i).c_str()
                                   : "all finite",
                             got[0], got[1], want0));
                std::string err;
                c.expect(same_image(P.img, P.download(), P.bytes, false, nullptr, &err), "parameters changed: " + err);
                if (trial > 0) std::memcpy(P.h(S.pbyte[t] + i * esize(S.dtype[t])), saved.data(), saved.size());
            }
        }
    }
    // finite near-misses never raise: largest finite, subnormals, -0, in every dtype
    {
        FeSet S = make_set("edges", {{F32, 9}, {BF16, 9}, {F16, 9}}, kParamsMixed, kShadowPacked, r);
        Buf P(S.param_bytes, 0xff);
        std::memset(P.h(), 0xff, P.bytes);
        static const uint32_t f32e[] = {0x7f7fffffu, 0xff7fffffu, 0x00000001u, 0x807fffffu, 0x80000000u, 0, 0x7f000000u, 0x00800000u, 0x3f800000u};
        static const uint16_t bfe[] = {0x7f7f, 0xff7f, 0x0001, 0x807f, 0x8000, 0, 0x7f00, 0x0080, 0x3f80};
        static const uint16_t hfe[] = {0x7bff, 0xfbff, 0x0001, 0x83ff, 0x8000, 0, 0x7800, 0x0400, 0x3c00};
        for (int i = 0; i < 9; ++i) {
            std::memcpy(P.h(S.pbyte[0] + 4 * i), &f32e[i], 4);
            sth(P.h(S.pbyte[1] + 2 * i), bfe[i]);
            sth(P.h(S.pbyte[2] + 2 * i), hfe[i]);
        }
        P.upload();
        Tables tb(S, P, make_chunks(S, 4, false, false, r));
        Buf G(8, 0x00);
        const int g0[2] = {0, 7};
        std::memcpy(G.h(), g0, 8);
        G.upload();
        LAUNCH(ema_check_foreach, 2, 64, tb.t(), tb.c(), tb.n_chunks, 4, static_cast<int*>(G.d()));
        ++c.launches;
        ++g_launches;
        std::string err;
        c.expect(same_image(G.img, G.download(), 8, false, nullptr, &err), "finite edge values raised the guard: " + err);
    }
}

// ema_check_foreach's head, body and tail (NOTE: [vector-peeling]): one tensor at every parameter misalignment, of
// every length up to 40, with one non-finite element at each position in turn, then none; the bytes around the
// tensor hold NaN (and are fenced off in the ASan build). One chunk, then chunks of 5 (chunk starts move across
// the 16-byte blocks).
static void test_check_alignment() {
    static const uint32_t nf32[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffffffffu};
    static const uint16_t nfbf[] = {0x7f80, 0xff80, 0x7fc0, 0xffff};
    static const uint16_t nfhf[] = {0x7c00, 0xfc00, 0x7e00, 0xffff};
    const long long max_n = g_quick ? 24 : 40;
    for (int dt : {F32, BF16, F16}) {
        const size_t es = esize(dt);
        Case c(fmt("ema_check_foreach %s: every misalignment, sizes 1..%lld, NaN/Inf at every position",
                   dtype_name(dt), max_n));
        Rng r(g_seed ^ 0xc4a1 ^ (static_cast<uint64_t>(dt) << 40));
        for (size_t p_bytes = 0; p_bytes < 16; p_bytes += es) {
            for (long long n = 1; n <= max_n; ++n) {
                FeSet S;
                S.name = fmt("%s at +%zuB", dtype_name(dt), p_bytes);
                S.dtype = {dt};
                S.len = {n};
                S.pbyte = {256 + p_bytes};
                S.soff = {0};
                S.param_bytes = 256 + p_bytes + n * es + 256;
                S.shadow_len = n;
                S.elements = n;
                Buf P(S.param_bytes, 0xff);
                fill_params(S, P, r, true, false);
                Buf G(8, 0x00);
                for (int cs : {4096, 5}) {
                    Tables tb(S, P, make_chunks(S, cs, false, false, r));
                    for (long long bad = -1; bad < n; ++bad) {
                        uint8_t* p = P.h(S.pbyte[0] + (bad < 0 ? 0 : bad) * es);
                        std::vector<uint8_t> saved(p, p + es);
                        if (bad >= 0) {
                            const int pick = static_cast<int>(r.below(4));
                            if (dt == F32) stf(p, float_of(nf32[pick]));
                            else sth(p, dt == BF16 ? nfbf[pick] : nfhf[pick]);
                        }
                        P.upload();
                        std::memset(G.h(), 0, 8);
                        G.upload();
                        const LaunchCfg cfg = bad % 2 ? LaunchCfg{32, 1} : LaunchCfg{64, 3};
                        {
                            Fence fp(P, param_ranges(S));
                            LAUNCH(ema_check_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), tb.n_chunks, cs,
                                   static_cast<int*>(G.d()));
                        }
                        ++c.launches;
                        ++g_launches;
                        int got[2];
                        std::vector<uint8_t> g = G.download();
                        std::memcpy(got, g.data() + kPad, 8);
                        c.expect(got[0] == (bad >= 0 ? 1 : 0) && got[1] == 0,
                                 fmt("[%s] n=%lld chunk=%d: %s: guard {%d,%d}", S.name.c_str(), n, cs,
                                     bad >= 0 ? fmt("element %lld non-finite", bad).c_str() : "all finite", got[0],
                                     got[1]));
                        std::memcpy(p, saved.data(), es);
                    }
                }
            }
        }
    }
}

// A raised guard: shadows untouched, guard[1] + 1 per launch (exactly once, whatever the grid); a clear guard: the
// update happens and the guard is unchanged. Then the whole protocol on the device: clear, check, lerp.
static void test_guarded_lerp() {
    Case c("guard protocol: raised guard skips every lerp kernel, counts once");
    Rng r(g_seed ^ 0x6a2d);
    const int K = 3;
    FeSet S = make_set("guard", odd_specs(r, 16, false, 0), kParamsMixed, kShadowPacked, r);
    Buf P(S.param_bytes, 0xff);
    fill_params(S, P, r, true, false);
    P.upload();
    // flat views of the parameter arena for the flat kernels: the first tensor of each dtype with length > 0
    std::vector<std::unique_ptr<Buf>> E;
    EmaShadows s;
    std::memset(&s, 0, sizeof s);
    for (int k = 0; k < kMaxShadows; ++k) s.w[k] = NAN;
    s.k = K;
    for (int k = 0; k < K; ++k) {
        E.emplace_back(new Buf(static_cast<size_t>(S.shadow_len) * 4, 0x7f));
        for (long long i = 0; i < S.shadow_len; ++i) stf(E[k]->h(i * 4), rand_moderate(r));
        s.e[k] = static_cast<float*>(E[k]->d());
        s.w[k] = weight(k);
    }
    Buf G(8, 0x00);
    auto set_guard = [&](int g0, int g1) { const int g[2] = {g0, g1}; std::memcpy(G.h(), g, 8); G.upload(); };
    auto get_guard = [&](int* out) { std::vector<uint8_t> g = G.download(); std::memcpy(out, g.data() + kPad, 8); };
    auto shadows_equal = [&](const std::vector<std::vector<uint8_t>>& want, const std::string& where) {
        for (int k = 0; k < K; ++k) {
            std::string err;
            c.expect(same_image(want[k], E[k]->download(), E[k]->bytes, true, nullptr, &err),
                     fmt("%s: shadow %d: %s", where.c_str(), k, err.c_str()));
        }
    };
    std::vector<std::vector<uint8_t>> untouched(K);
    for (int k = 0; k < K; ++k) untouched[k] = E[k]->img;
    const std::vector<LaunchCfg> cfgs = {{256, 1}, {64, 7}, {1024, 3}, {128, 40}};
    // flat kernels with a raised guard
    for (int dt : {F32, BF16, F16}) {
        size_t t = 0;
        while (t < S.len.size() && !(S.dtype[t] == dt && S.len[t] > 0)) ++t;
        long long n = t < S.len.size() ? S.len[t] : 0;
        const void* p = t < S.len.size() ? P.d(S.pbyte[t]) : P.d();
        for (const LaunchCfg& cfg : cfgs) {
            for (int k = 0; k < K; ++k) E[k]->upload();
            set_guard(1, 41);
            LAUNCH(flat_kernel(dt), cfg.grid, cfg.block, p, n, s, static_cast<int*>(G.d()));
            LAUNCH(flat_kernel(dt), cfg.grid, cfg.block, p, n, s, static_cast<int*>(G.d()));
            c.launches += 2;
            g_launches += 2;
            int g[2];
            get_guard(g);
            std::string where = fmt("%s n=%lld block=%d grid=%lld", flat_name(dt), n, cfg.block, cfg.grid);
            c.expect(g[0] == 1 && g[1] == 43, fmt("%s: guard {%d,%d} after two skipped launches, want {1,43}", where.c_str(), g[0], g[1]));
            shadows_equal(untouched, where + " (guard raised)");
        }
    }
    // foreach with a raised guard, including an empty chunk map and more blocks than chunks
    std::vector<std::vector<uint8_t>> updated(K);
    for (int k = 0; k < K; ++k) {
        updated[k] = E[k]->img;
        for (size_t t = 0; t < S.len.size(); ++t)
            for (long long i = 0; i < S.len[t]; ++i) {
                uint8_t* e = updated[k].data() + kPad + (S.soff[t] + i) * 4;
                stf(e, ref_lerp(s.w[k], ref_param(S.dtype[t], P.h(S.pbyte[t] + i * esize(S.dtype[t]))), ldf(e)));
            }
    }
    Tables tb(S, P, make_chunks(S, 100, false, false, r));
    for (int empty = 0; empty < 2; ++empty) {
        for (const LaunchCfg& cfg : cfgs) {
            for (int k = 0; k < K; ++k) E[k]->upload();
            set_guard(1, 0);
            int nch = empty ? 0 : tb.n_chunks;
            LAUNCH(ema_lerp_foreach, cfg.grid, cfg.block, tb.t(), tb.c(), nch, 100, s, static_cast<int*>(G.d()));
            ++c.launches;
            ++g_launches;
            int g[2];
            get_guard(g);
            std::string where = fmt("ema_lerp_foreach n_chunks=%d block=%d grid=%lld", nch, cfg.block, cfg.grid);
            c.expect(g[0] == 1 && g[1] == 1, fmt("%s: guard {%d,%d}, want {1,1}", where.c_str(), g[0], g[1]));
            shadows_equal(untouched, where + " (guard raised)");
        }
    }
    // the device-side protocol: a stale raised guard is cleared by the host, then check, then lerp, no host sync
    for (int bad = 0; bad < 2; ++bad) {
        size_t t = 0;
        while (t + 1 < S.len.size() && S.len[t] == 0) ++t;
        uint8_t* p = P.h(S.pbyte[t] + (S.len[t] / 2) * esize(S.dtype[t]));
        std::vector<uint8_t> saved(p, p + esize(S.dtype[t]));
        if (bad) {
            if (S.dtype[t] == F32) stf(p, NAN); else sth(p, S.dtype[t] == BF16 ? 0x7fc0 : 0x7c00);
        }
        P.upload();
        for (int k = 0; k < K; ++k) E[k]->upload();
        set_guard(1, 9);                 // stale state from an earlier step
        const int zero = 0;
        devmem::h2d(G.d(), &zero, 4);    // host clears guard[0]
        LAUNCH(ema_check_foreach, 5, 128, tb.t(), tb.c(), tb.n_chunks, 100, static_cast<int*>(G.d()));
        LAUNCH(ema_lerp_foreach, 5, 128, tb.t(), tb.c(), tb.n_chunks, 100, s, static_cast<int*>(G.d()));
        c.launches += 2;
        g_launches += 2;
        int g[2];
        get_guard(g);
        if (bad) {
            c.expect(g[0] == 1 && g[1] == 10, fmt("protocol, NaN parameter: guard {%d,%d}, want {1,10}", g[0], g[1]));
            shadows_equal(untouched, "protocol, NaN parameter");
        } else {
            c.expect(g[0] == 0 && g[1] == 9, fmt("protocol, finite: guard {%d,%d}, want {0,9}", g[0], g[1]));
            shadows_equal(updated, "protocol, finite");
        }
        std::memcpy(p, saved.data(), saved.size());
    }
    P.upload();
}

// ===================================================================================================================
// Benchmark (GPU only)
// ===================================================================================================================
#ifdef __CUDACC__
__global__ void bench_fill(float* p, long long n, float base) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long long>(gridDim.x) * blockDim.x)
        p[i] = base + static_cast<float>(i & 1023) * 0x1.0p-10f;
}

template <typename F>
static float time_ms(F&& f, int reps) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    f();  // warm-up
    f();
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaEventRecord(a));
    for (int i = 0; i < reps; ++i) f();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    CUDA_CHECK(cudaGetLastError());
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    return ms / reps;
}

static void bench() {
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    std::printf("\nbenchmark on %s (%d SMs); GB/s = bytes moved / time (EMA: 4 + 8K bytes per fp32 parameter, "
                "copy: 2 x size)\n", prop.name, sms);
    const int K = 1;
    for (long long N : {25000000LL, 1000000000LL}) {
        size_t free_b = 0, total_b = 0;
        CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        const double ema_bytes = static_cast<double>(N) * (4 + 8 * K);
        const size_t need = static_cast<size_t>(N) * 4 * (1 + K) + (64 << 20);
        const size_t copy_bytes = static_cast<size_t>(ema_bytes / 2);  // a copy of S bytes moves 2S
        if (need > free_b * 0.95 || 2 * copy_bytes + (64 << 20) > free_b * 0.95) {
            std::printf("N=%lld: skipped (needs %.1f GiB, %.1f GiB free)\n", N, std::max(need, 2 * copy_bytes) / 1073741824.0,
                        free_b / 1073741824.0);
            continue;
        }
        const int reps = N > 100000000LL ? 5 : 50;
        float *p = nullptr, *e = nullptr;
        int* guard = nullptr;
        CUDA_CHECK(cudaMalloc(&p, N * 4));
        CUDA_CHECK(cudaMalloc(&e, N * 4));
        CUDA_CHECK(cudaMalloc(&guard, 8));
        CUDA_CHECK(cudaMemset(guard, 0, 8));
        bench_fill<<<sms * 8, 256>>>(p, N, 1.0f);
        bench_fill<<<sms * 8, 256>>>(e, N, 0.5f);
        CUDA_CHECK(cudaDeviceSynchronize());
        EmaShadows s;
        std::memset(&s, 0, sizeof s);
        s.e[0] = e;
        s.w[0] = static_cast<float>(1.0 - 0.999);
        s.k = K;
        // foreach tables: a model-like split into tensors (multiples of 16 bytes), chunks of 64K elements
        const int chunk = 65536;
        std::vector<EmaTensor> tensors;
        std::vector<EmaChunk> chunks;
        static const long long shapes[] = {4096LL * 4096, 4096, 11008LL * 4096, 4096LL * 11008, 4096, 32000LL * 4096 / 8};
        for (long long pos = 0, j = 0; pos < N; ++j) {
            long long len = std::min(shapes[j % 6], N - pos);
            EmaTensor t;
            std::memset(&t, 0, sizeof t);
            t.param = p + pos;
            t.length = len;
            t.shadow_offset = pos;
            t.dtype = F32;
            for (long long b = 0; b < len; b += chunk) chunks.push_back(EmaChunk{static_cast<int>(tensors.size()), 0, b});
            tensors.push_back(t);
            pos += len;
        }
        EmaTensor* dt = nullptr;
        EmaChunk* dc = nullptr;
        CUDA_CHECK(cudaMalloc(&dt, tensors.size() * sizeof(EmaTensor)));
        CUDA_CHECK(cudaMalloc(&dc, chunks.size() * sizeof(EmaChunk)));
        CUDA_CHECK(cudaMemcpy(dt, tensors.data(), tensors.size() * sizeof(EmaTensor), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(dc, chunks.data(), chunks.size() * sizeof(EmaChunk), cudaMemcpyHostToDevice));
        const int n_chunks = static_cast<int>(chunks.size());
        struct R { std::string what; float ms; double bytes; };
        std::vector<R> results;
        for (int block : {256, 512}) {
            for (long long grid : {static_cast<long long>(sms) * 4, static_cast<long long>(sms) * 16, cdiv(N, block * 4LL)}) {
                if (grid > 2147483647LL) continue;
                float ms = time_ms([&] { ema_lerp_f32<<<static_cast<unsigned>(grid), block>>>(p, N, s, guard); }, reps);
                results.push_back({fmt("ema_lerp_f32      block=%4d grid=%9lld", block, grid), ms, ema_bytes});
            }
            for (long long grid : {static_cast<long long>(sms) * 4, static_cast<long long>(sms) * 16, static_cast<long long>(n_chunks)}) {
                float ms = time_ms([&] { ema_lerp_foreach<<<static_cast<unsigned>(grid), block>>>(dt, dc, n_chunks, chunk, s, guard); }, reps);
                results.push_back({fmt("ema_lerp_foreach  block=%4d grid=%9lld (%zu tensors, %d chunks)", block, grid,
                                       tensors.size(), n_chunks), ms, ema_bytes});
            }
        }
        {
            // NOTE: [vector-peeling]: parameters 4 bytes past a 16-byte boundary, shadows aligned (shifted loads);
            // the guard protocol (clear, check, lerp) against the same update without it, and the check alone
            const unsigned grid = static_cast<unsigned>(sms) * 16;
            float ms = time_ms([&] { ema_lerp_f32<<<grid, 256>>>(p + 1, N - 1, s, guard); }, reps);
            results.push_back({fmt("ema_lerp_f32 p+4B block= 256 grid=%9u", grid), ms, ema_bytes});
            const float plain = time_ms([&] { ema_lerp_foreach<<<grid, 256>>>(dt, dc, n_chunks, chunk, s, guard); }, reps);
            const float check = time_ms([&] { ema_check_foreach<<<grid, 256>>>(dt, dc, n_chunks, chunk, guard); }, reps);
            const float guarded = time_ms([&] {
                CUDA_CHECK(cudaMemsetAsync(guard, 0, 4));
                ema_check_foreach<<<grid, 256>>>(dt, dc, n_chunks, chunk, guard);
                ema_lerp_foreach<<<grid, 256>>>(dt, dc, n_chunks, chunk, s, guard);
            }, reps);
            results.push_back({"ema_check_foreach alone (GB/s of parameters read)", check, 4.0 * N});
            results.push_back({fmt("guarded foreach: speed %.2fx the unguarded (target >= 0.9)", plain / guarded),
                               guarded, ema_bytes});
        }
        CUDA_CHECK(cudaFree(p));
        CUDA_CHECK(cudaFree(e));
        CUDA_CHECK(cudaFree(guard));
        CUDA_CHECK(cudaFree(dt));
        CUDA_CHECK(cudaFree(dc));
        char *src = nullptr, *dst = nullptr;
        CUDA_CHECK(cudaMalloc(&src, copy_bytes));
        CUDA_CHECK(cudaMalloc(&dst, copy_bytes));
        CUDA_CHECK(cudaMemset(src, 1, copy_bytes));
        float copy_ms = time_ms([&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); }, reps);
        CUDA_CHECK(cudaFree(src));
        CUDA_CHECK(cudaFree(dst));
        const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
        std::printf("N=%lld fp32 parameters, K=%d (%.2f GB moved per update)\n", N, K, ema_bytes / 1e9);
        std::printf("  cudaMemcpy D2D %.2f GB                                         %9.3f ms %8.1f GB/s\n",
                    copy_bytes / 1e9, copy_ms, copy_gbs);
        for (const R& x : results) {
            double gbs = x.bytes / (x.ms * 1e-3) / 1e9;
            std::printf("  %-66s %9.3f ms %8.1f GB/s  %.2fx copy\n", x.what.c_str(), x.ms, gbs, gbs / copy_gbs);
        }
    }
}
#endif

// ===================================================================================================================
int main(int argc, char** argv) {
    bool bench_on = true, checks_on = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") g_quick = true;
        else if (a == "--no-bench") bench_on = false;
        else if (a == "--bench-only") checks_on = false;
        else if (a == "--verbose") g_verbose = true;
        else if (a == "--seed" && i + 1 < argc) g_seed = std::strtoull(argv[++i], nullptr, 0);
        else {
            std::fprintf(stderr, "usage: %s [--quick] [--no-bench] [--bench-only] [--verbose] [--seed N]\n", argv[0]);
            return 2;
        }
    }
    auto t0 = std::chrono::steady_clock::now();
#ifdef __CUDACC__
    {
        int dev = 0;
        cudaDeviceProp prop;
        CUDA_CHECK(cudaGetDevice(&dev));
        CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
        std::printf("ema_check: GPU %s (sm_%d%d)%s, seed 0x%" PRIx64 "\n", prop.name, prop.major, prop.minor,
                    g_quick ? ", quick" : "", g_seed);
    }
#else
    std::printf("ema_check: host emulation (kernels run block by block, thread by thread on the CPU, in the shuffled "
                "order of EMA4J_CUDA_EMULATOR_SEED=%llu)%s, seed 0x%" PRIx64 "\n",
                static_cast<unsigned long long>(ema4j_host::process_seed()), g_quick ? ", quick" : "", g_seed);
#endif
    if (checks_on) {
        test_abi();
        test_reference();
        Rng r(g_seed ^ 0x5e75);
        std::vector<FeSet> sets = fe_sets(r);
        test_check_kernel(sets);
        test_check_alignment();
        test_guarded_lerp();
        test_round_trip();
        test_narrowing();
        test_foreach_shadow_copies(sets);
        test_foreach_lerp(sets);
        test_flat();
        test_flat_alignment();
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%s: %d cases, %d passed, %d failed (%lld launches, %.1f s)\n", g_failed ? "FAILED" : "ALL PASSED",
                    g_cases, g_cases - g_failed, g_failed, g_launches, s);
    }
#ifdef __CUDACC__
    if (bench_on && (g_failed == 0 || !checks_on)) bench();
#else
    (void)bench_on;
    if (!checks_on) std::printf("ema_check: --bench-only does nothing in host emulation\n");
#endif
    return g_failed ? 1 : 0;
}
