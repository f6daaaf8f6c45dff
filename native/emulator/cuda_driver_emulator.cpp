// cuda_driver_emulator.cpp: a CUDA driver (libcuda.so.1) that runs on the host, for machines without a GPU. With
// its directory first in LD_LIBRARY_PATH, JCuda's native library loads it instead of NVIDIA's, and the Java CUDA
// backend runs unchanged: its PTX modules map to the kernels of cuda/*.cu compiled as C++ (modules/<name>.so, see
// emulated_module.h), launched in host emulation (native/cuda_host_shim.h). native/build-emulator.sh builds it.
//
// The emulated device: one device of compute capability 9.0 with 4 multiprocessors and 8 GiB of memory, named
// "ema4j CUDA emulator (host, no GPU)"; driver version 13000. Only the primary context exists.
//
// Execution, NOTE: [stream-emulation]. One global lock around every entry point; the work of a stream runs later,
// as on a GPU. Launches, copies and memsets go into their stream's FIFO queue, with the operations of other streams
// they must wait for: an operation of the legacy default stream (the null stream, CU_STREAM_LEGACY) waits for
// everything submitted before it to the blocking streams (created without CU_STREAM_NON_BLOCKING, and the
// per-thread default streams), and an operation of a blocking stream waits for everything submitted before it to
// the legacy stream; non-blocking streams wait for nothing but their own work and the events they are told to
// wait for. cuEventRecord puts a marker in the stream, cuStreamWaitEvent makes the stream's next operations wait
// for the event's marker. Nothing runs until the host waits for it: cuStreamSynchronize, cuEventSynchronize,
// cuCtxSynchronize, the calls that wait for the device as the real driver documents ("API synchronization
// behavior"): cuMemcpyHtoD and cuMemcpyDtoH (which go on the legacy stream, so they wait for the blocking streams,
// but not for the non-blocking ones), cuMemcpyDtoHAsync to pageable memory, memsets of pinned host memory, and
// cuMemFree/cuMemFreeHost and the release of the primary context (they wait for the whole device), or a stream
// holds kMaxPending operations (a GPU's queue is finite). Then the emulator runs what the host waits for and what
// that depends on, and nothing more, picking the next stream at random among those whose next operation may run.
// So a read of results that the host did not synchronize with gets the data from before the kernel, and a pinned
// buffer the host refills before its asynchronous copy ran is copied with its new contents, as can happen on a GPU.
// Asynchronous copies from pageable memory take the data at the call, as the driver stages them; to pinned memory
// (the driver's own cuMemAllocHost/cuMemHostAlloc allocations) they read and write it when they run. A kernel's
// arguments are copied at cuLaunchKernel. cuStreamQuery and cuEventQuery answer CUDA_ERROR_NOT_READY while work is
// pending, and run it when asked again with nothing submitted in between (so polling ends). Kernels run in host
// emulation with shuffled blocks and threads (NOTE: [schedule-seed] in native/cuda_host_shim.h): the seed is
// EMA4J_CUDA_EMULATOR_SEED, else random, chosen at cuInit and written to the log; it also drives the choice of
// streams, so the same seed and the same calls give the same run. cuLaunchHostFunc queues its function like any
// operation; it runs with the driver's lock held, so a driver call from it returns CUDA_ERROR_NOT_PERMITTED.
//
// Capture and graphs, NOTE: [graph-emulation]. cuStreamBeginCapture_v2 makes a stream (not the legacy stream) record
// what is submitted to it instead of queueing it: launches (arguments copied at the call), asynchronous copies and
// memsets, host functions. cuStreamEndCapture turns the record into a graph, a list of operations in submission order
// (captures of one stream only: no events, so no forks or joins); cuGraphInstantiateWithFlags copies it, and each
// cuGraphLaunch queues a copy of every operation on the stream, after the previous launch of the same executable
// graph, to run as any queued work does (copies read pinned memory when they run; memory freed since the capture is
// an illegal address). Nothing a capture records waits for work outside it. As the driver documents, the calling
// thread's mode (cuThreadExchangeStreamCaptureMode) decides which potentially unsafe calls a capture in progress
// forbids it: allocations and frees, synchronous copies and memsets, synchronizations and queries; a forbidden call
// returns CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates the capture (said once on stderr), which then ends
// with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and no graph. Synchronizing or querying the capturing stream itself is
// always refused, legacy-stream work while a blocking stream captures is CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, and a
// capture that ends in another thread than the one that began it (unless RELAXED) is
// CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD. Stricter than the driver: an asynchronous copy between a capturing stream
// and pageable memory is refused (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; the graph would use the host address at
// every launch), so is the destruction of a capturing stream, and events, graph launches and uploads on a capturing
// stream are not emulated (CUDA_ERROR_NOT_SUPPORTED); each invalidates the capture.
//
// Faults: a misaligned load or store in a kernel (NOTE: [alignment-trap]) ends the launch and sets the sticky error
// CUDA_ERROR_MISALIGNED_ADDRESS, as on a GPU; the message names the kernel, block, thread, access and address, and
// the seed. After a sticky error, pending work is dropped and every call of the context returns the error (graphs
// stay until they are destroyed or the primary context is released).
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
// parameter sizes. Launches check what the driver checks (block and grid limits) at the call and queue the kernel.
//
// Calls JCuda references but the emulator does not implement are generated stubs (native/build-emulator.sh) that
// return CUDA_ERROR_NOT_SUPPORTED and say so on stderr once.
//
// Environment: EMA4J_CUDA_EMULATOR_LOG=<file> appends a line per process at cuInit (with the seed) and, at exit, the
// launches of every kernel (native/emulated-cuda-tests.sh uses it to prove that the tests ran on the emulator) and
// the operations that never ran because nothing waited for them. EMA4J_CUDA_EMULATOR_SEED=<n> sets the seed.

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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
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
constexpr std::size_t kMaxPending = 1024;  // operations a stream holds before the oldest must run

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

struct Driver;

// splitmix64, for the seed and the choice of streams (the kernels' schedule is the shim's, from the same seed).
std::uint64_t mix(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct Rng {
    std::uint64_t state = 0;
    std::uint64_t below(std::uint64_t n) {
        return static_cast<std::uint64_t>((static_cast<unsigned __int128>(mix(state += 0x9e3779b97f4a7c15ull)) * n) >>
                                          64);
    }
};

// One operation of a stream (NOTE: [stream-emulation]): a launch, copy or memset, or a marker (an event record, a
// wait for an event, the point a synchronization waits for).
struct Op {
    std::uint64_t id = 0;                 // submission order over all streams, from 1
    CUstream_st* stream = nullptr;        // valid while the operation is pending
    std::vector<std::shared_ptr<Op>> after;  // operations of other streams that must run first
    std::function<void(Driver&)> run;     // empty for a marker
    bool done = false;                    // ran (or was dropped after a sticky error)
    bool polled = false;                  // cuEventQuery answered CUDA_ERROR_NOT_READY about it
    std::chrono::steady_clock::time_point finished;
};
using OpRef = std::shared_ptr<Op>;

struct Allocation {
    CUdeviceptr address;
    std::size_t bytes;
    bool host;              // pinned host memory (cuMemAllocHost, cuMemHostAlloc), else device memory
    unsigned long long id;  // CU_POINTER_ATTRIBUTE_BUFFER_ID
    unsigned char* raw;     // the front red zone starts here
    std::size_t raw_bytes;
};

// An operation recorded by a stream capture, a node of its graph (NOTE: [graph-emulation]): what it does, with what
// the call gave copied, and the memory it reads or writes (copies and memsets: device and pinned host ranges), which
// must still be allocated when a launch of the graph runs it.
struct Node {
    std::function<void(Driver&)> run;
    std::vector<std::pair<CUdeviceptr, std::size_t>> memory;
    std::string what;  // the call (and kernel), for reports
};

// The capture of a stream, from cuStreamBeginCapture to cuStreamEndCapture.
struct Capture {
    CUstreamCaptureMode mode;
    std::thread::id thread;  // that began it
    std::vector<Node> nodes;
    bool invalidated = false;
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
    unsigned flags;                // CU_STREAM_NON_BLOCKING or not
    std::uint64_t serial;          // creation order (the legacy stream is 0): a stable order for the schedule
    std::deque<OpRef> pending;     // not yet run, in submission order
    OpRef last;                    // the last operation submitted, run or not
    std::uint64_t polled = 0;      // the last operation when cuStreamQuery last answered CUDA_ERROR_NOT_READY
    std::unique_ptr<Capture> capture;  // while capturing (NOTE: [graph-emulation])
};

struct CUevent_st {
    unsigned flags;
    OpRef marker;  // of the last cuEventRecord; null before the first
};

struct CUgraph_st {
    std::vector<Node> nodes;  // in the order they were recorded
};

struct CUgraphExec_st {
    std::vector<Node> nodes;
    OpRef last;  // the last operation of its last launch: the next launch runs after it
};

}  // namespace ema4j_cu

namespace {

// The whole driver state, behind one lock. Never destroyed: JVM threads may call in during exit.
struct Driver {
    std::mutex lock;
    bool initialized = false;
    int primary_retains = 0;             // the primary context is active while > 0
    CUresult sticky = CUDA_SUCCESS;      // CUDA_ERROR_ILLEGAL_ADDRESS after a red zone was hit, ...
    std::map<CUdeviceptr, Allocation> allocations;
    std::size_t device_bytes = 0;
    std::deque<Allocation> quarantine;  // freed allocations, oldest first (see release)
    std::size_t quarantine_bytes = 0;
    unsigned long long next_buffer_id = 1;
    CUctx_st primary;
    std::set<CUmodule> modules;
    std::set<CUfunction> functions;
    std::set<CUstream> streams;          // created and not destroyed
    std::vector<CUstream> retired;       // destroyed with work pending; deleted once it ran
    std::map<std::thread::id, CUstream> per_thread;  // CU_STREAM_PER_THREAD of each host thread that used it
    CUstream_st legacy{0, 0, {}, nullptr, 0, nullptr};  // the legacy default stream (never captures)
    std::uint64_t next_stream = 1;
    std::uint64_t next_op = 0;
    std::uint64_t seed = 0;              // NOTE: [schedule-seed]
    Rng rng;
    std::uint64_t launches_run = 0;      // numbers the launches for the kernels' schedule
    std::set<CUevent> events;
    std::set<CUgraph> graphs;            // NOTE: [graph-emulation]
    std::set<CUgraphExec> graph_execs;
    unsigned long long graph_launches = 0;
    std::map<std::string, const Ema4jModule*> emulated;  // loaded modules/<name>.so, by name
    std::map<std::string, unsigned long long> launches;  // per kernel, for the log
    std::string last_launch;  // "kernel<<<grid, block>>> [schedule: ...]" of the last that ran, for red zone reports
    std::set<std::string> unsupported_reported;
};

Driver& driver() {
    static Driver* d = new Driver();
    return *d;
}

thread_local std::vector<CUcontext> context_stack;
thread_local CUstreamCaptureMode capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;  // cuThreadExchangeStreamCaptureMode
thread_local bool in_host_function = false;  // a cuLaunchHostFunc function is running on this thread

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

std::vector<CUstream_st*> queues(Driver& d);

void log_launches_at_exit() {
    Driver& d = driver();
    std::lock_guard<std::mutex> guard(d.lock);
    std::string line = "pid " + std::to_string(getpid()) + " launches:";
    for (const auto& [kernel, count] : d.launches) line += " " + kernel + "=" + std::to_string(count);
    log_line(line);
    std::size_t pending = 0;
    for (const CUstream_st* q : queues(d)) pending += q->pending.size();
    if (d.graph_launches != 0) {
        log_line("pid " + std::to_string(getpid()) + " graph launches: " + std::to_string(d.graph_launches));
    }
    if (pending != 0) {
        log_line("pid " + std::to_string(getpid()) + " note: " + std::to_string(pending) +
                 " stream operation(s) never ran: nothing waited for them before the process exited");
    }
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

// --- streams (NOTE: [stream-emulation]) ----------------------------------------------------------------------------

// Every queue: the legacy stream, the created ones, the per-thread ones, the destroyed ones with work pending.
std::vector<CUstream_st*> queues(Driver& d) {
    std::vector<CUstream_st*> all{&d.legacy};
    all.insert(all.end(), d.streams.begin(), d.streams.end());
    for (const auto& [thread, q] : d.per_thread) all.push_back(q);
    all.insert(all.end(), d.retired.begin(), d.retired.end());
    return all;
}

// The queue of a stream handle, or null for an invalid one.
CUstream_st* resolve(Driver& d, CUstream s) {
    const auto raw = reinterpret_cast<std::uintptr_t>(s);
    if (s == nullptr || raw == EMA4J_CU_STREAM_LEGACY) return &d.legacy;
    if (raw == EMA4J_CU_STREAM_PER_THREAD) {
        CUstream& q = d.per_thread[std::this_thread::get_id()];
        if (q == nullptr) q = new CUstream_st{CU_STREAM_DEFAULT, d.next_stream++, {}, nullptr, 0, nullptr};
        return q;
    }
    return d.streams.count(s) != 0 ? s : nullptr;
}

bool blocking(const Driver& d, const CUstream_st* q) {
    return q != &d.legacy && (q->flags & CU_STREAM_NON_BLOCKING) == 0;
}

CUresult run_until(Driver& d, const OpRef& target);

// Queues `run` (empty: a marker) on stream q, after what the legacy stream semantics make it wait for, and after
// `also` (an earlier operation) when given.
OpRef enqueue(Driver& d, CUstream_st* q, std::function<void(Driver&)> run, const OpRef& also = nullptr) {
    auto op = std::make_shared<Op>();
    op->id = ++d.next_op;
    op->stream = q;
    op->run = std::move(run);
    auto wait_for = [&op](const OpRef& other) {
        if (other != nullptr && !other->done) op->after.push_back(other);
    };
    wait_for(also);
    if (q == &d.legacy) {
        for (CUstream_st* other : queues(d)) {
            if (blocking(d, other)) wait_for(other->last);
        }
    } else if (blocking(d, q)) {
        wait_for(d.legacy.last);
    }
    q->pending.push_back(op);
    q->last = op;
    if (q->pending.size() > kMaxPending) run_until(d, q->pending.front());  // an error is sticky: seen next call
    return op;
}

// Drops every pending operation (after a sticky error: the context is unusable, as on a GPU).
void drop_pending(Driver& d) {
    for (CUstream_st* q : queues(d)) {
        for (const OpRef& op : q->pending) {
            op->done = true;
            op->after.clear();
            op->run = nullptr;
        }
        q->pending.clear();
    }
}

// Runs pending operations until `target` ran (null: until every stream is empty): `target`, the operations
// before it in its stream, the ones they wait for, and so on, and nothing else. The next operation is the head of a
// stream whose head may run, picked at random. Returns the sticky error when one arises.
CUresult run_until(Driver& d, const OpRef& target) {
    if (d.sticky != CUDA_SUCCESS) return d.sticky;
    struct Need {
        CUstream_st* stream;
        std::uint64_t upto;  // run the stream's operations with ids up to this one
    };
    std::map<std::uint64_t, Need> needs;  // by stream serial, so the order does not depend on addresses
    std::vector<const Op*> open;
    auto need = [&open](const Op* op) {
        if (!op->done) open.push_back(op);
    };
    if (target != nullptr) {
        need(target.get());
    } else {
        for (const CUstream_st* q : queues(d)) {
            if (!q->pending.empty()) need(q->pending.back().get());
        }
    }
    while (!open.empty()) {
        const Op* op = open.back();
        open.pop_back();
        Need& n = needs.emplace(op->stream->serial, Need{op->stream, 0}).first->second;
        if (n.upto >= op->id) continue;
        for (const OpRef& p : op->stream->pending) {
            if (p->id <= n.upto) continue;
            if (p->id > op->id) break;
            for (const OpRef& a : p->after) need(a.get());
        }
        n.upto = op->id;
    }
    std::vector<CUstream_st*> runnable;
    for (;;) {
        runnable.clear();
        bool left = false;
        for (const auto& [serial, n] : needs) {
            if (n.stream->pending.empty() || n.stream->pending.front()->id > n.upto) continue;
            left = true;
            const std::vector<OpRef>& after = n.stream->pending.front()->after;
            if (std::all_of(after.begin(), after.end(), [](const OpRef& a) { return a->done; })) {
                runnable.push_back(n.stream);
            }
        }
        if (!left) break;
        if (runnable.empty()) {  // cannot happen: every wait points to an earlier operation
            report("internal error: stream operations wait for each other");
            std::abort();
        }
        CUstream_st* q = runnable[d.rng.below(runnable.size())];
        OpRef op = q->pending.front();
        q->pending.pop_front();
        if (op->run) op->run(d);
        op->done = true;
        op->finished = std::chrono::steady_clock::now();
        op->after.clear();
        op->run = nullptr;
        if (d.sticky != CUDA_SUCCESS) {
            drop_pending(d);
            break;
        }
    }
    for (auto it = d.retired.begin(); it != d.retired.end();) {
        if ((*it)->pending.empty()) {
            delete *it;
            it = d.retired.erase(it);
        } else {
            ++it;
        }
    }
    return d.sticky;
}

// Waits for everything the device has been given.
CUresult run_all(Driver& d) { return run_until(d, nullptr); }

// cuStreamSynchronize: everything submitted to q; for the legacy stream, to the blocking streams too (a marker on
// the legacy stream waits for them).
CUresult synchronize(Driver& d, CUstream_st* q) {
    return q == &d.legacy ? run_until(d, enqueue(d, q, nullptr)) : run_until(d, q->last);
}

// --- stream capture (NOTE: [graph-emulation]) ----------------------------------------------------------------------

const char* result_name(CUresult r) {
    switch (r) {
#define EMA4J_CASE(n, code, text) \
    case n:                       \
        return #n;
        EMA4J_CU_RESULTS(EMA4J_CASE)
#undef EMA4J_CASE
    }
    return "an unknown result";
}

bool valid_mode(CUstreamCaptureMode mode) {
    return mode == CU_STREAM_CAPTURE_MODE_GLOBAL || mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL ||
           mode == CU_STREAM_CAPTURE_MODE_RELAXED;
}

// Invalidates the capture of q (reported once): cuStreamEndCapture then returns CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
// and no graph.
void invalidate(CUstream_st* q, const std::string& call, CUresult error, const char* why) {
    if (q->capture->invalidated) return;
    q->capture->invalidated = true;
    report("%s during the capture of stream %p: %s (%s); the capture is invalidated: cuStreamEndCapture returns "
           "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and no graph", call.c_str(), static_cast<void*>(q), why,
           result_name(error));
}

// A call the capture of q cannot record: `error` (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED once the capture is
// invalidated, as for every operation submitted to it after that), and the capture is invalidated.
CUresult refuse_in_capture(CUstream_st* q, const std::string& call, CUresult error, const char* why) {
    if (q->capture->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    invalidate(q, call, error, why);
    return error;
}

// A potentially unsafe call (allocations, frees, synchronous copies and memsets, synchronizations and queries), as
// cuThreadExchangeStreamCaptureMode documents: the calling thread's mode decides. GLOBAL: refused while the thread
// has a capture in progress that it began in another mode than RELAXED, or another thread one it began in GLOBAL
// mode; THREAD_LOCAL: only the former; RELAXED: never. A refused call returns
// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates those captures.
CUresult unsafe_call(Driver& d, const char* call) {
    if (capture_mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
    const std::thread::id self = std::this_thread::get_id();
    CUresult r = CUDA_SUCCESS;
    for (CUstream_st* q : queues(d)) {
        if (q->capture == nullptr) continue;
        const Capture& c = *q->capture;
        const bool own = c.thread == self;
        if (own ? c.mode == CU_STREAM_CAPTURE_MODE_RELAXED
                : capture_mode != CU_STREAM_CAPTURE_MODE_GLOBAL || c.mode != CU_STREAM_CAPTURE_MODE_GLOBAL) {
            continue;
        }
        invalidate(q, call, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                   own ? "a potentially unsafe call in the capturing thread"
                       : "a potentially unsafe call in another thread than the one capturing in "
                         "CU_STREAM_CAPTURE_MODE_GLOBAL");
        r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    return r;
}

// Work for the legacy stream waits for the blocking streams: while one of them captures, it would join that capture
// implicitly. CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, and the capture is invalidated.
CUresult legacy_joins_capture(Driver& d, const CUstream_st* q, const std::string& call) {
    if (q != &d.legacy) return CUDA_SUCCESS;
    CUresult r = CUDA_SUCCESS;
    for (CUstream_st* other : queues(d)) {
        if (other->capture == nullptr || !blocking(d, other)) continue;
        invalidate(other, call, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                   "work for the legacy stream would wait for this capturing blocking stream");
        r = CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    }
    return r;
}

// The capturing stream itself (whose work is recorded, not run) cannot be synchronized or queried, in any mode.
CUresult wait_for_capturing_stream(CUstream_st* q, const char* call) {
    return refuse_in_capture(q, call, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                             "the capturing stream itself cannot be synchronized or queried");
}

// Submits an operation to stream q: records it when q captures (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED once the
// capture is invalidated), else queues it; `queued` (when given) gets the queued operation, null when recorded.
CUresult submit(Driver& d, CUstream_st* q, Node node, OpRef* queued = nullptr) {
    if (queued != nullptr) *queued = nullptr;
    if (q->capture != nullptr) {
        if (q->capture->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
        q->capture->nodes.push_back(std::move(node));
        return CUDA_SUCCESS;
    }
    if (CUresult r = legacy_joins_capture(d, q, node.what)) return r;
    OpRef op = enqueue(d, q, std::move(node.run));
    if (queued != nullptr) *queued = op;
    return CUDA_SUCCESS;
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
    std::size_t captures = 0;
    for (const CUstream_st* q : queues(d)) captures += q->capture != nullptr;
    if (captures != 0) {
        report("note: the primary context was released with %zu stream capture(s) in progress; ended", captures);
    }
    run_all(d);
    check_red_zones(d, "when the primary context was released", true);
    drop_pending(d);
    for (const auto& [address, a] : d.allocations) std::free(a.raw);
    d.allocations.clear();
    d.device_bytes = 0;
    for (const Allocation& a : d.quarantine) std::free(a.raw);
    d.quarantine.clear();
    d.quarantine_bytes = 0;
    while (!d.modules.empty()) unload(d, *d.modules.begin());
    for (CUstream s : d.streams) delete s;
    d.streams.clear();
    for (CUstream s : d.retired) delete s;
    d.retired.clear();
    for (const auto& [thread, s] : d.per_thread) delete s;
    d.per_thread.clear();
    d.legacy.last = nullptr;
    for (CUevent e : d.events) delete e;
    d.events.clear();
    for (CUgraph g : d.graphs) delete g;
    d.graphs.clear();
    for (CUgraphExec x : d.graph_execs) delete x;
    d.graph_execs.clear();
    d.sticky = CUDA_SUCCESS;
}

// --- copies (NOTE: [stream-emulation]) -----------------------------------------------------------------------------

// Pinned host memory: the driver's own host allocations. Copies read and write it when they run; other host memory is
// pageable.
bool pinned(Driver& d, const void* p, std::size_t bytes) {
    const Allocation* a = find_allocation(d, static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(p)), bytes);
    return a != nullptr && a->host;
}

CUdeviceptr device_address(const void* p) { return static_cast<CUdeviceptr>(reinterpret_cast<std::uintptr_t>(p)); }

// An asynchronous copy between a capturing stream and pageable memory: refused (NOTE: [graph-emulation]).
CUresult pageable_in_capture(CUstream_st* q, const char* call) {
    return refuse_in_capture(q, call, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                             "a copy to or from pageable host memory cannot be captured here (a graph would use the "
                             "host address at every launch; use pinned memory from cuMemAllocHost)");
}

// cuMemcpyHtoD (`async` false: returns once the copy ran) and cuMemcpyHtoDAsync. Pageable sources are staged at
// the call, as the driver stages them.
CUresult copy_to_device(Driver& d, CUdeviceptr dst, const void* src, std::size_t bytes, CUstream stream, bool async,
                        const char* call) {
    if (CUresult r = context_ready(d)) return r;
    if (!async) {
        if (CUresult r = unsafe_call(d, call)) return r;
    }
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (bytes == 0) return CUDA_SUCCESS;
    if (src == nullptr || find_allocation(d, dst, bytes) == nullptr) return CUDA_ERROR_INVALID_VALUE;
    unsigned char* to = host_address(dst);
    Node node{nullptr, {{dst, bytes}}, call};
    if (pinned(d, src, bytes)) {
        node.run = [to, src, bytes](Driver&) { std::memcpy(to, src, bytes); };
        node.memory.emplace_back(device_address(src), bytes);
    } else {
        if (q->capture != nullptr) return pageable_in_capture(q, call);
        const auto* from = static_cast<const unsigned char*>(src);
        node.run = [to, staged = std::vector<unsigned char>(from, from + bytes)](Driver&) {
            std::memcpy(to, staged.data(), staged.size());
        };
    }
    OpRef op;
    if (CUresult r = submit(d, q, std::move(node), &op)) return r;
    return async || op == nullptr ? CUDA_SUCCESS : run_until(d, op);
}

// cuMemcpyDtoH (returns once the copy ran) and cuMemcpyDtoHAsync (returns at once when dst is pinned).
CUresult copy_to_host(Driver& d, void* dst, CUdeviceptr src, std::size_t bytes, CUstream stream, bool async,
                      const char* call) {
    if (CUresult r = context_ready(d)) return r;
    if (!async) {
        if (CUresult r = unsafe_call(d, call)) return r;
    }
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (bytes == 0) return CUDA_SUCCESS;
    if (dst == nullptr || find_allocation(d, src, bytes) == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const bool to_pinned = pinned(d, dst, bytes);
    if (q->capture != nullptr && !to_pinned) return pageable_in_capture(q, call);
    const unsigned char* from = host_address(src);
    Node node{[dst, from, bytes](Driver&) { std::memcpy(dst, from, bytes); }, {{src, bytes}}, call};
    if (to_pinned) node.memory.emplace_back(device_address(dst), bytes);
    OpRef op;
    if (CUresult r = submit(d, q, std::move(node), &op)) return r;
    if (op == nullptr || (async && to_pinned)) return CUDA_SUCCESS;  // recorded, or runs later
    if (CUresult r = run_until(d, op)) return r;
    return check_red_zones(d, "at a device-to-host copy");
}

// cuMemcpyDtoD and cuMemcpyDtoDAsync: neither waits on the host.
CUresult copy_on_device(Driver& d, CUdeviceptr dst, CUdeviceptr src, std::size_t bytes, CUstream stream, bool async,
                        const char* call) {
    if (CUresult r = context_ready(d)) return r;
    if (!async) {
        if (CUresult r = unsafe_call(d, call)) return r;
    }
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (bytes == 0) return CUDA_SUCCESS;
    if (find_allocation(d, dst, bytes) == nullptr || find_allocation(d, src, bytes) == nullptr) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    unsigned char* to = host_address(dst);
    const unsigned char* from = host_address(src);
    Node node{[to, from, bytes](Driver&) { std::memmove(to, from, bytes); }, {{dst, bytes}, {src, bytes}}, call};
    return submit(d, q, std::move(node));
}

// cuMemsetD8/16/32 and their Async forms: they do not wait on the host, except the synchronous ones on pinned host
// memory.
template <typename T>
CUresult set_memory(Driver& d, CUdeviceptr dst, T value, std::size_t count, CUstream stream, bool async,
                    const char* call) {
    if (CUresult r = context_ready(d)) return r;
    if (!async) {
        if (CUresult r = unsafe_call(d, call)) return r;
    }
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (count == 0) return CUDA_SUCCESS;
    if (dst % sizeof(T) != 0 || count > SIZE_MAX / sizeof(T)) return CUDA_ERROR_INVALID_VALUE;
    const Allocation* a = find_allocation(d, dst, count * sizeof(T));
    if (a == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const bool host = a->host;
    unsigned char* p = host_address(dst);
    OpRef op;
    Node node{[p, value, count](Driver&) {
                  for (std::size_t i = 0; i < count; ++i) std::memcpy(p + i * sizeof(T), &value, sizeof(T));
              },
              {{dst, count * sizeof(T)}}, call};
    if (CUresult r = submit(d, q, std::move(node), &op)) return r;
    return !async && host && op != nullptr ? run_until(d, op) : CUDA_SUCCESS;
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

// What cuGraphLaunch queues for a node of the graph: the node, once the memory it uses proved to be still allocated
// (a graph keeps the addresses of its capture: memory freed since is an illegal address, as on a GPU).
std::function<void(Driver&)> replay(const Node& node) {
    return [node](Driver& d) {
        for (const auto& [address, bytes] : node.memory) {
            if (find_allocation(d, address, bytes) == nullptr) {
                report("a graph launch ran %s on 0x%llx (%zu bytes), which was freed after the capture. Every later "
                       "call returns CUDA_ERROR_ILLEGAL_ADDRESS.", node.what.c_str(), address, bytes);
                d.sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
                return;
            }
        }
        node.run(d);
    };
}

// A cuLaunchHostFunc function must not call the driver (it runs with the lock held): CUDA_ERROR_NOT_PERMITTED, as the
// driver documents it may answer.
CUresult called_from_host_function(const char* function) {
    report("%s called from a function queued by cuLaunchHostFunc, which must not call CUDA (CUDA_ERROR_NOT_PERMITTED)",
           function);
    return CUDA_ERROR_NOT_PERMITTED;
}

}  // namespace

// === the driver API ==================================================================================================

#define EMA4J_LOCKED                                                       \
    if (in_host_function) return called_from_host_function(__func__);     \
    Driver& d = driver();                                                  \
    std::lock_guard<std::mutex> held(d.lock)

EMA4J_API CUresult cuInit(unsigned int flags) {
    EMA4J_LOCKED;
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (!d.initialized) {
        // NOTE: [schedule-seed]: EMA4J_CUDA_EMULATOR_SEED, else a random 32-bit number.
        if (const char* text = std::getenv("EMA4J_CUDA_EMULATOR_SEED"); text != nullptr && *text != '\0') {
            char* end = nullptr;
            d.seed = std::strtoull(text, &end, 0);
            if (*end != '\0') {
                report("cuInit: EMA4J_CUDA_EMULATOR_SEED=%s is not a number (CUDA_ERROR_INVALID_VALUE)", text);
                return CUDA_ERROR_INVALID_VALUE;
            }
        } else {
            const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
            d.seed = mix(static_cast<std::uint64_t>(now) ^ (static_cast<std::uint64_t>(getpid()) << 32) ^
                         reinterpret_cast<std::uintptr_t>(&d)) & 0xffffffffu;
        }
        d.rng.state = mix(d.seed);
        d.initialized = true;
        log_line("pid " + std::to_string(getpid()) + " cuInit: " + kDeviceName + ", " + library_directory() +
                 "/libcuda.so.1, EMA4J_CUDA_EMULATOR_SEED=" + std::to_string(d.seed));
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
    if (CUresult r = unsafe_call(d, "cuCtxSynchronize")) return r;
    if (CUresult r = run_all(d)) return r;
    return check_red_zones(d, "at cuCtxSynchronize");
}

// --- streams and events ---------------------------------------------------------------------------------------------

EMA4J_API CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (stream == nullptr || (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *stream = new CUstream_st{flags, d.next_stream++, {}, nullptr, 0, nullptr};
    d.streams.insert(*stream);
    return CUDA_SUCCESS;
}

// As the driver: returns at once; work still pending runs when something waits for it. A capturing stream is not
// destroyed (NOTE: [graph-emulation]).
EMA4J_API CUresult cuStreamDestroy_v2(CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.streams.count(stream) == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (stream->capture != nullptr) {
        return refuse_in_capture(stream, "cuStreamDestroy", CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                                 "a capturing stream cannot be destroyed (end the capture first)");
    }
    d.streams.erase(stream);
    if (stream->pending.empty()) {
        delete stream;
    } else {
        d.retired.push_back(stream);
    }
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuStreamSynchronize(CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (q->capture != nullptr) return wait_for_capturing_stream(q, "cuStreamSynchronize");
    if (CUresult r = unsafe_call(d, "cuStreamSynchronize")) return r;
    if (CUresult r = legacy_joins_capture(d, q, "cuStreamSynchronize")) return r;
    if (CUresult r = synchronize(d, q)) return r;
    return check_red_zones(d, "at cuStreamSynchronize");
}

// CUDA_ERROR_NOT_READY while the stream (for the legacy stream: or a blocking stream) has work pending; asked again
// with no work added to those streams in between, it runs that work first (NOTE: [stream-emulation]).
EMA4J_API CUresult cuStreamQuery(CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (q->capture != nullptr) return wait_for_capturing_stream(q, "cuStreamQuery");
    if (CUresult r = unsafe_call(d, "cuStreamQuery")) return r;
    if (CUresult r = legacy_joins_capture(d, q, "cuStreamQuery")) return r;
    bool pending = false;
    std::uint64_t latest = 0;  // the last operation the query is about
    for (const CUstream_st* other : queues(d)) {
        if (other != q && (q != &d.legacy || !blocking(d, other))) continue;
        pending = pending || !other->pending.empty();
        if (other->last != nullptr) latest = std::max(latest, other->last->id);
    }
    if (!pending) return CUDA_SUCCESS;
    if (q->polled != latest) {
        q->polled = latest;
        return CUDA_ERROR_NOT_READY;
    }
    return synchronize(d, q);
}

EMA4J_API CUresult cuStreamGetFlags(CUstream stream, unsigned int* flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *flags = q->flags;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr || d.events.count(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    if (q->capture != nullptr) {
        return refuse_in_capture(q, "cuStreamWaitEvent", CUDA_ERROR_NOT_SUPPORTED,
                                 "events in a stream capture are not emulated");
    }
    if (CUresult r = legacy_joins_capture(d, q, "cuStreamWaitEvent")) return r;
    if (event->marker != nullptr && !event->marker->done) {  // else (never recorded, or complete): nothing to wait for
        enqueue(d, q, nullptr, event->marker);
    }
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuEventCreate(CUevent* event, unsigned int flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    const unsigned known = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
    if (event == nullptr || (flags & ~known) != 0) return CUDA_ERROR_INVALID_VALUE;
    *event = new CUevent_st{flags, nullptr};
    d.events.insert(*event);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuEventDestroy_v2(CUevent event) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.events.erase(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
    delete event;  // a wait for it keeps its marker
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuEventRecord(CUevent event, CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (d.events.count(event) == 0 || q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (q->capture != nullptr) {
        return refuse_in_capture(q, "cuEventRecord", CUDA_ERROR_NOT_SUPPORTED,
                                 "events in a stream capture are not emulated");
    }
    if (CUresult r = legacy_joins_capture(d, q, "cuEventRecord")) return r;
    event->marker = enqueue(d, q, nullptr);
    return CUDA_SUCCESS;
}

// CUDA_ERROR_NOT_READY while the recorded work is pending; asked again, it runs that work first.
EMA4J_API CUresult cuEventQuery(CUevent event) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.events.count(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (CUresult r = unsafe_call(d, "cuEventQuery")) return r;
    if (event->marker == nullptr || event->marker->done) return CUDA_SUCCESS;
    if (!event->marker->polled) {
        event->marker->polled = true;
        return CUDA_ERROR_NOT_READY;
    }
    return run_until(d, event->marker);
}

EMA4J_API CUresult cuEventSynchronize(CUevent event) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.events.count(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (CUresult r = unsafe_call(d, "cuEventSynchronize")) return r;
    if (event->marker != nullptr) {
        if (CUresult r = run_until(d, event->marker)) return r;
    }
    return check_red_zones(d, "at cuEventSynchronize");
}

// The time between the two markers' runs (host time of the emulation, not a GPU's).
EMA4J_API CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (milliseconds == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.events.count(start) == 0 || d.events.count(end) == 0 || start->marker == nullptr ||
        end->marker == nullptr || ((start->flags | end->flags) & CU_EVENT_DISABLE_TIMING) != 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!start->marker->done || !end->marker->done) return CUDA_ERROR_NOT_READY;
    *milliseconds = std::chrono::duration<float, std::milli>(end->marker->finished - start->marker->finished).count();
    return CUDA_SUCCESS;
}

// --- memory ---------------------------------------------------------------------------------------------------------

EMA4J_API CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (CUresult r = unsafe_call(d, "cuMemAlloc")) return r;
    return allocate(d, bytes, false, pointer);
}

// As cudaFree, it waits for the whole device first: the memory may be in use by queued work.
EMA4J_API CUresult cuMemFree_v2(CUdeviceptr pointer) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (CUresult r = unsafe_call(d, "cuMemFree")) return r;
    if (CUresult r = run_all(d)) return r;
    if (CUresult r = check_red_zones(d, "at cuMemFree", true)) return r;
    auto it = d.allocations.find(pointer);
    if (it == d.allocations.end() || it->second.host) return CUDA_ERROR_INVALID_VALUE;
    release(d, it);
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuMemAllocHost_v2(void** pointer, std::size_t bytes) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (CUresult r = unsafe_call(d, "cuMemAllocHost")) return r;
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
    if (CUresult r = unsafe_call(d, "cuMemFreeHost")) return r;
    if (CUresult r = run_all(d)) return r;
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
    return copy_to_device(d, dst, src, bytes, nullptr, false, "cuMemcpyHtoD");
}

EMA4J_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, std::size_t bytes, CUstream stream) {
    EMA4J_LOCKED;
    return copy_to_device(d, dst, src, bytes, stream, true, "cuMemcpyHtoDAsync");
}

EMA4J_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, std::size_t bytes) {
    EMA4J_LOCKED;
    return copy_to_host(d, dst, src, bytes, nullptr, false, "cuMemcpyDtoH");
}

EMA4J_API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, std::size_t bytes, CUstream stream) {
    EMA4J_LOCKED;
    return copy_to_host(d, dst, src, bytes, stream, true, "cuMemcpyDtoHAsync");
}

EMA4J_API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes) {
    EMA4J_LOCKED;
    return copy_on_device(d, dst, src, bytes, nullptr, false, "cuMemcpyDtoD");
}

EMA4J_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t bytes, CUstream stream) {
    EMA4J_LOCKED;
    return copy_on_device(d, dst, src, bytes, stream, true, "cuMemcpyDtoDAsync");
}

EMA4J_API CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, std::size_t count) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, nullptr, false, "cuMemsetD8");
}

EMA4J_API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, std::size_t count, CUstream stream) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, stream, true, "cuMemsetD8Async");
}

EMA4J_API CUresult cuMemsetD16_v2(CUdeviceptr dst, unsigned short value, std::size_t count) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, nullptr, false, "cuMemsetD16");
}

EMA4J_API CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short value, std::size_t count, CUstream stream) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, stream, true, "cuMemsetD16Async");
}

EMA4J_API CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, std::size_t count) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, nullptr, false, "cuMemsetD32");
}

EMA4J_API CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, std::size_t count, CUstream stream) {
    EMA4J_LOCKED;
    return set_memory(d, dst, value, count, stream, true, "cuMemsetD32Async");
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
    CUstream_st* q = resolve(d, stream);
    if (d.functions.count(f) == 0 || q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
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
    // The arguments are copied now, as the driver does; the kernel runs when something waits for it.
    std::vector<unsigned char> arguments;
    std::vector<std::size_t> offsets;
    for (unsigned i = 0; i < f->kernel->param_count; ++i) {
        offsets.push_back(arguments.size());
        const auto* bytes = static_cast<const unsigned char*>(params[i]);
        arguments.insert(arguments.end(), bytes, bytes + f->kernel->param_sizes[i]);
    }
    const Ema4jKernel* kernel = f->kernel;
    Ema4jLaunch launch{{grid_x, grid_y, grid_z}, {block_x, block_y, block_z}, nullptr, 0, 0, nullptr, 0};
    Node node{[kernel, launch, arguments = std::move(arguments), offsets = std::move(offsets),
               counter = f->module->source + ":" + name](Driver& d) mutable {
        std::vector<void*> pointers;
        for (std::size_t offset : offsets) pointers.push_back(arguments.data() + offset);
        char error[2048] = "";
        launch.params = pointers.data();
        launch.seed = d.seed;
        launch.number = ++d.launches_run;
        launch.error = error;
        launch.error_size = sizeof error;
        char label[320];
        std::snprintf(label, sizeof label, "%s<<<(%u,%u,%u), (%u,%u,%u)>>> [schedule: EMA4J_CUDA_EMULATOR_SEED=%llu, "
                      "launch #%llu]", kernel->name, launch.grid[0], launch.grid[1], launch.grid[2], launch.block[0],
                      launch.block[1], launch.block[2], launch.seed, launch.number);
        d.last_launch = label;
        ++d.launches[counter];
        if (kernel->launch(launch) != 0) {  // a trap (NOTE: [alignment-trap]): sticky, as after a fault on a GPU
            report("%s. Every later call returns CUDA_ERROR_MISALIGNED_ADDRESS.", error);
            d.sticky = CUDA_ERROR_MISALIGNED_ADDRESS;
            return;
        }
        check_red_zones(d, "after the launch", true);  // a hit is sticky: the next call returns it, as after a fault
    }, {}, std::string("cuLaunchKernel ") + name};
    return submit(d, q, std::move(node));  // recorded when the stream captures (NOTE: [graph-emulation])
}

// As the driver documents: `fn(data)` runs in stream order, after the work submitted before it, and must not call
// CUDA (CUDA_ERROR_NOT_PERMITTED when it does). Recorded when the stream captures.
EMA4J_API CUresult cuLaunchHostFunc(CUstream stream, CUhostFn fn, void* data) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return submit(d, q, Node{[fn, data](Driver&) {
                                 in_host_function = true;
                                 fn(data);
                                 in_host_function = false;
                             },
                             {}, "cuLaunchHostFunc"});
}

// --- stream capture and graphs (NOTE: [graph-emulation]) -----------------------------------------------------------

EMA4J_API CUresult cuStreamBeginCapture_v2(CUstream stream, CUstreamCaptureMode mode) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (!valid_mode(mode)) return CUDA_ERROR_INVALID_VALUE;
    if (q == &d.legacy) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (q->capture != nullptr) return CUDA_ERROR_ILLEGAL_STATE;
    q->capture = std::make_unique<Capture>(Capture{mode, std::this_thread::get_id(), {}, false});
    return CUDA_SUCCESS;
}

// An invalidated capture ends too, without a graph. A capture begun in another mode than RELAXED must be ended by the
// thread that began it; from another thread the call fails and the capture goes on.
EMA4J_API CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (graph == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (q->capture == nullptr) return CUDA_ERROR_ILLEGAL_STATE;
    if (q->capture->mode != CU_STREAM_CAPTURE_MODE_RELAXED && q->capture->thread != std::this_thread::get_id()) {
        return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    }
    const std::unique_ptr<Capture> capture = std::move(q->capture);
    if (capture->invalidated) {
        *graph = nullptr;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    *graph = new CUgraph_st{std::move(capture->nodes)};
    d.graphs.insert(*graph);
    return CUDA_SUCCESS;
}

// For the legacy stream while a blocking stream captures: CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, as the driver documents
// (a query: the capture goes on).
EMA4J_API CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (q == &d.legacy) {
        for (const CUstream_st* other : queues(d)) {
            if (other->capture != nullptr && blocking(d, other)) return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
        }
    }
    *status = q->capture == nullptr      ? CU_STREAM_CAPTURE_STATUS_NONE
              : q->capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                        : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return CUDA_SUCCESS;
}

// The calling thread's mode decides which calls a capture forbids to it (see unsafe_call).
EMA4J_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
    EMA4J_LOCKED;
    if (!d.initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (mode == nullptr || !valid_mode(*mode)) return CUDA_ERROR_INVALID_VALUE;
    std::swap(*mode, capture_mode);
    return CUDA_SUCCESS;
}

// The executable graph holds its own copy of the nodes: the graph may be destroyed after.
EMA4J_API CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long flags) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (exec == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (d.graphs.count(graph) == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (flags != 0) {
        report("cuGraphInstantiateWithFlags: flags 0x%llx are not emulated (CUDA_ERROR_INVALID_VALUE)", flags);
        return CUDA_ERROR_INVALID_VALUE;
    }
    *exec = new CUgraphExec_st{graph->nodes, nullptr};
    d.graph_execs.insert(*exec);
    return CUDA_SUCCESS;
}

// Queues a copy of every node on the stream, in the order of the capture, after the previous launch of the same
// executable graph (on any stream), as the driver orders them.
EMA4J_API CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (d.graph_execs.count(exec) == 0 || q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (q->capture != nullptr) {
        return refuse_in_capture(q, "cuGraphLaunch", CUDA_ERROR_NOT_SUPPORTED,
                                 "a graph launch in a stream capture is not emulated");
    }
    if (CUresult r = legacy_joins_capture(d, q, "cuGraphLaunch")) return r;
    ++d.graph_launches;
    OpRef previous = std::move(exec->last);
    for (const Node& node : exec->nodes) {
        exec->last = enqueue(d, q, replay(node), previous);
        previous = nullptr;
        if (d.sticky != CUDA_SUCCESS) return d.sticky;
    }
    return CUDA_SUCCESS;
}

// Nothing to upload: the nodes are on the host already.
EMA4J_API CUresult cuGraphUpload(CUgraphExec exec, CUstream stream) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    CUstream_st* q = resolve(d, stream);
    if (d.graph_execs.count(exec) == 0 || q == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (q->capture != nullptr) {
        return refuse_in_capture(q, "cuGraphUpload", CUDA_ERROR_NOT_SUPPORTED,
                                 "a graph upload in a stream capture is not emulated");
    }
    return CUDA_SUCCESS;
}

// Launched work still pending runs: it holds copies of the nodes.
EMA4J_API CUresult cuGraphExecDestroy(CUgraphExec exec) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.graph_execs.erase(exec) == 0) return CUDA_ERROR_INVALID_HANDLE;
    delete exec;
    return CUDA_SUCCESS;
}

EMA4J_API CUresult cuGraphDestroy(CUgraph graph) {
    EMA4J_LOCKED;
    if (CUresult r = context_ready(d)) return r;
    if (d.graphs.erase(graph) == 0) return CUDA_ERROR_INVALID_HANDLE;
    delete graph;
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
