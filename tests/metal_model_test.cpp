// The GPU forward pass through the MSL emulator against the CPU model and llama.cpp's reference logits,
// teacher-forced: batched prefill of the prompt (GEMM + causal flash attention) and single-token decode
// (mat-vec + split-K flash attention) for the rest, for every test model, the shapes no catalog lists
// included. Runtime shapes' MSL text against compiled traits', synthetic models of the zoo's shapes
// against the CPU, greedy generation, on-device sampling, the errors of the entry point, and the Metal
// executor (which only runs on Apple).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <tuple>

#include "forge/core/mapped_file.hpp"
#include "forge/gguf/synthetic_model.hpp"
#include "forge/metal/open.hpp"
#include "forge/model/generate.hpp"
#include "forge/model/model_adapter.hpp"
#include "forge/model/open_model.hpp"
#include "forge/models/catalog.hpp"
#include "forge/sample/categorical.hpp"
#include "gguf_fixtures.hpp"
#include "reference.hpp"
#include "arch_models.hpp"
#include "rope_freqs_model.hpp"

namespace forge::test {
namespace {

struct Case {
    const char* reference;
    const char* model;
    double llama_tolerance;  // max |metal - llama.cpp| in units of llama.cpp's logit std (the CPU path's bounds)
    double cpu_tolerance;    // max |metal - forge CPU| in the same unit
};

// F32: the same math as the CPU but for summation order and, in prefill attention, the queries and
// softmax weights rounded to half for the simdgroup products (as llama.cpp's Metal flash attention keeps
// its queries in half): measured up to 1.6e-3 x std (phi3, smollm3), bounded at kPlainCpuBound. F16: both
// decode the same f16 weights exactly into f32 products, so the same bound holds (measured 2e-4 x std).
// Q8_0/Q4_0: the CPU quantizes activations to Q8_0 for quantized weights, as llama.cpp does, while the
// Metal kernels keep them f32 (the prefill GEMM rounds them to half, 11 bits against Q8_0's 8); measured
// 0.032-0.044 x std, bounded at 0.06. K-quant mixes: the CPU
// quantizes activations to Q8_K for them, as llama.cpp does, which moves logits further: the Metal path
// is 0.07-0.10 x std from either (measured), bounded at 0.15.
constexpr double kPlainCpuBound = 0.004;
const Case kCases[] = {
    {"stories260K.once.json", "stories260K.gguf", 0.02, kPlainCpuBound},
    {"synth-llama-f32.json", "synth-llama-f32.gguf", 0.02, kPlainCpuBound},
    {"synth-llama-f16.json", "synth-llama-f16.gguf", 0.02, kPlainCpuBound},
    {"synth-llama-q8_0.json", "synth-llama-q8_0.gguf", 0.15, 0.06},
    {"synth-llama-q4_0.json", "synth-llama-q4_0.gguf", 0.15, 0.06},
    {"synth-qwen2-q8_0.json", "synth-qwen2-q8_0.gguf", 0.15, 0.06},
    {"synth-llama256-f32.json", "synth-llama256-f32.gguf", 0.02, kPlainCpuBound},  // a shape no catalog lists
    // llama.cpp's K-quant mixes of that model: Q2_K (with Q3_K, Q6_K), Q4_K_M (Q4_K, Q6_K), Q5_K_S (Q5_K,
    // Q6_K), Q6_K; every matrix type, embeddings and LM head included, through its own kernels.
    {"synth-llama256-Q2_K.json", "synth-llama256-Q2_K.gguf", 0.15, 0.15},
    {"synth-llama256-Q4_K_M.json", "synth-llama256-Q4_K_M.gguf", 0.15, 0.15},
    {"synth-llama256-Q5_K_S.json", "synth-llama256-Q5_K_S.gguf", 0.15, 0.15},
    {"synth-llama256-Q6_K.json", "synth-llama256-Q6_K.gguf", 0.15, 0.15},
    // qwen3: per-head q/k norms, heads x head_dim wider than hidden; F32, and a Q4_K_M mix.
    {"synth-qwen3-f32.json", "synth-qwen3-f32.gguf", 0.02, kPlainCpuBound},
    {"synth-qwen3-Q4_K_M.json", "synth-qwen3-Q4_K_M.gguf", 0.15, 0.15},
};

constexpr ModelOptions kEmu{.max_batch = 64, .backend = Backend::metal_emu};

// Teacher-forced logits of the GPU model on `executor` (the emulator unless given) and the CPU model,
// each opened by `open`, against each other and against llama.cpp's reference.
template <class Open>
void match_cpu_and_llama_cpp(const std::string& label, Open&& open, const Reference& ref, double llama_tolerance,
                             double cpu_tolerance, Backend executor = Backend::metal_emu) {
    ModelOptions options = kEmu;
    options.backend = executor;
    auto gpu = open_model(open(), options);
    auto cpu = open_model(open());
    EXPECT_NE(gpu->device_name().find(executor == Backend::metal_emu ? "metal emulator" : "cuda"), std::string::npos) << gpu->device_name();
    const int V = gpu->shape().vocab;
    const std::size_t P = ref.prompt.size();
    std::vector<float> g(P * std::size_t(V)), k(P * std::size_t(V));
    gpu->prefill(ref.prompt, g.data());
    cpu->prefill(ref.prompt, k.data());
    double vs_llama = 0, vs_cpu = 0;
    int argmax_checked = 0;
    for (std::size_t i = 0; i < ref.steps.size(); ++i) {
        const auto& step = ref.steps[i];
        std::vector<float> gl, kl;
        if (i < P) {
            gl.assign(g.begin() + std::ptrdiff_t(i * V), g.begin() + std::ptrdiff_t((i + 1) * V));
            kl.assign(k.begin() + std::ptrdiff_t(i * V), k.begin() + std::ptrdiff_t((i + 1) * V));
        } else {
            const auto a = gpu->decode(step.input);
            gl.assign(a.begin(), a.end());
            const auto b = cpu->decode(step.input);
            kl.assign(b.begin(), b.end());
        }
        for (int v = 0; v < V; ++v) {
            vs_llama = std::max(vs_llama, double(std::fabs(gl[v] - step.logits[v])));
            vs_cpu = std::max(vs_cpu, double(std::fabs(gl[v] - kl[v])));
        }
        if (top2_margin(step.logits) > llama_tolerance * ref.logits_std) {
            ++argmax_checked;
            EXPECT_EQ(std::max_element(gl.begin(), gl.end()) - gl.begin(), step.argmax) << "position " << i;
        }
    }
    const double sd = ref.logits_std;
    EXPECT_LE(vs_llama, llama_tolerance * sd) << "max |metal - llama.cpp| = " << vs_llama / sd << " x std";
    EXPECT_LE(vs_cpu, cpu_tolerance * sd) << "max |metal - cpu| = " << vs_cpu / sd << " x std";
    EXPECT_GT(argmax_checked, 0);
    std::printf("[ %s ] %s vs cpu %.2e x std (bound %.3f), vs llama.cpp %.4f x std (bound %.2f), %zu positions\n", label.c_str(),
                std::string(backend_name(executor)).c_str(), vs_cpu / sd, cpu_tolerance, vs_llama / sd, llama_tolerance, ref.steps.size());
}

class EmulatedMetalLogits : public ::testing::TestWithParam<Case> {};

TEST_P(EmulatedMetalLogits, MatchCpuAndLlamaCpp) {
    const Case& c = GetParam();
    match_cpu_and_llama_cpp(c.reference, [&] { return gguf::File::open(model_path(c.model)); }, load_reference(c.reference),
                            c.llama_tolerance, c.cpu_tolerance);
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
    std::string n = info.param.reference;
    n = n.substr(0, n.size() - 5);
    std::replace_if(n.begin(), n.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
    return n;
}

INSTANTIATE_TEST_SUITE_P(AllReferences, EmulatedMetalLogits, ::testing::ValuesIn(kCases), case_name);

// The same models on the CUDA executor: the MSL text compiled by nvcc, run on an NVIDIA GPU with its
// lanes truly parallel, within the same bounds.
class CudaMetalLogits : public ::testing::TestWithParam<Case> {};

TEST_P(CudaMetalLogits, MatchCpuAndLlamaCpp) {
    if (const std::string why = metal::cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    const Case& c = GetParam();
    match_cpu_and_llama_cpp(c.reference, [&] { return gguf::File::open(model_path(c.model)); }, load_reference(c.reference),
                            c.llama_tolerance, c.cpu_tolerance, Backend::metal_cuda);
}

INSTANTIATE_TEST_SUITE_P(AllReferences, CudaMetalLogits, ::testing::ValuesIn(kCases), case_name);

// Llama-3 RoPE frequency factors (rope_freqs.weight) reach the rope kernel: the F32 bounds above.
TEST(EmulatedMetalModel, RopeFreqsMatchCpuAndLlamaCpp) {
    match_cpu_and_llama_cpp("synth-llama-f32-rope-freqs", open_rope_freqs_model, load_reference_file(kRopeFreqsReference), 0.02,
                            kPlainCpuBound);
}

// phi3 (fused tensors, LongRoPE's factors and attention factor), granite (multipliers) and smollm3
// (RoPE-free layers) reach the GPU kernels: the F32 bounds above.
TEST(EmulatedMetalModel, ArchitecturesMatchCpuAndLlamaCpp) {
    for (const ArchModel& m : kArchModels) {
        const std::vector<std::byte> bytes = arch_model_bytes(m.shape.arch);
        const std::string name = std::string("synth-") + m.name + "-f32";
        match_cpu_and_llama_cpp(name, [&] { return gguf::File::parse(bytes); },
                                load_reference_file(FORGE_SOURCE_DIR "/tests/data/" + name + ".json"), 0.02, kPlainCpuBound);
    }
}

template <class... T>
void expect_runtime_text_is_compiled_text(std::tuple<T...>*) {
    const auto one = [](std::string_view name, const ModelShape& shape, std::string_view compiled) {
        EXPECT_EQ(metal::runtime_library(shape)->text.view(), compiled) << name;
    };
    (one(T::name, T::shape, metal_src::library<T>.text.view()), ...);
}

TEST(EmulatedMetalModel, RuntimeShapeTextIsTheCompiledTraitsText) {
    // The library a shape read from a file gets is assembled at run time by the same code compiled traits
    // run at compile time: byte for byte the same text, for every shape forge ships traits of.
    expect_runtime_text_is_compiled_text(static_cast<models::Catalog*>(nullptr));
    expect_runtime_text_is_compiled_text(static_cast<models::ZooCatalog*>(nullptr));
}

TEST(EmulatedMetalModel, CompiledTraitsAndRuntimeShapeComputeTheSame) {
    const auto open = [] { return gguf::File::open(model_path("synth-llama-q8_0.gguf")); };
    using Traits = models::SynthLlama<DType::Q8_0>;
    auto compiled = open_model<Traits>(open(), kEmu);
    auto runtime = open_model(open(), kEmu);
    EXPECT_EQ(compiled->compiled_name(), Traits::name);
    EXPECT_TRUE(runtime->compiled_name().empty());
    const std::vector<std::int32_t> prompt = {1, 17, 200, 31, 99};
    const auto a = compiled->prefill(prompt);
    const std::vector<float> la(a.begin(), a.end());
    const auto b = runtime->prefill(prompt);
    EXPECT_TRUE(std::equal(la.begin(), la.end(), b.begin()));
    // Compiled traits refuse a file of another shape, naming the fields.
    try {
        open_model<Traits>(gguf::File::open(model_path("stories260K.gguf")), kEmu);
        FAIL() << "another shape must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("hidden: expected 128, found 64"), std::string::npos) << e.what();
    }
}

TEST(EmulatedMetalModel, MixedTypesGetEachTypesKernelsAndCompiledTraitsRefuseOneTheyLack) {
    // synth-llama-f16 with one matrix's bytes labelled BF16 (as many bytes): a file of two weight types.
    const auto f16 = gguf::File::open(model_path("synth-llama-f16.gguf"));
    const std::vector<std::byte> bytes = rewrite(f16, {}, {{"blk.1.ffn_down.weight", DType::BF16}}).bytes();
    // Opened by its shape, its library holds the kernels of both, and the GPU computes what the CPU does.
    auto gpu = open_model(gguf::File::parse(bytes), kEmu);
    auto cpu = open_model(gguf::File::parse(bytes));
    const std::vector<std::int32_t> prompt = {1, 17, 200, 31, 99, 7, 300, 12, 45};  // a batch: the GEMM-sized prefill
    const auto g0 = gpu->prefill(prompt);
    const std::vector<float> g(g0.begin(), g0.end());
    const auto c = cpu->prefill(prompt);
    double sum = 0, sq = 0, dev = 0;
    for (std::size_t v = 0; v < c.size(); ++v) {
        sum += c[v], sq += double(c[v]) * c[v];
        dev = std::max(dev, double(std::fabs(g[v] - c[v])));
    }
    const double sd = std::sqrt(sq / double(c.size()) - (sum / double(c.size())) * (sum / double(c.size())));
    EXPECT_LE(dev, 0.002 * sd) << "max |metal - cpu| = " << dev / sd << " x std";
    std::printf("[ F16 + BF16 ] metal-emu vs cpu %.2e x std\n", dev / sd);
    // Compiled traits of its shape, the file unknown when they were built, hold no BF16 kernels.
    try {
        open_model<models::SynthLlama<DType::F16>>(gguf::File::parse(bytes), kEmu);
        FAIL() << "a weight type outside the compiled library must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no kernels for its BF16 weights (it holds F32, F16, Q8_0, Q4_0)"), std::string::npos)
            << e.what();
    }
}

// A synthetic model of T's shape cut to `layers` layers (random weights, written by forge's writer): every
// dimension but the depth is the published model's, its vocabulary of 32k to 152k rows included.
template <class T>
std::vector<std::byte> zoo_shaped_model(int layers) {
    ModelShape s = T::shape;
    s.layers = layers;
    return gguf::synthetic_model(s, 11).bytes();
}

// The emulated GPU path and the CPU path on a prompt and the first decoded tokens of a synthetic model of
// T's shape: logits within 0.12 x std, the same greedy tokens where the CPU's top two are further apart.
// The bound is for quantized weights: the CPU quantizes activations to Q8_0 as llama.cpp does, the Metal
// kernels keep them f32 or, in the prefill GEMM, half (measured 0.06-0.08 x std on these shapes' Q8_0, 0.012 on the 8B shape's Q4_0).
template <class T>
void expect_zoo_shape_agrees(int layers) {
    const std::vector<std::byte> bytes = zoo_shaped_model<T>(layers);
    auto gpu = open_model(gguf::File::parse(bytes), {.context = 8, .backend = Backend::metal_emu});
    auto cpu = open_model(gguf::File::parse(bytes), {.context = 8, .threads = 2});
    ASSERT_EQ(gpu->shape(), cpu->shape());
    EXPECT_EQ(gpu->shape().vocab, T::shape.vocab);
    const std::vector<std::int32_t> tokens = {1, 4242 % T::shape.vocab, 777};
    const auto g0 = gpu->prefill(tokens);
    std::vector<float> g(g0.begin(), g0.end());
    const auto c0 = cpu->prefill(tokens);
    std::vector<float> c(c0.begin(), c0.end());
    for (int step = 0; step < 3; ++step) {
        double sum = 0, sq = 0, dev = 0;
        for (std::size_t v = 0; v < c.size(); ++v) {
            sum += c[v], sq += double(c[v]) * c[v];
            dev = std::max(dev, double(std::fabs(g[v] - c[v])));
        }
        const double sd = std::sqrt(sq / double(c.size()) - (sum / double(c.size())) * (sum / double(c.size())));
        EXPECT_LE(dev, 0.12 * sd) << T::name << " step " << step << ": max |metal - cpu| = " << dev / sd << " x std";
        const auto next = std::int32_t(std::max_element(c.begin(), c.end()) - c.begin());
        if (top2_margin(c) > 0.12 * sd) {
            EXPECT_EQ(std::max_element(g.begin(), g.end()) - g.begin(), next) << T::name << " step " << step;
        }
        std::printf("[ %s, %d layers ] step %d: metal-emu vs cpu %.4f x std\n", std::string(T::name).c_str(), layers, step, dev / sd);
        if (step == 2) break;
        const auto gd = gpu->decode(next);
        g.assign(gd.begin(), gd.end());
        const auto cd = cpu->decode(next);
        c.assign(cd.begin(), cd.end());
    }
}

TEST(EmulatedMetalModel, ZooShapesAgreeWithTheCpu) {
    expect_zoo_shape_agrees<models::SmolLM2_135M<DType::Q8_0>>(2);
    expect_zoo_shape_agrees<models::Qwen2_5_0_5B<DType::Q8_0>>(2);
    expect_zoo_shape_agrees<models::TinyLlama_1_1B<DType::Q8_0>>(2);
    expect_zoo_shape_agrees<models::Llama3_2_1B<DType::Q8_0>>(2);
}

TEST(EmulatedMetalModel, ZooShapesOfTheNewerArchitecturesAgreeWithTheCpu) {
    expect_zoo_shape_agrees<models::Qwen3_0_6B<DType::Q8_0>>(2);
    expect_zoo_shape_agrees<models::SmolLM3_3B<DType::Q8_0>>(4);  // layer 3 without RoPE
    expect_zoo_shape_agrees<models::Phi3_5_Mini<DType::Q8_0>>(2);
    expect_zoo_shape_agrees<models::Granite3_3_2B<DType::Q8_0>>(2);
}

TEST(EmulatedMetalModel, Llama8BShapeCutToTwoLayersAgreesWithTheCpu) {
    expect_zoo_shape_agrees<models::Llama3_1_8B<DType::Q4_0>>(2);
}

// Generation on each executor: the emulator everywhere, the CUDA executor where there is a GPU.
class MetalGeneration : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        if (GetParam() == Backend::metal_cuda)
            if (const std::string why = metal::cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    }
    ModelOptions options() const {
        ModelOptions o = kEmu;
        o.backend = GetParam();
        return o;
    }
    // A log-probability drawn on the device against one computed on the host: the emulator's exp is the
    // CPU's, a GPU's is within its documented ulps.
    void expect_logprobs(const std::vector<float>& device, const std::vector<float>& host, const std::string& what) const {
        ASSERT_EQ(device.size(), host.size()) << what;
        for (std::size_t i = 0; i < host.size(); ++i) {
            if (GetParam() == Backend::metal_emu) EXPECT_EQ(device[i], host[i]) << what << " token " << i;
            else EXPECT_NEAR(device[i], host[i], 1e-6) << what << " token " << i;
        }
    }
};
INSTANTIATE_TEST_SUITE_P(Executors, MetalGeneration, ::testing::Values(Backend::metal_emu, Backend::metal_cuda),
                         [](const auto& info) { return std::string(info.param == Backend::metal_cuda ? "cuda" : "emulator"); });

TEST_P(MetalGeneration, GreedyStories260KFromBosMatchesLlama2c) {
    const json::Value golden = json::parse(read_file(testdata("reference/stories260K.golden.json")));
    const auto expected = ids(golden.at("generated"));
    ASSERT_EQ(expected.size(), 200u);
    auto m = open_model(gguf::File::open(model_path("stories260K.gguf")), options());
    std::int32_t tok = 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto l = m->decode(tok);
        tok = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
        ASSERT_EQ(tok, expected[i]) << "token " << i;
    }
}

TEST_P(MetalGeneration, DeviceSamplerEqualsCpuSampler) {
    auto m = metal::open_gpu_model(gguf::File::open(model_path("synth-qwen2-q8_0.gguf")), options());
    const std::vector<std::int32_t> prompt = {1, 17, 200, 31};
    const auto logits = m->prefill(prompt);
    const std::vector<float> host(logits.begin(), logits.end());
    for (const float t : {0.0f, 0.5f, 1.0f, 1.7f, 1e-6f})
        for (const float u : {0.0f, 0.25f, 0.5f, 0.75f, 0.9999f}) {
            const SampledToken a = m->sample(t, u), b = sample_categorical(host, t, u);
            EXPECT_EQ(a.id, b.id) << "t " << t << " u " << u;
            expect_logprobs({a.logprob}, {b.logprob}, "t " + std::to_string(t) + " u " + std::to_string(u));
        }
    EXPECT_THROW(m->sample(-1.0f, 0.5f), Error);
    EXPECT_THROW(m->sample(1.0f, 1.0f), Error);
    m->truncate(3);  // the last token's logits are gone
    EXPECT_THROW(m->sample(1.0f, 0.5f), Error);
}

// Seeded generation on the device path (a plain sampler: the logits never leave the device) gives the
// tokens and log-probabilities the host path gives over the same logits (top_logprobs keeps the draw on
// the host and changes nothing in it).
TEST_P(MetalGeneration, SamplingOnTheDeviceEqualsTheHostPath) {
    const auto open = [&] { return metal::open_gpu_model(gguf::File::open(model_path("stories260K.gguf")), options()); };
    const Tokenizer tok = Tokenizer::from_gguf(gguf::File::open(model_path("stories260K.gguf")));
    const auto prompt = tok.encode("Once upon a time", true);
    for (const float t : {0.0f, 0.8f, 1.0f, 1.5f}) {
        const std::string at = "t " + std::to_string(t);
        auto device = open(), host = open();
        GenerationParams p{.max_tokens = 40, .sampling = {.temperature = t, .seed = 21}};
        const auto a = generate(*device, tok, prompt, p);
        EXPECT_EQ(device->logits_copies(), 0u) << at;
        p.top_logprobs = 1;
        const auto b = generate(*host, tok, prompt, p);
        EXPECT_GT(host->logits_copies(), 0u);
        ASSERT_GT(a.tokens.size(), 5u);
        EXPECT_EQ(a.tokens, b.tokens) << at;
        expect_logprobs(a.logprobs, b.logprobs, at);
        EXPECT_EQ(a.text, b.text);
        // The logits the device path never copied are still there, and the same.
        const auto la = device->logits(), lb = host->logits();
        EXPECT_EQ(std::vector<float>(la.begin(), la.end()), std::vector<float>(lb.begin(), lb.end())) << at;
        EXPECT_EQ(device->logits_copies(), 1u);
        // Continuing the sequence (no prompt) goes on from the logits on the device.
        p.top_logprobs = 0;
        p.max_tokens = 10;
        const auto c = generate(*device, tok, {}, p);
        p.top_logprobs = 1;
        const auto d = generate(*host, tok, {}, p);
        EXPECT_EQ(c.tokens, d.tokens) << at;
        expect_logprobs(c.logprobs, d.logprobs, at);
    }
}

// Logits that are not numbers are refused with the host check's words whether the token is drawn on the
// device (which then fetches them to say where) or on the host.
TEST(EmulatedMetalModel, NonFiniteLogitsAreReportedOnTheDevicePathToo) {
    const MappedFile mapped(model_path("stories260K.gguf"));
    std::vector<std::byte> image(mapped.bytes().begin(), mapped.bytes().end());
    {
        const auto f = gguf::File::parse(image);
        const gguf::TensorInfo& t = f.tensor("output_norm.weight");
        ASSERT_EQ(t.dtype(), DType::F32);
        const float nan = NAN;
        std::memcpy(image.data() + (t.data - image.data()), &nan, 4);
    }
    const Tokenizer tok = Tokenizer::from_gguf(gguf::File::parse(image));
    const std::vector<std::int32_t> prompt = {tok.bos(), 300, 301};
    std::string device_error, host_error;
    for (const int top_logprobs : {0, 1}) {
        auto m = metal::open_gpu_model(gguf::File::parse(image), kEmu);
        GenerationParams p{.max_tokens = 4, .sampling = {.temperature = 0.0f}, .top_logprobs = top_logprobs};
        try {
            generate(*m, tok, prompt, p);
            ADD_FAILURE() << "NaN logits were sampled from";
        } catch (const Error& e) {
            (top_logprobs == 0 ? device_error : host_error) = e.what();
        }
    }
    EXPECT_NE(device_error.find("the model computed NaN logits (token 0 at position 2)"), std::string::npos) << device_error;
    EXPECT_EQ(device_error, host_error);
}

TEST(EmulatedMetalModel, EntryPointErrors) {
    // What the CPU path refuses, the GPU path refuses with the same words.
    const auto unsupported_type = unsupported_type_model_bytes();
    const auto unknown_arch =
        rewrite(gguf::File::open(model_path("synth-llama-f32.gguf")), {{"general.architecture", gguf::Value::string("bert")}}).bytes();
    const auto files = {std::pair<const char*, std::function<gguf::File()>>{"I32 weights", [&] { return gguf::File::parse(unsupported_type); }},
                        {"a bert file", [&] { return gguf::File::parse(unknown_arch); }}};
    for (const auto& [file, open] : files) {
        std::string cpu, gpu;
        try {
            open_model(open());
        } catch (const Error& e) {
            cpu = e.what();
        }
        try {
            open_model(open(), kEmu);
        } catch (const Error& e) {
            gpu = e.what();
        }
        EXPECT_FALSE(cpu.empty()) << file;
        EXPECT_EQ(gpu, cpu) << file;
    }
    try {
        open_model(gguf::File::open(model_path("stories260K.gguf")), {.context = 100000, .backend = Backend::metal_emu});
        FAIL() << "a context over the model's maximum must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("exceeds the model's maximum of 512"), std::string::npos) << e.what();
    }
}

TEST(EmulatedMetalModel, AMissingCompilerIsAClearError) {
    // An empty cache, so the library must be compiled.
    const std::string cache = (std::filesystem::temp_directory_path() / ("forge-emu-nocxx-" + std::to_string(::getpid()))).string();
    const char* old_cache = std::getenv("FORGE_EMU_CACHE");
    const std::string saved = old_cache ? old_cache : "";
    ::setenv("FORGE_EMU_CXX", "/nonexistent/forge-test-c++", 1);
    ::setenv("FORGE_EMU_CACHE", cache.c_str(), 1);
    std::string msg;
    try {
        open_model(gguf::File::open(model_path("stories260K.gguf")), kEmu);
    } catch (const Error& e) {
        msg = e.what();
    }
    ::unsetenv("FORGE_EMU_CXX");
    if (old_cache) ::setenv("FORGE_EMU_CACHE", saved.c_str(), 1);
    else ::unsetenv("FORGE_EMU_CACHE");
    std::filesystem::remove_all(cache);
    EXPECT_NE(msg.find("the C++ compiler '/nonexistent/forge-test-c++' is not installed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("apt-get install g++"), std::string::npos) << msg;
}

TEST(EmulatedMetalModel, ContextAndVocabularyErrors) {
    auto m = open_model(gguf::File::open(model_path("stories260K.gguf")), {.context = 4, .backend = Backend::metal_emu});
    EXPECT_THROW(m->decode(512), Error);
    const std::vector<std::int32_t> four(4, 1);
    m->prefill(four);
    EXPECT_THROW(m->decode(1), Error);
    m->reset();
    EXPECT_NO_THROW(m->decode(1));
}

TEST(MetalExecutor, RunsStories260KOnTheGpu) {
    const auto open = [](Backend b) { return open_model(gguf::File::open(model_path("stories260K.gguf")), {.backend = b}); };
#if defined(FORGE_METAL)
    auto m = open(Backend::metal);
    auto e = open(Backend::metal_emu);
    const std::vector<std::int32_t> prompt = {1, 403, 407, 261};
    const auto a = m->prefill(prompt);
    const std::vector<float> ga(a.begin(), a.end());
    const auto b = e->prefill(prompt);
    double d = 0;
    for (std::size_t i = 0; i < ga.size(); ++i) d = std::max(d, double(std::fabs(ga[i] - b[i])));
    EXPECT_LE(d, 1e-3);
#else
    try {
        open(Backend::metal);
        FAIL() << "without the Metal executor the metal backend must refuse";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Metal is unavailable"), std::string::npos) << e.what();
    }
    GTEST_SKIP() << "the Metal executor is built only on Apple with -DFORGE_METAL=ON; this build has no Metal device";
#endif
}

}  // namespace
}  // namespace forge::test
