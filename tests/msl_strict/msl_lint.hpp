#pragma once
// A token-level lint for what clang accepts in C++17 but the Metal Shading Language forbids, run over an
// MSL library's text with comments, string and character literals removed. Each finding names its rule:
//   lambda      a lambda expression (`[` opening a capture list where no subscript can be)
//   recursion   a function whose body calls a function of its own name (direct recursion)
//   goto, virtual, new, delete, throw, try
//                the keyword (`= delete` on a declaration excepted)
//   double      the `double` keyword, or a floating literal without an f or h suffix: C++ reads it as a
//               double, so the emulator would compute in double what Metal computes otherwise
//   std::       anything of the C++ standard library
//   attribute   a [[name]] that is not an MSL attribute: clang's -Wunknown-attributes is silenced for
//               MSL's own, so the lint holds the list instead
#include <cctype>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace forge::test {

struct LintFinding {
    std::string rule;
    int line = 0;
    std::string what;
};

namespace msl_lint_detail {

struct Token {
    std::string_view text;
    int line;
    bool word;     // identifier or keyword
    bool number;   // pp-number
    bool operand;  // a word, number, string or character literal: what a `[` after it subscripts
};

inline bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The tokens of `text`: identifiers, pp-numbers, `::`, and single punctuation characters.
inline std::vector<Token> tokenize(std::string_view text) {
    std::vector<Token> out;
    int line = 1;
    std::size_t i = 0;
    // A string or character literal stands in the stream as one operand token, its contents dropped.
    const auto skip_quoted = [&](char quote) {
        const std::size_t start = i;
        for (++i; i < text.size() && text[i] != quote && text[i] != '\n'; ++i)
            if (text[i] == '\\') ++i;
        ++i;
        out.push_back({text.substr(start, 1), line, false, false, true});
    };
    while (i < text.size()) {
        const char c = text[i];
        if (c == '\n') {
            ++line, ++i;
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if (text.substr(i, 2) == "//") {
            while (i < text.size() && text[i] != '\n') ++i;
        } else if (text.substr(i, 2) == "/*") {
            const std::size_t end = text.find("*/", i + 2);
            const std::size_t stop = end == std::string_view::npos ? text.size() : end + 2;
            for (; i < stop; ++i) line += text[i] == '\n';
        } else if (c == '"' || c == '\'') {
            skip_quoted(c);
        } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                   (c == '.' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])))) {
            const std::size_t start = i;
            for (++i; i < text.size(); ++i) {
                const char p = text[i - 1];
                const bool exponent_sign = (text[i] == '+' || text[i] == '-') && (p == 'e' || p == 'E' || p == 'p' || p == 'P');
                if (!is_word_char(text[i]) && text[i] != '.' && !exponent_sign) break;
            }
            out.push_back({text.substr(start, i - start), line, false, true, true});
        } else if (is_word_char(c)) {
            const std::size_t start = i;
            while (i < text.size() && is_word_char(text[i])) ++i;
            out.push_back({text.substr(start, i - start), line, true, false, true});
        } else {
            const std::size_t n = text.substr(i, 2) == "::" ? 2 : 1;
            out.push_back({text.substr(i, n), line, false, false, false});
            i += n;
        }
    }
    return out;
}

// A pp-number that is a floating literal C++ types as double: a decimal one with a point or an exponent,
// or a hexadecimal one with a binary exponent, and no f/F (float) or h/H (MSL half) suffix.
inline bool is_double_literal(std::string_view n) {
    const bool hex = n.size() > 1 && n[0] == '0' && (n[1] == 'x' || n[1] == 'X');
    const bool floating = hex ? n.find_first_of("pP") != std::string_view::npos : n.find_first_of(".eE") != std::string_view::npos;
    const char last = n.back();
    return floating && last != 'f' && last != 'F' && last != 'h' && last != 'H';
}

// Index of the bracket matching each opening and closing bracket; npos elsewhere or when unbalanced.
inline std::vector<std::size_t> match_brackets(const std::vector<Token>& t) {
    std::vector<std::size_t> match(t.size(), std::string_view::npos), open;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const std::string_view s = t[i].text;
        if (s == "(" || s == "[" || s == "{") {
            open.push_back(i);
        } else if ((s == ")" || s == "]" || s == "}") && !open.empty()) {
            match[i] = open.back();
            match[open.back()] = i;
            open.pop_back();
        }
    }
    return match;
}

inline bool is_one_of(std::string_view s, std::initializer_list<std::string_view> list) {
    for (const auto l : list)
        if (s == l) return true;
    return false;
}

// Attributes of Apple's MSL specification (kernel and vertex/fragment arguments, functions, structure
// members) and standard C++ attributes MSL keeps.
inline bool is_msl_attribute(std::string_view a) {
    return is_one_of(a, {"buffer", "texture", "sampler", "threadgroup", "stage_in", "id", "function_constant", "host_name",
                         "max_total_threads_per_threadgroup", "thread_position_in_grid", "thread_position_in_threadgroup",
                         "thread_index_in_threadgroup", "thread_index_in_simdgroup", "thread_index_in_quadgroup",
                         "thread_execution_width", "threadgroup_position_in_grid", "threadgroups_per_grid",
                         "threads_per_grid", "threads_per_threadgroup", "threads_per_simdgroup",
                         "dispatch_threads_per_threadgroup", "simdgroup_index_in_threadgroup",
                         "simdgroups_per_threadgroup", "quadgroup_index_in_threadgroup", "quadgroups_per_threadgroup",
                         "grid_origin", "grid_size", "user", "position", "attribute", "color", "flat", "maybe_unused",
                         "nodiscard", "fallthrough", "likely", "unlikely"});
}

}  // namespace msl_lint_detail

inline std::vector<LintFinding> lint_msl(std::string_view text) {
    using namespace msl_lint_detail;
    const std::vector<Token> t = tokenize(text);
    const std::vector<std::size_t> match = match_brackets(t);
    const auto at = [&](std::size_t i) { return i < t.size() ? t[i].text : std::string_view(); };
    std::vector<LintFinding> out;
    const auto report = [&](std::string_view rule, std::size_t i, std::string what) {
        out.push_back({std::string(rule), t[i].line, std::move(what)});
    };

    for (std::size_t i = 0; i < t.size(); ++i) {
        const std::string_view s = t[i].text;
        const std::string_view prev = i > 0 ? t[i - 1].text : std::string_view();
        if (s == "double") report("double", i, "the double type");
        if (t[i].number && is_double_literal(s)) report("double", i, "the literal " + std::string(s) + " is a double");
        if (s == "std" && at(i + 1) == "::") report("std::", i, "the C++ standard library");
        if (is_one_of(s, {"goto", "virtual", "new", "throw", "try"})) report(s, i, "the keyword " + std::string(s));
        if (s == "delete" && prev != "=") report("delete", i, "the keyword delete");

        if (s == "[" && at(i + 1) == "[") {  // an attribute list
            for (std::size_t j = i + 2; j < t.size() && t[j].text != "]"; ++j) {
                const bool name = t[j].word && (at(j - 1) == "[" || at(j - 1) == ",") && at(j + 1) != "::";
                if (name && !is_msl_attribute(t[j].text)) report("attribute", j, "[[" + std::string(t[j].text) + "]] is not an MSL attribute");
                if (t[j].text == "(" && match[j] != std::string_view::npos) j = match[j];
            }
            if (match[i] != std::string_view::npos) i = match[i];
            continue;
        }
        // A `[` opens a lambda's capture list where it cannot subscript: after no operand.
        if (s == "[" && prev != "[") {
            const bool after_operand =
                i > 0 && ((t[i - 1].operand && !is_one_of(prev, {"return", "case"})) || prev == ")" || prev == "]");
            if (!after_operand) report("lambda", i, "a lambda expression");
        }

        // A function body: `name(...) [qualifiers] {`, name after a type, `*`, `&`, `>`, `::` or `~`.
        if (s == "{" && i > 0) {
            std::size_t close = i - 1;
            while (close > 0 && is_one_of(t[close].text, {"const", "noexcept", "thread", "device", "constant", "threadgroup"})) --close;
            if (t[close].text != ")" || match[close] == std::string_view::npos || match[close] == 0) continue;
            const std::size_t name = match[close] - 1;
            if (!t[name].word || is_one_of(t[name].text, {"if", "for", "while", "switch", "catch", "return", "sizeof", "alignof",
                                                          "decltype", "static_assert"}))
                continue;
            const std::string_view before = name > 0 ? t[name - 1].text : std::string_view();
            if (!(name > 0 && (t[name - 1].word || is_one_of(before, {"*", "&", ">", "::", "~"})))) continue;
            if (match[i] == std::string_view::npos) continue;
            for (std::size_t j = i + 1; j < match[i]; ++j)
                if (t[j].text == t[name].text && at(j + 1) == "(" && at(j - 1) != "." && at(j - 1) != "->")
                    report("recursion", j, std::string(t[name].text) + " calls itself");
        }
    }
    return out;
}

}  // namespace forge::test
