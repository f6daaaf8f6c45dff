// cuda_host_shim.h: just enough of CUDA to compile cuda/ema.cu (and native/ema_check.cu) as plain C++ on a machine
// without a GPU, so the kernels run in "host emulation":
//
//     g++ -O2 -std=c++17 -ffp-contract=off -x c++ -include native/cuda_host_shim.h native/ema_check.cu
//
// A kernel launch becomes a sequential loop over every block and every thread (ema_emulate_launch below), which is
// valid for kernels that use neither __syncthreads nor shared memory nor warp intrinsics, as is the case for every
// kernel in cuda/ema.cu. fmaf is the C library's fused multiply-add (one rounding), as on the GPU; never build this
// with -ffast-math. uint4/float4 are 16-byte aligned (as in CUDA) and may alias other types, because the kernels
// reinterpret float/uint16_t buffers as uint4/float4; build with -fsanitize=alignment,address to have misaligned
// vector accesses or out-of-bounds accesses reported.
#pragma once

#ifdef __CUDACC__
#error "cuda_host_shim.h is for host emulation only; do not include it in an nvcc build"
#endif

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define EMA4J_HOST_EMULATION 1

// --- qualifiers -------------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __shared__ static_assert(false, "host emulation: shared memory is not supported")
#define __syncthreads() static_assert(false, "host emulation: __syncthreads is not supported")

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
// without hardware FMA). ema.cu calls the unqualified ::fmaf, which <cmath> declares; nothing to define here.
using std::fmaf;

inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

// Atomics: the emulated launch runs one thread at a time, so plain read-modify-writes are atomic.
inline int atomicAdd(int* p, int v) { int old = *p; *p = old + v; return old; }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { unsigned int old = *p; *p = old + v; return old; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    unsigned long long old = *p; *p = old + v; return old;
}
inline float atomicAdd(float* p, float v) { float old = *p; *p = old + v; return old; }
inline int atomicExch(int* p, int v) { int old = *p; *p = v; return old; }
inline int atomicMax(int* p, int v) { int old = *p; if (v > old) *p = v; return old; }
inline int atomicOr(int* p, int v) { int old = *p; *p = old | v; return old; }
inline void __threadfence() {}

// --- emulated launch ----------------------------------------------------------------------------------------------
// Runs kernel(args...) once per (block, thread), blocks in order, threads in order within a block (1-D and 3-D
// grids). Arguments are passed by value to every "thread", as the GPU does.
template <typename Kernel, typename... Args>
inline void ema_emulate_launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0 ||
        static_cast<unsigned long long>(block.x) * block.y * block.z > 1024) {
        std::fprintf(stderr, "host emulation: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n",
                     grid.x, grid.y, grid.z, block.x, block.y, block.z);
        std::abort();
    }
    gridDim = grid;
    blockDim = block;
    for (unsigned int bz = 0; bz < grid.z; ++bz)
        for (unsigned int by = 0; by < grid.y; ++by)
            for (unsigned int bx = 0; bx < grid.x; ++bx) {
                blockIdx = {bx, by, bz};
                for (unsigned int tz = 0; tz < block.z; ++tz)
                    for (unsigned int ty = 0; ty < block.y; ++ty)
                        for (unsigned int tx = 0; tx < block.x; ++tx) {
                            threadIdx = {tx, ty, tz};
                            kernel(args...);
                        }
            }
    threadIdx = {0, 0, 0};
    blockIdx = {0, 0, 0};
}
