// The CPU kernel sets (cpu/dispatch/): which sets this program can run on this CPU, that
// FORGE_CPU_KERNELS picks each and that each matches llama.cpp on every test model, that a build for no
// target and a native build compute the same bits with each set, and that a set compiled apart exports
// nothing but its entry.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "forge/cpu/dispatch/select.hpp"
#include "forge/model/model.hpp"
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
}

TEST(KernelSets, EverySetThisCpuRunsIsAvailableBestFirst) {
#if !defined(FORGE_CPU_DISPATCH)
    GTEST_SKIP() << "kernel sets compiled apart are linked on x86-64 Linux only";
#else
    const cpu::CpuFeatures f = cpu::cpu_features();
    std::vector<std::string> want;
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
    int checked = 0;
    for (std::string object; std::getline(list, object, ':'); ++checked) {
        const ProcessResult r = run_process({"nm", "-g", "--defined-only", object});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        std::istringstream lines(r.out);
        std::vector<std::string> symbols;
        for (std::string line; std::getline(lines, line);) symbols.push_back(line.substr(line.rfind(' ') + 1));
        ASSERT_EQ(symbols.size(), 1u) << object << " exports more than its entry:\n" << r.out;
        EXPECT_EQ(symbols[0].rfind("forge_cpu_kernel_set_", 0), 0u) << object << ": " << symbols[0];
    }
    EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace forge::test
