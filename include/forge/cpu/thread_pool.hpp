#pragma once
// A fixed pool of workers that split a range of rows between them. Threads are created once per model,
// never per token; a parallel_for costs two condition-variable handshakes.
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace forge::cpu {

class ThreadPool {
public:
    explicit ThreadPool(int threads = 1) : n_(std::max(1, threads)) {
        for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { work(i); });
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    ~ThreadPool() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
            ++generation_;
        }
        start_.notify_all();
        for (auto& t : workers_) t.join();
    }

    int size() const { return n_; }

    // Calls fn(begin, end) on disjoint chunks covering [0, count), one chunk per thread, and waits.
    // `grain` keeps chunk boundaries on multiples (e.g. rows a kernel handles together).
    template <class Fn>
    void parallel_for(std::size_t count, Fn&& fn, std::size_t grain = 1) {
        if (n_ == 1 || count <= grain) {
            if (count) fn(std::size_t(0), count);
            return;
        }
        const std::size_t units = (count + grain - 1) / grain;
        const auto chunk = [&](int i) {
            const std::size_t b = std::min(count, units * i / n_ * grain);
            const std::size_t e = std::min(count, units * (i + 1) / n_ * grain);
            if (b < e) fn(b, e);
        };
        {
            std::lock_guard lock(mu_);
            task_ = chunk;
            pending_ = n_ - 1;
            ++generation_;
        }
        start_.notify_all();
        chunk(0);
        std::unique_lock lock(mu_);
        done_.wait(lock, [&] { return pending_ == 0; });
        task_ = nullptr;
    }

private:
    void work(int index) {
        std::size_t seen = 0;
        for (;;) {
            std::function<void(int)> task;
            {
                std::unique_lock lock(mu_);
                start_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                if (stop_) return;
                task = task_;
            }
            task(index);
            {
                std::lock_guard lock(mu_);
                if (--pending_ == 0) done_.notify_one();
            }
        }
    }

    int n_;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable start_, done_;
    std::function<void(int)> task_;
    int pending_ = 0;
    std::size_t generation_ = 0;
    bool stop_ = false;
};

}  // namespace forge::cpu
