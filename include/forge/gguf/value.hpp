#pragma once
// GGUF metadata values: the twelve scalar types, strings, and (possibly nested) arrays.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace forge::gguf {

enum class ValueType : std::uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
    u64 = 10, i64 = 11, f64 = 12,
};

constexpr std::string_view value_type_name(ValueType t) {
    constexpr std::string_view names[] = {"u8",  "i8",    "u16",   "i16", "u32", "i32", "f32",
                                          "bool", "string", "array", "u64", "i64", "f64"};
    const auto i = static_cast<std::uint32_t>(t);
    return i < 13 ? names[i] : "unknown";
}

// Size in bytes of a fixed-size scalar type, 0 for string/array (and unknown ids).
constexpr std::size_t scalar_size(ValueType t) {
    switch (t) {
        case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
        case ValueType::u16: case ValueType::i16: return 2;
        case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
        case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
        default: return 0;
    }
}

struct Value;
struct Array {
    ValueType elem = ValueType::u8;
    std::vector<Value> items;
};

// Integers keep their signedness in the variant; `type` keeps the exact width for round trips.
struct Value {
    ValueType type = ValueType::u32;
    std::variant<std::uint64_t, std::int64_t, double, bool, std::string, Array> data;

    static Value u32(std::uint32_t v) { return {ValueType::u32, std::uint64_t(v)}; }
    static Value i32(std::int32_t v) { return {ValueType::i32, std::int64_t(v)}; }
    static Value u64(std::uint64_t v) { return {ValueType::u64, v}; }
    static Value f32(float v) { return {ValueType::f32, double(v)}; }
    static Value boolean(bool v) { return {ValueType::boolean, v}; }
    static Value string(std::string v) { return {ValueType::string, std::move(v)}; }
    static Value array(ValueType elem, std::vector<Value> items) {
        return {ValueType::array, Array{elem, std::move(items)}};
    }
};

}  // namespace forge::gguf
