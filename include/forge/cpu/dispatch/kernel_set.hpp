#pragma once
// A kernel set: every operation of the forward pass whose arithmetic depends on the instruction set or
// on the compiler's target flags (SIMD width, FMA contraction), as function pointers compiled for one
// instruction set. The model calls nothing else that computes, so which set runs decides the bits of
// its logits, and a program's own flags change nothing: built with or without -march, it computes with
// the set chosen at load (dispatch/select.hpp) exactly as a build for that set does.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "forge/core/dtype.hpp"
#include "forge/cpu/kernels/attention.hpp"
#include "forge/cpu/kernels/elementwise.hpp"
#include "forge/cpu/kernels/f16_rows.hpp"
#include "forge/cpu/kernels/row_lengths.hpp"
#include "forge/cpu/kernels/rope.hpp"
#include "forge/cpu/rmsnorm.hpp"
#include "forge/cpu/simd/isa.hpp"
#include "forge/quant/row.hpp"

namespace forge::cpu {

struct KernelSet {
    std::string_view name;  // the instruction set: portable, avx2, avx512-vnni, neon-dotprod
    // Compiled apart from the program, for its instruction set, and chosen at load (select.hpp); false
    // for the set of the program's own target flags.
    bool dispatched = false;
    RowLengthGemm (*gemm_for)(int cols);  // the GEMMs for weight rows of `cols` values
    decltype(&attend_head_fast<isa::Portable>) attend_head;
    decltype(&attend_tokens_fast<isa::Portable>) attend_tokens;
    void (*store_f16)(const float* x, std::uint16_t* out, int n);  // K and V into the cache
    void (*rmsnorm)(const float* x, const float* weight, float* out, int n, float eps);
    void (*silu_mul)(const float* gate, const float* up, float* out, int n);
    void (*rope)(const float* cos_sin, int half, float* v, int n_heads, RopeStyle style);
    void (*dequantize_row)(DType type, const void* src, float* dst, std::size_t n);  // token embeddings
};

namespace detail {

// The program's own set takes the row lengths the program registered (row_lengths.hpp); a set compiled
// apart has the generic kernels, which give the same bits.
template <class Isa, bool Dispatched>
RowLengthGemm gemm_for_cols(int cols) {
    if constexpr (!Dispatched && std::is_same_v<Isa, isa::Native>) return RowLengthRegistry::instance().find(cols);
    else return row_length_gemm<Isa, 0>();
}

}  // namespace detail

// The set of instruction set Isa as this translation unit's flags compile it; Dispatched for a set
// compiled apart (dispatch/kernel_set.cpp).
template <class Isa, bool Dispatched = false>
KernelSet kernel_set_of() {
    return {Isa::name,           Dispatched, &detail::gemm_for_cols<Isa, Dispatched>, &attend_head_fast<Isa>, &attend_tokens_fast<Isa>,
            &F16Rows<Isa>::store, &rmsnorm,   &silu_mul_fast,                          &rope_rotate,           &dequantize_row};
}

}  // namespace forge::cpu
