#pragma once
// What every executor checks before it launches a kernel, as Metal's validation layer would: each
// buffer the kernel declares is bound, the parameter bytes have its struct's size, threadgroup memory is
// set when the kernel uses it and within Apple's 32 KiB, 1 to 1024 threads per group, a non-empty grid.
// The emulator and the CUDA executor both run these, so a launch one accepts the other accepts too.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "forge/core/error.hpp"
#include "forge/metal/device.hpp"
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"

namespace forge::metal {

inline constexpr std::size_t kMaxThreadsPerGroup = 1024;

struct DispatchRequest {
    const metal_src::KernelSource& kernel;
    std::array<bool, metal_src::kMaxBuffers> buffer_bound;  // per declared buffer
    std::size_t params_bytes;            // what the host bound
    std::size_t params_struct_bytes;     // sizeof the parameter struct as the device compiled it
    std::size_t threadgroup_bytes;
    Size3 groups;
    Size3 threads;
};

// A buffer bound at `index` with `offset` into a buffer of `buffer_size` bytes: a buffer the kernel
// declares, the offset inside it. `prefix` begins every message ("metal emulator: kernel 'rope': ").
inline void check_buffer_binding(const metal_src::KernelSource& k, std::uint32_t index, std::size_t offset, std::size_t buffer_size,
                                 const std::string& prefix) {
    if (index >= k.n_buffers) throw Error(prefix + "buffer index " + std::to_string(index) + " is not a buffer of the kernel");
    if (offset > buffer_size) throw Error(prefix + "buffer offset past the buffer's end");
}

// Parameter bytes bound at `index`: the slot right after the buffers.
inline void check_bytes_binding(const metal_src::KernelSource& k, std::uint32_t index, const std::string& prefix) {
    if (index != k.n_buffers)
        throw Error(prefix + "bytes bound at index " + std::to_string(index) + ", the parameters are at " + std::to_string(k.n_buffers));
}

inline void check_dispatch(const DispatchRequest& r, const std::string& prefix) {
    for (std::size_t i = 0; i < r.kernel.n_buffers; ++i)
        if (!r.buffer_bound[i])
            throw Error(prefix + "buffer " + std::to_string(i) + " ('" + std::string(r.kernel.buffers[i].name) + "') is not bound");
    if (r.params_bytes != r.params_struct_bytes)
        throw Error(prefix + "parameters are " + std::to_string(r.params_bytes) + " bytes, the kernel's struct " +
                    std::to_string(r.params_struct_bytes));
    if (r.threadgroup_bytes > std::size_t(metal_src::kThreadgroupMemoryLimit))
        throw Error(prefix + "threadgroup memory of " + std::to_string(r.threadgroup_bytes) + " bytes is over budget (the limit is " +
                    std::to_string(metal_src::kThreadgroupMemoryLimit) + ")");
    if (r.kernel.threadgroup_memory && r.threadgroup_bytes == 0) throw Error(prefix + "threadgroup memory is not set");
    if (r.threads.count() == 0 || r.threads.count() > kMaxThreadsPerGroup)
        throw Error(prefix + std::to_string(r.threads.count()) + " threads per threadgroup (1 to 1024 allowed)");
    if (r.groups.count() == 0) throw Error(prefix + "empty grid");
}

}  // namespace forge::metal
