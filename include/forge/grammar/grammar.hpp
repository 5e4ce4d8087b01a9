#pragma once
// A context-free grammar over bytes, and a builder that composes one from pieces: literal text, byte
// classes, Unicode character classes (encoded to UTF-8 byte sequences here, so matching never needs to
// know about characters), sequences, alternatives, repetition {min,max} and named rules that may refer
// to each other (recursion). The built Grammar is a flat list of elements that the Matcher
// (matcher.hpp) walks; building checks what would make matching hang or dead-end: left recursion, and
// rules that no finite text completes (e.g. a rule that always refers to itself).
//
//   grammar::Builder b;
//   const auto call = b.seq({b.literal("<tool_call>\n"), grammar::json_schema(b, schema), b.literal("\n</tool_call>")});
//   const grammar::Grammar g = b.build(b.repeat(call, 1, grammar::kUnbounded));
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"

namespace forge::grammar {

inline constexpr int kUnbounded = -1;  // repeat()'s max: no upper bound
// The most elements a built grammar may have: large repetitions and schemas fail here, not in memory.
inline constexpr std::size_t kMaxElements = std::size_t(1) << 21;
// The deepest expressions may nest (each level is a native stack frame while building).
inline constexpr int kMaxNesting = 1000;

// A set of byte values.
struct ByteSet {
    std::array<std::uint64_t, 4> bits{};

    void add(unsigned lo, unsigned hi) {
        for (unsigned b = lo; b <= hi && b < 256; ++b) bits[b >> 6] |= std::uint64_t(1) << (b & 63);
    }
    void remove(unsigned b) { bits[b >> 6] &= ~(std::uint64_t(1) << (b & 63)); }
    bool has(unsigned b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
    bool empty() const { return (bits[0] | bits[1] | bits[2] | bits[3]) == 0; }
    friend bool operator==(const ByteSet&, const ByteSet&) = default;
    friend auto operator<=>(const ByteSet&, const ByteSet&) = default;
};

// Code points lo..hi, both included.
struct CharRange {
    char32_t lo, hi;
};

// One step of a rule's alternative: match a byte of a set, expand a rule, or (end) the alternative is done.
struct Element {
    enum Kind : std::uint8_t { end, bytes, rule } kind;
    std::uint32_t index;  // bytes: the byte set's index; rule: the rule's
};

class Grammar {
public:
    std::uint32_t root() const { return root_; }
    std::size_t rule_count() const { return alt_begin_.size() - 1; }
    // Positions (in elements()) where rule `r`'s alternatives start.
    std::span<const std::uint32_t> alternatives(std::uint32_t r) const {
        return std::span(alt_starts_).subspan(alt_begin_[r], alt_begin_[r + 1] - alt_begin_[r]);
    }
    const Element& element(std::uint32_t pos) const { return elements_[pos]; }
    std::size_t size() const { return elements_.size(); }
    const ByteSet& byte_set(std::uint32_t i) const { return byte_sets_[i]; }
    const std::string& rule_name(std::uint32_t r) const { return names_[r]; }
    // Whether rule `r` matches the empty text, and the bytes its texts can start with.
    bool nullable(std::uint32_t r) const { return rule_nullable_[r]; }
    const ByteSet& first(std::uint32_t r) const { return byte_sets_[rule_first_[r]]; }
    // The same for alternative `i` of alternatives() (counted over all rules, from alt_begin(r)).
    std::uint32_t alt_begin(std::uint32_t r) const { return alt_begin_[r]; }
    bool alt_nullable(std::uint32_t i) const { return alt_nullable_[i]; }
    const ByteSet& alt_first(std::uint32_t i) const { return byte_sets_[alt_first_[i]]; }

private:
    friend class Builder;
    std::vector<Element> elements_;          // every alternative, each closed by an `end` element
    std::vector<std::uint32_t> alt_starts_;  // rule by rule
    std::vector<std::uint32_t> alt_begin_;   // rule r's alternatives are alt_starts_[alt_begin_[r]..alt_begin_[r+1])
    std::vector<ByteSet> byte_sets_;  // the elements' byte classes, and the first-byte sets below
    std::vector<std::uint32_t> rule_first_, alt_first_;
    std::vector<char> rule_nullable_, alt_nullable_;
    std::vector<std::string> names_;
    std::uint32_t root_ = 0;
};

namespace detail {

// Splits the code points lo..hi (no surrogates among them) into runs whose UTF-8 encodings are the
// byte ranges of one sequence: each position's byte independently anywhere in its range.
inline void utf8_sequences(char32_t lo, char32_t hi, std::vector<std::vector<std::pair<unsigned, unsigned>>>& out) {
    for (const char32_t top : {char32_t(0x7F), char32_t(0x7FF), char32_t(0xFFFF)})
        if (lo <= top && hi > top) {
            utf8_sequences(lo, top, out);
            utf8_sequences(top + 1, hi, out);
            return;
        }
    for (int i = 1; i < 4; ++i) {
        const char32_t low_bits = (char32_t(1) << (6 * i)) - 1;
        if ((lo & ~low_bits) == (hi & ~low_bits)) continue;
        if ((lo & low_bits) != 0) {
            utf8_sequences(lo, lo | low_bits, out);
            utf8_sequences((lo | low_bits) + 1, hi, out);
            return;
        }
        if ((hi & low_bits) != low_bits) {
            utf8_sequences(lo, (hi & ~low_bits) - 1, out);
            utf8_sequences(hi & ~low_bits, hi, out);
            return;
        }
    }
    const auto encode = [](char32_t cp) {
        std::vector<unsigned> b;
        if (cp < 0x80) return std::vector<unsigned>{unsigned(cp)};
        if (cp < 0x800) return std::vector<unsigned>{0xC0u | unsigned(cp >> 6), 0x80u | unsigned(cp & 0x3F)};
        if (cp < 0x10000)
            return std::vector<unsigned>{0xE0u | unsigned(cp >> 12), 0x80u | unsigned((cp >> 6) & 0x3F), 0x80u | unsigned(cp & 0x3F)};
        return std::vector<unsigned>{0xF0u | unsigned(cp >> 18), 0x80u | unsigned((cp >> 12) & 0x3F), 0x80u | unsigned((cp >> 6) & 0x3F),
                                     0x80u | unsigned(cp & 0x3F)};
    };
    const auto a = encode(lo), b = encode(hi);
    auto& seq = out.emplace_back();
    for (std::size_t k = 0; k < a.size(); ++k) seq.emplace_back(a[k], b[k]);
}

}  // namespace detail

// A piece of grammar, made by a Builder and valid with that builder only.
struct Expr {
    std::uint32_t id = 0;
};

class Builder {
public:
    // Matches exactly `bytes`.
    Expr literal(std::string_view bytes) { return add({.kind = Kind::literal, .text = std::string(bytes)}); }
    // Matches one byte of `set`.
    Expr bytes(const ByteSet& set) { return add({.kind = Kind::bytes, .set = set}); }
    Expr byte_range(unsigned lo, unsigned hi) {
        ByteSet s;
        s.add(lo, hi);
        return bytes(s);
    }
    // Matches one character (its UTF-8 bytes) in `ranges`, or with `negated` one outside them
    // (surrogates are never characters).
    Expr chars(std::vector<CharRange> ranges, bool negated = false) {
        return add({.kind = Kind::chars, .ranges = normalize(std::move(ranges), negated)});
    }
    // Sorted, merged, surrogate-free ranges (complemented when `negated`): the characters chars() matches.
    static std::vector<CharRange> normalize(std::vector<CharRange> in, bool negated) {
        std::vector<CharRange> ranges;
        for (auto r : in) {
            r.hi = std::min<char32_t>(r.hi, 0x10FFFF);
            if (r.lo <= r.hi) ranges.push_back(r);
        }
        std::sort(ranges.begin(), ranges.end(), [](CharRange a, CharRange b) { return a.lo < b.lo; });
        std::vector<CharRange> merged;
        for (const auto r : ranges) {
            if (!merged.empty() && r.lo <= merged.back().hi + 1) {
                merged.back().hi = std::max(merged.back().hi, r.hi);
            } else {
                merged.push_back(r);
            }
        }
        if (negated) {
            std::vector<CharRange> rest;
            char32_t next = 0;
            for (const auto r : merged) {
                if (r.lo > next) rest.push_back({next, r.lo - 1});
                next = r.hi + 1;
            }
            if (next <= 0x10FFFF) rest.push_back({next, 0x10FFFF});
            merged = std::move(rest);
        }
        std::vector<CharRange> out;
        for (const auto r : merged) {
            if (r.hi < 0xD800 || r.lo > 0xDFFF) {
                out.push_back(r);
                continue;
            }
            if (r.lo < 0xD800) out.push_back({r.lo, 0xD7FF});
            if (r.hi > 0xDFFF) out.push_back({0xE000, r.hi});
        }
        return out;
    }
    Expr empty() { return add({.kind = Kind::seq}); }
    Expr seq(std::vector<Expr> parts) { return add({.kind = Kind::seq, .kids = std::move(parts)}); }
    // Matches any one of `options` (none: matches nothing).
    Expr any(std::vector<Expr> options) { return add({.kind = Kind::any, .kids = std::move(options)}); }
    // `e` at least `min` and at most `max` times (kUnbounded: no limit).
    Expr repeat(Expr e, int min, int max) {
        if (min < 0 || (max != kUnbounded && max < min))
            throw Error("grammar: bad repetition {" + std::to_string(min) + "," + std::to_string(max) + "}");
        return add({.kind = Kind::repeat, .kids = {e}, .min = min, .max = max});
    }
    Expr optional(Expr e) { return repeat(e, 0, 1); }
    // Any one of `texts`, matched through a trie of them, so thousands of texts cost one parse path
    // rather than one per text.
    Expr one_of_literals(std::vector<std::string> texts) {
        std::sort(texts.begin(), texts.end());
        texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
        return texts.empty() ? any({}) : literal_trie(texts, 0, texts.size(), 0);
    }
    // A named rule; define() gives its body, before or after other rules refer to it, so rules may
    // be recursive. The name appears in errors.
    Expr rule(std::string name) {
        const Expr r = add({.kind = Kind::ref, .text = std::move(name)});
        nodes_[r.id].body = kUndefined;
        return r;
    }
    void define(Expr rule, Expr body) {
        Node& n = nodes_.at(rule.id);
        if (n.kind != Kind::ref) throw Error("grammar: define() needs an Expr made by rule()");
        if (n.body != kUndefined) throw Error("grammar: rule '" + n.text + "' is defined twice");
        n.body = body.id;
    }

    // The grammar matching `root`; throws forge::Error for an undefined rule, left recursion, a rule no
    // finite text completes, or a grammar of more than kMaxElements elements.
    Grammar build(Expr root) const {
        Lowering l{*this};
        l.g.root_ = l.rule_of(root.id, nodes_.at(root.id).kind == Kind::ref ? std::string() : "root");
        // Rule bodies are lowered here, one after another, so long chains of rules (a schema's
        // optional properties, a trie of literals) never nest native calls.
        while (!l.pending.empty()) {
            const auto [r, id] = l.pending.back();
            l.pending.pop_back();
            l.lower_alternatives(r, id);
        }
        l.finish();
        return std::move(l.g);
    }

private:
    enum class Kind : std::uint8_t { literal, bytes, chars, seq, any, repeat, ref };
    static constexpr std::uint32_t kUndefined = UINT32_MAX;
    struct Node {
        Kind kind;
        std::string text{};  // literal: the bytes; ref: the rule's name
        ByteSet set{};
        std::vector<CharRange> ranges{};
        std::vector<Expr> kids{};
        int min = 0, max = 0;
        std::uint32_t body = kUndefined;  // ref: the rule's body
    };

    Expr add(Node n) {
        if (nodes_.size() >= kMaxElements) throw Error("grammar: more than " + std::to_string(kMaxElements) + " pieces");
        nodes_.push_back(std::move(n));
        return Expr{std::uint32_t(nodes_.size() - 1)};
    }

    // texts[begin, end) (sorted, distinct) share their first `depth` bytes: their common prefix beyond
    // that, then a branch per next byte.
    Expr literal_trie(const std::vector<std::string>& texts, std::size_t begin, std::size_t end, std::size_t depth, int nesting = 0) {
        if (nesting > kMaxNesting) throw Error("grammar: literal alternatives nest deeper than " + std::to_string(kMaxNesting));
        const std::string& first = texts[begin];
        const std::string& last = texts[end - 1];
        std::size_t common = depth;
        while (common < first.size() && common < last.size() && first[common] == last[common]) ++common;
        const Expr prefix = literal(std::string_view(first).substr(depth, common - depth));
        if (end - begin == 1) return prefix;
        std::vector<Expr> options;
        std::size_t i = begin;
        if (texts[i].size() == common) options.push_back(empty()), ++i;
        while (i < end) {
            std::size_t j = i;
            while (j < end && texts[j][common] == texts[i][common]) ++j;
            options.push_back(literal_trie(texts, i, j, common, nesting + 1));
            i = j;
        }
        return seq({prefix, any(std::move(options))});
    }

    // Turns expressions into the Grammar's rules: each expression needing alternatives becomes a rule
    // (once, however often it is used); sequences, literals and byte classes are laid out inline.
    struct Lowering {
        const Builder& b;
        Grammar g{};
        std::vector<std::vector<std::vector<Element>>> rules{};  // rule -> alternatives -> elements
        std::map<std::uint32_t, std::uint32_t> rule_for_node{};
        std::map<std::pair<Element::Kind, std::uint32_t>, std::uint32_t> star_of{};  // unit -> "unit*" rule
        std::map<std::pair<std::pair<Element::Kind, std::uint32_t>, int>, std::uint32_t> upto_of{};  // (unit, n) -> "unit{0,n}"
        std::map<ByteSet, std::uint32_t> set_index{};
        std::vector<std::pair<std::uint32_t, std::uint32_t>> pending{};  // (rule, node) whose alternatives are still to lower
        std::vector<char> named{};  // made by rule(), with the user's name
        std::size_t elements = 0;
        int nesting = 0;

        std::uint32_t new_rule(std::string name, bool is_named = false) {
            rules.emplace_back();
            named.push_back(is_named);
            g.names_.push_back(std::move(name));
            return std::uint32_t(rules.size() - 1);
        }
        void add_alt(std::uint32_t r, std::vector<Element> alt) {
            elements += alt.size() + 1;
            if (elements > kMaxElements) throw Error("grammar: more than " + std::to_string(kMaxElements) + " elements (a repetition or schema is too large)");
            rules[r].push_back(std::move(alt));
        }
        Element byte_element(const ByteSet& s) {
            const auto [it, added] = set_index.emplace(s, std::uint32_t(g.byte_sets_.size()));
            if (added) g.byte_sets_.push_back(s);
            return {Element::bytes, it->second};
        }
        void count(std::size_t n) {
            elements += n;
            if (elements > kMaxElements) throw Error("grammar: more than " + std::to_string(kMaxElements) + " elements (a repetition or schema is too large)");
        }

        std::string name_of(std::uint32_t id) const {
            const Node& n = b.nodes_[id];
            return n.kind == Kind::ref ? n.text : "rule " + std::to_string(rules.size());
        }

        // The rule matching node `id`, made on first use; its body is lowered later (build()'s loop).
        std::uint32_t rule_of(std::uint32_t id, std::string name = {}) {
            if (const auto it = rule_for_node.find(id); it != rule_for_node.end()) return it->second;
            const Node& n = b.nodes_.at(id);
            const std::uint32_t r = new_rule(name.empty() ? name_of(id) : name, n.kind == Kind::ref);
            rule_for_node.emplace(id, r);
            if (n.kind == Kind::ref && n.body == kUndefined) throw Error("grammar: rule '" + n.text + "' is used but never defined");
            pending.emplace_back(r, n.kind == Kind::ref ? n.body : id);
            return r;
        }
        void lower_alternatives(std::uint32_t r, std::uint32_t id) {
            const Node& n = b.nodes_[id];
            if (n.kind == Kind::any) {
                for (const Expr k : n.kids) add_alt(r, lower(k.id));
            } else if (n.kind == Kind::chars) {
                std::vector<std::vector<std::pair<unsigned, unsigned>>> seqs;
                for (const auto range : n.ranges) detail::utf8_sequences(range.lo, range.hi, seqs);
                for (const auto& s : seqs) {
                    std::vector<Element> alt;
                    for (const auto& [lo, hi] : s) {
                        ByteSet set;
                        set.add(lo, hi);
                        alt.push_back(byte_element(set));
                    }
                    add_alt(r, std::move(alt));
                }
            } else {
                add_alt(r, lower(id));
            }
        }
        std::vector<Element> lower(std::uint32_t id) {
            std::vector<Element> out;
            lower_into(id, out);
            return out;
        }
        void lower_into(std::uint32_t id, std::vector<Element>& out) {
            struct Nest {
                int& depth;
                explicit Nest(int& d) : depth(d) {
                    // A literal trie level or a schema level is a few expressions deep.
                    if (++depth > 4 * kMaxNesting) throw Error("grammar: expressions nest deeper than " + std::to_string(4 * kMaxNesting));
                }
                ~Nest() { --depth; }
            } nest(nesting);
            const Node& n = b.nodes_.at(id);
            switch (n.kind) {
                case Kind::literal:
                    count(n.text.size());
                    for (const char c : n.text) {
                        ByteSet s;
                        s.add(static_cast<unsigned char>(c), static_cast<unsigned char>(c));
                        out.push_back(byte_element(s));
                    }
                    return;
                case Kind::bytes: count(1); out.push_back(byte_element(n.set)); return;
                case Kind::chars:
                    if (!n.ranges.empty() && n.ranges.back().hi < 0x80) {
                        ByteSet s;
                        for (const auto r : n.ranges) s.add(unsigned(r.lo), unsigned(r.hi));
                        count(1);
                        out.push_back(byte_element(s));
                        return;
                    }
                    break;
                case Kind::seq:
                    for (const Expr k : n.kids) lower_into(k.id, out);
                    return;
                case Kind::any:
                    if (n.kids.size() == 1) return lower_into(n.kids[0].id, out);
                    break;
                case Kind::repeat: return lower_repeat(n, out);
                case Kind::ref: break;
            }
            count(1);
            out.push_back({Element::rule, rule_of(id)});
        }
        void lower_repeat(const Node& n, std::vector<Element>& out) {
            if (n.max == 0) return;
            std::vector<Element> one = lower(n.kids[0].id);
            const Element unit = one.size() == 1 ? one[0] : Element{Element::rule, rule_of(n.kids[0].id)};
            count(std::size_t(n.min));
            out.insert(out.end(), std::size_t(n.min), unit);
            if (n.max == kUnbounded) {
                count(1);
                out.push_back({Element::rule, star(unit)});
            } else if (n.max > n.min) {
                count(1);
                out.push_back({Element::rule, upto(unit, n.max - n.min)});
            }
        }
        // unit* as  R ::= unit R | ε  (right recursion: the matcher's stacks stay flat).
        std::uint32_t star(Element unit) {
            const auto key = std::pair(unit.kind, unit.index);
            if (const auto it = star_of.find(key); it != star_of.end()) return it->second;
            const std::uint32_t r = new_rule("rule " + std::to_string(rules.size()));
            star_of.emplace(key, r);
            add_alt(r, {unit, {Element::rule, r}});
            add_alt(r, {});
            return r;
        }
        // unit{0,k} as  R_k ::= unit R_{k-1} | ε, without ambiguity.
        std::uint32_t upto(Element unit, int k) {
            const auto key = std::pair(std::pair(unit.kind, unit.index), k);
            if (const auto it = upto_of.find(key); it != upto_of.end()) return it->second;
            std::uint32_t prev = 0;
            for (int i = 1; i <= k; ++i) {
                const auto key_i = std::pair(std::pair(unit.kind, unit.index), i);
                if (const auto it = upto_of.find(key_i); it != upto_of.end()) {
                    prev = it->second;
                    continue;
                }
                const std::uint32_t r = new_rule("rule " + std::to_string(rules.size()));
                upto_of.emplace(key_i, r);
                add_alt(r, i == 1 ? std::vector<Element>{unit} : std::vector<Element>{unit, {Element::rule, prev}});
                add_alt(r, {});
                prev = r;
            }
            return prev;
        }

        void finish() {
            check();
            first_sets();
            for (const auto& alts : rules) {
                g.alt_begin_.push_back(std::uint32_t(g.alt_starts_.size()));
                for (const auto& alt : alts) {
                    g.alt_starts_.push_back(std::uint32_t(g.elements_.size()));
                    g.elements_.insert(g.elements_.end(), alt.begin(), alt.end());
                    g.elements_.push_back({Element::end, 0});
                }
            }
            g.alt_begin_.push_back(std::uint32_t(g.alt_starts_.size()));
        }

        // The bytes each rule and alternative can start with, by fixpoint (in reverse, as rules mostly
        // refer to rules made after them).
        void first_sets() {
            const auto& nullable = g.rule_nullable_;
            std::vector<ByteSet> rule_first(rules.size());
            const auto alt_first = [&](const std::vector<Element>& alt) {
                ByteSet f;
                for (const Element e : alt) {
                    const ByteSet& add = e.kind == Element::bytes ? g.byte_sets_[e.index] : rule_first[e.index];
                    for (std::size_t w = 0; w < f.bits.size(); ++w) f.bits[w] |= add.bits[w];
                    if (e.kind == Element::bytes || !nullable[e.index]) break;
                }
                return f;
            };
            for (bool changed = true; changed;) {
                changed = false;
                for (std::size_t r = rules.size(); r-- > 0;) {
                    ByteSet f = rule_first[r];
                    for (const auto& alt : rules[r]) {
                        const ByteSet a = alt_first(alt);
                        for (std::size_t w = 0; w < f.bits.size(); ++w) f.bits[w] |= a.bits[w];
                    }
                    if (f != rule_first[r]) rule_first[r] = f, changed = true;
                }
            }
            for (std::size_t r = 0; r < rules.size(); ++r) {
                g.rule_first_.push_back(byte_element(rule_first[r]).index);
                for (const auto& alt : rules[r]) {
                    g.alt_first_.push_back(byte_element(alt_first(alt)).index);
                    g.alt_nullable_.push_back(std::all_of(alt.begin(), alt.end(), [&](Element e) { return e.kind == Element::rule && nullable[e.index]; }));
                }
            }
        }

        // Nullable and productive rules by fixpoint, then a search for a rule reachable from itself
        // without a byte matched in between (left recursion: the matcher would expand it forever).
        void check() {
            const std::size_t n = rules.size();
            std::vector<char>& nullable = g.rule_nullable_;
            nullable.assign(n, 0);
            std::vector<char> productive(n, 0);
            for (bool changed = true; changed;) {
                changed = false;
                for (std::size_t r = n; r-- > 0;)  // rules mostly refer to later ones: few passes this way
                    for (const auto& alt : rules[r]) {
                        bool all_null = true, all_prod = true;
                        for (const Element e : alt) {
                            all_null = all_null && e.kind == Element::rule && nullable[e.index];
                            all_prod = all_prod && (e.kind == Element::bytes || productive[e.index]);
                        }
                        if (all_null && !nullable[r]) nullable[r] = 1, changed = true;
                        if (all_prod && !productive[r]) productive[r] = 1, changed = true;
                    }
            }
            // Name a rule() if one is among them: an unnamed rule around it fails only because of it.
            std::size_t worst = n;
            for (std::size_t r = 0; r < n; ++r)
                if (!productive[r] && (worst == n || (!named[worst] && named[r]))) worst = r;
            if (worst < n) throw Error("grammar: no finite text completes rule '" + g.names_[worst] + "'");
            // Iterative depth-first search over "starts with" edges; state 1 = on the path, 2 = done.
            std::vector<char> state(n, 0);
            for (std::size_t start = 0; start < n; ++start) {
                if (state[start]) continue;
                std::vector<std::pair<std::uint32_t, std::vector<std::uint32_t>>> path;
                const auto enter = [&](std::uint32_t r) {
                    state[r] = 1;
                    std::vector<std::uint32_t> next;
                    for (const auto& alt : rules[r])
                        for (const Element e : alt) {
                            if (e.kind != Element::rule) break;
                            next.push_back(e.index);
                            if (!nullable[e.index]) break;
                        }
                    path.emplace_back(r, std::move(next));
                };
                enter(std::uint32_t(start));
                while (!path.empty()) {
                    auto& [r, next] = path.back();
                    if (next.empty()) {
                        state[r] = 2;
                        path.pop_back();
                        continue;
                    }
                    const std::uint32_t s = next.back();
                    next.pop_back();
                    if (state[s] == 1) throw Error("grammar: rule '" + g.names_[s] + "' is left-recursive");
                    if (state[s] == 0) enter(s);
                }
            }
        }
    };

    std::vector<Node> nodes_;
};

}  // namespace forge::grammar
