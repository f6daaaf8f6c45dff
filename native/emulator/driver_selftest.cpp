// driver_selftest.cpp: checks the CUDA driver emulator through its C API, as JCuda calls it: initialization and the
// device, the primary context, allocations (NaN fill, bounds, pointer attributes), the committed ema.ptx as a
// module, a launch of ema_lerp_f32 against a CPU result, the driver's launch checks, a red zone hit and its sticky
// error, a write through a freed pointer, and a stub. native/build-emulator.sh builds it against native/build/emulator/libcuda.so.1 and runs it
// from the repository root. Exits 0 when every check passes, 1 otherwise.

#include "driver_abi.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace ema4j_cu;

extern "C" {
CUresult cuInit(unsigned int flags);
CUresult cuDriverGetVersion(int* version);
CUresult cuDeviceGetCount(int* count);
CUresult cuDeviceGet(CUdevice* device, int ordinal);
CUresult cuDeviceGetName(char* name, int length, CUdevice device);
CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice device);
CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device);
CUresult cuCtxSetCurrent(CUcontext context);
CUresult cuCtxSynchronize();
CUresult cuStreamCreate(CUstream* stream, unsigned int flags);
CUresult cuStreamDestroy_v2(CUstream stream);
CUresult cuStreamSynchronize(CUstream stream);
CUresult cuEventCreate(CUevent* event, unsigned int flags);
CUresult cuEventRecord(CUevent event, CUstream stream);
CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end);
CUresult cuEventDestroy_v2(CUevent event);
CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr pointer);
CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total);
CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, std::size_t* size, CUdeviceptr pointer);
CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, std::size_t bytes);
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, std::size_t bytes);
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, std::size_t count);
CUresult cuModuleLoadData(CUmodule* module, const void* image);
CUresult cuModuleUnload(CUmodule module);
CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name);
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction function, int block_size,
                                                     std::size_t shared_bytes);
CUresult cuLaunchKernel(CUfunction function, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
                        unsigned int block_x, unsigned int block_y, unsigned int block_z, unsigned int shared_bytes,
                        CUstream stream, void** params, void** extra);
CUresult cuGetErrorName(CUresult error, const char** name);
int cuArrayCreate_v2();  // a stub
}

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) ++failures;
}

void expect_result(CUresult got, CUresult want, const char* what) {
    const char* name = nullptr;
    cuGetErrorName(got, &name);
    char line[256];
    std::snprintf(line, sizeof line, "%s: %s", what, name ? name : "(unknown result)");
    expect(got == want, line);
}

// cuda/ema.cu's EmaShadows (104 bytes), as CudaBackend packs it.
struct Shadows {
    float* e[8];
    float w[8];
    int k;
};

// Launches ema_lerp_f32(p, n, {e, w}, guard = null) with 4 blocks of 64 threads.
CUresult lerp(CUfunction f, CUdeviceptr p, long long n, CUdeviceptr e, float w) {
    Shadows s{};
    s.e[0] = reinterpret_cast<float*>(static_cast<std::uintptr_t>(e));
    s.w[0] = w;
    s.k = 1;
    CUdeviceptr guard = 0;
    void* params[] = {&p, &n, &s, &guard};
    return cuLaunchKernel(f, 4, 1, 1, 64, 1, 1, 0, nullptr, params, nullptr);
}

std::string read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

int main() {
    int value = 0;
    expect_result(cuDeviceGetCount(&value), CUDA_ERROR_NOT_INITIALIZED, "cuDeviceGetCount before cuInit");
    expect_result(cuInit(0), CUDA_SUCCESS, "cuInit");
    cuDriverGetVersion(&value);
    expect(value == 13000, "driver version 13000");
    cuDeviceGetCount(&value);
    expect(value == 1, "one device");
    CUdevice device = -1;
    expect_result(cuDeviceGet(&device, 1), CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet(1)");
    expect_result(cuDeviceGet(&device, 0), CUDA_SUCCESS, "cuDeviceGet(0)");
    char name[64];
    cuDeviceGetName(name, sizeof name, device);
    expect(std::strstr(name, "emulator") != nullptr, "the device name says emulator");
    cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
    expect(value == 9, "compute capability 9.x");
    expect_result(cuDeviceGetAttribute(&value, static_cast<CUdevice_attribute>(9999), device),
                  CUDA_ERROR_INVALID_VALUE, "an unknown device attribute");

    CUdeviceptr p = 0;
    expect_result(cuMemAlloc_v2(&p, 64), CUDA_ERROR_INVALID_CONTEXT, "cuMemAlloc without a context");
    CUcontext context = nullptr;
    cuDevicePrimaryCtxRetain(&context, device);
    expect_result(cuCtxSetCurrent(context), CUDA_SUCCESS, "cuCtxSetCurrent(primary)");

    const int n = 1000;
    CUdeviceptr e = 0;
    expect_result(cuMemAlloc_v2(&p, 4 * n), CUDA_SUCCESS, "cuMemAlloc");
    cuMemAlloc_v2(&e, 4 * n);
    expect(p % 256 == 0 && e % 256 == 0, "allocations are 256-byte aligned");
    expect_result(cuMemAlloc_v2(&e, 0), CUDA_ERROR_INVALID_VALUE, "cuMemAlloc of 0 bytes");
    std::vector<float> host(n);
    cuMemcpyDtoH_v2(host.data(), p, 4 * n);
    expect(std::isnan(host[0]) && std::isnan(host[n - 1]), "new allocations hold NaN");
    std::size_t free = 0;
    std::size_t total = 0;
    cuMemGetInfo_v2(&free, &total);
    expect(total - free == 8 * n, "cuMemGetInfo counts the live bytes");
    expect_result(cuMemcpyHtoD_v2(p + 4, host.data(), 4 * n), CUDA_ERROR_INVALID_VALUE, "a copy past the end");
    expect_result(cuMemsetD32_v2(p + 2, 0, 1), CUDA_ERROR_INVALID_VALUE, "a misaligned cuMemsetD32");

    CUdeviceptr base = 0;
    std::size_t size = 0;
    cuMemGetAddressRange_v2(&base, &size, p + 12);
    expect(base == p && size == 4 * n, "cuMemGetAddressRange of an interior pointer");
    expect_result(cuMemGetAddressRange_v2(&base, &size, p + 4 * n), CUDA_ERROR_NOT_FOUND,
                  "cuMemGetAddressRange one past the end");
    unsigned int memory_type = 0;
    cuPointerGetAttribute(&memory_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p + 12);
    expect(memory_type == CU_MEMORYTYPE_DEVICE, "CU_POINTER_ATTRIBUTE_MEMORY_TYPE is device");
    CUcontext owner = nullptr;
    cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, p);
    expect(owner == context, "CU_POINTER_ATTRIBUTE_CONTEXT is the primary context");
    expect_result(cuPointerGetAttribute(&value, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                        static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(&value))),
                  CUDA_ERROR_INVALID_VALUE, "cuPointerGetAttribute of host memory");
    expect_result(cuMemFree_v2(p + 4), CUDA_ERROR_INVALID_VALUE, "cuMemFree of an interior pointer");

    CUmodule module = nullptr;
    expect_result(cuModuleLoadData(&module, "// not ema4j's PTX\n"), CUDA_ERROR_INVALID_IMAGE,
                  "cuModuleLoadData without a stamp");
    const std::string ptx = read_file("src/cuda/src/main/resources/dev/ema4j/backend/cuda/ema.ptx");
    std::string stale = ptx;
    const std::size_t hash = stale.find("sha256=") + 7;
    stale[hash] = stale[hash] == '0' ? '1' : '0';
    expect_result(cuModuleLoadData(&module, stale.c_str()), CUDA_ERROR_INVALID_IMAGE,
                  "cuModuleLoadData of PTX built from another source than the emulated module");
    expect_result(cuModuleLoadData(&module, ptx.c_str()), CUDA_SUCCESS, "cuModuleLoadData(ema.ptx)");
    CUfunction f = nullptr;
    expect_result(cuModuleGetFunction(&f, module, "no_such_kernel"), CUDA_ERROR_NOT_FOUND, "an unknown kernel");
    expect_result(cuModuleGetFunction(&f, module, "ema_lerp_f32"), CUDA_SUCCESS, "cuModuleGetFunction");
    cuOccupancyMaxActiveBlocksPerMultiprocessor(&value, f, 256, 0);
    expect(value == 8, "occupancy of 256-thread blocks");

    std::vector<float> shadow(n);
    for (int i = 0; i < n; ++i) {
        host[i] = static_cast<float>(i) * 0.25f;
        shadow[i] = 1.0f - static_cast<float>(i);
    }
    cuMemcpyHtoD_v2(p, host.data(), 4 * n);
    cuMemcpyHtoD_v2(e, shadow.data(), 4 * n);
    expect_result(lerp(f, p, n, e, 0.125f), CUDA_SUCCESS, "launch ema_lerp_f32");
    std::vector<float> got(n);
    cuMemcpyDtoH_v2(got.data(), e, 4 * n);
    bool same = true;
    for (int i = 0; i < n; ++i) {
        same = same && got[i] == std::fmaf(0.125f, host[i] - shadow[i], shadow[i]);
    }
    expect(same, "ema_lerp_f32 equals fmaf(w, p - e, e) bit for bit (w < 0.5, NOTE: [lerp-torch])");

    void* params[] = {&p};
    expect_result(cuLaunchKernel(f, 1, 1, 1, 1025, 1, 1, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE,
                  "a block of 1025 threads");
    expect_result(cuLaunchKernel(f, 1, 1, 1, 1, 1, 65, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE,
                  "block.z of 65");
    expect_result(cuLaunchKernel(f, 1, 65536, 1, 1, 1, 1, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE,
                  "grid.y of 65536");
    expect_result(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 16, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE,
                  "dynamic shared memory");
    expect_result(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, params), CUDA_ERROR_NOT_SUPPORTED,
                  "the extra argument");

    CUstream stream = nullptr;
    CUevent start = nullptr;
    CUevent end = nullptr;
    cuStreamCreate(&stream, 0);
    cuEventCreate(&start, 0);
    cuEventCreate(&end, 0);
    cuEventRecord(start, stream);
    cuEventRecord(end, stream);
    float ms = -1.0f;
    expect_result(cuEventElapsedTime(&ms, start, end), CUDA_SUCCESS, "cuEventElapsedTime");
    expect(ms >= 0.0f, "elapsed time >= 0");
    cuEventDestroy_v2(start);
    cuEventDestroy_v2(end);
    expect_result(cuStreamSynchronize(stream), CUDA_SUCCESS, "cuStreamSynchronize");
    cuStreamDestroy_v2(stream);
    expect_result(cuStreamDestroy_v2(stream), CUDA_ERROR_INVALID_HANDLE, "destroying a stream twice");

    std::printf("      (two red zone reports on stderr follow: expected)\n");
    std::fflush(stdout);
    CUdeviceptr short_e = 0;
    cuMemAlloc_v2(&short_e, 4 * (n - 1));
    cuMemcpyHtoD_v2(short_e, shadow.data(), 4 * (n - 1));
    expect_result(lerp(f, p, n, short_e, 0.125f), CUDA_SUCCESS, "a launch that writes one float past a shadow");
    expect_result(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS, "then cuCtxSynchronize");
    expect_result(cuMemAlloc_v2(&base, 64), CUDA_ERROR_ILLEGAL_ADDRESS, "and every later call (sticky)");
    cuDevicePrimaryCtxRelease_v2(device);
    cuDevicePrimaryCtxRetain(&context, device);
    expect_result(cuModuleUnload(module), CUDA_ERROR_INVALID_HANDLE, "the old context's module is gone");
    expect_result(cuMemAlloc_v2(&p, 4 * n), CUDA_SUCCESS, "a fresh primary context works again");
    cuModuleLoadData(&module, ptx.c_str());
    cuModuleGetFunction(&f, module, "ema_lerp_f32");
    CUdeviceptr freed = 0;
    cuMemAlloc_v2(&freed, 4 * n);
    cuMemFree_v2(freed);
    expect_result(lerp(f, p, n, freed, 0.125f), CUDA_SUCCESS, "a launch that writes through a freed pointer");
    expect_result(cuStreamSynchronize(nullptr), CUDA_ERROR_ILLEGAL_ADDRESS, "then cuStreamSynchronize");

    expect(cuArrayCreate_v2() == CUDA_ERROR_NOT_SUPPORTED, "a stub returns CUDA_ERROR_NOT_SUPPORTED");
    cuDevicePrimaryCtxRelease_v2(device);

    std::printf("%s: driver self-test, %d failure(s)\n", failures == 0 ? "PASSED" : "FAILED", failures);
    return failures == 0 ? 0 : 1;
}
