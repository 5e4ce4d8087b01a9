#pragma once
// Type-dispatched row conversion: from every type forge computes with, to F32, F16, BF16, Q8_0 and Q4_0 (the
// types `forge quantize` writes; the K-quants, Q4_1 and Q5 are read only).
#include <cstddef>
#include <cstring>
#include <string>

#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q4_1.hpp"
#include "forge/quant/q5.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge {

inline void dequantize_row(DType t, const void* src, float* dst, std::size_t n) {
    switch (t) {
        case DType::F32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::F16: {
            const auto* h = static_cast<const std::uint16_t*>(src);
            for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
            return;
        }
        case DType::BF16: {
            const auto* h = static_cast<const std::uint16_t*>(src);
            for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
            return;
        }
        case DType::Q8_0: dequantize_row_q8_0(static_cast<const BlockQ8_0*>(src), dst, n); return;
        case DType::Q4_0: dequantize_row_q4_0(static_cast<const BlockQ4_0*>(src), dst, n); return;
        case DType::Q4_1: dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n); return;
        case DType::Q5_0: dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n); return;
        case DType::Q5_1: dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n); return;
        case DType::Q2_K: dequantize_row_q2_K(static_cast<const BlockQ2_K*>(src), dst, n); return;
        case DType::Q3_K: dequantize_row_q3_K(static_cast<const BlockQ3_K*>(src), dst, n); return;
        case DType::Q4_K: dequantize_row_q4_K(static_cast<const BlockQ4_K*>(src), dst, n); return;
        case DType::Q5_K: dequantize_row_q5_K(static_cast<const BlockQ5_K*>(src), dst, n); return;
        case DType::Q6_K: dequantize_row_q6_K(static_cast<const BlockQ6_K*>(src), dst, n); return;
        default: throw Error("cannot dequantize " + std::string(dtype_name(t)) + " rows");
    }
}

inline void quantize_row(DType t, const float* src, void* dst, std::size_t n) {
    switch (t) {
        case DType::F32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::F16: {
            auto* h = static_cast<std::uint16_t*>(dst);
            for (std::size_t i = 0; i < n; ++i) h[i] = f32_to_f16(src[i]);
            return;
        }
        case DType::BF16: {
            auto* h = static_cast<std::uint16_t*>(dst);
            for (std::size_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
            return;
        }
        case DType::Q8_0: quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n); return;
        case DType::Q4_0: quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n); return;
        default: throw Error("cannot quantize rows to " + std::string(dtype_name(t)));
    }
}

}  // namespace forge
