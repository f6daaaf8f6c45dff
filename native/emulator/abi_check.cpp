// abi_check.cpp: compiled (-fsyntax-only) by native/build-emulator.sh against the CUDA toolkit's cuda.h, when it
// finds one: every value in driver_abi.h must equal cuda.h's.
#include <cuda.h>

#include "driver_abi.h"

#include <type_traits>

#define EMA4J_CHECK(name, value, ...) \
    static_assert(static_cast<int>(ema4j_cu::name) == static_cast<int>(::name), #name " differs from cuda.h");
EMA4J_CU_RESULTS(EMA4J_CHECK)
EMA4J_CU_DEVICE_ATTRIBUTES(EMA4J_CHECK)
EMA4J_CU_POINTER_ATTRIBUTES(EMA4J_CHECK)
EMA4J_CU_FUNCTION_ATTRIBUTES(EMA4J_CHECK)
EMA4J_CU_CONSTANTS(EMA4J_CHECK)
EMA4J_CU_STREAM_CAPTURE_MODES(EMA4J_CHECK)
EMA4J_CU_STREAM_CAPTURE_STATUSES(EMA4J_CHECK)
#undef EMA4J_CHECK

static_assert(sizeof(ema4j_cu::CUdeviceptr) == sizeof(::CUdeviceptr), "CUdeviceptr differs from cuda.h");
static_assert(sizeof(ema4j_cu::CUdevice) == sizeof(::CUdevice), "CUdevice differs from cuda.h");
static_assert(sizeof(ema4j_cu::CUresult) == sizeof(::CUresult), "CUresult differs from cuda.h");
static_assert(sizeof(ema4j_cu::CUstreamCaptureMode) == sizeof(::CUstreamCaptureMode),
              "CUstreamCaptureMode differs from cuda.h");
static_assert(sizeof(ema4j_cu::CUstreamCaptureStatus) == sizeof(::CUstreamCaptureStatus),
              "CUstreamCaptureStatus differs from cuda.h");
static_assert(std::is_same<ema4j_cu::CUhostFn, ::CUhostFn>::value, "CUhostFn differs from cuda.h");
