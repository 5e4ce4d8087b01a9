#pragma once
// Jinja's filters and tests, the Python methods of strings, lists and dicts that chat templates call,
// and the globals Hugging Face adds (raise_exception, strftime_now) beside Jinja's own (range,
// namespace, dict). Each takes named parameters, bound from positional and keyword arguments as Python
// binds them; an unknown or surplus argument is an error naming the builtin.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/jinja/runtime.hpp"

namespace forge::chat::jinja {

namespace builtin {

// Arguments bound to parameter names, in the order of `names`; a missing one is undefined.
inline std::vector<Value> bind(std::string_view what, const Args& a, std::initializer_list<std::string_view> names) {
    std::vector<Value> out(names.size());
    if (a.positional.size() > names.size())
        throw Error(std::string(what) + " takes at most " + std::to_string(names.size()) + " arguments, got " + std::to_string(a.positional.size()));
    for (std::size_t i = 0; i < a.positional.size(); ++i) out[i] = a.positional[i];
    for (const auto& [k, v] : a.keyword) {
        const auto it = std::find(names.begin(), names.end(), k);
        if (it == names.end()) throw Error(std::string(what) + " has no argument '" + k + "'");
        out[std::size_t(it - names.begin())] = v;
    }
    return out;
}

inline const String& need_string(std::string_view what, const Value& v) {
    if (!v.is_string()) throw Error(std::string(what) + " needs a string, got " + v.type_name());
    return v.as_string();
}

inline std::int64_t need_int(std::string_view what, const Value& v) {
    if (!v.is(Value::integer) && !v.is(Value::boolean)) throw Error(std::string(what) + " needs an integer, got " + v.type_name());
    return v.as_int();
}

inline const List& need_list(std::string_view what, const Value& v) {
    if (!v.is_list()) throw Error(std::string(what) + " needs a list, got " + v.type_name());
    return v.as_list();
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.strip family: `chars` (a string) or whitespace.
inline String strip(Runtime& rt, const Value& self, const Value& chars, bool left, bool right) {
    const String& s = need_string("strip", self);
    const std::string& t = s.str();
    const std::string set = chars.is_string() ? chars.as_string().str() : std::string(" \t\n\r\f\v");
    const auto drop = [&](char c) { return chars.is_string() ? set.find(c) != std::string::npos : is_space(c); };
    std::size_t b = 0, e = t.size();
    if (left)
        while (b < e && drop(t[b])) ++b;
    if (right)
        while (e > b && drop(t[e - 1])) --e;
    rt.charge(t.size());
    return s.derive(t.substr(b, e - b));
}

inline String map_chars(Runtime& rt, const String& s, int (*f)(int)) {
    std::string t = s.str();
    rt.charge(t.size());
    for (char& c : t) c = char(f(static_cast<unsigned char>(c)));
    return s.derive(std::move(t));
}

// Python's str.title(): words (runs of letters) start upper case, the rest lower.
inline String title(Runtime& rt, const String& s) {
    std::string t = s.str();
    rt.charge(t.size());
    bool in_word = false;
    for (char& c : t) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c));
        if (alpha) c = char(in_word ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
        in_word = alpha;
    }
    return s.derive(std::move(t));
}

inline String capitalize(Runtime& rt, const String& s) {
    std::string t = s.str();
    rt.charge(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = char(i ? std::tolower(static_cast<unsigned char>(t[i])) : std::toupper(static_cast<unsigned char>(t[i])));
    return s.derive(std::move(t));
}

inline String replace(Runtime& rt, const String& s, const Value& old_v, const Value& new_v, const Value& count_v) {
    const std::string& from = need_string("replace", old_v).str();
    const String& to = need_string("replace", new_v);
    std::int64_t count = count_v.is_undefined() || count_v.is_none() ? -1 : need_int("replace", count_v);
    const std::string& t = s.str();
    std::string out;
    std::size_t pos = 0;
    if (from.empty()) {  // Python inserts `to` around every character
        for (std::size_t i = 0; i <= t.size() && count != 0; ++i, --count) {
            rt.charge(to.size(), out.size() + to.size() + t.size());
            out += to.str();
            if (i < t.size()) out += t[i];
            pos = i + 1;
        }
    } else {
        for (std::size_t at = t.find(from); at != std::string::npos && count != 0; at = t.find(from, pos), --count) {
            rt.charge(at - pos + to.size(), out.size() + at - pos + to.size());
            out.append(t, pos, at - pos);
            out += to.str();
            pos = at + from.size();
        }
    }
    if (pos < t.size()) out.append(t, pos);
    rt.charge(t.size(), out.size());
    return s.from_context() || to.from_context() ? String::from_context(std::move(out)) : String(std::move(out));
}

// Python's str.split / rsplit: on `sep`, or on runs of whitespace when none is given.
inline List split(Runtime& rt, const String& s, const Value& sep_v, const Value& max_v, bool from_right) {
    const std::string& t = s.str();
    rt.charge(t.size());
    std::int64_t max = max_v.is_undefined() ? -1 : need_int("split", max_v);
    std::vector<std::string> parts;
    if (sep_v.is_undefined() || sep_v.is_none()) {
        std::vector<std::pair<std::size_t, std::size_t>> words;
        for (std::size_t i = 0; i < t.size();) {
            while (i < t.size() && is_space(t[i])) ++i;
            if (i == t.size()) break;
            std::size_t j = i;
            while (j < t.size() && !is_space(t[j])) ++j;
            words.emplace_back(i, j);
            i = j;
        }
        if (max >= 0 && std::int64_t(words.size()) > max + 1) {
            if (!from_right) {
                std::size_t b = words[std::size_t(max)].first, e = t.size();
                while (e > b && is_space(t[e - 1])) --e;
                words.resize(std::size_t(max));
                for (const auto& [x, y] : words) parts.push_back(t.substr(x, y - x));
                parts.push_back(t.substr(b, e - b));
            } else {
                const std::size_t first = words.size() - std::size_t(max);
                std::size_t b = 0, e = words[first - 1].second;
                while (b < e && is_space(t[b])) ++b;
                parts.push_back(t.substr(b, e - b));
                for (std::size_t i = first; i < words.size(); ++i) parts.push_back(t.substr(words[i].first, words[i].second - words[i].first));
            }
        } else {
            for (const auto& [x, y] : words) parts.push_back(t.substr(x, y - x));
        }
    } else {
        const std::string& sep = need_string("split", sep_v).str();
        if (sep.empty()) throw Error("split: empty separator");
        if (!from_right) {
            std::size_t pos = 0;
            for (std::size_t at; max != 0 && (at = t.find(sep, pos)) != std::string::npos; --max) {
                parts.push_back(t.substr(pos, at - pos));
                pos = at + sep.size();
            }
            parts.push_back(t.substr(pos));
        } else {
            std::size_t end = t.size();
            for (; max != 0 && end >= sep.size(); --max) {
                const std::size_t at = t.rfind(sep, end - sep.size());
                if (at == std::string::npos) break;
                parts.push_back(t.substr(at + sep.size(), end - at - sep.size()));
                end = at;
            }
            parts.push_back(t.substr(0, end));
            std::reverse(parts.begin(), parts.end());
        }
    }
    rt.iterate(std::int64_t(parts.size()));
    List out;
    for (auto& p : parts) out.push_back(s.derive(std::move(p)));
    return out;
}

// Python's str.format with `{}`, `{0}` and `{name}` fields (no format specs); `{{`/`}}` are braces. The
// result is the template's pieces and the arguments' strings, each keeping its origin.
inline String format(Runtime& rt, const String& fmt, const Args& a) {
    const std::string& f = fmt.str();
    String out;
    std::size_t next = 0, lit = 0;
    const auto literal = [&](std::size_t end) {
        if (end > lit) out += fmt.derive(f.substr(lit, end - lit));
    };
    for (std::size_t i = 0; i < f.size(); ++i) {
        if ((f[i] == '{' || f[i] == '}') && i + 1 < f.size() && f[i + 1] == f[i]) {
            literal(i + 1);
            lit = ++i + 1;
            continue;
        }
        if (f[i] == '}') throw Error("format: single '}' in the format string");
        if (f[i] != '{') continue;
        const std::size_t close = f.find('}', i);
        if (close == std::string::npos) throw Error("format: '{' not closed");
        literal(i);
        const std::string field = f.substr(i + 1, close - i - 1);
        const Value* v = nullptr;
        if (field.empty()) {
            if (next >= a.positional.size()) throw Error("format: too few arguments");
            v = &a.positional[next++];
        } else if (std::all_of(field.begin(), field.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
            const std::size_t n = std::stoul(field);
            if (n >= a.positional.size()) throw Error("format: no argument " + field);
            v = &a.positional[n];
        } else {
            for (const auto& [k, kv] : a.keyword)
                if (k == field) v = &kv;
            if (!v) throw Error("format: no argument '" + field + "'");
        }
        const String s = to_str(rt, *v);
        rt.charge(s.size(), out.size() + s.size());
        out += s;
        lit = i = close;
        ++lit;
    }
    literal(f.size());
    return out;
}

inline String join(Runtime& rt, const List& items, const String& sep) {
    String out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        rt.iterate();
        const String s = to_str(rt, items[i]);
        rt.charge(s.size() + sep.size(), out.size() + s.size() + sep.size());
        if (i) out += sep;
        out += s;
    }
    return out;
}

// An item's attribute for filters' attribute=: dotted names, with integer parts indexing lists.
inline Value attribute(const Value& v, const std::string& path) {
    Value cur = v;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t dot = path.find('.', pos);
        const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
        if (cur.is_dict()) {
            const Value* f = cur.as_dict().find(part);
            if (!f && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) f = cur.as_dict().find(Value(std::int64_t(std::stoll(part))));
            cur = f ? *f : Value(Undefined{part});
        } else if (cur.is_list() && !part.empty() && part.size() < 18 && std::all_of(part.begin(), part.end(), ::isdigit)) {
            const auto i = std::size_t(std::stoll(part));
            cur = i < cur.as_list().size() ? cur.as_list()[i] : Value(Undefined{part});
        } else if (cur.is(Value::namespace_)) {
            const Value* f = cur.as_namespace().attrs.find(part);
            cur = f ? *f : Value(Undefined{part});
        } else {
            return Undefined{part};
        }
        if (dot == std::string::npos) return cur;
        pos = dot + 1;
    }
}

// Sorting key comparison; strings compare case-insensitively unless asked.
inline int sort_compare(Runtime& rt, const Value& a, const Value& b, bool case_sensitive) {
    if (!case_sensitive && a.is_string() && b.is_string()) {
        std::string x = a.as_string().str(), y = b.as_string().str();
        for (char& c : x) c = char(std::tolower(static_cast<unsigned char>(c)));
        for (char& c : y) c = char(std::tolower(static_cast<unsigned char>(c)));
        return x < y ? -1 : x > y;
    }
    return compare(rt, a, b);
}

inline String html_escape(Runtime& rt, const String& s) {
    std::string out;
    for (const char c : s.str()) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    rt.charge(out.size(), out.size());
    return s.derive(std::move(out));
}

inline String indent(Runtime& rt, const String& s, const Value& width_v, const Value& first_v, const Value& blank_v) {
    std::string pad = width_v.is_string() ? width_v.as_string().str() : std::string(std::size_t(std::clamp<std::int64_t>(width_v.is_undefined() ? 4 : need_int("indent", width_v), 0, 1024)), ' ');
    const bool first = truthy(first_v), blank = truthy(blank_v);
    const std::string& t = s.str();
    std::string out;
    std::size_t pos = 0;
    for (bool first_line = true;; first_line = false) {
        const std::size_t nl = t.find('\n', pos);
        const std::string line = t.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (first_line ? first : blank || !line.empty()) out += pad;
        out += line;
        rt.charge(line.size() + pad.size(), out.size());
        if (nl == std::string::npos) break;
        out += '\n';
        pos = nl + 1;
    }
    return s.derive(std::move(out));
}

// int() as Jinja's filter: numbers truncate, strings parse (as an integer or a float), else `fallback`.
inline Value to_int(const Value& v, const Value& fallback) {
    const Value def = fallback.is_undefined() ? Value(0) : fallback;
    if (v.is(Value::integer) || v.is(Value::boolean)) return v.as_int();
    if (v.is(Value::floating)) {
        const double d = v.as_double();
        return std::isfinite(d) && std::fabs(d) < 9e18 ? Value(std::int64_t(d)) : def;
    }
    if (!v.is_string()) return def;
    std::string t = v.as_string().str();
    t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(t.c_str(), &end, 10);
    if (!t.empty() && end && *end == '\0' && errno == 0) return std::int64_t(i);
    const double d = std::strtod(t.c_str(), &end);
    if (!t.empty() && end && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9e18) return std::int64_t(d);
    return def;
}

inline Value to_float(const Value& v, const Value& fallback) {
    const Value def = fallback.is_undefined() ? Value(0.0) : fallback;
    if (v.is_number()) return v.as_double();
    if (!v.is_string()) return def;
    const std::string& t = v.as_string().str();
    char* end = nullptr;
    const double d = std::strtod(t.c_str(), &end);
    return !t.empty() && end && *end == '\0' ? Value(d) : def;
}

inline Value length(const Value& v) {
    switch (v.kind()) {
        case Value::undefined: return 0;
        case Value::string: {
            std::int64_t n = 0;
            const std::string& t = v.as_string().str();
            for (std::size_t i = 0; i < t.size(); i += utf8_step(t, i).length) ++n;
            return n;
        }
        case Value::list: return std::int64_t(v.as_list().size());
        case Value::dict: return std::int64_t(v.as_dict().size());
        default: throw Error(std::string("a ") + v.type_name() + " has no length");
    }
}

// The parsed value's strings count as from the context even when the text was the template's: the
// safe side, and no template writes markers through JSON.
inline Value from_json_text(const String& s) { return from_json(json::parse(s.str())); }

}  // namespace builtin

// `v is name(args)`.
inline bool test(Runtime& rt, std::string_view name, const Value& v, const Args& a) {
    const auto arg = [&](std::string_view param) { return builtin::bind(std::string("test '") + std::string(name) + "'", a, {param})[0]; };
    const auto none_args = [&] {
        if (!a.positional.empty() || !a.keyword.empty()) throw Error("test '" + std::string(name) + "' takes no arguments");
    };
    if (name == "defined") return none_args(), !v.is_undefined();
    if (name == "undefined") return none_args(), v.is_undefined();
    if (name == "none") return none_args(), v.is_none();
    if (name == "boolean") return none_args(), v.is(Value::boolean);
    if (name == "true") return none_args(), v.is(Value::boolean) && v.as_bool();
    if (name == "false") return none_args(), v.is(Value::boolean) && !v.as_bool();
    if (name == "integer") return none_args(), v.is(Value::integer);
    if (name == "float") return none_args(), v.is(Value::floating);
    if (name == "number") return none_args(), v.is_number();
    if (name == "string") return none_args(), v.is_string();
    if (name == "mapping") return none_args(), v.is_dict();
    if (name == "iterable") return none_args(), v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
    if (name == "sequence") return none_args(), v.is_string() || v.is_list() || v.is_dict();
    if (name == "callable") return none_args(), v.is(Value::callable);
    if (name == "lower" || name == "upper") {
        none_args();
        if (!v.is_string()) return false;
        const std::string& t = v.as_string().str();
        return std::none_of(t.begin(), t.end(), [&](char c) { return name == "lower" ? std::isupper(static_cast<unsigned char>(c)) : std::islower(static_cast<unsigned char>(c)); });
    }
    if (name == "odd" || name == "even") {
        none_args();
        const std::int64_t i = builtin::need_int("test '" + std::string(name) + "'", v);
        return (i % 2 != 0) == (name == "odd");
    }
    if (name == "divisibleby") {
        const std::int64_t d = builtin::need_int("test 'divisibleby'", arg("num"));
        if (d == 0) throw Error("test 'divisibleby': division by zero");
        return builtin::need_int("test 'divisibleby'", v) % d == 0;
    }
    if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return equals(rt, v, arg("other"));
    if (name == "ne" || name == "!=") return !equals(rt, v, arg("other"));
    if (name == "lt" || name == "<" || name == "lessthan") return compare(rt, v, arg("other")) < 0;
    if (name == "le" || name == "<=") return compare(rt, v, arg("other")) <= 0;
    if (name == "gt" || name == ">" || name == "greaterthan") return compare(rt, v, arg("other")) > 0;
    if (name == "ge" || name == ">=") return compare(rt, v, arg("other")) >= 0;
    if (name == "in") {
        const Value seq = arg("seq");
        if (seq.is_string()) return v.is_string() && seq.as_string().str().find(v.as_string().str()) != std::string::npos;
        if (seq.is_dict()) return seq.as_dict().find(v) != nullptr;
        for (const auto& e : items_of(rt, seq)) {
            rt.iterate();
            if (equals(rt, e, v)) return true;
        }
        return false;
    }
    throw Error("unknown test '" + std::string(name) + "'");
}

inline Value filter(Runtime& rt, std::string_view name, const Value& v, const Args& a);

// select/reject and their attribute forms: items that pass test `args[first]` (truthiness without one).
inline Value select(Runtime& rt, const Value& v, const Args& a, bool attr, bool keep) {
    const char* what = attr ? (keep ? "selectattr" : "rejectattr") : (keep ? "select" : "reject");
    if (!a.keyword.empty()) throw Error(std::string(what) + " takes no keyword arguments");
    std::size_t at = 0;
    std::string path;
    if (attr) {
        if (a.positional.empty()) throw Error(std::string(what) + " needs an attribute");
        path = builtin::need_string(what, a.positional[at++]).str();
    }
    std::string test_name;
    if (at < a.positional.size()) test_name = builtin::need_string(what, a.positional[at++]).str();
    Args test_args;
    test_args.positional.assign(a.positional.begin() + std::ptrdiff_t(at), a.positional.end());
    List out;
    for (const auto& item : items_of(rt, v)) {
        rt.iterate();
        const Value x = attr ? builtin::attribute(item, path) : item;
        const bool pass = test_name.empty() ? truthy(x) : test(rt, test_name, x, test_args);
        if (pass == keep) out.push_back(item);
    }
    return out;
}

inline Value map(Runtime& rt, const Value& v, const Args& a) {
    List out;
    std::string attr, filter_name;
    Value fallback;
    for (const auto& [k, kv] : a.keyword) {
        if (k == "attribute") attr = builtin::need_string("map", kv).str();
        else if (k == "default") fallback = kv;
        else if (!filter_name.empty() || a.positional.empty()) throw Error("map has no argument '" + k + "'");
    }
    Args fargs;
    if (attr.empty()) {
        if (a.positional.empty()) throw Error("map needs a filter name or attribute=");
        filter_name = builtin::need_string("map", a.positional[0]).str();
        fargs.positional.assign(a.positional.begin() + 1, a.positional.end());
        for (const auto& kw : a.keyword) fargs.keyword.push_back(kw);
    }
    for (const auto& item : items_of(rt, v)) {
        rt.iterate();
        if (attr.empty()) {
            out.push_back(filter(rt, filter_name, item, fargs));
        } else {
            Value x = builtin::attribute(item, attr);
            out.push_back(x.is_undefined() && !fallback.is_undefined() ? fallback : x);
        }
    }
    return out;
}

inline Value sorted(Runtime& rt, const Value& v, const std::vector<Value>& p) {  // reverse, case_sensitive, attribute
    List items = items_of(rt, v);
    rt.iterate(std::int64_t(items.size()));
    const bool reverse = truthy(p[0]), cs = truthy(p[1]);
    const std::string attr = p[2].is_string() ? p[2].as_string().str() : "";
    const auto key = [&](const Value& x) { return attr.empty() ? x : builtin::attribute(x, attr); };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        const int c = builtin::sort_compare(rt, key(x), key(y), cs);
        return reverse ? c > 0 : c < 0;
    });
    return items;
}

inline Value min_max(Runtime& rt, const Value& v, const std::vector<Value>& p, bool max) {  // case_sensitive, attribute
    const List items = items_of(rt, v);
    rt.iterate(std::int64_t(items.size()));
    if (items.empty()) return Undefined{"min/max of nothing"};
    const std::string attr = p[1].is_string() ? p[1].as_string().str() : "";
    const auto key = [&](const Value& x) { return attr.empty() ? x : builtin::attribute(x, attr); };
    const Value* best = &items[0];
    for (const auto& x : items) {
        const int c = builtin::sort_compare(rt, key(x), key(*best), truthy(p[0]));
        if (max ? c > 0 : c < 0) best = &x;
    }
    return *best;
}

inline Value unique(Runtime& rt, const Value& v, const std::vector<Value>& p) {  // case_sensitive, attribute
    const std::string attr = p[1].is_string() ? p[1].as_string().str() : "";
    List out, keys;
    for (const auto& x : items_of(rt, v)) {
        rt.iterate();
        Value k = attr.empty() ? x : builtin::attribute(x, attr);
        if (!truthy(p[0]) && k.is_string()) k = builtin::map_chars(rt, k.as_string(), ::tolower);
        bool seen = false;
        for (const auto& s : keys) {
            rt.iterate();
            if (equals(rt, s, k)) seen = true;
        }
        if (!seen) keys.push_back(k), out.push_back(x);
    }
    return out;
}

// A copy with every dict's keys in order, for tojson(sort_keys=true).
inline Value sort_keys(Runtime& rt, const Value& v, int depth) {
    check_depth(depth);
    if (v.is_list()) {
        List out;
        for (const auto& e : v.as_list()) out.push_back(sort_keys(rt, e, depth + 1));
        return out;
    }
    if (!v.is_dict()) return v;
    std::vector<Dict::Entry> entries = v.as_dict().entries();
    rt.iterate(std::int64_t(entries.size()));
    std::stable_sort(entries.begin(), entries.end(), [&](const Dict::Entry& x, const Dict::Entry& y) { return compare(rt, x.first, y.first) < 0; });
    Dict out;
    for (auto& [k, e] : entries) out.set(k, sort_keys(rt, e, depth + 1));
    return out;
}

inline Value tojson(Runtime& rt, const Value& v, const std::vector<Value>& p) {  // ensure_ascii, indent, separators, sort_keys
    JsonStyle st;
    st.ensure_ascii = truthy(p[0]);
    if (p[1].is(Value::integer)) st.indent = int(std::clamp<std::int64_t>(p[1].as_int(), 0, 64));
    else if (!p[1].is_undefined() && !p[1].is_none()) throw Error("tojson: indent must be an integer");
    if (st.indent >= 0) st.item_sep = ",";
    if (p[2].is_list()) {
        const List& seps = p[2].as_list();
        if (seps.size() != 2) throw Error("tojson: separators must be a pair");
        st.item_sep = builtin::need_string("tojson", seps[0]).str();
        st.key_sep = builtin::need_string("tojson", seps[1]).str();
    }
    Value x = v;
    if (truthy(p[3])) x = sort_keys(rt, v, 0);
    std::string out;
    to_json(rt, out, x, st);
    rt.charge(out.size(), out.size());
    return holds_context(rt, v) ? String::from_context(std::move(out)) : String(std::move(out));
}

inline Value filter(Runtime& rt, std::string_view name, const Value& v, const Args& a) {
    const std::string what = "filter '" + std::string(name) + "'";
    const auto params = [&](std::initializer_list<std::string_view> names) { return builtin::bind(what, a, names); };
    const auto str = [&] { return to_str(rt, v); };
    // Where Jinja raises, the list filters give [] for none, as llama.cpp's engine has it (functionary
    // v3.1 filters `tools` after setting it to none).
    if (v.is_none() && (name == "items" || name == "map" || name == "select" || name == "reject" || name == "selectattr" ||
                        name == "rejectattr" || name == "unique"))
        return List{};
    if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
        params({});
        return name == "safe" ? v : Value(builtin::html_escape(rt, str()));
    }
    if (name == "tojson") return tojson(rt, v, params({"ensure_ascii", "indent", "separators", "sort_keys"}));
    if (name == "string") return params({}), Value(str());
    if (name == "trim") return builtin::strip(rt, Value(str()), params({"chars"})[0], true, true);
    if (name == "upper" || name == "lower") return params({}), Value(builtin::map_chars(rt, str(), name == "upper" ? ::toupper : ::tolower));
    if (name == "title") return params({}), Value(builtin::title(rt, str()));
    if (name == "capitalize") return params({}), Value(builtin::capitalize(rt, str()));
    if (name == "replace") {
        const auto p = params({"old", "new", "count"});
        return builtin::replace(rt, str(), p[0], p[1], p[2]);
    }
    if (name == "length" || name == "count") return params({}), builtin::length(v);
    if (name == "wordcount") return params({}), Value(std::int64_t(builtin::split(rt, str(), Undefined{}, Undefined{}, false).size()));
    if (name == "first" || name == "last") {
        params({});
        const List items = items_of(rt, v);
        if (items.empty()) return Undefined{"first/last of nothing"};
        return name == "first" ? items.front() : items.back();
    }
    if (name == "join") {
        const auto p = params({"d", "attribute"});
        List items = items_of(rt, v);
        if (p[1].is_string())
            for (auto& x : items) x = builtin::attribute(x, p[1].as_string().str());
        return builtin::join(rt, items, p[0].is_undefined() ? String() : to_str(rt, p[0]));
    }
    if (name == "default" || name == "d") {
        const auto p = params({"default_value", "boolean"});
        const bool use = truthy(p[1]) ? !truthy(v) : v.is_undefined();
        return use ? (p[0].is_undefined() ? Value(String()) : p[0]) : v;
    }
    if (name == "list") return params({}), Value(items_of(rt, v));
    if (name == "items") {
        params({});
        if (v.is_undefined()) return List{};
        if (!v.is_dict()) throw Error(what + " needs a mapping, got " + v.type_name());
        List out;
        for (const auto& [k, e] : v.as_dict().entries()) out.push_back(List{k, e});
        return out;
    }
    if (name == "dictsort") {
        const auto p = params({"case_sensitive", "by", "reverse"});
        if (!v.is_dict()) throw Error(what + " needs a mapping, got " + v.type_name());
        const bool by_value = p[1].is_string() && p[1].as_string().str() == "value";
        std::vector<Dict::Entry> entries = v.as_dict().entries();
        rt.iterate(std::int64_t(entries.size()));
        std::stable_sort(entries.begin(), entries.end(), [&](const Dict::Entry& x, const Dict::Entry& y) {
            const int c = builtin::sort_compare(rt, by_value ? x.second : x.first, by_value ? y.second : y.first, truthy(p[0]));
            return truthy(p[2]) ? c > 0 : c < 0;
        });
        List out;
        for (auto& [k, e] : entries) out.push_back(List{k, e});
        return out;
    }
    if (name == "sort") return sorted(rt, v, params({"reverse", "case_sensitive", "attribute"}));
    if (name == "unique") return unique(rt, v, params({"case_sensitive", "attribute"}));
    if (name == "min" || name == "max") return min_max(rt, v, params({"case_sensitive", "attribute"}), name == "max");
    if (name == "reverse") {
        params({});
        if (v.is_string()) {
            std::string t = v.as_string().str();
            std::reverse(t.begin(), t.end());
            return v.as_string().derive(std::move(t));
        }
        List items = items_of(rt, v);
        std::reverse(items.begin(), items.end());
        return items;
    }
    if (name == "sum") {
        const auto p = params({"attribute", "start"});
        Value total = p[1].is_undefined() ? Value(0) : p[1];
        for (const auto& x : items_of(rt, v)) {
            rt.iterate();
            const Value y = p[0].is_string() ? builtin::attribute(x, p[0].as_string().str()) : x;
            if (!y.is_number() || !total.is_number()) throw Error(what + " needs numbers");
            if (total.is(Value::floating) || y.is(Value::floating)) total = total.as_double() + y.as_double();
            else total = total.as_int() + y.as_int();
        }
        return total;
    }
    if (name == "batch") {
        const auto p = params({"linecount", "fill_with"});
        const std::int64_t n = builtin::need_int(what, p[0]);
        if (n <= 0) throw Error(what + " needs a positive count");
        List out, cur;
        for (const auto& x : items_of(rt, v)) {
            rt.iterate();
            cur.push_back(x);
            if (std::int64_t(cur.size()) == n) out.push_back(std::move(cur)), cur = {};
        }
        if (!cur.empty()) {
            if (!p[1].is_undefined())
                while (std::int64_t(cur.size()) < n) cur.push_back(p[1]);
            out.push_back(std::move(cur));
        }
        return out;
    }
    if (name == "map") return map(rt, v, a);
    if (name == "select" || name == "reject") return select(rt, v, a, false, name == "select");
    if (name == "selectattr" || name == "rejectattr") return select(rt, v, a, true, name == "selectattr");
    if (name == "attr") return builtin::attribute(v, builtin::need_string(what, params({"name"})[0]).str());
    if (name == "int") {
        const auto p = params({"default", "base"});
        return builtin::to_int(v, p[0]);
    }
    if (name == "float") return builtin::to_float(v, params({"default"})[0]);
    if (name == "abs") {
        params({});
        if (v.is(Value::floating)) return std::fabs(v.as_double());
        const std::int64_t i = builtin::need_int(what, v);
        if (i == INT64_MIN) throw Error(what + ": integer overflow");
        return i < 0 ? -i : i;
    }
    if (name == "round") {
        const auto p = params({"precision", "method"});
        const double scale = std::pow(10.0, double(p[0].is_undefined() ? 0 : std::clamp<std::int64_t>(builtin::need_int(what, p[0]), -20, 20)));
        const std::string method = p[1].is_string() ? p[1].as_string().str() : "common";
        const double x = v.is_number() ? v.as_double() * scale : throw Error(what + " needs a number");
        const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::round(x);
        return r / scale;
    }
    if (name == "indent") {
        const auto p = params({"width", "first", "blank"});
        return builtin::indent(rt, str(), p[0], p[1], p[2]);
    }
    if (name == "center") {
        const std::int64_t w = std::clamp<std::int64_t>(builtin::need_int(what, params({"width"})[0]), 0, 4096);
        const String s = str();
        if (std::int64_t(s.size()) >= w) return s;
        const std::size_t total = std::size_t(w) - s.size(), left = total / 2;
        return s.derive(std::string(left, ' ') + s.str() + std::string(total - left, ' '));
    }
    if (name == "from_json") return params({}), builtin::from_json_text(builtin::need_string(what, v));
    throw Error("unknown filter '" + std::string(name) + "'");
}

// `self.name(args)` for strings, lists and dicts; `has_method` says whether there is one.
inline bool has_method(const Value& self, std::string_view name) {
    static constexpr std::string_view string_methods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                                          "upper", "lower", "title", "capitalize", "replace", "find", "rfind",
                                                          "count", "format", "join", "splitlines", "isdigit", "isalpha",
                                                          "isalnum", "isspace", "isupper", "islower"};
    static constexpr std::string_view list_methods[] = {"append", "pop", "insert", "extend", "index", "count"};
    static constexpr std::string_view dict_methods[] = {"items", "keys", "values", "get", "pop", "update", "setdefault", "copy"};
    const auto in = [&](const auto& names) { return std::find(std::begin(names), std::end(names), name) != std::end(names); };
    return self.is_string() ? in(string_methods) : self.is_list() ? in(list_methods) : self.is_dict() ? in(dict_methods) : false;
}

inline Value string_method(Runtime& rt, const String& s, std::string_view name, const Args& a) {
    const std::string what = "str." + std::string(name);
    const auto params = [&](std::initializer_list<std::string_view> names) { return builtin::bind(what, a, names); };
    const std::string& t = s.str();
    if (name == "strip" || name == "lstrip" || name == "rstrip")
        return builtin::strip(rt, Value(s), params({"chars"})[0], name != "rstrip", name != "lstrip");
    if (name == "split" || name == "rsplit") {
        const auto p = params({"sep", "maxsplit"});
        return builtin::split(rt, s, p[0], p[1], name == "rsplit");
    }
    if (name == "startswith" || name == "endswith") {
        const Value prefix = params({"prefix"})[0];
        rt.charge(t.size());
        const auto match = [&](const Value& p) {
            const std::string& x = builtin::need_string(what, p).str();
            return name == "startswith" ? t.compare(0, x.size(), x) == 0 && t.size() >= x.size()
                                        : t.size() >= x.size() && t.compare(t.size() - x.size(), x.size(), x) == 0;
        };
        if (prefix.is_list()) return std::any_of(prefix.as_list().begin(), prefix.as_list().end(), match);
        return match(prefix);
    }
    if (name == "upper" || name == "lower") return params({}), Value(builtin::map_chars(rt, s, name == "upper" ? ::toupper : ::tolower));
    if (name == "title") return params({}), Value(builtin::title(rt, s));
    if (name == "capitalize") return params({}), Value(builtin::capitalize(rt, s));
    if (name == "replace") {
        const auto p = params({"old", "new", "count"});
        return builtin::replace(rt, s, p[0], p[1], p[2]);
    }
    if (name == "find" || name == "rfind" || name == "count") {
        const std::string x = builtin::need_string(what, params({"sub"})[0]).str();
        rt.charge(t.size());
        if (name == "count") {
            if (x.empty()) return std::int64_t(t.size() + 1);
            std::int64_t n = 0;
            for (std::size_t at = t.find(x); at != std::string::npos; at = t.find(x, at + x.size())) ++n;
            return n;
        }
        const std::size_t at = name == "find" ? t.find(x) : t.rfind(x);
        return at == std::string::npos ? std::int64_t(-1) : std::int64_t(at);
    }
    if (name == "format") return builtin::format(rt, s, a);
    if (name == "join") return builtin::join(rt, items_of(rt, params({"iterable"})[0]), s);
    if (name == "splitlines") {
        params({});
        List out;
        std::size_t pos = 0;
        while (pos < t.size()) {
            rt.iterate();
            const std::size_t nl = t.find('\n', pos);
            out.push_back(s.derive(t.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos)));
            if (nl == std::string::npos) break;
            pos = nl + 1;
        }
        return out;
    }
    params({});
    int (*pred)(int) = name == "isdigit" ? ::isdigit : name == "isalpha" ? ::isalpha : name == "isalnum" ? ::isalnum : name == "isspace" ? ::isspace : nullptr;
    if (pred) return !t.empty() && std::all_of(t.begin(), t.end(), [&](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
    const bool upper = name == "isupper";
    bool cased = false;
    for (const char c : t) {
        if (upper ? std::islower(static_cast<unsigned char>(c)) : std::isupper(static_cast<unsigned char>(c))) return false;
        cased = cased || std::isalpha(static_cast<unsigned char>(c));
    }
    return cased;
}

inline Value list_method(Runtime& rt, List& l, std::string_view name, const Args& a) {
    const std::string what = "list." + std::string(name);
    const auto params = [&](std::initializer_list<std::string_view> names) { return builtin::bind(what, a, names); };
    const auto grow = [&](std::size_t n) {
        if (l.size() + n > std::size_t(kMaxLoopIterations)) throw Error("a list over kMaxLoopIterations (" + std::to_string(kMaxLoopIterations) + ") items");
        rt.iterate(std::int64_t(n));
    };
    const auto index_of = [&](const Value& i, std::size_t size) {
        std::int64_t n = builtin::need_int(what, i);
        if (n < 0) n += std::int64_t(size);
        return n;
    };
    if (name == "append") {
        grow(1);
        l.push_back(params({"item"})[0]);
        return None{};
    }
    if (name == "extend") {
        const List more = items_of(rt, params({"iterable"})[0]);
        grow(more.size());
        l.insert(l.end(), more.begin(), more.end());
        return None{};
    }
    if (name == "insert") {
        const auto p = params({"index", "item"});
        grow(1);
        const std::int64_t i = std::clamp<std::int64_t>(index_of(p[0], l.size()), 0, std::int64_t(l.size()));
        l.insert(l.begin() + std::ptrdiff_t(i), p[1]);
        return None{};
    }
    if (name == "pop") {
        const Value i = params({"index"})[0];
        if (l.empty()) throw Error("pop from an empty list");
        const std::int64_t n = i.is_undefined() ? std::int64_t(l.size()) - 1 : index_of(i, l.size());
        if (n < 0 || n >= std::int64_t(l.size())) throw Error("pop index out of range");
        Value out = l[std::size_t(n)];
        l.erase(l.begin() + std::ptrdiff_t(n));
        return out;
    }
    const Value x = params({"value"})[0];
    std::int64_t count = 0;
    for (std::size_t i = 0; i < l.size(); ++i) {
        rt.iterate();
        if (!equals(rt, l[i], x)) continue;
        if (name == "index") return std::int64_t(i);
        ++count;
    }
    if (name == "index") throw Error("list.index: value not in list");
    return count;
}

inline Value dict_method(Runtime& rt, Dict& d, std::string_view name, const Args& a) {
    const std::string what = "dict." + std::string(name);
    const auto params = [&](std::initializer_list<std::string_view> names) { return builtin::bind(what, a, names); };
    if (name == "items" || name == "keys" || name == "values") {
        params({});
        rt.iterate(std::int64_t(d.size()));
        List out;
        for (const auto& [k, v] : d.entries()) out.push_back(name == "items" ? Value(List{k, v}) : name == "keys" ? k : v);
        return out;
    }
    if (name == "get") {
        const auto p = params({"key", "default"});
        const Value* v = d.find(p[0]);
        return v ? *v : p[1].is_undefined() ? Value(None{}) : p[1];
    }
    if (name == "pop") {
        const auto p = params({"key", "default"});
        Value v = d.pop(p[0]);
        if (!v.is_undefined()) return v;
        if (p[1].is_undefined()) throw Error("dict.pop: no key " + repr(rt, p[0]));
        return p[1];
    }
    if (name == "setdefault") {
        const auto p = params({"key", "default"});
        if (const Value* v = d.find(p[0])) return *v;
        d.set(p[0], p[1].is_undefined() ? Value(None{}) : p[1]);
        return p[1].is_undefined() ? Value(None{}) : p[1];
    }
    if (name == "copy") return params({}), Value(Dict(d));
    // update(other, **kwargs)
    if (a.positional.size() > 1) throw Error(what + " takes at most 1 positional argument");
    if (!a.positional.empty()) {
        const Value& o = a.positional[0];
        if (!o.is_dict()) throw Error(what + " needs a mapping");
        rt.iterate(std::int64_t(o.as_dict().size()));
        const Dict copy = o.as_dict();
        for (const auto& [k, v] : copy.entries()) d.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) d.set(Value(k), v);
    return None{};
}

inline Value method(Runtime& rt, const Value& self, std::string_view name, const Args& a) {
    if (self.is_string()) return string_method(rt, self.as_string(), name, a);
    rt.mutating(self);
    if (self.is_list()) return list_method(rt, self.as_list(), name, a);
    return dict_method(rt, self.as_dict(), name, a);
}

}  // namespace forge::chat::jinja
