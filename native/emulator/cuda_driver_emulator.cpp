// cuda_driver_emulator.cpp: a CUDA driver (libcuda.so.1) that runs on the host, for machines without a GPU. With
// its directory first in LD_LIBRARY_PATH, JCuda's native library loads it instead of NVIDIA's, and the Java CUDA
// backend runs unchanged: its PTX modules map to the kernels of cuda/*.cu compiled as C++ (modules/<name>.so, see
// emulated_module.h), launched in host emulation (native/cuda_host_shim.h). native/build-emulator.sh builds it.
//
// The emulated device: one device of compute capability 9.0 with 4 multiprocessors and 8 GiB of memory, named
// "ema4j CUDA emulator (host, no GPU)"; driver version 13000. Only the primary context exists.
//
// Execution: every call runs to completion before it returns (one global lock around every entry point), so
// streams and events are trivially ordered: the emulator checks the API contract and memory bounds, but it cannot
// find races between streams or missing synchronization.
//
// Memory: device and pinned host allocations are host memory (256-byte aligned, as cuMemAlloc's) between two red
// zones of kRedZone bytes or more, which hold a guard pattern that reads as NaN (see guard_byte). New allocations
// are filled with 0xff bytes, a NaN in every floating-point format, so code that expects zeroed memory fails. Freed
// memory stays in a quarantine of kQuarantineBytes as one red zone, so a stale pointer reads NaN and its writes are
// caught. The red zones of every live allocation are checked after every launch and at every synchronization point
// (stream, context and event synchronize, device-to-host copies, cuMemFree), the quarantine after every launch and
// at cuMemFree: a changed byte prints the allocation, the offset and the kernel that ran last, and sets the sticky
// error CUDA_ERROR_ILLEGAL_ADDRESS, which every later call of the context returns, as after a fault on a GPU,
// until the primary context is released. The red zones are stricter than a GPU, which faults only outside its
// pages; reads out of bounds are not caught, but read NaN.
//
// Modules: cuModuleLoadData takes PTX text whose first line is ema4j's stamp, "// ema4j-ptx-source: cuda/<name>.cu
// sha256=<hex>" (native/build-ptx.sh), loads modules/<name>.so, refuses it (CUDA_ERROR_INVALID_IMAGE) unless it was
// built from the same source hash, and checks that every .entry of the PTX is a kernel of the module with the same
// parameter sizes. Launches check what the driver checks (block and grid limits) and
// run the kernel synchronously.
//
// Calls JCuda references but the emulator does not implement are generated stubs (native/build-emulator.sh) that
// return CUDA_ERROR_NOT_SUPPORTED and say so on stderr once.
//
// Environment: EMA4J_CUDA_EMULATOR_LOG=<file> appends a line per process at cuInit and, at exit, the launches of
// every kernel (native/emulated-cuda-tests.sh uses it to prove that the tests ran on the emulator).

#include "driver_abi.h"
#include "emulated_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace ema4j_cu;

#define EMA4J_API extern "C" __attribute__((visibility("default")))

namespace {

constexpr const char* kDeviceName = "ema4j CUDA emulator (host, no GPU)";
constexpr int kDriverVersion = 13000;
constexpr std::size_t kTotalMemory = std::size_t{8} << 30;
constexpr std::size_t kAlignment = 256;
constexpr std::size_t kRedZone = 1024;
constexpr unsigned char kFillByte = 0xff;
constexpr std::size_t kQuarantineBytes = std::size_t{4} << 20;

int device_attribute(CUdevice_attribute attribute, int* value) {
    switch (attribute) {
#define EMA4J_CASE(name, code, emulated) \
    case name:                           \
        *value = emulated;               \
        return 1;
        EMA4J_CU_DEVICE_ATTRIBUTES(EMA4J_CASE)
#undef EMA4J_CASE
    }
    return 0;
}

struct Allocation {
    CUdeviceptr address;
    std::size_t bytes;
    bool host;              // pinned host memory (cuMemAllocHost, cuMemHostAlloc), else device memory
    unsigned long long id;  // CU_POINTER_ATTRIBUTE_BUFFER_ID
    unsigned char* raw;     // the front red zone starts here
    std::size_t raw_bytes;
};

}  // namespace

// The objects behind the driver's handles.
namespace ema4j_cu {

struct CUctx_st {};  // the primary context of device 0, the only one

struct CUmod_st {
    std::string source;  // cuda/<name>.cu
    std::map<std::string, std::unique_ptr<CUfunc_st>> functions;
};

struct CUfunc_st {
    CUmod_st* module;
    const Ema4jKernel* kernel;
};

struct CUstream_st {
    unsigned flags;
};

struct CUevent_st {
    unsigned flags;
    bool recorded = false;
    std::chrono::steady_clock::time_point when;
};

}  // namespace ema4j_cu

namespace {

// The whole driver state, behind one lock. Never destroyed: JVM threads may call in during exit.
struct Driver {
    std::mutex lock;
    bool initialized = false;
    int primary_retains = 0;             // the primary context is active while > 0
    CUresult sticky = CUDA_SUCCESS;      // CUDA_ERROR_ILLEGAL_ADDRESS after a red zone was hit
    std::map<CUdeviceptr, Allocation> allocations;
    std::size_t device_bytes = 0;
    std::deque<Allocation> quarantine;  // freed allocations, oldest first (see release)
    std::size_t quarantine_bytes = 0;
    unsigned long long next_buffer_id = 1;
    CUctx_st primary;
    std::set<CUmodule> modules;
    std::set<CUfunction> functions;
    std::set<CUstream> streams;
    std::set<CUevent> events;
    std::map<std::string, const Ema4jModule*> emulated;  // loaded modules/<name>.so, by name
    std::map<std::string, unsigned long long> launches;  // per kernel, for the log
    std::string last_launch;                             // "kernel<<<grid, block>>>", for red zone reports
    std::set<std::string> unsupported_reported;
};

Driver& driver() {
    static Driver* d = new Driver();
    return *d;
}

thread_local std::vector<CUcontext> context_stack;

__attribute__((format(printf, 1, 2))) void report(const char* format, ...) {
    std::fputs("ema4j CUDA emulator: ", stderr);
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

// The directory of this library (modules/ lies beside it).
std::string library_directory() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&library_directory), &info) == 0 || info.dli_fname == nullptr) return ".";
    std::string path = info.dli_fname;
    std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

void log_line(const std::string& line) {
    const char* path = std::getenv("EMA4J_CUDA_EMULATOR_LOG");
    if (path == nullptr || *path == '\0') return;
    if (FILE* f = std::fopen(path, "a")) {
        std::fprintf(f, "%s\n", line.c_str());
        std::fclose(f);
    }
}

void log_launches_at_exit() {
    Driver& d = driver();
    std::lock_guard<std::mutex> guard(d.lock);
    std::string line = "pid " + std::to_string(getpid()) + " launches:";
    for (const auto& [kernel, count] : d.launches) line += " " + kernel + "=" + std::to_string(count);
    log_line(line);
}

// --- contexts -------------------------------------------------------------------------------------------------------

CUcontext current_context() { return context_stack.empty() ? nullptr : context_stack.back(); }

// The state every call that works in the current context requires: initialized, a current and active primary
// context, no sticky error.
CUresult context_ready(const Driver& d) {
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (current_context() != &d.primary || d.primary_retains == 0) return CUDA_ERROR_INVALID_CONTEXT;
    return d.sticky;
}

bool valid_stream(const Driver& d, CUstream s) {
    const auto raw = reinterpret_cast<std::uintptr_t>(s);
    return s == nullptr || raw == EMA4J_CU_STREAM_LEGACY || raw == EMA4J_CU_STREAM_PER_THREAD ||
           d.streams.count(s) != 0;
}

// --- memory ---------------------------------------------------------------------------------------------------------

// The live allocation that contains [p, p + bytes), or null.
Allocation* find_allocation(Driver& d, CUdeviceptr p, std::size_t bytes = 1) {
    auto it = d.allocations.upper_bound(p);
    if (it == d.allocations.begin()) return nullptr;
    Allocation& a = std::prev(it)->second;
    if (p - a.address >= a.bytes || bytes > a.bytes - (p - a.address)) return nullptr;
    return &a;
}

// The guard pattern: 0xa5 at even addresses, 0xff at odd ones. A red zone reads as NaN in fp32, fp16 and bf16
// (0xffa5ffa5, 0xffa5), and differs from the 0xff fill of new allocations. (Little-endian hosts.)
unsigned char guard_byte(const unsigned char* p) { return reinterpret_cast<std::uintptr_t>(p) % 2 ? 0xff : 0xa5; }
constexpr std::uint64_t kGuardWord = 0xffa5ffa5ffa5ffa5ull;  // eight guard bytes from an 8-byte aligned address

void fill_guard(unsigned char* begin, unsigned char* end) {
    unsigned char* p = begin;
    for (; p < end && reinterpret_cast<std::uintptr_t>(p) % 8 != 0; ++p) *p = guard_byte(p);
    for (; end - p >= 8; p += 8) std::memcpy(p, &kGuardWord, 8);
    for (; p < end; ++p) *p = guard_byte(p);
}

// The offset of the first byte of [begin, end) that is not the guard pattern, or -1.
long long first_changed(const unsigned char* begin, const unsigned char* end) {
    const unsigned char* p = begin;
    for (; p < end && reinterpret_cast<std::uintptr_t>(p) % 8 != 0; ++p) {
        if (*p != guard_byte(p)) return p - begin;
    }
    for (std::uint64_t word; end - p >= 8; p += 8) {
        std::memcpy(&word, p, 8);
        if (word != kGuardWord) break;
    }
    for (; p < end; ++p) {
        if (*p != guard_byte(p)) return p - begin;
    }
    return -1;
}

CUresult allocate(Driver& d, std::size_t bytes, bool host, CUdeviceptr* address) {
    if (address == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    if (!host && bytes > kTotalMemory - d.device_bytes) return CUDA_ERROR_OUT_OF_MEMORY;
    const std::size_t body = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    const std::size_t raw_bytes = kRedZone + body + kRedZone;
    auto* raw = static_cast<unsigned char*>(std::aligned_alloc(kAlignment, raw_bytes));
    if (raw == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
    unsigned char* user = raw + kRedZone;
    fill_guard(raw, user);
    std::memset(user, kFillByte, bytes);
    fill_guard(user + bytes, raw + raw_bytes);
    const auto p = static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(user));
    d.allocations[p] = Allocation{p, bytes, host, d.next_buffer_id++, raw, raw_bytes};
    if (!host) d.device_bytes += bytes;
    *address = p;
    return CUDA_SUCCESS;
}

// Frees an allocation into the quarantine: its memory becomes one red zone, so that a kernel writing through a
// stale pointer is caught and one reading gets NaN, until kQuarantineBytes of later frees push it out.
void release(Driver& d, std::map<CUdeviceptr, Allocation>::iterator it) {
    Allocation a = it->second;
    d.allocations.erase(it);
    if (!a.host) d.device_bytes -= a.bytes;
    if (a.raw_bytes > kQuarantineBytes) {
        std::free(a.raw);
        return;
    }
    fill_guard(a.raw + kRedZone, a.raw + kRedZone + a.bytes);
    d.quarantine.push_back(a);
    d.quarantine_bytes += a.raw_bytes;
    while (d.quarantine_bytes > kQuarantineBytes) {
        d.quarantine_bytes -= d.quarantine.front().raw_bytes;
        std::free(d.quarantine.front().raw);
        d.quarantine.pop_front();
    }
}

// Checks the red zones of every live allocation and, with `freed`, the quarantined memory (only kernels write
// there, so launches and frees check it). The first hit is reported and makes the error sticky.
CUresult check_red_zones(Driver& d, const char* where, bool freed = false) {
    if (d.sticky != CUDA_SUCCESS) return d.sticky;
    const Allocation* hit = nullptr;
    long long offset = 0;
    for (const auto& [address, a] : d.allocations) {
        const unsigned char* user = a.raw + kRedZone;
        long long before = first_changed(a.raw, user);
        long long after = first_changed(user + a.bytes, a.raw + a.raw_bytes);
        if (before >= 0 || after >= 0) {
            hit = &a;
            offset = before >= 0 ? before - static_cast<long long>(kRedZone) : static_cast<long long>(a.bytes) + after;
            break;
        }
    }
    bool stale = false;
    for (std::size_t i = 0; freed && hit == nullptr && i < d.quarantine.size(); ++i) {
        const Allocation& a = d.quarantine[i];
        long long changed = first_changed(a.raw, a.raw + a.raw_bytes);
        if (changed >= 0) {
            hit = &a;
            offset = changed - static_cast<long long>(kRedZone);
            stale = true;
        }
    }
    if (hit == nullptr) return CUDA_SUCCESS;
    report("red zone hit, found %s: %s%s allocation 0x%llx of %zu bytes, byte at offset %lld (0x%02x) was written%s;"
           " the last launch was %s. Every later call returns CUDA_ERROR_ILLEGAL_ADDRESS.",
           where, stale ? "freed " : "", hit->host ? "pinned host" : "device", hit->address, hit->bytes, offset,
           hit->raw[kRedZone + offset], stale ? " after it was freed" : "",
           d.last_launch.empty() ? "none" : d.last_launch.c_str());
    d.sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
    return d.sticky;
}

unsigned char* host_address(CUdeviceptr p) { return reinterpret_cast<unsigned char*>(static_cast<std::uintptr_t>(p)); }

// --- modules --------------------------------------------------------------------------------------------------------

// The parameter sizes of each .entry of a PTX text.
std::map<std::string, std::vector<std::size_t>> ptx_entries(const std::string& ptx) {
    std::map<std::string, std::vector<std::size_t>> entries;
    for (std::size_t at = ptx.find(".entry "); at != std::string::npos; at = ptx.find(".entry ", at + 1)) {
        std::size_t open = ptx.find('(', at);
        std::size_t close = ptx.find(')', at);
        if (open == std::string::npos || close == std::string::npos || close < open) break;
        std::string name = ptx.substr(at + 7, open - at - 7);
        name.erase(std::remove_if(name.begin(), name.end(), [](char c) { return std::isspace(c) != 0; }), name.end());
        std::vector<std::size_t>& sizes = entries[name];
        std::string list = ptx.substr(open + 1, close - open - 1);
        for (std::size_t p = list.find(".param"); p != std::string::npos; p = list.find(".param", p + 1)) {
            std::size_t end = list.find(',', p);
            std::string param = list.substr(p, end == std::string::npos ? std::string::npos : end - p);
            std::size_t element = 0;
            for (const auto& [type, bytes] : {std::pair<const char*, std::size_t>{"8 ", 1}, {"16 ", 2}, {"32 ", 4},
                                              {"64 ", 8}}) {
                for (const char* kind : {".b", ".u", ".s", ".f"}) {
                    if (param.find(std::string(kind) + type) != std::string::npos) element = bytes;
                }
            }
            std::size_t bracket = param.find('[');
            std::size_t count = 1;
            if (bracket != std::string::npos) count = std::strtoull(param.c_str() + bracket + 1, nullptr, 10);
            sizes.push_back(element * count);
        }
    }
    return entries;
}

// Loads modules/<name>.so for the stamp's source (once; a stale PTX gets a warning); null (after a message) when
// there is none.
const Ema4jModule* emulated_module(Driver& d, const std::string& source, const std::string& sha256) {
    const std::string name = source.substr(5, source.size() - 8);  // cuda/<name>.cu
    auto it = d.emulated.find(name);
    if (it == d.emulated.end()) {
        const std::string path = library_directory() + "/modules/" + name + ".so";
        void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            report("no emulated module for %s: %s (rebuild with native/build-emulator.sh)", source.c_str(),
                   dlerror());
            return nullptr;
        }
        const auto* m = static_cast<const Ema4jModule*>(dlsym(handle, EMA4J_MODULE_SYMBOL));
        if (m == nullptr || m->abi != EMA4J_MODULE_ABI || source != m->source) {
            report("%s is not an emulated module of %s built by this emulator (rebuild with native/build-emulator.sh)",
                   path.c_str(), source.c_str());
            return nullptr;
        }
        it = d.emulated.emplace(name, m).first;
    }
    // Running another source than the PTX's would test the wrong kernels: refuse, as a driver refuses a bad image.
    if (sha256 != it->second->sha256) {
        report("the PTX of %s was built from sha256 %s, the emulated module from %s (rebuild the PTX with "
               "native/build-ptx.sh, or the emulator with native/build-emulator.sh)", source.c_str(), sha256.c_str(),
               it->second->sha256);
        return nullptr;
    }
    return it->second;
}

CUresult load_module(Driver& d, CUmodule* module, const void* image) {
    if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const char* text = static_cast<const char*>(image);
    static const char kStamp[] = "// ema4j-ptx-source: ";
    std::size_t line_end = 0;
    while (line_end < 4096 && text[line_end] != '\0' && text[line_end] != '\n') ++line_end;
    const std::string first(text, line_end);
    const std::size_t source_begin = sizeof kStamp - 1;
    const std::size_t source_end = first.find(' ', source_begin);
    const std::string source =
        source_end == std::string::npos ? "" : first.substr(source_begin, source_end - source_begin);
    if (first.compare(0, source_begin, kStamp) != 0 || source.size() < 9 || source.compare(0, 5, "cuda/") != 0 ||
        source.compare(source.size() - 3, 3, ".cu") != 0 || first.compare(source_end, 8, " sha256=") != 0) {
        report("cuModuleLoadData: the image does not begin with an ema4j PTX stamp (\"%scuda/<name>.cu sha256=...\"); "
               "only ema4j's PTX can be emulated", kStamp);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    const Ema4jModule* emulated = emulated_module(d, source, first.substr(source_end + 8));
    if (emulated == nullptr) return CUDA_ERROR_INVALID_IMAGE;
    auto loaded = std::make_unique<CUmod_st>();
    loaded->source = source;
    for (const auto& [name, sizes] : ptx_entries(text)) {
        const Ema4jKernel* kernel = nullptr;
        for (unsigned k = 0; k < emulated->kernel_count; ++k) {
            if (name == emulated->kernels[k].name) kernel = &emulated->kernels[k];
        }
        if (kernel == nullptr) {
            report("kernel %s of the PTX of %s is not in the emulated module (rebuild with native/build-emulator.sh)",
                   name.c_str(), source.c_str());
            return CUDA_ERROR_INVALID_IMAGE;
        }
        bool same = kernel->param_count == sizes.size();
        for (std::size_t i = 0; same && i < sizes.size(); ++i) same = kernel->param_sizes[i] == sizes[i];
        if (!same) {
            std::string ptx_sizes;
            std::string host_sizes;
            for (std::size_t s : sizes) ptx_sizes += " " + std::to_string(s);
            for (unsigned i = 0; i < kernel->param_count; ++i) {
                host_sizes += " " + std::to_string(kernel->param_sizes[i]);
            }
            report("kernel %s of %s: the PTX's parameter sizes (%s ) differ from the host build's (%s )", name.c_str(),
                   source.c_str(), ptx_sizes.c_str(), host_sizes.c_str());
            return CUDA_ERROR_INVALID_IMAGE;
        }
        loaded->functions[name] = std::make_unique<CUfunc_st>(CUfunc_st{loaded.get(), kernel});
    }
    for (auto& [name, f] : loaded->functions) d.functions.insert(f.get());
    *module = loaded.release();
    d.modules.insert(*module);
    return CUDA_SUCCESS;
}

void unload(Driver& d, CUmodule m) {
    for (auto& [name, f] : m->functions) d.functions.erase(f.get());
    d.modules.erase(m);
    delete m;
}

// Frees everything the primary context owns, the quarantine too; called when its last retain is released.
void destroy_primary_context(Driver& d) {
    if (!d.allocations.empty()) {
        std::size_t bytes = 0;
        for (const auto& [address, a] : d.allocations) bytes += a.bytes;
        report("note: the primary context was released with %zu allocation(s) of %zu bytes still live; freed",
               d.allocations.size(), bytes);
    }
    check_red_zones(d, "when the primary context was released", true);
    for (const auto& [address, a] : d.allocations) std::free(a.raw);
    d.allocations.clear();
    d.device_bytes = 0;
    for (const Allocation& a : d.quarantine) std::free(a.raw);
    d.quarantine.clear();
    d.quarantine_bytes = 0;
    while (!d.modules.empty()) unload(d, *d.modules.begin());
    for (CUstream s : d.streams) delete s;
    d.streams.clear();
    for (CUevent e : d.events) delete e;
    d.events.clear();
    d.sticky = CUDA_SUCCESS;
}

// --- copies ---------------------------------------------------------------------------------------------------------

CUresult copy_to_device(Driver& d, CUdeviceptr dst, const void* src, std::size_t bytes, CUstream stream) {
    if (CUresult r = context_ready(d)) return r;
    if (!valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (bytes == 0) return CUDA_SUCCESS;
    if (src == nullptr || find_allocation(d, dst, bytes) == nullptr) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(host_address(dst), src, bytes);
    return CUDA_SUCCESS;
}

CUresult copy_to_host(Driver& d, void* dst, CUdeviceptr src, std::size_t bytes, CUstream stream) {
    if (CUresult r = context_ready(d)) return r;
    if (!valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (CUresult r = check_red_zones(d, "at a device-to-host copy")) return r;
    if (bytes == 0) return CUDA_SUCCESS;
    if (dst == nullptr || find_allocation(d, src, bytes) == nullptr) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(dst, host_address(src), bytes);
    return CUDA_SUCCESS;
}

CUresult copy_on_device(Driver& d, CUdeviceptr dst, CUdeviceptr src, std::size_t bytes, CUstream stream) {
    if (CUresult r = context_ready(d)) return r;
    if (!valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (bytes == 0) return CUDA_SUCCESS;
    if (find_allocation(d, dst, bytes) == nullptr || find_allocation(d, src, bytes) == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    std::memmove(host_address(dst), host_address(src), bytes);
    return CUDA_SUCCESS;
}

template <typename T>
CUresult set_memory(Driver& d, CUdeviceptr dst, T value, std::size_t count, CUstream stream) {
    if (CUresult r = context_ready(d)) return r;
    if (!valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    if (count == 0) return CUDA_SUCCESS;
    if (dst % sizeof(T) != 0 || count > SIZE_MAX / sizeof(T) || find_allocation(d, dst, count * sizeof(T)) == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    unsigned char* p = host_address(dst);
    for (std::size_t i = 0; i < count; ++i) std::memcpy(p + i * sizeof(T), &value, sizeof(T));
    return CUDA_SUCCESS;
}

// --- occupancy ------------------------------------------------------------------------------------------------------

CUresult max_active_blocks(Driver& d, int* blocks, CUfunction f, int block_size) {
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (blocks == nullptr || block_size <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (d.functions.count(f) == 0) return CUDA_ERROR_INVALID_HANDLE;
    const int warps = (block_size + 31) / 32;
    *blocks = block_size > 1024 ? 0 : std::min(32, 64 / warps);  // 2048 threads and 32 blocks per multiprocessor
    return CUDA_SUCCESS;
}

}  // namespace

// === the driver API ==================================================================================================

#define EMA4J_LOCKED                   \
    Driver& d = driver();               \
    std::lock_guard<std::mutex> held(d.lock)

EMA4J_API CUresult cuInit(unsigned int flags) {
    EMA4J_LOCKED;
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (!d.initialized) {
        d.initialized = true;
        log_line("pid " + std::to_string(getpid()) + " cuInit: " + kDeviceName + ", " + library_directory() +
                 "/libcuda.so.1");
        if (std::getenv("EMA4J_CUDA_EMULATOR_LOG") != nullptr) std::atexit(log_launches_at_exit);
    }
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDriverGetVersion(int* version) {
    if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *version = kDriverVersion;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuGetErrorName(CUresult error, const char** name) {
    if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
    switch (error) {
#define EMA4J_CASE(n, code, text) \
    case n:                       \
        *name = #n;               \
        return CUDA_SUCCESS;
        EMA4J_CU_RESULTS(EMA4J_CASE)
#undef EMA4J_CASE
    }
    *name = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
}

EMA4J_API CUresult cuGetErrorString(CUresult error, const char** text) {
    if (text == nullptr) return CUDA_ERROR_INVALID_VALUE;
    switch (error) {
#define EMA4J_CASE(n, code, string) \
    case n:                         \
        *text = string;             \
        return CUDA_SUCCESS;
        EMA4J_CU_RESULTS(EMA4J_CASE)
#undef EMA4J_CASE
    }
    *text = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
}

// --- devices --------------------------------------------------------------------------------------------------------

EMA4J_API CUresult cuDeviceGetCount(int* count) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDeviceGetName(char* name, int length, CUdevice device) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (name == nullptr || length <= 0) return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(name, static_cast<std::size_t>(length), "%s", kDeviceName);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDeviceTotalMem_v2(std::size_t* bytes, CUdevice device) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *bytes = kTotalMemory;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice device) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (!device_attribute(attribute, value)) {
        report("cuDeviceGetAttribute: attribute %d is not emulated (CUDA_ERROR_INVALID_VALUE)", attribute);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

// --- contexts -------------------------------------------------------------------------------------------------------

EMA4J_API CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ++d.primary_retains;
    *context = &d.primary;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (d.primary_retains == 0) return CUDA_ERROR_INVALID_CONTEXT;
    if (--d.primary_retains == 0) destroy_primary_context(d);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuDevicePrimaryCtxGetState(CUdevice device, unsigned int* flags, int* active) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *flags = 0;
    *active = d.primary_retains > 0;
    return CUDA_SUCCESS;
}

// As the driver: replaces the top of the calling thread's context stack (pops it for null).
EMA4J_API CUresult cuCtxSetCurrent(CUcontext context) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (context != nullptr && context != &d.primary) return CUDA_ERROR_INVALID_CONTEXT;
    if (!context_stack.empty()) context_stack.pop_back();
    if (context != nullptr) context_stack.push_back(context);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuCtxGetCurrent(CUcontext* context) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *context = current_context();
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuCtxPushCurrent_v2(CUcontext context) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (context != &d.primary) return CUDA_ERROR_INVALID_CONTEXT;
    context_stack.push_back(context);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuCtxPopCurrent_v2(CUcontext* context) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (context_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
    if (context != nullptr) *context = context_stack.back();
    context_stack.pop_back();
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuCtxGetDevice(CUdevice* device) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (current_context() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *device = 0;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuCtxSynchronize() {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    return check_red_zones(d, "at cuCtxSynchronize");
}

// --- streams and events ---------------------------------------------------------------------------------------------

EMA4J_API CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (stream == nullptr || (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *stream = new CUstream_st{flags};
    d.streams.insert(*stream);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuStreamDestroy_v2(CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.streams.erase(stream) == 0) return CUDA_ERROR_INVALID_HANDLE;
    delete stream;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuStreamSynchronize(CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (!valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    return check_red_zones(d, "at cuStreamSynchronize");
}

EMA4J_API CUresult cuStreamQuery(CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    return valid_stream(d, stream) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EMA4J_API CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (!valid_stream(d, stream) || d.events.count(event) == 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMA4J_API CUresult cuEventCreate(CUevent* event, unsigned int flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    const unsigned known = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
    if (event == nullptr || (flags & ~known) != 0) return CUDA_ERROR_INVALID_VALUE;
    *event = new CUevent_st{flags, false, {}};
    d.events.insert(*event);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuEventDestroy_v2(CUevent event) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.events.erase(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
    delete event;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuEventRecord(CUevent event, CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.events.count(event) == 0 || !valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    event->recorded = true;
    event->when = std::chrono::steady_clock::now();
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuEventQuery(CUevent event) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    return d.events.count(event) != 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EMA4J_API CUresult cuEventSynchronize(CUevent event) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.events.count(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
    return check_red_zones(d, "at cuEventSynchronize");
}

EMA4J_API CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (milliseconds == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.events.count(start) == 0 || d.events.count(end) == 0 || !start->recorded || !end->recorded ||
        ((start->flags | end->flags) & CU_EVENT_DISABLE_TIMING) != 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *milliseconds = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return CUDA_SUCCESS;
}

// --- memory ---------------------------------------------------------------------------------------------------------

EMA4J_API CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    return allocate(d, bytes, false, pointer);
}

EMA4J_API CUresult cuMemFree_v2(CUdeviceptr pointer) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (CUresult r = check_red_zones(d, "at cuMemFree", true)) return r;
    auto it = d.allocations.find(pointer);
    if (it == d.allocations.end() || it->second.host) return CUDA_ERROR_INVALID_VALUE;
    release(d, it);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuMemAllocHost_v2(void** pointer, std::size_t bytes) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (pointer == nullptr) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr p = 0;
    CUresult r = allocate(d, bytes, true, &p);
    *pointer = r == CUDA_SUCCESS ? host_address(p) : nullptr;
    return r;
}

EMA4J_API CUresult cuMemHostAlloc(void** pointer, std::size_t bytes, unsigned int flags) {
    if (flags > 7) return CUDA_ERROR_INVALID_VALUE;  // PORTABLE | DEVICEMAP | WRITECOMBINED
    return cuMemAllocHost_v2(pointer, bytes);
}

EMA4J_API CUresult cuMemFreeHost(void* pointer) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (CUresult r = check_red_zones(d, "at cuMemFreeHost", true)) return r;
    auto it = d.allocations.find(static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(pointer)));
    if (it == d.allocations.end() || !it->second.host) return CUDA_ERROR_INVALID_VALUE;
    release(d, it);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *free = kTotalMemory - d.device_bytes;
    *total = kTotalMemory;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, std::size_t* size, CUdeviceptr pointer) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    const Allocation* a = find_allocation(d, pointer);
    if (a == nullptr) return CUDA_ERROR_NOT_FOUND;
    if (base != nullptr) *base = a->address;
    if (size != nullptr) *size = a->bytes;
    return CUDA_SUCCESS;
}

// The attributes of an allocation, with the types cuda.h documents. Pointers the driver did not allocate are
// CUDA_ERROR_INVALID_VALUE, as for the real driver.
EMA4J_API CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    const Allocation* a = find_allocation(d, pointer);
    if (data == nullptr || a == nullptr) return CUDA_ERROR_INVALID_VALUE;
    switch (attribute) {
        case CU_POINTER_ATTRIBUTE_CONTEXT:
            *static_cast<CUcontext*>(data) = &d.primary;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
            *static_cast<unsigned int*>(data) = a->host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
            *static_cast<CUdeviceptr*>(data) = pointer;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_HOST_POINTER:
            if (!a->host) return CUDA_ERROR_INVALID_VALUE;
            *static_cast<void**>(data) = host_address(pointer);
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_BUFFER_ID:
            *static_cast<unsigned long long*>(data) = a->id;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_IS_MANAGED:
            *static_cast<bool*>(data) = false;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
            *static_cast<int*>(data) = 0;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
            *static_cast<CUdeviceptr*>(data) = a->address;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
            *static_cast<std::size_t*>(data) = a->bytes;
            return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_MAPPED:
            *static_cast<bool*>(data) = true;
            return CUDA_SUCCESS;
    }
    report("cuPointerGetAttribute: attribute %d is not emulated (CUDA_ERROR_NOT_SUPPORTED)", attribute);
    return CUDA_ERROR_NOT_SUPPORTED;
}

EMA4J_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, std::size_t bytes) {
    EMA4J_LOCKED;
    return copy_to_device(d, dst, src, bytes, nullptr);
}

EMA4J_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, std::size_t bytes, CUstream stream) {
    EMA4J_LOCKED;
    return copy_to_device(d, dst, src, bytes, stream);
}

EMA4J_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, std::size_t bytes) {
    EMA4J_LOCKED;
    return copy_to_host(d, dst, src, bytes, nullptr);
}

EMA4J_API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, std::size_t bytes, CUstream stream) {
    EMA4J_LOCKED;
    return copy_to_host(d, dst, src, bytes, stream);
}

EMA4J_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes) {
    EMA4J_LOCKED;
    return copy_on_device(d, dst, src, bytes, nullptr);
}

EMA4J_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes, CUstream stream) {
    EMA4J_LOCKED;
    return copy_on_device(d, dst, src, bytes, stream);
}

EMA4J_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, std::size_t count) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, nullptr);
}

EMA4J_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, std::size_t count, CUstream stream) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, stream);
}

EMA4J_API CUresult cuMemsetD16_v2(CUdeviceptr dst, unsigned short value, std::size_t count) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, nullptr);
}

EMA4J_API CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short value, std::size_t count, CUstream stream) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, stream);
}

EMA4J_API CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, std::size_t count) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, nullptr);
}

EMA4J_API CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, std::size_t count, CUstream stream) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, stream);
}

// --- modules and launches -------------------------------------------------------------------------------------------

EMA4J_API CUresult cuModuleLoadData(CUmodule* module, const void* image) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    return load_module(d, module, image);
}

// The JIT options do not matter to the emulator.
EMA4J_API CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int, void*, void**) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    return load_module(d, module, image);
}

EMA4J_API CUresult cuModuleUnload(CUmodule module) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.modules.count(module) == 0) return CUDA_ERROR_INVALID_HANDLE;
    unload(d, module);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (function == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.modules.count(module) == 0) return CUDA_ERROR_INVALID_HANDLE;
    auto it = module->functions.find(name);
    if (it == module->functions.end()) return CUDA_ERROR_NOT_FOUND;
    *function = it->second.get();
    return CUDA_SUCCESS;
}

// Values of a plausible compiled kernel: no static resources are known to the emulator.
EMA4J_API CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attribute, CUfunction function) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.functions.count(function) == 0) return CUDA_ERROR_INVALID_HANDLE;
    switch (attribute) {
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *value = 0; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *value = 0; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *value = 0; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_PTX_VERSION: *value = 90; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 90; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *value = 0; return CUDA_SUCCESS;
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *value = 0; return CUDA_SUCCESS;  // not emulated
    }
    return CUDA_ERROR_INVALID_VALUE;
}

EMA4J_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction function, int block_size,
                                                               std::size_t) {
    EMA4J_LOCKED;
    return max_active_blocks(d, blocks, function, block_size);
}

EMA4J_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks, CUfunction function,
                                                                        int block_size, std::size_t, unsigned int) {
    EMA4J_LOCKED;
    return max_active_blocks(d, blocks, function, block_size);
}

EMA4J_API CUresult cuLaunchKernel(CUfunction function, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
                                  unsigned int block_x, unsigned int block_y, unsigned int block_z,
                                  unsigned int shared_bytes, CUstream stream, void** params, void** extra) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    const CUfunction f = function;
    if (d.functions.count(f) == 0 || !valid_stream(d, stream)) return CUDA_ERROR_INVALID_HANDLE;
    const char* name = f->kernel->name;
    if (grid_x == 0 || grid_y == 0 || grid_z == 0 || block_x == 0 || block_y == 0 || block_z == 0 ||
        grid_x > 2147483647u || grid_y > 65535 || grid_z > 65535 || block_x > 1024 || block_y > 1024 ||
        block_z > 64 || static_cast<unsigned long long>(block_x) * block_y * block_z > 1024) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (shared_bytes != 0) {
        report("cuLaunchKernel %s: %u bytes of dynamic shared memory: not emulated (CUDA_ERROR_INVALID_VALUE)", name,
               shared_bytes);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (extra != nullptr) {
        report("cuLaunchKernel %s: the extra argument is not emulated (CUDA_ERROR_NOT_SUPPORTED)", name);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (params == nullptr && f->kernel->param_count != 0) return CUDA_ERROR_INVALID_VALUE;
    char launch[256];
    std::snprintf(launch, sizeof launch, "%s<<<(%u,%u,%u), (%u,%u,%u)>>>", name, grid_x, grid_y, grid_z, block_x,
                  block_y, block_z);
    d.last_launch = launch;
    ++d.launches[f->module->source + ":" + name];
    f->kernel->launch(Ema4jLaunch{{grid_x, grid_y, grid_z}, {block_x, block_y, block_z}, params});
    check_red_zones(d, "after the launch", true);  // a hit is sticky: the next call returns it, as after a fault
    return CUDA_SUCCESS;
}

// Called by the generated stubs (not_supported.inc) of the driver functions the emulator does not implement.
extern "C" int ema4j_not_supported(const char* function) {
    EMA4J_LOCKED;
    if (d.unsupported_reported.insert(function).second) {
        report("%s is not emulated (CUDA_ERROR_NOT_SUPPORTED)", function);
    }
    return CUDA_ERROR_NOT_SUPPORTED;
}
