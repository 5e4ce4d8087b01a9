// libFuzzer target for the GGUF reader and the model built on it. Any input must either parse or fail
// with forge::Error; a parse must hand out only what lies in the input, so every metadata value and
// every byte of every tensor is read back here (libFuzzer's input buffer is exactly `size` bytes, so
// ASan sees any read past it). A file that loads as a model must then compute finite logits for a
// token, or fail with forge::Error: never NaN, never a crash.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <variant>

#include "forge/core/error.hpp"
#include "forge/gguf/model_shape.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/model/model.hpp"

namespace {

using forge::gguf::Array;
using forge::gguf::File;
using forge::gguf::Value;

// A checksum of everything in the value, so that no read can be optimized away.
std::uint64_t touch(const Value& v) {
    return std::visit(
        [](const auto& x) -> std::uint64_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                std::uint64_t h = x.size();
                for (const char c : x) h = h * 31 + static_cast<unsigned char>(c);
                return h;
            } else if constexpr (std::is_same_v<T, Array>) {
                std::uint64_t h = static_cast<std::uint32_t>(x.elem);
                for (const Value& item : x.items) h = h * 31 + touch(item);
                return h;
            } else if constexpr (std::is_same_v<T, double>) {
                return std::bit_cast<std::uint64_t>(x);
            } else {
                return static_cast<std::uint64_t>(x);
            }
        },
        v.data);
}

// A typed getter either answers or refuses the value's type with forge::Error.
template <class Fn>
std::uint64_t attempt(Fn&& fn) {
    try {
        return fn();
    } catch (const forge::Error&) {
        return 1;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    try {
        const File f = File::parse(input);
        std::uint64_t sum = f.version() + f.alignment() + f.data_offset();
        for (const auto& [key, value] : f.metadata()) {
            if (f.find(key) != &value) __builtin_trap();
            const std::string& k = key;
            sum += touch(value);
            sum += attempt([&] { return f.get_uint(k).value_or(0); });
            sum += attempt([&] { return std::bit_cast<std::uint64_t>(f.get_float(k).value_or(0.0)); });
            sum += attempt([&] { return std::uint64_t(f.get_bool(k).value_or(false)); });
            sum += attempt([&] { return std::uint64_t(f.get_string(k).value_or("").size()); });
            sum += attempt([&] { return std::uint64_t(f.get_array(k) != nullptr); });
        }
        for (const auto& t : f.tensors()) {
            if (f.find_tensor(t.name) != &t) __builtin_trap();
            if (t.data < input.data() || t.bytes > std::uint64_t(input.data() + input.size() - t.data)) __builtin_trap();
            sum += t.rows() * t.cols() + t.elements + t.type_name().size() + static_cast<std::uint32_t>(t.dtype());
            for (std::uint64_t i = 0; i < t.bytes; ++i) sum += std::to_integer<std::uint8_t>(t.data[i]);
        }
        volatile std::uint64_t sink = sum;
        (void)sink;
    } catch (const forge::Error&) {
        return 0;
    }
    try {
        const File f = File::parse(input);
        const int context = std::min(16, forge::gguf::model_shape(f).max_context);
        forge::Model<forge::Dynamic> model(f, {.context = context});
        const std::int32_t token = 1 % model.shape().vocab;
        for (const float x : model.prefill(std::span(&token, 1)))
            if (!std::isfinite(x)) __builtin_trap();
    } catch (const forge::Error&) {
    }
    return 0;
}
