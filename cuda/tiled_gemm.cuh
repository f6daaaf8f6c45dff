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
// consecutive). Every element of C is one chain of fmaf in ascending depth order: results do not depend on the
// grid, and are deterministic.
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

// Stages rows [row0, row0 + kRows) x depths [d0, d0 + kTileK) of an operand into tile[depth][row].
template <int kRows, class Operand>
__device__ __forceinline__ void gemm_load_tile(const Operand& operand, float (*tile)[kRows + 1], int row0, int rows,
                                               int d0, int d_end) {
    for (int i = threadIdx.x; i < kRows * kTileK; i += kGemmThreads) {
        int r;
        int dd;
        if (Operand::kDepthFastest) {
            dd = i % kTileK;
            r = i / kTileK;
        } else {
            r = i % kRows;
            dd = i / kRows;
        }
        const int row = row0 + r;
        const int d = d0 + dd;
        tile[dd][r] = row < rows && d < d_end ? operand(row, d) : 0.f;
    }
}

// Computes this block's tile of C over depths [d_begin, d_end) and hands each element in range to store(m, n, v).
// Every thread of the block must call it (it synchronizes the block).
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
    for (int d0 = d_begin; d0 < d_end; d0 += kTileK) {
        gemm_load_tile<kTileM>(a, a_tile, m0, m_count, d0, d_end);
        gemm_load_tile<kTileN>(b, b_tile, n0, n_count, d0, d_end);
        __syncthreads();
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
