#pragma once
// GEMMs specialised on their weight rows' length, found at run time. The kernels unroll a whole row when
// its length is a compile-time constant, which pays most on short rows (docs/traits.md); that is the one
// dimension compiled traits buy speed with. So a program compiles those kernels once per distinct row
// length it cares about (FORGE_REGISTER_ROW_LENGTHS, for example of the model catalog), not once per
// model, and every model whose rows have a registered length runs them, a shape read from a file
// included. A length nobody registered runs the generic kernels, with the same bits.
#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "forge/cpu/kernels/gemm.hpp"

namespace forge::cpu {

// gemm<Isa, Cols> in its two forms.
struct RowLengthGemm {
    void (*jobs)(std::initializer_list<GemmJob>, GemmInput&, ThreadPool&);
    void (*one)(const WeightView&, GemmInput&, float*, int, ThreadPool&);
    int cols;  // 0: any length (the generic kernels)
};

template <class Isa, int Cols>
constexpr RowLengthGemm row_length_gemm() {
    return {static_cast<void (*)(std::initializer_list<GemmJob>, GemmInput&, ThreadPool&)>(&gemm<Isa, Cols>),
            static_cast<void (*)(const WeightView&, GemmInput&, float*, int, ThreadPool&)>(&gemm<Isa, Cols>), Cols};
}

// The row lengths this program compiled kernels for, with the native instruction set. Filled during
// static initialisation; read when a model opens.
class RowLengthRegistry {
public:
    static RowLengthRegistry& instance() {
        static RowLengthRegistry r;
        return r;
    }
    void add(const RowLengthGemm& g) {
        std::lock_guard lock(mu_);
        by_cols_.emplace(g.cols, g);
    }
    // The kernels for rows of `cols` values: the specialised ones if registered, else the generic ones.
    RowLengthGemm find(int cols) const {
        std::lock_guard lock(mu_);
        const auto it = by_cols_.find(cols);
        return it != by_cols_.end() ? it->second : row_length_gemm<isa::Native, 0>();
    }

private:
    mutable std::mutex mu_;
    std::map<int, RowLengthGemm> by_cols_;
};

namespace detail {

template <auto Lengths, std::size_t Shard, std::size_t Shards, std::size_t I>
void register_row_length() {
    if constexpr (I % Shards == Shard) RowLengthRegistry::instance().add(row_length_gemm<isa::Native, Lengths[I]>());
}

template <auto Lengths, std::size_t Shard, std::size_t Shards, std::size_t... I>
bool register_row_lengths(std::index_sequence<I...>) {
    (register_row_length<Lengths, Shard, Shards, I>(), ...);
    return true;
}

}  // namespace detail

// Registers the kernels for the lengths of the constexpr array `Lengths` whose index is Shard modulo
// Shards, so that a long list can be compiled in several translation units side by side.
template <auto Lengths, std::size_t Shard = 0, std::size_t Shards = 1>
bool register_row_lengths() {
    return detail::register_row_lengths<Lengths, Shard, Shards>(std::make_index_sequence<Lengths.size()>());
}

// The distinct row lengths of the shapes of a list of traits (hidden, heads*head_dim and ffn of each),
// sorted: the kernels a catalog needs.
template <class... T>
constexpr auto row_lengths_of(std::tuple<T...>*) {
    constexpr std::size_t kMax = 3 * sizeof...(T);
    constexpr auto all = [] {
        std::array<int, kMax> v{};
        std::size_t n = 0;
        ((v[n++] = T::shape.hidden, v[n++] = T::shape.q_dim(), v[n++] = T::shape.ffn), ...);
        std::sort(v.begin(), v.end());
        return v;
    }();
    constexpr std::size_t kDistinct = [&] {
        std::size_t n = 0;
        for (std::size_t i = 0; i < kMax; ++i) n += i == 0 || all[i] != all[i - 1];
        return n;
    }();
    std::array<int, kDistinct> out{};
    std::size_t n = 0;
    for (std::size_t i = 0; i < kMax; ++i)
        if (i == 0 || all[i] != all[i - 1]) out[n++] = all[i];
    return out;
}

}  // namespace forge::cpu

// In one translation unit per shard: registers the kernels of every row length of the traits list
// CATALOG (a std::tuple) whose index is SHARD modulo SHARDS.
#define FORGE_REGISTER_ROW_LENGTHS(CATALOG, SHARD, SHARDS)                                                  \
    namespace {                                                                                             \
    constexpr auto forge_row_lengths = ::forge::cpu::row_lengths_of(static_cast<CATALOG*>(nullptr));        \
    [[maybe_unused]] const bool forge_row_lengths_registered =                                              \
        ::forge::cpu::register_row_lengths<forge_row_lengths, SHARD, SHARDS>();                             \
    }
