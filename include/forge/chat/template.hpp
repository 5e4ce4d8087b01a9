#pragma once
// Chat prompts (forge::chat). A GGUF file carries its chat format as a Jinja template (`tokenizer.chat_template`);
// forge does not run Jinja but recognises the five common families from the template's text and renders
// them itself: ChatML, Llama-2, Llama-3, Zephyr and Mistral, with ChatML when nothing matches.
// The template's markers (<|im_start|>, [INST], <s>, ...) become special tokens when the vocabulary has
// them; the messages' own text never does, so a user cannot forge a turn by typing a marker.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/json/json.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::chat {

enum class Format { chatml, llama2, llama3, zephyr, mistral };

constexpr std::string_view format_name(Format f) {
    switch (f) {
        case Format::chatml: return "chatml";
        case Format::llama2: return "llama2";
        case Format::llama3: return "llama3";
        case Format::zephyr: return "zephyr";
        case Format::mistral: return "mistral";
    }
    return "?";
}

// The family a Jinja chat template belongs to, from the markers it writes.
inline Format detect_format(std::string_view tmpl) {
    const auto has = [&](std::string_view s) { return tmpl.find(s) != std::string_view::npos; };
    if (has("<|im_start|>")) return Format::chatml;
    if (has("<|start_header_id|>")) return Format::llama3;
    if (has("<|user|>") && has("<|assistant|>")) return Format::zephyr;
    if (has("[INST]")) return has("<<SYS>>") ? Format::llama2 : Format::mistral;
    return Format::chatml;
}

// The family of a model file's chat template (ChatML when the file has none).
inline Format format_of(const gguf::File& file) { return detect_format(file.get_string("tokenizer.chat_template").value_or("")); }

// A call the assistant made, as the OpenAI API carries it: templates index `tool_call.function.arguments`
// and iterate it as a mapping, so the arguments are a JSON object, not its text.
struct ToolCall {
    std::string id;
    std::string name;
    json::Value arguments;  // a JSON object
};

// One turn. An aggregate, so {"user", "Hi"} is a message.
struct Message {
    std::string role;  // "system", "user", "assistant" or "tool"
    std::string content;
    // Defaulted so that {"user", "Hi"} leaves them empty without a missing-initializer warning.
    std::vector<ToolCall> tool_calls = {};  // the assistant's calls
    std::string tool_call_id = {};          // a tool result: the call it answers
    std::string name = {};                  // a tool result: the function's name
};

// A rendered prompt in order: markers the template writes (candidates for special tokens) and text.
struct PromptPart {
    std::string text;
    bool marker;
};

namespace detail {

inline std::string_view trim(std::string_view s) {
    const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

class PromptBuilder {
public:
    PromptBuilder& marker(std::string_view s) { return add(s, true); }
    PromptBuilder& text(std::string_view s) { return add(s, false); }
    std::vector<PromptPart> take() { return std::move(parts_); }

private:
    PromptBuilder& add(std::string_view s, bool marker) {
        if (s.empty()) return *this;
        if (!marker && !parts_.empty() && !parts_.back().marker) parts_.back().text += s;
        else parts_.push_back({std::string(s), marker});
        return *this;
    }
    std::vector<PromptPart> parts_;
};

}  // namespace detail

// The prompt for `messages` followed by the start of the assistant's reply, as the family's reference
// template writes it. `bos` and `eos` are the vocabulary's texts for those tokens. Formats without a
// system role (Llama-2, Mistral) put the system text at the head of the first user message, as their
// templates do.
inline std::vector<PromptPart> render(Format format, std::span<const Message> messages, std::string_view bos,
                   std::string_view eos) {
    detail::PromptBuilder p;
    std::string system;
    for (const auto& m : messages)
        if (m.role == "system") system += (system.empty() ? "" : "\n\n") + m.content;
    bool system_pending = !system.empty();

    switch (format) {
        case Format::chatml:
            for (const auto& m : messages) p.marker("<|im_start|>").text(m.role + "\n" + m.content).marker("<|im_end|>").text("\n");
            p.marker("<|im_start|>").text("assistant\n");
            break;
        case Format::llama3:
            p.marker(bos);
            for (const auto& m : messages)
                p.marker("<|start_header_id|>").text(m.role).marker("<|end_header_id|>").text("\n\n").text(detail::trim(m.content)).marker("<|eot_id|>");
            p.marker("<|start_header_id|>").text("assistant").marker("<|end_header_id|>").text("\n\n");
            break;
        case Format::zephyr:
            for (const auto& m : messages) p.marker("<|" + m.role + "|>").text("\n" + m.content).marker(eos).text("\n");
            p.marker("<|assistant|>").text("\n");
            break;
        case Format::llama2:
            for (const auto& m : messages) {
                if (m.role == "user") {
                    const std::string content = system_pending ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content : m.content;
                    system_pending = false;
                    p.marker(bos).marker("[INST]").text(" ").text(detail::trim(content)).text(" ").marker("[/INST]");
                } else if (m.role == "assistant") {
                    p.text(" ").text(detail::trim(m.content)).text(" ").marker(eos);
                }
            }
            break;
        case Format::mistral:
            p.marker(bos);
            for (const auto& m : messages) {
                if (m.role == "user") {
                    std::string content = m.content;
                    if (system_pending) content = system + "\n\n" + content;
                    system_pending = false;
                    p.marker("[INST]").text(" " + content + " ").marker("[/INST]");
                } else if (m.role == "assistant") {
                    p.text(m.content).marker(eos);
                }
            }
            break;
    }
    return p.take();
}

inline std::string to_text(std::span<const PromptPart> parts) {
    std::string out;
    for (const auto& part : parts) out += part.text;
    return out;
}

// The vocabulary's text for `id`, or `fallback` when it has no such token.
inline std::string_view token_text_or(const Tokenizer& tok, std::int32_t id, std::string_view fallback) {
    return id == tokenizer::kNoToken ? fallback : std::string_view(tok.token_text(id));
}

// Token ids for a chat prompt. A marker the vocabulary has as a control or user-defined token is that
// token; any other marker is text. Runs of text are encoded whole, as if the prompt were one string
// split at its special tokens. BOS comes first when the vocabulary adds one, and never twice.
inline std::vector<std::int32_t> encode(const Tokenizer& tok, Format format, std::span<const Message> messages) {
    using tokenizer::TokenType;
    const bool llama3 = format == Format::llama3;
    const auto parts = render(format, messages, token_text_or(tok, tok.bos(), llama3 ? "<|begin_of_text|>" : "<s>"),
                                   token_text_or(tok, tok.eos(), llama3 ? "<|end_of_text|>" : "</s>"));
    std::vector<std::int32_t> ids;
    if (tok.add_bos() && tok.bos() != tokenizer::kNoToken) ids.push_back(tok.bos());
    std::string text;
    const auto flush = [&] {
        const auto t = tok.encode(text, false, false);
        ids.insert(ids.end(), t.begin(), t.end());
        text.clear();
    };
    for (const auto& part : parts) {
        const auto id = part.marker ? tok.vocab().find(part.text) : std::nullopt;
        if (!id || (tok.vocab().type(*id) != TokenType::control && tok.vocab().type(*id) != TokenType::user_defined)) {
            text += part.text;
            continue;
        }
        flush();
        if (!(*id == tok.bos() && ids.size() == 1 && ids[0] == tok.bos())) ids.push_back(*id);
    }
    flush();
    return ids;
}

}  // namespace forge::chat
