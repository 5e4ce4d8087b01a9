#pragma once
// Fixed-capacity strings built at compile time: the MSL library text is assembled from literals and
// formatted model constants by `constexpr` code, so the exact text Metal receives is a constant of the
// program that static_asserts can inspect. Every piece is copied once (concat takes all pieces at once),
// which keeps the evaluation far inside the compilers' constexpr step limits.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace forge::metal_src {

template <std::size_t N>
struct FixedString {
    std::array<char, N + 1> chars{};  // NUL-terminated so it can be handed to C APIs as is
    std::size_t len = 0;

    constexpr std::string_view view() const { return {chars.data(), len}; }
    constexpr const char* c_str() const { return chars.data(); }
    constexpr std::size_t size() const { return len; }
};

// A string literal wrapped so it can be a template argument.
template <std::size_t N>
struct Lit {
    char chars[N]{};
    constexpr Lit(const char (&s)[N]) {
        for (std::size_t i = 0; i < N; ++i) chars[i] = s[i];
    }
    constexpr std::string_view view() const { return {chars, N - 1}; }
};

constexpr std::string_view as_view(std::string_view s) { return s; }
template <std::size_t N>
constexpr std::string_view as_view(const FixedString<N>& s) {
    return s.view();
}

// All pieces concatenated into one string of capacity `Cap` (a compile error if they do not fit).
template <std::size_t Cap, class... P>
constexpr FixedString<Cap> concat(const P&... pieces) {
    FixedString<Cap> out;
    const auto add = [&](std::string_view s) {
        if (out.len + s.size() > Cap) throw "forge::metal_src::concat: capacity exceeded";
        for (char c : s) out.chars[out.len++] = c;
    };
    (add(as_view(pieces)), ...);
    out.chars[out.len] = '\0';
    return out;
}

// Decimal text of an integer.
constexpr FixedString<24> format_int(long long v) {
    FixedString<24> out;
    char tmp[24]{};
    int n = 0;
    const bool neg = v < 0;
    unsigned long long u = neg ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    do {
        tmp[n++] = char('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg) out.chars[out.len++] = '-';
    while (n) out.chars[out.len++] = tmp[--n];
    return out;
}

// A float as an MSL literal that reads back to the same float: 9 significant digits in scientific
// notation with an `f` suffix (e.g. 1.00000000e+04f). Finite values only.
constexpr FixedString<24> format_float(float f) {
    if (!(f == f) || f > 3.4028235e38f || f < -3.4028235e38f) throw "forge::metal_src::format_float: not finite";
    FixedString<24> out;
    if (f < 0) {
        out.chars[out.len++] = '-';
        f = -f;
    }
    int exp10 = 0;
    double d = f;
    if (d != 0.0) {
        while (d >= 10.0) d /= 10.0, ++exp10;
        while (d < 1.0) d *= 10.0, --exp10;
    }
    // 9 significant digits, rounded half up; a carry to 10.0 shifts the exponent.
    auto digits = static_cast<unsigned long long>(d * 1e8 + 0.5);
    if (digits >= 1000000000ull) digits /= 10, ++exp10;
    char ds[9]{};
    for (int i = 8; i >= 0; --i) ds[i] = char('0' + digits % 10), digits /= 10;
    out.chars[out.len++] = ds[0];
    out.chars[out.len++] = '.';
    for (int i = 1; i < 9; ++i) out.chars[out.len++] = ds[i];
    out.chars[out.len++] = 'e';
    out.chars[out.len++] = exp10 < 0 ? '-' : '+';
    const int e = exp10 < 0 ? -exp10 : exp10;
    out.chars[out.len++] = char('0' + e / 10);
    out.chars[out.len++] = char('0' + e % 10);
    out.chars[out.len++] = 'f';
    out.chars[out.len] = '\0';
    return out;
}

// Index-based searching and comparison for constant evaluation. (std::string_view::find compares
// pointers with null, which GCC's UBSan instrumentation makes non-constant.) text_find indexes raw
// pointers, not string_view's operator[]: clang counts every call against its constant-evaluation step
// limit, and a library's text, tens of kilobytes, is searched whole.
constexpr bool text_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

constexpr std::size_t text_find(std::string_view hay, std::string_view needle, std::size_t from = 0) {
    const char* h = hay.data();
    const char* n = needle.data();
    const std::size_t hs = hay.size(), ns = needle.size();
    if (ns > hs) return std::string_view::npos;
    if (ns == 0) return from <= hs ? from : std::string_view::npos;
    for (std::size_t i = from; i + ns <= hs; ++i) {
        if (h[i] != n[0]) continue;
        std::size_t k = 1;
        while (k < ns && h[i + k] == n[k]) ++k;
        if (k == ns) return i;
    }
    return std::string_view::npos;
}

}  // namespace forge::metal_src
