// driver_selftest.cpp: checks the CUDA driver emulator through its C API, as JCuda calls it: initialization and the
// device, the primary context, allocations (NaN fill, bounds, pointer attributes), the committed ema.ptx as a
// module, a launch of ema_lerp_f32 against a CPU result, the driver's launch checks, the streams (NOTE:
// [stream-emulation]: what runs when, with planted missing synchronizations that must read stale data), a red zone
// hit and its sticky error, a write through a freed pointer, host functions, stream capture and graphs (NOTE:
// [graph-emulation]: replays, and planted calls a capture must refuse), planted misaligned accesses (NOTE:
// [alignment-trap]) and their sticky CUDA_ERROR_MISALIGNED_ADDRESS, and a stub. native/build-emulator.sh builds
// it against native/build/emulator/libcuda.so.1 and runs it from the repository root. Exits 0 when every check
// passes, 1 otherwise.

#include "driver_abi.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
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
CUresult cuStreamQuery(CUstream stream);
CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags);
CUresult cuStreamGetFlags(CUstream stream, unsigned int* flags);
CUresult cuStreamBeginCapture_v2(CUstream stream, CUstreamCaptureMode mode);
CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph);
CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status);
CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode);
CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long flags);
CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream);
CUresult cuGraphUpload(CUgraphExec exec, CUstream stream);
CUresult cuGraphExecDestroy(CUgraphExec exec);
CUresult cuGraphDestroy(CUgraph graph);
CUresult cuLaunchHostFunc(CUstream stream, CUhostFn fn, void* data);
CUresult cuEventCreate(CUevent* event, unsigned int flags);
CUresult cuEventRecord(CUevent event, CUstream stream);
CUresult cuEventQuery(CUevent event);
CUresult cuEventSynchronize(CUevent event);
CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end);
CUresult cuEventDestroy_v2(CUevent event);
CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr pointer);
CUresult cuMemAllocHost_v2(void** pointer, std::size_t bytes);
CUresult cuMemFreeHost(void* pointer);
CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total);
CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, std::size_t* size, CUdeviceptr pointer);
CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, std::size_t bytes);
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, std::size_t bytes);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, std::size_t bytes, CUstream stream);
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, std::size_t bytes, CUstream stream);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes, CUstream stream);
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, std::size_t count);
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, std::size_t count, CUstream stream);
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

// Launches ema_lerp_f32(p, n, {e, w}, guard = null) with 4 blocks of 64 threads on `stream`.
CUresult lerp(CUfunction f, CUdeviceptr p, long long n, CUdeviceptr e, float w, CUstream stream = nullptr) {
    Shadows s{};
    s.e[0] = reinterpret_cast<float*>(static_cast<std::uintptr_t>(e));
    s.w[0] = w;
    s.k = 1;
    CUdeviceptr guard = 0;
    void* params[] = {&p, &n, &s, &guard};
    return cuLaunchKernel(f, 4, 1, 1, 64, 1, 1, 0, stream, params, nullptr);
}

// What `call` writes to stderr (where the emulator reports).
template <typename Call>
std::string stderr_of(Call call) {
    std::fflush(stderr);
    FILE* capture = std::tmpfile();
    const int saved = dup(STDERR_FILENO);
    dup2(fileno(capture), STDERR_FILENO);
    call();
    std::fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    std::string text;
    std::rewind(capture);
    for (int c; (c = std::fgetc(capture)) != EOF;) text += static_cast<char>(c);
    std::fclose(capture);
    return text;
}

bool contains_all(const std::string& text, std::initializer_list<const char*> pieces) {
    for (const char* piece : pieces) {
        if (text.find(piece) == std::string::npos) return false;
    }
    return true;
}

std::string read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// NOTE: [stream-emulation]. ema_lerp_f32 updates e from p; each check resets e to `shadow` (a synchronous copy) and
// looks at what a read sees: the updated values (`updated`) or the old ones (`stale`). The planted faults are the
// reads a program makes without the synchronization it needs: on a GPU they may see either; the emulator makes
// them see the stale data, every time.
void check_streams(CUfunction f, CUdeviceptr p, CUdeviceptr e, const std::vector<float>& host,
                   const std::vector<float>& shadow) {
    const int n = static_cast<int>(host.size());
    const std::size_t bytes = 4 * host.size();
    std::vector<float> want(host.size());
    for (int i = 0; i < n; ++i) want[i] = std::fmaf(0.125f, host[i] - shadow[i], shadow[i]);
    auto reset = [&] { cuMemcpyHtoD_v2(e, shadow.data(), bytes); };
    auto read = [&](CUdeviceptr from) {
        std::vector<float> v(host.size());
        cuMemcpyDtoH_v2(v.data(), from, bytes);
        return v;
    };
    CUstream blocking = nullptr;
    CUstream other_blocking = nullptr;
    CUstream non_blocking = nullptr;
    CUstream other_non_blocking = nullptr;
    cuStreamCreate(&blocking, CU_STREAM_DEFAULT);
    cuStreamCreate(&other_blocking, CU_STREAM_DEFAULT);
    cuStreamCreate(&non_blocking, CU_STREAM_NON_BLOCKING);
    cuStreamCreate(&other_non_blocking, CU_STREAM_NON_BLOCKING);
    CUevent done = nullptr;
    cuEventCreate(&done, CU_EVENT_DISABLE_TIMING);
    CUdeviceptr copy = 0;
    cuMemAlloc_v2(&copy, bytes);

    reset();
    lerp(f, p, n, e, 0.125f, blocking);
    expect(read(e) == want, "cuMemcpyDtoH (legacy stream) waits for a kernel of a blocking stream");

    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    expect(read(e) == shadow, "planted: cuMemcpyDtoH without synchronizing with a non-blocking stream reads the data "
                              "from before its kernel");
    expect_result(cuStreamQuery(non_blocking), CUDA_ERROR_NOT_READY, "cuStreamQuery of that stream");
    expect_result(cuStreamSynchronize(non_blocking), CUDA_SUCCESS, "cuStreamSynchronize of it");
    expect(read(e) == want, "then the copy reads the kernel's results");
    expect_result(cuStreamQuery(non_blocking), CUDA_SUCCESS, "and cuStreamQuery says it is done");

    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuEventRecord(done, non_blocking);
    expect_result(cuEventQuery(done), CUDA_ERROR_NOT_READY, "cuEventQuery of an event after a pending kernel");
    expect(read(e) == shadow, "planted: a read after cuEventQuery said CUDA_ERROR_NOT_READY reads stale data");
    expect_result(cuEventQuery(done), CUDA_SUCCESS, "asked again, the work runs (polling ends)");
    expect(read(e) == want, "and the read sees it");

    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuEventRecord(done, non_blocking);
    expect_result(cuEventSynchronize(done), CUDA_SUCCESS, "cuEventSynchronize");
    expect(read(e) == want, "cuEventSynchronize waits for the kernel recorded before the event");

    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuEventRecord(done, non_blocking);
    cuStreamWaitEvent(other_non_blocking, done, 0);
    cuMemcpyDtoDAsync_v2(copy, e, bytes, other_non_blocking);
    cuStreamSynchronize(other_non_blocking);
    expect(read(copy) == want, "cuStreamWaitEvent orders another stream's copy after the kernel");
    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuMemcpyDtoDAsync_v2(copy, e, bytes, other_non_blocking);
    cuStreamSynchronize(other_non_blocking);
    expect(read(copy) == shadow, "planted: without cuStreamWaitEvent the other stream copies the data from before "
                                 "the kernel");
    cuCtxSynchronize();

    reset();
    lerp(f, p, n, e, 0.125f, blocking);
    cuMemcpyDtoDAsync_v2(copy, e, bytes, other_blocking);
    cuStreamSynchronize(other_blocking);
    expect(read(copy) == shadow, "planted: two blocking streams are not ordered with each other");
    cuCtxSynchronize();

    reset();
    lerp(f, p, n, e, 0.125f, blocking);
    lerp(f, p, n, copy, 0.125f, non_blocking);
    expect_result(cuStreamSynchronize(nullptr), CUDA_SUCCESS, "cuStreamSynchronize(legacy stream)");
    expect_result(cuStreamQuery(blocking), CUDA_SUCCESS, "waits for a blocking stream");
    expect_result(cuStreamQuery(non_blocking), CUDA_ERROR_NOT_READY, "but not for a non-blocking one");
    expect_result(cuCtxSynchronize(), CUDA_SUCCESS, "cuCtxSynchronize");
    expect_result(cuStreamQuery(non_blocking), CUDA_SUCCESS, "waits for every stream");

    reset();
    cuMemcpyHtoD_v2(copy, shadow.data(), bytes);
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuMemcpyDtoDAsync_v2(copy, e, bytes, nullptr);
    expect(read(copy) == shadow, "planted: a copy on the legacy stream does not wait for a non-blocking stream");
    cuCtxSynchronize();

    void* pinned = nullptr;
    cuMemAllocHost_v2(&pinned, bytes);
    auto* staged = static_cast<float*>(pinned);
    std::memcpy(staged, shadow.data(), bytes);
    cuMemcpyHtoDAsync_v2(e, staged, bytes, non_blocking);
    std::memcpy(staged, host.data(), bytes);
    cuStreamSynchronize(non_blocking);
    expect(read(e) == host, "planted: a pinned buffer refilled before its asynchronous copy ran is copied with the "
                            "new contents");
    std::memcpy(staged, shadow.data(), bytes);
    cuMemcpyHtoDAsync_v2(e, staged, bytes, non_blocking);
    cuEventRecord(done, non_blocking);
    cuEventSynchronize(done);
    std::memcpy(staged, host.data(), bytes);
    cuStreamSynchronize(non_blocking);
    expect(read(e) == shadow, "waiting for the copy's event before refilling the buffer copies the old contents");
    std::vector<float> pageable = shadow;
    cuMemcpyHtoDAsync_v2(e, pageable.data(), bytes, non_blocking);
    pageable = host;
    cuStreamSynchronize(non_blocking);
    expect(read(e) == shadow, "an asynchronous copy from pageable memory takes the data at the call");
    lerp(f, p, n, e, 0.125f, non_blocking);
    std::memcpy(staged, host.data(), bytes);
    cuMemcpyDtoHAsync_v2(staged, e, bytes, non_blocking);
    expect(std::memcmp(staged, host.data(), bytes) == 0,
           "planted: pinned memory read before the asynchronous copy to it ran holds the old contents");
    cuStreamSynchronize(non_blocking);
    expect(std::memcmp(staged, want.data(), bytes) == 0, "after synchronizing it holds the kernel's results");

    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    CUdeviceptr scratch = 0;
    cuMemAlloc_v2(&scratch, 64);
    expect_result(cuMemFree_v2(scratch), CUDA_SUCCESS, "cuMemFree");
    expect_result(cuStreamQuery(non_blocking), CUDA_SUCCESS, "waits for the whole device first, as cudaFree");
    lerp(f, p, n, e, 0.125f, non_blocking);
    expect_result(cuMemFreeHost(pinned), CUDA_SUCCESS, "cuMemFreeHost");
    expect_result(cuStreamQuery(non_blocking), CUDA_SUCCESS, "too");

    reset();
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuStreamDestroy_v2(non_blocking);
    expect(read(e) == shadow, "a destroyed stream's pending kernel has not run");
    expect_result(cuCtxSynchronize(), CUDA_SUCCESS, "cuCtxSynchronize");
    expect(read(e) == want, "runs it");

    cuMemFree_v2(copy);
    cuEventDestroy_v2(done);
    cuStreamDestroy_v2(blocking);
    cuStreamDestroy_v2(other_blocking);
    cuStreamDestroy_v2(other_non_blocking);
}

// What host functions saw when they ran (cuLaunchHostFunc): the floats at `from`, once per run.
struct Seen {
    const float* from;
    std::size_t count;
    std::vector<std::vector<float>> runs;
};

void snapshot(void* data) {
    auto* seen = static_cast<Seen*>(data);
    seen->runs.emplace_back(seen->from, seen->from + seen->count);
}

void alloc_from_host_function(void* data) {
    CUdeviceptr p = 0;
    *static_cast<CUresult*>(data) = cuMemAlloc_v2(&p, 64);
}

// Runs `call` on a new thread with the primary context current there.
template <typename Call>
void on_other_thread(CUcontext context, Call call) {
    std::thread thread([&] {
        cuCtxSetCurrent(context);
        call();
    });
    thread.join();
}

// NOTE: [graph-emulation]. Captures on a non-blocking and a blocking stream, replays that see the memory as it is
// when they run, host functions in stream order, and planted calls that a capture must refuse: each returns its
// error and invalidates the capture, which then ends with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and no graph.
void check_graphs(CUdevice device, const std::string& ptx) {
    CUcontext context = nullptr;
    cuDevicePrimaryCtxRetain(&context, device);
    cuCtxSetCurrent(context);
    CUmodule module = nullptr;
    CUfunction f = nullptr;
    cuModuleLoadData(&module, ptx.c_str());
    cuModuleGetFunction(&f, module, "ema_lerp_f32");
    const int n = 1000;
    const std::size_t bytes = 4 * n;
    CUdeviceptr p = 0;
    CUdeviceptr e = 0;
    CUdeviceptr copy = 0;
    cuMemAlloc_v2(&p, bytes);
    cuMemAlloc_v2(&e, bytes);
    cuMemAlloc_v2(&copy, bytes);
    void* pinned_in = nullptr;
    void* pinned_out = nullptr;
    cuMemAllocHost_v2(&pinned_in, bytes);
    cuMemAllocHost_v2(&pinned_out, bytes);
    auto* in = static_cast<float*>(pinned_in);
    auto* out = static_cast<float*>(pinned_out);
    std::vector<float> a(n);
    std::vector<float> b(n);
    std::vector<float> old(n, -2.0f);
    for (int i = 0; i < n; ++i) {
        a[i] = static_cast<float>(i) * 0.25f;
        b[i] = 3.0f - static_cast<float>(i) * 0.5f;
    }
    const unsigned one = 0x3f800000u;  // 1.0f
    auto lerped = [n](const std::vector<float>& x) {  // e after a memset to 1 and one lerp towards x
        std::vector<float> v(n);
        for (int i = 0; i < n; ++i) v[i] = std::fmaf(0.125f, x[i] - 1.0f, 1.0f);
        return v;
    };
    auto read = [&](CUdeviceptr from) {
        std::vector<float> v(n);
        cuMemcpyDtoH_v2(v.data(), from, bytes);
        return v;
    };
    auto reset = [&] {
        cuMemcpyHtoD_v2(e, old.data(), bytes);
        cuMemcpyHtoD_v2(copy, old.data(), bytes);
    };
    CUstream non_blocking = nullptr;
    CUstream blocking = nullptr;
    cuStreamCreate(&non_blocking, CU_STREAM_NON_BLOCKING);
    cuStreamCreate(&blocking, CU_STREAM_DEFAULT);
    unsigned flags = 0;
    expect_result(cuStreamGetFlags(non_blocking, &flags), CUDA_SUCCESS, "cuStreamGetFlags");
    expect(flags == CU_STREAM_NON_BLOCKING, "gives the flags of the stream's creation");
    expect_result(cuStreamGetFlags(reinterpret_cast<CUstream>(&flags), &flags), CUDA_ERROR_INVALID_HANDLE,
                  "cuStreamGetFlags of an unknown stream");
    Seen seen{out, static_cast<std::size_t>(n), {}};
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    CUgraph graph = nullptr;
    CUgraphExec exec = nullptr;
    CUresult r = CUDA_SUCCESS;

    // cuLaunchHostFunc, without capture: in stream order, after the kernel before it.
    reset();
    Seen peek{reinterpret_cast<const float*>(static_cast<std::uintptr_t>(e)), static_cast<std::size_t>(n), {}};
    cuMemsetD32Async(e, one, n, non_blocking);
    lerp(f, p, n, e, 0.125f, non_blocking);
    cuMemcpyHtoD_v2(p, a.data(), bytes);  // before the kernel runs: it reads a
    expect_result(cuLaunchHostFunc(non_blocking, snapshot, &peek), CUDA_SUCCESS, "cuLaunchHostFunc");
    expect(peek.runs.empty(), "planted: the host function has not run at the call");
    expect_result(cuStreamSynchronize(non_blocking), CUDA_SUCCESS, "cuStreamSynchronize");
    expect(peek.runs.size() == 1 && peek.runs[0] == lerped(a),
           "the host function ran once, after the kernel before it");
    expect_result(cuLaunchHostFunc(reinterpret_cast<CUstream>(&peek), snapshot, &peek), CUDA_ERROR_INVALID_HANDLE,
                  "cuLaunchHostFunc on an unknown stream");
    expect_result(cuLaunchHostFunc(non_blocking, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE,
                  "cuLaunchHostFunc without a function");
    r = CUDA_SUCCESS;
    cuLaunchHostFunc(non_blocking, alloc_from_host_function, &r);
    std::string said = stderr_of([&] { cuStreamSynchronize(non_blocking); });
    expect_result(r, CUDA_ERROR_NOT_PERMITTED, "planted: a host function that calls cuMemAlloc");
    expect(said.find("cuMemAlloc_v2 called from a function queued by cuLaunchHostFunc") != std::string::npos,
           "the emulator says so");

    // A capture on a non-blocking stream: nothing runs until a launch of its graph, and every launch runs it all.
    reset();
    std::memcpy(in, a.data(), bytes);
    expect_result(cuStreamBeginCapture_v2(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS,
                  "cuStreamBeginCapture_v2 of a non-blocking stream");
    cuStreamIsCapturing(non_blocking, &status);
    expect(status == CU_STREAM_CAPTURE_STATUS_ACTIVE, "cuStreamIsCapturing: active");
    expect_result(cuMemsetD32Async(e, one, n, non_blocking), CUDA_SUCCESS, "captured: cuMemsetD32Async");
    expect_result(cuMemcpyHtoDAsync_v2(p, in, bytes, non_blocking), CUDA_SUCCESS,
                  "captured: cuMemcpyHtoDAsync from pinned memory");
    expect_result(lerp(f, p, n, e, 0.125f, non_blocking), CUDA_SUCCESS, "captured: a launch of ema_lerp_f32");
    expect_result(cuMemcpyDtoDAsync_v2(copy, e, bytes, non_blocking), CUDA_SUCCESS, "captured: cuMemcpyDtoDAsync");
    expect_result(cuMemcpyDtoHAsync_v2(out, e, bytes, non_blocking), CUDA_SUCCESS,
                  "captured: cuMemcpyDtoHAsync to pinned memory");
    expect_result(cuLaunchHostFunc(non_blocking, snapshot, &seen), CUDA_SUCCESS, "captured: cuLaunchHostFunc");
    expect_result(cuStreamEndCapture(non_blocking, &graph), CUDA_SUCCESS, "cuStreamEndCapture");
    expect(graph != nullptr, "gives a graph");
    cuStreamIsCapturing(non_blocking, &status);
    expect(status == CU_STREAM_CAPTURE_STATUS_NONE, "the stream no longer captures");
    expect(read(e) == old && read(copy) == old && seen.runs.empty(), "nothing captured ran at capture time");
    expect_result(cuStreamQuery(non_blocking), CUDA_SUCCESS, "nor was it queued");
    said = stderr_of([&] { r = cuGraphInstantiateWithFlags(&exec, graph, 1); });
    expect_result(r, CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags with flags");
    expect(said.find("not emulated") != std::string::npos, "the emulator says they are not emulated");
    expect_result(cuGraphInstantiateWithFlags(&exec, graph, 0), CUDA_SUCCESS, "cuGraphInstantiateWithFlags");
    expect_result(cuGraphDestroy(graph), CUDA_SUCCESS, "cuGraphDestroy after the instantiation");
    expect_result(cuGraphUpload(exec, non_blocking), CUDA_SUCCESS, "cuGraphUpload");
    expect_result(cuGraphLaunch(exec, non_blocking), CUDA_SUCCESS, "cuGraphLaunch");
    expect(read(e) == old && seen.runs.empty(), "planted: a launched graph has not run before the host waits for it");
    expect_result(cuStreamSynchronize(non_blocking), CUDA_SUCCESS, "cuStreamSynchronize");
    expect(read(e) == lerped(a) && read(copy) == lerped(a) && seen.runs.size() == 1 && seen.runs[0] == lerped(a),
           "then the graph ran in order: memset, copy from pinned memory, kernel, copies, host function");
    reset();
    std::memcpy(in, b.data(), bytes);
    cuGraphLaunch(exec, non_blocking);
    cuStreamSynchronize(non_blocking);
    expect(read(e) == lerped(b) && seen.runs.size() == 2 && seen.runs[1] == lerped(b),
           "a second launch runs it all again (the memset too), with the pinned memory as refilled before it");
    std::memcpy(in, a.data(), bytes);
    cuGraphLaunch(exec, non_blocking);
    std::memcpy(in, b.data(), bytes);
    cuGraphLaunch(exec, blocking);
    cuStreamSynchronize(blocking);
    expect(seen.runs.size() == 4 && seen.runs[2] == lerped(b) && seen.runs[3] == lerped(b),
           "planted: pinned memory refilled before a launch ran is copied with its new contents; a launch on another "
           "stream runs after the previous launch of the same graph");
    std::memcpy(in, a.data(), bytes);
    cuGraphLaunch(exec, non_blocking);
    expect_result(cuGraphExecDestroy(exec), CUDA_SUCCESS, "cuGraphExecDestroy with a launch pending");
    cuStreamSynchronize(non_blocking);
    expect(seen.runs.size() == 5 && seen.runs[4] == lerped(a), "the pending launch still runs");
    expect_result(cuGraphExecDestroy(exec), CUDA_ERROR_INVALID_HANDLE, "planted: cuGraphExecDestroy of it again");
    expect_result(cuGraphLaunch(exec, non_blocking), CUDA_ERROR_INVALID_HANDLE,
                  "planted: cuGraphLaunch of a destroyed executable graph");
    expect_result(cuGraphUpload(exec, non_blocking), CUDA_ERROR_INVALID_HANDLE, "cuGraphUpload of it");
    expect_result(cuGraphDestroy(graph), CUDA_ERROR_INVALID_HANDLE, "cuGraphDestroy of a destroyed graph");

    // A capture on a blocking stream: the legacy stream's copies wait for a launch on it, not for the capture.
    reset();
    std::memcpy(in, a.data(), bytes);
    expect_result(cuStreamBeginCapture_v2(blocking, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS,
                  "cuStreamBeginCapture_v2 of a blocking stream (thread-local)");
    cuMemsetD32Async(e, one, n, blocking);
    cuMemcpyHtoDAsync_v2(p, in, bytes, blocking);
    lerp(f, p, n, e, 0.125f, blocking);
    cuMemcpyDtoHAsync_v2(out, e, bytes, blocking);
    cuLaunchHostFunc(blocking, snapshot, &seen);
    expect_result(cuStreamEndCapture(blocking, &graph), CUDA_SUCCESS, "cuStreamEndCapture");
    expect(read(e) == old && seen.runs.size() == 5, "nothing captured ran, not even for the legacy stream's copy");
    cuGraphInstantiateWithFlags(&exec, graph, 0);
    expect_result(cuGraphLaunch(exec, blocking), CUDA_SUCCESS, "cuGraphLaunch on the blocking stream");
    expect(read(e) == lerped(a) && seen.runs.size() == 6 && seen.runs[5] == lerped(a),
           "a copy on the legacy stream waits for it");
    reset();
    expect_result(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS, "cuGraphLaunch on the legacy stream");
    expect(read(e) == lerped(a) && seen.runs.size() == 7, "runs before the legacy stream's next copy");
    cuGraphExecDestroy(exec);
    cuGraphDestroy(graph);

    // Planted: calls a capture must refuse.
    auto begin = [&](CUstream stream, CUstreamCaptureMode mode) {  // a capture with a kernel recorded
        cuStreamBeginCapture_v2(stream, mode);
        lerp(f, p, n, e, 0.125f, stream);
    };
    auto end_invalidated = [&](CUstream stream, const char* what) {
        CUgraph ended = reinterpret_cast<CUgraph>(&ended);
        expect_result(cuStreamEndCapture(stream, &ended), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, what);
        expect(ended == nullptr, "and no graph");
    };
    auto end_valid = [&](CUstream stream, const char* what) {
        CUgraph ended = nullptr;
        expect_result(cuStreamEndCapture(stream, &ended), CUDA_SUCCESS, what);
        if (ended != nullptr) cuGraphDestroy(ended);
    };
    reset();
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    said = stderr_of([&] { r = cuStreamSynchronize(non_blocking); });
    expect_result(r, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "planted: cuStreamSynchronize of the capturing stream");
    expect(contains_all(said, {"cuStreamSynchronize during the capture", "invalidated"}),
           "the emulator says the call invalidated the capture");
    cuStreamIsCapturing(non_blocking, &status);
    expect(status == CU_STREAM_CAPTURE_STATUS_INVALIDATED, "cuStreamIsCapturing: invalidated");
    expect_result(lerp(f, p, n, e, 0.125f, non_blocking), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
                  "a launch into the invalidated capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    expect(read(e) == old, "nothing of the invalidated capture ran");
    CUdeviceptr scratch = 0;
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuMemAlloc_v2(&scratch, 64), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "planted: cuMemAlloc during it");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuMemFree_v2(copy), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "planted: cuMemFree during it");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    CUdeviceptr base = 0;
    std::size_t size = 0;
    expect_result(cuMemGetAddressRange_v2(&base, &size, copy), CUDA_SUCCESS, "the memory was not freed");
    std::vector<float> host(n);
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    expect_result(cuMemcpyDtoH_v2(host.data(), e, bytes), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "planted: a synchronous cuMemcpyDtoH during a thread-local capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuMemcpyHtoDAsync_v2(p, a.data(), bytes, non_blocking), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "planted: cuMemcpyHtoDAsync from pageable memory into the capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_RELAXED);
    expect_result(cuMemcpyDtoHAsync_v2(host.data(), e, bytes, non_blocking), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "planted: cuMemcpyDtoHAsync to pageable memory in a relaxed capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_RELAXED);
    expect_result(cuStreamQuery(non_blocking), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "planted: cuStreamQuery of the capturing stream, even in a relaxed capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    CUevent event = nullptr;
    cuEventCreate(&event, CU_EVENT_DISABLE_TIMING);
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuEventRecord(event, non_blocking), CUDA_ERROR_NOT_SUPPORTED, "cuEventRecord into a capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuStreamWaitEvent(non_blocking, event, 0), CUDA_ERROR_NOT_SUPPORTED,
                  "cuStreamWaitEvent into a capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    cuEventDestroy_v2(event);
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuStreamDestroy_v2(non_blocking), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "cuStreamDestroy of the capturing stream");
    end_invalidated(non_blocking, "then cuStreamEndCapture (the stream is still there)");
    expect(read(e) == old, "nothing of the invalidated captures ran");

    expect_result(cuStreamBeginCapture_v2(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL),
                  CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "planted: capture of the legacy stream (null)");
    expect_result(cuStreamBeginCapture_v2(reinterpret_cast<CUstream>(EMA4J_CU_STREAM_LEGACY),
                                          CU_STREAM_CAPTURE_MODE_RELAXED),
                  CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "planted: capture of CU_STREAM_LEGACY");
    expect_result(cuStreamBeginCapture_v2(non_blocking, static_cast<CUstreamCaptureMode>(7)),
                  CUDA_ERROR_INVALID_VALUE, "cuStreamBeginCapture_v2 with an unknown mode");
    graph = nullptr;
    expect_result(cuStreamEndCapture(non_blocking, &graph), CUDA_ERROR_ILLEGAL_STATE,
                  "cuStreamEndCapture of a stream that does not capture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuStreamBeginCapture_v2(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_ILLEGAL_STATE,
                  "planted: cuStreamBeginCapture_v2 of a capturing stream");
    end_valid(non_blocking, "the capture goes on: cuStreamEndCapture");

    begin(blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuStreamIsCapturing(nullptr, &status), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                  "cuStreamIsCapturing of the legacy stream while a blocking stream captures");
    said = stderr_of([&] { r = lerp(f, p, n, copy, 0.125f, nullptr); });
    expect_result(r, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                  "planted: a launch on the legacy stream while a blocking stream captures");
    expect(said.find("CUDA_ERROR_STREAM_CAPTURE_IMPLICIT") != std::string::npos, "the emulator says so");
    end_invalidated(blocking, "then cuStreamEndCapture");
    begin(blocking, CU_STREAM_CAPTURE_MODE_RELAXED);
    expect_result(cuMemcpyHtoD_v2(copy, old.data(), bytes), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                  "planted: a synchronous copy (legacy stream) in a relaxed capture of a blocking stream");
    end_invalidated(blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(lerp(f, p, n, copy, 0.125f, nullptr), CUDA_SUCCESS,
                  "a launch on the legacy stream while a non-blocking stream captures");
    end_valid(non_blocking, "cuStreamEndCapture");
    expect_result(cuCtxSynchronize(), CUDA_SUCCESS, "the legacy stream's launch runs");

    begin(non_blocking, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    on_other_thread(context, [&] { r = cuStreamEndCapture(non_blocking, &graph); });
    expect_result(r, CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "planted: cuStreamEndCapture from another thread");
    end_valid(non_blocking, "the capture goes on: cuStreamEndCapture from the thread that began it");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_RELAXED);
    graph = nullptr;
    on_other_thread(context, [&] { r = cuStreamEndCapture(non_blocking, &graph); });
    expect_result(r, CUDA_SUCCESS, "a relaxed capture may end on another thread");
    if (graph != nullptr) cuGraphDestroy(graph);

    begin(non_blocking, CU_STREAM_CAPTURE_MODE_RELAXED);
    expect_result(cuMemAlloc_v2(&scratch, 64), CUDA_SUCCESS, "a relaxed capture allows cuMemAlloc");
    expect_result(cuMemFree_v2(scratch), CUDA_SUCCESS, "and cuMemFree");
    expect(read(e) == old, "and a synchronous copy");
    end_valid(non_blocking, "cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    on_other_thread(context, [&] { r = cuMemAlloc_v2(&scratch, 64); });
    expect_result(r, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "planted: cuMemAlloc on another thread during a global capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    on_other_thread(context, [&] {
        r = cuMemAlloc_v2(&scratch, 64);
        cuMemFree_v2(scratch);
    });
    expect_result(r, CUDA_SUCCESS, "cuMemAlloc on another thread during a thread-local capture");
    end_valid(non_blocking, "cuStreamEndCapture");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    on_other_thread(context, [&] {
        cuThreadExchangeStreamCaptureMode(&mode);
        r = cuMemAlloc_v2(&scratch, 64);
        cuMemFree_v2(scratch);
        cuThreadExchangeStreamCaptureMode(&mode);
    });
    expect_result(r, CUDA_SUCCESS, "cuMemAlloc on another thread in relaxed mode during a global capture");
    expect(mode == CU_STREAM_CAPTURE_MODE_RELAXED, "cuThreadExchangeStreamCaptureMode swaps the modes");
    end_valid(non_blocking, "cuStreamEndCapture");
    mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    expect_result(cuThreadExchangeStreamCaptureMode(&mode), CUDA_SUCCESS, "cuThreadExchangeStreamCaptureMode");
    expect(mode == CU_STREAM_CAPTURE_MODE_GLOBAL, "the previous mode was global");
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuMemAlloc_v2(&scratch, 64), CUDA_SUCCESS, "the capturing thread in relaxed mode may cuMemAlloc");
    cuMemFree_v2(scratch);
    expect_result(cuStreamSynchronize(non_blocking), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                  "planted: but not synchronize the capturing stream");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    cuThreadExchangeStreamCaptureMode(&mode);
    mode = static_cast<CUstreamCaptureMode>(7);
    expect_result(cuThreadExchangeStreamCaptureMode(&mode), CUDA_ERROR_INVALID_VALUE,
                  "cuThreadExchangeStreamCaptureMode with an unknown mode");

    cuStreamBeginCapture_v2(blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    cuMemsetD32Async(e, one, n, blocking);
    cuStreamEndCapture(blocking, &graph);
    cuGraphInstantiateWithFlags(&exec, graph, 0);
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    expect_result(cuGraphLaunch(exec, non_blocking), CUDA_ERROR_NOT_SUPPORTED, "cuGraphLaunch into a capture");
    end_invalidated(non_blocking, "then cuStreamEndCapture");
    expect(read(e) == old, "nothing of the refused launch ran");

    // Releasing the primary context with a capture in progress and graphs alive ends them.
    begin(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    said = stderr_of([&] { cuDevicePrimaryCtxRelease_v2(device); });
    expect(said.find("stream capture(s) in progress; ended") != std::string::npos,
           "the release of the primary context with a capture in progress");
    cuDevicePrimaryCtxRetain(&context, device);
    expect_result(cuGraphExecDestroy(exec), CUDA_ERROR_INVALID_HANDLE, "ends its executable graphs");
    expect_result(cuGraphDestroy(graph), CUDA_ERROR_INVALID_HANDLE, "and graphs");
    expect_result(cuStreamEndCapture(non_blocking, &graph), CUDA_ERROR_INVALID_HANDLE, "and the capturing stream");

    // Planted: a graph that writes memory freed since its capture.
    cuStreamCreate(&non_blocking, CU_STREAM_NON_BLOCKING);
    cuMemAlloc_v2(&scratch, 64);
    cuStreamBeginCapture_v2(non_blocking, CU_STREAM_CAPTURE_MODE_GLOBAL);
    cuMemsetD32Async(scratch, one, 16, non_blocking);
    cuStreamEndCapture(non_blocking, &graph);
    cuGraphInstantiateWithFlags(&exec, graph, 0);
    cuMemFree_v2(scratch);
    expect_result(cuGraphLaunch(exec, non_blocking), CUDA_SUCCESS,
                  "planted: a launch of a graph after cuMemFree of its memory");
    said = stderr_of([&] { r = cuStreamSynchronize(non_blocking); });
    expect_result(r, CUDA_ERROR_ILLEGAL_ADDRESS, "then cuStreamSynchronize");
    expect(contains_all(said, {"cuMemsetD32Async", "freed after the capture"}), "the emulator names the operation");
    expect_result(cuGraphExecDestroy(exec), CUDA_ERROR_ILLEGAL_ADDRESS, "every later call (sticky)");
    cuDevicePrimaryCtxRelease_v2(device);
}

// NOTE: [alignment-trap]. Planted misaligned accesses: a parameter pointer 2 bytes past alignment makes ema_lerp_f32
// load floats at 4k + 2 (its scalar path: the vector path needs 16-byte alignment). The launch returns at once; the
// fault surfaces at the next synchronization, and the context stays poisoned until it is released.
void check_misaligned(CUdevice device, const std::string& ptx) {
    CUcontext context = nullptr;
    cuDevicePrimaryCtxRetain(&context, device);
    cuCtxSetCurrent(context);
    CUmodule module = nullptr;
    CUfunction f = nullptr;
    cuModuleLoadData(&module, ptx.c_str());
    cuModuleGetFunction(&f, module, "ema_lerp_f32");
    const int n = 1000;
    CUdeviceptr p = 0;
    CUdeviceptr e = 0;
    cuMemAlloc_v2(&p, 4 * n + 4);
    cuMemAlloc_v2(&e, 4 * n + 4);
    cuMemsetD32_v2(p, 0, n + 1);
    cuMemsetD32_v2(e, 0, n + 1);
    CUstream stream = nullptr;
    cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING);
    expect_result(lerp(f, p + 2, n, e, 0.125f, stream), CUDA_SUCCESS,
                  "planted: a launch with p 2 bytes past alignment");
    CUresult r = CUDA_SUCCESS;
    const std::string said = stderr_of([&] { r = cuStreamSynchronize(stream); });
    expect_result(r, CUDA_ERROR_MISALIGNED_ADDRESS, "then cuStreamSynchronize");
    expect(contains_all(said, {"ema_lerp_f32<<<(4,1,1), (64,1,1)>>>",
                               "misaligned address: 4-byte load of 'const float'", "% 4 = 2", "cuda/ema.cu:",
                               "EMA4J_CUDA_EMULATOR_SEED=", "Every later call returns CUDA_ERROR_MISALIGNED_ADDRESS"}),
           "the message names the kernel, the access, the address's remainder, the source line and the seed");
    std::printf("      %s", said.c_str());
    expect_result(cuMemAlloc_v2(&p, 64), CUDA_ERROR_MISALIGNED_ADDRESS, "every later call (sticky)");
    cuDevicePrimaryCtxRelease_v2(device);

    cuDevicePrimaryCtxRetain(&context, device);
    cuModuleLoadData(&module, ptx.c_str());
    cuModuleGetFunction(&f, module, "ema_lerp_f32");
    cuMemAlloc_v2(&p, 4 * n + 4);
    cuMemAlloc_v2(&e, 4 * n + 4);
    cuMemsetD32_v2(p, 0, n + 1);
    cuMemsetD32_v2(e, 0, n + 1);
    expect_result(lerp(f, p, n, e + 4, 0.125f), CUDA_SUCCESS, "a launch with shadows 4 bytes past 16-byte alignment");
    expect_result(cuCtxSynchronize(), CUDA_SUCCESS, "takes the scalar path: no fault");
    expect_result(lerp(f, p, n, e + 1, 0.125f), CUDA_SUCCESS, "planted: a launch with shadows 1 byte past alignment");
    r = CUDA_SUCCESS;
    const std::string store = stderr_of([&] { r = cuCtxSynchronize(); });
    expect_result(r, CUDA_ERROR_MISALIGNED_ADDRESS, "then cuCtxSynchronize");
    expect(store.find("% 4 = 1") != std::string::npos, "the message gives the shadow's address");
    cuDevicePrimaryCtxRelease_v2(device);
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
    expect_result(cuEventElapsedTime(&ms, start, end), CUDA_ERROR_NOT_READY,
                  "cuEventElapsedTime before the events completed");
    expect_result(cuStreamSynchronize(stream), CUDA_SUCCESS, "cuStreamSynchronize");
    expect_result(cuEventElapsedTime(&ms, start, end), CUDA_SUCCESS, "cuEventElapsedTime after it");
    expect(ms >= 0.0f, "elapsed time >= 0");
    cuEventDestroy_v2(start);
    cuEventDestroy_v2(end);
    cuStreamDestroy_v2(stream);
    expect_result(cuStreamDestroy_v2(stream), CUDA_ERROR_INVALID_HANDLE, "destroying a stream twice");

    check_streams(f, p, e, host, shadow);

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

    cuDevicePrimaryCtxRelease_v2(device);

    check_graphs(device, ptx);
    check_misaligned(device, ptx);

    expect(cuArrayCreate_v2() == CUDA_ERROR_NOT_SUPPORTED, "a stub returns CUDA_ERROR_NOT_SUPPORTED");

    std::printf("%s: driver self-test, %d failure(s)\n", failures == 0 ? "PASSED" : "FAILED", failures);
    return failures == 0 ? 0 : 1;
}
