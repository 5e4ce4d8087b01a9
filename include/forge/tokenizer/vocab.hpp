#pragma once
// A tokenizer vocabulary as GGUF stores it under `tokenizer.ggml.*`: token texts, scores and types, the BPE
// merges, the special token ids and the encoding options. Everything is validated when it is built: a
// mismatched array length, an out-of-range id, a duplicate token or a malformed merge is a forge::Error
// naming the key and the entry.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/tokenizer/pretokenize.hpp"

namespace forge::tokenizer {

enum class TokenType : std::int32_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// tokenizer.ggml.model: "llama" (SentencePiece), or "gpt2" (BPE; byte-level unless the pre-tokenizer says
// otherwise) and "gemma4" (BPE over raw UTF-8).
enum class Model { spm, bpe };

inline constexpr std::int32_t kNoToken = -1;

// The byte a byte token's text "<0xXX>" stands for, or nullopt when the text is not of that form.
inline std::optional<unsigned char> byte_token_value(std::string_view text) {
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>' || hex(text[3]) < 0 || hex(text[4]) < 0) return std::nullopt;
    return static_cast<unsigned char>(hex(text[3]) * 16 + hex(text[4]));
}

struct SpecialTokens {
    std::int32_t bos = kNoToken, eos = kNoToken, unk = kNoToken, eot = kNoToken, eom = kNoToken, pad = kNoToken;
};

struct VocabOptions {
    Model model = Model::spm;
    PreTokenizer pre = PreTokenizer::gpt2;  // BPE only
    bool add_bos = true;                    // whether prompts start with BOS unless told otherwise
    bool add_space_prefix = true;           // SPM: text is encoded as if it began with a space
    bool ignore_merges = false;             // BPE: a pre-token that is itself a token is not merged
    bool strip_after_specials = false;      // whitespace after a special token in the text is dropped (Phi-3)

    // Token texts write a space as U+2581: SentencePiece, and Gemma 4's BPE.
    bool escapes_spaces() const { return model == Model::spm || pre == PreTokenizer::gemma4; }
    // BPE token texts spell bytes in the GPT-2 alphabet; otherwise they are UTF-8 with <0xXX> byte tokens.
    bool byte_level() const { return model == Model::bpe && pre != PreTokenizer::gemma4; }
};

class Vocab {
public:
    // Builds and validates a vocabulary. `scores` and `types` may be empty (all 0, all normal); otherwise
    // they and `tokens` must have the same length. Special ids must be kNoToken or in range.
    Vocab(std::vector<std::string> tokens, std::vector<float> scores, std::vector<TokenType> types,
          const std::vector<std::string>& merges, SpecialTokens special, VocabOptions options)
        : tokens_(std::move(tokens)), scores_(std::move(scores)), types_(std::move(types)), special_(special), options_(options) {
        const std::size_t n = tokens_.size();
        if (n == 0) throw Error("tokenizer.ggml.tokens is empty");
        if (n > std::size_t(INT32_MAX)) throw Error("tokenizer.ggml.tokens has too many entries");
        if (scores_.empty()) scores_.assign(n, 0.0f);
        if (types_.empty()) types_.assign(n, TokenType::normal);
        if (scores_.size() != n)
            throw Error("tokenizer.ggml.scores has " + std::to_string(scores_.size()) + " entries but tokenizer.ggml.tokens has " + std::to_string(n));
        if (types_.size() != n)
            throw Error("tokenizer.ggml.token_type has " + std::to_string(types_.size()) + " entries but tokenizer.ggml.tokens has " + std::to_string(n));
        for (std::size_t i = 0; i < n; ++i) {
            check_token_type(std::int64_t(types_[i]), i);
            if (types_[i] == TokenType::byte && !byte_token_value(tokens_[i]))
                throw Error("tokenizer.ggml.tokens[" + std::to_string(i) + "] = " + quoted_text(tokens_[i]) + " is a byte token but not of the form <0xXX>");
            if (tokens_[i].empty()) continue;  // nothing encodes to an empty token; keep it out of the lookup
            const auto [it, fresh] = ids_.emplace(tokens_[i], std::int32_t(i));
            if (!fresh)
                throw Error("tokenizer.ggml.tokens: " + quoted_text(tokens_[i]) + " appears twice, as ids " + std::to_string(it->second) +
                            " and " + std::to_string(i));
        }
        const std::pair<const char*, std::int32_t> ids[] = {{"bos", special_.bos}, {"eos", special_.eos}, {"unknown", special_.unk},
                                                            {"eot", special_.eot}, {"eom", special_.eom}, {"padding", special_.pad}};
        for (const auto& [name, id] : ids)
            if (id != kNoToken && (id < 0 || std::size_t(id) >= n))
                throw Error(std::string("tokenizer.ggml.") + name + "_token_id = " + std::to_string(id) + " is outside the vocabulary of " +
                            std::to_string(n) + " tokens");
        for (std::size_t rank = 0; rank < merges.size(); ++rank) {
            const std::string& m = merges[rank];
            const std::size_t space = m.find(' ', 1);  // from 1: a merge's left side may itself be a space
            if (space == std::string::npos || space + 1 == m.size())
                throw Error("tokenizer.ggml.merges[" + std::to_string(rank) + "] = " + quoted_text(m) + " is not two tokens separated by a space");
            merge_ranks_.emplace(m, std::int32_t(rank));  // a repeated merge keeps its first (best) rank
        }
        if (options_.model == Model::bpe && merges.empty()) throw Error("tokenizer.ggml.merges is missing or empty for a BPE vocabulary");
        mark_end_of_generation();
    }

    // Reads a vocabulary from a GGUF file's metadata, with the defaults GGUF writers rely on when a key is absent.
    static Vocab from_gguf(const gguf::File& f) {
        const auto model_name = f.get_string("tokenizer.ggml.model");
        if (!model_name) throw Error("metadata key 'tokenizer.ggml.model' is missing: the file has no tokenizer");
        VocabOptions opt;
        SpecialTokens sp;
        if (*model_name == "llama") {
            opt.model = Model::spm;
            sp.bos = 1, sp.eos = 2, sp.unk = 0;  // SentencePiece's fixed ids, used when the file names none
        } else if (*model_name == "gpt2" || *model_name == "gemma4") {
            opt.model = Model::bpe;
            // A gemma4 vocabulary has Gemma 4's pre-tokenizer whatever tokenizer.ggml.pre says.
            opt.pre = *model_name == "gemma4" ? PreTokenizer::gemma4
                                              : pre_tokenizer_from_name(f.get_string("tokenizer.ggml.pre").value_or(""));
            opt.add_space_prefix = false;
            opt.ignore_merges = opt.pre == PreTokenizer::llama3;
            opt.add_bos = opt.pre == PreTokenizer::llama3;
        } else {
            throw Error("unsupported tokenizer.ggml.model " + quoted_text(*model_name) + " (forge reads 'llama', 'gpt2' and 'gemma4')");
        }
        opt.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(opt.add_bos);
        // Gemma 4 prompts start with BOS even where a converter wrote add_bos_token = false (llama.cpp does the same).
        if (opt.pre == PreTokenizer::gemma4) opt.add_bos = true;
        opt.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(opt.add_space_prefix);
        // llama.cpp knows Phi-3 by its model name alone, and there drops the whitespace after special tokens.
        std::string name = f.get_string("general.name").value_or("");
        for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
        opt.strip_after_specials = name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;

        auto special_id = [&](const char* key, std::int32_t& id) {
            const gguf::Value* v = f.find(key);
            if (!v) return;
            const std::int64_t raw = integer(*v, key, "an integer");
            // Converters write "none" as -1, which an unsigned 32-bit field holds as all ones.
            if (raw == -1 || raw == 0xFFFFFFFF) {
                id = kNoToken;
            } else if (raw < 0 || raw > INT32_MAX) {
                throw Error(std::string(key) + " = " + std::to_string(raw) + " is not a token id");
            } else {
                id = std::int32_t(raw);
            }
        };
        special_id("tokenizer.ggml.bos_token_id", sp.bos);
        special_id("tokenizer.ggml.eos_token_id", sp.eos);
        special_id("tokenizer.ggml.unknown_token_id", sp.unk);
        special_id("tokenizer.ggml.eot_token_id", sp.eot);
        special_id("tokenizer.ggml.eom_token_id", sp.eom);
        special_id("tokenizer.ggml.padding_token_id", sp.pad);

        std::vector<std::string> tokens = string_array(f, "tokenizer.ggml.tokens");
        std::vector<float> scores;
        if (const gguf::Array* a = f.get_array("tokenizer.ggml.scores")) {
            scores.reserve(a->items.size());
            for (std::size_t i = 0; i < a->items.size(); ++i) {
                const auto* d = std::get_if<double>(&a->items[i].data);
                scores.push_back(d ? float(*d) : float(integer(a->items[i], "tokenizer.ggml.scores", "a number", i)));
            }
        }
        std::vector<TokenType> types;
        if (const gguf::Array* a = f.get_array("tokenizer.ggml.token_type")) {
            types.reserve(a->items.size());
            for (std::size_t i = 0; i < a->items.size(); ++i)
                types.push_back(check_token_type(integer(a->items[i], "tokenizer.ggml.token_type", "an integer", i), i));
        }
        return Vocab(std::move(tokens), std::move(scores), std::move(types),
                     opt.model == Model::bpe ? string_array(f, "tokenizer.ggml.merges") : std::vector<std::string>{}, sp, opt);
    }

    std::int32_t size() const { return std::int32_t(tokens_.size()); }
    bool contains(std::int32_t id) const { return id >= 0 && id < size(); }
    const std::string& text(std::int32_t id) const { return tokens_[checked(id)]; }
    float score(std::int32_t id) const { return scores_[checked(id)]; }
    TokenType type(std::int32_t id) const { return types_[checked(id)]; }
    const SpecialTokens& special() const { return special_; }
    const VocabOptions& options() const { return options_; }
    bool is_eog(std::int32_t id) const { return contains(id) && eog_[std::size_t(id)]; }

    // Whether the whitespace that follows special token `id` in a text is dropped: with strip_after_specials,
    // for every special token but <unk>, <s> and <|endoftext|>.
    bool strips_space_after(std::int32_t id) const {
        const std::string& t = text(id);
        return options_.strip_after_specials && t != "<unk>" && t != "<s>" && t != "<|endoftext|>";
    }

    // The id whose text is exactly `text`, if any.
    std::optional<std::int32_t> find(std::string_view text) const {
        const auto it = ids_.find(text);
        if (it == ids_.end()) return std::nullopt;
        return it->second;
    }

    // The rank of merging `left` and `right` (lower merges first), or -1 when they do not merge.
    // `key` is scratch space, so the hot loop does not allocate.
    std::int32_t merge_rank(std::string_view left, std::string_view right, std::string& key) const {
        key.assign(left).append(1, ' ').append(right);
        const auto it = merge_ranks_.find(std::string_view(key));
        return it == merge_ranks_.end() ? -1 : it->second;
    }

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using Map = std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>>;

    static TokenType check_token_type(std::int64_t t, std::size_t i) {
        if (t < 0 || t > 6)
            throw Error("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(t) + " is not a token type (0..6)");
        return static_cast<TokenType>(t);
    }

    // An integer metadata value of any width: `key`, or element `index` of the array `key`.
    static std::int64_t integer(const gguf::Value& v, std::string_view key, const char* expected, std::size_t index = std::string::npos) {
        if (const auto* i = std::get_if<std::int64_t>(&v.data)) return *i;
        const auto* u = std::get_if<std::uint64_t>(&v.data);
        if (u && *u <= std::uint64_t(INT64_MAX)) return std::int64_t(*u);
        const std::string name = std::string(key) + (index == std::string::npos ? "" : "[" + std::to_string(index) + "]");
        if (u) throw Error(name + " = " + std::to_string(*u) + " is out of range");
        throw Error(name + " holds " + std::string(gguf::value_type_name(v.type)) + ", expected " + expected);
    }

    std::size_t checked(std::int32_t id) const {
        if (!contains(id)) throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(size()) + " tokens");
        return std::size_t(id);
    }

    static std::vector<std::string> string_array(const gguf::File& f, const char* key) {
        const gguf::Array* a = f.get_array(key);
        if (!a) throw Error(std::string("metadata key '") + key + "' is missing");
        std::vector<std::string> out;
        out.reserve(a->items.size());
        for (std::size_t i = 0; i < a->items.size(); ++i) {
            const auto* s = std::get_if<std::string>(&a->items[i].data);
            if (!s) throw Error(std::string(key) + "[" + std::to_string(i) + "] is not a string");
            out.push_back(*s);
        }
        return out;
    }

    // End of generation: EOS, EOT, EOM, and the turn/document terminators chat vocabularies use, which
    // generation must stop at even when the file does not name them. They act as control tokens.
    void mark_end_of_generation() {
        eog_.assign(tokens_.size(), false);
        for (const std::int32_t id : {special_.eos, special_.eot, special_.eom})
            if (id != kNoToken) eog_[std::size_t(id)] = true;
        for (const char* text : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
                                 "<|end_of_text|>", "<turn|>"}) {
            if (const auto id = find(text)) {
                eog_[std::size_t(*id)] = true;
                types_[std::size_t(*id)] = TokenType::control;
            }
        }
    }

    std::vector<std::string> tokens_;
    std::vector<float> scores_;
    std::vector<TokenType> types_;
    std::vector<bool> eog_;
    Map ids_;
    Map merge_ranks_;
    SpecialTokens special_;
    VocabOptions options_;
};

// The token for a byte that no piece covers: <0xXX>, else the byte itself as a token, else the unknown token.
inline std::int32_t byte_fallback_token(const Vocab& vocab, unsigned char byte) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const char name[] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    if (const auto id = vocab.find(std::string_view(name, sizeof name))) return *id;
    if (const auto id = vocab.find(std::string_view(reinterpret_cast<const char*>(&byte), 1))) return *id;
    if (vocab.special().unk != kNoToken) return vocab.special().unk;
    throw Error("the vocabulary has no token for byte 0x" + std::string(name + 3, 2) + " and no unknown token");
}

}  // namespace forge::tokenizer
