// cublas_stub.cpp: a stand-in libcublas.so.13 for the CUDA driver emulator, so that the cuBLAS 13 path of the
// training operations (Cublas13Gemm: JavaCPP's CUDA presets) runs without a GPU. It implements the five functions
// ema4j calls, with cuBLAS's semantics, on the emulator's device memory (host memory), and checks what the real
// library would need: a current context at every call, a stream that the driver knows (never the default stream,
// which ema4j does not use), and operands inside live device allocations. native/emulated-cublas-tests.sh builds it
// with a stub returning CUBLAS_STATUS_NOT_SUPPORTED for every other symbol that JavaCPP's libjnicublas.so references,
// under the symbol versions the real libcublas.so.13 and libcublasLt.so.13 define.
//
// A GEMM runs on the handle's stream, in stream order, as cuBLAS's kernels do: cublasSgemm checks its arguments at
// the call, copies them into a job the handle owns and queues the job with the driver's cuLaunchHostFunc, so it
// reads its operands when the work before it in the stream has run (the emulator's streams run late: NOTE:
// [stream-emulation] in cuda_driver_emulator.cpp). While the stream captures, the driver records the job into the
// graph (NOTE: [graph-emulation]), which may run it at every launch: a job lives until cublasDestroy, which waits for
// the device first, as cuBLAS's does (jobs that were queued, not captured, are recycled once they ran). A captured
// job that runs after its handle was destroyed is reported and skipped.
//
// What it cannot show: that the real libcublas.so.13 on a GPU picks up the primary context, or its numerics. What it
// does show: the JNI bindings load against a libcublas.so.13 and libcudart.so.13 from the system, the handle, stream
// and device pointers cross from JCuda to JavaCPP by address with the values the driver gave, and every GEMM's
// transposes, sizes and leading dimensions give the products of cuda/gemm.cu (the training suite checks them).
//
// Environment: EMA4J_CUBLAS_STUB_LOG=<file> appends one line per process at exit: handles created, GEMMs run (jobs
// that ran, counted each time), and the streams they ran on.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace {

using CUresult = int;
using CUcontext = void*;
using CUstream = void*;
using CUdeviceptr = unsigned long long;

constexpr int kSuccess = 0;
constexpr int kNotInitialized = 1;
constexpr int kInvalidValue = 7;
constexpr int kExecutionFailed = 13;

// One cublasSgemm: its arguments, copied at the call (alpha and beta too: host pointer mode).
struct Job {
    bool ta, tb;
    int m, n, k;
    float alpha, beta;
    const float* a;
    int lda;
    const float* b;
    int ldb;
    float* c;
    int ldc;
    CUstream stream;
    bool once;  // queued, not captured: runs once
    bool ran = false;
    std::uintptr_t id = 0;  // what the driver passes to run_job
};

struct Handle {
    CUstream stream = nullptr;
    std::vector<std::unique_ptr<Job>> jobs;  // queued or captured; freed by cublasDestroy
};

// Lock order: the driver's (held while a job runs), then this one; the stub never calls the driver holding it.
std::mutex lock;
long handles = 0;
long gemms = 0;
std::set<CUstream> streams;
std::map<std::uintptr_t, Job*> live_jobs;  // the jobs of the handles not destroyed, by id (never reused)
std::uintptr_t next_job = 1;

void report(const char* what) {
    std::fprintf(stderr, "ema4j cuBLAS stub: %s\n", what);
}

}  // namespace

extern "C" {
CUresult cuCtxGetCurrent(CUcontext* context);
CUresult cuCtxSynchronize();
CUresult cuStreamGetFlags(CUstream stream, unsigned int* flags);
CUresult cuStreamIsCapturing(CUstream stream, int* status);
CUresult cuLaunchHostFunc(CUstream stream, void (*fn)(void* data), void* data);
CUresult cuGetErrorName(CUresult error, const char** name);
CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, std::size_t* size, CUdeviceptr pointer);
}

namespace {

bool context_current() {
    CUcontext context = nullptr;
    return cuCtxGetCurrent(&context) == 0 && context != nullptr;
}

// A column-major (rows, cols) operand with leading dimension ld lies inside one live allocation.
bool inside(const void* p, int rows, int cols, int ld) {
    if (rows == 0 || cols == 0) return true;
    if (ld < rows) return false;
    CUdeviceptr first = reinterpret_cast<CUdeviceptr>(p);
    CUdeviceptr last = first + 4 * (static_cast<CUdeviceptr>(ld) * (cols - 1) + rows - 1);
    CUdeviceptr base = 0;
    std::size_t bytes = 0;
    return cuMemGetAddressRange_v2(&base, &bytes, first) == 0 && last + 4 <= base + bytes;
}

// A stream the driver knows, asked without running or waiting for its work (so it may be capturing).
bool known_stream(CUstream stream) {
    unsigned int flags = 0;
    return stream != nullptr && cuStreamGetFlags(stream, &flags) == 0;
}

// C = alpha·op(A)·op(B) + beta·C, column-major, C (m, n), inner dimension k. Sums in double. Run by the driver, in
// stream order, with its lock held: it must not call the driver.
void run_job(void* id) {
    std::lock_guard<std::mutex> guard(lock);
    auto it = live_jobs.find(reinterpret_cast<std::uintptr_t>(id));
    if (it == live_jobs.end()) {
        report("a captured cublasSgemm ran after its handle was destroyed (cublasDestroy); skipped");
        return;
    }
    Job& g = *it->second;
    for (int j = 0; j < g.n; j++) {
        for (int i = 0; i < g.m; i++) {
            double sum = 0;
            for (int p = 0; p < g.k; p++) {
                float x = g.ta ? g.a[i * static_cast<long>(g.lda) + p] : g.a[p * static_cast<long>(g.lda) + i];
                float y = g.tb ? g.b[p * static_cast<long>(g.ldb) + j] : g.b[j * static_cast<long>(g.ldb) + p];
                sum += static_cast<double>(x) * y;
            }
            float* out = &g.c[j * static_cast<long>(g.ldc) + i];
            *out = static_cast<float>(g.alpha * sum + (g.beta == 0 ? 0.0 : g.beta * static_cast<double>(*out)));
        }
    }
    g.ran = true;
    gemms++;
    streams.insert(g.stream);
}

void write_log() {
    const char* path = std::getenv("EMA4J_CUBLAS_STUB_LOG");
    if (path == nullptr) return;
    if (std::FILE* f = std::fopen(path, "a")) {
        std::fprintf(f, "cuBLAS stub: %ld handle(s), %ld GEMM(s) on %zu stream(s), each with a context current and"
                     " a stream the driver knew\n", handles, gemms, streams.size());
        std::fclose(f);
    }
}

}  // namespace

#define EMA4J_API extern "C" __attribute__((visibility("default")))

EMA4J_API int cublasCreate_v2(Handle** handle) {
    if (handle == nullptr) return kInvalidValue;
    if (!context_current()) {
        report("cublasCreate without a current context");
        return kNotInitialized;
    }
    std::lock_guard<std::mutex> guard(lock);
    if (handles++ == 0) std::atexit(write_log);
    *handle = new Handle;
    return kSuccess;
}

// Waits for the device (cuCtxSynchronize), as cuBLAS's cublasDestroy does, then frees the jobs.
EMA4J_API int cublasDestroy_v2(Handle* handle) {
    if (handle == nullptr) return kNotInitialized;
    cuCtxSynchronize();  // when it fails (no context, a sticky error, a capture), a job that runs later is skipped
    {
        std::lock_guard<std::mutex> guard(lock);
        for (const auto& job : handle->jobs) live_jobs.erase(job->id);
    }
    delete handle;
    return kSuccess;
}

EMA4J_API int cublasSetStream_v2(Handle* handle, CUstream stream) {
    if (handle == nullptr) return kNotInitialized;
    if (!known_stream(stream)) {
        report("cublasSetStream with a stream the driver does not know");
        return kInvalidValue;
    }
    handle->stream = stream;
    return kSuccess;
}

EMA4J_API int cublasGetVersion_v2(Handle* handle, int* version) {
    if (handle == nullptr) return kNotInitialized;
    if (version == nullptr) return kInvalidValue;
    *version = 139900;  // 13.99.0: not a real cuBLAS
    return kSuccess;
}

EMA4J_API const char* cublasGetStatusName(int status) {
    switch (status) {
        case kSuccess: return "CUBLAS_STATUS_SUCCESS";
        case kNotInitialized: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case kInvalidValue: return "CUBLAS_STATUS_INVALID_VALUE";
        case kExecutionFailed: return "CUBLAS_STATUS_EXECUTION_FAILED";
        default: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
}

// C = alpha·op(A)·op(B) + beta·C, op 0 = N, 1 = T: checked now, queued on the handle's stream (run_job).
EMA4J_API int cublasSgemm_v2(Handle* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                             const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    if (handle == nullptr) return kNotInitialized;
    if (handle->stream == nullptr || !context_current()) {
        report("cublasSgemm without the handle's stream or a current context");
        return kExecutionFailed;
    }
    if (m < 0 || n < 0 || k < 0 || transa < 0 || transa > 1 || transb < 0 || transb > 1 || alpha == nullptr
        || beta == nullptr) {
        return kInvalidValue;
    }
    bool ta = transa == 1;
    bool tb = transb == 1;
    if (!inside(a, ta ? k : m, ta ? m : k, lda) || !inside(b, tb ? n : k, tb ? k : n, ldb) || !inside(c, m, n, ldc)) {
        report("cublasSgemm with an operand outside device memory");
        return kInvalidValue;
    }
    int capturing = 0;  // CU_STREAM_CAPTURE_STATUS_NONE
    if (cuStreamIsCapturing(handle->stream, &capturing) != 0) capturing = 1;
    auto job = std::make_unique<Job>(Job{ta, tb, m, n, k, *alpha, *beta, a, lda, b, ldb, c, ldc, handle->stream,
                                         capturing == 0});
    std::uintptr_t id = 0;
    {
        std::lock_guard<std::mutex> guard(lock);
        auto& jobs = handle->jobs;
        for (auto it = jobs.begin(); it != jobs.end();) {  // recycle the queued jobs that ran
            if ((*it)->once && (*it)->ran) {
                live_jobs.erase((*it)->id);
                it = jobs.erase(it);
            } else {
                ++it;
            }
        }
        id = job->id = next_job++;
        live_jobs[id] = job.get();
        jobs.push_back(std::move(job));
    }
    if (CUresult r = cuLaunchHostFunc(handle->stream, run_job, reinterpret_cast<void*>(id))) {
        const char* name = nullptr;
        cuGetErrorName(r, &name);
        std::fprintf(stderr, "ema4j cuBLAS stub: cublasSgemm: cuLaunchHostFunc on the handle's stream failed: %s\n",
                     name != nullptr ? name : "an unknown result");
        std::lock_guard<std::mutex> guard(lock);
        live_jobs.erase(id);
        handle->jobs.pop_back();
        return kExecutionFailed;
    }
    return kSuccess;
}
