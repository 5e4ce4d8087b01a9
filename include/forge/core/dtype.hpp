#pragma once
// Tensor element types, numbered as GGUF/ggml number them so a file's type id maps to one directly.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace forge {

enum class DType : std::uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct DTypeInfo {
    DType type;
    std::string_view name;
    std::uint32_t block_elems;  // elements per block (1 for plain types)
    std::uint32_t block_bytes;  // bytes per block
    bool computable;            // forge's kernels can read it as weights
};

inline constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 1, 4, true},       {DType::F16, "F16", 1, 2, true},
    {DType::Q4_0, "Q4_0", 32, 18, true},   {DType::Q4_1, "Q4_1", 32, 20, true},
    {DType::Q5_0, "Q5_0", 32, 22, true},   {DType::Q5_1, "Q5_1", 32, 24, true},
    {DType::Q8_0, "Q8_0", 32, 34, true},   {DType::Q8_1, "Q8_1", 32, 36, false},
    {DType::Q2_K, "Q2_K", 256, 84, true},  {DType::Q3_K, "Q3_K", 256, 110, true},
    {DType::Q4_K, "Q4_K", 256, 144, true}, {DType::Q5_K, "Q5_K", 256, 176, true},
    {DType::Q6_K, "Q6_K", 256, 210, true}, {DType::Q8_K, "Q8_K", 256, 292, false},
    {DType::I8, "I8", 1, 1, false},        {DType::I16, "I16", 1, 2, false},
    {DType::I32, "I32", 1, 4, false},      {DType::I64, "I64", 1, 8, false},
    {DType::F64, "F64", 1, 8, false},      {DType::BF16, "BF16", 1, 2, true},
};

// The types marked computable above, for messages that list them.
#define FORGE_COMPUTABLE_TYPES "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K"

// The description of a type id, or nothing for an id forge does not know at all.
constexpr const DTypeInfo* dtype_info(std::uint32_t id) {
    for (const auto& d : kDTypes)
        if (static_cast<std::uint32_t>(d.type) == id) return &d;
    return nullptr;
}
constexpr const DTypeInfo& dtype_info(DType t) { return *dtype_info(static_cast<std::uint32_t>(t)); }

constexpr std::string_view dtype_name(DType t) { return dtype_info(t).name; }

inline std::optional<DType> dtype_from_name(std::string_view name) {
    for (const auto& d : kDTypes) {
        if (d.name.size() != name.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size(); ++i)
            if ((name[i] | 0x20) != (d.name[i] | 0x20)) same = false;
        if (same) return d.type;
    }
    return std::nullopt;
}

constexpr bool is_quantized(DType t) { return dtype_info(t).block_elems > 1; }

// Bytes of one row of `cols` elements; cols must be a multiple of the block size.
constexpr std::size_t row_bytes(DType t, std::size_t cols) {
    const auto& d = dtype_info(t);
    return cols / d.block_elems * d.block_bytes;
}

}  // namespace forge
