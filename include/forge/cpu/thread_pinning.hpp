#pragma once
// Which CPU each pinned worker thread runs on (ThreadPool with pin = true, ModelOptions::pin_threads).
// The pools of one process share one tally, so two models pinned side by side take different CPUs while
// there are enough: each worker takes the CPU with the fewest pinned workers, one hardware thread of every
// core before a second thread of any core, and the CPU its pool's caller was on last. The caller itself
// stays unpinned: it is the user's thread. Other processes are not seen, which is why pinning is asked
// for, not the default (docs/performance.md has what it measured).
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace forge::cpu {

class CpuTally {
public:
    static CpuTally& instance() {
        static CpuTally t;
        return t;
    }

    // CPUs for `workers` threads of a pool whose caller is on `caller_cpu` (-1: unknown), counted taken
    // until release(); empty where pinning cannot help: fewer usable CPUs than the pool's threads (workers
    // + the caller), or no way to pin here.
    std::vector<int> take(int workers, int caller_cpu) {
        std::lock_guard lock(mu_);
        std::vector<int> chosen;
        if (order_.empty() || workers + 1 > int(order_.size())) return chosen;
        // Fewest pinned workers first, then not the caller's CPU, then order_'s order (first threads of
        // cores before second ones).
        const auto key = [&](std::size_t j) { return std::tuple(taken_[j], order_[j].cpu == caller_cpu); };
        for (int w = 0; w < workers; ++w) {
            std::size_t best = 0;
            for (std::size_t i = 1; i < order_.size(); ++i)
                if (key(i) < key(best)) best = i;
            ++taken_[best];
            chosen.push_back(order_[best].cpu);
        }
        return chosen;
    }

    void release(const std::vector<int>& cpus) {
        std::lock_guard lock(mu_);
        for (const int c : cpus)
            for (std::size_t i = 0; i < order_.size(); ++i)
                if (order_[i].cpu == c && taken_[i] > 0) --taken_[i];
    }

    // The CPUs the process may run on, in the order workers take them.
    std::vector<int> usable() const {
        std::vector<int> cpus;
        for (const Cpu& c : order_) cpus.push_back(c.cpu);
        return cpus;
    }

private:
    struct Cpu {
        int cpu;
        int sibling;  // its rank among the usable hardware threads of its core: 0 for the first
    };

    CpuTally() {
#if defined(__linux__)
        cpu_set_t allowed;
        CPU_ZERO(&allowed);
        if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
        std::vector<std::tuple<int, int, int>> cores;  // (package, core, cpu)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &allowed)) cores.emplace_back(topology(c, "physical_package_id"), topology(c, "core_id"), c);
        for (const auto& [package, core, cpu] : cores) {
            int sibling = 0;
            for (const auto& [p, k, other] : cores) sibling += p == package && k == core && other < cpu && core >= 0;
            order_.push_back({cpu, sibling});
        }
        std::stable_sort(order_.begin(), order_.end(), [](const Cpu& a, const Cpu& b) { return a.sibling < b.sibling; });
        taken_.assign(order_.size(), 0);
#endif
    }

    // A number from /sys/devices/system/cpu/cpuN/topology/, or -1 where there is none (then every CPU
    // counts as a core of its own).
    static int topology(int cpu, const char* name) {
        char path[96];
        std::snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, name);
        std::FILE* f = std::fopen(path, "r");
        if (!f) return -1;
        int v = -1;
        if (std::fscanf(f, "%d", &v) != 1) v = -1;
        std::fclose(f);
        return v;
    }

    std::mutex mu_;
    std::vector<Cpu> order_;
    std::vector<int> taken_;  // pinned workers per entry of order_
};

// Pins thread t to `cpu`; false where that is refused or not possible here.
inline bool pin_thread(std::thread& t, int cpu) {
#if defined(__linux__)
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(t.native_handle(), sizeof s, &s) == 0;
#else
    (void)t, (void)cpu;
    return false;
#endif
}

// The only CPU thread t may run on, or -1 if it may run on several (or that cannot be told).
inline int pinned_cpu(std::thread& t) {
#if defined(__linux__)
    cpu_set_t s;
    CPU_ZERO(&s);
    if (pthread_getaffinity_np(t.native_handle(), sizeof s, &s) != 0 || CPU_COUNT(&s) != 1) return -1;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &s)) return c;
#else
    (void)t;
#endif
    return -1;
}

// The CPU the calling thread runs on now, or -1 where that cannot be told.
inline int current_cpu() {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

}  // namespace forge::cpu
