// `forge inspect` run as a user runs it: the built binary, its stdout, stderr and exit code.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "forge/models/catalog.hpp"
#include "gguf_fixtures.hpp"
#include "rope_freqs_model.hpp"
#include "run_process.hpp"
#include "testdata.hpp"

namespace {

using forge::test::ProcessResult;
using forge::test::run_process;

ProcessResult inspect(const std::string& path) { return run_process({FORGE_CLI, "inspect", path}); }

// The text after `key` on the first line that starts with it (after indentation) followed by spaces,
// trimmed; "<absent>" when no line does.
std::string field(const std::string& out, std::string_view key) {
    const std::regex line("(^|\n) *" + std::regex_replace(std::string(key), std::regex(R"([.()\[\]])"), R"(\$&)") +
                          " +([^\n]*)");
    std::smatch m;
    return std::regex_search(out, m, line) ? m[2].str() : "<absent>";
}

bool contains(const std::string& s, std::string_view needle) { return s.find(needle) != std::string::npos; }

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A file holding `bytes` for as long as it lives, named after the running test so parallel test
// processes never share one.
struct TempFile {
    explicit TempFile(std::string_view bytes) {
        const auto* info = testing::UnitTest::GetInstance()->current_test_info();
        path = (std::filesystem::temp_directory_path() /
                ("forge-" + std::string(info->name()) + "-" + std::to_string(::getpid()) + ".gguf"))
                   .string();
        std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { std::filesystem::remove(path); }
    std::string path;
};

// Failures are exactly one line on stderr, "forge inspect: error: ...", naming the problem; nothing on stdout.
void expect_one_line_error(const ProcessResult& r, std::initializer_list<std::string_view> problems) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(r.err.starts_with("forge inspect: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.err.ends_with("\n")) << r.err;
    for (const auto p : problems) EXPECT_TRUE(contains(r.err, p)) << "expected '" << p << "' in: " << r.err;
}

TEST(CliInspect, BundledStories260KShowsItsShapeAndMatchesItsTraits) {
    const auto r = inspect(std::string(FORGE_SOURCE_DIR) + "/models/stories260K.gguf");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(field(r.out, "gguf version:"), "3");
    EXPECT_EQ(field(r.out, "alignment:"), "32");
    EXPECT_EQ(field(r.out, "architecture:"), "llama");
    const auto& shape = forge::models::Stories260K::shape;
    forge::for_each_field([&](std::string_view name, const auto& v) {
        EXPECT_EQ(field(r.out, name), forge::shape_field_text(v)) << "field " << name;
    }, shape);
    EXPECT_EQ(field(r.out, "kv_cache (f16)"), "640 bytes per token");
    EXPECT_EQ(field(r.out, "shape rules:"), "all hold");
    EXPECT_EQ(field(r.out, "tensor types:"), "F32 x48");
    EXPECT_EQ(field(r.out, "vocab:"), "512 tokens, tokenizer model llama, pre (none)");
    EXPECT_EQ(field(r.out, "tensors:"), "48");
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n  token_embd\.weight +\[64, 512\] +F32 +\d+ +131072\n)")))
        << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n  blk\.4\.ffn_down\.weight +\[172, 64\] +F32 +\d+ +44032\n)")))
        << r.out;
    // Every stories260K tensor is F32, so the file's bytes are what the shape predicts.
    EXPECT_EQ(field(r.out, "total weight bytes:"), std::to_string(shape.weight_bytes()));
    EXPECT_FALSE(contains(r.out, "unsupported"));
    EXPECT_EQ(field(r.out, "matches compiled traits:"), "stories260K");
}

TEST(CliInspect, EveryCatalogModelFileMatchesItsOwnTraits) {
    for (const auto& m : forge::models::kCatalog) {
        SCOPED_TRACE(m.name);
        const auto r = inspect(forge::test::model_path(std::string(m.name) + ".gguf"));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(field(r.out, "matches compiled traits:"), m.name);
    }
}

// Llama-3 RoPE frequency factors are part of the shape summary when the file has them, and a bad tensor is
// reported there, as loading the model would refuse it.
TEST(CliInspect, RopeFreqsAreShownWhenPresent) {
    const auto inspect_bytes = [](const std::vector<std::byte>& bytes) {
        const TempFile file(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        return inspect(file.path);
    };
    const auto r = inspect_bytes(forge::test::rope_freqs_model_bytes());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(field(r.out, "rope_freqs"), "16 factors from 1 to 8 (rope_freqs.weight, llama3 RoPE scaling)");
    EXPECT_EQ(field(r.out, "matches compiled traits:"), "synth-llama-f32");

    EXPECT_EQ(field(inspect(forge::test::model_path("synth-llama-f32.gguf")).out, "rope_freqs"), "<absent>");

    const std::vector<float> bad(16, -1.0f);
    const auto b = inspect_bytes(forge::test::synth_llama_with_rope_freqs({16}, forge::DType::F32, forge::test::float_bytes(bad)));
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(field(b.out, "rope_freqs"),
              "invalid: tensor 'rope_freqs.weight' value 0 is -1.000000; RoPE frequency factors must be finite and positive");
}

TEST(CliInspect, KQuantModelShowsItsTypesAndTheClosestTraits) {
    const auto r = inspect(forge::test::model_path("synth-llama256-Q4_K_M.gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(field(r.out, "weights"), "Q4_K");
    EXPECT_EQ(field(r.out, "hidden"), "256");
    EXPECT_EQ(field(r.out, "shape rules:"), "all hold");
    EXPECT_EQ(field(r.out, "tensor types:"), "F32 x5 Q4_K x13 Q6_K x3");
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n  blk\.0\.attn_q\.weight +\[256, 256\] +Q4_K +\d+ +36864\n)")))
        << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n  blk\.0\.attn_norm\.weight +\[256\] +F32 +\d+ +1024\n)")))
        << r.out;
    EXPECT_EQ(field(r.out, "matches compiled traits:"), "none");
    EXPECT_TRUE(contains(r.out, "closest compiled traits: synth-llama-q4_0 (4 fields differ)\n"
                                "  hidden: expected 128, found 256\n"
                                "  ffn: expected 384, found 768\n"
                                "  head_dim: expected 32, found 64\n"
                                "  weights: expected Q4_0, found Q4_K\n"))
        << r.out;
    EXPECT_FALSE(contains(r.out, "closest compiled traits: stories260K")) << "stories260K differs in more fields";
}

TEST(CliInspect, TypesForgeCannotComputeWithAreMarked) {
    const auto bytes = forge::test::unsupported_type_model_bytes();
    const TempFile file(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    const auto r = inspect(file.path);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(field(r.out, "tensor types:"), " I32 x1 (unsupported)")) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n  blk\.1\.ffn_down\.weight +\[\d+, \d+\] +I32 +\d+ +\d+  unsupported\n)")))
        << r.out;
}

TEST(CliInspect, VocabOnlyFileIsNotAModelButShowsItsVocab) {
    const auto r = inspect(forge::test::testdata("tokenizer/ggml-vocab-llama-spm.gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(field(r.out, "not a model:"), "the file holds no tensors (vocab only)");
    EXPECT_EQ(field(r.out, "vocab:"), "32000 tokens, tokenizer model llama, pre default");
    EXPECT_EQ(field(r.out, "tensor types:"), "none");
    EXPECT_EQ(field(r.out, "tensors:"), "0");
    EXPECT_EQ(field(r.out, "total weight bytes:"), "0");
    EXPECT_FALSE(contains(r.out, "model shape:"));
    EXPECT_FALSE(contains(r.out, "compiled traits"));
}

TEST(CliInspect, MissingFileIsAOneLineError) {
    const auto path = (std::filesystem::temp_directory_path() / "forge-no-such-file.gguf").string();
    expect_one_line_error(inspect(path), {"cannot open '" + path + "': No such file or directory"});
}

TEST(CliInspect, NonGgufFileIsAOneLineError) {
    expect_one_line_error(inspect(TempFile("just some text, not a model\n").path), {"not a GGUF file"});
}

TEST(CliInspect, FileCutInItsHeaderIsAOneLineError) {
    const auto whole = read_bytes(forge::test::model_path("stories260K.gguf"));
    // 20 bytes: magic, version, tensor count and half of the metadata count.
    expect_one_line_error(inspect(TempFile(whole.substr(0, 20)).path), {"truncated"});
}

TEST(CliInspect, FileCutInItsTensorDataIsAOneLineError) {
    const auto whole = read_bytes(forge::test::model_path("stories260K.gguf"));
    expect_one_line_error(inspect(TempFile(whole.substr(0, whole.size() - 1)).path),
                          {"tensor 'blk.4.ffn_norm.weight'", "runs past the end of the"});
}

TEST(CliInspect, UsageErrorsExitWith2) {
    for (const auto& args : {std::vector<std::string>{FORGE_CLI, "inspect"},
                             std::vector<std::string>{FORGE_CLI, "inspect", "a.gguf", "b.gguf"}}) {
        const auto r = run_process(args);
        EXPECT_EQ(r.exit_code, 2);
        EXPECT_EQ(r.out, "");
        EXPECT_EQ(r.err, "usage: forge inspect FILE.gguf\n");
    }
    const auto help = run_process({FORGE_CLI, "inspect", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_EQ(help.out, "usage: forge inspect FILE.gguf\n");
}

}  // namespace
