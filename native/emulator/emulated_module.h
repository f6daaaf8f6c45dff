// emulated_module.h: the interface between the CUDA driver emulator (libcuda.so.1) and an emulated module,
// modules/<name>.so, which native/build-emulator.sh builds from cuda/<name>.cu with native/cuda_host_shim.h.
//
// A module exports one symbol, ema4j_emulated_module (an Ema4jModule): the source it was built from, that source's
// SHA-256 (compared with the PTX stamp when the driver loads the module), and one Ema4jKernel per kernel. The build
// script generates the kernel table with EMA4J_KERNEL(name); the launcher it defines takes the kernel's parameter
// types from the function's type and copies each argument out of cuLaunchKernel's kernelParams, and runs the kernel
// in host emulation with the driver's schedule (NOTE: [schedule-seed] in native/cuda_host_shim.h). The build
// compiles modules with misaligned accesses trapping (NOTE: [alignment-trap]): a trap ends the launch, which
// returns 1 with the message.
#pragma once

#include <cstddef>

extern "C" {

struct Ema4jLaunch {
    unsigned grid[3];
    unsigned block[3];
    void** params;              // cuLaunchKernel's kernelParams: params[i] points to argument i
    unsigned long long seed;    // the schedule seed (EMA4J_CUDA_EMULATOR_SEED)
    unsigned long long number;  // the launch's number in the process: with the seed, it fixes the schedule
    char* error;                // where a trap's message goes (NUL-terminated, truncated to error_size)
    std::size_t error_size;
};

struct Ema4jKernel {
    const char* name;
    unsigned param_count;
    const std::size_t* param_sizes;  // sizeof each parameter, checked against the PTX's .param list
    int (*launch)(const Ema4jLaunch& launch);  // 0, or 1 when a trap ended the kernel (message in launch.error)
};

struct Ema4jModule {
    unsigned abi;        // EMA4J_MODULE_ABI of the build
    const char* source;  // "cuda/<name>.cu"
    const char* sha256;  // of that file when the module was built
    const Ema4jKernel* kernels;
    unsigned kernel_count;
};
}

#define EMA4J_MODULE_ABI 2
#define EMA4J_MODULE_SYMBOL "ema4j_emulated_module"

#ifdef EMA4J_HOST_EMULATION  // the module side: the exported table and the launchers, built with cuda_host_shim.h

#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

extern "C" {
__attribute__((visibility("default"))) extern const Ema4jModule ema4j_emulated_module;  // the generated table
}

namespace ema4j_module {

// Argument i of a launch: a copy of the bytes kernelParams[i] points to (which need not be aligned for T).
template <typename T>
T argument(void* p) {
    static_assert(std::is_trivially_copyable<T>::value, "kernel parameters are copied bytewise, as on the GPU");
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

template <typename... Args, std::size_t... I>
int launch(const char* name, void (*kernel)(Args...), const Ema4jLaunch& l, std::index_sequence<I...>) {
    ema4j_host::LaunchOptions options;
    options.seed = l.seed;
    options.number = l.number;
    options.recover = true;
    const char* error = ema_emulate_launch_options(options, name, dim3(l.grid[0], l.grid[1], l.grid[2]),
                                                   dim3(l.block[0], l.block[1], l.block[2]), kernel,
                                                   argument<Args>(l.params[I])...);
    if (error == nullptr) return 0;
    if (l.error_size > 0) std::snprintf(l.error, l.error_size, "%s", error);
    return 1;
}

template <typename Kernel>
struct Signature;

template <typename... Args>
struct Signature<void (*)(Args...)> {
    static constexpr unsigned count = sizeof...(Args);
    static constexpr std::size_t sizes[sizeof...(Args) + 1] = {sizeof(Args)..., 0};  // + 1: no empty array
    static int run(const char* name, void (*kernel)(Args...), const Ema4jLaunch& l) {
        return launch(name, kernel, l, std::index_sequence_for<Args...>{});
    }
};

}  // namespace ema4j_module

// One entry of the kernel table; `kernel` must be an extern "C" __global__ function of the included source.
#define EMA4J_KERNEL(kernel)                                                                                      \
    {#kernel, ema4j_module::Signature<decltype(&kernel)>::count, ema4j_module::Signature<decltype(&kernel)>::sizes, \
     [](const Ema4jLaunch& l) { return ema4j_module::Signature<decltype(&kernel)>::run(#kernel, kernel, l); }}

#endif
