#pragma once
// Text from a file or a peer, made safe to print: a hostile name could otherwise move the cursor,
// rewrite the screen (ESC and C1 control sequences), fake extra lines of output or end a C string
// early (NUL). Valid UTF-8 stays as it is; control characters, DEL, C1 controls and bytes that are not
// UTF-8 become \xNN.
#include <cstddef>
#include <string>
#include <string_view>

namespace forge {

namespace detail {

// Length of the valid UTF-8 sequence at the start of `s` (0 if it is not one).
inline std::size_t utf8_sequence(std::string_view s) {
    const auto b0 = static_cast<unsigned char>(s[0]);
    const std::size_t n = b0 < 0x80 ? 1 : (b0 & 0xE0) == 0xC0 ? 2 : (b0 & 0xF0) == 0xE0 ? 3 : (b0 & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || n > s.size()) return 0;
    char32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
    for (std::size_t i = 1; i < n; ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;  // overlong, too large, surrogate
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return 0;                           // C0, DEL, C1 controls
    return n;
}

}  // namespace detail

inline std::string printable(std::string_view s) {
    constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    while (!s.empty()) {
        if (const std::size_t n = detail::utf8_sequence(s)) {
            out.append(s.substr(0, n));
            s.remove_prefix(n);
            continue;
        }
        // An escaped byte: every byte of a control character's encoding, or one stray byte.
        const auto b = static_cast<unsigned char>(s[0]);
        const std::size_t n = b == 0xC2 && s.size() > 1 ? 2 : 1;  // C1 controls are C2 80..C2 9F
        for (std::size_t i = 0; i < n; ++i) {
            const auto x = static_cast<unsigned char>(s[i]);
            out += "\\x";
            out += kHex[x >> 4];
            out += kHex[x & 15];
        }
        s.remove_prefix(n);
    }
    return out;
}

// A name from a file as messages show it: printable, in single quotes, cut after `max_bytes` so a
// hostile name cannot bury what the message says after it.
inline std::string quoted_text(std::string_view s, std::size_t max_bytes = 80) {
    std::string out(1, '\'');
    out += printable(s.substr(0, max_bytes));
    out += s.size() > max_bytes ? "'..." : "'";
    return out;
}

}  // namespace forge
