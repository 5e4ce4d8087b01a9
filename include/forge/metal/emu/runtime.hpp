#pragma once
// The emulator's execution model: MSL kernels compiled as C++ run one threadgroup at a time per OS
// thread, each GPU thread a user-space fiber. A fiber runs until it reaches a threadgroup barrier or a
// simdgroup operation; the scheduler then runs the others, in an order drawn afresh each round from a
// seeded generator ($FORGE_EMU_SEED), as threadgroups are run in a drawn order: a GPU promises no order,
// so neither may a kernel. A simdgroup operation completes when every live lane of its 32-wide simdgroup
// has reached one (lanes that returned are inactive, as on the GPU); a threadgroup barrier completes when
// every thread of the group has reached it. Anything else (a barrier some thread returned before, lanes
// of one simdgroup waiting on different operations) is reported as a forge::Error, as are out-of-bounds
// or misaligned accesses through the checked pointers below, and races: every access to threadgroup
// memory or a writable device buffer is recorded (who wrote and read each 2 bytes), and a read or write
// by one thread of what another wrote, or a write of what another read, with nothing ordering them is a
// race, whatever order the threads happened to run in. A threadgroup_barrier orders the memory its flags
// name within the group, a simdgroup_barrier the lanes of one simdgroup; threadgroups of one dispatch
// are never ordered. Across dispatches, every element access of a buffer kernels may write (read-only
// ones included) is checked against the other dispatches since the last Encoder::barrier()
// (BarrierInterval below).
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "forge/core/error.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define FORGE_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORGE_EMU_ASAN 1
#endif
#endif
#ifdef FORGE_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// Fibers switch with a few instructions on x86-64 (swapcontext would make two signal-mask system calls
// per switch, and a kernel switches at every barrier and simd operation), ucontext elsewhere; under
// AddressSanitizer either way with its fiber annotations, so it knows which stack is live.
#if defined(__x86_64__)
#define FORGE_EMU_ASM_SWITCH 1
// forge_emu_switch(save, to): saves the callee-saved registers, MXCSR and the x87 control word on the
// current stack, stores its pointer in *save, and resumes the stack `to` (saved the same way).
extern "C" void forge_emu_switch(void** save, void* to);
asm(R"(
.text
.p2align 4
.weak forge_emu_switch
.type forge_emu_switch,@function
forge_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size forge_emu_switch, .-forge_emu_switch
)");
#endif

namespace forge::metal::emu {

inline constexpr std::uint32_t kSimdWidth = 32;

// ---- simdgroup operations and what kernel code asks of the scheduler ----------------------------

enum class SimdOp : std::uint8_t { none, sum, max, min, shuffle, shuffle_xor, broadcast, barrier, matrix };

inline const char* simd_op_name(SimdOp op) {
    switch (op) {
        case SimdOp::sum: return "simd_sum";
        case SimdOp::max: return "simd_max";
        case SimdOp::min: return "simd_min";
        case SimdOp::shuffle: return "simd_shuffle";
        case SimdOp::shuffle_xor: return "simd_shuffle_xor";
        case SimdOp::broadcast: return "simd_broadcast";
        case SimdOp::barrier: return "simdgroup_barrier";
        case SimdOp::matrix: return "simdgroup_multiply_accumulate";
        case SimdOp::none: break;
    }
    return "?";
}

// One value a lane contributes to a simdgroup operation: floats, ints and uints travel as their bits.
enum class ValueKind : std::uint8_t { f32, i32, u32 };

struct ThreadCtx;
using KernelEntry = void (*)(const ThreadCtx&);
struct Region;

// What kernel code needs of the scheduler, as plain function pointers: kernels compiled into a shared
// object at run time (emu/jit.hpp) reach the scheduler of the program that loaded them through these
// alone, never through a global the two would each have a copy of. Barriers carry their mem_flags bits.
// `site` is the line of the MSL text that called the operation: the lanes of one simdgroup operation, and
// the threads of one barrier, must all be at the same one.
struct FiberOps {
    void* runner;
    std::uint32_t (*simd_op)(void* runner, SimdOp op, std::uint32_t bits, ValueKind kind, std::uint32_t arg, std::uint32_t site);
    void (*threadgroup_barrier)(void* runner, unsigned flags, std::uint32_t site);
    // Every lane of the simdgroup gives `words` words and receives all lanes' words, lane by lane, in `all`
    // (32 * words): how a simdgroup matrix's lanes see each other's fragments.
    void (*simd_gather)(void* runner, const std::uint32_t* mine, std::uint32_t* all, std::uint32_t words, std::uint32_t site);
    // The current thread read or wrote `bytes` at `p` in `region` (throws KernelFault on a race).
    void (*access)(void* runner, const Region& region, const void* p, std::size_t bytes, bool write);
    std::uint32_t (*lane)(void* runner);  // the current thread's index in its simdgroup
};

// MSL's mem_flags bits, as the shim passes them to barriers.
inline constexpr unsigned kMemDevice = 1, kMemThreadgroup = 2;

// Encoder::barrier() placement. Dispatches between two barriers (or finish) may run at once on a GPU, so
// none of them may read or write what another of them wrote, nor write what another read. Dispatches
// are numbered from 1; the current barrier interval holds those from `first` on.
struct BarrierInterval {
    std::uint32_t dispatch = 0;  // the running dispatch's number
    std::uint32_t first = 1;
    std::vector<const char*> kernels;  // the interval's kernels, by number - first
};

// Per 2 bytes of a buffer kernels may write: the last dispatch that wrote them and the first of its
// interval that read them (a number before the interval's first is ordered by a barrier).
struct DispatchStamp {
    std::uint32_t writer = 0, reader = 0;
};

// A bound buffer (or a group's threadgroup memory): what a checked pointer may touch. With `ops`, its
// writable elements are race-checked through them; with `stamps` (the buffer's, from its first byte
// `stamp_origin` on), every element access is checked against the other dispatches of `interval`.
struct Region {
    std::byte* lo = nullptr;
    std::byte* hi = nullptr;
    std::string name;
    const FiberOps* ops = nullptr;
    bool threadgroup = false;
    DispatchStamp* stamps = nullptr;
    const std::byte* stamp_origin = nullptr;
    BarrierInterval* interval = nullptr;
};

// Thrown inside a fiber by a faulting access; the scheduler turns it into a forge::Error.
struct KernelFault {
    std::string what;
};

[[noreturn]] inline void fault_interval(const Region& r, const void* p, const char* what, const char* other_did, std::uint32_t other) {
    const BarrierInterval& in = *r.interval;
    throw KernelFault{std::string(what) + " " + r.name + " at byte offset " +
                      std::to_string(static_cast<const std::byte*>(p) - r.lo) + ", which kernel '" + in.kernels[other - in.first] +
                      "' " + other_did + " in the same barrier interval (no Encoder::barrier() between the two dispatches)"};
}

// The running dispatch read or wrote `bytes` at `p` of `r`: a fault if another dispatch of the barrier
// interval wrote them, or, for a write, read them.
inline void note_dispatch_access(const Region& r, const void* p, std::size_t bytes, bool write) {
    if (!r.stamps) return;
    const BarrierInterval& in = *r.interval;
    const auto at = std::size_t(static_cast<const std::byte*>(p) - r.stamp_origin);
    for (std::size_t unit = at / 2; unit < (at + bytes + 1) / 2; ++unit) {
        DispatchStamp& s = r.stamps[unit];
        if (s.writer >= in.first && s.writer != in.dispatch) fault_interval(r, p, write ? "overwrites" : "reads", "wrote", s.writer);
        if (!write) {
            if (s.reader < in.first) s.reader = in.dispatch;
            continue;
        }
        if (s.reader >= in.first && s.reader != in.dispatch) fault_interval(r, p, "overwrites", "read", s.reader);
        s.writer = in.dispatch;
    }
}

[[noreturn]] inline void fault_access(const Region* r, const void* p, std::size_t size, std::size_t align) {
    if (!r) throw KernelFault{"access through an unbound pointer"};
    const auto off = std::intptr_t(reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(r->lo));
    const bool inside = off >= 0 && std::size_t(off) + size <= std::size_t(r->hi - r->lo);
    throw KernelFault{std::string(inside ? "misaligned" : "out-of-bounds") + " access of " + std::to_string(size) +
                      " bytes (alignment " + std::to_string(align) + ") at byte offset " + std::to_string(off) + " of '" +
                      r->name + "' (" + std::to_string(r->hi - r->lo) + " bytes)"};
}

// An element a kernel may write, as the emulator hands it out: reading it and writing it are told apart
// and reported to the scheduler's race detector. (forge's kernels write scalars: float, half, int.)
template <class T>
class Ref {
public:
    using value_type = T;
    Ref(T& v, const Region* r) : v_(v), r_(r) {}
    Ref(const Ref&) = default;

    operator T() const {
        report(false);
        return v_;
    }
    Ref& operator=(const T& x) {
        report(true);
        v_ = x;
        return *this;
    }
    Ref& operator=(const Ref& o) { return *this = T(o); }
    Ref& operator+=(const T& x) { return *this = T(*this) + x; }
    Ref& operator-=(const T& x) { return *this = T(*this) - x; }
    Ref& operator*=(const T& x) { return *this = T(*this) * x; }
    Ref& operator/=(const T& x) { return *this = T(*this) / x; }

private:
    void report(bool write) const {
        note_dispatch_access(*r_, &v_, sizeof(T), write);
        if (r_->ops) r_->ops->access(r_->ops->runner, *r_, &v_, sizeof(T), write);
    }
    T& v_;
    const Region* r_;
};

// A bounds- and alignment-checked pointer into one Region: what DPTR(T) means in the emulator. Elements
// of a read-only buffer are plain references (read when taken); a writable one's are Refs.
template <class T>
class Ptr {
public:
    using Byte = std::conditional_t<std::is_const_v<T>, const std::byte, std::byte>;
    using Element = std::conditional_t<std::is_const_v<T>, T&, Ref<T>>;

    Ptr() = default;
    Ptr(Byte* p, const Region* r) : p_(p), r_(r) {}
    template <class U>
        requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*>)
    Ptr(const Ptr<U>& o) : p_(o.byte_ptr()), r_(o.region()) {}

    Element operator*() const { return at(0); }
    template <class I>
        requires std::is_integral_v<I>
    Element operator[](I i) const {
        return at(std::ptrdiff_t(i));
    }
    template <class I>
        requires std::is_integral_v<I>
    Ptr operator+(I i) const {
        return Ptr(p_ + std::ptrdiff_t(i) * std::ptrdiff_t(sizeof(T)), r_);
    }
    template <class I>
        requires std::is_integral_v<I>
    Ptr& operator+=(I i) {
        p_ += std::ptrdiff_t(i) * std::ptrdiff_t(sizeof(T));
        return *this;
    }

    // `n` elements from here, checked once: for operations that read or write a whole tile (they report
    // what they touch with note()).
    T* span(std::size_t n) const {
        check(n * sizeof(T));
        return reinterpret_cast<T*>(p_);
    }
    // The calling thread read or wrote element `i`.
    void note(std::size_t i, bool write) const {
        T* v = span(i + 1) + i;
        note_dispatch_access(*r_, v, sizeof(T), write);
        if (r_->ops) r_->ops->access(r_->ops->runner, *r_, v, sizeof(T), write);
    }
    std::uint32_t lane() const { return r_->ops ? r_->ops->lane(r_->ops->runner) : 0; }

    Byte* byte_ptr() const { return p_; }
    const Region* region() const { return r_; }

private:
    void check(std::size_t bytes) const {
        const auto a = reinterpret_cast<std::uintptr_t>(p_);
        if (!r_ || a < reinterpret_cast<std::uintptr_t>(r_->lo) || a + bytes > reinterpret_cast<std::uintptr_t>(r_->hi) ||
            a % alignof(T) != 0)
            fault_access(r_, p_, bytes, alignof(T));
    }
    Element at(std::ptrdiff_t i) const {
        const Ptr q = *this + i;
        q.check(sizeof(T));
        T& v = *reinterpret_cast<T*>(q.p_);
        if constexpr (std::is_const_v<T>) {
            note_dispatch_access(*r_, &v, sizeof(T), false);
            return v;
        } else return Ref<T>(v, r_);
    }

    Byte* p_ = nullptr;
    const Region* r_ = nullptr;
};

template <class T, class U>
Ptr<T> ptr_cast(const Ptr<U>& p) {
    static_assert(std::is_const_v<T> || !std::is_const_v<U>, "DCAST/TCAST must not cast away const");
    return Ptr<T>(p.byte_ptr(), p.region());
}

// A threadgroup pointer: what TPTR(T) means in the emulator, a type of its own as MSL's address spaces
// are (a threadgroup pointer where a device pointer is expected does not compile), over the group's
// race-checked threadgroup memory.
template <class T>
class TgPtr {
public:
    TgPtr() = default;
    explicit TgPtr(Ptr<T> p) : p_(p) {}
    template <class U>
        requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*>)
    TgPtr(const TgPtr<U>& o) : p_(o.ptr()) {}

    auto operator*() const { return *p_; }
    template <class I>
        requires std::is_integral_v<I>
    auto operator[](I i) const {
        return p_[i];
    }
    template <class I>
        requires std::is_integral_v<I>
    TgPtr operator+(I i) const {
        return TgPtr(p_ + i);
    }
    template <class I>
        requires std::is_integral_v<I>
    TgPtr& operator+=(I i) {
        p_ += i;
        return *this;
    }
    T* span(std::size_t n) const { return p_.span(n); }
    void note(std::size_t i, bool write) const { p_.note(i, write); }
    std::uint32_t lane() const { return p_.lane(); }
    const Ptr<T>& ptr() const { return p_; }

private:
    Ptr<T> p_;
};

template <class T, class U>
TgPtr<T> tg_ptr_cast(const TgPtr<U>& p) {
    return TgPtr<T>(ptr_cast<T>(p.ptr()));
}

// ---- fibers ---------------------------------------------------------------------------------------

// What every thread of a dispatch shares.
struct Launch {
    const char* kernel = "";
    KernelEntry entry = nullptr;
    std::vector<Region> buffers;          // by buffer index
    alignas(16) std::byte params[256]{};  // the parameter struct's bytes
    std::size_t params_size = 0;
    std::size_t threadgroup_bytes = 0;
    std::uint32_t groups[3] = {1, 1, 1};
    std::uint32_t threads[3] = {1, 1, 1};
};

// One GPU thread's built-ins and its view of the launch.
struct ThreadCtx {
    const Launch* launch;
    const Region* tg_region;
    const FiberOps* ops;
    std::uint32_t tgpig[3];
    std::uint32_t tid, lane, sg;

    template <class T>
    Ptr<T> buffer(std::size_t index) const {
        const Region& r = launch->buffers[index];
        return Ptr<T>(r.lo, &r);
    }
    TgPtr<float> threadgroup_memory() const { return TgPtr<float>(Ptr<float>(tg_region->lo, tg_region)); }
    template <class P>
    const P& params() const {
        return *reinterpret_cast<const P*>(launch->params);
    }
};

class GroupRunner;
inline thread_local GroupRunner* tls_runner = nullptr;

// Runs threadgroups of one dispatch on the calling OS thread. Stacks are kept between groups.
class GroupRunner {
public:
    // $FORGE_EMU_SEED seeds the order threads and threadgroups run in (a fixed default: runs repeat).
    GroupRunner() {
        if (const char* seed = std::getenv("FORGE_EMU_SEED")) random_ = std::strtoull(seed, nullptr, 0);
    }
    GroupRunner(const GroupRunner&) = delete;
    GroupRunner& operator=(const GroupRunner&) = delete;

    // Runs group `g` of `launch` to completion; a fault or a divergence throws forge::Error.
    void run(const Launch& launch, const std::uint32_t g[3]) {
        const std::uint32_t n = launch.threads[0] * launch.threads[1] * launch.threads[2];
        prepare(n, launch.threadgroup_bytes);
        tg_region_.name = "threadgroup memory";
        tg_region_.lo = tg_mem_.data();
        tg_region_.hi = tg_mem_.data() + launch.threadgroup_bytes;
        tg_region_.ops = &ops_;
        tg_region_.threadgroup = true;
        // Threadgroup memory starts as NaN bytes so a read before any write shows up in results.
        if (launch.threadgroup_bytes) std::memset(tg_mem_.data(), 0xff, launch.threadgroup_bytes);
        launch_ = &launch;
        ++group_run_;
        group_ = g[0] + launch.groups[0] * (g[1] + launch.groups[1] * g[2]);
        tg_epoch_ = device_epoch_ = 0;
        sg_epochs_.assign((n + kSimdWidth - 1) / kSimdWidth, 0);
        if (tg_shadow_.size() < launch.threadgroup_bytes / 2 + 1) tg_shadow_.resize(launch.threadgroup_bytes / 2 + 1);
        for (std::uint32_t t = 0; t < n; ++t) {
            Fiber& f = fibers_[t];
            f.ctx = ThreadCtx{&launch, &tg_region_, &ops_, {g[0], g[1], g[2]}, t, t % kSimdWidth, t / kSimdWidth};
            f.state = State::ready;
            f.op = SimdOp::none;
            f.fault.clear();
            start_fiber(f);
        }
        n_ = n;
        struct Current {
            explicit Current(GroupRunner* r) { tls_runner = r; }
            ~Current() { tls_runner = nullptr; }
        } current(this);
        schedule(launch, g);
    }

    // Called from kernel code (through the shim's FiberOps) on the current fiber.
    std::uint32_t simd_op(SimdOp op, std::uint32_t bits, ValueKind kind, std::uint32_t arg, std::uint32_t site) {
        Fiber& f = *current_;
        f.op = op;
        f.bits = bits;
        f.kind = kind;
        f.arg = arg;
        f.site = site;
        f.state = State::wait_simd;
        yield();
        return f.bits;
    }
    void simd_gather(const std::uint32_t* mine, std::uint32_t* all, std::uint32_t words, std::uint32_t site) {
        Fiber& f = *current_;
        f.src = mine;
        f.dst = all;
        simd_op(SimdOp::matrix, 0, ValueKind::u32, words, site);
    }
    void threadgroup_barrier(unsigned flags, std::uint32_t site) {
        current_->barrier_flags = flags;
        current_->site = site;
        current_->state = State::wait_barrier;
        yield();
    }

    // The operations a kernel's Refs and Ptrs report to (device regions of writable buffers get it).
    const FiberOps& ops() const { return ops_; }
    // A dispatch begins: device-memory records of the last one are dropped.
    void begin_dispatch() { device_shadow_.clear(); }

    // Race detection: the current thread read or wrote `bytes` at `p` of `region`. Another thread's access
    // is ordered before it by a barrier of the group that covers the memory (mem_threadgroup or
    // mem_device) since, or, between lanes of one simdgroup, by a simdgroup_barrier since; accesses of two
    // threadgroups of one dispatch are never ordered.
    void access(const Region& region, const void* p, std::size_t bytes, bool write) {
        const Accessor me{current_->ctx.tid, group_, region.threadgroup ? tg_epoch_ : device_epoch_,
                          sg_epochs_[current_->ctx.tid / kSimdWidth]};
        const auto at = std::size_t(static_cast<const std::byte*>(p) - region.lo);
        for (std::size_t unit = at / 2; unit < (at + bytes + 1) / 2; ++unit) {
            Shadow& sh = region.threadgroup ? tg_shadow_[unit] : device_shadow_[reinterpret_cast<std::uintptr_t>(region.lo) / 2 + unit];
            if (region.threadgroup && sh.group_run != group_run_) sh = Shadow{group_run_, {}, {}};
            const auto race = [&](const char* what, const Accessor& other) {
                const std::string where = region.threadgroup ? "threadgroup memory" : "'" + region.name + "'";
                const std::string them = other.group == me.group ? "thread " + std::to_string(other.thread)
                                                                 : "thread " + std::to_string(other.thread) + " of another threadgroup";
                throw KernelFault{"race on " + where + " at byte offset " + std::to_string(unit * 2) + ": thread " +
                                  std::to_string(me.thread) + " " + what + " " + them +
                                  (other.group == me.group ? " with no barrier between (threadgroup_barrier with " +
                                                                 std::string(region.threadgroup ? "mem_threadgroup" : "mem_device") +
                                                                 ", or simdgroup_barrier within a simdgroup)"
                                                           : " (threadgroups of one dispatch run in no order)")};
            };
            if (!ordered(sh.writer, me)) race(write ? "overwrites what was written by" : "reads what was written by", sh.writer);
            if (write) {
                for (const Accessor& r : sh.readers)
                    if (!ordered(r, me)) race("overwrites what was read by", r);
                sh.writer = me;
            } else if (!(sh.readers[0] == me) && !(sh.readers[1] == me)) {
                // Two readers a later write could race with are enough to find a race if there is one; a
                // reader before a barrier of the group no longer can, and gives up its slot.
                for (Accessor& slot : sh.readers)
                    if (slot.thread == kNobody || (slot.group == me.group && slot.epoch < me.epoch)) {
                        slot = me;
                        break;
                    }
            }
        }
    }
    std::uint32_t current_lane() const { return current_->ctx.lane; }

    // The next draw of the scheduling order's generator (splitmix64).
    std::uint64_t random() {
        std::uint64_t z = (random_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // 0..n-1 in a drawn order.
    void shuffled(std::vector<std::uint32_t>& order, std::uint32_t n) {
        order.resize(n);
        for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
        for (std::uint32_t i = n; i > 1; --i) std::swap(order[i - 1], order[random() % i]);
    }

private:
    enum class State : std::uint8_t { ready, wait_simd, wait_barrier, done, faulted };

    static constexpr std::uint32_t kNobody = ~0u;
    // One thread's access: which thread of which threadgroup, in which barrier epoch (of the memory's
    // kind) and simdgroup-barrier epoch of its group run.
    struct Accessor {
        std::uint32_t thread = kNobody, group = 0, epoch = 0, sg_epoch = 0;
        bool operator==(const Accessor& o) const { return thread == o.thread && group == o.group && epoch == o.epoch; }
    };
    // Who last wrote and who read a 2-byte unit of memory (threadgroup memory: in one group run).
    struct Shadow {
        std::uint32_t group_run = 0;
        Accessor writer;
        Accessor readers[2];
    };
    // Whether `earlier`'s access is ordered before `now`'s.
    static bool ordered(const Accessor& earlier, const Accessor& now) {
        if (earlier.thread == kNobody || (earlier.thread == now.thread && earlier.group == now.group)) return true;
        if (earlier.group != now.group) return false;
        if (earlier.epoch < now.epoch) return true;
        return earlier.thread / kSimdWidth == now.thread / kSimdWidth && earlier.sg_epoch < now.sg_epoch;
    }

    struct Fiber {
#ifdef FORGE_EMU_ASM_SWITCH
        void* sp = nullptr;
#else
        ucontext_t ctx_uc{};
#endif
        ThreadCtx ctx{};
        State state = State::done;
        SimdOp op = SimdOp::none;
        ValueKind kind = ValueKind::f32;
        std::uint32_t bits = 0, arg = 0, site = 0;
        const std::uint32_t* src = nullptr;  // a gather's own words, and where all lanes' go
        std::uint32_t* dst = nullptr;
        unsigned barrier_flags = 0;
        std::string fault;
        std::byte* stack = nullptr;
    };

#ifdef FORGE_EMU_ASAN
    static constexpr std::size_t kStackBytes = 512 * 1024;  // instrumented frames are larger
#else
    static constexpr std::size_t kStackBytes = 64 * 1024;
#endif

    void prepare(std::uint32_t n, std::size_t tg_bytes) {
        if (fibers_.size() < n) {
            const std::size_t old = fibers_.size();
            fibers_.resize(n);
            stacks_.resize(n);
            for (std::size_t i = old; i < n; ++i) {
                stacks_[i] = std::make_unique<std::byte[]>(kStackBytes);
            }
        }
        for (std::uint32_t i = 0; i < n; ++i) fibers_[i].stack = stacks_[i].get();
        if (tg_mem_.size() < tg_bytes) tg_mem_.resize(tg_bytes);
    }

    // First code of every fiber; never returns (its last act is to switch back to the scheduler).
    static void trampoline() {
        GroupRunner* self = tls_runner;
        self->finish_switch();
        Fiber& f = *self->current_;
        try {
            self->launch_->entry(f.ctx);
            f.state = State::done;
        } catch (const KernelFault& e) {
            f.fault = e.what;
            f.state = State::faulted;
        } catch (const std::exception& e) {
            f.fault = e.what();
            f.state = State::faulted;
        }
        self->switch_to_scheduler(true);
    }

    void start_fiber(Fiber& f) {
#ifdef FORGE_EMU_ASAN
        __asan_unpoison_memory_region(f.stack, kStackBytes);  // a previous fiber's frames may be poisoned
#endif
#ifdef FORGE_EMU_ASM_SWITCH
        // A stack that forge_emu_switch "returns" into the trampoline from: below a 16-byte aligned top, a
        // dummy return address, the trampoline's address, six zeroed registers and the default MXCSR and
        // x87 control word.
        auto top = (reinterpret_cast<std::uintptr_t>(f.stack) + kStackBytes) & ~std::uintptr_t(15);
        auto* w = reinterpret_cast<std::uint64_t*>(top);
        w[-1] = 0;
        w[-2] = reinterpret_cast<std::uint64_t>(&trampoline);
        for (int i = 3; i <= 8; ++i) w[-i] = 0;
        const std::uint32_t control[2] = {0x1f80u, 0x037fu};
        std::memcpy(&w[-9], control, 8);
        f.sp = &w[-9];
#else
        getcontext(&f.ctx_uc);
        f.ctx_uc.uc_stack.ss_sp = f.stack;
        f.ctx_uc.uc_stack.ss_size = kStackBytes;
        f.ctx_uc.uc_link = nullptr;
        makecontext(&f.ctx_uc, &trampoline, 0);
#endif
    }

    void resume(Fiber& f) {
        current_ = &f;
#ifdef FORGE_EMU_ASAN
        __sanitizer_start_switch_fiber(&fake_stack_, f.stack, kStackBytes);
#endif
#ifdef FORGE_EMU_ASM_SWITCH
        forge_emu_switch(&sched_sp_, f.sp);
#else
        swapcontext(&sched_uc_, &f.ctx_uc);
#endif
#ifdef FORGE_EMU_ASAN
        __sanitizer_finish_switch_fiber(fake_stack_, nullptr, nullptr);
#endif
        current_ = nullptr;
    }
    void yield() { switch_to_scheduler(false); }
    void switch_to_scheduler([[maybe_unused]] bool exiting) {
#ifdef FORGE_EMU_ASAN
        void* fake = nullptr;
        __sanitizer_start_switch_fiber(exiting ? nullptr : &fake, sched_stack_bottom_, sched_stack_size_);
#endif
#ifdef FORGE_EMU_ASM_SWITCH
        forge_emu_switch(&current_->sp, sched_sp_);
#else
        swapcontext(&current_->ctx_uc, &sched_uc_);
#endif
#ifdef FORGE_EMU_ASAN
        __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    }
    void finish_switch() {
#ifdef FORGE_EMU_ASAN
        __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom_, &sched_stack_size_);
#endif
    }

    [[noreturn]] void fail(const Launch& launch, const std::uint32_t g[3], const std::string& what) {
        throw Error("metal emulator: kernel '" + std::string(launch.kernel) + "', threadgroup (" + std::to_string(g[0]) +
                    "," + std::to_string(g[1]) + "," + std::to_string(g[2]) + "): " + what);
    }

    void schedule(const Launch& launch, const std::uint32_t g[3]) {
        for (;;) {
            shuffled(order_, n_);
            for (const std::uint32_t t : order_) {
                Fiber& f = fibers_[t];
                if (f.state != State::ready) continue;
                resume(f);
                if (f.state == State::faulted) fail(launch, g, "thread " + std::to_string(t) + ": " + f.fault);
            }
            bool progressed = false, all_done = true;
            for (std::uint32_t s = 0; s * kSimdWidth < n_; ++s) progressed |= resolve_simdgroup(launch, g, s);
            for (std::uint32_t t = 0; t < n_; ++t) all_done &= fibers_[t].state == State::done;
            if (all_done) return;
            if (progressed) continue;
            // Nothing else can move: every live thread must be waiting on the threadgroup barrier.
            std::uint32_t at_barrier = 0, returned = 0;
            for (std::uint32_t t = 0; t < n_; ++t) {
                at_barrier += fibers_[t].state == State::wait_barrier;
                returned += fibers_[t].state == State::done;
            }
            if (at_barrier + returned == n_ && returned == 0) {
                for (std::uint32_t t = 1; t < n_; ++t)
                    if (fibers_[t].site != fibers_[0].site)
                        fail(launch, g, "thread 0 waits at the threadgroup_barrier of line " + std::to_string(fibers_[0].site) +
                                            " and thread " + std::to_string(t) + " at line " + std::to_string(fibers_[t].site) +
                                            " of the library (divergent barrier)");
                unsigned flags = 0;
                for (std::uint32_t t = 0; t < n_; ++t) fibers_[t].state = State::ready, flags |= fibers_[t].barrier_flags;
                tg_epoch_ += (flags & kMemThreadgroup) != 0;
                device_epoch_ += (flags & kMemDevice) != 0;
                continue;
            }
            if (at_barrier + returned == n_)
                fail(launch, g, "threadgroup_barrier reached by " + std::to_string(at_barrier) + " of " +
                                    std::to_string(n_) + " threads; " + std::to_string(returned) +
                                    " returned without reaching it (divergent barrier)");
            fail(launch, g, describe_deadlock());
        }
    }

    // Completes a simdgroup operation once every live lane of simdgroup `s` waits on one.
    bool resolve_simdgroup(const Launch& launch, const std::uint32_t g[3], std::uint32_t s) {
        const std::uint32_t lo = s * kSimdWidth, hi = std::min(n_, lo + kSimdWidth);
        SimdOp op = SimdOp::none;
        std::uint32_t waiting = 0, live = 0, site = 0;
        for (std::uint32_t t = lo; t < hi; ++t) {
            const Fiber& f = fibers_[t];
            if (f.state == State::done) continue;
            ++live;
            if (f.state != State::wait_simd) continue;
            ++waiting;
            if (op == SimdOp::none) op = f.op, site = f.site;
            else if (op != f.op || site != f.site)
                fail(launch, g, "simdgroup " + std::to_string(s) + ": lanes wait on both " + simd_op_name(op) + " at line " +
                                    std::to_string(site) + " and " + simd_op_name(f.op) + " at line " + std::to_string(f.site) +
                                    " of the library (divergent simdgroup operation)");
        }
        if (waiting == 0 || waiting != live) {
            if (waiting != 0) {
                for (std::uint32_t t = lo; t < hi; ++t)
                    if (fibers_[t].state == State::wait_barrier)
                        fail(launch, g, "simdgroup " + std::to_string(s) + ": lanes wait on " + simd_op_name(op) +
                                            " while lane " + std::to_string(t - lo) +
                                            " waits on threadgroup_barrier (divergent simdgroup operation)");
            }
            return false;
        }
        if (op == SimdOp::matrix) {
            if (hi - lo != kSimdWidth || waiting != kSimdWidth)
                fail(launch, g, "simdgroup " + std::to_string(s) + ": " + simd_op_name(op) + " at line " + std::to_string(site) +
                                    " with " + std::to_string(waiting) + " of 32 lanes (a simdgroup matrix needs every lane)");
            const std::uint32_t words = fibers_[lo].arg;
            for (std::uint32_t t = lo; t < hi; ++t) {
                Fiber& f = fibers_[t];
                for (std::uint32_t u = lo; u < hi; ++u) std::memcpy(f.dst + (u - lo) * words, fibers_[u].src, words * 4);
                f.state = State::ready;
            }
            return true;
        }
        std::uint32_t bits[kSimdWidth] = {};
        bool active[kSimdWidth] = {};
        for (std::uint32_t t = lo; t < hi; ++t)
            if (fibers_[t].state == State::wait_simd) bits[t - lo] = fibers_[t].bits, active[t - lo] = true;
        for (std::uint32_t t = lo; t < hi; ++t) {
            Fiber& f = fibers_[t];
            if (f.state != State::wait_simd) continue;
            f.bits = combine(op, f.kind, bits, active, t - lo, f.arg);
            f.state = State::ready;
        }
        if (op == SimdOp::barrier) ++sg_epochs_[s];
        return true;
    }

    template <class T>
    static T as(std::uint32_t b) {
        T v;
        std::memcpy(&v, &b, 4);
        return v;
    }
    template <class T>
    static std::uint32_t bits_of(T v) {
        std::uint32_t b;
        std::memcpy(&b, &v, 4);
        return b;
    }

    template <class T>
    static std::uint32_t reduce(SimdOp op, const std::uint32_t* bits, const bool* active) {
        T acc{};
        bool first = true;
        for (std::uint32_t l = 0; l < kSimdWidth; ++l) {
            if (!active[l]) continue;
            const T v = as<T>(bits[l]);
            if (first) acc = v, first = false;
            else if (op == SimdOp::sum) acc = acc + v;
            else if (op == SimdOp::max) acc = v > acc ? v : acc;
            else acc = v < acc ? v : acc;
        }
        return bits_of(acc);
    }

    static std::uint32_t combine(SimdOp op, ValueKind kind, const std::uint32_t* bits, const bool* active,
                                 std::uint32_t lane, std::uint32_t arg) {
        switch (op) {
            case SimdOp::sum:
            case SimdOp::max:
            case SimdOp::min:
                if (kind == ValueKind::f32) return reduce<float>(op, bits, active);
                if (kind == ValueKind::i32) return reduce<std::int32_t>(op, bits, active);
                return reduce<std::uint32_t>(op, bits, active);
            case SimdOp::shuffle:
            case SimdOp::broadcast: return bits[arg % kSimdWidth];
            case SimdOp::shuffle_xor: return bits[(lane ^ arg) % kSimdWidth];
            case SimdOp::barrier:
            case SimdOp::matrix:
            case SimdOp::none: break;
        }
        return bits[lane];
    }

    std::string describe_deadlock() const {
        std::uint32_t counts[5] = {};
        for (std::uint32_t t = 0; t < n_; ++t) ++counts[int(fibers_[t].state)];
        return "threads cannot proceed: " + std::to_string(counts[int(State::wait_barrier)]) +
               " at threadgroup_barrier, " + std::to_string(counts[int(State::wait_simd)]) +
               " at simdgroup operations, " + std::to_string(counts[int(State::done)]) + " returned (divergent barrier)";
    }

    FiberOps ops_{this,
                  [](void* r, SimdOp op, std::uint32_t bits, ValueKind kind, std::uint32_t arg, std::uint32_t site) {
                      return static_cast<GroupRunner*>(r)->simd_op(op, bits, kind, arg, site);
                  },
                  [](void* r, unsigned flags, std::uint32_t site) { static_cast<GroupRunner*>(r)->threadgroup_barrier(flags, site); },
                  [](void* r, const std::uint32_t* mine, std::uint32_t* all, std::uint32_t words, std::uint32_t site) {
                      static_cast<GroupRunner*>(r)->simd_gather(mine, all, words, site);
                  },
                  [](void* r, const Region& region, const void* p, std::size_t bytes, bool write) {
                      static_cast<GroupRunner*>(r)->access(region, p, bytes, write);
                  },
                  [](void* r) { return static_cast<GroupRunner*>(r)->current_lane(); }};
    std::vector<Fiber> fibers_;
    std::vector<std::unique_ptr<std::byte[]>> stacks_;
    std::vector<std::byte> tg_mem_;
    Region tg_region_;
    std::vector<Shadow> tg_shadow_;
    std::unordered_map<std::uintptr_t, Shadow> device_shadow_;  // by address / 2, for the current dispatch
    std::uint32_t group_run_ = 0, group_ = 0, tg_epoch_ = 0, device_epoch_ = 0;
    std::vector<std::uint32_t> sg_epochs_;
    std::vector<std::uint32_t> order_;
    std::uint64_t random_ = 0x5eed;
    const Launch* launch_ = nullptr;
    Fiber* current_ = nullptr;
    std::uint32_t n_ = 0;
#ifdef FORGE_EMU_ASM_SWITCH
    void* sched_sp_ = nullptr;
#else
    ucontext_t sched_uc_{};
#endif
#ifdef FORGE_EMU_ASAN
    void* fake_stack_ = nullptr;
    const void* sched_stack_bottom_ = nullptr;
    std::size_t sched_stack_size_ = 0;
#endif
};

}  // namespace forge::metal::emu
