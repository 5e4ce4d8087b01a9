#pragma once
// SentencePiece (BPE-mode) encoding as llama.cpp does it: merge the adjacent pair whose concatenation is the
// vocabulary's highest-scoring token, until none is, then emit each piece, or its bytes as <0xXX> tokens
// when the piece is a single character the vocabulary lacks.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forge/tokenizer/merge.hpp"
#include "forge/tokenizer/vocab.hpp"

namespace forge::tokenizer {

// Encodes `text`, valid UTF-8 whose spaces are already escaped as U+2581, appending the ids to `out`.
inline void spm_encode(const Vocab& vocab, std::string_view text, std::vector<std::int32_t>& out) {
    const auto symbols = detail::merge_pieces(text, [&](std::string_view, std::string_view, std::string_view merged) {
        const auto id = vocab.find(merged);
        return id ? std::optional<double>(vocab.score(*id)) : std::nullopt;
    });
    if (symbols.empty()) return;
    // Every merged piece is a token by construction, so only single characters can miss the vocabulary.
    // (llama.cpp's "resegment" looks such a piece up among the merges it made, which only ever recorded
    // pieces that are tokens, so it always ends in this byte fallback.)
    for (int i = 0; i != -1; i = symbols[std::size_t(i)].next) {
        const std::string_view piece = text.substr(symbols[std::size_t(i)].begin, symbols[std::size_t(i)].length);
        if (const auto id = vocab.find(piece)) {
            out.push_back(*id);
        } else {
            for (const char c : piece) out.push_back(byte_fallback_token(vocab, static_cast<unsigned char>(c)));
        }
    }
}

}  // namespace forge::tokenizer
