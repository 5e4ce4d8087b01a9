#pragma once
// Deliberately broken kernels, so the executors' tests can show each fault is reported: the emulator's
// own reports, and compute-sanitizer's on the CUDA executor (a race the emulator cannot see).
#include <array>

#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"

namespace forge::metal::emu_test {

#define FORGE_FAULT_FIELDS(F) F(uint, n) F(uint, barrier)
FORGE_MSL_PARAMS(FaultParams, FORGE_FAULT_FIELDS);

inline constexpr metal_src::KernelSource kFaultKernels[] = {
    // Half the threads return before a barrier the others wait at.
    {.name = "divergent_barrier",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .builtins = metal_src::kTid,
     .body = R"msl({
    if (tid >= p.n) return;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = 1.0f;
}
)msl"},
    // Lanes of one simdgroup split between simd_sum and a threadgroup barrier.
    {.name = "divergent_simd",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .builtins = metal_src::kTid | metal_src::kLane,
     .body = R"msl({
    float v = 1.0f;
    if (lane < p.n) v = simd_sum(v);
    else threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = v;
}
)msl"},
    // Each thread publishes a value in threadgroup memory and reads its neighbour's: with the barrier
    // between when p.barrier is not 0, a race when it is.
    {.name = "exchange",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .threadgroup_memory = true,
     .builtins = metal_src::kTid,
     .body = R"msl({
    tgm[tid] = float(tid);
    if (p.barrier != 0) threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = tgm[(tid + 1) % p.n];
}
)msl"},
    // Lanes publish a value and read their neighbour's within the simdgroup: ordered by a
    // simdgroup_barrier when p.barrier is not 0, a race when it is.
    {.name = "simd_exchange",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .threadgroup_memory = true,
     .builtins = metal_src::kTid,
     .body = R"msl({
    tgm[tid] = float(tid);
    if (p.barrier != 0) simdgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = tgm[tid ^ 1];
}
)msl"},
    // MSL half arithmetic: (1 + 2^-10)^2 + 2^-11 computed in half is 1 + 2^-9, rounded at each step;
    // in float it would be 1 + 2^-9 + 2^-11 + 2^-20. p.n picks the half (1) or the float (0) expression.
    {.name = "half_math",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .builtins = metal_src::kTid,
     .body = R"msl({
    const half a = half(1.0009765625f);
    const half c = half(0.00048828125f);
    if (p.n != 0) out[tid] = float(a * a + c);
    else out[tid] = float(a) * float(a) + float(c);
}
)msl"},
};

inline constexpr auto kFaultLibraryText = metal_src::concat<6144>(
    metal_src::kPreludeHead, FaultParams::msl, "\n", metal_src::signature(kFaultKernels[0]), kFaultKernels[0].body, "\n",
    metal_src::signature(kFaultKernels[1]), kFaultKernels[1].body, "\n", metal_src::signature(kFaultKernels[2]),
    kFaultKernels[2].body, "\n", metal_src::signature(kFaultKernels[3]), kFaultKernels[3].body, "\n",
    metal_src::signature(kFaultKernels[4]), kFaultKernels[4].body);

}  // namespace forge::metal::emu_test
