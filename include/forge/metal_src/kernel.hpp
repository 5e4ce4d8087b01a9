#pragma once
// How a kernel is described once for both of its consumers: the MSL signature handed to Metal and the
// emulator's argument binding are both generated from the same KernelSource, so they cannot drift.
//
// Every kernel has the same shape of signature:
//   kernel void NAME(DPTR(T0) b0 [[buffer(0)]], ..., constant NAMEParams& p [[buffer(n)]],
//                    [TPTR(float) tgm [[threadgroup(0)]],] [built-ins it uses, in the order below])
// Buffers are bound in order, the parameter struct right after them, threadgroup memory (when used) is
// one dynamic block the launcher sizes. Built-ins: uint3 tgpig (threadgroup position in grid), uint3 ntg
// (threads per threadgroup), uint tid (thread index in threadgroup), uint lane (index in simdgroup),
// uint sg (simdgroup index in threadgroup).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "forge/metal_src/constexpr_string.hpp"

namespace forge::metal_src {

struct BufferParam {
    std::string_view type;  // MSL element type as written, e.g. "const float"
    std::string_view name;
};

inline constexpr std::size_t kMaxBuffers = 6;

enum Builtin : std::uint8_t { kTgpig = 1, kNtg = 2, kTid = 4, kLane = 8, kSg = 16 };

struct BuiltinText {
    Builtin flag;
    std::string_view decl;
};
inline constexpr BuiltinText kBuiltins[] = {
    {kTgpig, "uint3 tgpig [[threadgroup_position_in_grid]]"},
    {kNtg, "uint3 ntg [[threads_per_threadgroup]]"},
    {kTid, "uint tid [[thread_index_in_threadgroup]]"},
    {kLane, "uint lane [[thread_index_in_simdgroup]]"},
    {kSg, "uint sg [[simdgroup_index_in_threadgroup]]"},
};

struct KernelSource {
    std::string_view name;
    std::string_view params;  // name of the parameter struct
    std::array<BufferParam, kMaxBuffers> buffers{};
    std::size_t n_buffers = 0;
    bool threadgroup_memory = false;
    std::uint8_t builtins = 0;  // Builtin flags
    std::string_view body;  // "{ ... }"
};

// Parameter structs: one field list per kernel (X-macro of F(type, name), type `uint` or `float`) yields
// the C++ struct the host fills and the MSL struct text the kernels read. Every field is 4 bytes, so
// both languages lay them out at offsets 0, 4, 8, ... with no padding; the static_assert holds them to it.
using msl_uint = std::uint32_t;
using msl_float = float;
#define FORGE_MSL_CXX_FIELD(type, name) ::forge::metal_src::msl_##type name;
#define FORGE_MSL_TEXT_FIELD(type, name) "    " #type " " #name ";\n"
#define FORGE_MSL_COUNT_FIELD(type, name) +1
#define FORGE_MSL_PARAMS(Name, FIELDS)                                                                    \
    struct Name {                                                                                         \
        FIELDS(FORGE_MSL_CXX_FIELD)                                                                       \
        static constexpr std::string_view msl_name = #Name;                                               \
        static constexpr std::string_view msl = "struct " #Name " {\n" FIELDS(FORGE_MSL_TEXT_FIELD) "};\n"; \
    };                                                                                                    \
    static_assert(std::is_standard_layout_v<Name> && std::is_trivially_copyable_v<Name> &&               \
                      sizeof(Name) == 4 * (0 FIELDS(FORGE_MSL_COUNT_FIELD)),                             \
                  #Name " must be packed 4-byte fields, as MSL lays it out")

// The signature text of `k` (everything before its body).
template <std::size_t Cap = 1024>
constexpr FixedString<Cap> signature(const KernelSource& k) {
    FixedString<Cap> out;
    const auto add = [&](std::string_view s) {
        if (out.len + s.size() > Cap) throw "forge::metal_src::signature: capacity exceeded";
        for (char c : s) out.chars[out.len++] = c;
    };
    add("kernel void ");
    add(k.name);
    add("(\n");
    for (std::size_t i = 0; i < k.n_buffers; ++i) {
        add("    DPTR(");
        add(k.buffers[i].type);
        add(") ");
        add(k.buffers[i].name);
        add(" [[buffer(");
        add(format_int(static_cast<long long>(i)).view());
        add(")]],\n");
    }
    add("    constant ");
    add(k.params);
    add("& p [[buffer(");
    add(format_int(static_cast<long long>(k.n_buffers)).view());
    add(")]]");
    if (k.threadgroup_memory) add(",\n    TPTR(float) tgm [[threadgroup(0)]]");
    for (const auto& b : kBuiltins) {
        if (!(k.builtins & b.flag)) continue;
        add(",\n    ");
        add(b.decl);
    }
    add(")\n");
    out.chars[out.len] = '\0';
    return out;
}

}  // namespace forge::metal_src
