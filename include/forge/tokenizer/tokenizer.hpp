#pragma once
// forge::Tokenizer: text <-> token ids for a model, from its GGUF vocabulary alone. SentencePiece
// (`tokenizer.ggml.model` = llama), byte-level BPE (gpt2) and Gemma 4's BPE (gemma4) vocabularies encode
// exactly as llama.cpp does; special tokens written in the text (e.g. <|im_start|>) become their ids when
// asked to. StreamDecoder turns ids into text as they are generated, never cutting a UTF-8 character in two.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/tokenizer/bpe.hpp"
#include "forge/tokenizer/spm.hpp"
#include "forge/tokenizer/unicode.hpp"
#include "forge/tokenizer/vocab.hpp"

namespace forge {

class Tokenizer {
public:
    explicit Tokenizer(tokenizer::Vocab vocab) : vocab_(std::move(vocab)) {
        using tokenizer::TokenType;
        for (std::int32_t id = 0; id < vocab_.size(); ++id) {
            const TokenType t = vocab_.type(id);
            if ((t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) && !vocab_.text(id).empty())
                specials_.push_back(id);
        }
        // Longest first, so a special token that contains another is found whole.
        std::stable_sort(specials_.begin(), specials_.end(),
                         [&](std::int32_t a, std::int32_t b) { return vocab_.text(a).size() > vocab_.text(b).size(); });
    }

    static Tokenizer from_gguf(const gguf::File& file) { return Tokenizer(tokenizer::Vocab::from_gguf(file)); }
    // Reads the vocabulary of the GGUF file at `path`; errors name the file.
    static Tokenizer open(const std::string& path) {
        const gguf::File file = gguf::File::open(path);
        try {
            return from_gguf(file);
        } catch (const Error& e) {
            throw Error(path + ": " + e.what());
        }
    }

    // Token ids for `text` (UTF-8; invalid input is a forge::Error naming the byte offset), after BOS when
    // `add_bos`. Control tokens written in the text (<s>, <|im_start|>, ...) become their ids only when
    // `parse_special`; user-defined tokens always do.
    std::vector<std::int32_t> encode(std::string_view text, bool add_bos, bool parse_special = false) const {
        check_utf8(text);
        std::vector<std::int32_t> out;
        if (add_bos) {
            if (bos() == tokenizer::kNoToken) throw Error("cannot add BOS: the vocabulary has no BOS token");
            out.push_back(bos());
        }
        const tokenizer::VocabOptions& opt = vocab_.options();
        const bool spm = opt.model == tokenizer::Model::spm;
        bool after_special = true;  // SentencePiece treats the start of the text like the point after a special token
        std::string escaped;
        for (const Fragment& f : split_special(text, parse_special)) {
            if (f.token != tokenizer::kNoToken) {
                out.push_back(f.token);
                after_special = true;
                continue;
            }
            const std::string_view part = text.substr(f.begin, f.length);
            if (!opt.escapes_spaces()) {
                tokenizer::bpe_encode(vocab_, part, out);
                continue;
            }
            escaped.clear();
            if (spm && opt.add_space_prefix && after_special) escaped += kSpaceMark;
            for (const char c : part) {
                if (c == ' ') {
                    escaped += kSpaceMark;
                } else {
                    escaped += c;
                }
            }
            if (spm) {
                tokenizer::spm_encode(vocab_, escaped, out);
            } else {
                tokenizer::bpe_encode(vocab_, escaped, out);
            }
            after_special = false;
        }
        return out;
    }

    // The bytes token `id` stands for (not necessarily whole UTF-8 characters). Control and unknown tokens
    // are empty unless `special`, which writes their text.
    std::string decode(std::int32_t id, bool special = false) const {
        using tokenizer::TokenType;
        const std::string& text = vocab_.text(id);
        switch (vocab_.type(id)) {
            case TokenType::control:
            case TokenType::unknown: return special ? text : std::string();
            case TokenType::user_defined: return text;
            case TokenType::byte: return std::string(1, char(*tokenizer::byte_token_value(text)));
            case TokenType::normal: return vocab_.options().escapes_spaces() ? unescape_spaces(text) : bytes_of(text);
            default: return std::string();  // unused and undefined tokens have no text
        }
    }

    // The text of `ids`. For vocabularies that escape spaces (SentencePiece, Gemma 4) every U+2581 becomes
    // the space it encodes (also when byte tokens spell it), and the space prefix added when encoding is
    // dropped, so decode(encode(text)) == text.
    std::string decode(std::span<const std::int32_t> ids, bool special = false) const {
        std::string bytes, out;
        for (const std::int32_t id : ids) bytes += decode(id, special);
        bool at_start = true;
        render(bytes, true, false, at_start, out);
        return out;
    }

    std::int32_t bos() const { return vocab_.special().bos; }
    std::int32_t eos() const { return vocab_.special().eos; }
    bool add_bos() const { return vocab_.options().add_bos; }  // whether the model's prompts start with BOS
    bool is_eog(std::int32_t id) const { return vocab_.is_eog(id); }
    const std::string& token_text(std::int32_t id) const { return vocab_.text(id); }
    std::int32_t vocab_size() const { return vocab_.size(); }
    const tokenizer::Vocab& vocab() const { return vocab_; }

private:
    friend class StreamDecoder;
    static constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, the visible space of SentencePiece and Gemma 4

    struct Fragment {
        std::int32_t token;  // kNoToken: the text [begin, begin + length)
        std::size_t begin, length;
    };

    static bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

    // Cuts special tokens out of `text`, longest tokens first, each one's occurrences left to right.
    std::vector<Fragment> split_special(std::string_view text, bool parse_special) const {
        std::vector<Fragment> frags, next;
        if (!text.empty()) frags.push_back({tokenizer::kNoToken, 0, text.size()});
        for (const std::int32_t id : specials_) {
            if (!parse_special && vocab_.type(id) != tokenizer::TokenType::user_defined) continue;
            const std::string& s = vocab_.text(id);
            next.clear();
            for (const Fragment& f : frags) {
                if (f.token != tokenizer::kNoToken) {
                    next.push_back(f);
                    continue;
                }
                const std::string_view window = text.substr(0, f.begin + f.length);
                const bool strip = vocab_.strips_space_after(id);
                std::size_t pos = f.begin;
                for (std::size_t m; (m = window.find(s, pos)) != std::string_view::npos;) {
                    if (m > pos) next.push_back({tokenizer::kNoToken, pos, m - pos});
                    next.push_back({id, m, s.size()});
                    pos = m + s.size();
                    while (strip && pos < window.size() && is_ascii_space(window[pos])) ++pos;
                }
                if (pos < window.size()) next.push_back({tokenizer::kNoToken, pos, window.size() - pos});
            }
            frags.swap(next);
        }
        return frags;
    }

    // Appends the text of `bytes` to `out`, one character at a time: U+2581 as a space where spaces are escaped,
    // and, while `at_start`, without the space prefix. Unless `final`, stops before a character that the
    // bytes end inside of; returns the bytes consumed. Invalid bytes are copied, or with `replace_invalid`
    // written as U+FFFD.
    std::size_t render(std::string_view bytes, bool final, bool replace_invalid, bool& at_start, std::string& out) const {
        const bool escapes_spaces = vocab_.options().escapes_spaces();
        std::size_t pos = 0;
        while (pos < bytes.size()) {
            const Utf8Step step = utf8_step(bytes, pos);
            if (step.status == Utf8Step::incomplete && !final) break;
            if (step.status != Utf8Step::ok) {
                out.append(replace_invalid ? std::string_view("\xEF\xBF\xBD") : bytes.substr(pos, step.length));
            } else if (escapes_spaces && step.cp == 0x2581) {
                if (!(at_start && vocab_.options().add_space_prefix)) out += ' ';
            } else if (!(at_start && step.cp == ' ' && vocab_.options().add_space_prefix)) {
                out.append(bytes.substr(pos, step.length));
            }
            at_start = false;
            pos += step.length;
        }
        return pos;
    }

    static std::string unescape_spaces(std::string_view text) {
        std::string out;
        for (std::size_t pos = 0; pos < text.size();) {
            if (text.substr(pos, kSpaceMark.size()) == kSpaceMark) {
                out += ' ';
                pos += kSpaceMark.size();
            } else {
                out += text[pos++];
            }
        }
        return out;
    }

    // The bytes a byte-level BPE token's GPT-2 alphabet text stands for; anything outside the alphabet is
    // kept as it is.
    static std::string bytes_of(std::string_view text) {
        std::string out;
        for (std::size_t pos = 0; pos < text.size();) {
            const Utf8Step step = utf8_step(text, pos);
            const int byte = step.status == Utf8Step::ok ? tokenizer::char_to_byte(step.cp) : -1;
            if (byte >= 0) {
                out += char(byte);
            } else {
                out.append(text.substr(pos, step.length));
            }
            pos += step.length;
        }
        return out;
    }

    tokenizer::Vocab vocab_;
    std::vector<std::int32_t> specials_;  // control, user-defined and unknown tokens, longest text first
};

// Decodes generated ids into text as they arrive. Bytes that end inside a UTF-8 character are held back
// until the character is complete, so every returned string is valid UTF-8 and the pieces concatenate to
// the full decode; an invalid byte sequence comes out as U+FFFD.
class StreamDecoder {
public:
    // `at_text_start`: the ids begin a text (as for Tokenizer::decode) rather than continue one, so the
    // SentencePiece space prefix is dropped from the first piece.
    explicit StreamDecoder(const Tokenizer& tokenizer, bool at_text_start = false, bool special = false)
        : tokenizer_(&tokenizer), at_start_(at_text_start), special_(special) {}

    // The text that token `id` completes (possibly empty).
    std::string push(std::int32_t id) {
        pending_ += tokenizer_->decode(id, special_);
        return take(false);
    }

    // Whatever is still held back; an unfinished character becomes U+FFFD.
    std::string flush() { return take(true); }

private:
    std::string take(bool final) {
        std::string out;
        pending_.erase(0, tokenizer_->render(pending_, final, true, at_start_, out));
        return out;
    }

    const Tokenizer* tokenizer_;
    std::string pending_;
    bool at_start_;
    bool special_;
};

}  // namespace forge
