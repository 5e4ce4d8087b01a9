// Teacher-forced logits of forge's CPU model against llama.cpp's, position by position, through batched
// prefill (the prompt) and single-token decode (the rest), with compiled traits and the runtime shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "forge/model/model.hpp"
#include "forge/models/catalog.hpp"
#include "reference.hpp"

namespace forge::test {
namespace {

struct Case {
    const char* reference;
    const char* model;
    double tolerance;  // max |forge - llama.cpp| in units of llama.cpp's logit std
};

// F32/F16 weights: only summation order and llama.cpp's f16 rounding differ. Q8_0/Q4_0: llama.cpp also
// quantizes activations to Q8_0, which forge does not.
const Case kCases[] = {
    {"stories260K.once.json", "stories260K.gguf", 0.02},  {"stories260K.park.json", "stories260K.gguf", 0.02},
    {"synth-llama-f32.json", "synth-llama-f32.gguf", 0.02}, {"synth-llama-f16.json", "synth-llama-f16.gguf", 0.02},
    {"synth-llama-q8_0.json", "synth-llama-q8_0.gguf", 0.15}, {"synth-llama-q4_0.json", "synth-llama-q4_0.gguf", 0.15},
    {"synth-qwen2-q8_0.json", "synth-qwen2-q8_0.gguf", 0.15},
};

template <class Traits>
void run_case(const Case& c) {
    const Reference ref = load_reference(c.reference);
    const double bound = c.tolerance * ref.logits_std;
    Model<Traits> model(gguf::File::open(model_path(c.model)));
    const Deviation d = compare(model, ref, bound);
    EXPECT_LE(d.max_abs, bound) << c.reference << ": max |forge - llama.cpp| = " << d.max_abs / ref.logits_std << " x std";
    EXPECT_GT(d.argmax_checked, 0);
    std::printf("[ %s | %s ] max deviation %.4f x std (bound %.2f), %d argmax positions checked\n",
                c.reference, Model<Traits>::kCompiled ? "compiled" : "runtime", d.max_abs / ref.logits_std, c.tolerance,
                d.argmax_checked);
}

// Runs a case with the catalog traits whose name matches the model file.
template <class... T>
void run_compiled(const Case& c, std::tuple<T...>*) {
    const std::string stem = std::string(c.model).substr(0, std::string(c.model).rfind('.'));
    int found = 0;
    ((stem == T::name ? (run_case<T>(c), ++found) : 0), ...);
    ASSERT_EQ(found, 1) << "no compiled traits named " << stem;
}

class ReferenceLogits : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceLogits, RuntimeShapeMatchesLlamaCpp) { run_case<Dynamic>(GetParam()); }
TEST_P(ReferenceLogits, CompiledTraitsMatchLlamaCpp) {
    run_compiled(GetParam(), static_cast<models::Catalog*>(nullptr));
}

INSTANTIATE_TEST_SUITE_P(AllReferences, ReferenceLogits, ::testing::ValuesIn(kCases), [](const auto& info) {
    std::string n = info.param.reference;
    n = n.substr(0, n.size() - 5);
    std::replace_if(n.begin(), n.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
    return n;
});

// Decode and prefill share every kernel, so a token's logits are bit-identical either way.
TEST(ModelEntryPoints, PrefillAndDecodeAgreeExactly) {
    const Reference ref = load_reference("synth-qwen2-q8_0.json");
    Model<> a(gguf::File::open(model_path("synth-qwen2-q8_0.gguf")), {.max_batch = 5});
    Model<> b(gguf::File::open(model_path("synth-qwen2-q8_0.gguf")));
    const int V = a.shape().vocab;
    std::vector<float> batched(ref.prompt.size() * std::size_t(V));
    a.prefill(ref.prompt, batched.data());
    for (std::size_t i = 0; i < ref.prompt.size(); ++i) {
        const auto l = b.decode(ref.prompt[i]);
        for (int v = 0; v < V; ++v) ASSERT_EQ(l[v], batched[i * std::size_t(V) + std::size_t(v)]) << "token " << i;
    }
}

TEST(ModelGreedy, Stories260KFromBosMatchesLlama2c) {
    const json::Value golden = json::parse(read_file(testdata("reference/stories260K.golden.json")));
    const auto expected = ids(golden.at("generated"));
    Model<models::Stories260K> m(gguf::File::open(model_path("stories260K.gguf")));
    std::int32_t tok = 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto l = m.decode(tok);
        tok = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        ASSERT_EQ(tok, expected[i]) << "token " << i;
    }
}

TEST(ModelErrors, ContextFullIsAnError) {
    Model<> m(gguf::File::open(model_path("stories260K.gguf")), {.context = 8});
    std::vector<std::int32_t> toks(8, 1);
    m.prefill(toks);
    try {
        m.decode(1);
        FAIL() << "decode past the context must throw";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("context is full"), std::string::npos) << e.what();
    }
    m.reset();
    EXPECT_NO_THROW(m.decode(1));
}

TEST(ModelErrors, TokenOutsideVocabularyIsAnError) {
    Model<> m(gguf::File::open(model_path("stories260K.gguf")));
    EXPECT_THROW(m.decode(512), Error);
    EXPECT_THROW(m.decode(-1), Error);
}

TEST(ModelErrors, WrongFileForCompiledTraitsNamesEveryMismatch) {
    try {
        Model<models::Stories260K> m(gguf::File::open(model_path("synth-qwen2-q8_0.gguf")));
        FAIL() << "a different model must be refused";
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const char* field : {"arch: expected llama, found qwen2", "vocab: expected 512, found 320",
                                  "hidden: expected 64, found 128", "weights: expected F32, found Q8_0",
                                  "qkv_bias: expected false, found true", "rope_style"})
            EXPECT_NE(msg.find(field), std::string::npos) << msg;
    }
}

TEST(ModelErrors, UnsupportedWeightTypeSuggestsQuantize) {
    try {
        Model<> m(gguf::File::open(model_path("synth-llama256-Q6_K.gguf")));
        FAIL() << "Q6_K weights must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("forge quantize"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace forge::test
