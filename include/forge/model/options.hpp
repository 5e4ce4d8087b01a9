#pragma once
// How a model is opened (backend, context, threads, batch), and the rules for those numbers, written
// once for the CPU and the GPU path. Every number is checked before anything is allocated for it.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "forge/core/error.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge {

// What computes a model: the CPU kernels, Metal on an Apple GPU, or forge's Metal kernels run by the
// MSL emulator (any machine with a C++ compiler; the Metal path's text, executed on the CPU) or by the
// CUDA executor (the same text compiled by nvcc for an NVIDIA GPU: a proof on parallel hardware).
enum class Backend : std::uint8_t { cpu, metal, metal_emu, metal_cuda };

constexpr std::string_view backend_name(Backend b) {
    switch (b) {
        case Backend::cpu: return "cpu";
        case Backend::metal: return "metal";
        case Backend::metal_emu: return "metal-emu";
        case Backend::metal_cuda: return "metal-cuda";
    }
    return "?";
}

inline Backend parse_backend(std::string_view name) {
    for (const Backend b : {Backend::cpu, Backend::metal, Backend::metal_emu, Backend::metal_cuda})
        if (backend_name(b) == name) return b;
    throw Error("unknown backend '" + std::string(name) + "' (cpu, metal, metal-emu or metal-cuda)");
}

struct ModelOptions {
    int context = 0;      // KV-cache positions; 0 = the model's max_context, capped at kDefaultContextCap
    int threads = 0;      // worker threads for the CPU kernels; 0 = one per hardware thread
    int max_batch = 256;  // prefill processes tokens in batches of at most this many: a batch reads the weights once
    Backend backend = Backend::cpu;
    bool check_tensors = false;  // scan every weight for NaN and infinity before loading (as llama.cpp's --check-tensors)
};

inline constexpr int kDefaultContextCap = 4096;
inline constexpr int kMaxThreads = 1024;

namespace detail {

// This machine's physical memory in bytes, or 0 where it cannot be told.
inline std::uint64_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : 0;
}

inline std::string gib(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
    return buf;
}

}  // namespace detail

// The KV-cache length a model of shape `s` gets for `requested` positions (0: the default). A negative
// number, one above the model's max_context, or a cache larger than this machine's memory is an error
// naming the numbers, raised before the cache exists.
inline int resolve_context(int requested, const ModelShape& s) {
    if (requested < 0)
        throw Error("context " + std::to_string(requested) + " is negative: ask for a number of positions, or 0 for the model's default");
    const int context = requested > 0 ? requested : std::min(s.max_context, kDefaultContextCap);
    if (context > s.max_context)
        throw Error("context " + std::to_string(context) + " exceeds the model's maximum of " + std::to_string(s.max_context));
    const std::uint64_t cache = std::uint64_t(s.kv_cache_bytes_per_token()) * std::uint64_t(context);
    if (const std::uint64_t memory = detail::physical_memory_bytes(); memory > 0 && cache > memory)
        throw Error("context " + std::to_string(context) + " needs a " + detail::gib(cache) + " KV cache, more than this machine's " +
                    detail::gib(memory) + " of memory: ask for fewer positions");
    return context;
}

inline int resolve_threads(int threads) {
    if (threads == 0) return std::clamp(int(std::thread::hardware_concurrency()), 1, kMaxThreads);
    if (threads < 1 || threads > kMaxThreads)
        throw Error("threads must be between 1 and " + std::to_string(kMaxThreads) + " (or 0 for one per hardware thread), not " +
                    std::to_string(threads));
    return threads;
}

}  // namespace forge
