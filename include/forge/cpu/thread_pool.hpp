#pragma once
// A fixed pool of workers that split a range of rows between them. Threads are created once per model,
// never per token. A dispatch publishes the task and bumps an atomic generation counter; workers spin on
// it briefly (a decode step dispatches every few microseconds, far less than a futex wake-up costs) and
// then block on it, so an idle pool burns no CPU. Dispatch allocates nothing.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include "forge/cpu/simd/x86.hpp"
#endif

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

    // Calls fn(thread, n_threads) once on every thread of the pool (the caller is thread 0) and waits.
    template <class Fn>
    void run(Fn&& fn) {
        if (n_ == 1) {
            fn(0, 1);
            return;
        }
        auto call = [&](int i) { fn(i, n_); };
        task_ = [](void* ctx, int i) { (*static_cast<decltype(call)*>(ctx))(i); };
        ctx_ = &call;
        pending_.store(n_ - 1, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        call(0);
        wait_for(pending_, [](int v) { return v == 0; });
    }

    // Calls fn(begin, end) on disjoint chunks covering [0, count), one chunk per thread, and waits.
    // `grain` keeps chunk boundaries on multiples (e.g. rows a kernel handles together).
    template <class Fn>
    void parallel_for(std::size_t count, Fn&& fn, std::size_t grain = 1) {
        if (n_ == 1 || count <= grain) {
            if (count) fn(std::size_t(0), count);
            return;
        }
        const std::size_t units = (count + grain - 1) / grain;
        run([&](int i, int n) {
            const std::size_t b = std::min(count, units * std::size_t(i) / std::size_t(n) * grain);
            const std::size_t e = std::min(count, units * std::size_t(i + 1) / std::size_t(n) * grain);
            if (b < e) fn(b, e);
        });
    }

private:
    // Spins until done(a) (kSpins pauses at most), then sleeps on the atomic until it changes.
    template <class T, class Done>
    static T wait_for(std::atomic<T>& a, Done done) {
        for (int i = 0; i < kSpins; ++i) {
            const T v = a.load(std::memory_order_acquire);
            if (done(v)) return v;
            spin_pause();
        }
        for (;;) {
            const T v = a.load(std::memory_order_acquire);
            if (done(v)) return v;
            a.wait(v, std::memory_order_acquire);
        }
    }

    void work(int index) {
        std::uint32_t seen = 0;
        for (;;) {
            seen = wait_for(generation_, [seen](std::uint32_t g) { return g != seen; });
            if (stop_.load(std::memory_order_relaxed)) return;
            task_(ctx_, index);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
        }
    }

    static constexpr int kSpins = 1000;  // ~50 µs of pause: longer than the gaps between a decode step's dispatches

    int n_;
    std::vector<std::thread> workers_;
    // Written before the generation bump (release) and read after seeing it (acquire).
    void (*task_)(void*, int) = nullptr;
    void* ctx_ = nullptr;
    alignas(64) std::atomic<std::uint32_t> generation_{0};
    alignas(64) std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
};

}  // namespace forge::cpu
