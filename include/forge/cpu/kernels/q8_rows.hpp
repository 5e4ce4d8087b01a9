#pragma once
// Activations quantized to Q8_0-style blocks (32 int8 codes sharing one scale, the scale rounded to f16
// as llama.cpp's Q8_0 activations are) so quantized weights can be dotted with integer instructions.
// Each kernel states the layout it reads (Q8Layout); the rows are stored per kernel step, one 64-byte
// aligned chunk per step holding the codes, a scale per int32 lane and an offset correction per lane,
// so a step's loads are whole aligned vectors and no lane shuffling happens in the inner loop. Each
// token's block scales are also kept side by side, for kernels that scale 16 blocks at once.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "forge/core/half.hpp"
#include "forge/cpu/simd/isa.hpp"
#if FORGE_HAVE_AVX512
#include "forge/cpu/simd/x86.hpp"
#endif

namespace forge::cpu {

#if FORGE_HAVE_AVX512
// The magnitudes of 16 floats as bit patterns, NaN's as 0: non-negative floats order as their bits do, so
// an unsigned maximum over these finds the largest magnitude and skips NaN, as the scalar quantizers do.
inline __m512i magnitude_bits(__m512 v) {
    const __m512i m = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
    return _mm512_maskz_mov_epi32(_mm512_cmple_epu32_mask(m, _mm512_set1_epi32(0x7f800000)), m);
}
#endif

struct Q8Layout {
    int step_blocks = 1;  // 32-value blocks per kernel step; a row's last step is zero-padded
    // Codes of a step's blocks side by side (false), or in two halves (true): values 0-15 of every block,
    // then values 16-31 of every block, as Q4_0's low and high nibbles unpack. With halves the kernel
    // accumulates both halves into the same int32 lanes, so a lane covers eight values, not four.
    bool halves = false;
    int offset = 0;  // the kernel reads weights as unsigned w + offset; each lane's corr carries its share

    constexpr int lanes_per_block() const { return halves ? 4 : 8; }
    constexpr int lanes() const { return step_blocks * lanes_per_block(); }  // int32 lanes a step's results fill
    // Byte position of value j of the step's block bb.
    constexpr int pos(int bb, int j) const { return halves ? (j / 16) * step_blocks * 16 + bb * 16 + j % 16 : bb * 32 + j; }
    friend constexpr bool operator==(const Q8Layout&, const Q8Layout&) = default;
};

class Q8Rows {
public:
    // Sizes the rows for `tokens` x `cols` (a multiple of 32). Storage only grows, so a model that
    // sized it for its largest batch never allocates again.
    void prepare(int tokens, int cols, Q8Layout layout) {
        layout_ = layout;
        tokens_ = tokens;
        const int blocks = cols / 32;
        steps_ = (blocks + layout.step_blocks - 1) / layout.step_blocks;
        blocks_ = blocks;
        const std::size_t need = std::size_t(tokens) * std::size_t(steps_) * chunks_per_step();
        if (data_.size() < need) data_.resize(need);
        scales_stride_ = (std::size_t(blocks) + 15) / 16 * 16;
        if (scales_.size() < std::size_t(tokens) * scales_stride_) scales_.resize(std::size_t(tokens) * scales_stride_);
    }

    // Quantizes tokens [t0, t1) of x (rows `stride` floats apart).
    void quantize(const float* x, int stride, int t0, int t1) {
        const int S = layout_.step_blocks;
        for (int t = t0; t < t1; ++t) {
            const float* xt = x + std::size_t(t) * std::size_t(stride);
            float* bs = scales_.data() + std::size_t(t) * scales_stride_;
            std::fill(bs + blocks_, bs + scales_stride_, 0.0f);
            for (int s = 0; s < steps_; ++s) {
                std::byte* c = chunk(t, s);
                auto* q = reinterpret_cast<std::int8_t*>(c);
                auto* dv = reinterpret_cast<float*>(c + std::size_t(S) * 32);
                auto* cv = reinterpret_cast<std::int32_t*>(c + std::size_t(S) * 64);
                for (int bb = 0; bb < S; ++bb) {
                    const int b = s * S + bb;
                    std::int8_t codes[32];
                    float scale = 0.0f;
                    std::int32_t sum = 0;
                    if (b < blocks_) scale = bs[b] = quantize_block(xt + b * 32, codes, sum);
                    else std::fill_n(codes, 32, std::int8_t(0));
                    // Values 0-15 and 16-31 are contiguous in every layout.
                    std::memcpy(q + layout_.pos(bb, 0), codes, 16);
                    std::memcpy(q + layout_.pos(bb, 16), codes + 16, 16);
                    // The block's lanes share -offset * sum evenly: offsets are multiples of 8.
                    const int per = layout_.lanes_per_block();
                    for (int l = bb * per; l < (bb + 1) * per; ++l) {
                        dv[l] = scale;
                        cv[l] = -layout_.offset / per * sum;
                    }
                }
            }
        }
    }

    // 1 / d, or 0 where that is not a finite float: a block whose scale is 0 or a denormal so small that
    // its inverse overflows quantizes to all zeros (the codes would otherwise be infinities, whose
    // conversion to int is undefined).
    static float inverse_scale(float d) {
        const float id = 1.0f / d;
        return d != 0.0f && id <= 3.40282347e+38f ? id : 0.0f;
    }

    // One block as ggml's Q8_0 quantizer does (d = amax / 127, codes rounded to nearest), written as
    // plain loops over the block so the compiler vectorises them. Returns the f16-rounded scale.
    static float quantize_block_portable(const float* x, std::int8_t* codes, std::int32_t& sum) {
        // The largest |x| as the largest magnitude bit pattern (non-negative floats order as their bits
        // do; NaN is skipped, as std::max(amax, NaN) would): an integer maximum the compiler turns into
        // vector instructions, where a chain of float std::max stays scalar.
        std::uint32_t mag[32];
        std::memcpy(mag, x, sizeof mag);
        for (std::uint32_t& m : mag) {
            const std::uint32_t a = m & 0x7fffffffu;
            m = a > 0x7f800000u ? 0u : a;
        }
        std::uint32_t top = 0;
        for (const std::uint32_t m : mag) top = std::max(top, m);
        const float amax = std::bit_cast<float>(top);
        const float d = amax / 127.0f;
        const float id = inverse_scale(d);
        std::int32_t total = 0;
        for (int j = 0; j < 32; ++j) {
            // Adding and subtracting 1.5 * 2^23 rounds |v| <= 127 to nearest-even without a libm call.
            // A NaN (a NaN input, or an infinite one scaled by 0) becomes code 0: converting it is undefined.
            const float v = (x[j] * id + 12582912.0f) - 12582912.0f;
            codes[j] = v == v ? static_cast<std::int8_t>(v) : std::int8_t(0);
            total += codes[j];
        }
        sum = total;
        return round_f16(d);
    }

#if FORGE_HAVE_AVX512
    // The same block with AVX-512, 1.6x faster than the compiler's version of the loops above: the same
    // maximum over magnitude bits, the same scale, codes rounded to nearest-even by the conversion.
    static float quantize_block(const float* x, std::int8_t* codes, std::int32_t& sum) {
        const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        const float amax = std::bit_cast<float>(_mm512_reduce_max_epu32(_mm512_max_epu32(magnitude_bits(a), magnitude_bits(b))));
        const float d = amax / 127.0f;
        const float id = inverse_scale(d);
        // NaN products become code 0, as in the portable form.
        const auto code = [&](__m512 v) {
            const __m512 p = _mm512_mul_ps(v, _mm512_set1_ps(id));
            return _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), p);
        };
        const __m512i qa = code(a), qb = code(b);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes), _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + 16), _mm512_cvtepi32_epi8(qb));
        sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
        return _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));  // round_f16, in hardware
    }
#else
    static float quantize_block(const float* x, std::int8_t* codes, std::int32_t& sum) { return quantize_block_portable(x, codes, sum); }
#endif

    const Q8Layout& layout() const { return layout_; }
    int tokens() const { return tokens_; }
    int steps() const { return steps_; }
    // Step s of token t: step_blocks*32 codes, then lanes() scales (at step_blocks*32 bytes), then lanes()
    // corrections (at step_blocks*64 bytes).
    const std::int8_t* qs(int t, int s) const { return reinterpret_cast<const std::int8_t*>(chunk(t, s)); }
    const float* d(int t, int s) const {
        return reinterpret_cast<const float*>(chunk(t, s) + std::size_t(layout_.step_blocks) * 32);
    }
    // Token t's block scales side by side, zero-padded to a multiple of 16 blocks.
    const float* block_scales(int t) const { return scales_.data() + std::size_t(t) * scales_stride_; }
    const std::int32_t* corr(int t, int s) const {
        return reinterpret_cast<const std::int32_t*>(chunk(t, s) + std::size_t(layout_.step_blocks) * 64);
    }

private:
    struct alignas(64) Chunk {
        std::byte b[64];
    };
    std::size_t chunks_per_step() const { return (std::size_t(layout_.step_blocks) * 96 + 63) / 64; }
    std::size_t index(int t, int s) const { return (std::size_t(t) * std::size_t(steps_) + std::size_t(s)) * chunks_per_step(); }
    const std::byte* chunk(int t, int s) const { return data_[index(t, s)].b; }
    std::byte* chunk(int t, int s) { return data_[index(t, s)].b; }

    Q8Layout layout_{};
    int tokens_ = 0, steps_ = 0, blocks_ = 0;
    std::vector<Chunk> data_;
    std::size_t scales_stride_ = 0;
    std::vector<float> scales_;
};

}  // namespace forge::cpu
