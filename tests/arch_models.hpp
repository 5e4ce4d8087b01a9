#pragma once
// Small models of the architectures whose only difference from Llama is one feature each (phi3's fused
// tensors and LongRoPE, granite's multipliers, smollm3's RoPE-free layers), built deterministically by
// forge's synthetic-model writer so the files need not be committed. llama.cpp's logits for each are in
// tests/data/synth-ARCH-f32.json (tests/data/README.md says how they were made); kHash pins the bytes
// llama.cpp ran.
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/gguf/synthetic_model.hpp"
#include "rope_freqs_model.hpp"

namespace forge::test {

struct ArchModel {
    const char* name;  // synth-NAME-f32: the reference is tests/data/synth-NAME-f32.json
    ModelShape shape;
    std::uint64_t hash;
};
// How GoogleTest names a case of it.
inline void PrintTo(const ArchModel& m, std::ostream* os) { *os << m.name; }

inline constexpr ModelShape kArchBase{.arch = Arch::llama, .vocab = 512, .hidden = 128, .ffn = 384, .layers = 2, .heads = 4,
                                      .kv_heads = 2, .head_dim = 32, .max_context = 64, .rope_base = 10000.0f};

inline constexpr ModelShape arch_shape(Arch a) {
    ModelShape s = kArchBase;
    s.arch = a;
    s.rope_style = rope_style_of(a);
    if (a == Arch::granite) {  // Granite 3.3's multipliers, but for attention: 1/16, not the default 1/sqrt(32)
        s.embedding_scale = 12.0f;
        s.residual_scale = 0.22f;
        s.attention_scale = 0.0625f;
        s.logit_scale = 8.0f;
    }
    if (a == Arch::smollm3) {
        s.layers = 4;  // layer 3 has no RoPE
        s.no_rope_every = 4;
    }
    return s;
}

// LongRoPE of the phi3 model: trained on 32 positions, run on 64, so llama.cpp (and forge at the file's
// context of 64) take the long factors; short ones would apply at 32 or fewer.
inline constexpr std::uint32_t kPhi3TrainedContext = 32;
inline constexpr float kPhi3AttnFactor = 1.1902380714238083f;  // Phi-3.5-mini's sqrt(1 + ln 32 / ln 4096)
inline std::vector<float> phi3_rope_factors(bool long_factors) {
    std::vector<float> v;
    for (int i = 0; i < 16; ++i) v.push_back(long_factors ? 1.0f + 0.75f * float(i) : 1.0f + 0.0625f * float(i));
    return v;
}

inline std::vector<std::byte> arch_model_bytes(Arch a) {
    gguf::Writer w = gguf::synthetic_model(arch_shape(a), 7);
    if (a == Arch::phi3) {
        w.set("phi3.rope.scaling.original_context_length", gguf::Value::u32(kPhi3TrainedContext));
        w.set("phi3.rope.scaling.attn_factor", gguf::Value::f32(kPhi3AttnFactor));
        w.add_tensor("rope_factors_long.weight", {16}, DType::F32, float_bytes(phi3_rope_factors(true)));
        w.add_tensor("rope_factors_short.weight", {16}, DType::F32, float_bytes(phi3_rope_factors(false)));
    }
    return w.bytes();
}

inline const ArchModel kArchModels[] = {
    {"phi3", arch_shape(Arch::phi3), 0x0c90096043050c77ull},
    {"granite", arch_shape(Arch::granite), 0xa6db4c292c05ce88ull},
    {"smollm3", arch_shape(Arch::smollm3), 0x26e2dc9178c99578ull},
};

}  // namespace forge::test
