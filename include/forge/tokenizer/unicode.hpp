#pragma once
// The Unicode character classes the pre-tokenizers split on, and the GPT-2 byte <-> character mapping
// that byte-level BPE vocabularies are written in. UTF-8 itself is core/utf8.hpp.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "forge/core/error.hpp"
#include "forge/core/utf8.hpp"
#include "forge/tokenizer/unicode_tables.hpp"

namespace forge::tokenizer {

inline CharClass char_class(char32_t cp) {
    if (cp < 0x80) {  // ASCII is most text; spare it the binary search
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CharClass::letter;
        if (cp >= '0' && cp <= '9') return CharClass::number;
    }
    const std::uint32_t key = (std::uint32_t(cp) << 3) | 7u;
    const auto* it = std::upper_bound(std::begin(unicode_tables::kClassRanges), std::end(unicode_tables::kClassRanges), key);
    return static_cast<CharClass>(*(it - 1) & 7u);
}

inline bool is_letter(char32_t cp) { return char_class(cp) == CharClass::letter; }
inline bool is_number(char32_t cp) { return char_class(cp) == CharClass::number; }
inline bool is_punctuation(char32_t cp) { return char_class(cp) == CharClass::punctuation; }
inline bool is_mark(char32_t cp) { return char_class(cp) == CharClass::mark; }

inline bool is_whitespace(char32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
    return std::binary_search(std::begin(unicode_tables::kWhitespace), std::end(unicode_tables::kWhitespace), cp);
}

// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes are moved to
// U+0100 onwards in byte order, so every byte has a visible character and the vocabulary holds no raw bytes.
namespace detail {
constexpr bool byte_is_printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

constexpr std::array<char32_t, 256> make_byte_to_char() {
    std::array<char32_t, 256> table{};
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) table[b] = byte_is_printable(b) ? char32_t(b) : next++;
    return table;
}
inline constexpr std::array<char32_t, 256> kByteToChar = make_byte_to_char();
}  // namespace detail

inline char32_t byte_to_char(unsigned char b) { return detail::kByteToChar[b]; }

// The byte a GPT-2 alphabet character stands for, or -1 for a character outside the alphabet.
inline int char_to_byte(char32_t cp) {
    if (cp < 0x100) return detail::byte_is_printable(unsigned(cp)) ? int(cp) : -1;
    const auto it = std::find(detail::kByteToChar.begin(), detail::kByteToChar.end(), cp);
    return it == detail::kByteToChar.end() ? -1 : int(it - detail::kByteToChar.begin());
}

}  // namespace forge::tokenizer
