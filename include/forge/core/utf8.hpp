#pragma once
// Strict UTF-8: decoding one character at a time (rejecting overlong forms, surrogates and code points
// past U+10FFFF), validation with the byte offset of the first fault, and encoding. Text from users,
// files and the network all passes through here.
#include <cstddef>
#include <string>
#include <string_view>

#include "forge/core/error.hpp"

namespace forge {

// One step of UTF-8 decoding at `pos`: a complete character, a valid prefix cut off by the end of the
// input, or an invalid sequence. `length` is the bytes the step covers: the character's, the prefix's, or
// the invalid sequence's maximal valid prefix (at least 1), so a caller can skip exactly that much.
struct Utf8Step {
    enum Status { ok, incomplete, invalid } status = ok;
    std::size_t length = 0;
    char32_t cp = 0;
};

inline Utf8Step utf8_step(std::string_view s, std::size_t pos) {
    const auto b0 = static_cast<unsigned char>(s[pos]);
    if (b0 < 0x80) return {Utf8Step::ok, 1, b0};
    std::size_t need;
    char32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte, which rules out overlong forms,
                                         // surrogates and code points past U+10FFFF
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3, cp = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4, cp = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return {Utf8Step::invalid, 1, 0};
    }
    for (std::size_t i = 1; i < need; ++i) {
        if (pos + i >= s.size()) return {Utf8Step::incomplete, i, 0};
        const auto b = static_cast<unsigned char>(s[pos + i]);
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return {Utf8Step::invalid, i, 0};
        cp = (cp << 6) | (b & 0x3F);
    }
    return {Utf8Step::ok, need, cp};
}

// Throws the forge::Error for the bad UTF-8 `step` found at byte `pos` of a text.
[[noreturn]] inline void throw_invalid_utf8(std::size_t pos, const Utf8Step& step) {
    throw Error("invalid UTF-8 at byte offset " + std::to_string(pos) +
                (step.status == Utf8Step::incomplete ? ": the text ends inside a multi-byte character" : ": malformed byte sequence"));
}

// Checks that `text` is valid UTF-8; otherwise a forge::Error names the byte offset.
inline void check_utf8(std::string_view text) {
    for (std::size_t pos = 0; pos < text.size();) {
        const Utf8Step step = utf8_step(text, pos);
        if (step.status != Utf8Step::ok) throw_invalid_utf8(pos, step);
        pos += step.length;
    }
}

// Decodes `text`, which must be valid UTF-8 (as check_utf8 reports).
inline std::u32string decode_utf8(std::string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (std::size_t pos = 0; pos < text.size();) {
        const Utf8Step step = utf8_step(text, pos);
        if (step.status != Utf8Step::ok) throw_invalid_utf8(pos, step);
        out.push_back(step.cp);
        pos += step.length;
    }
    return out;
}

inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// `bytes` as valid UTF-8: each invalid or cut-off sequence becomes U+FFFD, as a display of raw bytes
// (a token that holds part of a character) must be valid text.
inline std::string valid_utf8(std::string_view bytes) {
    std::string out;
    for (std::size_t pos = 0; pos < bytes.size();) {
        const Utf8Step step = utf8_step(bytes, pos);
        if (step.status == Utf8Step::ok) out.append(bytes.substr(pos, step.length));
        else append_utf8(out, U'\uFFFD');
        pos += step.length;
    }
    return out;
}

}  // namespace forge
