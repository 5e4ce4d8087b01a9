#pragma once
// The seeded synthetic models forge tests against llama.cpp (testdata/models/synth-*.gguf): same draws,
// one file per weight type.
#include "forge/traits/model_traits.hpp"

namespace forge::models {

template <DType W>
struct SynthLlama {
    static constexpr std::string_view name = W == DType::F32 ? "synth-llama-f32" : W == DType::F16 ? "synth-llama-f16"
                                           : W == DType::Q8_0 ? "synth-llama-q8_0" : "synth-llama-q4_0";
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 512, .hidden = 128, .ffn = 384, .layers = 2,
                                      .heads = 4, .kv_heads = 2, .head_dim = 32, .max_context = 256,
                                      .rope_base = 10000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = false};
};

struct SynthQwen2Q8_0 {
    static constexpr std::string_view name = "synth-qwen2-q8_0";
    static constexpr ModelShape shape{.arch = Arch::qwen2, .vocab = 320, .hidden = 128, .ffn = 384, .layers = 2,
                                      .heads = 4, .kv_heads = 2, .head_dim = 32, .max_context = 256,
                                      .rope_base = 10000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-5f,
                                      .weights = DType::Q8_0, .qkv_bias = true, .tied_embeddings = false};
};

// qwen3: per-head q/k norms, and heads x head_dim (256) wider than hidden (192).
struct SynthQwen3F32 {
    static constexpr std::string_view name = "synth-qwen3-f32";
    static constexpr ModelShape shape{.arch = Arch::qwen3, .vocab = 400, .hidden = 192, .ffn = 512, .layers = 2,
                                      .heads = 4, .kv_heads = 2, .head_dim = 64, .max_context = 256,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = DType::F32, .qk_norm = true};
};

static_assert(ModelTraits<SynthLlama<DType::F32>> && ModelTraits<SynthLlama<DType::F16>> &&
              ModelTraits<SynthLlama<DType::Q8_0>> && ModelTraits<SynthLlama<DType::Q4_0>> &&
              ModelTraits<SynthQwen2Q8_0> && ModelTraits<SynthQwen3F32>);

}  // namespace forge::models
