// shim_selftest.cu: checks the cooperative threads of native/cuda_host_shim.h: shared memory and __syncthreads,
// __syncwarp and the warp shuffles (compared with their CUDA definitions), and that barrier bugs stop the program
// with a message naming the launch. native/build-emulator.sh builds and runs it, plain and under ASan+UBSan:
//
//     g++ -O2 -std=c++17 -x c++ -include native/cuda_host_shim.h native/emulator/shim_selftest.cu -o shim_selftest
//
// Every bug case runs in a child process (fork), which must abort with the expected message on stderr.
// Exits 0 when every check passes, 1 otherwise.

#ifndef EMA4J_HOST_EMULATION
#error "compile with -include native/cuda_host_shim.h (see the header of this file)"
#endif

#include <csignal>
#include <cstdio>
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

    std::printf("%s: shim self-test, %d failure(s)\n", failures == 0 ? "PASSED" : "FAILED", failures);
    return failures == 0 ? 0 : 1;
}
