// The model zoo's traits: distinct names and shapes (find_compiled picks the first equal shape, so two equal
// shapes would make one unreachable), and a converted file of another shape is told apart field by field.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "forge/gguf/model_shape.hpp"
#include "forge/models/catalog.hpp"
#include "forge/quant/quantize_file.hpp"
#include "testdata.hpp"

namespace forge::test {
namespace {

TEST(Zoo, EveryModelInBothWeightTypesWithDistinctNamesAndShapes) {
    EXPECT_EQ(models::kZooCatalog.size(), 38u);
    std::set<std::string_view> names;
    for (const auto& m : models::kCatalog) names.insert(m.name);
    for (const auto& m : models::kZooCatalog) {
        EXPECT_TRUE(names.insert(m.name).second) << "duplicate name " << m.name;
        EXPECT_TRUE(m.shape.weights == DType::Q8_0 || m.shape.weights == DType::Q4_0) << m.name;
        EXPECT_TRUE(shape_problems(m.shape).empty()) << m.name;
        for (const auto& other : models::kCatalog) EXPECT_FALSE(other.shape == m.shape) << m.name << " = " << other.name;
        for (const auto& other : models::kZooCatalog) {
            if (&other != &m) {
                EXPECT_FALSE(other.shape == m.shape) << m.name << " = " << other.name;
            }
        }
    }
}

// What the zoo's static_asserts also pin, here where a wrong config would show as a readable failure.
TEST(Zoo, SharedFactsOfKnownModels) {
    const ModelShape& qwen = models::Qwen2_5_0_5B<DType::Q8_0>::shape;
    EXPECT_TRUE(qwen.qkv_bias && qwen.tied_embeddings);
    EXPECT_EQ(qwen.rope_style, RopeStyle::neox);
    const ModelShape& llama = models::Llama3_1_8B<DType::Q4_0>::shape;
    EXPECT_EQ(llama.rope_base, 500000.0f);
    EXPECT_FALSE(llama.tied_embeddings);
    EXPECT_EQ(llama.group_size(), 4);
    const ModelShape& qwen3 = models::Qwen3_4B<DType::Q8_0>::shape;
    EXPECT_TRUE(qwen3.qk_norm);
    EXPECT_GT(qwen3.q_dim(), qwen3.hidden);  // 32 heads of 128 over a hidden size of 2560
    const ModelShape& smol = models::SmolLM3_3B<DType::Q8_0>::shape;
    EXPECT_TRUE(smol.has_rope(0) && smol.has_rope(2) && !smol.has_rope(3) && smol.has_rope(4) && !smol.has_rope(35));
    const ModelShape& granite = models::Granite3_3_2B<DType::Q8_0>::shape;
    EXPECT_EQ(granite.kq_scale(), 0.015625f);
    EXPECT_EQ(models::Llama3_2_1B<DType::Q8_0>::shape.kq_scale(), 0.125f);  // 1/sqrt(64)
    EXPECT_EQ(models::Phi3_5_Mini<DType::Q8_0>::shape.head_dim, 96);
}

// The default build compiles no zoo model in: find_compiled must not claim one.
TEST(Zoo, DefaultBuildCompilesOnlyTheCoreCatalog) {
    EXPECT_EQ(models::find_compiled(models::SmolLM2_135M<DType::Q8_0>::shape), nullptr);
    EXPECT_NE(models::find_compiled(models::Stories260K::shape), nullptr);
}

TEST(Zoo, ConvertedFileOfAnotherShapeDiffersInNamedFields) {
    const gguf::File source = gguf::File::open(model_path("synth-llama256-Q6_K.gguf"));
    const auto bytes = quantize_model(source, DType::Q8_0).bytes();
    const ModelShape file = gguf::model_shape(gguf::File::parse(bytes));
    const auto diff = shape_mismatches(models::TinyLlama_1_1B<DType::Q8_0>::shape, file);
    std::string all;
    for (const auto& d : diff) all += d + "\n";
    EXPECT_NE(all.find("hidden: expected 2048, found 256"), std::string::npos) << all;
    EXPECT_NE(all.find("vocab: expected 32000, found 512"), std::string::npos) << all;
    EXPECT_EQ(all.find("weights:"), std::string::npos) << all;  // both Q8_0
}

}  // namespace
}  // namespace forge::test
