#pragma once
// Shapes compiled into the emulator only for the kernel tests: they cover what the catalog's models do
// not (NeoX RoPE with a 64-wide head, 4 query heads per KV head, a sliding window, Q4_0 GEMM with QKV
// bias; an attention scale of its own).
#include "forge/traits/model_traits.hpp"

namespace forge::metal::emu_test {

struct KernelTestShape {
    static constexpr std::string_view name = "kernel-test";
    static constexpr ModelShape shape{.arch = Arch::qwen2, .vocab = 96, .hidden = 256, .ffn = 320, .layers = 1,
                                      .heads = 4, .kv_heads = 1, .head_dim = 64, .max_context = 128,
                                      .rope_base = 50000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = DType::Q4_0, .qkv_bias = true, .tied_embeddings = false,
                                      .sliding_window = 16};
};
static_assert(ModelTraits<KernelTestShape>);

// Granite's multipliers: the attention kernels scale q·k by attention_scale instead of 1/sqrt(head_dim).
struct ScaledAttentionShape {
    static constexpr std::string_view name = "kernel-test-scaled";
    static constexpr ModelShape shape{.arch = Arch::granite, .vocab = 96, .hidden = 128, .ffn = 256, .layers = 1,
                                      .heads = 4, .kv_heads = 2, .head_dim = 32, .max_context = 128,
                                      .rope_base = 10000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = DType::F32, .embedding_scale = 12.0f, .residual_scale = 0.22f,
                                      .attention_scale = 0.05f, .logit_scale = 8.0f};
};
static_assert(ModelTraits<ScaledAttentionShape>);

}  // namespace forge::metal::emu_test
