#pragma once
// A Llama-3-style test model made from synth-llama-f32.gguf: the same file with a `rope_freqs.weight`
// tensor (llama3 RoPE scaling) appended by forge's Writer. The bytes are built here, deterministically, both
// for the tests and for the program that made llama.cpp's reference logits of it
// (tests/data/README.md), so the 2 MB model is not committed; kRopeFreqsModelHash pins those bytes.
//
// The factors are llama.cpp's convert_hf_to_gguf.py llama3 formula (LlamaModel.generate_extra_tensors)
// with factor 8, low_freq_factor 1, high_freq_factor 4 and the synth model's rope_base 10000 and
// head_dim 32, but original_max_position_embeddings 64 instead of Llama 3's 8192: so that the three regions
// show within the reference's 16 positions: pairs 0-1 keep factor 1 (wavelength < 64/4), pairs 2-4 are
// smoothed, pairs 5-15 get factor 8 (wavelength > 64).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"
#include "gguf_fixtures.hpp"
#include "testdata.hpp"

namespace forge::test {

inline constexpr const char* kRopeFreqsBaseModel = "synth-llama-f32.gguf";
inline constexpr const char* kRopeFreqsReference = FORGE_SOURCE_DIR "/tests/data/synth-llama-f32-rope-freqs.json";

struct Llama3RopeScaling {
    float factor = 8.0f;
    float low_freq_factor = 1.0f;
    float high_freq_factor = 4.0f;
    float original_context = 64.0f;
};

// convert_hf_to_gguf.py's llama3 factors for one head of `head_dim`, computed in float32 as its torch
// tensors are.
inline std::vector<float> llama3_rope_factors(int head_dim, float base, const Llama3RopeScaling& r) {
    const float low_freq_wavelen = r.original_context / r.low_freq_factor;
    const float high_freq_wavelen = r.original_context / r.high_freq_factor;
    std::vector<float> out;
    for (int i = 0; i < head_dim; i += 2) {
        const float freq = 1.0f / std::pow(base, float(i) / float(head_dim));
        const float wavelen = 2.0f * std::numbers::pi_v<float> / freq;
        if (wavelen < high_freq_wavelen) {
            out.push_back(1.0f);
        } else if (wavelen > low_freq_wavelen) {
            out.push_back(r.factor);
        } else {
            const float smooth = (r.original_context / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
            out.push_back(1.0f / ((1.0f - smooth) / r.factor + smooth));
        }
    }
    return out;
}

// The factors written into the test model, as llama3_rope_factors(32, 10000, {}) gave them on the machine
// that made the reference. They are literals so that the file's bytes do not depend on a platform's powf;
// a test checks that the formula still gives them.
inline constexpr float kRopeFreqs[16] = {
    0x1p+0f, 0x1p+0f, 0x1.4b42p+0f, 0x1.61f136p+1f, 0x1.eab67p+2f, 0x1p+3f, 0x1p+3f, 0x1p+3f,
    0x1p+3f, 0x1p+3f, 0x1p+3f, 0x1p+3f, 0x1p+3f, 0x1p+3f, 0x1p+3f, 0x1p+3f,
};

// FNV-1a over the bytes: enough to tell that two builds of the file are the same.
inline std::uint64_t fnv1a(std::span<const std::byte> bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const std::byte b : bytes) h = (h ^ std::uint64_t(b)) * 0x100000001b3ull;
    return h;
}

// fnv1a of synth_llama_with_rope_freqs() with kRopeFreqs: the file llama.cpp's reference was made from.
inline constexpr std::uint64_t kRopeFreqsModelHash = 0x302e637d4b5fae7eull;

// synth-llama-f32.gguf with `rope_freqs.weight` of the given shape, type and bytes appended: the real
// model, or a hostile variant of it.
inline std::vector<std::byte> synth_llama_with_rope_freqs(std::vector<std::uint64_t> dims, DType type,
                                                          std::vector<std::byte> data) {
    const gguf::File base = gguf::File::open(model_path(kRopeFreqsBaseModel));
    gguf::Writer w = rewrite(base);
    w.add_tensor("rope_freqs.weight", std::move(dims), type, std::move(data));
    return w.bytes();
}

inline std::vector<std::byte> float_bytes(std::span<const float> v) {
    std::vector<std::byte> b(v.size() * sizeof(float));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

// The test model's bytes, built once per process. A gguf::File parsed from them refers into them.
inline const std::vector<std::byte>& rope_freqs_model_bytes() {
    static const std::vector<std::byte> bytes = synth_llama_with_rope_freqs({16}, DType::F32, float_bytes(kRopeFreqs));
    return bytes;
}

inline gguf::File open_rope_freqs_model() { return gguf::File::parse(rope_freqs_model_bytes()); }

}  // namespace forge::test
