#pragma once
// Byte-level BPE pre-tokenizers: split text into the pieces that BPE then merges within, never across.
// Each family is the split that `tokenizer.ggml.pre` names, written as a hand-made Unicode-aware splitter
// equivalent to the family's regular expression (std::regex cannot express \p{L}). Splitting works on code
// points and yields piece end offsets; a family is a chain of splitters, each refining the previous pieces.
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"
#include "forge/tokenizer/unicode.hpp"

namespace forge::tokenizer {

enum class PreTokenizer {
    gpt2,       // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    llama3,     // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
                //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    qwen2,      // as llama3, with \p{N} (one digit per piece) for \p{N}{1,3}
    starcoder,  // \p{N} (every digit its own piece), then gpt2
    standard,   // a BPE vocabulary that names no pre-tokenizer: [\p{P}$+<=>^~|]+, then gpt2, then \p{N}+, then [0-9]{3}
};

// The pre-tokenizer a `tokenizer.ggml.pre` value names (empty: none named).
inline PreTokenizer pre_tokenizer_from_name(std::string_view name) {
    if (name.empty() || name == "default") return PreTokenizer::standard;
    if (name == "gpt-2" || name == "gpt2") return PreTokenizer::gpt2;
    if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return PreTokenizer::llama3;
    if (name == "qwen2" || name == "deepseek-r1-qwen") return PreTokenizer::qwen2;
    if (name == "starcoder" || name == "smollm" || name == "refact") return PreTokenizer::starcoder;
    throw Error("unsupported pre-tokenizer " + quoted_text(name) +
                " in tokenizer.ggml.pre (forge knows gpt-2, llama-bpe, qwen2, starcoder, smollm)");
}

namespace detail {

// Splits cps[begin, end) and appends the end offset of each piece to `ends`.
using Splitter = void (*)(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends);

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

inline void split_llama3_family(std::u32string_view cps, std::size_t begin, std::size_t end,
                                std::vector<std::size_t>& ends, std::size_t max_digits) {
    for (std::size_t pos = begin; pos < end;) {
        const char32_t c = cps[pos];
        const Kind k = kind(c);
        if (c == '\'') {
            if (const std::size_t n = contraction(cps, pos, end, true)) {
                ends.push_back(pos += n);
                continue;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!is_newline(c) && k != Kind::number && (k == Kind::letter || (pos + 1 < end && is_letter(cps[pos + 1])))) {
            ++pos;
            while (pos < end && is_letter(cps[pos])) ++pos;
            ends.push_back(pos);
            continue;
        }
        // \p{N}{1,max_digits}
        if (k == Kind::number) {
            const std::size_t start = pos;
            while (pos < end && pos - start < max_digits && is_number(cps[pos])) ++pos;
            ends.push_back(pos);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        const std::size_t body = c == ' ' && pos + 1 < end ? pos + 1 : pos;
        if (kind(cps[body]) == Kind::other) {
            pos = body;
            while (pos < end && kind(cps[pos]) == Kind::other) ++pos;
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
    split_llama3_family(cps, b, e, ends, 3);
}
inline void split_qwen2(std::u32string_view cps, std::size_t b, std::size_t e, std::vector<std::size_t>& ends) {
    split_llama3_family(cps, b, e, ends, 1);
}

// A single-class pattern X{min,max}: each leftmost match is a piece, and so is each stretch between matches.
template <bool (*in_class)(char32_t), std::size_t min, std::size_t max>
void split_class_runs(std::u32string_view cps, std::size_t begin, std::size_t end, std::vector<std::size_t>& ends) {
    std::size_t gap = begin;
    for (std::size_t pos = begin; pos < end;) {
        std::size_t n = 0;
        while (pos + n < end && n < max && in_class(cps[pos + n])) ++n;
        if (n < min) {
            ++pos;
            continue;
        }
        if (gap < pos) ends.push_back(pos);
        ends.push_back(gap = pos += n);
    }
    if (gap < end) ends.push_back(end);
}

inline bool is_standard_punctuation(char32_t cp) {
    return is_punctuation(cp) || cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' ||
           cp == '~' || cp == '|';
}
inline bool is_ascii_digit(char32_t cp) { return cp >= '0' && cp <= '9'; }

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
        case PreTokenizer::starcoder: return run_splitters(cps, {split_class_runs<is_number, 1, 1>, split_gpt2});
        case PreTokenizer::standard:
            return run_splitters(cps, {split_class_runs<is_standard_punctuation, 1, kUnbounded>, split_gpt2,
                                       split_class_runs<is_number, 1, kUnbounded>, split_class_runs<is_ascii_digit, 3, 3>});
    }
    throw Error("unknown pre-tokenizer");
}

}  // namespace forge::tokenizer
