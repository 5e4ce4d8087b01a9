#pragma once
// A small JSON value, a strict parser for hostile input (depth and size bounded, exact UTF-8 and
// escape handling, errors naming the byte offset) and a writer. Used for reference logits, `forge eval`
// output and the HTTP server's requests and responses.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/core/utf8.hpp"

namespace forge::json {

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // keeps insertion order for output

class Value {
public:
    Value() = default;  // null
    Value(std::nullptr_t) {}
    Value(bool b) : v_(b) {}
    Value(double d) : v_(d) {}
    Value(int i) : v_(double(i)) {}
    Value(std::int64_t i) : v_(double(i)) {}
    Value(std::size_t i) : v_(double(i)) {}
    Value(const char* s) : v_(std::string(s)) {}
    Value(std::string s) : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(Array a) : v_(std::move(a)) {}
    Value(Object o) : v_(std::move(o)) {}

    bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
    bool is_bool() const { return std::holds_alternative<bool>(v_); }
    bool is_number() const { return std::holds_alternative<double>(v_); }
    bool is_string() const { return std::holds_alternative<std::string>(v_); }
    bool is_array() const { return std::holds_alternative<Array>(v_); }
    bool is_object() const { return std::holds_alternative<Object>(v_); }

    const char* type_name() const {
        constexpr const char* names[] = {"null", "boolean", "number", "string", "array", "object"};
        return names[v_.index()];
    }

    bool as_bool() const { return get<bool>("a boolean"); }
    double as_number() const { return get<double>("a number"); }
    const std::string& as_string() const { return get<std::string>("a string"); }
    const Array& as_array() const { return get<Array>("an array"); }
    const Object& as_object() const { return get<Object>("an object"); }
    Array& as_array() { return const_cast<Array&>(std::as_const(*this).as_array()); }
    Object& as_object() { return const_cast<Object&>(std::as_const(*this).as_object()); }

    // Object member lookup; nullptr when absent (or when this is not an object).
    const Value* find(std::string_view key) const {
        if (const auto* o = std::get_if<Object>(&v_))
            for (const auto& [k, v] : *o)
                if (k == key) return &v;
        return nullptr;
    }
    const Value& at(std::string_view key) const {
        if (const Value* v = find(key)) return *v;
        throw Error("missing field '" + std::string(key) + "'");
    }
    Value& set(std::string key, Value v) {
        auto& o = as_object();
        for (auto& [k, old] : o)
            if (k == key) return old = std::move(v);
        o.emplace_back(std::move(key), std::move(v));
        return o.back().second;
    }

private:
    template <class T>
    const T& get(const char* want) const {
        if (const auto* p = std::get_if<T>(&v_)) return *p;
        throw Error(std::string("expected ") + want + ", found " + type_name());
    }
    std::variant<std::monostate, bool, double, std::string, Array, Object> v_;
};

namespace detail {

class Parser {
public:
    Parser(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

    Value parse_document() {
        Value v = parse_value(0);
        skip_ws();
        if (i_ != s_.size()) fail("unexpected trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error("invalid JSON at byte " + std::to_string(i_) + ": " + what);
    }
    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        skip_ws();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    void expect_word(std::string_view w) {
        if (s_.substr(i_, w.size()) != w) fail("unexpected character");
        i_ += w.size();
    }

    Value parse_value(int depth) {
        if (depth > max_depth_) fail("nesting deeper than " + std::to_string(max_depth_));
        skip_ws();
        if (i_ >= s_.size()) fail("unexpected end of input");
        switch (s_[i_]) {
            case '{': return parse_object(depth);
            case '[': return parse_array(depth);
            case '"': return Value(parse_string());
            case 't': expect_word("true"); return Value(true);
            case 'f': expect_word("false"); return Value(false);
            case 'n': expect_word("null"); return Value();
            default: return Value(parse_number());
        }
    }

    Value parse_object(int depth) {
        ++i_;
        Object o;
        if (eat('}')) return Value(std::move(o));
        do {
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
            std::string key = parse_string();
            if (!eat(':')) fail("expected ':'");
            o.emplace_back(std::move(key), parse_value(depth + 1));
        } while (eat(','));
        if (!eat('}')) fail("expected ',' or '}'");
        return Value(std::move(o));
    }

    Value parse_array(int depth) {
        ++i_;
        Array a;
        if (eat(']')) return Value(std::move(a));
        do a.push_back(parse_value(depth + 1));
        while (eat(','));
        if (!eat(']')) fail("expected ',' or ']'");
        return Value(std::move(a));
    }

    double parse_number() {
        const std::size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        const auto digits = [&] {
            const std::size_t b = i_;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
            return i_ - b;
        };
        const std::size_t int_start = i_;
        if (digits() == 0) fail("expected a value");
        if (s_[int_start] == '0' && i_ - int_start > 1) fail("leading zeros are not allowed");
        if (i_ < s_.size() && s_[i_] == '.') {
            ++i_;
            if (digits() == 0) fail("expected digits after '.'");
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (digits() == 0) fail("expected exponent digits");
        }
        const std::string num(s_.substr(start, i_ - start));
        return std::strtod(num.c_str(), nullptr);
    }

    unsigned hex4() {
        if (s_.size() - i_ < 4) fail("truncated \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad hex digit in \\u escape");
        }
        return v;
    }

    std::string parse_string() {
        ++i_;  // opening quote
        std::string out;
        for (;;) {
            if (i_ >= s_.size()) fail("unterminated string");
            const char c = s_[i_];
            if (c == '"') {
                ++i_;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                const Utf8Step step = utf8_step(s_, i_);
                if (step.status != Utf8Step::ok) fail("invalid UTF-8 in string");
                out.append(s_.substr(i_, step.length));
                i_ += step.length;
                continue;
            }
            if (++i_ >= s_.size()) fail("unterminated escape");
            const char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (s_.substr(i_, 2) != "\\u") fail("unpaired surrogate in \\u escape");
                        i_ += 2;
                        const unsigned lo = hex4();
                        if (lo < 0xdc00 || lo > 0xdfff) fail("unpaired surrogate in \\u escape");
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                        fail("unpaired surrogate in \\u escape");
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail(std::string("unknown escape \\") + e);
            }
        }
    }

    std::string_view s_;
    std::size_t i_ = 0;
    int max_depth_;
};

inline void write_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

inline void write(std::string& out, const Value& v) {
    if (v.is_null()) {
        out += "null";
    } else if (v.is_bool()) {
        out += v.as_bool() ? "true" : "false";
    } else if (v.is_number()) {
        const double d = v.as_number();
        if (!std::isfinite(d)) {
            out += "null";  // JSON has no inf/nan
        } else if (d == std::floor(d) && std::fabs(d) < 1e15) {
            out += std::to_string(static_cast<long long>(d));
        } else {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.9g", d);  // round-trips an f32
            out += buf;
        }
    } else if (v.is_string()) {
        write_string(out, v.as_string());
    } else if (v.is_array()) {
        out += '[';
        bool first = true;
        for (const auto& e : v.as_array()) {
            if (!first) out += ',';
            first = false;
            write(out, e);
        }
        out += ']';
    } else {
        out += '{';
        bool first = true;
        for (const auto& [k, e] : v.as_object()) {
            if (!first) out += ',';
            first = false;
            write_string(out, k);
            out += ':';
            write(out, e);
        }
        out += '}';
    }
}

}  // namespace detail

inline Value parse(std::string_view text, int max_depth = 64) { return detail::Parser(text, max_depth).parse_document(); }

inline std::string dump(const Value& v) {
    std::string out;
    detail::write(out, v);
    return out;
}

}  // namespace forge::json
