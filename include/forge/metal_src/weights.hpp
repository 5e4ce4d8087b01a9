#pragma once
// How the kernels read every weight type forge computes with, in MSL: block layouts exactly ggml's, each
// value decoded with the same float operations in the same order as forge's CPU dequantizers
// (quant/), so an embedding row comes out bit-identical and a product differs only in summation order.
//
// Plain types (F32, F16, BF16) have an element accessor `w_<t>(row, i)` and `w4_<t>(row, q)`, elements
// 4q .. 4q + 3 in one vector load (the row aligned to the vector: 16 bytes for F32, 8 otherwise).
// Quantized types are read in chunks of 32 elements: a Q block, or one eighth of a 256-wide K-quant
// super-block. `<t>_chunk_at(row, b)` decodes chunk b's scales once (two of them where a K-quant's
// sub-blocks are 16 wide) and `<t>_at(chunk, l)` decodes its element l from them; on those every
// quantized type gets the same two readers: `<t>_block_dot(row, b, x)` (the mat-vec's dot of a chunk
// with 32 inputs) and `w4_<t>(row, b, q)` (elements 4q .. 4q + 3 of a chunk, for the GEMM's tile loads
// and the embedding lookup).
#include <cstdint>
#include <string>
#include <string_view>

#include "forge/core/dtype.hpp"
#include "forge/metal_src/constexpr_string.hpp"

namespace forge::metal_src {

// Every weight type with kernels, in the order a library lists them.
inline constexpr DType kKernelDTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                                          DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                          DType::Q4_K, DType::Q5_K, DType::Q6_K};

// The weight-type suffix of the kernels' names and helpers; empty for a type without kernels.
constexpr std::string_view dtype_suffix(DType t) {
    switch (t) {
        case DType::F32: return "f32";
        case DType::F16: return "f16";
        case DType::BF16: return "bf16";
        case DType::Q8_0: return "q8_0";
        case DType::Q4_0: return "q4_0";
        case DType::Q4_1: return "q4_1";
        case DType::Q5_0: return "q5_0";
        case DType::Q5_1: return "q5_1";
        case DType::Q2_K: return "q2_k";
        case DType::Q3_K: return "q3_k";
        case DType::Q4_K: return "q4_k";
        case DType::Q5_K: return "q5_k";
        case DType::Q6_K: return "q6_k";
        default: return "";
    }
}

// A set of weight types as a bit mask, one bit per GGUF type id.
constexpr std::uint32_t dtype_bit(DType t) { return std::uint32_t(1) << static_cast<std::uint32_t>(t); }
static_assert(static_cast<std::uint32_t>(DType::BF16) < 32, "weight type sets are 32-bit masks of type ids");

// The types of a set by name, for messages: "F32, Q4_K, Q6_K".
inline std::string dtype_set_names(std::uint32_t set) {
    std::string out;
    for (const DType t : kKernelDTypes)
        if (set & dtype_bit(t)) out += (out.empty() ? "" : ", ") + std::string(dtype_name(t));
    return out;
}

// Helpers two types share, emitted once when either is in the library.
struct SharedDecoder {
    std::uint32_t users;
    std::string_view text;
};
inline constexpr SharedDecoder kSharedDecoders[] = {
    {dtype_bit(DType::Q5_0) | dtype_bit(DType::Q5_1), R"msl(// The 32 fifth bits of a Q5_0/Q5_1 block (bit l: element l), read as shorts: the block is 2-byte aligned.
inline uint q5_high_bits(DPTR(const uchar) p) {
    DPTR(const ushort) h = DCAST(const ushort, p);
    return uint(h[0]) | (uint(h[1]) << 16);
}

)msl"},
    {dtype_bit(DType::Q4_K) | dtype_bit(DType::Q5_K), R"msl(// Sub-block j's 6-bit scale (x) and min (y) from a Q4_K/Q5_K super-block's 12 packed bytes: sub-blocks
// 0-3 in the low 6 bits of bytes 0-3 and 4-7, sub-blocks 4-7 in the nibbles of bytes 8-11 with their top
// two bits in the top bits of bytes 0-7.
inline uint2 k4_scale_min(DPTR(const uchar) s, uint j) {
    if (j < 4) return uint2(s[j] & 63u, s[j + 4] & 63u);
    return uint2((s[j + 4] & 15u) | ((uint(s[j - 4]) >> 6) << 4), (uint(s[j + 4]) >> 4) | ((uint(s[j]) >> 6) << 4));
}

)msl"},
};

// The type's own decoders: the element accessor of a plain type, the chunk of a quantized one.
constexpr std::string_view decoder_text(DType t) {
    switch (t) {
        case DType::F32: return R"msl(inline float w_f32(DPTR(const uchar) row, uint i) { return DCAST(const float, row)[i]; }
inline float4 w4_f32(DPTR(const uchar) row, uint q) { return DCAST(const float4, row)[q]; }

)msl";
        case DType::F16: return R"msl(inline float w_f16(DPTR(const uchar) row, uint i) { return float(DCAST(const half, row)[i]); }
inline float4 w4_f16(DPTR(const uchar) row, uint q) { return float4(DCAST(const half4, row)[q]); }

)msl";
        case DType::BF16: return R"msl(// bfloat16 is the top half of an f32.
inline float w_bf16(DPTR(const uchar) row, uint i) { return as_type<float>(uint(DCAST(const ushort, row)[i]) << 16); }
inline float4 w4_bf16(DPTR(const uchar) row, uint q) {
    const ushort4 u = DCAST(const ushort4, row)[q];
    return float4(as_type<float>(uint(u.x) << 16), as_type<float>(uint(u.y) << 16), as_type<float>(uint(u.z) << 16),
                  as_type<float>(uint(u.w) << 16));
}

)msl";
        case DType::Q8_0: return R"msl(// Q8_0, 34-byte blocks: f16 scale d, 32 int8; value q * d.
struct q8_0_chunk { DPTR(const int8_t) q; float d; };
inline q8_0_chunk q8_0_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + b * 34;
    return {DCAST(const int8_t, blk + 2), float(DCAST(const half, blk)[0])};
}
inline float q8_0_at(q8_0_chunk c, uint l) { return float(c.q[l]) * c.d; }

)msl";
        case DType::Q4_0: return R"msl(// Q4_0, 18-byte blocks: f16 scale d, 16 bytes holding element l (low nibble) and l + 16 (high);
// value (q - 8) * d.
struct q4_0_chunk { DPTR(const uchar) q; float d; };
inline q4_0_chunk q4_0_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + b * 18;
    return {blk + 2, float(DCAST(const half, blk)[0])};
}
inline float q4_0_at(q4_0_chunk c, uint l) {
    const uint v = c.q[l % 16];
    return float(int(l < 16 ? v & 15u : v >> 4) - 8) * c.d;
}

)msl";
        case DType::Q4_1: return R"msl(// Q4_1, 20-byte blocks: f16 scale d and min m, nibbles as Q4_0; value q * d + m.
struct q4_1_chunk { DPTR(const uchar) q; float d, m; };
inline q4_1_chunk q4_1_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + b * 20;
    return {blk + 4, float(DCAST(const half, blk)[0]), float(DCAST(const half, blk)[1])};
}
inline float q4_1_at(q4_1_chunk c, uint l) {
    const uint v = c.q[l % 16];
    return float(l < 16 ? v & 15u : v >> 4) * c.d + c.m;
}

)msl";
        case DType::Q5_0: return R"msl(// Q5_0, 22-byte blocks: f16 scale d, 32 fifth bits, nibbles as Q4_0; value (q - 16) * d.
struct q5_0_chunk { DPTR(const uchar) q; uint qh; float d; };
inline q5_0_chunk q5_0_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + b * 22;
    return {blk + 6, q5_high_bits(blk + 2), float(DCAST(const half, blk)[0])};
}
inline float q5_0_at(q5_0_chunk c, uint l) {
    const uint v = c.q[l % 16];
    const uint q = (l < 16 ? v & 15u : v >> 4) | (((c.qh >> l) & 1u) << 4);
    return float(int(q) - 16) * c.d;
}

)msl";
        case DType::Q5_1: return R"msl(// Q5_1, 24-byte blocks: f16 scale d and min m, then as Q5_0; value q * d + m.
struct q5_1_chunk { DPTR(const uchar) q; uint qh; float d, m; };
inline q5_1_chunk q5_1_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + b * 24;
    return {blk + 8, q5_high_bits(blk + 4), float(DCAST(const half, blk)[0]), float(DCAST(const half, blk)[1])};
}
inline float q5_1_at(q5_1_chunk c, uint l) {
    const uint v = c.q[l % 16];
    const uint q = (l < 16 ? v & 15u : v >> 4) | (((c.qh >> l) & 1u) << 4);
    return float(q) * c.d + c.m;
}

)msl";
        case DType::Q2_K: return R"msl(// Q2_K, 84-byte super-blocks: 16 scale bytes (low nibble scale, high nibble min of a 16-wide
// sub-block), 64 bytes of 2-bit codes, f16 d and dmin. Chunk j of a super-block takes bit pair j % 4 of
// code bytes 32 (j / 4) .. + 31; value d * scale * q - dmin * min.
struct q2_k_chunk { DPTR(const uchar) q; uint shift; float d0, m0, d1, m1; };
inline q2_k_chunk q2_k_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + (b / 8) * 84;
    const uint j = b % 8;
    DPTR(const uchar) sc = blk + 2 * j;
    const float d = float(DCAST(const half, blk + 80)[0]), dmin = float(DCAST(const half, blk + 80)[1]);
    return {blk + 16 + 32 * (j / 4), 2 * (j % 4), d * float(sc[0] & 15u), dmin * float(sc[0] >> 4), d * float(sc[1] & 15u),
            dmin * float(sc[1] >> 4)};
}
inline float q2_k_at(q2_k_chunk c, uint l) {
    const float q = float((c.q[l] >> c.shift) & 3u);
    return l < 16 ? c.d0 * q - c.m0 : c.d1 * q - c.m1;
}

)msl";
        case DType::Q3_K: return R"msl(// Q3_K, 110-byte super-blocks: 32 bytes of high bits, 64 of 2-bit codes, 12 of packed 6-bit scales,
// f16 d. Chunk j takes bit pair j % 4 of code bytes 32 (j / 4) .. + 31 and bit j of the high-bit bytes
// (a clear bit subtracts 4); value d * (scale - 32) * q.
inline int q3_k_scale(DPTR(const uchar) s, uint i) {
    const uint lo = i < 8 ? s[i] & 15u : uint(s[i - 8]) >> 4;
    const uint hi = (uint(s[8 + i % 4]) >> (2 * (i / 4))) & 3u;
    return int(lo | (hi << 4)) - 32;
}
struct q3_k_chunk { DPTR(const uchar) q; DPTR(const uchar) hm; uint shift, hbit; float d0, d1; };
inline q3_k_chunk q3_k_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + (b / 8) * 110;
    const uint j = b % 8;
    const float d = float(DCAST(const half, blk + 108)[0]);
    return {blk + 32 + 32 * (j / 4), blk, 2 * (j % 4), j, d * float(q3_k_scale(blk + 96, 2 * j)),
            d * float(q3_k_scale(blk + 96, 2 * j + 1))};
}
inline float q3_k_at(q3_k_chunk c, uint l) {
    const int q = int((c.q[l] >> c.shift) & 3u) - (((c.hm[l] >> c.hbit) & 1u) != 0 ? 0 : 4);
    return (l < 16 ? c.d0 : c.d1) * float(q);
}

)msl";
        case DType::Q4_K: return R"msl(// Q4_K, 144-byte super-blocks: f16 d and dmin, 12 bytes of 6-bit scales and mins, 128 bytes of
// nibbles; chunk j takes the low (even j) or high nibbles of bytes 32 (j / 2) .. + 31. Value
// d * scale * q - dmin * min.
struct q4_k_chunk { DPTR(const uchar) q; uint shift; float d, m; };
inline q4_k_chunk q4_k_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + (b / 8) * 144;
    const uint j = b % 8;
    const uint2 sm = k4_scale_min(blk + 4, j);
    return {blk + 16 + 32 * (j / 2), 4 * (j % 2), float(DCAST(const half, blk)[0]) * float(sm.x),
            float(DCAST(const half, blk)[1]) * float(sm.y)};
}
inline float q4_k_at(q4_k_chunk c, uint l) { return c.d * float((c.q[l] >> c.shift) & 15u) - c.m; }

)msl";
        case DType::Q5_K: return R"msl(// Q5_K, 176-byte super-blocks: as Q4_K with 32 bytes of fifth bits (bit j of byte l: chunk j's
// element l) before the nibbles.
struct q5_k_chunk { DPTR(const uchar) q; DPTR(const uchar) qh; uint shift, hbit; float d, m; };
inline q5_k_chunk q5_k_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + (b / 8) * 176;
    const uint j = b % 8;
    const uint2 sm = k4_scale_min(blk + 4, j);
    return {blk + 48 + 32 * (j / 2), blk + 16, 4 * (j % 2), j, float(DCAST(const half, blk)[0]) * float(sm.x),
            float(DCAST(const half, blk)[1]) * float(sm.y)};
}
inline float q5_k_at(q5_k_chunk c, uint l) {
    return c.d * float(((c.q[l] >> c.shift) & 15u) + (((c.qh[l] >> c.hbit) & 1u) << 4)) - c.m;
}

)msl";
        case DType::Q6_K: return R"msl(// Q6_K, 210-byte super-blocks: 128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales (one
// per 16 elements), f16 d. In each half of 128 elements, quarter u takes the low (u < 2) or high nibbles
// of bytes 32 (u % 2) .. + 31 and bit pair u of the high bytes; value d * scale * (q - 32).
struct q6_k_chunk { DPTR(const uchar) ql; DPTR(const uchar) qh; uint lshift, hshift; float d0, d1; };
inline q6_k_chunk q6_k_chunk_at(DPTR(const uchar) row, uint b) {
    DPTR(const uchar) blk = row + (b / 8) * 210;
    const uint half_ = (b % 8) / 4, u = b % 4;
    DPTR(const int8_t) sc = DCAST(const int8_t, blk + 192) + 8 * half_ + 2 * u;
    const float d = float(DCAST(const half, blk + 208)[0]);
    return {blk + 64 * half_ + 32 * (u % 2), blk + 128 + 32 * half_, 4 * (u / 2), 2 * u, d * float(sc[0]), d * float(sc[1])};
}
inline float q6_k_at(q6_k_chunk c, uint l) {
    const int q = int(((c.ql[l] >> c.lshift) & 15u) | (((c.qh[l] >> c.hshift) & 3u) << 4)) - 32;
    return (l < 16 ? c.d0 : c.d1) * float(q);
}

)msl";
        default: return "";
    }
}

// The two readers every quantized type gets from its chunk decoder.
template <DType T>
inline constexpr auto kChunkReaders = concat<1024>(
    "inline float ", dtype_suffix(T), "_block_dot(DPTR(const uchar) row, uint b, thread const float* x) {\n    const ",
    dtype_suffix(T), "_chunk c = ", dtype_suffix(T), R"msl(_chunk_at(row, b);
    float s = 0.0f;
    for (uint l = 0; l < 32; ++l) s += )msl", dtype_suffix(T), R"msl(_at(c, l) * x[l];
    return s;
}
inline float4 w4_)msl", dtype_suffix(T), "(DPTR(const uchar) row, uint b, uint q) {\n    const ", dtype_suffix(T), "_chunk c = ",
    dtype_suffix(T), "_chunk_at(row, b);\n    return float4(", dtype_suffix(T), "_at(c, 4 * q), ", dtype_suffix(T), "_at(c, 4 * q + 1), ",
    dtype_suffix(T), "_at(c, 4 * q + 2), ", dtype_suffix(T), "_at(c, 4 * q + 3));\n}\n\n");

}  // namespace forge::metal_src
