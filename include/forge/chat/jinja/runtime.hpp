#pragma once
// What every part of a render shares: the sandbox's budgets (loop iterations, string work, nesting),
// errors that name the template's line and column, and the value operations with Python's semantics
// (truthiness, equality, ordering, str(), repr(), JSON).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "forge/chat/jinja/lexer.hpp"
#include "forge/chat/jinja/limits.hpp"
#include "forge/chat/jinja/value.hpp"
#include "forge/core/utf8.hpp"

namespace forge::chat::jinja {

// An error that already names its place in the template.
class LocatedError : public Error {
public:
    using Error::Error;
};

class Runtime {
public:
    explicit Runtime(std::string_view src) : src_(src) {}
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Empties every container the render mutated: one that came to hold itself (a list appended to
    // itself, a namespace set as its own attribute) would otherwise never be freed.
    ~Runtime() {
        for (const Value& v : mutated_) {
            if (v.is_list()) v.as_list().clear();
            else if (v.is_dict()) v.as_dict().clear();
            else if (v.is(Value::namespace_)) v.as_namespace().attrs.clear();
        }
    }

    // `container` (a list, dict or namespace) is being changed in place.
    void mutating(const Value& container) {
        const void* p = container.is_list() ? static_cast<const void*>(&container.as_list())
                        : container.is_dict() ? static_cast<const void*>(&container.as_dict())
                                              : static_cast<const void*>(&container.as_namespace());
        if (mutated_ptrs_.insert(p).second) mutated_.push_back(container);
    }

    [[noreturn]] void fail(const std::string& what, std::size_t at) const { throw LocatedError("jinja: " + what + " at " + where(src_, at)); }

    // One more loop iteration (or item a filter walks), against kMaxLoopIterations for the render.
    void iterate(std::int64_t n = 1) {
        iterations_ += n;
        if (n < 0 || iterations_ > kMaxLoopIterations)
            throw Error("loop iterations over kMaxLoopIterations (" + std::to_string(kMaxLoopIterations) + ")");
    }

    // `bytes` more string work; `result` is the size of a string about to be made.
    void charge(std::size_t bytes, std::size_t result = 0) {
        if (result > kMaxOutputBytes)
            throw Error("a string of " + std::to_string(result) + " bytes, over kMaxOutputBytes (" + std::to_string(kMaxOutputBytes) + ")");
        work_ += bytes;
        if (work_ > kMaxStringWork) throw Error("string work over kMaxStringWork (" + std::to_string(kMaxStringWork) + " bytes)");
    }

    // The time strftime_now reads, fixed per render so that one render sees one instant.
    std::time_t now = 0;

private:
    std::string_view src_;
    std::vector<Value> mutated_;
    std::unordered_set<const void*> mutated_ptrs_;
    std::int64_t iterations_ = 0;
    std::size_t work_ = 0;
};

inline void check_depth(int depth) {
    if (depth > kMaxValueDepth) throw Error("values nest deeper than kMaxValueDepth (" + std::to_string(kMaxValueDepth) + ")");
}

inline bool truthy(const Value& v) {
    switch (v.kind()) {
        case Value::undefined:
        case Value::none: return false;
        case Value::boolean: return v.as_bool();
        case Value::integer: return v.as_int() != 0;
        case Value::floating: return v.as_double() != 0;
        case Value::string: return !v.as_string().empty();
        case Value::list: return !v.as_list().empty();
        case Value::dict: return !v.as_dict().empty();
        default: return true;
    }
}

inline bool equals(Runtime& rt, const Value& a, const Value& b, int depth = 0) {
    check_depth(depth);
    rt.iterate();
    if (a.is_number() && b.is_number()) {
        if (a.is(Value::floating) || b.is(Value::floating)) return a.as_double() == b.as_double();
        return a.as_int() == b.as_int();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::undefined:
        case Value::none: return true;
        case Value::string: rt.charge(std::min(a.as_string().size(), b.as_string().size())); return a.as_string().str() == b.as_string().str();
        case Value::list: {
            const List &x = a.as_list(), &y = b.as_list();
            if (x.size() != y.size()) return false;
            for (std::size_t i = 0; i < x.size(); ++i)
                if (!equals(rt, x[i], y[i], depth + 1)) return false;
            return true;
        }
        case Value::dict: {
            const Dict &x = a.as_dict(), &y = b.as_dict();
            if (x.size() != y.size()) return false;
            for (const auto& [k, v] : x.entries()) {
                const Value* w = y.find(k);
                if (!w || !equals(rt, v, *w, depth + 1)) return false;
            }
            return true;
        }
        case Value::namespace_: return &a.as_namespace() == &b.as_namespace();
        case Value::callable: return &a.as_callable() == &b.as_callable();
        default: return false;
    }
}

// Python's ordering: numbers with numbers, strings with strings (by bytes, which is code point order
// for UTF-8), lists element by element.
inline int compare(Runtime& rt, const Value& a, const Value& b, int depth = 0) {
    check_depth(depth);
    rt.iterate();
    if (a.is_number() && b.is_number()) {
        const double x = a.as_double(), y = b.as_double();
        if (!a.is(Value::floating) && !b.is(Value::floating)) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
        return x < y ? -1 : x > y;
    }
    if (a.is_string() && b.is_string()) {
        rt.charge(std::min(a.as_string().size(), b.as_string().size()));
        const int c = a.as_string().str().compare(b.as_string().str());
        return c < 0 ? -1 : c > 0;
    }
    if (a.is_list() && b.is_list()) {
        const List &x = a.as_list(), &y = b.as_list();
        for (std::size_t i = 0; i < x.size() && i < y.size(); ++i)
            if (const int c = compare(rt, x[i], y[i], depth + 1)) return c;
        return x.size() < y.size() ? -1 : x.size() > y.size();
    }
    throw Error(std::string("cannot order a ") + a.type_name() + " and a " + b.type_name());
}

// A float as llama.cpp's engine prints it: fixed with six decimals, trailing zeros dropped, one kept.
inline std::string float_text(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    char buf[400];
    std::snprintf(buf, sizeof buf, "%f", d);
    std::string s = buf;
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s += '0';
    return s;
}

// A float in JSON: the shortest text that reads back as the same double.
inline std::string float_json(double d) {
    if (!std::isfinite(d)) return d != d ? "NaN" : d < 0 ? "-Infinity" : "Infinity";
    char buf[40];
    for (int p = 1; p <= 17; ++p) {
        std::snprintf(buf, sizeof buf, "%.*g", p, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    return buf;
}

std::string repr(Runtime& rt, const Value& v, int depth = 0);

// Python's repr() of a string: single quotes unless it holds one and no double quote.
inline std::string repr_string(const std::string& s) {
    const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
    std::string out(1, q);
    for (const char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c == q) out += '\\', out += c;
                else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
                    out += buf;
                } else out += c;
        }
    }
    return out + q;
}

// Each element costs an iteration and the text grows under kMaxOutputBytes: a list holding one large list
// many times would otherwise print to gigabytes.
inline std::string repr(Runtime& rt, const Value& v, int depth) {
    check_depth(depth);
    rt.iterate();
    switch (v.kind()) {
        case Value::undefined: return "";
        case Value::none: return "None";
        case Value::boolean: return v.as_bool() ? "True" : "False";
        case Value::integer: return std::to_string(v.as_int());
        case Value::floating: return float_text(v.as_double());
        case Value::string: return repr_string(v.as_string().str());
        case Value::list: {
            std::string out = "[";
            for (const auto& e : v.as_list()) {
                out += (out.size() > 1 ? ", " : "") + repr(rt, e, depth + 1);
                rt.charge(0, out.size());
            }
            return out + "]";
        }
        case Value::dict: {
            std::string out = "{";
            for (const auto& [k, e] : v.as_dict().entries()) {
                out += (out.size() > 1 ? ", " : "") + repr(rt, k, depth + 1) + ": " + repr(rt, e, depth + 1);
                rt.charge(0, out.size());
            }
            return out + "}";
        }
        case Value::callable: return "<function " + v.as_callable().name + ">";
        default: return "<Namespace>";
    }
}

// Whether any string inside came from the context.
inline bool holds_context(Runtime& rt, const Value& v, int depth = 0) {
    check_depth(depth);
    rt.iterate();
    switch (v.kind()) {
        case Value::string: return v.as_string().from_context();
        case Value::list:
            return std::any_of(v.as_list().begin(), v.as_list().end(), [&](const Value& e) { return holds_context(rt, e, depth + 1); });
        case Value::dict:
            for (const auto& [k, e] : v.as_dict().entries())
                if (holds_context(rt, k, depth + 1) || holds_context(rt, e, depth + 1)) return true;
            return false;
        default: return false;
    }
}

// str(): strings as they are, the rest as Python prints them; undefined is "".
inline String to_str(Runtime& rt, const Value& v) {
    if (v.is_string()) return v.as_string();
    if (v.is_list() || v.is_dict()) {
        std::string r = repr(rt, v);
        return holds_context(rt, v) ? String::from_context(std::move(r)) : String(std::move(r));
    }
    return String(repr(rt, v));
}

struct JsonStyle {
    int indent = -1;  // < 0: one line
    std::string item_sep = ", ", key_sep = ": ";
    bool ensure_ascii = false;
};

inline void json_string(std::string& out, const std::string& s, bool ascii) {
    out += '"';
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: {
                const auto u = static_cast<unsigned char>(c);
                char buf[16];
                if (u < 0x20) {
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out += buf;
                } else if (u >= 0x80 && ascii) {
                    const Utf8Step step = utf8_step(s, i);
                    std::uint32_t cp = step.status == Utf8Step::ok ? std::uint32_t(step.cp) : 0xfffd;
                    i += step.length - 1;
                    if (cp >= 0x10000) {
                        cp -= 0x10000;
                        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
                    } else {
                        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
                    }
                    out += buf;
                } else {
                    out += c;
                }
            }
        }
    }
    out += '"';
}

// json.dumps as Hugging Face's tojson calls it (ensure_ascii off unless asked, keys in insertion order).
inline void to_json(Runtime& rt, std::string& out, const Value& v, const JsonStyle& st, int level = 0) {
    check_depth(level);
    rt.iterate();
    rt.charge(0, out.size());
    const auto newline = [&](int l) {
        if (st.indent < 0) return;
        out += '\n';
        out.append(std::size_t(st.indent) * std::size_t(l), ' ');
    };
    switch (v.kind()) {
        case Value::undefined:
        case Value::none: out += "null"; return;
        case Value::boolean: out += v.as_bool() ? "true" : "false"; return;
        case Value::integer: out += std::to_string(v.as_int()); return;
        case Value::floating: out += float_json(v.as_double()); return;
        case Value::string: json_string(out, v.as_string().str(), st.ensure_ascii); return;
        case Value::list: {
            const List& l = v.as_list();
            out += '[';
            for (std::size_t i = 0; i < l.size(); ++i) {
                if (i) out += st.item_sep;
                newline(level + 1);
                to_json(rt, out, l[i], st, level + 1);
            }
            if (!l.empty()) newline(level);
            out += ']';
            return;
        }
        case Value::dict: {
            const Dict& d = v.as_dict();
            out += '{';
            bool first = true;
            for (const auto& [k, e] : d.entries()) {
                if (!first) out += st.item_sep;
                first = false;
                newline(level + 1);
                json_string(out, k.is_string() ? k.as_string().str() : repr(rt, k), st.ensure_ascii);
                out += st.key_sep;
                to_json(rt, out, e, st, level + 1);
            }
            if (!d.empty()) newline(level);
            out += '}';
            return;
        }
        case Value::namespace_: {
            const Value as_dict = Value(Dict(v.as_namespace().attrs));
            to_json(rt, out, as_dict, st, level);
            return;
        }
        default: throw Error(std::string("a ") + v.type_name() + " is not JSON serializable");
    }
}

// The items a `for` or a filter walks: a list's elements, a dict's keys, a string's characters (code
// points); undefined is empty, as Jinja's Undefined iterates. Each item costs an iteration, walked or not
// (a loop may break at once, over a copy made whole).
inline List items_of(Runtime& rt, const Value& v) {
    if (v.is_list()) rt.iterate(std::int64_t(v.as_list().size()));
    if (v.is_dict()) rt.iterate(std::int64_t(v.as_dict().size()));
    if (v.is_string()) rt.iterate(std::int64_t(v.as_string().size()));
    switch (v.kind()) {
        case Value::undefined: return {};
        case Value::list: return v.as_list();
        case Value::dict: {
            List keys;
            keys.reserve(v.as_dict().size());
            for (const auto& [k, e] : v.as_dict().entries()) keys.push_back(k);
            return keys;
        }
        case Value::string: {
            const String& s = v.as_string();
            List chars;
            const std::string& t = s.str();
            for (std::size_t i = 0; i < t.size();) {
                const std::size_t n = utf8_step(t, i).length;
                chars.push_back(s.derive(t.substr(i, n)));
                i += n;
            }
            return chars;
        }
        default: throw Error(std::string("a ") + v.type_name() + " is not iterable");
    }
}

}  // namespace forge::chat::jinja
