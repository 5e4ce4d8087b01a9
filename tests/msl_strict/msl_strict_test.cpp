// The strict MSL check: the text of every library forge generates is compiled by clang as C++17 against
// a stand-in <metal_stdlib> (tests/msl_strict/include/) that declares only MSL's API, with no C or C++
// standard library reachable, exceptions and RTTI off, the address spaces distinct and doubles
// rejected; then linted for what clang still accepts and MSL forbids (msl_lint.hpp). The emulator
// compiles the same texts as C++20 after the standard headers, so it cannot see any of this.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "forge/metal_src/library.hpp"
#include "forge/models/catalog.hpp"
#include "msl_lint.hpp"
#include "run_process.hpp"

#ifndef FORGE_MSL_CLANG
#error "FORGE_MSL_CLANG must name the clang++ that runs the strict MSL check (tests/msl_strict/CMakeLists.txt)"
#endif

namespace forge::test {
namespace {

namespace fs = std::filesystem;
using metal_src::KernelConfig;

const fs::path kOutDir = fs::path(FORGE_BIN_DIR) / "msl-strict";

// clang in C++17 (MSL 3's base language) for aarch64, where _Float16 (MSL's half) exists in clang 14.
// -nostdinc/-nostdinc++: no C or C++ standard library; the stand-in is the only header. Warnings are
// errors; -Wdouble-promotion (float promoted to double) and -Wimplicit-float-conversion (double
// narrowed to float) catch double arithmetic the lint's literal rule has not named. MSL's attributes are
// unknown to clang: -Wno-unknown-attributes, and the lint checks their names instead.
std::vector<std::string> clang_command(const fs::path& file) {
    return {FORGE_MSL_CLANG, "-x", "c++", "-std=c++17", "--target=aarch64-linux-gnu", "-fsyntax-only", "-nostdinc",
            "-nostdinc++", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion",
            "-Wimplicit-float-conversion", "-Wno-unknown-attributes", "-I", FORGE_SOURCE_DIR "/tests/msl_strict/include",
            file.string()};
}

struct StrictResult {
    bool passed = false;
    std::string report;  // clang's diagnostics, then one line per lint finding naming its rule
};

// Writes `text` to <build>/msl-strict/<name>.metal, where it stays for a look after a failure, and checks it.
StrictResult strict_check(const std::string& name, std::string_view text) {
    fs::create_directories(kOutDir);
    const fs::path file = kOutDir / (name + ".metal");
    std::ofstream(file, std::ios::binary) << text;
    const ProcessResult clang = run_process(clang_command(file));
    if (clang.exit_code == 127)
        throw std::runtime_error(std::string("the strict MSL check needs clang++ (") + FORGE_MSL_CLANG +
                                 ") and it was not found: install clang (tools/install-deps.sh does)");
    StrictResult r;
    if (clang.exit_code != 0) r.report = "clang rejects " + file.string() + ":\n" + clang.out + clang.err;
    for (const LintFinding& f : lint_msl(text))
        r.report += "lint rule '" + f.rule + "' at " + file.string() + ":" + std::to_string(f.line) + ": " + f.what + "\n";
    r.passed = r.report.empty();
    return r;
}

// ---- every library forge generates ----

struct GeneratedLibrary {
    std::string name;
    std::string text;
};
void PrintTo(const GeneratedLibrary& l, std::ostream* os) { *os << l.name; }

std::string test_name(std::string_view s) {
    std::string n(s);
    std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    return n;
}

// The libraries of every compiled traits type (the texts metal_src::library<T> holds, made by the same
// function), of every weight type alone (its decoders must bring every helper they call), and of every
// weight type together over each architecture option the kernels' text depends on. A text equal to one
// already listed is checked once, under the first name.
std::vector<GeneratedLibrary> generated_libraries() {
    std::vector<GeneratedLibrary> out;
    const auto add = [&](std::string_view name, const KernelConfig& c) {
        const auto lib = std::make_unique<metal_src::Library>(metal_src::make_library(c));
        std::string text(lib->text.view());
        if (std::none_of(out.begin(), out.end(), [&](const GeneratedLibrary& l) { return l.text == text; }))
            out.push_back({test_name(name), std::move(text)});
    };
    for (const auto& m : models::kCatalog) add("Catalog_" + std::string(m.name), metal_src::kernel_config(m.shape));
    for (const auto& m : models::kZooCatalog) add("Zoo_" + std::string(m.name), metal_src::kernel_config(m.shape));

    const ModelShape base = models::SynthLlama<DType::F32>::shape;
    std::uint32_t every_type = 0;
    for (const DType t : metal_src::kKernelDTypes) {
        every_type |= metal_src::dtype_bit(t);
        add("Only_" + std::string(dtype_name(t)), metal_src::kernel_config(base, metal_src::dtype_bit(t)));
    }
    const auto all_types = [&](std::string_view option, auto change) {
        ModelShape s = base;
        change(s);
        add("AllTypes_" + std::string(option), metal_src::kernel_config(s, every_type));
    };
    all_types("base", [](ModelShape&) {});
    for (const int head_dim : {4, 32, 64, 80, 96, 128, 256})  // one or two dims per flash-attention thread
        all_types("head_dim_" + std::to_string(head_dim), [&](ModelShape& s) { s.head_dim = head_dim; });
    all_types("neox", [](ModelShape& s) { s.rope_style = RopeStyle::neox; });
    all_types("attention_scale", [](ModelShape& s) { s.attention_scale = 0.0625f; });
    all_types("qkv_bias", [](ModelShape& s) { s.qkv_bias = true; });
    all_types("qk_norm", [](ModelShape& s) { s.qk_norm = true; });
    all_types("sliding_window", [](ModelShape& s) { s.sliding_window = 16; });
    all_types("rope_base_eps", [](ModelShape& s) {
        s.rope_base = 1000000.0f;
        s.rms_eps = 1e-6f;
    });
    return out;
}

class MslStrictLibrary : public testing::TestWithParam<GeneratedLibrary> {};

TEST_P(MslStrictLibrary, PassesTheStrictCheck) {
    const StrictResult r = strict_check(GetParam().name, GetParam().text);
    EXPECT_TRUE(r.passed) << r.report;
}

INSTANTIATE_TEST_SUITE_P(Generated, MslStrictLibrary, testing::ValuesIn(generated_libraries()),
                         [](const testing::TestParamInfo<GeneratedLibrary>& info) { return info.param.name; });

// ---- each rule fires ----

// A kernel around `body`, and whatever `before` declares; valid MSL unless the two break a rule.
std::string snippet(std::string_view before, std::string_view body) {
    return "#include <metal_stdlib>\nusing namespace metal;\n" + std::string(before) +
           "\nkernel void snippet(DPTR(float) y [[buffer(0)]], TPTR(float) tgm [[threadgroup(0)]],\n"
           "                    uint tid [[thread_index_in_threadgroup]]) {\n" +
           std::string(body) + "\n}\n";
}

// `text` fails the check, and the report holds each of `markers` (the rules' names, clang's words).
void expect_rejected(const std::string& name, const std::string& text, std::initializer_list<std::string_view> markers) {
    const StrictResult r = strict_check("rule_" + name, text);
    EXPECT_FALSE(r.passed) << name << " passed the strict check";
    for (const std::string_view m : markers) EXPECT_NE(r.report.find(m), std::string::npos) << "'" << m << "' missing in:\n" << r.report;
}

TEST(MslStrictRules, AValidKernelPasses) {
    // The control: MSL using what forge's kernels use passes, so a rejection below is the rule's doing.
    const StrictResult r = strict_check(
        "valid", "#include <metal_stdlib>\n#include <metal_simdgroup_matrix>\nusing namespace metal;\n"
                 "inline float twice(float x) { return 2.0f * x; }\n"
                 "kernel void valid(DPTR(const half) x [[buffer(0)]], DPTR(float) y [[buffer(1)]],\n"
                 "                  TPTR(float) tgm [[threadgroup(0)]], uint3 tgpig [[threadgroup_position_in_grid]],\n"
                 "                  uint tid [[thread_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {\n"
                 "    tgm[tid] = float(x[tid]) * 0.5f;\n"
                 "    threadgroup_barrier(mem_flags::mem_threadgroup);\n"
                 "    const float4 v = float4(tgm[0], 1.0f, fast::exp(tgm[1]), float(tgpig.x));\n"
                 "    simdgroup_float8x8 m = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);\n"
                 "    simdgroup_load(m, tgm, 8, ulong2(0, 0), true);\n"
                 "    simdgroup_multiply_accumulate(m, m, m, m);\n"
                 "    simdgroup_store(m, y, 8);\n"
                 "    y[tid] = twice(simd_sum(dot(v, float4(1.0f)))) + max(as_type<float>(lane), -INFINITY);\n"
                 "}\n");
    EXPECT_TRUE(r.passed) << r.report;
}

TEST(MslStrictRules, StandardLibraryRejected) {
    expect_rejected("std_vector", snippet("#include <vector>", "std::vector<float> v(4);\ny[tid] = v[0];"),
                    {"'vector' file not found", "lint rule 'std::'"});
}

TEST(MslStrictRules, LambdaRejected) {
    expect_rejected("lambda", snippet("", "const auto twice = [](float x) { return 2.0f * x; };\ny[tid] = twice(y[tid]);"),
                    {"lint rule 'lambda'"});
}

TEST(MslStrictRules, RecursionRejected) {
    expect_rejected("recursion", snippet("inline uint sum_to(uint n) { return n == 0 ? 0 : n + sum_to(n - 1); }", "y[tid] = float(sum_to(tid));"),
                    {"lint rule 'recursion'", "sum_to calls itself"});
}

TEST(MslStrictRules, DoubleRejected) {
    expect_rejected("double_type", snippet("", "double d = y[tid];\ny[tid] = float(d);"), {"lint rule 'double'", "-Wdouble-promotion"});
    // An unsuffixed literal is a double in C++: the product would run in double on the emulator.
    expect_rejected("double_literal", snippet("", "y[tid] = y[tid] * 0.5;"),
                    {"lint rule 'double'", "0.5 is a double", "-Wdouble-promotion", "-Wimplicit-float-conversion"});
}

TEST(MslStrictRules, ThreadgroupPointerAsDevicePointerRejected) {
    expect_rejected("address_space", snippet("inline void clear(DPTR(float) p, uint i) { p[i] = 0.0f; }", "clear(tgm, tid);"),
                    {"cannot pass pointer to address space '3' as a pointer to address space '1'"});
    expect_rejected("address_space_cast", snippet("", "DPTR(float) d = DCAST(float, tgm);\nd[tid] = 0.0f;"),
                    {"reinterpret_cast from", "is not allowed"});
}

TEST(MslStrictRules, GotoRejected) {
    expect_rejected("goto", snippet("", "if (tid == 0) goto done;\ny[tid] = 1.0f;\ndone:\ntgm[tid] = 0.0f;"), {"lint rule 'goto'"});
}

TEST(MslStrictRules, VirtualRejected) {
    expect_rejected("virtual",
                    snippet("struct Scale {\n    virtual float apply(float x) const { return 2.0f * x; }\n};",
                            "const Scale s;\ny[tid] = s.apply(y[tid]);"),
                    {"lint rule 'virtual'"});
}

TEST(MslStrictRules, NewAndDeleteRejected) {
    expect_rejected("new", snippet("", "thread float* p = new float(y[tid]);\ny[tid] = *p;\ndelete p;"),
                    {"lint rule 'new'", "lint rule 'delete'"});
}

TEST(MslStrictRules, ThrowAndTryRejected) {
    expect_rejected("throw", snippet("", "if (tid > 1024) throw 1;\ny[tid] = 0.0f;"),
                    {"lint rule 'throw'", "cannot use 'throw' with exceptions disabled"});
    expect_rejected("try", snippet("", "try {\n    y[tid] = 0.0f;\n} catch (...) {\n}"),
                    {"lint rule 'try'", "cannot use 'try' with exceptions disabled"});
}

TEST(MslStrictRules, UnknownAttributeRejected) {
    expect_rejected("attribute", snippet("kernel void other(DPTR(float) z [[bufer(0)]]) { z[0] = 0.0f; }", "y[tid] = 0.0f;"),
                    {"lint rule 'attribute'", "[[bufer]] is not an MSL attribute"});
}

TEST(MslStrictRules, LintReadsTokensNotWords) {
    // Comments, literals, identifiers that contain a keyword, subscripts, attributes and `= delete` are
    // not findings; each rule's token is.
    const std::string_view clean = "// a new double, goto std::cout, [](){}\n"
                                   "/* virtual throw */ struct A { A(const thread A&) = delete; };\n"
                                   "inline float f(thread const float* a, uint i) { float m_new = a[i] * 1.5e-3f; "
                                   "return m_new + float(0x1p3f) + 2.0h; }\n"
                                   "kernel void k(DPTR(float) y [[buffer(0)]], uint t [[thread_position_in_grid]]) "
                                   "{ y[t] = f(y, t) + float(\"new\"[0]); }\n";
    EXPECT_TRUE(lint_msl(clean).empty()) << lint_msl(clean)[0].rule;
    const auto rules = [](std::string_view text) {
        std::string s;
        for (const LintFinding& f : lint_msl(text)) s += f.rule + "@" + std::to_string(f.line) + " ";
        return s;
    };
    EXPECT_EQ(rules("float a = 1e5;\nfloat b = 2.;\nfloat c = 0x1p3;\n"), "double@1 double@2 double@3 ");
    EXPECT_EQ(rules("auto f = [&] { return 1; };\nint g() { return x[0] + [=]() { return 1; }(); }"), "lambda@1 lambda@2 ");
    EXPECT_EQ(rules("int f(int n) {\n    return n ? f(n - 1) : 0;\n}\nint g(int n) { return h.g(n); }"), "recursion@2 ");
}

}  // namespace
}  // namespace forge::test
