#pragma once
// Jinja's lexer, configured as Hugging Face renders chat templates: trim_blocks (the newline after a
// block or comment tag is dropped), lstrip_blocks (spaces before a block or comment tag at the start of
// a line are dropped), one trailing newline of the template dropped, "\r\n" and "\r" read as "\n".
// `{%-`, `-%}` and their `{{`/`{#` forms strip all whitespace on that side; `{%+` keeps the line's
// indent. `{% raw %}` ... `{% endraw %}` is text.
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "forge/chat/jinja/limits.hpp"
#include "forge/core/error.hpp"

namespace forge::chat::jinja {

struct Token {
    enum Kind { data, block_begin, block_end, var_begin, var_end, name, integer, floating, string, op, eof };
    Kind kind;
    std::string text;    // text, name, literal (unescaped) or operator
    std::size_t offset;  // into the normalized source
};

// "line L:C" of a byte offset, for error messages.
inline std::string where(std::string_view src, std::size_t offset) {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < offset && i < src.size(); ++i) {
        if (src[i] == '\n') ++line, col = 1;
        else ++col;
    }
    return std::to_string(line) + ":" + std::to_string(col);
}

class Lexer {
public:
    // `src` must already be normalized (see normalize_source); it must outlive the lexer.
    explicit Lexer(std::string_view src) : src_(src) {}

    std::vector<Token> run() {
        while (pos_ < src_.size()) {
            const std::size_t open = find_tag(pos_);
            std::string text(src_.substr(pos_, open - pos_));
            if (open == src_.size()) {
                push_text(std::move(text), pos_);
                break;
            }
            const char kind = src_[open + 1];
            const char flag = open + 2 < src_.size() ? src_[open + 2] : '\0';
            if (flag == '-') rstrip(text);
            else if (kind != '{' && flag != '+') lstrip_line(text, pos_);
            push_text(std::move(text), pos_);
            pos_ = open + 2 + (flag == '-' || (flag == '+' && kind != '{'));
            if (kind == '#') comment(open);
            else tag(kind, open);
        }
        out_.push_back({Token::eof, "", src_.size()});
        return std::move(out_);
    }

    // "\r\n" and "\r" become "\n"; one trailing newline goes, as Jinja's keep_trailing_newline=False.
    static std::string normalize_source(std::string_view in) {
        if (in.size() > kMaxTemplateBytes)
            throw Error("jinja: template is " + std::to_string(in.size()) + " bytes, over the limit of " + std::to_string(kMaxTemplateBytes));
        std::string s;
        s.reserve(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] != '\r') s += in[i];
            else if (i + 1 >= in.size() || in[i + 1] != '\n') s += '\n';
        }
        if (!s.empty() && s.back() == '\n') s.pop_back();
        return s;
    }

private:
    [[noreturn]] void fail(const std::string& what, std::size_t at) const { throw Error("jinja: " + what + " at " + where(src_, at)); }

    std::size_t find_tag(std::size_t from) const {
        for (std::size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1))
            if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        return src_.size();
    }

    static bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
    static void rstrip(std::string& t) {
        while (!t.empty() && space(t.back())) t.pop_back();
    }

    // lstrip_blocks: drop the spaces and tabs between the start of the tag's line and the tag.
    void lstrip_line(std::string& t, std::size_t text_start) const {
        const std::size_t nl = t.rfind('\n');
        const std::size_t line = nl == std::string::npos ? 0 : nl + 1;
        if (line == 0 && !(text_start == 0 || src_[text_start - 1] == '\n')) return;
        for (std::size_t i = line; i < t.size(); ++i)
            if (t[i] != ' ' && t[i] != '\t') return;
        t.resize(line);
    }

    void push_text(std::string t, std::size_t at) {
        if (strip_next_) {
            std::size_t i = 0;
            while (i < t.size() && space(t[i])) ++i;
            t.erase(0, i);
            strip_next_ = false;
        }
        if (!t.empty()) out_.push_back({Token::data, std::move(t), at});
    }

    // After a block or comment tag: `-%}` strips what follows, else trim_blocks drops one newline.
    void after_tag_end(bool minus, bool block) {
        if (minus) strip_next_ = true;
        else if (block && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
    }

    void comment(std::size_t open) {
        const std::size_t close = src_.find("#}", pos_);
        if (close == std::string_view::npos) fail("comment not closed", open);
        const bool minus = close > pos_ && src_[close - 1] == '-';
        pos_ = close + 2;
        after_tag_end(minus, true);
    }

    void tag(char kind, std::size_t open) {
        const bool block = kind == '%';
        out_.push_back({block ? Token::block_begin : Token::var_begin, "", open});
        const std::size_t first = out_.size();
        int braces = 0;
        for (;;) {
            while (pos_ < src_.size() && space(src_[pos_])) ++pos_;
            if (pos_ >= src_.size()) fail(block ? "'{%' not closed" : "'{{' not closed", open);
            const char c = src_[pos_];
            const std::string_view rest = src_.substr(pos_);
            const std::string_view close = block ? "%}" : "}}";
            const bool minus_close = c == '-' && rest.substr(1, 2) == close;
            if (minus_close || (rest.substr(0, 2) == close && (block || braces == 0))) {
                out_.push_back({block ? Token::block_end : Token::var_end, "", pos_});
                pos_ += minus_close ? 3 : 2;
                after_tag_end(minus_close, block);
                if (block && out_.size() == first + 2 && out_[first].kind == Token::name && out_[first].text == "raw") raw(open);
                return;
            }
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                const std::size_t s = pos_;
                while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
                out_.push_back({Token::name, std::string(src_.substr(s, pos_ - s)), s});
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                number();
            } else if (c == '\'' || c == '"') {
                string_literal(c);
            } else {
                static constexpr std::string_view two[] = {"//", "**", "==", "!=", "<=", ">="};
                std::size_t n = 1;
                for (const auto t : two)
                    if (rest.substr(0, 2) == t) n = 2;
                if (n == 1 && std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos)
                    fail(std::string("unexpected character '") + c + "'", pos_);
                if (c == '{') ++braces;
                if (c == '}') --braces;
                out_.push_back({Token::op, std::string(rest.substr(0, n)), pos_});
                pos_ += n;
            }
        }
    }

    void number() {
        const std::size_t s = pos_;
        const auto digits = [&] {
            while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
        };
        digits();
        bool is_float = false;
        if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
            ++pos_;
            digits();
            is_float = true;
        }
        if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
            std::size_t e = pos_ + 1;
            if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
            if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
                pos_ = e;
                digits();
                is_float = true;
            }
        }
        std::string t;
        for (const char ch : src_.substr(s, pos_ - s))
            if (ch != '_') t += ch;
        out_.push_back({is_float ? Token::floating : Token::integer, std::move(t), s});
    }

    // Python's escapes; an unknown one stays as written, as Python keeps it.
    void string_literal(char quote) {
        const std::size_t s = pos_++;
        std::string v;
        for (;;) {
            if (pos_ >= src_.size()) fail("string not closed", s);
            const char c = src_[pos_++];
            if (c == quote) break;
            if (c != '\\') {
                v += c;
                continue;
            }
            if (pos_ >= src_.size()) fail("string not closed", s);
            const char e = src_[pos_++];
            switch (e) {
                case 'n': v += '\n'; break;
                case 't': v += '\t'; break;
                case 'r': v += '\r'; break;
                case 'b': v += '\b'; break;
                case 'f': v += '\f'; break;
                case 'v': v += '\v'; break;
                case '0': v += '\0'; break;
                case '\\': case '\'': case '"': v += e; break;
                case '\n': break;
                default: v += '\\', v += e;
            }
        }
        out_.push_back({Token::string, std::move(v), s});
    }

    // The text up to `{% endraw %}` is output as written.
    void raw(std::size_t open) {
        out_.resize(out_.size() - 3);  // the raw tag itself
        for (std::size_t at = src_.find("{%", pos_); at != std::string_view::npos; at = src_.find("{%", at + 2)) {
            std::size_t i = at + 2;
            const bool minus_before = i < src_.size() && src_[i] == '-';
            if (minus_before || (i < src_.size() && src_[i] == '+')) ++i;
            while (i < src_.size() && space(src_[i])) ++i;
            if (src_.substr(i, 6) != "endraw") continue;
            i += 6;
            while (i < src_.size() && space(src_[i])) ++i;
            const bool minus_after = src_.substr(i, 3) == "-%}";
            if (!minus_after && src_.substr(i, 2) != "%}") continue;
            std::string text(src_.substr(pos_, at - pos_));
            if (minus_before) rstrip(text);
            else if (src_[at + 2] != '+') lstrip_line(text, pos_);
            push_text(std::move(text), pos_);
            pos_ = i + (minus_after ? 3 : 2);
            after_tag_end(minus_after, true);
            return;
        }
        fail("'{% raw %}' without '{% endraw %}'", open);
    }

    std::string_view src_;
    std::size_t pos_ = 0;
    bool strip_next_ = false;
    std::vector<Token> out_;
};

}  // namespace forge::chat::jinja
