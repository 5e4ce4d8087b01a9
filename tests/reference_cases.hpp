#pragma once
// The test models llama.cpp's references were made from, each with how far forge may be from them.

namespace forge::test {

struct Case {
    const char* reference;
    const char* model;
    double tolerance;  // max |forge - llama.cpp| in units of llama.cpp's logit std
};

// F32/F16 weights: only summation order and llama.cpp's f16 rounding differ. Q8_0/Q4_0: llama.cpp also
// quantizes activations to Q8_0, which forge does not.
inline const Case kCases[] = {
    {"stories260K.once.json", "stories260K.gguf", 0.02},  {"stories260K.park.json", "stories260K.gguf", 0.02},
    {"synth-llama-f32.json", "synth-llama-f32.gguf", 0.02}, {"synth-llama-f16.json", "synth-llama-f16.gguf", 0.02},
    {"synth-llama-q8_0.json", "synth-llama-q8_0.gguf", 0.15}, {"synth-llama-q4_0.json", "synth-llama-q4_0.gguf", 0.15},
    {"synth-qwen2-q8_0.json", "synth-qwen2-q8_0.gguf", 0.15},
    {"synth-qwen3-f32.json", "synth-qwen3-f32.gguf", 0.02},
};

// Files whose matrices mix weight types, as llama.cpp's K-quant files do (Q4_K_M: Q4_K and Q6_K): they run
// on the runtime shape, since compiled traits fix one layer type. (synth-llama256-Q6_K is Q6_K throughout but
// has no compiled traits.) llama.cpp quantizes activations to Q8_K for the K-quants.
inline const Case kMixedCases[] = {
    {"synth-qwen3-Q4_K_M.json", "synth-qwen3-Q4_K_M.gguf", 0.15},
    {"synth-llama256-Q2_K.json", "synth-llama256-Q2_K.gguf", 0.15},
    {"synth-llama256-Q4_K_M.json", "synth-llama256-Q4_K_M.gguf", 0.15},
    {"synth-llama256-Q5_K_S.json", "synth-llama256-Q5_K_S.gguf", 0.15},
    {"synth-llama256-Q6_K.json", "synth-llama256-Q6_K.gguf", 0.15},
};

}  // namespace forge::test
