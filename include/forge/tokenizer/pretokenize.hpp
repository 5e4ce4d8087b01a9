#pragma once
// BPE pre-tokenizers: split text into the pieces that BPE then merges within, never across.
// Each family is the split that `tokenizer.ggml.pre` names, written as a hand-made Unicode-aware splitter
// equivalent to the family's regular expressions as llama.cpp applies them (std::regex cannot express \p{L}).
// Splitting works on code points and yields piece end offsets; a family is a chain of splitters, each
// refining the previous pieces: every match of a pattern is a piece, and so is each stretch between matches.
//
// Where llama.cpp runs a pattern through std::regex rather than a hand-written matcher, it first replaces
// every non-ASCII whitespace character by U+000B, so such a character matches \s and never a character
// class that lists it (the deepseek classes below take it out for that reason).
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"
#include "forge/tokenizer/unicode.hpp"

namespace forge::tokenizer {

enum class PreTokenizer {
    gpt2,            // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    llama3,          // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
                     //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    qwen2,           // as llama3, with \p{N} (one digit per piece) for \p{N}{1,3}
    qwen35,          // as qwen2, with [\p{L}\p{M}] for \p{L} and [^\s\p{L}\p{M}\p{N}] for [^\s\p{L}\p{N}]: combining
                     // marks join letter runs
    starcoder,       // \p{N} (every digit its own piece), then gpt2
    falcon,          // [\p{P}$+<=>^~|`]+, then gpt2, then [0-9]{3}
    deepseek_coder,  // [\r\n], then \s?\p{L}+, then \s?\p{P}+, then [一-龥ࠀ-一가-퟿]+, then \p{N}
    deepseek_llm,    // [\r\n], then \s?[cased letters]+, then \s?[!-/:-~！-／：-～‘-‟　-。]+, then \s+$, then
                     // [一-龥ࠀ-一가-퟿]+, then \p{N}+
    gemma4,          // [^\n]+|\n+: runs of newlines and the text between them (the BPE runs on raw UTF-8)
    standard,        // a BPE vocabulary that names no pre-tokenizer: [\p{P}$+<=>^~|]+, then gpt2, then \p{N}+, then [0-9]{3}
};

namespace detail {

// The `tokenizer.ggml.pre` values forge reads, each with the family llama.cpp gives it.
inline constexpr std::pair<std::string_view, PreTokenizer> kPreTokenizerNames[] = {
    {"default", PreTokenizer::standard},
    {"gpt-2", PreTokenizer::gpt2},
    {"gpt2", PreTokenizer::gpt2},
    {"mpt", PreTokenizer::gpt2},
    {"llama-bpe", PreTokenizer::llama3},
    {"llama3", PreTokenizer::llama3},
    {"llama-v3", PreTokenizer::llama3},
    {"qwen2", PreTokenizer::qwen2},
    {"deepseek-r1-qwen", PreTokenizer::qwen2},
    {"qwen35", PreTokenizer::qwen35},
    {"starcoder", PreTokenizer::starcoder},
    {"smollm", PreTokenizer::starcoder},
    {"refact", PreTokenizer::starcoder},
    {"command-r", PreTokenizer::starcoder},
    {"falcon", PreTokenizer::falcon},
    {"deepseek-coder", PreTokenizer::deepseek_coder},
    {"deepseek-llm", PreTokenizer::deepseek_llm},
    {"gemma4", PreTokenizer::gemma4},
};

}  // namespace detail

// The pre-tokenizer a `tokenizer.ggml.pre` value names (empty: none named).
inline PreTokenizer pre_tokenizer_from_name(std::string_view name) {
    if (name.empty()) return PreTokenizer::standard;
    std::string known;
    for (const auto& [n, pre] : detail::kPreTokenizerNames) {
        if (n == name) return pre;
        known.append(known.empty() ? "" : ", ").append(n);
    }
    throw Error("unsupported pre-tokenizer " + quoted_text(name) + " in tokenizer.ggml.pre (forge knows " + known + ")");
}

namespace detail {

// Splits cps[begin, end) and appends the end offset of each piece to `ends`.
using Splitter = void (*)(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends);
// The length of a pattern's match at cps[pos] within cps[.., end), or 0 for none.
using Matcher = std::size_t (*)(std::u32string_view cps, std::size_t pos, std::size_t end);

enum class Kind { letter, number, space, other };  // the three classes the patterns name, and the rest
inline Kind kind(char32_t cp) {
    if (is_whitespace(cp)) return Kind::space;
    switch (char_class(cp)) {
        case CharClass::letter: return Kind::letter;
        case CharClass::number: return Kind::number;
        default: return Kind::other;
    }
}

inline bool is_newline(char32_t cp) { return cp == '\r' || cp == '\n'; }

// Length of the contraction ('s 't 'm 'd 're 've 'll) at cps[pos] == '\'', or 0.
inline std::size_t contraction(std::u32string_view cps, std::size_t pos, std::size_t end, bool any_case) {
    auto at = [&](std::size_t i) -> char32_t {
        if (i >= end) return 0;
        const char32_t c = cps[i];
        return any_case && c >= 'A' && c <= 'Z' ? c + 32 : c;
    };
    const char32_t a = at(pos + 1), b = at(pos + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// The whitespace alternatives shared by both families, at a run of `n` spaces starting at `pos`:
// \s+(?!\S) leaves the last space to prefix the word that follows; at the end of the text it takes all.
inline std::size_t space_run_end(std::size_t pos, std::size_t n, std::size_t end) {
    return n > 1 && pos + n < end ? pos + n - 1 : pos + n;
}

inline void split_gpt2(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends) {
    for (std::size_t pos = begin; pos < end;) {
        if (cps[pos] == '\'') {
            if (const std::size_t n = contraction(cps, pos, end, false)) {
                ends.push_back(pos += n);
                continue;
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one kind.
        const std::size_t body = cps[pos] == ' ' && pos + 1 < end ? pos + 1 : pos;
        if (const Kind k = kind(cps[body]); k != Kind::space) {
            pos = body;
            while (pos < end && kind(cps[pos]) == k) ++pos;
            ends.push_back(pos);
            continue;
        }
        std::size_t n = 0;
        while (pos + n < end && is_whitespace(cps[pos + n])) ++n;
        ends.push_back(pos = space_run_end(pos, n, end));
    }
}

// llama3 and its descendants. `max_digits` bounds \p{N}{1,max}; with `marks`, combining marks count as
// letters ([\p{L}\p{M}]) and so are never part of a punctuation run.
inline void split_llama3_family(std::u32string_view cps, std::size_t begin, std::size_t end,
                                std::vector<std::size_t>& ends, std::size_t max_digits, bool marks) {
    auto wordy = [&](char32_t c) {
        const CharClass cc = char_class(c);
        return cc == CharClass::letter || (marks && cc == CharClass::mark);
    };
    auto other = [&](char32_t c) { return kind(c) == Kind::other && !wordy(c); };
    for (std::size_t pos = begin; pos < end;) {
        const char32_t c = cps[pos];
        if (c == '\'') {
            if (const std::size_t n = contraction(cps, pos, end, true)) {
                ends.push_back(pos += n);
                continue;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!is_newline(c) && !is_number(c) && (wordy(c) || (pos + 1 < end && wordy(cps[pos + 1])))) {
            ++pos;
            while (pos < end && wordy(cps[pos])) ++pos;
            ends.push_back(pos);
            continue;
        }
        // \p{N}{1,max_digits}
        if (is_number(c)) {
            const std::size_t start = pos;
            while (pos < end && pos - start < max_digits && is_number(cps[pos])) ++pos;
            ends.push_back(pos);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        const std::size_t body = c == ' ' && pos + 1 < end ? pos + 1 : pos;
        if (other(cps[body])) {
            pos = body;
            while (pos < end && other(cps[pos])) ++pos;
            while (pos < end && is_newline(cps[pos])) ++pos;
            ends.push_back(pos);
            continue;
        }
        // \s*[\r\n]+ (up to the run's last newline), else \s+(?!\S), else \s+
        std::size_t n = 0, newline_end = 0;
        for (; pos + n < end && is_whitespace(cps[pos + n]); ++n)
            if (is_newline(cps[pos + n])) newline_end = pos + n + 1;
        ends.push_back(pos = newline_end ? newline_end : space_run_end(pos, n, end));
    }
}

inline void split_llama3(std::u32string_view cps, std::size_t b, std::size_t e, std::vector<std::size_t>& ends) {
    split_llama3_family(cps, b, e, ends, 3, false);
}
inline void split_qwen2(std::u32string_view cps, std::size_t b, std::size_t e, std::vector<std::size_t>& ends) {
    split_llama3_family(cps, b, e, ends, 1, false);
}
inline void split_qwen35(std::u32string_view cps, std::size_t b, std::size_t e, std::vector<std::size_t>& ends) {
    split_llama3_family(cps, b, e, ends, 1, true);
}

// A pattern searched for left to right: each leftmost match is a piece, and so is each stretch between matches.
template <Matcher match>
void split_matches(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends) {
    std::size_t gap = begin;
    for (std::size_t pos = begin; pos < end;) {
        const std::size_t n = match(cps, pos, end);
        if (n == 0) {
            ++pos;
            continue;
        }
        if (gap < pos) ends.push_back(pos);
        ends.push_back(gap = pos += n);
    }
    if (gap < end) ends.push_back(end);
}

// X{min,max} for a single class X.
template <bool (*in_class)(char32_t), std::size_t min, std::size_t max>
std::size_t class_run(std::u32string_view cps, std::size_t pos, std::size_t end) {
    std::size_t n = 0;
    while (pos + n < end && n < max && in_class(cps[pos + n])) ++n;
    return n < min ? 0 : n;
}

// \s?X+: a run of class X, with the whitespace character just before it.
template <bool (*in_class)(char32_t)>
std::size_t spaced_run(std::u32string_view cps, std::size_t pos, std::size_t end) {
    const std::size_t body = is_whitespace(cps[pos]) ? pos + 1 : pos;
    const std::size_t n = class_run<in_class, 1, ~std::size_t(0)>(cps, body, end);
    return n ? body - pos + n : 0;
}

// [^\n]+|\n+
inline void split_newline_runs(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends) {
    for (std::size_t pos = begin; pos < end;) {
        const bool newline = cps[pos] == '\n';
        while (pos < end && (cps[pos] == '\n') == newline) ++pos;
        ends.push_back(pos);
    }
}

// \s+$: the whitespace that ends the piece, if the piece is not all whitespace.
inline void split_trailing_space(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends) {
    std::size_t start = end;
    while (start > begin && is_whitespace(cps[start - 1])) --start;
    if (start > begin && start < end) ends.push_back(start);
    ends.push_back(end);
}

inline bool in_ranges(char32_t cp, std::initializer_list<std::pair<char32_t, char32_t>> ranges) {
    for (const auto& [first, last] : ranges)
        if (cp >= first && cp <= last) return true;
    return false;
}

inline bool is_standard_punctuation(char32_t cp) {
    return is_punctuation(cp) || cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' ||
           cp == '~' || cp == '|';
}
inline bool is_falcon_punctuation(char32_t cp) { return is_standard_punctuation(cp) || cp == '`'; }
inline bool is_ascii_digit(char32_t cp) { return cp >= '0' && cp <= '9'; }

// [一-龥ࠀ-一가-퟿]: U+0800..U+9FA5 and U+AC00..U+D7FF, whitespace aside.
inline bool is_deepseek_cjk(char32_t cp) {
    return !is_whitespace(cp) && ((cp >= 0x0800 && cp <= 0x9FA5) || (cp >= 0xAC00 && cp <= 0xD7FF));
}

// deepseek-llm's letters: a list of cased-letter ranges (not all of them: no Armenian lower case, for one).
inline bool is_deepseek_letter(char32_t cp) {
    static constexpr std::pair<char32_t, char32_t> kRanges[] = {
        {0x0041, 0x005A},   {0x0061, 0x007A},   {0x00B5, 0x00B5},   {0x00C0, 0x00D6},   {0x00D8, 0x00F6},   {0x00F8, 0x01BA},
        {0x01BC, 0x01BF},   {0x01C4, 0x0293},   {0x0295, 0x02AF},   {0x0370, 0x0373},   {0x0376, 0x0377},   {0x037B, 0x037D},
        {0x037F, 0x037F},   {0x0386, 0x0386},   {0x0388, 0x038A},   {0x038C, 0x038C},   {0x038E, 0x03A1},   {0x03A3, 0x03F5},
        {0x03F7, 0x0481},   {0x048A, 0x052F},   {0x0531, 0x0556},   {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
        {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
        {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
        {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},   {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},
        {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
        {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},
        {0x2126, 0x2126},   {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
        {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},
        {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
        {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F},
        {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
    };
    // Sorted and disjoint: the last range starting at or before cp is the only candidate.
    std::size_t lo = 0, hi = std::size(kRanges);
    while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        if (kRanges[mid].first <= cp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo > 0 && cp <= kRanges[lo - 1].second;
}

// [!-/:-~！-／：-～‘-‟　-。]: ASCII punctuation and letters past '9', their full-width forms, curly quotes, and
// U+3001..U+3002 (U+3000 is whitespace).
inline bool is_deepseek_punctuation(char32_t cp) {
    return !is_whitespace(cp) && in_ranges(cp, {{0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
                                                {0x2018, 0x201F}, {0x3000, 0x3002}});
}

inline constexpr std::size_t kUnbounded = ~std::size_t(0);

inline std::vector<std::size_t> run_splitters(std::u32string_view cps, std::initializer_list<Splitter> chain) {
    std::vector<std::size_t> ends, next;
    if (!cps.empty()) ends.push_back(cps.size());
    for (const Splitter split : chain) {
        next.clear();
        std::size_t begin = 0;
        for (const std::size_t end : ends) {
            split(cps, begin, end, next);
            begin = end;
        }
        ends.swap(next);
    }
    return ends;
}

}  // namespace detail

// Splits `cps` into pre-tokens; returns the end offset (in code points) of each, in order.
inline std::vector<std::size_t> pre_tokenize(PreTokenizer pre, std::u32string_view cps) {
    using namespace detail;
    switch (pre) {
        case PreTokenizer::gpt2: return run_splitters(cps, {split_gpt2});
        case PreTokenizer::llama3: return run_splitters(cps, {split_llama3});
        case PreTokenizer::qwen2: return run_splitters(cps, {split_qwen2});
        case PreTokenizer::qwen35: return run_splitters(cps, {split_qwen35});
        case PreTokenizer::starcoder: return run_splitters(cps, {split_matches<class_run<is_number, 1, 1>>, split_gpt2});
        case PreTokenizer::falcon:
            return run_splitters(cps, {split_matches<class_run<is_falcon_punctuation, 1, kUnbounded>>, split_gpt2,
                                       split_matches<class_run<is_ascii_digit, 3, 3>>});
        case PreTokenizer::deepseek_coder:
            return run_splitters(cps, {split_matches<class_run<is_newline, 1, 1>>, split_matches<spaced_run<is_letter>>,
                                       split_matches<spaced_run<is_punctuation>>,
                                       split_matches<class_run<is_deepseek_cjk, 1, kUnbounded>>,
                                       split_matches<class_run<is_number, 1, 1>>});
        case PreTokenizer::deepseek_llm:
            return run_splitters(cps, {split_matches<class_run<is_newline, 1, 1>>, split_matches<spaced_run<is_deepseek_letter>>,
                                       split_matches<spaced_run<is_deepseek_punctuation>>, split_trailing_space,
                                       split_matches<class_run<is_deepseek_cjk, 1, kUnbounded>>,
                                       split_matches<class_run<is_number, 1, kUnbounded>>});
        case PreTokenizer::gemma4: return run_splitters(cps, {split_newline_runs});
        case PreTokenizer::standard:
            return run_splitters(cps, {split_matches<class_run<is_standard_punctuation, 1, kUnbounded>>, split_gpt2,
                                       split_matches<class_run<is_number, 1, kUnbounded>>,
                                       split_matches<class_run<is_ascii_digit, 3, 3>>});
    }
    throw Error("unknown pre-tokenizer");
}

}  // namespace forge::tokenizer
