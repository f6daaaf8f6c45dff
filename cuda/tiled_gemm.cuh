// tiled_gemm.cuh: the shared-memory tiled SGEMM core of ema4j's convolutions (cuda/conv.cu) and linear layers
// (cuda/gemm.cu). It needs nothing but the driver: no cuBLAS, no cuDNN.
//
//     C[m, n] = sum over d in [d_begin, d_end) of A(m, d) * B(n, d)        (fp32, fmaf, d ascending)
//
// A and B are functors that compute an operand element from its (row, depth) index, so a convolution is an
// "implicit GEMM": the im2col matrix is never stored, its elements are gathered while a tile is loaded. Each
// functor says which index is contiguous in memory (kDepthFastest), and the tile loader walks that index across
// neighbouring threads so the global loads coalesce. Out-of-range elements load as 0.
//
// One block of kGemmThreads = 256 threads computes a kTileM x kTileN = 64 x 64 tile of C, stepping through the
// depth kTileK = 16 at a time: both operand tiles are staged in shared memory, then each thread accumulates a
// 4 x 4 register tile (rows ty + 16 i, columns tx + 16 j, so the shared-memory reads of a warp are broadcasts or
// consecutive). The global loads of the next step are issued before this step's products and land in registers
// (double buffering in registers, one shared-memory buffer): their latency hides behind 256 FMAs per thread
// instead of stalling the block at every step. Every element of C is one chain of fmaf in ascending depth order:
// results do not depend on the grid, and are deterministic.
//
// Numerics: the CPU backend (OpenBLAS) and cuBLAS sum in other orders, so results agree with them within the NnOps
// conformance suite's GEMM tolerance (a depth-D fp32 sum errs by about 2^-24 * sqrt(D) of its terms' size); FMA
// contraction adds nothing, as the PTX is built without it (NOTE: [no-contraction] in native/build-ptx.sh).
//
// Launch: grid (ceil(N / 64), ceil(M / 64), splits), block 256; blockIdx.z may select a depth range (split-K).
#pragma once

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kGemmThreads = 256;

// Each thread moves kTileLoads elements of each operand tile per step: element j of this thread is (row r, depth dd)
// of the tile, with the index walked across neighbouring threads the operand's contiguous one (kDepthFastest).
constexpr int kTileLoads = kTileM * kTileK / kGemmThreads;
static_assert(kTileM == kTileN && kGemmThreads % kTileM == 0 && kGemmThreads % kTileK == 0, "whole rows per pass");

template <class Operand>
__device__ __forceinline__ void gemm_tile_position(int j, int* r, int* dd) {
    if (Operand::kDepthFastest) {  // a warp reads 16 consecutive depths of 2 rows
        *dd = threadIdx.x % kTileK;
        *r = threadIdx.x / kTileK + j * (kGemmThreads / kTileK);
    } else {  // a warp reads 32 consecutive rows of one depth
        *r = threadIdx.x % kTileM;
        *dd = threadIdx.x / kTileM + j * (kGemmThreads / kTileM);
    }
}

// Loads this thread's elements of rows [row0, row0 + kTileM) x depths [d0, d0 + kTileK) of an operand into v (0 out
// of range). All loads are issued before any is used, and what the elements share (a row's or a depth's
// coordinates in a convolution) is computed once.
template <class Operand>
__device__ __forceinline__ void gemm_gather(const Operand& operand, float (&v)[kTileLoads], int row0, int rows,
                                            int d0, int d_end) {
#pragma unroll
    for (int j = 0; j < kTileLoads; ++j) {
        int r;
        int dd;
        gemm_tile_position<Operand>(j, &r, &dd);
        const int row = row0 + r;
        const int d = d0 + dd;
        v[j] = row < rows && d < d_end ? operand(row, d) : 0.f;
    }
}

// Stores what gemm_gather loaded into tile[depth][row].
template <class Operand>
__device__ __forceinline__ void gemm_stage(const float (&v)[kTileLoads], float (*tile)[kTileM + 1]) {
#pragma unroll
    for (int j = 0; j < kTileLoads; ++j) {
        int r;
        int dd;
        gemm_tile_position<Operand>(j, &r, &dd);
        tile[dd][r] = v[j];
    }
}

// Computes this block's tile of C over depths [d_begin, d_end) and hands each element in range to store(m, n, v).
// Every thread of the block must call it (it synchronizes the block). The operands of the next depth step are
// loaded into registers while this one's products are computed (register double buffering).
template <class A, class B, class Store>
__device__ __forceinline__ void gemm_tile(const A& a, const B& b, const Store& store, int m_count, int n_count,
                                          int d_begin, int d_end) {
    __shared__ float a_tile[kTileK][kTileM + 1];  // +1: depth-fastest stores spread over the banks
    __shared__ float b_tile[kTileK][kTileN + 1];
    const int tx = threadIdx.x % 16;
    const int ty = threadIdx.x / 16;
    const int m0 = blockIdx.y * kTileM;
    const int n0 = blockIdx.x * kTileN;
    float acc[4][4];
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
            acc[i][j] = 0.f;
        }
    }
    float a_next[kTileLoads];
    float b_next[kTileLoads];
    if (d_begin < d_end) {
        gemm_gather(a, a_next, m0, m_count, d_begin, d_end);
        gemm_gather(b, b_next, n0, n_count, d_begin, d_end);
    }
    for (int d0 = d_begin; d0 < d_end; d0 += kTileK) {
        gemm_stage<A>(a_next, a_tile);
        gemm_stage<B>(b_next, b_tile);
        __syncthreads();
        if (d0 + kTileK < d_end) {
            gemm_gather(a, a_next, m0, m_count, d0 + kTileK, d_end);
            gemm_gather(b, b_next, n0, n_count, d0 + kTileK, d_end);
        }
#pragma unroll
        for (int dd = 0; dd < kTileK; ++dd) {
            float av[4];
            float bv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                av[i] = a_tile[dd][ty + 16 * i];
                bv[i] = b_tile[dd][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
                }
            }
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
            const int m = m0 + ty + 16 * i;
            const int n = n0 + tx + 16 * j;
            if (m < m_count && n < n_count) {
                store(m, n, acc[i][j]);
            }
        }
    }
}

// The depth range of split blockIdx.z when the depth is cut into gridDim.z slices of `per_split` (a multiple of
// kTileK): [begin, end), possibly empty for the last splits.
__device__ __forceinline__ void gemm_split(int depth, int per_split, int* begin, int* end) {
    const long long b = static_cast<long long>(blockIdx.z) * per_split;
    *begin = static_cast<int>(b < depth ? b : depth);
    *end = static_cast<int>(b + per_split < depth ? b + per_split : depth);
}
