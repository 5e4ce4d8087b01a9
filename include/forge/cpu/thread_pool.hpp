#pragma once
// A fixed pool of workers that split work between them. Threads are created once per model, never per
// token, and a dispatch allocates nothing. A dispatch publishes the task and bumps an atomic generation
// counter; workers spin on it briefly (a decode step dispatches every few microseconds, far less than a
// futex wake-up costs) and then sleep on it, so an idle pool burns no CPU.
//
// The work is cut into more parts than threads and every thread, the caller included, claims parts
// until none are left. So a worker the OS has not scheduled yet (a busy machine) delays nothing: the
// others take its parts. Parts shrink as the dispatch goes on (part_begin), so that the threads run out
// of work at nearly the same moment: threads that share the memory bandwidth do not stream at one speed,
// and with equal parts the fastest waited up to a whole part for the slowest. Which thread computes a
// part never changes the result.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "forge/cpu/simd/x86.hpp"

namespace forge::cpu {

// A hint to the core that this is a spin-wait loop.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

class ThreadPool {
public:
    static constexpr int kPartsPerThread = 4;

    explicit ThreadPool(int threads = 1) : n_(std::max(1, threads)) {
        workers_.reserve(std::size_t(n_ - 1));
        for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { work(i); });
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    ~ThreadPool() {
        stop_.store(true, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        for (auto& t : workers_) t.join();
    }

    int size() const { return n_; }

    // Calls fn(part, thread) once for every part in [0, parts), spread over the pool's threads (the
    // caller is thread 0; `thread` < size() indexes per-thread scratch), and waits for all of them.
    template <class Fn>
    void run(int parts, Fn&& fn) {
        if (parts <= 0) return;
        if (n_ == 1 || parts == 1) {
            for (int p = 0; p < parts; ++p) fn(p, 0);
            return;
        }
        dispatch_(*this, parts, [](void* ctx, int part, int thread) { (*static_cast<Fn*>(ctx))(part, thread); }, &fn);
    }

    // Calls fn(begin, end) on disjoint chunks covering [0, count) and waits. `grain` keeps chunk
    // boundaries on multiples (e.g. rows a kernel handles together).
    template <class Fn>
    void parallel_for(std::size_t count, Fn&& fn, std::size_t grain = 1) {
        if (count == 0) return;
        const std::size_t units = (count + grain - 1) / grain;
        const int parts = parts_for(units);
        run(parts, [&](int p, int) {
            const std::size_t b = std::min(count, part_begin(p, parts, units) * grain);
            const std::size_t e = std::min(count, part_begin(p + 1, parts, units) * grain);
            if (b < e) fn(b, e);
        });
    }

    // How many parts run() should cut `units` of work into.
    int parts_for(std::size_t units) const {
        return int(std::min<std::size_t>(units, std::size_t(n_) * kPartsPerThread));
    }

    // Where part p of `parts` (as parts_for gave) begins in `units` of work; part_begin(parts) is `units`.
    // A full set of parts is kPartsPerThread rounds of one part a thread, each round half the work of
    // the round before (8/15, 4/15, 2/15 and 1/15 of it), so the parts claimed last are the smallest;
    // fewer parts than that are equal.
    std::size_t part_begin(int p, int parts, std::size_t units) const {
        if (p >= parts) return units;
        const auto P = std::size_t(p), n = std::size_t(n_);
        if (parts != n_ * kPartsPerThread) return units * P / std::size_t(parts);
        constexpr std::size_t R = kPartsPerThread, whole = (std::size_t(1) << R) - 1;
        const std::size_t round = P / n, k = P % n;
        // In units of one part of the last round: the rounds before this one, then k parts of this one.
        const std::size_t done = n * (whole + 1 - (std::size_t(1) << (R - round))) + (std::size_t(1) << (R - 1 - round)) * k;
        return units * done / (whole * n);
    }

private:
    // run()'s dispatch: publish the task, wake the workers, claim parts, wait. It is called through a
    // pointer set where the pool was made, so every wait and wake-up of one pool runs the same copy of
    // this code: a kernel set compiled apart (cpu/dispatch/) has its own copies of inline functions, and
    // with them its own copy of the table in which libstdc++'s atomic wait counts sleeping waiters, so a
    // wake-up from there would not see a worker sleeping here.
    static void dispatch(ThreadPool& pool, int parts, void (*task)(void*, int, int), void* ctx) {
        pool.task_ = task;
        pool.ctx_ = ctx;
        pool.parts_ = parts;
        pool.next_.store(0, std::memory_order_relaxed);
        pool.done_.store(0, std::memory_order_relaxed);
        const std::uint32_t g = pool.generation_.fetch_add(1, std::memory_order_seq_cst) + 1;
        pool.generation_.notify_all();
        pool.claim(0);
        wait_for(pool.done_, [&](int d) { return d == parts; });
        // Close this dispatch, then wait for workers that entered it: after this none can still be
        // reading task_ or ctx_, so the next dispatch may replace them.
        pool.closed_.store(g, std::memory_order_seq_cst);
        wait_for(pool.active_, [](int a) { return a == 0; });
    }

    // Spins until done(a) (kSpins pauses at most), then sleeps on the atomic until it changes. The loads
    // are seq_cst: closing a dispatch (store closed_, then load active_) pairs with a worker entering it
    // (increment active_, then load closed_), so one of the two always sees the other.
    template <class T, class Done>
    static T wait_for(std::atomic<T>& a, Done done) {
        for (int i = 0; i < kSpins; ++i) {
            const T v = a.load(std::memory_order_seq_cst);
            if (done(v)) return v;
            spin_pause();
        }
        for (;;) {
            const T v = a.load(std::memory_order_seq_cst);
            if (done(v)) return v;
            a.wait(v, std::memory_order_seq_cst);
        }
    }

    // Runs parts until none are left.
    void claim(int thread) {
        for (int p; (p = next_.fetch_add(1, std::memory_order_relaxed)) < parts_;) {
            task_(ctx_, p, thread);
            if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == parts_) done_.notify_one();
        }
    }

    void work(int index) {
        std::uint32_t seen = 0;
        for (;;) {
            seen = wait_for(generation_, [seen](std::uint32_t g) { return g != seen; });
            if (stop_.load(std::memory_order_relaxed)) return;
            // Enter the dispatch unless it is already closed (its parts all done by others).
            active_.fetch_add(1, std::memory_order_seq_cst);
            if (std::int32_t(closed_.load(std::memory_order_seq_cst) - seen) < 0) claim(index);
            if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) active_.notify_one();
        }
    }

    static constexpr int kSpins = 1000;  // ~50 µs of pause: longer than the gaps between a decode step's dispatches

    int n_;
    void (*dispatch_)(ThreadPool&, int, void (*)(void*, int, int), void*) = &ThreadPool::dispatch;
    std::vector<std::thread> workers_;
    // Written before the generation bump and read after seeing it.
    void (*task_)(void*, int, int) = nullptr;
    void* ctx_ = nullptr;
    int parts_ = 0;
    alignas(64) std::atomic<std::uint32_t> generation_{0};
    std::atomic<std::uint32_t> closed_{0};  // the last dispatch whose parts are all done
    alignas(64) std::atomic<int> next_{0};
    alignas(64) std::atomic<int> done_{0};
    std::atomic<int> active_{0};  // workers inside a dispatch
    std::atomic<bool> stop_{false};
};

}  // namespace forge::cpu
