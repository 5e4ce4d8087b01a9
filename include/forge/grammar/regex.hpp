#pragma once
// A JSON Schema `pattern` (ECMA-262 regular expression syntax, the common subset) as a grammar of JSON
// string content: the characters the pattern matches, written as they appear between a JSON string's
// quotes (a quote, a backslash or a control character through its escape, everything else as itself).
//
// Supported: literal characters, `.`, classes `[...]` and `[^...]` with ranges, the escapes \d \D \w \W
// \s \S \n \r \t \f \v \0 \xHH \uHHHH and escaped punctuation, groups `(...)` and `(?:...)`, `|`, and the
// quantifiers * + ? {n} {n,} {n,m} (a trailing `?`, laziness, changes nothing here). A pattern matches
// anywhere in the string unless anchored: without a leading `^` any text may come before it, without a
// trailing `$` any text after. Anything else (backreferences, lookaround, \b, inner anchors) is a
// forge::Error naming the offset.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/core/utf8.hpp"
#include "forge/grammar/grammar.hpp"

namespace forge::grammar {

class RegexCompiler {
public:
    RegexCompiler(Builder& b, std::string_view pattern) : b_(b), p_(pattern) { check_utf8(pattern); }

    Expr compile() {
        const bool from_start = eat('^');
        // The last `$` anchors the end unless it is escaped (an odd number of backslashes before it).
        std::size_t end = p_.size();
        bool to_end = false;
        if (end > i_ && p_[end - 1] == '$') {
            std::size_t slashes = 0;
            while (end - 1 - slashes > i_ && p_[end - 2 - slashes] == '\\') ++slashes;
            if (slashes % 2 == 0) to_end = true, --end;
        }
        p_ = p_.substr(0, end);
        const Expr body = alternation(0);
        if (i_ != p_.size()) fail("unexpected ')'");
        const Expr anything = b_.repeat(char_of(Builder::normalize({}, true)), 0, kUnbounded);
        return b_.seq({from_start ? b_.empty() : anything, body, to_end ? b_.empty() : anything});
    }

private:
    [[noreturn]] void fail(const std::string& what) const { throw Error("regex: " + what + " at offset " + std::to_string(i_)); }
    bool eat(char c) {
        if (i_ < p_.size() && p_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }

    // One character of `set`, as JSON string content.
    Expr char_of(const std::vector<CharRange>& set) {
        std::vector<CharRange> plain;
        std::vector<std::string> escaped;
        for (const CharRange r : set) {
            for (char32_t c = r.lo; c <= r.hi && c < 0x20; ++c) escaped.push_back(json_escape(c));
            for (const char32_t c : {U'"', U'\\'})
                if (r.lo <= c && c <= r.hi) escaped.push_back(json_escape(c));
        }
        // The set without what JSON escapes.
        std::vector<CharRange> excluded = Builder::normalize(set, true);
        excluded.push_back({0, 0x1F});
        excluded.push_back({'"', '"'});
        excluded.push_back({'\\', '\\'});
        plain = Builder::normalize(std::move(excluded), true);
        std::vector<Expr> options;
        if (!plain.empty()) options.push_back(b_.chars(plain));
        if (!escaped.empty()) options.push_back(b_.one_of_literals(std::move(escaped)));
        return options.size() == 1 ? options[0] : b_.any(std::move(options));
    }
    static std::string json_escape(char32_t c) {
        switch (c) {
            case '"': return "\\\"";
            case '\\': return "\\\\";
            case '\n': return "\\n";
            case '\r': return "\\r";
            case '\t': return "\\t";
            case '\b': return "\\b";
            case '\f': return "\\f";
            default: {
                const char* hex = "0123456789abcdef";
                return std::string("\\u00") + hex[c >> 4] + hex[c & 15];
            }
        }
    }

    Expr alternation(int depth) {
        if (depth > 100) fail("groups nest deeper than 100");
        std::vector<Expr> options{sequence(depth)};
        while (eat('|')) options.push_back(sequence(depth));
        return options.size() == 1 ? options[0] : b_.any(std::move(options));
    }

    Expr sequence(int depth) {
        std::vector<Expr> parts;
        while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
            const Expr a = atom(depth);
            parts.push_back(quantified(a));
        }
        return b_.seq(std::move(parts));
    }

    Expr quantified(Expr a) {
        if (i_ >= p_.size()) return a;
        int min = -1, max = -1;
        const char c = p_[i_];
        if (c == '*') min = 0, max = kUnbounded;
        if (c == '+') min = 1, max = kUnbounded;
        if (c == '?') min = 0, max = 1;
        if (min >= 0) {
            ++i_;
        } else if (c == '{' && i_ + 1 < p_.size() && p_[i_ + 1] >= '0' && p_[i_ + 1] <= '9') {
            ++i_;
            min = number();
            max = min;
            if (eat(',')) max = i_ < p_.size() && p_[i_] == '}' ? kUnbounded : number();
            if (!eat('}')) fail("expected '}'");
            if (max != kUnbounded && max < min) fail("a repetition {n,m} with m < n");
        } else {
            return a;
        }
        eat('?');  // lazy: the same strings
        if (i_ < p_.size() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?' || p_[i_] == '{')) fail("a quantifier after a quantifier");
        return b_.repeat(a, min, max);
    }
    int number() {
        long v = 0;
        const std::size_t start = i_;
        while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') {
            v = v * 10 + (p_[i_++] - '0');
            if (v > 100000) fail("a repetition count above 100000");
        }
        if (i_ == start) fail("expected a number");
        return int(v);
    }

    Expr atom(int depth) {
        const char c = p_[i_];
        if (c == '(') {
            ++i_;
            if (eat('?')) {
                if (!eat(':')) fail("unsupported group (only (?:...) is)");
            }
            const Expr inner = alternation(depth + 1);
            if (!eat(')')) fail("expected ')'");
            return inner;
        }
        if (c == '[') return char_of(char_class());
        if (c == '.') {
            ++i_;
            return char_of(Builder::normalize({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}, true));
        }
        if (c == '\\') {
            const std::size_t at = i_++;
            std::vector<CharRange> set;
            if (!escape(set, false)) {
                i_ = at;
                fail("unsupported escape");
            }
            return char_of(Builder::normalize(std::move(set), false));
        }
        if (c == '^' || c == '$') fail("an anchor inside the pattern");
        if (c == '*' || c == '+' || c == '?' || (c == '{' && i_ + 1 < p_.size() && p_[i_ + 1] >= '0' && p_[i_ + 1] <= '9'))
            fail("a quantifier with nothing to repeat");
        const char32_t cp = next_char();
        return char_of({{cp, cp}});
    }

    char32_t next_char() {
        const Utf8Step step = utf8_step(p_, i_);
        i_ += step.length;
        return step.cp;
    }

    // After a backslash: the characters it stands for, added to `set`; false if unsupported.
    bool escape(std::vector<CharRange>& set, bool in_class) {
        if (i_ >= p_.size()) fail("a pattern ending in a backslash");
        const char c = p_[i_++];
        const auto add_all = [&](std::vector<CharRange> r, bool negated) {
            for (const CharRange x : Builder::normalize(std::move(r), negated)) set.push_back(x);
        };
        const std::vector<CharRange> digit{{'0', '9'}}, word{{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}},
            space{{' ', ' '}, {'\t', '\r'}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
        switch (c) {
            case 'd': add_all(digit, false); return true;
            case 'D': add_all(digit, true); return true;
            case 'w': add_all(word, false); return true;
            case 'W': add_all(word, true); return true;
            case 's': add_all(space, false); return true;
            case 'S': add_all(space, true); return true;
            case 'n': set.push_back({'\n', '\n'}); return true;
            case 'r': set.push_back({'\r', '\r'}); return true;
            case 't': set.push_back({'\t', '\t'}); return true;
            case 'f': set.push_back({'\f', '\f'}); return true;
            case 'v': set.push_back({'\v', '\v'}); return true;
            case '0': set.push_back({0, 0}); return true;
            case 'x':
            case 'u': {
                const std::size_t n = c == 'x' ? 2 : 4;
                if (p_.size() - i_ < n) fail("a truncated \\" + std::string(1, c) + " escape");
                char32_t v = 0;
                for (std::size_t k = 0; k < n; ++k) {
                    const char h = p_[i_++];
                    const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (d < 0) fail("a bad hex digit");
                    v = v * 16 + char32_t(d);
                }
                set.push_back({v, v});
                return true;
            }
            case 'b':
                if (!in_class) return false;  // a word boundary outside a class
                set.push_back({'\b', '\b'});
                return true;
            default:
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || static_cast<unsigned char>(c) >= 0x80) return false;
                set.push_back({char32_t(c), char32_t(c)});  // escaped punctuation stands for itself
                return true;
        }
    }

    std::vector<CharRange> char_class() {
        ++i_;  // [
        const bool negated = eat('^');
        std::vector<CharRange> set;
        bool first = true;
        for (;;) {
            if (i_ >= p_.size()) fail("an unterminated '['");
            if (p_[i_] == ']' && !first) {
                ++i_;
                break;
            }
            first = false;
            // One member: a character (possibly the start of a range) or a class escape.
            char32_t lo;
            if (p_[i_] == '\\') {
                ++i_;
                std::vector<CharRange> one;
                if (!escape(one, true)) fail("unsupported escape in a class");
                if (one.size() != 1 || one[0].lo != one[0].hi) {
                    set.insert(set.end(), one.begin(), one.end());
                    continue;
                }
                lo = one[0].lo;
            } else {
                lo = next_char();
            }
            char32_t hi = lo;
            if (i_ + 1 < p_.size() && p_[i_] == '-' && p_[i_ + 1] != ']') {
                ++i_;
                if (p_[i_] == '\\') {
                    ++i_;
                    std::vector<CharRange> one;
                    if (!escape(one, true) || one.size() != 1 || one[0].lo != one[0].hi) fail("a class range ending in a class");
                    hi = one[0].lo;
                } else {
                    hi = next_char();
                }
                if (hi < lo) fail("a class range out of order");
            }
            set.push_back({lo, hi});
        }
        return Builder::normalize(std::move(set), negated);
    }

    Builder& b_;
    std::string_view p_;
    std::size_t i_ = 0;
};

// JSON string content (between the quotes) matching `pattern`.
inline Expr regex_string_content(Builder& b, std::string_view pattern) { return RegexCompiler(b, pattern).compile(); }

}  // namespace forge::grammar
