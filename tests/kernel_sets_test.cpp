// The CPU kernel sets (cpu/dispatch/): which sets this program can run on this CPU, that
// FORGE_CPU_KERNELS picks each and that each matches llama.cpp on every test model, that a build for no
// target and a native build compute the same bits with each set, and that a set compiled apart exports
// nothing but its entry; and the AMX kernel on emulated tiles where the CPU has none.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "forge/cpu/dispatch/select.hpp"
#include "forge/model/model.hpp"
#include "random_gemm_case.hpp"
#include "reference.hpp"
#include "reference_cases.hpp"
#include "run_process.hpp"
#include "testdata.hpp"

namespace forge::test {
namespace {

// FORGE_CPU_KERNELS set to `name` for the object's life (child processes inherit it); unset afterwards.
class KernelsVariable {
public:
    explicit KernelsVariable(const std::string& name) { ::setenv(cpu::kKernelsVariable, name.c_str(), 1); }
    ~KernelsVariable() { ::unsetenv(cpu::kKernelsVariable); }
    KernelsVariable(const KernelsVariable&) = delete;
    KernelsVariable& operator=(const KernelsVariable&) = delete;
};

std::vector<std::string> set_names() {
    std::vector<std::string> out;
    for (const cpu::KernelSet& s : cpu::available_kernel_sets()) out.emplace_back(s.name);
    return out;
}

// The flags /proc/cpuinfo lists for the first CPU: the operating system's account of the CPU, a second
// opinion on what CPUID and XGETBV say.
std::set<std::string> proc_cpu_flags() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("flags", 0) == 0) {
            std::istringstream words(line.substr(line.find(':') + 1));
            std::set<std::string> flags;
            for (std::string w; words >> w;) flags.insert(w);
            return flags;
        }
    return {};
}

TEST(KernelSets, CpuFeaturesAgreeWithTheOperatingSystem) {
#if !defined(__x86_64__) || !defined(__linux__)
    GTEST_SKIP() << "CPUID and /proc/cpuinfo's x86 flags: x86-64 Linux only";
#endif
    const std::set<std::string> flags = proc_cpu_flags();
    ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
    const auto has = [&](const char* f) { return flags.count(f) > 0; };
    const cpu::CpuFeatures f = cpu::cpu_features();
    EXPECT_EQ(f.avx2, has("avx2") && has("fma") && has("f16c"));
    EXPECT_EQ(f.avx512, f.avx2 && has("bmi2") && has("avx512f") && has("avx512bw") && has("avx512vl") && has("avx512_vnni"));
    // Linux lists AMX where the CPU has it and grants the tiles to any process that asks (5.16 and later).
    EXPECT_EQ(f.amx, f.avx512 && has("amx_tile") && has("amx_int8"));
}

TEST(KernelSets, EverySetThisCpuRunsIsAvailableBestFirst) {
#if !defined(FORGE_CPU_DISPATCH)
    GTEST_SKIP() << "kernel sets compiled apart are linked on x86-64 Linux only";
#else
    const cpu::CpuFeatures f = cpu::cpu_features();
    std::vector<std::string> want;
    if (f.amx && (forge_cpu_kernel_set_amx || cpu::isa::Native::name == "avx512-amx")) want.push_back("avx512-amx");
    if (f.avx512) want.push_back("avx512-vnni");
    if (f.avx2) want.push_back("avx2");
    want.push_back("portable");
    EXPECT_EQ(set_names(), want);
    // With no variable the best runs.
    ::unsetenv(cpu::kKernelsVariable);
    EXPECT_EQ(cpu::select_kernel_set().name, want.front());
#endif
}

TEST(KernelSets, TheVariablePicksEachSetAndEachMatchesLlamaCpp) {
    for (const std::string& name : set_names()) {
        KernelsVariable picked(name);
        for (const std::span<const Case> cases : {std::span<const Case>(kCases), std::span<const Case>(kMixedCases)})
            for (const Case& c : cases) {
                const Reference ref = load_reference(c.reference);
                const double bound = c.tolerance * ref.logits_std;
                Model<Dynamic> model(gguf::File::open(model_path(c.model)));
                EXPECT_EQ(model.kernels(), name);
                const Deviation d = compare(model, ref, bound);
                EXPECT_LE(d.max_abs, bound) << name << " kernels, " << c.reference << ": max |forge - llama.cpp| = " << d.max_abs / ref.logits_std
                                            << " x std";
            }
    }
}

TEST(KernelSets, ANameThisProgramCannotRunIsAnErrorListingThoseItCan) {
    KernelsVariable picked("avx1024");
    const std::string e = error_of([] { Model<Dynamic>(gguf::File::open(model_path("stories260K.gguf"))); });
    EXPECT_NE(e.find("FORGE_CPU_KERNELS=avx1024 names no kernel set"), std::string::npos) << e;
    for (const std::string& name : set_names()) EXPECT_NE(e.find(name), std::string::npos) << e;
}

// The same program built with -march=native and with no target flags: the forward pass's own code is
// compiled differently, the kernels are the set's, and the logits must be the same bits.
TEST(KernelSets, ANativeBuildAndABuildForNoTargetComputeTheSameBits) {
    const std::vector<std::string> models = {"stories260K.gguf", "synth-llama-f16.gguf", "synth-llama-q8_0.gguf", "synth-llama-q4_0.gguf",
                                             "synth-qwen3-Q4_K_M.gguf", "synth-llama256-Q6_K.gguf"};
    const auto run = [&](const char* program) {
        std::vector<std::string> args{program};
        for (const std::string& m : models) args.push_back(model_path(m));
        const ProcessResult r = run_process(args);
        EXPECT_EQ(r.exit_code, 0) << program << ": " << r.err;
        return r.out;
    };
    std::vector<std::string> names = set_names();
    names.push_back("");  // no variable: both choose the best
    for (const std::string& name : names) {
        std::unique_ptr<KernelsVariable> picked = name.empty() ? nullptr : std::make_unique<KernelsVariable>(name);
        const std::string native = run(FORGE_KERNEL_SET_LOGITS_NATIVE), portable = run(FORGE_KERNEL_SET_LOGITS_PORTABLE);
        EXPECT_EQ(native, portable) << (name.empty() ? "the best set" : name);
        const std::string ran = name.empty() ? set_names().front() : name;
        EXPECT_NE(native.find(" " + ran + " "), std::string::npos) << native;
        std::printf("[ %s ]\n%s", name.empty() ? "default" : name.c_str(), native.c_str());
    }
}

TEST(KernelSets, ASetCompiledApartExportsOnlyItsEntry) {
    const std::string objects = FORGE_CPU_KERNEL_SET_OBJECTS;
    if (objects.empty()) GTEST_SKIP() << "this build links no kernel sets compiled apart (x86-64 Linux with GCC or Clang only)";
    std::istringstream list(objects);
    std::set<std::string> entries;
    for (std::string object; std::getline(list, object, ':');) {
        const ProcessResult r = run_process({"nm", "-g", "--defined-only", object});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        std::istringstream lines(r.out);
        std::vector<std::string> symbols;
        for (std::string line; std::getline(lines, line);) symbols.push_back(line.substr(line.rfind(' ') + 1));
        ASSERT_EQ(symbols.size(), 1u) << object << " exports more than its entry:\n" << r.out;
        entries.insert(symbols[0]);
    }
    for (const char* set : {"portable", "avx2", "avx512"}) EXPECT_EQ(entries.count(std::string("forge_cpu_kernel_set_") + set), 1u) << set;
    for (const std::string& e : entries) EXPECT_EQ(e.rfind("forge_cpu_kernel_set_", 0), 0u) << e;
}

// The AMX kernel with its tile instructions emulated (tests/amx_emulated_tiles.cpp) gives the VNNI
// batch kernel's bits: its tile shapes, block layout, pipelined steps and edge rows, checked on CPUs
// without AMX too.
TEST(KernelSets, TheAmxKernelOnEmulatedTilesComputesTheVnniKernelsBits) {
#ifndef FORGE_AMX_EMULATED_TILES
    GTEST_SKIP() << "the emulated-tile program is built only where the avx512-amx kernel set is (x86-64 Linux, a compiler with -mamx-int8)";
#else
    if (!cpu::cpu_features().avx512) GTEST_SKIP() << "the CPU has no AVX-512 VNNI, which the kernel the tiles are checked against needs";
    const ProcessResult r = run_process({FORGE_AMX_EMULATED_TILES});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::istringstream lines(r.out);
    int same = 0, cases = 0;
    for (std::string line; std::getline(lines, line); ++cases) same += line.ends_with(": same bits");
    EXPECT_EQ(cases, 33) << r.out;
    EXPECT_EQ(same, cases) << r.out;
#endif
}

// The AMX tiles compute the VNNI batch kernel's exact block dots and scale them in the same order: the
// same bits, for Q8_0, Q4_0, Q5_0 and the K-quants, whole tiles of 16 rows, the rows past the last (which the
// VNNI kernel takes), odd block counts (one block without its pair) and a partial group of tokens. The tiles take batches of
// amx::kMinTokens<W> tokens and more (64; 192 for Q5_0 and Q6_K, whose 64- and 128-token shapes stay on the VNNI kernel);
// the last shape is a shorter batch, which stays on the VNNI kernel for every type.
TEST(KernelSets, TheAmxTilesComputeTheVnniKernelsBits) {
    const std::vector<cpu::KernelSet> sets = cpu::available_kernel_sets();
    const auto find = [&](std::string_view name) { return std::find_if(sets.begin(), sets.end(), [&](const auto& s) { return s.name == name; }); };
    if (find("avx512-amx") == sets.end())
        GTEST_SKIP() << "no avx512-amx kernel set runs here: the CPU has no AMX-INT8 (Sapphire Rapids and later), the operating "
                        "system did not grant the tiles, or the compiler had no AMX";
    const cpu::KernelSet amx = *find("avx512-amx"), vnni = *find("avx512-vnni");
    std::mt19937 rng(11);
    cpu::ThreadPool pool(2);
    const std::vector<std::array<int, 3>> shapes{{16, 32, 192}, {100, 576, 300}, {64, 608, 512}, {35, 96, 201}, {48, 64, 64}, {35, 96, 9}};
    const std::vector<std::array<int, 3>> k_shapes{{16, 256, 192}, {100, 512, 300}, {35, 768, 201}, {48, 512, 128}, {35, 256, 9}};  // whole super-blocks
    for (const DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K})
        for (const auto& shape : dtype_info(type).block_elems == 256 ? k_shapes : shapes) {
            const int rows = shape[0], cols = shape[1], tokens = shape[2];  // named, not bound: Clang 14's lambdas cannot capture bindings
            const RandomGemmCase c = random_gemm_case(type, rows, cols, tokens, rng);
            const cpu::WeightView& view = c.view;
            const std::vector<float>& x = c.inputs;
            const auto product = [&](const cpu::KernelSet& set) {
                std::vector<float> y(std::size_t(tokens) * std::size_t(rows));
                cpu::GemmInput in;
                in.set(x.data(), tokens, cols, cols);
                set.gemm_for(cols).one(view, in, y.data(), rows, pool);
                return y;
            };
            const std::vector<float> a = product(amx), v = product(vnni);
            for (std::size_t i = 0; i < a.size(); ++i)
                ASSERT_EQ(a[i], v[i]) << dtype_name(type) << " " << rows << " x " << cols << ", " << tokens << " tokens: token " << i / std::size_t(rows)
                                      << " row " << i % std::size_t(rows);
        }
    // Whole models: the same logits' bits from a prefill (its batch on the tiles) and the decode after it.
    const auto logits = [](const std::string& set) {
        KernelsVariable picked(set);
        const ProcessResult r = run_process({FORGE_KERNEL_SET_LOGITS_NATIVE, model_path("synth-llama-q8_0.gguf"), model_path("synth-llama-q4_0.gguf"),
                                             model_path("synth-qwen2-q8_0.gguf")});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        // Each line: model, set, hash. The set must be the one asked for; the rest must agree.
        std::istringstream lines(r.out);
        std::string out;
        for (std::string model, ran, hash; lines >> model >> ran >> hash;) {
            EXPECT_EQ(ran, set) << model;
            out += model + " " + hash + "\n";
        }
        return out;
    };
    EXPECT_EQ(logits("avx512-amx"), logits("avx512-vnni"));
}

}  // namespace
}  // namespace forge::test
