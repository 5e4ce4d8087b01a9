// The forge CLI end to end: `run` reproduces llama2.c's own output for the bundled model, `eval` writes
// logits a reference comparison can read, and bad input of every kind is a one-line error and a
// non-zero exit.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "forge/cpu/dispatch/select.hpp"
#include "gguf_fixtures.hpp"
#include "reference.hpp"
#include "run_process.hpp"

namespace forge::test {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
    return (fs::temp_directory_path() / ("forge-cli-run-" + std::to_string(::getpid()) + "-" + name)).string();
}

// A failed command prints exactly one line, on stderr, that contains `fragment`.
void expect_one_line_error(const ProcessResult& r, const std::string& fragment) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("forge run: error: ", 0), 0u) << r.err;
}

TEST(CliRun, GreedyStories260KFromBosPrintsLlama2cText) {
    const json::Value golden = json::parse(read_file(testdata("reference/stories260K.golden.json")));
    const auto r = run_process({FORGE_CLI, "run", "--temp", "0", "-n", "200", "--threads", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, golden.at("text").as_string() + "\n");
    EXPECT_NE(r.err.find("compiled traits stories260K"), std::string::npos) << r.err;
    for (const char* stat : {"load:", "prefill:", "decode:", "tok/s", "peak RSS"})
        EXPECT_NE(r.err.find(stat), std::string::npos) << r.err;
}

TEST(CliRun, SameSeedSameTextAndTheRuntimePathIsNamed) {
    const std::vector<std::string> cmd = {FORGE_CLI, "run", "-m", model_path("synth-llama-q8_0.gguf"), "-p", "hello",
                                          "-n", "24", "--seed", "7", "--temp", "1.0"};
    const auto a = run_process(cmd), b = run_process(cmd);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.out.rfind("hello", 0), 0u) << "the prompt is echoed first";

    // Same file with a context length no compiled traits have: the runtime-shape path, said so.
    const auto file = gguf::File::open(model_path("synth-llama-q8_0.gguf"));
    const std::string odd = temp_path("ctx200.gguf");
    rewrite(file, {{"llama.context_length", gguf::Value::u32(200)}}).write(odd);
    auto cmd2 = cmd;
    cmd2[3] = odd;
    const auto c = run_process(cmd2);
    fs::remove(odd);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out, a.out) << "only the path differs, not the math";
    EXPECT_NE(c.err.find("runtime shape"), std::string::npos) << c.err;
}

// --no-mmap reads the weights into memory: the same text, and the report says where the weights were.
TEST(CliRun, NoMmapGivesTheSameTextAndSaysTheWeightsWereRead) {
    const std::vector<std::string> cmd = {FORGE_CLI, "run", "-m", model_path("synth-qwen2-q8_0.gguf"), "-p", "hello", "-n", "16", "--seed", "3"};
    auto no_mmap = cmd;
    no_mmap.emplace_back("--no-mmap");
    const auto a = run_process(cmd), b = run_process(no_mmap);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(b.out, a.out);
    EXPECT_NE(a.err.find(" mapped, KV cache"), std::string::npos) << a.err;
    EXPECT_NE(b.err.find(" read into memory, KV cache"), std::string::npos) << b.err;
}

// forge bench prints llama-bench's rows and runs the path `forge run` would take, which it names.
TEST(CliBench, PrintsPrefillAndDecodeRowsAndNamesThePath) {
    const auto r = run_process({FORGE_CLI, "bench", "-m", model_path("synth-llama-q4_0.gguf"), "-p", "16", "-n", "8", "-r", "2", "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* row : {"|       pp16 |", "|        tg8 |", "| cpu       |       2 |"}) EXPECT_NE(r.out.find(row), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("compiled traits synth-llama-q4_0"), std::string::npos) << r.out;

    const auto file = gguf::File::open(model_path("synth-llama-q4_0.gguf"));
    const std::string odd = temp_path("bench-ctx200.gguf");
    rewrite(file, {{"llama.context_length", gguf::Value::u32(200)}}).write(odd);
    const auto c = run_process({FORGE_CLI, "bench", "-m", odd, "-p", "0", "-n", "4", "-r", "1"});
    fs::remove(odd);
    ASSERT_EQ(c.exit_code, 0) << c.err;
    EXPECT_EQ(c.out.find(" pp"), std::string::npos) << "-p 0 skips prefill: " << c.out;
    EXPECT_NE(c.out.find("runtime shape, kernels compiled for its row lengths"), std::string::npos) << "the catalog's lengths: " << c.out;

    const auto bad = run_process({FORGE_CLI, "bench", "-m", model_path("synth-llama-q4_0.gguf"), "-r", "0"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("--repetitions must be at least 1"), std::string::npos) << bad.err;
}

// bench and run name the CPU kernel set that ran: the best this CPU runs, or the one FORGE_CPU_KERNELS
// names; a name the program cannot run is a one-line error.
TEST(CliBench, NamesTheKernelSetThatRanWhichTheVariableChooses) {
    const std::vector<std::string> bench = {FORGE_CLI, "bench", "-m", model_path("synth-llama-q8_0.gguf"), "-p", "8", "-n", "4", "-r", "1"};
    const auto sets = cpu::available_kernel_sets();
    const auto best = run_process(bench);
    ASSERT_EQ(best.exit_code, 0) << best.err;
    EXPECT_NE(best.out.find(", " + std::string(sets.front().name) + " kernels"), std::string::npos) << best.out;
    for (const cpu::KernelSet& set : sets) {
        ::setenv(cpu::kKernelsVariable, std::string(set.name).c_str(), 1);
        const auto b = run_process(bench);
        const auto r = run_process({FORGE_CLI, "run", "-m", model_path("synth-llama-q8_0.gguf"), "-p", "hello", "-n", "4"});
        ::unsetenv(cpu::kKernelsVariable);
        ASSERT_EQ(b.exit_code, 0) << b.err;
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(b.out.find(", " + std::string(set.name) + " kernels"), std::string::npos) << b.out;
        EXPECT_NE(r.err.find(", " + std::string(set.name) + " kernels"), std::string::npos) << r.err;
    }
    ::setenv(cpu::kKernelsVariable, "avx1024", 1);
    const auto bad = run_process(bench);
    ::unsetenv(cpu::kKernelsVariable);
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_EQ(bad.err.rfind("forge bench: error: FORGE_CPU_KERNELS=avx1024 names no kernel set", 0), 0u) << bad.err;
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
}

// The same rows from the emulated GPU path, which the last line names.
TEST(CliBench, MetalEmulatorBackendPrintsItsRowsAndNamesTheDevice) {
    const auto g = run_process({FORGE_CLI, "bench", "-m", model_path("stories260K.gguf"), "-p", "8", "-n", "4", "-r", "1", "--backend", "metal-emu"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    for (const char* row : {"|        pp8 |", "|        tg4 |", "| metal-emu |"}) EXPECT_NE(g.out.find(row), std::string::npos) << g.out;
    EXPECT_NE(g.out.find("on metal emulator"), std::string::npos) << g.out;
    EXPECT_NE(g.out.find("MSL kernels"), std::string::npos) << g.out;
}

// The emulator is slow, so the CLI wiring is checked on a prefix; test_metal_model runs all 200 tokens.
TEST(CliRun, MetalEmulatorBackendPrintsTheGoldenText) {
    const json::Value golden = json::parse(read_file(testdata("reference/stories260K.golden.json")));
    const auto r = run_process({FORGE_CLI, "run", "--backend", "metal-emu", "--temp", "0", "-n", "30"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_GT(r.out.size(), 60u);
    EXPECT_EQ(golden.at("text").as_string().rfind(r.out.substr(0, r.out.size() - 1), 0), 0u) << r.out;
    EXPECT_NE(r.err.find("on metal emulator"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("on cpu"), std::string::npos) << r.err;
}

TEST(CliRun, MetalEmulatorBackendRunsShapesNoCatalogLists) {
    // stories260K's weights in a shape of its own (another max context): the GPU path runs any shape.
    const auto file = gguf::File::open(model_path("stories260K.gguf"));
    const std::string odd = temp_path("ctx300.gguf");
    rewrite(file, {{"llama.context_length", gguf::Value::u32(300)}}).write(odd);
    const auto r = run_process({FORGE_CLI, "run", "-m", odd, "--backend", "metal-emu", "--temp", "0", "-n", "20"});
    const auto cpu = run_process({FORGE_CLI, "run", "-m", odd, "--temp", "0", "-n", "20"});
    fs::remove(odd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, cpu.out);
    EXPECT_NE(r.err.find("runtime shape (no compiled traits match this file) on metal emulator"), std::string::npos) << r.err;
}

// `forge eval` of `model` on the inputs of llama.cpp's `reference`, with `backend`: the largest deviation
// from the reference's logits in units of their std.
double eval_deviation(const std::string& reference, const std::string& model, const std::string& backend) {
    const Reference ref = load_reference(reference);
    std::string tokens;
    for (const auto& s : ref.steps) {
        if (!tokens.empty()) tokens += ',';
        tokens += std::to_string(s.input);
    }
    const std::string out = temp_path("eval.json");
    const auto r = run_process({FORGE_CLI, "eval", "-m", model_path(model), "--tokens", tokens, "--prompt-len",
                                std::to_string(ref.prompt.size()), "--json", out, "--backend", backend});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return INFINITY;
    EXPECT_NE(r.err.find(backend == "cpu" ? "on cpu" : "on metal emulator"), std::string::npos) << r.err;
    const json::Value doc = json::parse(read_file(out));
    fs::remove(out);
    EXPECT_EQ(ids(doc.at("prompt")), ref.prompt);
    const auto& steps = doc.at("steps").as_array();
    EXPECT_EQ(steps.size(), ref.steps.size());
    if (steps.size() != ref.steps.size()) return INFINITY;
    double max_dev = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        EXPECT_EQ(int(steps[i].at("pos").as_number()), ref.steps[i].pos);
        EXPECT_EQ(int(steps[i].at("input").as_number()), ref.steps[i].input);
        const auto& l = steps[i].at("logits").as_array();
        EXPECT_EQ(l.size(), ref.steps[i].logits.size());
        if (l.size() != ref.steps[i].logits.size()) return INFINITY;
        for (std::size_t v = 0; v < l.size(); ++v)
            max_dev = std::max(max_dev, std::fabs(l[v].as_number() - ref.steps[i].logits[v]));
    }
    return max_dev / ref.logits_std;
}

TEST(CliEval, WritesReferenceFormatMatchingLlamaCpp) { EXPECT_LE(eval_deviation("stories260K.park.json", "stories260K.gguf", "cpu"), 0.02); }

TEST(CliEval, MetalEmulatorBackendMatchesLlamaCpp) {
    // The Metal kernels through the emulator, from the same command, within the CPU path's bounds: the
    // bundled model, and a shape no catalog lists.
    EXPECT_LE(eval_deviation("stories260K.park.json", "stories260K.gguf", "metal-emu"), 0.02);
    EXPECT_LE(eval_deviation("synth-llama256-f32.json", "synth-llama256-f32.gguf", "metal-emu"), 0.02);
}

TEST(CliExample, CompiledStories260KRunsItsModelAndRefusesOthersNamingEveryField) {
    const std::string bin = std::string(FORGE_BIN_DIR) + "/forge-stories260k";
    const auto ok = run_process({bin, "--temp", "0", "-n", "20"});
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << ok.out;

    const auto r = run_process({bin, "-m", model_path("synth-llama-f32.gguf")});
    EXPECT_NE(r.exit_code, 0);
    for (const char* field : {"hidden: expected 64, found 128", "ffn: expected 172, found 384", "layers: expected 5, found 2",
                              "heads: expected 8, found 4", "kv_heads: expected 4, found 2", "head_dim: expected 8, found 32",
                              "max_context: expected 512, found 256"})
        EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
}

TEST(CliErrors, MissingFile) {
    expect_one_line_error(run_process({FORGE_CLI, "run", "-m", "/nonexistent/model.gguf"}), "cannot open '/nonexistent/model.gguf'");
}

TEST(CliErrors, NotAGgufFile) {
    const std::string path = temp_path("not.gguf");
    std::ofstream(path) << "this is not a model\n";
    const auto r = run_process({FORGE_CLI, "run", "-m", path});
    fs::remove(path);
    expect_one_line_error(r, "not a GGUF file");
}

TEST(CliErrors, UnsupportedTensorTypeSuggestsQuantize) {
    const std::string path = temp_path("i32.gguf");
    const auto bytes = unsupported_type_model_bytes();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    const auto r = run_process({FORGE_CLI, "run", "-m", path});
    fs::remove(path);
    expect_one_line_error(r, "forge quantize");
}

TEST(CliErrors, UnknownArchitecture) {
    const auto file = gguf::File::open(model_path("stories260K.gguf"));
    const std::string path = temp_path("falcon.gguf");
    rewrite(file, {{"general.architecture", gguf::Value::string("falcon")}}).write(path);
    const auto r = run_process({FORGE_CLI, "run", "-m", path});
    fs::remove(path);
    expect_one_line_error(r, "unknown architecture 'falcon'");
}

TEST(CliErrors, PromptLongerThanTheContext) {
    std::string prompt;
    for (int i = 0; i < 40; ++i) prompt += "Once upon a time ";
    expect_one_line_error(run_process({FORGE_CLI, "run", "-c", "32", "-p", prompt}), "context holds 32");
}

TEST(CliErrors, InvalidUtf8Prompt) {
    expect_one_line_error(run_process({FORGE_CLI, "run", "-p", "bad \xff byte"}), "UTF-8");
}

TEST(CliErrors, ContextIsCheckedBeforeAnythingIsAllocated) {
    // 2,000,000 positions of stories260K's cache would be 1.25 GB, 10^9 would be 600 GB: both refused
    // from the shape alone, before the cache exists.
    for (const char* context : {"2000000", "1000000000"})
        expect_one_line_error(run_process({FORGE_CLI, "run", "-c", context, "-n", "1"}), "exceeds the model's maximum of 512");
    expect_one_line_error(run_process({FORGE_CLI, "run", "-c", "-5", "-n", "1"}), "context -5 is negative");
    rusage children{};
    ::getrusage(RUSAGE_CHILDREN, &children);
    EXPECT_LT(children.ru_maxrss, 64 * 1024) << "KiB: a refused context must not have been allocated first";
}

TEST(CliErrors, AFifoIsRefusedWithoutWaitingForAWriter) {
    const std::string fifo = temp_path("model.fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // `timeout` turns a hang into exit status 124, which fails the expectations below.
    for (const char* command : {"run", "inspect"}) {
        std::vector<std::string> args = {"timeout", "10", FORGE_CLI, command};
        if (std::string(command) == "run") args.push_back("-m");
        args.push_back(fifo);
        const ProcessResult r = run_process(args);
        EXPECT_EQ(r.exit_code, 1) << command << ": " << r.err;
        EXPECT_NE(r.err.find("is not a regular file (it is a FIFO)"), std::string::npos) << r.err;
    }
    expect_one_line_error(run_process({FORGE_CLI, "run", "-m", fs::temp_directory_path().string()}), "(it is a directory)");
    fs::remove(fifo);
}

TEST(CliErrors, TextFromTheFileIsPrintedEscaped) {
    // Names that would clear the screen, set the window title and forge a second line of output.
    const std::string hostile = "\x1b[2J\x1b]0;pwned\x07\nforge run: all is well\r\xc2\x9b";
    const auto file = gguf::File::open(model_path("stories260K.gguf"));
    for (const auto& [key, fragment] : std::vector<std::pair<std::string, std::string>>{
             {"general.architecture", "unknown architecture '\\x1b[2J\\x1b]0;pwned\\x07\\x0aforge run: all is well\\x0d\\xc2\\x9b'"},
             {"tokenizer.ggml.model", "unsupported tokenizer.ggml.model '\\x1b[2J"}}) {
        const std::string path = temp_path("hostile.gguf");
        rewrite(file, {{key, gguf::Value::string(hostile)}}).write(path);
        const auto r = run_process({FORGE_CLI, "run", "-m", path});
        fs::remove(path);
        expect_one_line_error(r, fragment);
        EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "no raw ESC reaches the terminal";
        EXPECT_EQ(r.err.find('\r'), std::string::npos);
    }
}

// `bytes` written to a temporary file named `name`; returns its path.
std::string write_temp(const std::string& name, const std::vector<std::byte>& bytes) {
    const std::string path = temp_path(name);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
}

TEST(CliErrors, AFileThatComputesNaNIsRefusedNotPrinted) {
    const std::string text = read_file(model_path("synth-llama-f16.gguf"));
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    const gguf::File f = gguf::File::parse(bytes);
    const std::uint16_t nan = 0x7e00;  // one F16 weight of the first layer
    std::memcpy(&bytes[f.data_offset() + f.tensor("blk.0.attn_q.weight").offset], &nan, 2);
    const std::string path = write_temp("nan.gguf", bytes);
    const std::string out = temp_path("nan.json");
    const auto r = run_process({FORGE_CLI, "eval", "-m", path, "--tokens", "1,50,60", "--json", out});
    fs::remove(path);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("NaN logits"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "no logits written";
    fs::remove(out);
}

TEST(CliErrors, BadOptions) {
    expect_one_line_error(run_process({FORGE_CLI, "run", "--temp", "hot"}), "--temp expects a number");
    expect_one_line_error(run_process({FORGE_CLI, "run", "--frobnicate"}), "unknown option '--frobnicate'");
    expect_one_line_error(run_process({FORGE_CLI, "run", "--top-p", "2"}), "top_p");
    expect_one_line_error(run_process({FORGE_CLI, "run", "--backend", "metal"}), "Metal is unavailable here");
    expect_one_line_error(run_process({FORGE_CLI, "run", "--backend", "vulkan"}), "unknown backend 'vulkan'");
}

}  // namespace
}  // namespace forge::test
