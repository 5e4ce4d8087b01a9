#pragma once
// The synthetic models that bench_model and the comparison scripts (through write_models) measure: the
// zoo's shapes of docs/performance.md, seeded files named DIR/<name>.gguf, written on first use.
#include <string>

#include "forge/gguf/synthetic_model.hpp"
#include "forge/models/llama.hpp"
#include "forge/models/qwen2_5.hpp"
#include "forge/models/smollm2.hpp"

namespace forge::bench {

using SmolQ8 = models::SmolLM2_135M<DType::Q8_0>;
using SmolQ4 = models::SmolLM2_135M<DType::Q4_0>;
using Qwen = models::Qwen2_5_0_5B<DType::Q8_0>;
using TinyQ4 = models::TinyLlama_1_1B<DType::Q4_0>;
using TinyQ8 = models::TinyLlama_1_1B<DType::Q8_0>;
using Llama8 = models::Llama3_1_8B<DType::Q4_0>;  // a 4.5 GB file

template <class... Traits>
struct ShapeList {
    // f.template operator()<T>() for each shape, in order.
    template <class F>
    static void each(F&& f) {
        (f.template operator()<Traits>(), ...);
    }
};
using Shapes = ShapeList<SmolQ8, SmolQ4, Qwen, TinyQ4, TinyQ8, Llama8>;

// DIR/<name>.gguf for shape T, written unless it exists.
template <class T>
std::string model_file(const std::string& dir) {
    const std::string path = dir + "/" + std::string(T::name) + ".gguf";
    gguf::write_synthetic_model(path, T::shape);
    return path;
}

}  // namespace forge::bench
