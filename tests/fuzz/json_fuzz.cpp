// libFuzzer target for the JSON reader and the API's request validation. Any input must parse or fail
// with forge::Error (validation: with ApiError); what parses must be written back as JSON that parses
// to the same value (numbers to the writer's precision).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "forge/json/json.hpp"
#include "forge/serve/openai.hpp"

namespace {

using forge::json::Value;

bool same(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        const double x = a.as_number(), y = b.as_number();
        return x == y || std::fabs(x - y) <= 1e-8 * std::fabs(x);  // the writer keeps 9 significant digits
    }
    if (a.is_number() && !std::isfinite(a.as_number())) return b.is_null();  // JSON has no inf: written as null
    if (a.type_name() != std::string_view(b.type_name())) return false;
    if (a.is_string()) return a.as_string() == b.as_string();
    if (a.is_bool()) return a.as_bool() == b.as_bool();
    if (a.is_array()) {
        if (a.as_array().size() != b.as_array().size()) return false;
        for (std::size_t i = 0; i < a.as_array().size(); ++i)
            if (!same(a.as_array()[i], b.as_array()[i])) return false;
    }
    if (a.is_object()) {
        if (a.as_object().size() != b.as_object().size()) return false;
        for (std::size_t i = 0; i < a.as_object().size(); ++i)
            if (a.as_object()[i].first != b.as_object()[i].first || !same(a.as_object()[i].second, b.as_object()[i].second)) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const Value v = forge::json::parse(text);
        if (!same(v, forge::json::parse(forge::json::dump(v)))) __builtin_trap();
    } catch (const forge::Error&) {
    }
    try {
        forge::serve::parse_chat_request(text);
    } catch (const forge::serve::ApiError& e) {
        if (e.status != 400 || e.message.empty()) __builtin_trap();
    }
    try {
        forge::serve::parse_completion_request(text);
    } catch (const forge::serve::ApiError& e) {
        if (e.status != 400 || e.message.empty()) __builtin_trap();
    }
    return 0;
}
