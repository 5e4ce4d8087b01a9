#pragma once
// JSON Schema -> grammar, for output that must parse as JSON and validate against a schema (OpenAI's
// response_format json_schema, and tool calls' arguments). The grammar accepts JSON as a model writes
// it: whitespace between tokens, but at most one space or one newline and 20 spaces/tabs in a row, so
// generation can't run on whitespace forever; object properties in the schema's order, the required
// ones first and mandatory, then the optional ones, each optional (llama.cpp's order); numbers of at
// most 16 integer and 16 fraction digits and a 2-digit exponent.
//
// Supported keywords:
//   type                  object, array, string, number, integer, boolean, null, or an array of these;
//                         without it, the type follows from the keywords present, else any JSON value
//   properties, required  required must name listed properties
//   additionalProperties  false, true, or a schema; when absent: none if `properties` is given, else any
//                         (llama.cpp's reading). Extra keys can't repeat a listed one when the listed
//                         names are printable ASCII without escapes, up to 128 bytes
//   items, prefixItems    items: a schema, false, or (older drafts) an array meaning prefixItems; with
//                         prefixItems and no items, no further items
//   minItems, maxItems, minLength, maxLength   (counts above 100000 mean no limit)
//   enum, const           values written compactly, as forge::json::dump writes them
//   anyOf, oneOf          oneOf is read as anyOf; neither may have sibling keywords but annotations
//   allOf                 one schema, or object schemas only (properties, required, additionalProperties):
//                         merged
//   $ref                  "#", "#/$defs/NAME", "#/definitions/NAME"; recursion allowed, a cycle that
//                         never ends is an error
//   format                date, time, date-time, uuid (string shapes); other formats are refused
//   pattern               the regular expression subset of regex.hpp; not together with format,
//                         minLength or maxLength
//   minimum               0 only (numbers without a minus sign)
//   ignored annotations   title, description, default, examples, $schema, $id, $comment, $defs, definitions
// Any other keyword (maximum, patternProperties, ...) is a forge::Error naming it and where it
// is: "json_schema: unsupported keyword 'patternProperties' at /properties/x".
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/grammar/grammar.hpp"
#include "forge/grammar/regex.hpp"
#include "forge/json/json.hpp"

namespace forge::grammar {

// Counts above this (maxLength, maxItems, ...) are read as "no limit"; a minimum above it is refused.
inline constexpr double kLargeCount = 100000;
// The most properties one object schema may list, and the deepest a schema may nest.
inline constexpr std::size_t kMaxProperties = 1000;
inline constexpr int kMaxSchemaDepth = 128;

// Grammar pieces for JSON in one Builder, shared by every schema compiled through it.
class JsonGrammar {
public:
    explicit JsonGrammar(Builder& b) : b_(b) {
        ws_ = b.optional(b.any({b.literal(" "), b.seq({b.literal("\n"), b.repeat(b.chars({{' ', ' '}, {'\t', '\t'}}), 0, 20)})}));
        const Expr hex = b.chars({{'0', '9'}, {'a', 'f'}, {'A', 'F'}});
        const auto hex_in = [&](std::vector<CharRange> r) { return b.chars(std::move(r)); };
        // \uXXXX that forge::json::parse takes: no lone surrogate.
        const Expr unicode = b.any({
            b.seq({hex_in({{'0', '9'}, {'a', 'c'}, {'A', 'C'}, {'e', 'f'}, {'E', 'F'}}), hex, hex, hex}),
            b.seq({hex_in({{'d', 'd'}, {'D', 'D'}}), hex_in({{'0', '7'}}), hex, hex}),
            b.seq({hex_in({{'d', 'd'}, {'D', 'D'}}), hex_in({{'8', '9'}, {'a', 'b'}, {'A', 'B'}}), hex, hex, b.literal("\\u"),
                   hex_in({{'d', 'd'}, {'D', 'D'}}), hex_in({{'c', 'f'}, {'C', 'F'}}), hex, hex}),
        });
        escape_ = b.seq({b.literal("\\"), b.any({b.chars({{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}}),
                                                 b.seq({b.literal("u"), unicode})})});
        char_ = b.any({b.chars({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}}, true), escape_});
        string_rest_ = b.seq({b.repeat(char_, 0, kUnbounded), b.literal("\"")});
        string_ = b.seq({b.literal("\""), string_rest_});
        const Expr digit = b.chars({{'0', '9'}});
        const Expr integral = b.any({b.literal("0"), b.seq({b.chars({{'1', '9'}}), b.repeat(digit, 0, 15)})});
        const Expr fraction = b.optional(b.seq({b.literal("."), b.repeat(digit, 1, 16)}));
        const Expr exponent = b.optional(b.seq({b.chars({{'e', 'e'}, {'E', 'E'}}), b.optional(b.chars({{'-', '-'}, {'+', '+'}})), b.repeat(digit, 1, 2)}));
        unsigned_integer_ = integral;
        integer_ = b.seq({b.optional(b.literal("-")), integral});
        unsigned_number_ = b.seq({integral, fraction, exponent});
        number_ = b.seq({integer_, fraction, exponent});
        boolean_ = b.any({b.literal("true"), b.literal("false")});
        null_ = b.literal("null");
        value_ = b.rule("value");
        const Expr kv = b.seq({string_, ws_, b.literal(":"), ws_, value_, ws_});
        object_ = b.seq({b.literal("{"), ws_, b.optional(b.seq({kv, b.repeat(b.seq({b.literal(","), ws_, kv}), 0, kUnbounded)})), b.literal("}")});
        const Expr item = b.seq({value_, ws_});
        array_ = b.seq({b.literal("["), ws_, b.optional(b.seq({item, b.repeat(b.seq({b.literal(","), ws_, item}), 0, kUnbounded)})), b.literal("]")});
        b.define(value_, b.any({object_, array_, string_, number_, boolean_, null_}));
    }

    Expr whitespace() const { return ws_; }
    Expr any_value() const { return value_; }
    Expr any_object() const { return object_; }
    // `value` with whitespace allowed before and after: a whole document as a model writes it.
    Expr document(Expr value) { return b_.seq({ws_, value, ws_}); }

    // The grammar of JSON values valid against `schema` (see the keywords above). A schema's $refs
    // resolve against that schema.
    Expr schema(const json::Value& schema) {
        root_ = &schema;
        refs_.clear();
        return visit(schema, "", 0);
    }

private:
    [[noreturn]] static void fail(const std::string& what, const std::string& path) {
        throw Error("json_schema: " + what + " at " + (path.empty() ? std::string("the root") : path));
    }
    static bool is_annotation(std::string_view k) {
        for (const std::string_view a : {"title", "description", "default", "examples", "$schema", "$id", "$comment", "$defs", "definitions"})
            if (k == a) return true;
        return false;
    }
    static bool is_keyword(std::string_view k) {
        for (const std::string_view a : {"type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
                                         "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "format",
                                         "pattern", "minimum"})
            if (k == a) return true;
        return is_annotation(k);
    }
    // JSON pointer escaping of one path segment.
    static std::string segment(std::string_view s) {
        std::string out = "/";
        for (const char c : s) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
        return out;
    }
    static std::string unescape_segment(std::string_view s) {
        std::string out;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '~' && i + 1 < s.size() && (s[i + 1] == '0' || s[i + 1] == '1')) {
                out += s[++i] == '0' ? '~' : '/';
            } else {
                out += s[i];
            }
        }
        return out;
    }

    // A count keyword's value: an integer >= 0; above kLargeCount, `unbounded`.
    static int count(const json::Value& v, std::string_view key, const std::string& path, int unbounded) {
        if (!v.is_number() || v.as_number() < 0 || v.as_number() != std::floor(v.as_number()))
            fail("'" + std::string(key) + "' must be a non-negative integer", path);
        return v.as_number() > kLargeCount ? unbounded : int(v.as_number());
    }

    Expr visit(const json::Value& s, const std::string& path, int depth) {
        if (depth > kMaxSchemaDepth) fail("schemas nest deeper than " + std::to_string(kMaxSchemaDepth), path);
        if (s.is_bool()) {
            if (!s.as_bool()) fail("the schema false matches nothing", path);
            return value_;
        }
        if (!s.is_object()) fail(std::string("a schema must be an object or a boolean, not ") + s.type_name(), path);
        std::size_t constraints = 0;
        for (const auto& [k, v] : s.as_object()) {
            if (!is_keyword(k)) fail("unsupported keyword '" + k + "'", path);
            if (!is_annotation(k)) ++constraints;
        }
        const auto alone = [&](std::string_view k) {
            if (constraints > 1) fail("'" + std::string(k) + "' together with other keywords is unsupported", path);
        };
        if (const json::Value* r = s.find("$ref")) {
            alone("$ref");
            return ref(*r, path, depth);
        }
        if (const json::Value* c = s.find("const")) return b_.literal(json::dump(*c));
        if (const json::Value* e = s.find("enum")) {
            if (!e->is_array()) fail("'enum' must be an array", path);
            std::vector<std::string> texts;
            for (const auto& v : e->as_array()) texts.push_back(json::dump(v));
            if (texts.empty()) fail("'enum' is empty: nothing matches", path);
            return b_.one_of_literals(std::move(texts));
        }
        for (const char* k : {"anyOf", "oneOf"})
            if (const json::Value* a = s.find(k)) {
                alone(k);
                if (!a->is_array() || a->as_array().empty()) fail("'" + std::string(k) + "' must be a non-empty array", path);
                std::vector<Expr> options;
                for (std::size_t i = 0; i < a->as_array().size(); ++i)
                    options.push_back(visit(a->as_array()[i], path + "/" + k + "/" + std::to_string(i), depth + 1));
                return b_.any(std::move(options));
            }
        if (const json::Value* a = s.find("allOf")) {
            alone("allOf");
            return all_of(*a, path, depth);
        }
        const json::Value* type = s.find("type");
        if (type && type->is_array()) {
            std::vector<Expr> options;
            for (const auto& t : type->as_array()) {
                if (!t.is_string()) fail("'type' must be a string or an array of strings", path);
                options.push_back(typed(s, t.as_string(), path, depth));
            }
            if (options.empty()) fail("'type' is an empty array: nothing matches", path);
            return b_.any(std::move(options));
        }
        if (type) {
            if (!type->is_string()) fail("'type' must be a string or an array of strings", path);
            return typed(s, type->as_string(), path, depth);
        }
        for (const char* k : {"properties", "required", "additionalProperties"})
            if (s.find(k)) return typed(s, "object", path, depth);
        for (const char* k : {"items", "prefixItems", "minItems", "maxItems"})
            if (s.find(k)) return typed(s, "array", path, depth);
        for (const char* k : {"minLength", "maxLength", "format", "pattern"})
            if (s.find(k)) return typed(s, "string", path, depth);
        if (s.find("minimum")) return typed(s, "number", path, depth);
        return value_;
    }

    Expr typed(const json::Value& s, const std::string& type, const std::string& path, int depth) {
        if (type == "object") return object(s, path, depth);
        if (type == "array") return array(s, path, depth);
        if (type == "string") return string(s, path);
        if (type == "boolean") return boolean_;
        if (type == "null") return null_;
        if (type == "number" || type == "integer") {
            bool non_negative = false;
            if (const json::Value* m = s.find("minimum")) {
                if (!m->is_number() || m->as_number() != 0) fail("unsupported 'minimum' (only 0 is supported)", path);
                non_negative = true;
            }
            if (type == "integer") return non_negative ? unsigned_integer_ : integer_;
            return non_negative ? unsigned_number_ : number_;
        }
        fail("unknown type '" + type + "'", path);
    }

    Expr ref(const json::Value& r, const std::string& path, int depth) {
        if (!r.is_string()) fail("'$ref' must be a string", path);
        const std::string& target = r.as_string();
        if (const auto it = refs_.find(target); it != refs_.end()) return it->second;
        const json::Value* schema = nullptr;
        std::string at;
        if (target == "#") {
            schema = root_;
        } else {
            for (const std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
                if (target.compare(0, prefix.size(), prefix) != 0) continue;
                const std::string name = unescape_segment(std::string_view(target).substr(prefix.size()));
                if (const json::Value* defs = root_->find(prefix.substr(2, prefix.size() - 3))) schema = defs->find(name);
                at = std::string(prefix.substr(1, prefix.size() - 2)) + segment(name);
            }
        }
        if (!schema) fail("'$ref' \"" + target + "\" does not resolve (only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\" do)", path);
        const Expr rule = b_.rule(target);
        refs_.emplace(target, rule);
        b_.define(rule, visit(*schema, at, depth + 1));
        return rule;
    }

    // allOf over object schemas: their properties and required names together.
    Expr all_of(const json::Value& a, const std::string& path, int depth) {
        if (!a.is_array() || a.as_array().empty()) fail("'allOf' must be a non-empty array", path);
        if (a.as_array().size() == 1) return visit(a.as_array()[0], path + "/allOf/0", depth + 1);
        json::Value merged = json::Object{{"type", "object"}, {"properties", json::Object{}}, {"required", json::Array{}}};
        for (std::size_t i = 0; i < a.as_array().size(); ++i) {
            const std::string at = path + "/allOf/" + std::to_string(i);
            const json::Value* part = &a.as_array()[i];
            for (int hops = 0; part->is_object() && part->find("$ref"); ++hops) {
                const json::Value& r = part->at("$ref");
                if (hops > kMaxSchemaDepth || !r.is_string()) fail("'allOf' over an unresolvable $ref", at);
                const std::string& target = r.as_string();
                const json::Value* next = nullptr;
                for (const std::string_view prefix : {"#/$defs/", "#/definitions/"})
                    if (target.compare(0, prefix.size(), prefix) == 0)
                        if (const json::Value* defs = root_->find(prefix.substr(2, prefix.size() - 3)))
                            next = defs->find(unescape_segment(std::string_view(target).substr(prefix.size())));
                if (!next) fail("'allOf' over an unresolvable $ref", at);
                part = next;
            }
            if (!part->is_object()) fail("'allOf' is supported over object schemas only", at);
            for (const auto& [k, v] : part->as_object()) {
                if (is_annotation(k)) continue;
                if (k == "type" && v.is_string() && v.as_string() == "object") continue;
                if (k == "properties" && v.is_object()) {
                    for (const auto& [name, p] : v.as_object()) merged.as_object()[1].second.set(name, p);
                } else if (k == "required" && v.is_array()) {
                    for (const auto& n : v.as_array()) merged.as_object()[2].second.as_array().push_back(n);
                } else if (k == "additionalProperties") {
                    merged.set(k, v);
                } else {
                    fail("'allOf' is supported over object schemas only (type object, properties, required, additionalProperties), not '" + k + "'", at);
                }
            }
        }
        return object(merged, path, depth);
    }

    Expr string(const json::Value& s, const std::string& path) {
        if (const json::Value* p = s.find("pattern")) {
            if (!p->is_string()) fail("'pattern' must be a string", path);
            if (s.find("format") || s.find("minLength") || s.find("maxLength"))
                fail("'pattern' together with 'format', 'minLength' or 'maxLength' is unsupported", path);
            try {
                return b_.seq({b_.literal("\""), regex_string_content(b_, p->as_string()), b_.literal("\"")});
            } catch (const Error& e) {
                fail(std::string("unsupported 'pattern' (") + e.what() + ")", path);
            }
        }
        if (const json::Value* f = s.find("format")) {
            if (!f->is_string()) fail("'format' must be a string", path);
            return b_.seq({b_.literal("\""), format(f->as_string(), path), b_.literal("\"")});
        }
        const int min = s.find("minLength") ? count(s.at("minLength"), "minLength", path, -2) : 0;
        const int max = s.find("maxLength") ? count(s.at("maxLength"), "maxLength", path, kUnbounded) : kUnbounded;
        if (min == -2) fail("'minLength' is too large", path);
        if (min == 0 && max == kUnbounded) return string_;
        if (max != kUnbounded && max < min) fail("'maxLength' is below 'minLength'", path);
        return b_.seq({b_.literal("\""), b_.repeat(char_, min, max), b_.literal("\"")});
    }

    Expr format(const std::string& f, const std::string& path) {
        const auto digits = [&](int n) { return b_.repeat(b_.chars({{'0', '9'}}), n, n); };
        const auto in = [&](char32_t lo, char32_t hi) { return b_.chars({{lo, hi}}); };
        const Expr date = b_.seq({digits(4), b_.literal("-"), b_.any({b_.seq({b_.literal("0"), in('1', '9')}), b_.seq({b_.literal("1"), in('0', '2')})}),
                                  b_.literal("-"),
                                  b_.any({b_.seq({b_.literal("0"), in('1', '9')}), b_.seq({in('1', '2'), in('0', '9')}), b_.seq({b_.literal("3"), in('0', '1')})})});
        const Expr hour = b_.any({b_.seq({in('0', '1'), in('0', '9')}), b_.seq({b_.literal("2"), in('0', '3')})});
        const Expr minute = b_.seq({in('0', '5'), in('0', '9')});
        const Expr time = b_.seq({hour, b_.literal(":"), minute, b_.literal(":"), minute, b_.optional(b_.seq({b_.literal("."), b_.repeat(in('0', '9'), 1, 3)})),
                                  b_.any({b_.literal("Z"), b_.seq({b_.chars({{'+', '+'}, {'-', '-'}}), hour, b_.literal(":"), minute})})});
        if (f == "date") return date;
        if (f == "time") return time;
        if (f == "date-time") return b_.seq({date, b_.literal("T"), time});
        if (f == "uuid") {
            const Expr hex = b_.chars({{'0', '9'}, {'a', 'f'}, {'A', 'F'}});
            const auto hexes = [&](int n) { return b_.repeat(hex, n, n); };
            return b_.seq({hexes(8), b_.literal("-"), hexes(4), b_.literal("-"), hexes(4), b_.literal("-"), hexes(4), b_.literal("-"), hexes(12)});
        }
        fail("unsupported format '" + f + "' (date, time, date-time and uuid are supported)", path);
    }

    Expr array(const json::Value& s, const std::string& path, int depth) {
        std::vector<Expr> prefix;
        const json::Value* items = s.find("items");
        const json::Value* prefix_items = s.find("prefixItems");
        if (items && items->is_array()) {  // the older drafts' spelling of prefixItems
            if (prefix_items) fail("'items' as an array together with 'prefixItems'", path);
            prefix_items = items;
            items = nullptr;
        }
        if (prefix_items) {
            if (!prefix_items->is_array()) fail("'prefixItems' must be an array", path);
            const std::string key = prefix_items == s.find("items") ? "/items/" : "/prefixItems/";
            for (std::size_t i = 0; i < prefix_items->as_array().size(); ++i)
                prefix.push_back(visit(prefix_items->as_array()[i], path + key + std::to_string(i), depth + 1));
            if (prefix.size() > kMaxProperties) fail("more than " + std::to_string(kMaxProperties) + " prefix items", path);
        }
        std::optional<Expr> rest;  // further items
        if (items && !(items->is_bool() && !items->as_bool())) {
            rest = visit(*items, path + "/items", depth + 1);
        } else if (!items && !prefix_items) {
            rest = value_;
        }
        const int min = s.find("minItems") ? count(s.at("minItems"), "minItems", path, -2) : 0;
        int max = s.find("maxItems") ? count(s.at("maxItems"), "maxItems", path, kUnbounded) : kUnbounded;
        if (min == -2) fail("'minItems' is too large", path);
        if (!rest && (max == kUnbounded || max > int(prefix.size()))) max = int(prefix.size());
        if (max != kUnbounded && max < min) fail("'minItems' is more than the array can hold", path);

        // Item j is prefix[j] or the rest; items before `min` are mandatory.
        const auto item_at = [&](std::size_t j) { return j < prefix.size() ? prefix[j] : *rest; };
        const auto separated = [&](Expr e) { return b_.seq({b_.literal(","), ws_, e, ws_}); };
        // Items from j on (j >= 1).
        Expr tail = b_.empty();
        const std::size_t fixed = prefix.size();
        if (rest && (max == kUnbounded || max > int(fixed)))
            tail = b_.repeat(separated(*rest), std::max(0, min - std::max(int(fixed), 1)),
                             max == kUnbounded ? kUnbounded : max - std::max(int(fixed), 1));
        for (std::size_t j = std::min<std::size_t>(fixed, max == kUnbounded ? fixed : std::size_t(max)); j-- > 1;) {
            const Expr part = b_.seq({separated(prefix[j]), tail});
            tail = int(j) < min ? part : b_.optional(part);
        }
        Expr body = b_.empty();
        if (max != 0) {
            body = b_.seq({item_at(0), ws_, tail});
            if (min == 0) body = b_.optional(body);
        }
        return b_.seq({b_.literal("["), ws_, body, b_.literal("]")});
    }

    Expr object(const json::Value& s, const std::string& path, int depth) {
        struct Prop {
            std::string name;
            Expr kv;
        };
        std::vector<Prop> required, optional;
        std::vector<std::string> names;
        std::set<std::string> required_names;
        if (const json::Value* r = s.find("required")) {
            if (!r->is_array()) fail("'required' must be an array", path);
            for (const auto& n : r->as_array()) {
                if (!n.is_string()) fail("'required' must be an array of strings", path);
                required_names.insert(n.as_string());
            }
        }
        if (const json::Value* props = s.find("properties")) {
            if (!props->is_object()) fail("'properties' must be an object", path);
            if (props->as_object().size() > kMaxProperties) fail("more than " + std::to_string(kMaxProperties) + " properties", path);
            for (const auto& [name, p] : props->as_object()) {
                const Expr value = visit(p, path + "/properties" + segment(name), depth + 1);
                const Expr kv = b_.seq({b_.literal(json::dump(json::Value(name))), ws_, b_.literal(":"), ws_, value, ws_});
                const bool req = required_names.count(name) > 0;
                (req ? required : optional).push_back({name, kv});
                names.push_back(name);
            }
        }
        const std::set<std::string> listed(names.begin(), names.end());
        for (const auto& n : required_names)
            if (!listed.count(n)) fail("required property '" + n + "' is not in 'properties'", path);
        std::optional<Expr> extra_value;
        if (const json::Value* a = s.find("additionalProperties")) {
            if (a->is_bool()) {
                if (a->as_bool()) extra_value = value_;
            } else {
                extra_value = visit(*a, path + "/additionalProperties", depth + 1);
            }
        } else if (!s.find("properties")) {
            extra_value = value_;
        }
        if (extra_value) optional.push_back({"", b_.seq({names.empty() ? string_ : key_not_in(names), ws_, b_.literal(":"), ws_, *extra_value, ws_})});
        const bool extra = bool(extra_value);

        const auto separated = [&](Expr e) { return b_.seq({b_.literal(","), ws_, e}); };
        // rest[i]: optional properties i.. in order, each present or not (the extra ones any number of times).
        std::vector<Expr> rest(optional.size() + 1);
        rest.back() = b_.empty();
        for (std::size_t i = optional.size(); i-- > 0;) {
            const bool is_extra = extra && i + 1 == optional.size();
            rest[i] = b_.rule(path + "/optional" + std::to_string(i));
            b_.define(rest[i], b_.seq({is_extra ? b_.repeat(separated(optional[i].kv), 0, kUnbounded) : b_.optional(separated(optional[i].kv)), rest[i + 1]}));
        }
        std::vector<Expr> body;
        for (std::size_t i = 0; i < required.size(); ++i) body.push_back(i == 0 ? required[i].kv : separated(required[i].kv));
        if (!required.empty()) {
            body.push_back(rest[0]);
        } else if (!optional.empty()) {
            // The first property present starts without a comma.
            std::vector<Expr> firsts;
            for (std::size_t i = 0; i < optional.size(); ++i) {
                const bool is_extra = extra && i + 1 == optional.size();
                firsts.push_back(b_.seq({optional[i].kv, is_extra ? rest[i] : rest[i + 1]}));
            }
            body.push_back(b_.optional(b_.any(std::move(firsts))));
        }
        return b_.seq({b_.literal("{"), ws_, b_.seq(std::move(body)), b_.literal("}")});
    }

    // A key (with its quotes) that is none of `names`: a trie of the names where, at each point, the key
    // may leave the trie with a character no name has there, or end where no name ends.
    Expr key_not_in(std::vector<std::string> names) {
        for (const auto& n : names)
            if (n.size() > 128 || std::any_of(n.begin(), n.end(), [](char c) { return c < 0x20 || c == '"' || c == '\\' || static_cast<unsigned char>(c) >= 0x7F; }))
                return string_;
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        return b_.seq({b_.literal("\""), key_rest(names, 0, names.size(), 0)});
    }
    Expr key_rest(const std::vector<std::string>& names, std::size_t begin, std::size_t end, std::size_t depth) {
        std::vector<Expr> options;
        std::size_t i = begin;
        const bool a_name_ends = i < end && names[i].size() == depth;
        if (a_name_ends) ++i;
        std::vector<CharRange> taken{{'"', '"'}, {'\\', '\\'}, {0, 0x1F}};
        std::vector<Expr> children;
        while (i < end) {
            const char c = names[i][depth];
            std::size_t j = i;
            while (j < end && names[j][depth] == c) ++j;
            taken.push_back({char32_t(c), char32_t(c)});
            children.push_back(b_.seq({b_.literal(std::string_view(&c, 1)), key_rest(names, i, j, depth + 1)}));
            i = j;
        }
        options.push_back(b_.seq({b_.any({b_.chars(taken, true), escape_}), string_rest_}));
        options.insert(options.end(), children.begin(), children.end());
        if (!a_name_ends) options.push_back(b_.literal("\""));
        return b_.any(std::move(options));
    }

    Builder& b_;
    Expr ws_, escape_, char_, string_rest_, string_, unsigned_integer_, integer_, unsigned_number_, number_, boolean_, null_, value_, object_, array_;
    const json::Value* root_ = nullptr;
    std::map<std::string, Expr> refs_;
};

// The grammar of JSON documents valid against `schema`, whitespace around them allowed.
inline Grammar json_schema_grammar(const json::Value& schema) {
    Builder b;
    JsonGrammar json(b);
    return b.build(json.document(json.schema(schema)));
}

}  // namespace forge::grammar
