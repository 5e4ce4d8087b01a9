#pragma once
// The values a Jinja template computes with, with Python's semantics: undefined, none, bool, int, float,
// string, list, dict (insertion-ordered), callable (builtins, macros) and namespace. Lists, dicts and
// namespaces are shared by reference, as in Python, so `ns.x = ...` and `list.append` are seen by every
// holder.
//
// A string remembers which of its bytes came from the render's context (message text, tool descriptions,
// names): those must never become special tokens. Concatenation keeps each piece's origin; any other
// operation on a string that holds context bytes gives a string wholly from the context.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "forge/chat/jinja/limits.hpp"
#include "forge/core/error.hpp"
#include "forge/json/json.hpp"

namespace forge::chat::jinja {

class String {
public:
    struct Span {
        std::size_t begin, end;
    };

    String() = default;
    String(std::string text) : text_(std::move(text)) {}  // template text
    String(const char* text) : text_(text) {}

    static String from_context(std::string text) {
        String s(std::move(text));
        if (!s.text_.empty()) s.data_.push_back({0, s.text_.size()});
        return s;
    }

    const std::string& str() const { return text_; }
    std::size_t size() const { return text_.size(); }
    bool empty() const { return text_.empty(); }
    bool from_context() const { return !data_.empty(); }
    const std::vector<Span>& context_spans() const { return data_; }

    // A string computed from this one: wholly from the context when any of this was.
    String derive(std::string text) const { return from_context() ? from_context(std::move(text)) : String(std::move(text)); }

    String& operator+=(const String& o) {
        const std::size_t at = text_.size();
        text_ += o.text_;
        for (const Span s : o.data_) {
            if (!data_.empty() && data_.back().end == at + s.begin) data_.back().end = at + s.end;
            else data_.push_back({at + s.begin, at + s.end});
        }
        return *this;
    }

private:
    std::string text_;
    std::vector<Span> data_;  // sorted, disjoint, non-empty
};

class Value;
struct Args;
class Runtime;
using List = std::vector<Value>;
class Dict;
using Function = std::function<Value(Runtime&, Args&)>;

struct Callable {
    std::string name;
    Function fn;
};

struct Undefined {
    std::string name;  // what was looked up, for error messages
};
struct None {};
struct Namespace;

class Value {
public:
    using Variant = std::variant<Undefined, None, bool, std::int64_t, double, String, std::shared_ptr<List>,
                                 std::shared_ptr<Dict>, std::shared_ptr<Callable>, std::shared_ptr<Namespace>>;
    enum Kind { undefined, none, boolean, integer, floating, string, list, dict, callable, namespace_ };

    Value() = default;
    Value(Undefined u) : v_(std::move(u)) {}
    Value(None) : v_(None{}) {}
    Value(bool b) : v_(b) {}
    Value(std::int64_t i) : v_(i) {}
    Value(int i) : v_(std::int64_t(i)) {}
    Value(double d) : v_(d) {}
    Value(String s) : v_(std::move(s)) {}
    Value(std::string s) : v_(String(std::move(s))) {}
    Value(const char* s) : v_(String(s)) {}
    Value(List l) : v_(std::make_shared<List>(std::move(l))) {}
    Value(Dict d);
    Value(std::shared_ptr<Callable> c) : v_(std::move(c)) {}
    Value(std::shared_ptr<Namespace> n) : v_(std::move(n)) {}

    Kind kind() const { return Kind(v_.index()); }
    bool is(Kind k) const { return kind() == k; }
    bool is_undefined() const { return is(undefined); }
    bool is_none() const { return is(none); }
    bool is_string() const { return is(string); }
    bool is_number() const { return is(integer) || is(floating) || is(boolean); }
    bool is_list() const { return is(list); }
    bool is_dict() const { return is(dict); }

    bool as_bool() const { return std::get<bool>(v_); }
    std::int64_t as_int() const { return is(boolean) ? std::get<bool>(v_) : std::get<std::int64_t>(v_); }
    double as_double() const { return is(floating) ? std::get<double>(v_) : double(as_int()); }
    const String& as_string() const { return std::get<String>(v_); }
    List& as_list() const { return *std::get<std::shared_ptr<List>>(v_); }
    Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
    const Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }
    Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
    const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

    const char* type_name() const {
        constexpr const char* names[] = {"undefined", "none", "bool", "int", "float", "string", "list", "dict", "callable", "namespace"};
        return names[v_.index()];
    }

private:
    Variant v_;
};

// Python's dict: insertion order, keys of any hashable kind (here none, bool, int, float and string),
// with an index so that lookups stay fast on hostile sizes.
class Dict {
public:
    using Entry = std::pair<Value, Value>;

    const std::vector<Entry>& entries() const { return entries_; }
    std::size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }

    const Value* find(const Value& key) const {
        const auto it = index_.find(hash_key(key));
        return it == index_.end() ? nullptr : &entries_[it->second].second;
    }
    const Value* find(const std::string& key) const { return find(Value(key)); }
    const Value* find(const char* key) const { return find(Value(key)); }

    void set(Value key, Value v) {
        auto [it, added] = index_.try_emplace(hash_key(key), entries_.size());
        if (added) entries_.emplace_back(std::move(key), std::move(v));
        else entries_[it->second].second = std::move(v);
    }

    void clear() {
        entries_.clear();
        index_.clear();
    }

    Value pop(const Value& key) {
        const auto it = index_.find(hash_key(key));
        if (it == index_.end()) return Undefined{};
        const std::size_t at = it->second;
        Value v = std::move(entries_[at].second);
        entries_.erase(entries_.begin() + std::ptrdiff_t(at));
        index_.erase(it);
        for (auto& [k, i] : index_)
            if (i > at) --i;
        return v;
    }

    // The key's identity: its kind and text, with numbers equal as Python's are (1 == 1.0 == True).
    static std::string hash_key(const Value& key) {
        switch (key.kind()) {
            case Value::string: return "s" + key.as_string().str();
            case Value::boolean:
            case Value::integer: return "n" + std::to_string(key.as_int());
            case Value::floating: {
                const double d = key.as_double();
                if (d == std::floor(d) && std::fabs(d) < 9e18) return "n" + std::to_string(std::int64_t(d));
                char buf[40];
                std::snprintf(buf, sizeof buf, "f%.17g", d);
                return buf;
            }
            case Value::none: return "0";
            default: throw Error(std::string("jinja: a ") + key.type_name() + " cannot be a dict key");
        }
    }

private:
    std::vector<Entry> entries_;
    std::unordered_map<std::string, std::size_t> index_;
};

inline Value::Value(Dict d) : v_(std::make_shared<Dict>(std::move(d))) {}

// namespace(): a dict whose entries are set with `{% set ns.x = ... %}`.
struct Namespace {
    Dict attrs;
};

// A call's arguments: positional, then keyword in the order written.
struct Args {
    List positional;
    std::vector<std::pair<std::string, Value>> keyword;
};

// Values from JSON: strings are marked as from the context unless `trusted`; numbers that are whole
// become ints, as JSON parsers that keep integers (Python's, nlohmann's) give them.
inline Value from_json(const json::Value& j, bool trusted = false, int depth = 0) {
    if (depth > kMaxValueDepth) throw Error("jinja: context nests deeper than " + std::to_string(kMaxValueDepth) + " levels");
    if (j.is_null()) return None{};
    if (j.is_bool()) return j.as_bool();
    if (j.is_number()) {
        const double d = j.as_number();
        if (d == std::floor(d) && std::fabs(d) < 9.2e18) return std::int64_t(d);
        return d;
    }
    if (j.is_string()) return trusted ? String(j.as_string()) : String::from_context(j.as_string());
    if (j.is_array()) {
        List l;
        l.reserve(j.as_array().size());
        for (const auto& e : j.as_array()) l.push_back(from_json(e, trusted, depth + 1));
        return l;
    }
    Dict d;
    for (const auto& [k, v] : j.as_object()) d.set(trusted ? String(k) : String::from_context(k), from_json(v, trusted, depth + 1));
    return d;
}

}  // namespace forge::chat::jinja
