#pragma once
// Deliberately broken kernels, so the executors' tests can show each fault is reported: the emulator's
// own reports, and compute-sanitizer's on the CUDA executor (a race the emulator cannot see).
#include <array>
#include <string_view>

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
    // MSL's float max and min (fmax and fmin): a NaN (in[0]) loses to a number (in[1] = 1, in[2] = -1).
    {.name = "min_max",
     .params = FaultParams::msl_name,
     .buffers = {{{"const float", "in"}, {"float", "out"}}},
     .n_buffers = 2,
     .builtins = metal_src::kTid,
     .body = R"msl({
    if (tid != 0) return;
    out[0] = max(in[0], in[1]);
    out[1] = max(in[1], in[0]);
    out[2] = min(in[0], in[2]);
    out[3] = min(in[2], in[0]);
}
)msl"},
    // Lanes split between two simd_sum calls on different lines: one operation on a GPU only when every
    // lane is at the same one.
    {.name = "split_simd",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .builtins = metal_src::kTid | metal_src::kLane,
     .body = R"msl({
    float v = 1.0f;
    if (lane < p.n) v = simd_sum(v);
    else v = simd_sum(2.0f * v);
    out[tid] = v;
}
)msl"},
    // Threads split between two threadgroup barriers on different lines.
    {.name = "split_barrier",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .builtins = metal_src::kTid,
     .body = R"msl({
    if (tid < p.n) threadgroup_barrier(mem_flags::mem_threadgroup);
    else threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = 1.0f;
}
)msl"},
    // A simdgroup matrix multiply that only lanes below p.n reach.
    {.name = "partial_matrix",
     .params = FaultParams::msl_name,
     .buffers = {{{"float", "out"}}},
     .n_buffers = 1,
     .builtins = metal_src::kLane | metal_src::kSg,
     .body = R"msl({
    simdgroup_float8x8 a = make_filled_simdgroup_matrix<float, 8, 8>(1.0f);
    if (lane < p.n) simdgroup_multiply_accumulate(a, a, a, a);
    simdgroup_store(a, out + sg * 64, 8);
}
)msl"},
    // Lanes load one simdgroup matrix from two places (odd lanes 64 floats further): each lane's fragment
    // comes from its own address, so the product with the identity (floats 128..191) mixes the two.
    {.name = "fragments",
     .params = FaultParams::msl_name,
     .buffers = {{{"const float", "in"}, {"float", "out"}}},
     .n_buffers = 2,
     .builtins = metal_src::kLane,
     .body = R"msl({
    simdgroup_float8x8 a;
    simdgroup_float8x8 id;
    simdgroup_load(a, in + (lane % 2) * 64, 8);
    simdgroup_load(id, in + 128, 8);
    simdgroup_float8x8 d = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_multiply_accumulate(d, a, id, d);
    simdgroup_store(d, out, 8);
}
)msl"},
};

// Every kernel above, after the prelude.
inline constexpr auto kFaultLibraryText = [] {
    metal_src::FixedString<12288> text;
    const auto add = [&](std::string_view s) {
        if (text.len + s.size() > 12288) throw "kFaultLibraryText: capacity exceeded";
        for (char c : s) text.chars[text.len++] = c;
    };
    add(metal_src::kPreludeHead);
    add(metal_src::as_view(FaultParams::msl));
    for (const auto& k : kFaultKernels) {
        add("\n");
        add(metal_src::signature(k).view());
        add(k.body);
    }
    return text;
}();

}  // namespace forge::metal::emu_test
