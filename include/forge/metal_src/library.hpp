#pragma once
// The MSL library of one model: every kernel forge launches, specialised on the model's traits and
// assembled at compile time. `library<Traits>` is a constant of the program: Metal compiles its text,
// the emulator's build step prints and compiles the same text, and the static_asserts below check it.
#include <array>
#include <cstddef>
#include <iterator>
#include <string_view>
#include <utility>

#include "forge/metal_src/attention.hpp"
#include "forge/metal_src/constexpr_string.hpp"
#include "forge/metal_src/elementwise.hpp"
#include "forge/metal_src/embed.hpp"
#include "forge/metal_src/gemm.hpp"
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/kv_append.hpp"
#include "forge/metal_src/matvec.hpp"
#include "forge/metal_src/prelude.hpp"
#include "forge/metal_src/rms_norm.hpp"
#include "forge/metal_src/rope.hpp"
#include "forge/metal_src/softmax.hpp"
#include "forge/metal_src/softmax_sample.hpp"
#include "forge/metal_src/weights.hpp"
#include "forge/traits/model_traits.hpp"

namespace forge::metal_src {

inline constexpr std::size_t kLibraryCapacity = 128 * 1024;  // every weight type at once takes 99 KiB
inline constexpr std::size_t kMaxKernels = 52;  // 13 + a mat-vec, an embedding and a GEMM per type

struct Library {
    KernelConfig config;
    std::array<KernelSource, kMaxKernels> kernels{};
    std::size_t n_kernels = 0;
    FixedString<kLibraryCapacity> text;

    constexpr const KernelSource* find(std::string_view name) const {
        for (std::size_t i = 0; i < n_kernels; ++i)
            if (text_equal(kernels[i].name, name)) return &kernels[i];
        return nullptr;
    }
};

// Every parameter struct's MSL text, in one place so each is emitted once.
inline constexpr std::string_view kParamStructs[] = {
    RmsNormParams::msl,  MatvecParams::msl,       GemmParams::msl,         RopeParams::msl,
    SoftmaxParams::msl,  SiluMulParams::msl,      AddParams::msl,          ScaleParams::msl,          AddBiasParams::msl,
    EmbedParams::msl,    KvAppendParams::msl,     AttentionParams::msl,    FlashPrefillParams::msl,
    FlashDecodeParams::msl, FlashReduceParams::msl, SoftmaxSampleParams::msl,
};

// The kernels and MSL text one weight type brings into a library.
struct WeightTypeKernels {
    DType type;
    KernelSource matvec, embed, gemm;  // gemm: quantized types only
    std::string_view decoders, readers, accumulate;
};

template <DType T>
constexpr WeightTypeKernels weight_type_kernels() {
    if constexpr (is_quantized(T))
        return {T, kMatvec<T>, kEmbed<T>, kGemm<T>, decoder_text(T), kChunkReaders<T>.view(), kMatvecAccumulate<T>.view()};
    else
        return {T, kMatvec<T>, kEmbed<T>, {}, decoder_text(T), {}, kMatvecAccumulate<T>.view()};
}

inline constexpr auto kWeightTypeKernels = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array{weight_type_kernels<kKernelDTypes[I]>()...};
}(std::make_index_sequence<std::size(kKernelDTypes)>{});

// The library of `c`: the weight-type kernels and decoders of exactly the types c.weight_types holds.
constexpr Library make_library(const KernelConfig& c) {
    Library lib;
    lib.config = c;
    const auto add = [&](const KernelSource& k) {
        if (lib.n_kernels == kMaxKernels) throw "forge::metal_src::make_library: more kernels than kMaxKernels";
        lib.kernels[lib.n_kernels++] = k;
    };
    add(kRmsNorm);
    for (const auto& w : kWeightTypeKernels)
        if (c.holds(w.type)) add(w.matvec);
    for (const auto& w : kWeightTypeKernels)
        if (c.has_gemm(w.type)) add(w.gemm);
    add(kRope);
    add(kSoftmax);
    add(kSiluMul);
    add(kAdd);
    add(kAddBias);
    add(kScale);
    for (const auto& w : kWeightTypeKernels)
        if (c.holds(w.type)) add(w.embed);
    add(kKvAppend);
    add(kAttention);
    add(kFlashPrefill);
    add(kFlashDecode);
    add(kFlashReduce);
    add(kSoftmaxSample);

    auto& out = lib.text;
    const auto put = [&](std::string_view s) {
        if (out.len + s.size() > kLibraryCapacity) throw "forge::metal_src::make_library: text exceeds its capacity";
        for (char ch : s) out.chars[out.len++] = ch;
    };
    put(kPreludeHead);
    put(constants_text(c).view());
    for (const auto s : kParamStructs) {
        put(s);
        put("\n");
    }
    put(kPreludeHelpers);
    for (const auto& s : kSharedDecoders)
        if (c.weight_types & s.users) put(s.text);
    for (const auto& w : kWeightTypeKernels) {
        if (!c.holds(w.type)) continue;
        put(w.decoders);
        put(w.readers);
        put(w.accumulate);
    }
    put(kAttentionHelpers);
    for (std::size_t i = 0; i < lib.n_kernels; ++i) {
        put(signature(lib.kernels[i]).view());
        put(lib.kernels[i].body);
        put("\n");
    }
    out.chars[out.len] = '\0';
    return lib;
}

// Whether every kernel of `lib` has exactly one entry point in its text and the text has no other.
constexpr bool entry_points_match(const Library& lib) {
    constexpr std::string_view kHead = "kernel void ";
    const std::string_view text = lib.text.view();
    std::array<int, kMaxKernels> seen{};
    std::size_t total = 0;
    for (std::size_t pos = text_find(text, kHead); pos != std::string_view::npos; pos = text_find(text, kHead, pos + 1)) {
        const std::size_t begin = pos + kHead.size();
        const std::string_view name = text.substr(begin, text_find(text, "(", begin) - begin);
        ++total;
        bool known = false;
        for (std::size_t i = 0; i < lib.n_kernels; ++i)
            if (text_equal(lib.kernels[i].name, name)) ++seen[i], known = true;
        if (!known) return false;
    }
    for (std::size_t i = 0; i < lib.n_kernels; ++i)
        if (seen[i] != 1) return false;
    return total == lib.n_kernels;
}

template <ModelTraits T>
struct LibraryOf {
    static constexpr Library value = make_library(kernel_config(T::shape));
    static constexpr const KernelConfig& c = value.config;

    static_assert(entry_points_match(value), "forge metal: every kernel must have exactly one entry point in the text");
    static_assert(c.head_dim % 4 == 0 && c.head_dim >= 4 && c.head_dim <= KernelConfig::kFlashThreads * 2,
                  "forge metal: head_dim must be a multiple of 4 in [4, 256]");
    static_assert(kGemmThreadgroupFloats * 4 <= kThreadgroupMemoryLimit &&
                      (kFlashThreadgroupFloats + KernelConfig::kReduceScratch) * 4 <= kThreadgroupMemoryLimit &&
                      flash_prefill_threadgroup_floats(c.head_dim) * 4 <= kThreadgroupMemoryLimit,
                  "forge metal: GEMM and flash-attention tiles must fit in 32 KiB of threadgroup memory");
    static_assert(text_find(value.text.view(), concat<48>("constant constexpr uint HEAD_DIM = ", format_int(c.head_dim), ";").view()) !=
                      std::string_view::npos,
                  "forge metal: the text must bake the traits' head_dim");
};

template <ModelTraits T>
inline constexpr const Library& library = LibraryOf<T>::value;

}  // namespace forge::metal_src
