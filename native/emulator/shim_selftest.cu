// shim_selftest.cu: checks the cooperative threads of native/cuda_host_shim.h: shared memory and __syncthreads,
// __syncwarp and the warp shuffles (compared with their CUDA definitions) under many schedules, that barrier bugs
// stop the program with a message naming the launch, and the traps, each on a planted fault:
//   - the schedule (NOTE: [schedule-seed]): blocks and threads run in a shuffled, reproducible order, so a
//     reduction missing a __syncthreads and blocks that read what a lower block wrote, both right in index order,
//     give wrong results;
//   - misaligned loads and stores (NOTE: [alignment-trap], when built with EMA4J_ALIGNMENT_TRAP) end the launch
//     with a message naming the kernel, the access and the address, and later launches work.
// native/build-emulator.sh builds and runs it, with the alignment trap and under ASan+UBSan (without it):
//
//     g++ -O2 -std=c++17 -fsanitize=alignment -fno-sanitize-recover=alignment -DEMA4J_ALIGNMENT_TRAP -x c++
//         -include native/cuda_host_shim.h -c native/emulator/shim_selftest.cu -o shim_selftest.o
//     g++ shim_selftest.o -o shim_selftest
//
// Every bug case that aborts runs in a child process (fork), which must abort with the expected message on stderr.
// Exits 0 when every check passes, 1 otherwise.

#ifndef EMA4J_HOST_EMULATION
#error "compile with -include native/cuda_host_shim.h (see the header of this file)"
#endif

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

// --- kernels --------------------------------------------------------------------------------------------------------

// out[blockIdx.x] = sum of in[] over the block's threads (any block shape, at most 1024 threads): a tree reduction
// in shared memory, with a barrier after every step.
__global__ void block_sum(const long long* in, long long* out) {
    __shared__ long long partial[1024];
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    partial[t] = in[static_cast<unsigned long long>(block) * threads + t];
    __syncthreads();
    unsigned width = 1;
    while (width < threads) width *= 2;
    for (unsigned half = width / 2; half > 0; half /= 2) {
        if (t < half && t + half < threads) partial[t] += partial[t + half];
        __syncthreads();
    }
    if (t == 0) out[block] = partial[0];
}

// Reverses each block's slice through shared memory: every thread reads a value another thread wrote.
__global__ void block_reverse(const int* in, int* out) {
    __shared__ int tile[1024];
    const unsigned base = blockIdx.x * blockDim.x;
    tile[threadIdx.x] = in[base + threadIdx.x];
    __syncthreads();
    out[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

// One result per thread and shuffle kind (row t of out: xor, down, up, broadcast from lane 5, width 8 xor, and
// the xor-tree warp sum in float).
__global__ void warp_shuffles(const int* in, int* out, float* sums) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    const int v = in[t];
    int* row = out + 5 * t;
    row[0] = __shfl_xor_sync(0xffffffffu, v, 3);
    row[1] = __shfl_down_sync(0xffffffffu, v, 4);
    row[2] = __shfl_up_sync(0xffffffffu, v, 2);
    __syncwarp();
    row[3] = __shfl_sync(0xffffffffu, v, 5);
    row[4] = __shfl_xor_sync(0xffffffffu, v, 12, 8);
    float s = static_cast<float>(v);
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    sums[t] = s;
}

// Bug: threads past n return before the barrier the others wait at.
__global__ void early_return(float* p, int n) {
    __shared__ float tile[256];
    if (static_cast<int>(threadIdx.x) >= n) return;
    tile[threadIdx.x] = p[threadIdx.x];
    __syncthreads();
    p[threadIdx.x] = tile[n - 1 - threadIdx.x];
}

// Bug: a barrier inside a branch only some threads take (they wait; the others return).
__global__ void barrier_in_branch(float* p) {
    if (threadIdx.x < 16) {
        __syncthreads();
        p[threadIdx.x] = 1.0f;
    }
}

// Bug: half the warp shuffles, the other half returns.
__global__ void divergent_shuffle(float* p) {
    if (threadIdx.x % 32 < 16) p[threadIdx.x] = __shfl_xor_sync(0xffffffffu, p[threadIdx.x], 1);
}

// Bug: lane 0 waits at __syncthreads while the rest of its warp waits at __syncwarp (one warp: a deadlock).
__global__ void barrier_deadlock(float* p) {
    if (threadIdx.x == 0) {
        __syncthreads();
    } else {
        __syncwarp();
    }
    p[threadIdx.x] = 0.0f;
}

// Planted race: the last thread of the block sums the tile without waiting at __syncthreads for the other threads'
// stores (a reduction missing its barrier). In index order the last thread runs last, so the sum is right.
__global__ void sum_by_last_thread(const int* in, int* out) {
    __shared__ int tile[1024];
    const unsigned t = threadIdx.x;
    tile[t] = in[blockIdx.x * blockDim.x + t];
    if (t == blockDim.x - 1) {
        int sum = 0;
        for (unsigned i = 0; i < blockDim.x; ++i) sum += tile[i];
        out[blockIdx.x] = sum;
    }
}

// Planted race between blocks: each block adds its input to what the block before it wrote, a prefix sum that is
// right only when the blocks run in index order.
__global__ void chained_blocks(const int* in, int* out) {
    if (threadIdx.x == 0) out[blockIdx.x] = in[blockIdx.x] + (blockIdx.x > 0 ? out[blockIdx.x - 1] : 0);
}

// The order in which blocks begin and threads run before and after a barrier: each appends its index to a log.
__global__ void record_order(int* blocks, int* before, int* after, int* counters) {
    const unsigned t = threadIdx.x;
    if (t == 0) blocks[atomicAdd(&counters[0], 1)] = static_cast<int>(blockIdx.x);
    if (blockIdx.x != 0) return;
    before[atomicAdd(&counters[1], 1)] = static_cast<int>(t);
    __syncthreads();
    after[atomicAdd(&counters[2], 1)] = static_cast<int>(t);
}

#ifdef EMA4J_ALIGNMENT_TRAP
// Planted misaligned accesses, each by one thread (`bad`) of one block; the others make aligned accesses of the
// same kinds, and wait at barriers, so that the trap ends a launch with threads suspended.
__global__ void misaligned_scalar(const char* bytes, float* out, int bad) {
    __shared__ float tile[64];
    const int t = static_cast<int>(threadIdx.x);
    tile[t] = 0.0f;
    __syncthreads();
    const int offset = blockIdx.x == 1 && t == bad ? 2 : 4 * t;
    tile[t] = *reinterpret_cast<const float*>(bytes + offset);  // a 4-byte load at 4k + 2
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = tile[t];
}

__global__ void misaligned_vector_load(const float* p, float* out, int bad) {
    const int t = static_cast<int>(threadIdx.x);
    const float4 v = reinterpret_cast<const float4*>(p + (t == bad ? 1 : 4 * t))[0];  // 16 bytes at 16k + 4
    out[t] = v.x + v.y + v.z + v.w;
}

__global__ void misaligned_vector_store(float* p, int bad) {
    const int t = static_cast<int>(threadIdx.x);
    __syncthreads();
    float4 v = {1.0f, 2.0f, 3.0f, 4.0f};
    *reinterpret_cast<float4*>(p + (t == bad ? 4 * t + 2 : 4 * t)) = v;  // 16 bytes at 16k + 8
}

__global__ void misaligned_half(unsigned short* p, int bad) {
    const int t = static_cast<int>(threadIdx.x);
    unsigned short* q = reinterpret_cast<unsigned short*>(reinterpret_cast<char*>(p + t) + (t == bad ? 1 : 0));
    *q = static_cast<unsigned short>(t);  // 2 bytes at an odd address
}

__global__ void misaligned_long(const long long* p, long long* out, int bad) {
    const int t = static_cast<int>(threadIdx.x);
    const char* at = reinterpret_cast<const char*>(p + t) + (t == bad ? 4 : 0);
    out[t] = *reinterpret_cast<const long long*>(at);  // 8 bytes at 8k + 4
}
#endif

// --- checks ---------------------------------------------------------------------------------------------------------

static int failures = 0;

static void expect(bool ok, const std::string& what) {
    std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

static void check_block_sum(dim3 grid, dim3 block) {
    const unsigned threads = block.x * block.y * block.z;
    const unsigned blocks = grid.x * grid.y * grid.z;
    std::vector<long long> in(static_cast<std::size_t>(threads) * blocks);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<long long>(i * 7919 % 1000003);
    std::vector<long long> out(blocks, -1);
    ema_emulate_launch_named("block_sum", grid, block, block_sum, static_cast<const long long*>(in.data()),
                             out.data());
    bool ok = true;
    for (unsigned b = 0; b < blocks; ++b) {
        long long want = 0;
        for (unsigned t = 0; t < threads; ++t) want += in[static_cast<std::size_t>(b) * threads + t];
        ok = ok && out[b] == want;
    }
    char what[160];
    std::snprintf(what, sizeof what, "block_sum, grid (%u,%u,%u) block (%u,%u,%u)", grid.x, grid.y, grid.z, block.x,
                  block.y, block.z);
    expect(ok, what);
}

static void check_block_reverse(unsigned blocks, unsigned threads) {
    std::vector<int> in(static_cast<std::size_t>(blocks) * threads);
    std::vector<int> out(in.size(), -1);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i);
    ema_emulate_launch_named("block_reverse", dim3(blocks), dim3(threads), block_reverse,
                             static_cast<const int*>(in.data()), out.data());
    bool ok = true;
    for (unsigned b = 0; b < blocks; ++b) {
        for (unsigned t = 0; t < threads; ++t) ok = ok && out[b * threads + t] == in[b * threads + threads - 1 - t];
    }
    expect(ok, "block_reverse, " + std::to_string(blocks) + " blocks of " + std::to_string(threads));
}

// The CUDA definitions, lane by lane, for a block of `threads` (its last warp may be partial).
static void check_warp_shuffles(unsigned threads) {
    const unsigned blocks = 3;
    std::vector<int> in(blocks * threads);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i * 31 + 7);
    std::vector<int> out(5 * in.size(), 0);
    std::vector<float> sums(in.size(), 0.0f);
    ema_emulate_launch_named("warp_shuffles", dim3(blocks), dim3(threads), warp_shuffles,
                             static_cast<const int*>(in.data()), out.data(), sums.data());
    bool ok = true;
    for (unsigned b = 0; b < blocks; ++b) {
        for (unsigned t = 0; t < threads; ++t) {
            const unsigned lane = t % 32;
            const unsigned warp_base = b * threads + t - lane;
            const unsigned lanes = t - lane + 32 <= threads ? 32 : threads % 32;
            auto value = [&](unsigned l) { return l < lanes ? in[warp_base + l] : -1; };  // missing lane: all ones
            const int* row = &out[5 * (b * threads + t)];
            ok = ok && row[0] == value(lane ^ 3u);
            ok = ok && row[1] == (lane + 4 < 32 ? value(lane + 4) : value(lane));
            ok = ok && row[2] == (lane >= 2 ? value(lane - 2) : value(lane));
            ok = ok && row[3] == value(5);
            ok = ok && row[4] == ((lane ^ 12u) < (lane / 8 + 1) * 8 ? value(lane ^ 12u) : value(lane));
            if (lanes == 32) {
                float want = 0.0f;
                for (unsigned l = 0; l < 32; ++l) want += static_cast<float>(value(l));
                // the xor tree adds in a different order, but these integers are exact in fp32
                ok = ok && sums[b * threads + t] == want;
            }
        }
    }
    expect(ok, "warp shuffles and __syncwarp, blocks of " + std::to_string(threads));
}

static ema4j_host::LaunchOptions schedule(std::uint64_t seed, bool shuffle = true, bool recover = false) {
    ema4j_host::LaunchOptions options;
    options.seed = seed;
    options.number = 1;
    options.shuffle = shuffle;
    options.recover = recover;
    return options;
}

// The correct kernels give the same results under many schedules.
static void check_schedules() {
    bool ok = true;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        const unsigned threads = 64 + 37 * static_cast<unsigned>(seed % 4);  // 64 .. 175: partial warps too
        std::vector<long long> in(7 * threads);
        for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<long long>(i * 7919 % 1000003);
        std::vector<long long> out(7, -1);
        ema_emulate_launch_options(schedule(seed), "block_sum", dim3(7), dim3(threads), block_sum,
                                   static_cast<const long long*>(in.data()), out.data());
        for (unsigned b = 0; b < 7; ++b) {
            long long want = 0;
            for (unsigned t = 0; t < threads; ++t) want += in[b * threads + t];
            ok = ok && out[b] == want;
        }
        std::vector<int> values(3 * threads);
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>(i * 31 + 7);
        std::vector<int> rows(5 * values.size(), 0);
        std::vector<float> sums(values.size(), 0.0f);
        ema_emulate_launch_options(schedule(seed), "warp_shuffles", dim3(3), dim3(threads), warp_shuffles,
                                   static_cast<const int*>(values.data()), rows.data(), sums.data());
        for (unsigned t = 0; t < 3 * threads; ++t) {
            const unsigned lane = t % threads % 32;
            const unsigned base = t - lane;
            const unsigned lanes = t % threads - lane + 32 <= threads ? 32 : threads % 32;
            ok = ok && rows[5 * t] == ((lane ^ 3u) < lanes ? values[base + (lane ^ 3u)] : -1);
        }
    }
    expect(ok, "block_sum and the warp shuffles under 8 seeds (shuffled blocks and threads)");
}

// The schedule is a shuffle of blocks and threads, reproducible from the seed and the launch number.
static void check_schedule_order() {
    const unsigned blocks = 16;
    const unsigned threads = 64;
    auto run = [&](const ema4j_host::LaunchOptions& options, std::vector<int>& b, std::vector<int>& before,
                   std::vector<int>& after) {
        b.assign(blocks, -1);
        before.assign(threads, -1);
        after.assign(threads, -1);
        std::vector<int> counters(3, 0);
        ema_emulate_launch_options(options, "record_order", dim3(blocks), dim3(threads), record_order, b.data(),
                                   before.data(), after.data(), counters.data());
    };
    auto identity = [](const std::vector<int>& v) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (v[i] != static_cast<int>(i)) return false;
        }
        return true;
    };
    auto permutation = [](std::vector<int> v) {
        std::sort(v.begin(), v.end());
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (v[i] != static_cast<int>(i)) return false;
        }
        return true;
    };
    std::vector<int> b, before, after;
    run(schedule(0, false), b, before, after);
    expect(identity(b) && identity(before), "index order: blocks and threads by index");
    std::set<std::vector<int>> block_orders, thread_orders;
    std::set<int> first_after;
    bool permutations = true;
    bool after_differs = false;
    for (std::uint64_t seed = 1; seed <= 16; ++seed) {
        run(schedule(seed), b, before, after);
        permutations = permutations && permutation(b) && permutation(before) && permutation(after);
        block_orders.insert(b);
        thread_orders.insert(before);
        first_after.insert(after[0]);
        after_differs = after_differs || after != before;
    }
    expect(permutations, "shuffled: every block and every thread runs once");
    expect(block_orders.size() == 16 && thread_orders.size() == 16,
           "16 seeds give 16 block orders and 16 thread orders");
    expect(after_differs && first_after.size() > 1,
           "after a barrier the threads run in a new order, not always led by the last to arrive");
    std::vector<int> b2, before2, after2;
    run(schedule(7), b, before, after);
    run(schedule(7), b2, before2, after2);
    bool same = b == b2 && before == before2 && after == after2;
    ema4j_host::LaunchOptions next = schedule(7);
    next.number = 2;
    run(next, b2, before2, after2);
    expect(same && (b != b2 || before != before2), "the same seed and launch number give the same order; the next "
                                                   "launch number another");
    const unsigned many = (1u << 20) + 3;  // more blocks than the shim lists: a random stride instead
    std::vector<int> big(many, -1);
    std::vector<int> one(1, -1);
    std::vector<int> counters(3, 0);
    ema_emulate_launch_options(schedule(5), "record_order", dim3(many), dim3(1), record_order, big.data(), one.data(),
                               one.data(), counters.data());
    expect(permutation(big) && !identity(big), "a grid of 2^20 + 3 blocks: every block once, not in index order");
}

// A planted race, right in index order: wrong under every one of 16 seeds, and the same under the same seed.
template <typename Launch>
static void check_race(const std::string& what, Launch launch) {
    const bool in_order = launch(schedule(0, false));
    int caught = 0;
    for (std::uint64_t seed = 1; seed <= 16; ++seed) caught += launch(schedule(seed)) ? 0 : 1;
    expect(in_order, what + ": right in index order (the old emulator's schedule hides it)");
    expect(caught == 16, what + ": wrong under " + std::to_string(caught) + " of 16 seeds");
}

static void check_races() {
    const unsigned blocks = 8;
    const unsigned threads = 64;
    std::vector<int> in(blocks * threads);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i * 7 + 1);
    check_race("a reduction missing __syncthreads (the last thread sums)", [&](const ema4j_host::LaunchOptions& o) {
        std::vector<int> out(blocks, 0);
        ema_emulate_launch_options(o, "sum_by_last_thread", dim3(blocks), dim3(threads), sum_by_last_thread,
                                   static_cast<const int*>(in.data()), out.data());
        bool right = true;
        for (unsigned b = 0; b < blocks; ++b) {
            int want = 0;
            for (unsigned t = 0; t < threads; ++t) want += in[b * threads + t];
            right = right && out[b] == want;
        }
        return right;
    });
    check_race("blocks that read what the block before wrote", [&](const ema4j_host::LaunchOptions& o) {
        std::vector<int> out(blocks * threads, 0);
        ema_emulate_launch_options(o, "chained_blocks", dim3(blocks * threads), dim3(32), chained_blocks,
                                   static_cast<const int*>(in.data()), out.data());
        int sum = 0;
        bool right = true;
        for (unsigned b = 0; b < blocks * threads; ++b) right = right && out[b] == (sum += in[b]);
        return right;
    });
}

// Runs `bug` in a child process, which must die of SIGABRT with `message` on stderr.
template <typename Bug>
static void expect_abort(const std::string& what, const std::string& message, Bug bug) {
    std::fflush(stdout);
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        expect(false, what + ": pipe failed");
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        dup2(pipe_fds[1], STDERR_FILENO);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        std::signal(SIGABRT, SIG_DFL);
        bug();
        _exit(0);
    }
    close(pipe_fds[1]);
    std::string err;
    char buffer[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) err.append(buffer, static_cast<std::size_t>(n));
    close(pipe_fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    const bool said = err.find(message) != std::string::npos;
    expect(aborted && said, what + " aborts with \"" + message + "\"");
    if (!(aborted && said)) std::printf("      child status %d, stderr:\n%s\n", status, err.c_str());
}

#ifdef EMA4J_ALIGNMENT_TRAP
// A launch with a planted misaligned access must end with a message that contains every piece of `want`.
template <typename Launch>
static void expect_trap(const std::string& what, const std::vector<std::string>& want, Launch launch) {
    const char* error = launch(schedule(3, true, true));
    std::string message = error != nullptr ? error : "(no trap)";
    bool ok = error != nullptr;
    for (const std::string& piece : want) ok = ok && message.find(piece) != std::string::npos;
    expect(ok, what + " traps");
    std::printf("      %s\n", message.c_str());
}

static void check_misaligned() {
    alignas(16) static char bytes[4096];
    alignas(16) static float floats[1024];
    alignas(16) static long long longs[128];
    alignas(16) static unsigned short halves[128];
    std::vector<float> out(1024);
    std::vector<long long> long_out(128);
    std::memset(bytes, 0, sizeof bytes);
    const char* c = bytes;
    expect_trap("a misaligned 4-byte load", {"kernel misaligned_scalar<<<(3,1,1), (64,1,1)>>>, block (1,0,0), "
                "thread (37,0,0)", "misaligned address: 4-byte load of 'const float' at 0x", "needs 4-byte alignment",
                "% 4 = 2", "shim_selftest.cu:", "CUDA_ERROR_MISALIGNED_ADDRESS", "EMA4J_CUDA_EMULATOR_SEED=3"},
                [&](const ema4j_host::LaunchOptions& o) {
        return ema_emulate_launch_options(o, "misaligned_scalar", dim3(3), dim3(64), misaligned_scalar, c,
                                          out.data(), 37);
    });
    expect_trap("a misaligned 16-byte vector load", {"thread (5,0,0)", "16-byte access of 'const struct float4'",
                "needs 16-byte alignment", "% 16 = 4"}, [&](const ema4j_host::LaunchOptions& o) {
        return ema_emulate_launch_options(o, "misaligned_vector_load", dim3(1), dim3(32), misaligned_vector_load,
                                          static_cast<const float*>(floats), out.data(), 5);
    });
    expect_trap("a misaligned 16-byte vector store", {"thread (9,0,0)", "16-byte store of 'struct float4'", "% 16 = 8"},
                [&](const ema4j_host::LaunchOptions& o) {
        return ema_emulate_launch_options(o, "misaligned_vector_store", dim3(1), dim3(128), misaligned_vector_store,
                                          floats, 9);
    });
    expect_trap("a misaligned 2-byte store", {"2-byte store of 'short unsigned int'", "% 2 = 1"},
                [&](const ema4j_host::LaunchOptions& o) {
        return ema_emulate_launch_options(o, "misaligned_half", dim3(1), dim3(64), misaligned_half, halves, 11);
    });
    expect_trap("a misaligned 8-byte load", {"8-byte load of 'const long long int'", "% 8 = 4"},
                [&](const ema4j_host::LaunchOptions& o) {
        return ema_emulate_launch_options(o, "misaligned_long", dim3(1), dim3(64), misaligned_long,
                                          static_cast<const long long*>(longs), long_out.data(), 63);
    });
    const bool aligned = ema_emulate_launch_options(schedule(3, true, true), "misaligned_scalar", dim3(3), dim3(64),
                                                    misaligned_scalar, c, out.data(), -1) == nullptr &&
                         ema_emulate_launch_options(schedule(3, true, true), "misaligned_vector_store", dim3(1),
                                                    dim3(128), misaligned_vector_store, floats, -1) == nullptr;
    expect(aligned, "the same kernels with aligned accesses do not trap");
    check_block_sum(dim3(5), dim3(256));  // the fibers abandoned by the traps are reused
    check_warp_shuffles(100);
    expect_abort("a misaligned access outside ema_emulate_launch_options", "misaligned address: 4-byte load", [&] {
        ema_emulate_launch_named("misaligned_scalar", dim3(3), dim3(64), misaligned_scalar, c, out.data(), 37);
    });
}
#else
static void check_misaligned() {
    std::printf("skip  misaligned-access traps (built without EMA4J_ALIGNMENT_TRAP)\n");
}
#endif

int main() {
    check_block_sum(dim3(1), dim3(1));
    check_block_sum(dim3(5), dim3(256));
    check_block_sum(dim3(3), dim3(1000));
    check_block_sum(dim3(2), dim3(1024));
    check_block_sum(dim3(2, 3, 2), dim3(7, 5, 3));
    check_block_sum(dim3(1000), dim3(64));
    check_block_reverse(7, 96);
    check_block_reverse(2, 1024);
    for (unsigned threads : {32u, 64u, 48u, 100u, 1024u}) check_warp_shuffles(threads);

    std::vector<float> p(1024, 1.0f);
    expect_abort("a thread returning before a barrier", "divergent barrier", [&] {
        ema_emulate_launch_named("early_return", dim3(2), dim3(256), early_return, p.data(), 200);
    });
    expect_abort("a barrier in a branch", "kernel barrier_in_branch<<<(1,1,1), (64,1,1)>>>", [&] {
        ema_emulate_launch_named("barrier_in_branch", dim3(1), dim3(64), barrier_in_branch, p.data());
    });
    expect_abort("a shuffle in a branch", "divergent warp barrier", [&] {
        ema_emulate_launch_named("divergent_shuffle", dim3(1), dim3(32), divergent_shuffle, p.data());
    });
    expect_abort("__syncthreads against __syncwarp", "deadlock", [&] {
        ema_emulate_launch_named("barrier_deadlock", dim3(1), dim3(32), barrier_deadlock, p.data());
    });
    expect_abort("a partial shuffle mask", "only the full mask", [&] {
        ema_emulate_launch_named("partial_mask", dim3(1), dim3(32), [](float* q) {
            q[threadIdx.x] = __shfl_xor_sync(0xffffu, q[threadIdx.x], 1);
        }, p.data());
    });
    expect_abort("__syncthreads outside a launch", "outside a kernel launch", [] { __syncthreads(); });

    check_schedules();
    check_schedule_order();
    check_races();
    check_misaligned();

    std::printf("%s: shim self-test, %d failure(s)\n", failures == 0 ? "PASSED" : "FAILED", failures);
    return failures == 0 ? 0 : 1;
}
