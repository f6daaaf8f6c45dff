// cuda_host_shim.h: just enough of CUDA to compile cuda/*.cu (and native/ema_check.cu) as plain C++ on a machine
// without a GPU, so the kernels run in "host emulation":
//
//     g++ -O2 -std=c++17 -ffp-contract=off -x c++ -include native/cuda_host_shim.h native/ema_check.cu
//
// It is also how the CUDA driver emulator (native/emulator/) runs the kernels behind the Java CUDA backend.
//
// A launch (ema_emulate_launch below) runs the blocks one after another, on the calling OS thread, in a shuffled
// order. The threads of a block are cooperative fibers (ucontext): a thread runs until it returns or waits at a
// barrier, then another runs: a thread not yet started, or one that a completed barrier released, picked at
// random. So between two barriers the threads of a block run in a random order, and the last to arrive at a barrier
// does not necessarily run first after it. A thread that starts on the fiber of one that returned costs a function
// call, so a kernel without barriers runs on one fiber with two context switches per launch.
//
// NOTE: [schedule-seed]. The order comes from the launch's seed and number (ema4j_host::LaunchOptions): the same
// pair gives the same order of blocks and threads. Standalone programs use the process's seed
// (EMA4J_CUDA_EMULATOR_SEED when set, else a random one; ema4j_host::process_seed) and number their launches; the
// driver emulator passes its own. Every message about a launch ends with
// "[schedule: EMA4J_CUDA_EMULATOR_SEED=<seed>, launch #<n>]". A kernel that is right only in some order (a missing
// __syncthreads, a block that reads what a lower block writes) gives different results under different seeds.
//
// Supported:
//   - __shared__ variables become `static`: blocks run one at a time, so one instance is the block's shared memory.
//     It keeps its contents between blocks and launches, as uninitialized shared memory may.
//   - __syncthreads(): waits until every thread of the block has arrived.
//   - __syncwarp() and __shfl_sync, __shfl_up_sync, __shfl_down_sync, __shfl_xor_sync with the full mask
//     (0xffffffff) and a width as in CUDA, for any trivially copyable type of at most 8 bytes. A warp is 32
//     consecutive linear thread indices; reading a lane that a partial last warp lacks yields all-one bytes (NaN).
//   - Atomics as plain read-modify-writes: one thread runs at a time.
//   - fmaf is the C library's fused multiply-add (one rounding), as on the GPU; never build this with -ffast-math.
//     expf, logf, sqrtf, fmaxf, fminf, exp, log, ... are the C library's (<cmath>): sqrt and the fmax/fmin family
//     are exact as on the GPU, exp and log are within CUDA's error bounds but not bit-identical to the GPU's.
//   - Misaligned loads and stores trap, as they fault on a GPU, when built with -DEMA4J_ALIGNMENT_TRAP and
//     -fsanitize=alignment (NOTE: [alignment-trap] below).
// Not supported (a compile error or an abort with a message): dynamic shared memory (`extern __shared__` does not
// compile), partial warp masks, vote/ballot intrinsics, cooperative groups, textures.
//
// Barrier bugs stop the program with a message naming the launch (abort): a thread that returns while others of
// its block wait at __syncthreads (or of its warp, at a warp barrier), a thread that reaches a barrier after others
// of its block (warp) returned, and barriers that no thread can complete. Host emulation does not detect data
// races: a thread runs without interruption from one barrier to the next, so only races whose outcome depends on
// the order of those stretches (or of the blocks) show, as wrong results under some seeds.
//
// Fiber stacks: 64 KiB each (256 KiB under AddressSanitizer, whose red zones enlarge the frames) above a
// PROT_NONE guard page, so an overflow faults instead of corrupting memory. A block needs one fiber per thread
// that waits at a barrier at the same time (at most 1024); fibers are kept and reused by later blocks and launches
// of the same OS thread. Under AddressSanitizer the fiber switches are annotated (__sanitizer_*_switch_fiber).
//
// uint4/float4 are 16-byte aligned (as in CUDA) and may alias other types, because the kernels reinterpret
// float/uint16_t buffers as uint4/float4; build with -fsanitize=alignment (with EMA4J_ALIGNMENT_TRAP, or the
// sanitizer runtime) and -fsanitize=address to have misaligned vector accesses or out-of-bounds accesses reported.
#pragma once

#ifdef __CUDACC__
#error "cuda_host_shim.h is for host emulation only; do not include it in an nvcc build"
#endif

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define EMA4J_HOST_EMULATION 1

// --- qualifiers -------------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static

// --- vector types -----------------------------------------------------------------------------------------------
struct __attribute__((aligned(16), may_alias)) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(16), may_alias)) float4 { float x, y, z, w; };
struct __attribute__((aligned(8), may_alias)) uint2 { unsigned int x, y; };
struct __attribute__((aligned(8), may_alias)) float2 { float x, y; };
static_assert(sizeof(uint4) == 16 && alignof(uint4) == 16, "uint4 layout");
static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4 layout");

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// --- built-in variables, set by the emulated launch ---------------------------------------------------------------
inline thread_local uint3 threadIdx = {0, 0, 0};
inline thread_local uint3 blockIdx = {0, 0, 0};
inline thread_local dim3 blockDim = dim3(1, 1, 1);
inline thread_local dim3 gridDim = dim3(1, 1, 1);
constexpr int warpSize = 32;

// --- intrinsics ---------------------------------------------------------------------------------------------------
inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, sizeof f); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, sizeof u); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, sizeof i); return i; }

// CUDA's device fmaf is a single-rounding fused multiply-add; so is the C library's (glibc computes it exactly even
// without hardware FMA). The kernels call the unqualified ::fmaf, expf, sqrt, ..., which <cmath> declares.
using std::fmaf;
using std::isfinite;
using std::isinf;
using std::isnan;

// Explicitly rounded arithmetic: with -ffp-contract=off every operator rounds once, as these intrinsics do.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

// Read-only data cache load: a plain load here.
template <typename T>
inline T __ldg(const T* p) { return *p; }

inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

// Atomics: the emulated launch runs one thread at a time, so plain read-modify-writes are atomic.
inline int atomicAdd(int* p, int v) { int old = *p; *p = old + v; return old; }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { unsigned int old = *p; *p = old + v; return old; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    unsigned long long old = *p; *p = old + v; return old;
}
inline float atomicAdd(float* p, float v) { float old = *p; *p = old + v; return old; }
inline double atomicAdd(double* p, double v) { double old = *p; *p = old + v; return old; }
inline int atomicSub(int* p, int v) { int old = *p; *p = old - v; return old; }
inline int atomicExch(int* p, int v) { int old = *p; *p = v; return old; }
inline float atomicExch(float* p, float v) { float old = *p; *p = v; return old; }
inline int atomicMax(int* p, int v) { int old = *p; if (v > old) *p = v; return old; }
inline int atomicMin(int* p, int v) { int old = *p; if (v < old) *p = v; return old; }
inline int atomicOr(int* p, int v) { int old = *p; *p = old | v; return old; }
inline int atomicCAS(int* p, int compare, int v) { int old = *p; if (old == compare) *p = v; return old; }
inline unsigned int atomicCAS(unsigned int* p, unsigned int compare, unsigned int v) {
    unsigned int old = *p; if (old == compare) *p = v; return old;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare, unsigned long long v) {
    unsigned long long old = *p; if (old == compare) *p = v; return old;
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// --- cooperative threads of a block -------------------------------------------------------------------------------
namespace ema4j_host {

#ifdef __SANITIZE_ADDRESS__
constexpr std::size_t kStackBytes = 256 * 1024;
#else
constexpr std::size_t kStackBytes = 64 * 1024;
#endif
constexpr unsigned kFullMask = 0xffffffffu;

// splitmix64: the schedule's random numbers.
inline std::uint64_t mix(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct Rng {
    std::uint64_t state = 0;
    std::uint64_t next() { return mix(state += 0x9e3779b97f4a7c15ull); }
    // Uniform in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32).
    std::uint64_t below(std::uint64_t n) {
        return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
    }
};

// The schedule seed of this process: EMA4J_CUDA_EMULATOR_SEED (decimal, or hex with 0x) when set, else a random
// 32-bit number, chosen once. Standalone programs (ema_check, the self-test) use it; the driver emulator chooses
// its own the same way and passes it with every launch.
inline std::uint64_t process_seed() {
    static const std::uint64_t seed = [] {
        const char* text = std::getenv("EMA4J_CUDA_EMULATOR_SEED");
        if (text != nullptr && *text != '\0') {
            char* end = nullptr;
            const unsigned long long value = std::strtoull(text, &end, 0);
            if (*end != '\0') {
                std::fprintf(stderr, "host emulation: EMA4J_CUDA_EMULATOR_SEED=%s is not a number\n", text);
                std::abort();
            }
            return static_cast<std::uint64_t>(value);
        }
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        const std::uint64_t noise = static_cast<std::uint64_t>(now.tv_nsec) ^
                                    (static_cast<std::uint64_t>(now.tv_sec) << 30) ^
                                    (static_cast<std::uint64_t>(getpid()) << 20) ^
                                    reinterpret_cast<std::uintptr_t>(&now);
        return mix(noise) & 0xffffffffu;
    }();
    return seed;
}

// How one launch is scheduled. With the same seed and number, a launch runs its blocks and threads in the same
// order, so a failure can be reproduced.
struct LaunchOptions {
    std::uint64_t seed = 0;    // the schedule seed (EMA4J_CUDA_EMULATOR_SEED)
    std::uint64_t number = 0;  // the launch's number in its process, mixed with the seed
    bool shuffle = true;       // false: blocks and threads in index order (the self-test's control runs)
    bool recover = false;      // a trap ends the launch with an error instead of aborting the process
};

struct Fiber {
    ucontext_t context;
    char* memory;          // one guard page, then kStackBytes of stack
    uint3 thread;          // threadIdx of the CUDA thread it runs
    unsigned linear;       // that thread's linear index in the block
    void* fake_stack;      // AddressSanitizer's fake stack while the fiber is switched out
};

struct Warp {
    unsigned lanes;                  // threads of the block in this warp (fewer than 32 in a partial last warp)
    unsigned exited;                 // of those, returned from the kernel
    unsigned generation;             // completed warp barriers; its parity picks the shuffle slots
    std::vector<Fiber*> waiting;     // lanes at a warp barrier
    std::uint64_t slots[2][32];      // shuffle values, double-buffered so one barrier per shuffle suffices
};

// The launch in progress on this OS thread, the block it runs, and the fibers.
struct Scheduler {
    const char* kernel = nullptr;    // for messages; null when the caller gave no name
    dim3 grid, block;
    LaunchOptions options;
    Rng rng;                         // the launch's random numbers (options.seed and options.number)
    void (*run_thread)(const void*) = nullptr;
    const void* closure = nullptr;
    unsigned threads = 0;            // per block
    std::uint64_t blocks = 0;        // per grid
    std::uint64_t block_next = 0;    // blocks begun so far
    std::vector<unsigned> block_order;   // shuffled linear block indices (grids of at most kShuffledBlocks)
    std::uint64_t block_stride = 1;  // larger grids: block i is (i * block_stride + block_offset) mod blocks
    std::uint64_t block_offset = 0;
    std::vector<unsigned> thread_order;  // this block's linear thread indices in the order they start
    unsigned started = 0;            // threads of this block started so far
    unsigned exited = 0;             // and returned
    bool start_next = false;         // a fresh fiber is to start the next thread before choosing again
    std::vector<Fiber*> waiting;     // threads at __syncthreads
    std::vector<Fiber*> ready;       // released from a barrier, not yet resumed; from ready_head
    std::size_t ready_head = 0;
    std::vector<Warp> warps;
    Fiber* current = nullptr;        // the running fiber; null outside a launch
    ucontext_t launcher;             // where the launch waits for the blocks
    std::vector<Fiber*> fibers;      // every fiber, owned
    std::vector<Fiber*> idle;        // fibers free for the next thread to start
    std::size_t page = 0;            // size of the guard page
    const void* launcher_stack = nullptr;  // AddressSanitizer: the launcher's stack, learned on the first switch
    std::size_t launcher_stack_size = 0;
    void* launcher_fake_stack = nullptr;
    bool trapped = false;            // a trap ended the launch; `error` says why
    std::string error;

    Scheduler() = default;
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;
    ~Scheduler() {
        for (Fiber* f : fibers) {
            munmap(f->memory, page + kStackBytes);
            delete f;
        }
    }
};

constexpr std::uint64_t kShuffledBlocks = std::uint64_t{1} << 20;

inline thread_local Scheduler scheduler;
inline thread_local std::uint64_t standalone_launches = 0;  // numbers the launches of ema_emulate_launch(_named)

// "kernel <name><<<grid, block>>>, block (x,y,z)" of the launch in progress.
inline std::string launch_label(const Scheduler& s) {
    char text[256];
    std::snprintf(text, sizeof text, "kernel %s<<<(%u,%u,%u), (%u,%u,%u)>>>, block (%u,%u,%u)",
                  s.kernel ? s.kernel : "(unnamed)", s.grid.x, s.grid.y, s.grid.z, s.block.x, s.block.y, s.block.z,
                  blockIdx.x, blockIdx.y, blockIdx.z);
    return text;
}

// " [schedule: EMA4J_CUDA_EMULATOR_SEED=<seed>, launch #<n>]", which reproduces the order of blocks and threads.
inline std::string schedule_label(const Scheduler& s) {
    char text[128];
    if (!s.options.shuffle) return " [schedule: index order]";
    std::snprintf(text, sizeof text, " [schedule: EMA4J_CUDA_EMULATOR_SEED=%llu, launch #%llu]",
                  static_cast<unsigned long long>(s.options.seed), static_cast<unsigned long long>(s.options.number));
    return text;
}

inline std::string vformat(const char* format, va_list args) {
    char text[1024];
    std::vsnprintf(text, sizeof text, format, args);
    return text;
}

// Prints "host emulation: <launch>: <message> [schedule]" and aborts.
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fail(const char* format, ...) {
    const Scheduler& s = scheduler;
    va_list args;
    va_start(args, format);
    const std::string message = vformat(format, args);
    va_end(args);
    std::fprintf(stderr, "host emulation: %s: %s%s\n", launch_label(s).c_str(), message.c_str(),
                 schedule_label(s).c_str());
    std::fflush(stderr);
    std::abort();
}

// The fiber of the calling CUDA thread; aborts outside a launch.
inline Fiber* current_thread(const char* what) {
    Fiber* self = scheduler.current;
    if (self == nullptr) {
        std::fprintf(stderr, "host emulation: %s called outside a kernel launch\n", what);
        std::abort();
    }
    return self;
}

// Switches from `from` to `to` (null: the launcher). `from_done`: from will not resume before it is restarted.
inline void switch_fiber(Scheduler& s, Fiber* from, Fiber* to, bool from_done) {
    s.current = to;
    if (to != nullptr) threadIdx = to->thread;
#ifdef __SANITIZE_ADDRESS__
    void** fake_save = from_done ? nullptr : from != nullptr ? &from->fake_stack : &s.launcher_fake_stack;
    if (to != nullptr) {
        __sanitizer_start_switch_fiber(fake_save, to->memory + s.page, kStackBytes);
    } else {
        __sanitizer_start_switch_fiber(fake_save, s.launcher_stack, s.launcher_stack_size);
    }
#else
    (void)from_done;
#endif
    swapcontext(from != nullptr ? &from->context : &s.launcher, to != nullptr ? &to->context : &s.launcher);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(from != nullptr ? from->fake_stack : s.launcher_fake_stack, nullptr, nullptr);
#endif
}

// A trap: the kernel did what faults on a GPU (a misaligned access). With options.recover the launch ends here,
// with the message in scheduler.error, as a faulting kernel ends on a GPU: the caller's launch function returns
// it, and the blocks and threads not yet run never run. Otherwise, or outside a launch, it prints the message and
// aborts. The abandoned threads' fibers become idle: fresh_fiber gives them a new context before reuse.
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void trap(const char* format, ...) {
    Scheduler& s = scheduler;
    va_list args;
    va_start(args, format);
    const std::string message = vformat(format, args);
    va_end(args);
    Fiber* self = s.current;
    if (self == nullptr) {
        std::fprintf(stderr, "host emulation: %s (outside a kernel launch)\n", message.c_str());
        std::fflush(stderr);
        std::abort();
    }
    char thread[64];
    std::snprintf(thread, sizeof thread, ", thread (%u,%u,%u): ", self->thread.x, self->thread.y, self->thread.z);
    s.error = launch_label(s) + thread + message + schedule_label(s);
    if (!s.options.recover) {
        std::fprintf(stderr, "host emulation: %s\n", s.error.c_str());
        std::fflush(stderr);
        std::abort();
    }
    s.trapped = true;
    s.idle = s.fibers;
    s.waiting.clear();
    s.ready.clear();
    s.ready_head = 0;
    switch_fiber(s, self, nullptr, true);
    std::abort();  // not reached: the launcher never resumes this fiber
}

inline void fiber_main();

// A fiber ready to start the next thread of the block: an idle one, else a new one.
inline Fiber* fresh_fiber(Scheduler& s) {
    Fiber* f;
    if (!s.idle.empty()) {
        f = s.idle.back();
        s.idle.pop_back();
    } else {
        if (s.page == 0) s.page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        void* memory = mmap(nullptr, s.page + kStackBytes, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (memory == MAP_FAILED || mprotect(memory, s.page, PROT_NONE) != 0) {
            fail("cannot map a fiber stack of %zu bytes", kStackBytes);
        }
        f = new Fiber();
        f->memory = static_cast<char*>(memory);
        getcontext(&f->context);
        s.fibers.push_back(f);
    }
#ifdef __SANITIZE_ADDRESS__
    __asan_unpoison_memory_region(f->memory + s.page, kStackBytes);  // stale poison of the fiber's last frames
#endif
    f->context.uc_stack.ss_sp = f->memory + s.page;
    f->context.uc_stack.ss_size = kStackBytes;
    f->context.uc_link = nullptr;
    makecontext(&f->context, fiber_main, 0);
    return f;
}

// What runs when a thread waits or returns: a released thread (resumed on its fiber), the next thread to start, or
// nothing (the block is done, or deadlocked). Shuffled, each of the candidates is equally likely; in index order,
// released threads resume in the order of release, and `prefer_start` puts starting new threads first.
enum class Next { kResume, kStart, kNone };

inline Next choose(Scheduler& s, bool prefer_start, Fiber** resume) {
    const std::size_t ready = s.ready.size() - s.ready_head;
    const unsigned unstarted = s.threads - s.started;
    if (ready == 0) return unstarted == 0 ? Next::kNone : Next::kStart;
    if (s.options.shuffle) {
        const std::uint64_t k = s.rng.below(ready + unstarted);
        if (k >= ready) return Next::kStart;
        std::swap(s.ready[s.ready_head], s.ready[s.ready_head + k]);
    } else if (unstarted > 0 && (prefer_start || ready == 0)) {
        return Next::kStart;
    }
    *resume = s.ready[s.ready_head++];
    if (s.ready_head == s.ready.size()) {
        s.ready.clear();
        s.ready_head = 0;
    }
    return Next::kResume;
}

// Suspends `self`, which waits at a barrier or is among the released threads, and runs what `choose` picks
// (returns at once when that is `self`).
inline void yield(Scheduler& s, Fiber* self) {
    Fiber* next = nullptr;
    switch (choose(s, false, &next)) {
        case Next::kResume:
            if (next == self) return;
            break;
        case Next::kStart:
            next = fresh_fiber(s);
            s.start_next = true;
            break;
        case Next::kNone: {
            unsigned at_warp_barriers = 0;
            for (const Warp& w : s.warps) at_warp_barriers += static_cast<unsigned>(w.waiting.size());
            fail("deadlock: no thread can make progress (%zu threads wait at __syncthreads, %u at warp barriers)",
                 s.waiting.size(), at_warp_barriers);
        }
    }
    switch_fiber(s, self, next, false);
}

// Releases the threads of a completed barrier. Shuffled, the last to arrive is released with the others, so that
// any of them may run first; in index order, it goes on running.
inline void release(Scheduler& s, std::vector<Fiber*>& waiting, Fiber* self) {
    for (Fiber* f : waiting) {
        if (f != self || s.options.shuffle) s.ready.push_back(f);
    }
    waiting.clear();
    if (s.options.shuffle) yield(s, self);
}

inline void block_barrier(const char* what) {
    Scheduler& s = scheduler;
    Fiber* self = current_thread(what);
    if (s.exited != 0) {
        fail("divergent barrier: thread (%u,%u,%u) reached %s after %u thread(s) of its block returned",
             self->thread.x, self->thread.y, self->thread.z, what, s.exited);
    }
    s.waiting.push_back(self);
    if (s.waiting.size() == s.threads) {
        release(s, s.waiting, self);
    } else {
        yield(s, self);
    }
}

inline void warp_barrier(Scheduler& s, Fiber* self, const char* what) {
    Warp& w = s.warps[self->linear / 32];
    if (w.exited != 0) {
        fail("divergent warp barrier: thread (%u,%u,%u) reached %s after %u lane(s) of its warp returned",
             self->thread.x, self->thread.y, self->thread.z, what, w.exited);
    }
    w.waiting.push_back(self);
    if (w.waiting.size() == w.lanes) {
        ++w.generation;
        release(s, w.waiting, self);
    } else {
        yield(s, self);
    }
}

// Sets blockIdx to the linear block index `b` (x fastest).
inline void set_block(const Scheduler& s, std::uint64_t b) {
    blockIdx.x = static_cast<unsigned>(b % s.grid.x);
    blockIdx.y = static_cast<unsigned>(b / s.grid.x % s.grid.y);
    blockIdx.z = static_cast<unsigned>(b / (static_cast<std::uint64_t>(s.grid.x) * s.grid.y));
}

// Begins block number s.block_next of the launch's order.
inline void begin_block(Scheduler& s) {
    const std::uint64_t i = s.block_next;
    if (!s.options.shuffle) {
        set_block(s, i);
    } else if (!s.block_order.empty()) {
        set_block(s, s.block_order[i]);
    } else {
        set_block(s, static_cast<std::uint64_t>((static_cast<unsigned __int128>(i) * s.block_stride + s.block_offset) %
                                                s.blocks));
    }
    if (s.options.shuffle) {
        for (unsigned t = s.threads; t > 1; --t) {
            std::swap(s.thread_order[t - 1], s.thread_order[s.rng.below(t)]);
        }
    }
    s.started = 0;
    s.exited = 0;
    for (Warp& w : s.warps) {
        w.exited = 0;
        w.generation = 0;
    }
}

inline void run_thread(Scheduler& s, Fiber* self) {
    const unsigned t = s.options.shuffle ? s.thread_order[s.started] : s.started;
    ++s.started;
    self->linear = t;
    self->thread = {t % s.block.x, t / s.block.x % s.block.y, t / (s.block.x * s.block.y)};
    threadIdx = self->thread;
    s.run_thread(s.closure);
    ++s.exited;
    Warp& w = s.warps[t / 32];
    ++w.exited;
    if (!s.waiting.empty()) {
        fail("divergent barrier: thread (%u,%u,%u) returned while %zu thread(s) of its block wait at __syncthreads",
             self->thread.x, self->thread.y, self->thread.z, s.waiting.size());
    }
    if (!w.waiting.empty()) {
        fail("divergent warp barrier: thread (%u,%u,%u) returned while %zu lane(s) of its warp wait at a warp barrier",
             self->thread.x, self->thread.y, self->thread.z, w.waiting.size());
    }
}

// Every fiber runs this: it runs threads of the block (starting them, or handing over to released ones), begins the
// next block once every thread returned, and returns to the launcher after the last.
inline void fiber_main() {
    Scheduler& s = scheduler;
#ifdef __SANITIZE_ADDRESS__
    const void* from_stack = nullptr;
    std::size_t from_size = 0;
    __sanitizer_finish_switch_fiber(nullptr, &from_stack, &from_size);
    if (s.launcher_stack == nullptr) {
        s.launcher_stack = from_stack;
        s.launcher_stack_size = from_size;
    }
#endif
    Fiber* self = s.current;
    if (s.start_next) {
        s.start_next = false;
        run_thread(s, self);
    }
    for (;;) {
        Fiber* next = nullptr;
        const Next what = choose(s, true, &next);
        if (what == Next::kStart) {
            run_thread(s, self);
            continue;
        }
        if (what == Next::kResume) {
            s.idle.push_back(self);
            switch_fiber(s, self, next, true);  // not resumed: restarted by fresh_fiber
        }
        if (s.exited != s.threads) {
            fail("deadlock: %u thread(s) wait at barriers that no thread can complete", s.threads - s.exited);
        }
        if (++s.block_next == s.blocks) {
            s.idle.push_back(self);
            switch_fiber(s, self, nullptr, true);
        }
        begin_block(s);
    }
}

// Prepares the order of blocks and threads of a launch.
inline void plan(Scheduler& s) {
    s.blocks = static_cast<std::uint64_t>(s.grid.x) * s.grid.y * s.grid.z;
    s.block_next = 0;
    s.block_order.clear();
    s.thread_order.resize(s.threads);
    for (unsigned t = 0; t < s.threads; ++t) s.thread_order[t] = t;
    if (!s.options.shuffle) return;
    s.rng.state = mix(s.options.seed ^ mix(s.options.number + 0x5ced));
    if (s.blocks <= kShuffledBlocks) {
        s.block_order.resize(s.blocks);
        for (std::uint64_t b = 0; b < s.blocks; ++b) s.block_order[b] = static_cast<unsigned>(b);
        for (std::uint64_t b = s.blocks; b > 1; --b) std::swap(s.block_order[b - 1], s.block_order[s.rng.below(b)]);
    } else {  // too many blocks to list: a random stride coprime with their number
        auto gcd = [](std::uint64_t a, std::uint64_t b) {
            while (b != 0) a = std::exchange(b, a % b);
            return a;
        };
        do {
            s.block_stride = 1 + s.rng.below(s.blocks - 1);
        } while (gcd(s.block_stride, s.blocks) != 1);
        s.block_offset = s.rng.below(s.blocks);
    }
}

// Runs run_thread(closure) for every thread of every block; false when a trap ended the launch (options.recover).
inline bool run_grid(const char* kernel, dim3 grid, dim3 block, const LaunchOptions& options,
                     void (*run_thread)(const void*), const void* closure) {
    Scheduler& s = scheduler;
    if (s.current != nullptr) {
        std::fprintf(stderr, "host emulation: kernel %s launched from inside a kernel\n",
                     kernel ? kernel : "(unnamed)");
        std::abort();
    }
    s.kernel = kernel;
    s.grid = grid;
    s.block = block;
    s.options = options;
    s.run_thread = run_thread;
    s.closure = closure;
    s.threads = block.x * block.y * block.z;
    s.warps.resize((s.threads + 31) / 32);
    for (std::size_t w = 0; w < s.warps.size(); ++w) {
        s.warps[w].lanes = w + 1 < s.warps.size() || s.threads % 32 == 0 ? 32 : s.threads % 32;
        s.warps[w].waiting.clear();
    }
    s.waiting.clear();
    s.ready.clear();
    s.ready_head = 0;
    s.start_next = false;
    s.trapped = false;
    s.error.clear();
    gridDim = grid;
    blockDim = block;
    plan(s);
    begin_block(s);
    switch_fiber(s, nullptr, fresh_fiber(s), false);
    threadIdx = {0, 0, 0};
    blockIdx = {0, 0, 0};
    return !s.trapped;
}

// The calling thread's lane; checks the mask (only full warps are supported) and the width.
inline unsigned lane(const char* what, unsigned mask, int width) {
    Fiber* self = current_thread(what);
    if (mask != kFullMask) fail("%s with mask 0x%08x: only the full mask 0xffffffff is supported", what, mask);
    if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
        fail("%s with width %d: must be 1, 2, 4, 8, 16 or 32", what, width);
    }
    return self->linear % 32;
}

// Every lane of the warp offers `value`; returns the value offered by lane `source` (all-one bytes if the warp has
// no such lane).
template <typename T>
inline T exchange(const char* what, T value, unsigned source) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
    Scheduler& s = scheduler;
    Fiber* self = s.current;
    Warp& w = s.warps[self->linear / 32];
    std::uint64_t* slots = w.slots[w.generation & 1];
    std::memcpy(&slots[self->linear % 32], &value, sizeof value);
    warp_barrier(s, self, what);
    T result;
    if (source < w.lanes) {
        std::memcpy(&result, &slots[source], sizeof result);
    } else {
        std::memset(&result, 0xff, sizeof result);
    }
    return result;
}

}  // namespace ema4j_host

inline void __syncthreads() { ema4j_host::block_barrier("__syncthreads"); }

inline void __syncwarp(unsigned mask = ema4j_host::kFullMask) {
    ema4j_host::lane("__syncwarp", mask, 32);
    ema4j_host::warp_barrier(ema4j_host::scheduler, ema4j_host::scheduler.current, "__syncwarp");
}

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
    unsigned lane = ema4j_host::lane("__shfl_sync", mask, width);
    unsigned w = static_cast<unsigned>(width);
    return ema4j_host::exchange("__shfl_sync", var, (lane & ~(w - 1)) + (static_cast<unsigned>(src_lane) & (w - 1)));
}

template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
    unsigned lane = ema4j_host::lane("__shfl_up_sync", mask, width);
    unsigned w = static_cast<unsigned>(width);
    return ema4j_host::exchange("__shfl_up_sync", var, (lane & (w - 1)) >= delta ? lane - delta : lane);
}

template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
    unsigned lane = ema4j_host::lane("__shfl_down_sync", mask, width);
    unsigned w = static_cast<unsigned>(width);
    return ema4j_host::exchange("__shfl_down_sync", var, (lane & (w - 1)) + delta < w ? lane + delta : lane);
}

// Lanes may read earlier groups of `width` lanes but not later ones (they get their own value), as in CUDA.
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
    unsigned lane = ema4j_host::lane("__shfl_xor_sync", mask, width);
    unsigned w = static_cast<unsigned>(width);
    unsigned source = lane ^ static_cast<unsigned>(lane_mask);
    return ema4j_host::exchange("__shfl_xor_sync", var, source < (lane / w + 1) * w ? source : lane);
}

// --- misaligned accesses trap ------------------------------------------------------------------------------------
// NOTE: [alignment-trap]. A GPU faults (CUDA_ERROR_MISALIGNED_ADDRESS) on a load or store whose address is not a
// multiple of its size: a float at 4k + 2, a uint4/float4 at 16k + 4. The kernels dereference typed pointers, and
// on the host such an access is undefined behaviour that UndefinedBehaviorSanitizer's alignment check finds: build
// with -fsanitize=alignment -fno-sanitize-recover=alignment -DEMA4J_ALIGNMENT_TRAP (compile only: do not link the
// sanitizer runtime). The compiler then checks every load and store through a pointer, member access and
// reference binding against the alignment of the pointee's type (for scalars, their size; for uint4/float4, 16;
// for a struct, its strictest member, as nvcc's loads require) and calls the handlers below, which trap (see
// `trap`): the launch ends with a message naming the kernel, block, thread, access, type, address and source line.
// The layout of the handler's data is the sanitizer runtime's ABI (GCC and Clang alike).
#ifdef EMA4J_ALIGNMENT_TRAP
namespace ema4j_host::ubsan {

struct SourceLocation {
    const char* file;
    std::uint32_t line;
    std::uint32_t column;
};

struct TypeDescriptor {
    std::uint16_t kind;  // GCC: 0xffff for the pointee types of these checks
    std::uint16_t info;
    char name[1];        // quoted, NUL-terminated: 'const float', 'struct uint4'
};

struct TypeMismatchData {
    SourceLocation location;
    const TypeDescriptor* type;
    unsigned char log_alignment;
    unsigned char check_kind;  // 0: load, 1: store, 2: reference binding, 3: member access, ...
};

[[noreturn]] __attribute__((no_sanitize("alignment"))) inline void type_mismatch(const TypeMismatchData* data,
                                                                                 std::uintptr_t pointer) {
    const unsigned alignment = 1u << data->log_alignment;
    const char* access = data->check_kind == 0 ? "load" : data->check_kind == 1 ? "store" : "access";
    // The access size: that of the type, which equals its alignment for scalars and the vector types (x86-64 and
    // CUDA alike); for other structs the compiler's accesses vary, so no size is named.
    std::string type = data->type->name;
    for (const std::string qualifier : {"'const ", "'volatile "}) {
        while (type.compare(0, qualifier.size(), qualifier) == 0) type = "'" + type.substr(qualifier.size());
    }
    const bool aggregate = type.compare(0, 8, "'struct ") == 0 || type.compare(0, 7, "'union ") == 0 ||
                           type.compare(0, 7, "'class ") == 0;
    const bool vector = type == "'struct uint4'" || type == "'struct float4'" || type == "'struct uint2'" ||
                        type == "'struct float2'";
    char size[24] = "";
    if (!aggregate || vector) std::snprintf(size, sizeof size, "%u-byte ", alignment);
    trap("misaligned address: %s%s of %s at 0x%llx, which needs %u-byte alignment (0x%llx %% %u = %llu), at %s:%u:%u "
         "(CUDA_ERROR_MISALIGNED_ADDRESS)", size, access, data->type->name, static_cast<unsigned long long>(pointer),
         alignment, static_cast<unsigned long long>(pointer), alignment,
         static_cast<unsigned long long>(pointer % alignment), data->location.file, data->location.line,
         data->location.column);
}

}  // namespace ema4j_host::ubsan

// With the signature of GCC's built-in declarations. Weak, not inline: the compiler's calls to them are not uses the
// front end sees, yet each translation unit needs a definition; hidden, so that every emulated module traps through
// its own copy.
extern "C" __attribute__((weak, visibility("hidden"), no_sanitize("alignment"))) void
__ubsan_handle_type_mismatch_v1(void* data, void* pointer) {
    ema4j_host::ubsan::type_mismatch(static_cast<const ema4j_host::ubsan::TypeMismatchData*>(data),
                                     reinterpret_cast<std::uintptr_t>(pointer));
}

extern "C" __attribute__((weak, visibility("hidden"), no_sanitize("alignment"))) void
__ubsan_handle_type_mismatch_v1_abort(void* data, void* pointer) {
    ema4j_host::ubsan::type_mismatch(static_cast<const ema4j_host::ubsan::TypeMismatchData*>(data),
                                     reinterpret_cast<std::uintptr_t>(pointer));
}
#endif

// --- emulated launch ----------------------------------------------------------------------------------------------
// Runs kernel(args...) once per (block, thread): the blocks one after another, the threads of a block as described
// at the top, in the order `options` gives. Arguments are copied to every thread, as the GPU passes them by value.
// `name` labels the messages. Returns null, or (options.recover) the message of the trap that ended the launch,
// valid until the next launch on this OS thread.
template <typename Kernel, typename... Args>
inline const char* ema_emulate_launch_options(const ema4j_host::LaunchOptions& options, const char* name, dim3 grid,
                                              dim3 block, Kernel kernel, Args... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0 ||
        static_cast<unsigned long long>(block.x) * block.y * block.z > 1024) {
        std::fprintf(stderr,
                     "host emulation: kernel %s: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n",
                     name ? name : "(unnamed)", grid.x, grid.y, grid.z, block.x, block.y, block.z);
        std::abort();
    }
    struct Closure {
        Kernel kernel;
        std::tuple<Args...> args;
    };
    const Closure closure{kernel, std::tuple<Args...>(args...)};
    const bool completed = ema4j_host::run_grid(name, grid, block, options, [](const void* c) {
        const Closure& call = *static_cast<const Closure*>(c);
        std::apply(call.kernel, call.args);
    }, &closure);
    return completed ? nullptr : ema4j_host::scheduler.error.c_str();
}

// As above with the process's seed (ema4j_host::process_seed) and the next launch number of this OS thread;
// a trap aborts the process.
template <typename Kernel, typename... Args>
inline void ema_emulate_launch_named(const char* name, dim3 grid, dim3 block, Kernel kernel, Args... args) {
    ema4j_host::LaunchOptions options;
    options.seed = ema4j_host::process_seed();
    options.number = ++ema4j_host::standalone_launches;
    ema_emulate_launch_options(options, name, grid, block, kernel, args...);
}

template <typename Kernel, typename... Args>
inline void ema_emulate_launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    ema_emulate_launch_named(nullptr, grid, block, kernel, args...);
}
