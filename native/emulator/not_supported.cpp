// not_supported.cpp: a stub for every driver function that JCuda's native library references and the emulator does
// not implement, so that the library loads; native/build-emulator.sh generates the list (not_supported.inc) from
// `nm -D --undefined-only` of JCuda's libJCudaDriver. Each stub returns CUDA_ERROR_NOT_SUPPORTED and says so on
// stderr the first time. The stubs ignore their parameters, which the x86-64 calling convention allows.

extern "C" int ema4j_not_supported(const char* function);  // cuda_driver_emulator.cpp

#define EMA4J_STUB(name) \
    extern "C" __attribute__((visibility("default"))) int name() { return ema4j_not_supported(#name); }
#include "not_supported.inc"
