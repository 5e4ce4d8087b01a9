#pragma once
// BPE encoding as llama.cpp does it: pre-tokenize, write each pre-token's bytes in the GPT-2 alphabet (for a
// byte-level vocabulary; Gemma 4's keeps the UTF-8 as it is), then within each pre-token apply the
// best-ranked merge (leftmost on ties) until none applies.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/tokenizer/merge.hpp"
#include "forge/tokenizer/pretokenize.hpp"
#include "forge/tokenizer/unicode.hpp"
#include "forge/tokenizer/vocab.hpp"

namespace forge::tokenizer {

namespace detail {

inline bool all_newlines(std::string_view word) { return word.find_first_not_of('\n') == std::string_view::npos; }

// Encodes one pre-token, given in the vocabulary's alphabet.
inline void bpe_encode_word(const Vocab& vocab, std::string_view word, std::vector<std::int32_t>& out, std::string& scratch) {
    // Gemma 4's newline runs are tokens of their own, whatever the merges would make of them.
    if (vocab.options().ignore_merges || (vocab.options().pre == PreTokenizer::gemma4 && all_newlines(word))) {
        if (const auto id = vocab.find(word)) {
            out.push_back(*id);
            return;
        }
    }
    // Lower ranks merge first; a rank is exact as a negated double.
    const auto symbols = merge_pieces(word, [&](std::string_view left, std::string_view right, std::string_view) {
        const std::int32_t rank = vocab.merge_rank(left, right, scratch);
        return rank >= 0 ? std::optional<double>(-double(rank)) : std::nullopt;
    });
    for (int i = 0; i != -1; i = symbols[std::size_t(i)].next) {
        const std::string_view piece = word.substr(symbols[std::size_t(i)].begin, symbols[std::size_t(i)].length);
        if (const auto id = vocab.find(piece)) {
            out.push_back(*id);
            continue;
        }
        // A merge whose result is not a token: one token per byte instead.
        if (!vocab.options().byte_level()) {
            for (const char c : piece) out.push_back(byte_fallback_token(vocab, static_cast<unsigned char>(c)));
            continue;
        }
        for (std::size_t pos = 0; pos < piece.size();) {
            const std::string_view ch = piece.substr(pos, utf8_step(piece, pos).length);
            if (const auto id = vocab.find(ch)) {
                out.push_back(*id);
            } else if (vocab.special().unk != kNoToken) {
                out.push_back(vocab.special().unk);
            } else {
                throw Error("the vocabulary has no token for the byte character '" + std::string(ch) + "' and no unknown token");
            }
            pos += ch.size();
        }
    }
}

}  // namespace detail

// Encodes `text` (valid UTF-8) with the vocabulary's pre-tokenizer and merges, appending the ids to `out`.
inline void bpe_encode(const Vocab& vocab, std::string_view text, std::vector<std::int32_t>& out) {
    const std::u32string cps = decode_utf8(text);
    std::string piece_bytes, word, scratch;
    std::size_t begin = 0;
    for (const std::size_t end : pre_tokenize(vocab.options().pre, cps)) {
        piece_bytes.clear();
        for (std::size_t i = begin; i < end; ++i) append_utf8(piece_bytes, cps[i]);
        if (vocab.options().byte_level()) {
            word.clear();
            for (const char c : piece_bytes) append_utf8(word, byte_to_char(static_cast<unsigned char>(c)));
            detail::bpe_encode_word(vocab, word, out, scratch);
        } else {
            detail::bpe_encode_word(vocab, piece_bytes, out, scratch);
        }
        begin = end;
    }
}

}  // namespace forge::tokenizer
