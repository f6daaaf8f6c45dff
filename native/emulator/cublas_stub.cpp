// cublas_stub.cpp: a stand-in libcublas.so.13 for the CUDA driver emulator, so that the cuBLAS 13 path of the
// training operations (Cublas13Gemm: JavaCPP's CUDA presets) runs without a GPU. It implements the five functions
// ema4j calls, with cuBLAS's semantics, on the emulator's device memory (host memory), and checks what the real
// library would need: a current context at every call, a stream that the driver knows (never the default stream,
// which ema4j does not use), and operands inside live device allocations. native/emulated-cublas-tests.sh builds it
// with a stub returning CUBLAS_STATUS_NOT_SUPPORTED for every other symbol that JavaCPP's libjnicublas.so references,
// under the symbol versions the real libcublas.so.13 and libcublasLt.so.13 define.
//
// What it cannot show: that the real libcublas.so.13 on a GPU picks up the primary context, or its numerics. What it
// does show: the JNI bindings load against a libcublas.so.13 and libcudart.so.13 from the system, the handle, stream
// and device pointers cross from JCuda to JavaCPP by address with the values the driver gave, and every GEMM's
// transposes, sizes and leading dimensions give the products of cuda/gemm.cu (the training suite checks them).
//
// Environment: EMA4J_CUBLAS_STUB_LOG=<file> appends one line per process at exit: handles created, GEMMs run, and
// the streams they ran on.

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>

namespace {

using CUresult = int;
using CUcontext = void*;
using CUstream = void*;
using CUdeviceptr = unsigned long long;

constexpr int kSuccess = 0;
constexpr int kNotInitialized = 1;
constexpr int kInvalidValue = 7;
constexpr int kExecutionFailed = 13;

struct Handle {
    CUstream stream = nullptr;
};

std::mutex lock;
long handles = 0;
long gemms = 0;
std::set<CUstream> streams;

void report(const char* what) {
    std::fprintf(stderr, "ema4j cuBLAS stub: %s\n", what);
}

}  // namespace

extern "C" {
CUresult cuCtxGetCurrent(CUcontext* context);
CUresult cuStreamQuery(CUstream stream);
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

EMA4J_API int cublasDestroy_v2(Handle* handle) {
    if (handle == nullptr) return kNotInitialized;
    delete handle;
    return kSuccess;
}

EMA4J_API int cublasSetStream_v2(Handle* handle, CUstream stream) {
    if (handle == nullptr) return kNotInitialized;
    if (stream == nullptr || cuStreamQuery(stream) != 0) {
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

// C = alpha·op(A)·op(B) + beta·C, column-major, C (m, n), inner dimension k; op 0 = N, 1 = T. Sums in double.
EMA4J_API int cublasSgemm_v2(Handle* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                             const float* a, int lda, const float* b, int ldb, const float* beta, float* c, int ldc) {
    if (handle == nullptr) return kNotInitialized;
    if (handle->stream == nullptr || cuStreamQuery(handle->stream) != 0 || !context_current()) {
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
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            double sum = 0;
            for (int p = 0; p < k; p++) {
                float x = ta ? a[i * static_cast<long>(lda) + p] : a[p * static_cast<long>(lda) + i];
                float y = tb ? b[p * static_cast<long>(ldb) + j] : b[j * static_cast<long>(ldb) + p];
                sum += static_cast<double>(x) * y;
            }
            float* out = &c[j * static_cast<long>(ldc) + i];
            *out = static_cast<float>(*alpha * sum + (*beta == 0 ? 0.0 : *beta * static_cast<double>(*out)));
        }
    }
    std::lock_guard<std::mutex> guard(lock);
    gemms++;
    streams.insert(handle->stream);
    return kSuccess;
}
