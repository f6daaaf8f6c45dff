// driver_abi.h: the part of the CUDA driver API (cuda.h) that the emulator implements: types, result codes,
// attributes and flags, with the values of cuda.h. It is written out here so the emulator builds without the CUDA
// toolkit; native/build-emulator.sh compiles abi_check.cpp against the real cuda.h when it finds one, which
// checks every value below.
//
// The lists are X-macros, X(name, value, ...), so that one line gives the enumerator, its check and its text.
#pragma once

#include <cstddef>

namespace ema4j_cu {

// Result codes: X(name, value, the real driver's cuGetErrorString text).
#define EMA4J_CU_RESULTS(X)                                                                              \
    X(CUDA_SUCCESS, 0, "no error")                                                                       \
    X(CUDA_ERROR_INVALID_VALUE, 1, "invalid argument")                                                   \
    X(CUDA_ERROR_OUT_OF_MEMORY, 2, "out of memory")                                                      \
    X(CUDA_ERROR_NOT_INITIALIZED, 3, "initialization error")                                             \
    X(CUDA_ERROR_DEINITIALIZED, 4, "driver shutting down")                                               \
    X(CUDA_ERROR_NO_DEVICE, 100, "no CUDA-capable device is detected")                                   \
    X(CUDA_ERROR_INVALID_DEVICE, 101, "invalid device ordinal")                                          \
    X(CUDA_ERROR_INVALID_IMAGE, 200, "device kernel image is invalid")                                   \
    X(CUDA_ERROR_INVALID_CONTEXT, 201, "invalid device context")                                         \
    X(CUDA_ERROR_INVALID_HANDLE, 400, "invalid resource handle")                                         \
    X(CUDA_ERROR_ILLEGAL_STATE, 401, "the operation cannot be performed in the present state")           \
    X(CUDA_ERROR_NOT_FOUND, 500, "named symbol not found")                                               \
    X(CUDA_ERROR_NOT_READY, 600, "device not ready")                                                     \
    X(CUDA_ERROR_ILLEGAL_ADDRESS, 700, "an illegal memory access was encountered")                       \
    X(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, 701, "too many resources requested for launch")               \
    X(CUDA_ERROR_MISALIGNED_ADDRESS, 716, "misaligned address")                                          \
    X(CUDA_ERROR_LAUNCH_FAILED, 719, "unspecified launch failure")                                       \
    X(CUDA_ERROR_NOT_PERMITTED, 800, "operation not permitted")                                          \
    X(CUDA_ERROR_NOT_SUPPORTED, 801, "operation not supported")                                          \
    X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, 900, "operation not permitted when stream is capturing")    \
    X(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, 901,                                                        \
      "operation failed due to a previous error during capture")                                         \
    X(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, 903, "capture was not ended in the same stream as it began")  \
    X(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, 905,                                                          \
      "dependency created on uncaptured work in another stream")                                         \
    X(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, 906,                                                           \
      "operation would make the legacy stream depend on a capturing blocking stream")                    \
    X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, 908,                                                       \
      "attempt to terminate a thread-local capture sequence from another thread")                        \
    X(CUDA_ERROR_UNKNOWN, 999, "unknown error")

// Device attributes: X(name, value, the emulated device's value). A small device of compute capability 9.0.
#define EMA4J_CU_DEVICE_ATTRIBUTES(X)                                                                    \
    X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1, 1024)                                                \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 2, 1024)                                                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 3, 1024)                                                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 4, 64)                                                        \
    X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 5, 2147483647)                                                 \
    X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 6, 65535)                                                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 7, 65535)                                                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 8, 49152)                                         \
    X(CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 9, 65536)                                               \
    X(CU_DEVICE_ATTRIBUTE_WARP_SIZE, 10, 32)                                                             \
    X(CU_DEVICE_ATTRIBUTE_MAX_PITCH, 11, 2147483647)                                                     \
    X(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 12, 65536)                                            \
    X(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 13, 1000000)                                                       \
    X(CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 14, 512)                                                    \
    X(CU_DEVICE_ATTRIBUTE_GPU_OVERLAP, 15, 0)                                                            \
    X(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 16, 4)                                                   \
    X(CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 17, 0)                                                    \
    X(CU_DEVICE_ATTRIBUTE_INTEGRATED, 18, 0)                                                             \
    X(CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, 19, 0)                                                    \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, 20, 0)                                                           \
    X(CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 31, 0)                                                     \
    X(CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 32, 0)                                                            \
    X(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 33, 0)                                                             \
    X(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 34, 0)                                                          \
    X(CU_DEVICE_ATTRIBUTE_TCC_DRIVER, 35, 0)                                                             \
    X(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 36, 1000000)                                                \
    X(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 37, 256)                                              \
    X(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 38, 4194304)                                                    \
    X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 39, 2048)                                      \
    X(CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 40, 0)                                                     \
    X(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 41, 1)                                                     \
    X(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 50, 0)                                                          \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 75, 9)                                               \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 76, 0)                                               \
    X(CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED, 78, 0)                                            \
    X(CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED, 79, 1)                                              \
    X(CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED, 80, 1)                                               \
    X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 81, 233472)                              \
    X(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 82, 65536)                                   \
    X(CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, 83, 0)                                                         \
    X(CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD, 84, 0)                                                        \
    X(CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, 89, 0)                                              \
    X(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, 95, 0)                                                     \
    X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 97, 49152)                                  \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 106, 32)                                        \
    X(CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 115, 0)

// Pointer attributes: X(name, value).
#define EMA4J_CU_POINTER_ATTRIBUTES(X)                                                                   \
    X(CU_POINTER_ATTRIBUTE_CONTEXT, 1)                                                                   \
    X(CU_POINTER_ATTRIBUTE_MEMORY_TYPE, 2)                                                               \
    X(CU_POINTER_ATTRIBUTE_DEVICE_POINTER, 3)                                                            \
    X(CU_POINTER_ATTRIBUTE_HOST_POINTER, 4)                                                              \
    X(CU_POINTER_ATTRIBUTE_BUFFER_ID, 7)                                                                 \
    X(CU_POINTER_ATTRIBUTE_IS_MANAGED, 8)                                                                \
    X(CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, 9)                                                            \
    X(CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, 11)                                                         \
    X(CU_POINTER_ATTRIBUTE_RANGE_SIZE, 12)                                                               \
    X(CU_POINTER_ATTRIBUTE_MAPPED, 13)

// Function attributes: X(name, value).
#define EMA4J_CU_FUNCTION_ATTRIBUTES(X)                                                                  \
    X(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0)                                                        \
    X(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 1)                                                            \
    X(CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES, 2)                                                             \
    X(CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, 3)                                                             \
    X(CU_FUNC_ATTRIBUTE_NUM_REGS, 4)                                                                     \
    X(CU_FUNC_ATTRIBUTE_PTX_VERSION, 5)                                                                  \
    X(CU_FUNC_ATTRIBUTE_BINARY_VERSION, 6)                                                               \
    X(CU_FUNC_ATTRIBUTE_CACHE_MODE_CA, 7)                                                                \
    X(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 8)

// Other enumerators: X(name, value).
#define EMA4J_CU_CONSTANTS(X)                                                                            \
    X(CU_MEMORYTYPE_HOST, 1)                                                                             \
    X(CU_MEMORYTYPE_DEVICE, 2)                                                                           \
    X(CU_STREAM_DEFAULT, 0)                                                                              \
    X(CU_STREAM_NON_BLOCKING, 1)                                                                         \
    X(CU_EVENT_DEFAULT, 0)                                                                               \
    X(CU_EVENT_BLOCKING_SYNC, 1)                                                                         \
    X(CU_EVENT_DISABLE_TIMING, 2)                                                                        \
    X(CU_EVENT_INTERPROCESS, 4)

// Stream capture modes (cuStreamBeginCapture, cuThreadExchangeStreamCaptureMode): X(name, value).
#define EMA4J_CU_STREAM_CAPTURE_MODES(X)                                                                 \
    X(CU_STREAM_CAPTURE_MODE_GLOBAL, 0)                                                                  \
    X(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, 1)                                                            \
    X(CU_STREAM_CAPTURE_MODE_RELAXED, 2)

// Stream capture statuses (cuStreamIsCapturing): X(name, value).
#define EMA4J_CU_STREAM_CAPTURE_STATUSES(X)                                                              \
    X(CU_STREAM_CAPTURE_STATUS_NONE, 0)                                                                  \
    X(CU_STREAM_CAPTURE_STATUS_ACTIVE, 1)                                                                \
    X(CU_STREAM_CAPTURE_STATUS_INVALIDATED, 2)

#define EMA4J_CU_ENUMERATOR(name, value, ...) name = value,
enum CUresult { EMA4J_CU_RESULTS(EMA4J_CU_ENUMERATOR) };
enum CUstreamCaptureMode : int { EMA4J_CU_STREAM_CAPTURE_MODES(EMA4J_CU_ENUMERATOR) };
enum CUstreamCaptureStatus : int { EMA4J_CU_STREAM_CAPTURE_STATUSES(EMA4J_CU_ENUMERATOR) };
enum CUdevice_attribute { EMA4J_CU_DEVICE_ATTRIBUTES(EMA4J_CU_ENUMERATOR) };
enum CUpointer_attribute { EMA4J_CU_POINTER_ATTRIBUTES(EMA4J_CU_ENUMERATOR) };
enum CUfunction_attribute { EMA4J_CU_FUNCTION_ATTRIBUTES(EMA4J_CU_ENUMERATOR) };
enum CUconstant { EMA4J_CU_CONSTANTS(EMA4J_CU_ENUMERATOR) };
#undef EMA4J_CU_ENUMERATOR

// The special stream handles (macros in cuda.h).
#define EMA4J_CU_STREAM_LEGACY 0x1
#define EMA4J_CU_STREAM_PER_THREAD 0x2

using CUdevice = int;
using CUdeviceptr = unsigned long long;

// Handles: pointers to the emulator's objects.
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;
using CUstream = CUstream_st*;
using CUevent = CUevent_st*;
using CUgraph = CUgraph_st*;
using CUgraphExec = CUgraphExec_st*;

// A host function queued by cuLaunchHostFunc.
using CUhostFn = void (*)(void* user_data);

}  // namespace ema4j_cu
